//! Running the draws of a PSA and the one-way analysis, and what health economists read from
//! them: the cost-effectiveness plane, acceptability curve and frontier (CEAC, CEAF), the
//! expected value of perfect information (EVPI) and a tornado table.
//!
//! Two kinds of uncertainty are kept apart: the spread *between* draws is parameter
//! uncertainty (it also contains the Monte Carlo noise of each draw, whose size is reported
//! as `mcse` for each draw); `mcse` *within* a draw is Monte Carlo error from the finite number
//! of patients.

use crate::engine::RunError;
use crate::model::Model;
use crate::params::{OneWay, Parameters};
use crate::results::Results;
use crate::scenario::{PsaSection, ScenarioError};

/// Why a PSA could not be completed.
#[derive(Debug)]
pub enum PsaError {
    /// The base case is invalid.
    Base(ScenarioError),
    /// A sampled draw gave an invalid scenario.
    InvalidDraw(u64, ScenarioError),
    /// A one-way value (parameter, value) gave an invalid scenario.
    OneWay(String, f64, ScenarioError),
    /// Interrupted.
    Run(RunError),
    /// The requested analysis does not fit the scenario.
    Setup(String),
}

impl std::fmt::Display for PsaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PsaError::Base(e) => write!(f, "{e}"),
            PsaError::InvalidDraw(d, e) => write!(
                f,
                "PSA draw {d}: the sampled values make the scenario invalid (choose distributions whose range fits each parameter: beta for probabilities, gamma or lognormal for rates and costs, or truncate the normal):\n{e}"
            ),
            PsaError::OneWay(p, x, e) => write!(
                f,
                "one-way analysis: `{p}` = {x} makes the scenario invalid (set `low`/`high` in its distribution):\n{e}"
            ),
            PsaError::Run(e) => write!(f, "{e}"),
            PsaError::Setup(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PsaError {}

/// A strategy compared in the CEAC: a comparator arm, or the therapy under a contract.
#[derive(Clone, Debug, PartialEq)]
pub struct Strategy {
    /// Display name: the arm, or "arm / contract".
    pub name: String,
    /// Arm name.
    pub arm: String,
    /// Contract name (`none` for comparators).
    pub contract: String,
}

/// Results of one draw.
#[derive(Clone, Debug)]
pub struct DrawResult {
    /// Draw index (1-based).
    pub draw: u64,
    /// Parameter values (order of [`PsaResults::names`]).
    pub values: Vec<f64>,
    /// The draw's result tables.
    pub results: Results,
}

/// One row of `tornado.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct TornadoRow {
    /// Parameter name (or field path, for one written in place).
    pub parameter: String,
    /// Contract.
    pub contract: String,
    /// Output name.
    pub output: String,
    /// Output at the base case.
    pub base_output: f64,
    /// Parameter low value.
    pub low: f64,
    /// Parameter high value.
    pub high: f64,
    /// Output with the parameter at its low value.
    pub output_low: f64,
    /// Output with the parameter at its high value.
    pub output_high: f64,
}

/// Everything a PSA produces.
#[derive(Clone, Debug)]
pub struct PsaResults {
    /// Names of the parameters in `params.csv` (field paths for those written in place).
    pub names: Vec<String>,
    /// Base-case values.
    pub base_values: Vec<f64>,
    /// Per draw.
    pub draws: Vec<DrawResult>,
    /// Strategies for the CEAC.
    pub strategies: Vec<Strategy>,
    /// Threshold grid.
    pub wtp_grid: Vec<f64>,
}

/// The strategies of a model: comparators, then the therapy under each contract.
pub fn strategies(model: &Model) -> Vec<Strategy> {
    let t = &model.arms[model.therapy.arm].name;
    let mut v: Vec<Strategy> = model
        .comparators()
        .into_iter()
        .map(|a| Strategy {
            name: model.arms[a].name.clone(),
            arm: model.arms[a].name.clone(),
            contract: crate::model::build::NO_CONTRACT.to_string(),
        })
        .collect();
    v.extend(model.contracts.iter().map(|c| Strategy {
        name: format!("{t} / {}", c.name),
        arm: t.clone(),
        contract: c.name.clone(),
    }));
    v
}

/// The threshold grid: `[psa] wtp_grid`, or 0 to 3 × the largest `simulation.wtp` in 60 steps.
pub fn wtp_grid(settings: &PsaSection, model: &Model) -> Vec<f64> {
    if let Some(g) = &settings.wtp_grid {
        let n = ((g.to - g.from) / g.step + 1e-9).floor() as usize;
        return (0..=n).map(|k| g.from + g.step * k as f64).collect();
    }
    let top = model.sim.wtp.iter().cloned().fold(0.0, f64::max);
    let top = if top > 0.0 { 3.0 * top } else { 150_000.0 };
    (0..=60).map(|k| top * k as f64 / 60.0).collect()
}

/// Mean payer cost and QALYs of a strategy in one result set.
pub fn cost_qalys(r: &Results, s: &Strategy) -> (f64, f64) {
    let get = |m: &str| {
        r.summary_row(&s.arm, &s.contract, m)
            .map_or(f64::NAN, |x| x.mean)
    };
    (get("payer_cost"), get("qalys"))
}

/// Per draw, the mean payer cost and QALYs of each strategy (in strategy order).
pub fn draws_cost_qalys(p: &PsaResults) -> Vec<Vec<(f64, f64)>> {
    p.draws
        .iter()
        .map(|d| {
            p.strategies
                .iter()
                .map(|s| cost_qalys(&d.results, s))
                .collect()
        })
        .collect()
}

/// CEAC row: (wtp, strategy index, probability of the highest NMB, expected NMB, on the
/// frontier (highest expected NMB at this threshold)).
pub fn ceac(p: &PsaResults) -> Vec<(f64, usize, f64, f64, bool)> {
    let cq = draws_cost_qalys(p);
    let k = p.draws.len() as f64;
    let mut rows = Vec::new();
    for &w in &p.wtp_grid {
        let mut wins = vec![0usize; p.strategies.len()];
        let mut mean = vec![0.0; p.strategies.len()];
        for d in &cq {
            let nmb: Vec<f64> = d.iter().map(|(c, q)| w * q - c).collect();
            let best = argmax(&nmb);
            wins[best] += 1;
            for (m, x) in mean.iter_mut().zip(&nmb) {
                *m += x / k;
            }
        }
        let frontier = argmax(&mean);
        for s in 0..p.strategies.len() {
            rows.push((w, s, wins[s] as f64 / k, mean[s], s == frontier));
        }
    }
    rows
}

/// EVPI per patient at each threshold: E[max_s NMB_s] − max_s E[NMB_s].
pub fn evpi(p: &PsaResults) -> Vec<(f64, f64)> {
    let cq = draws_cost_qalys(p);
    p.wtp_grid.iter().map(|&w| (w, evpi_at(&cq, w))).collect()
}

/// EVPI from per-draw (cost, QALYs) of each strategy at threshold `w`.
pub fn evpi_at(cq: &[Vec<(f64, f64)>], w: f64) -> f64 {
    let k = cq.len() as f64;
    let n = cq.first().map_or(0, |d| d.len());
    let mut mean = vec![0.0; n];
    let mut e_max = 0.0;
    for d in cq {
        let nmb: Vec<f64> = d.iter().map(|(c, q)| w * q - c).collect();
        e_max += nmb.iter().cloned().fold(f64::NEG_INFINITY, f64::max) / k;
        for (m, x) in mean.iter_mut().zip(&nmb) {
            *m += x / k;
        }
    }
    (e_max - mean.iter().cloned().fold(f64::NEG_INFINITY, f64::max)).max(0.0)
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// (contract, output name, value) for each contract.
type Outputs = Vec<(String, String, f64)>;

/// The output a tornado reports for each contract.
fn tornado_outputs(model: &Model, r: &Results, settings: &PsaSection) -> Result<Outputs, PsaError> {
    let output = settings
        .tornado_output
        .clone()
        .unwrap_or_else(|| "inc_nmb".into());
    let t = &model.arms[model.therapy.arm].name;
    let mut v = Vec::new();
    if output == "inc_nmb" {
        let cmp = model.comparators();
        let Some(&first) = cmp.first() else {
            return Err(PsaError::Setup(
                "a tornado of incremental NMB needs a comparator arm; set [psa] tornado_output to a metric such as \"payer_cost\"".into(),
            ));
        };
        let w = settings
            .tornado_wtp
            .or_else(|| model.sim.wtp.first().copied())
            .ok_or_else(|| PsaError::Setup("a tornado of incremental NMB needs a threshold: set simulation.wtp or [psa] tornado_wtp".into()))?;
        let cname = &model.arms[first].name;
        for c in &model.contracts {
            let get = |m: &str| {
                r.incremental
                    .iter()
                    .find(|x| x.contract == c.name && x.comparator == *cname && x.metric == m)
                    .map_or(f64::NAN, |x| x.value)
            };
            v.push((
                c.name.clone(),
                format!("inc_nmb at {w} vs {cname}"),
                w * get("inc_qalys") - get("inc_cost"),
            ));
        }
    } else {
        for c in &model.contracts {
            let row = r.summary_row(t, &c.name, &output).ok_or_else(|| {
                PsaError::Setup(format!(
                    "unknown tornado_output `{output}`: use \"inc_nmb\" or a metric of summary.csv (e.g. payer_cost, drug_paid, manufacturer_npv)"
                ))
            })?;
            v.push((c.name.clone(), output.clone(), row.mean));
        }
    }
    Ok(v)
}

/// One-way sensitivity table from the base case and the one-way runs (each parameter at its
/// low and high value with the rest at base, simulated on the base case's patients, so the
/// swings carry no sampling noise between runs). `one_way` holds, for each run of
/// [`Parameters::one_way_runs`] (in that order), its model and results. Sorted by swing,
/// largest first, per contract.
pub fn tornado_rows(
    params: &Parameters,
    runs: &[OneWay],
    base_model: &Model,
    base_results: &Results,
    one_way: &[(&Model, Results)],
) -> Result<Vec<TornadoRow>, PsaError> {
    let settings = &params.settings;
    let base_out = tornado_outputs(base_model, base_results, settings)?;
    let mut rows = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        if run.high {
            continue;
        }
        let high = runs
            .iter()
            .position(|r| r.param == run.param && r.high)
            .ok_or_else(|| PsaError::Setup("a one-way run is missing".into()))?;
        let outputs = |i: usize| -> Result<Outputs, PsaError> {
            let (m, r) = one_way
                .get(i)
                .ok_or_else(|| PsaError::Setup("a one-way run is missing".into()))?;
            tornado_outputs(m, r, settings)
        };
        let (lo, hi) = (outputs(k)?, outputs(high)?);
        let p = &params.params[run.param];
        for ((b, l), h) in base_out.iter().zip(&lo).zip(&hi) {
            rows.push(TornadoRow {
                parameter: p.name.clone(),
                contract: b.0.clone(),
                output: b.1.clone(),
                base_output: b.2,
                low: run.value,
                high: runs[high].value,
                output_low: l.2,
                output_high: h.2,
            });
        }
    }
    rows.sort_by(|a, b| {
        a.contract.cmp(&b.contract).then(
            (b.output_high - b.output_low)
                .abs()
                .total_cmp(&(a.output_high - a.output_low).abs()),
        )
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evpi_two_strategies_normal_nmb_closed_form() {
        // NMB_A = 0, NMB_B ~ Normal(μ, σ): EVPI = E[max(0, X)] − max(0, μ)
        //   = μ Φ(μ/σ) + σ φ(μ/σ) − max(0, μ).
        let (mu, sigma) = (1000.0, 3000.0);
        let n = 200_000;
        let cq: Vec<Vec<(f64, f64)>> = (0..n)
            .map(|i| {
                let p = (i as f64 + 0.5) / n as f64;
                let x = mu + sigma * crate::model::special::norm_quantile(p);
                // Strategy B: cost −x, QALYs 0 → NMB = x at any threshold.
                vec![(0.0, 0.0), (-x, 0.0)]
            })
            .collect();
        let z = mu / sigma;
        let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let truth = mu * crate::model::special::norm_cdf(z) + sigma * phi - mu.max(0.0);
        let got = evpi_at(&cq, 50_000.0);
        assert!((got - truth).abs() < 1e-3 * truth, "{got} vs {truth}");
    }

    #[test]
    fn ceac_by_hand() {
        // Three draws, two strategies: B wins in draws 1 and 3 at λ = 10.
        let mk = |c: f64, q: f64| Results {
            summary: vec![
                crate::results::SummaryRow {
                    arm: "x".into(),
                    contract: "none".into(),
                    metric: "payer_cost".into(),
                    mean: c,
                    mcse: 0.0,
                    sd: 0.0,
                    p025: 0.0,
                    p50: 0.0,
                    p975: 0.0,
                    n: 1,
                },
                crate::results::SummaryRow {
                    arm: "x".into(),
                    contract: "none".into(),
                    metric: "qalys".into(),
                    mean: q,
                    mcse: 0.0,
                    sd: 0.0,
                    p025: 0.0,
                    p50: 0.0,
                    p975: 0.0,
                    n: 1,
                },
                crate::results::SummaryRow {
                    arm: "t".into(),
                    contract: "c".into(),
                    metric: "payer_cost".into(),
                    mean: 100.0,
                    mcse: 0.0,
                    sd: 0.0,
                    p025: 0.0,
                    p50: 0.0,
                    p975: 0.0,
                    n: 1,
                },
                crate::results::SummaryRow {
                    arm: "t".into(),
                    contract: "c".into(),
                    metric: "qalys".into(),
                    mean: 20.0,
                    mcse: 0.0,
                    sd: 0.0,
                    p025: 0.0,
                    p50: 0.0,
                    p975: 0.0,
                    n: 1,
                },
            ],
            incremental: vec![],
            cashflow: vec![],
            occupancy: vec![],
            quantiles: vec![],
            budget: vec![],
            risk: vec![],
            prices: vec![],
            subgroups: vec![],
        };
        // NMB_x = 10 q − c; NMB_t = 200 − 100 = 100.
        let draws = [(0.0, 5.0), (0.0, 15.0), (50.0, 10.0)]
            .iter()
            .enumerate()
            .map(|(i, &(c, q))| DrawResult {
                draw: i as u64 + 1,
                values: vec![],
                results: mk(c, q),
            })
            .collect();
        let p = PsaResults {
            names: vec![],
            base_values: vec![],
            draws,
            strategies: vec![
                Strategy {
                    name: "x".into(),
                    arm: "x".into(),
                    contract: "none".into(),
                },
                Strategy {
                    name: "t / c".into(),
                    arm: "t".into(),
                    contract: "c".into(),
                },
            ],
            wtp_grid: vec![10.0],
        };
        let rows = ceac(&p);
        // NMB_x per draw: 50, 150, 50 → t wins draws 1 and 3.
        assert_eq!(rows[0].2, 1.0 / 3.0);
        assert_eq!(rows[1].2, 2.0 / 3.0);
        // Expected NMB: x = 250/3 ≈ 83.3 < t = 100 → t on the frontier.
        assert!(!rows[0].4 && rows[1].4);
        assert!((rows[0].3 - 250.0 / 3.0).abs() < 1e-9);
        // EVPI: E[max] = (100 + 150 + 100)/3 − 100.
        let e = evpi(&p);
        assert!((e[0].1 - (350.0 / 3.0 - 100.0)).abs() < 1e-9);
    }
}
