//! Result tables computed from a finished [`Tally`]: summary statistics with Monte Carlo
//! error, incremental cost-effectiveness, cash flows by year and state occupancy.

use crate::engine::tally::{ARM_METRICS, CONTRACT_METRICS};
use crate::engine::Tally;
use crate::model::build::NO_CONTRACT;
use crate::model::Model;

/// One row of `summary.csv`: a metric of an (arm, contract) over patients.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Arm name.
    pub arm: String,
    /// Contract name (`none` for comparators).
    pub contract: String,
    /// Metric name.
    pub metric: String,
    /// Mean over patients.
    pub mean: f64,
    /// Monte Carlo standard error of the mean.
    pub mcse: f64,
    /// Standard deviation over patients.
    pub sd: f64,
    /// 2.5% quantile over patients.
    pub p025: f64,
    /// Median over patients.
    pub p50: f64,
    /// 97.5% quantile over patients.
    pub p975: f64,
    /// Number of patients.
    pub n: u64,
}

/// One row of `incremental.csv`: therapy under a contract against a comparator.
#[derive(Clone, Debug, PartialEq)]
pub struct IncrementalRow {
    /// Contract name.
    pub contract: String,
    /// Comparator arm name.
    pub comparator: String,
    /// `inc_cost`, `inc_qalys`, `inc_life_years`, `icer` or `inc_nmb`.
    pub metric: String,
    /// Threshold for `inc_nmb` rows.
    pub wtp: Option<f64>,
    /// Estimate.
    pub value: f64,
    /// Monte Carlo standard error (delta method for the ICER).
    pub mcse: f64,
    /// Quadrant note for the ICER (`dominant`, `dominated`, ...), empty otherwise.
    pub note: String,
}

/// One row of `cashflow.csv`: expected amounts per patient falling in a year.
#[derive(Clone, Debug, PartialEq)]
pub struct CashflowRow {
    /// Arm.
    pub arm: String,
    /// Contract (`none` for comparators).
    pub contract: String,
    /// Year index y: amounts in [y, y+1) years after treatment.
    pub year: usize,
    /// Drug payments, undiscounted.
    pub payments: f64,
    /// Drug payments, discounted at the payer's rate.
    pub payments_discounted: f64,
    /// Other costs (state, entry, start), undiscounted.
    pub other_costs: f64,
    /// Other costs, discounted.
    pub other_costs_discounted: f64,
}

/// One row of `occupancy.csv`: share of patients in a state at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct OccupancyRow {
    /// Arm.
    pub arm: String,
    /// Time in years.
    pub time: f64,
    /// State.
    pub state: String,
    /// Share of patients in the state.
    pub share: f64,
    /// Binomial Monte Carlo standard error of the share.
    pub mcse: f64,
}

/// One row of `quantiles.csv`: the per-patient distribution of a metric, as its quantile
/// function on a grid of probabilities (for histograms and distribution plots).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileRow {
    /// Arm.
    pub arm: String,
    /// Contract (`none` for comparators).
    pub contract: String,
    /// Metric.
    pub metric: String,
    /// Probability in [0, 1].
    pub p: f64,
    /// Quantile (inverse empirical CDF, within the sketch accuracy).
    pub value: f64,
}

/// Metrics whose whole per-patient distribution is written to `quantiles.csv`.
pub const DISTRIBUTION_METRICS: [&str; 5] = [
    "payer_cost",
    "drug_paid",
    "drug_paid_undiscounted",
    "manufacturer_npv",
    "qalys",
];

/// All result tables of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// `summary.csv`.
    pub summary: Vec<SummaryRow>,
    /// `incremental.csv`.
    pub incremental: Vec<IncrementalRow>,
    /// `cashflow.csv`.
    pub cashflow: Vec<CashflowRow>,
    /// `occupancy.csv`.
    pub occupancy: Vec<OccupancyRow>,
    /// `quantiles.csv`.
    pub quantiles: Vec<QuantileRow>,
}

impl Results {
    /// Computes every table from a finished tally.
    pub fn from_tally(model: &Model, tally: &Tally) -> Results {
        let layout = tally.layout();
        let n = tally.moments.count();
        let row = |arm: &str, contract: &str, metric: &str, slot: usize| {
            let m = tally.moments.mean_sd(slot);
            let q = |p| tally.sketches[slot].quantile(p).unwrap_or(f64::NAN);
            SummaryRow {
                arm: arm.to_string(),
                contract: contract.to_string(),
                metric: metric.to_string(),
                mean: m.mean,
                mcse: m.mcse,
                sd: m.sd,
                p025: q(0.025),
                p50: q(0.5),
                p975: q(0.975),
                n,
            }
        };
        let mut summary = Vec::new();
        let mut quantiles = Vec::new();
        let mut distribution = |arm: &str, contract: &str, metric: &str, slot: usize| {
            if !DISTRIBUTION_METRICS.contains(&metric) {
                return;
            }
            for k in 0..=100 {
                let p = k as f64 / 100.0;
                quantiles.push(QuantileRow {
                    arm: arm.to_string(),
                    contract: contract.to_string(),
                    metric: metric.to_string(),
                    p,
                    value: tally.sketches[slot].quantile(p).unwrap_or(f64::NAN),
                });
            }
        };
        let therapy = model.therapy.arm;
        let tname = &model.arms[therapy].name;
        for (c, contract) in model.contracts.iter().enumerate() {
            for (m, metric) in CONTRACT_METRICS.iter().enumerate() {
                if *metric == "share_of_price_paid" && model.therapy.list_price == 0.0 {
                    continue;
                }
                summary.push(row(tname, &contract.name, metric, layout.contract(c, m)));
                distribution(tname, &contract.name, metric, layout.contract(c, m));
            }
            for (m, metric) in ARM_METRICS.iter().enumerate() {
                summary.push(row(tname, &contract.name, metric, layout.arm(therapy, m)));
                distribution(tname, &contract.name, metric, layout.arm(therapy, m));
            }
        }
        for &a in layout.comparators() {
            let name = &model.arms[a].name;
            // A comparator's payer cost is its other costs (no therapy price).
            summary.push(row(name, NO_CONTRACT, "payer_cost", layout.arm(a, 0)));
            distribution(name, NO_CONTRACT, "payer_cost", layout.arm(a, 0));
            for (m, metric) in ARM_METRICS.iter().enumerate() {
                summary.push(row(name, NO_CONTRACT, metric, layout.arm(a, m)));
                distribution(name, NO_CONTRACT, metric, layout.arm(a, m));
            }
        }

        let mut incremental = Vec::new();
        let nf = n as f64;
        for (c, contract) in model.contracts.iter().enumerate() {
            for (k, &a) in layout.comparators().iter().enumerate() {
                let cmp = &model.arms[a].name;
                let dc = tally.moments.mean_sd(layout.incremental(c, k, 0));
                let dq = tally.moments.mean_sd(layout.incremental(c, k, 1));
                let dl = tally.moments.mean_sd(layout.incremental(c, k, 2));
                let cov = tally.moments.covariance(layout.pair(c, k));
                let mk = |metric: &str, wtp: Option<f64>, value: f64, mcse: f64, note: &str| {
                    IncrementalRow {
                        contract: contract.name.clone(),
                        comparator: cmp.clone(),
                        metric: metric.to_string(),
                        wtp,
                        value,
                        mcse,
                        note: note.to_string(),
                    }
                };
                incremental.push(mk("inc_cost", None, dc.mean, dc.mcse, ""));
                incremental.push(mk("inc_qalys", None, dq.mean, dq.mcse, ""));
                incremental.push(mk("inc_life_years", None, dl.mean, dl.mcse, ""));
                let (icer, icer_se, note) = icer(dc.mean, dq.mean, dc.sd, dq.sd, cov, nf);
                incremental.push(mk("icer", None, icer, icer_se, note));
                for &w in &model.sim.wtp {
                    let value = w * dq.mean - dc.mean;
                    let var = w * w * dq.sd * dq.sd + dc.sd * dc.sd - 2.0 * w * cov;
                    incremental.push(mk(
                        "inc_nmb",
                        Some(w),
                        value,
                        (var.max(0.0) / nf).sqrt(),
                        "",
                    ));
                }
            }
        }

        let mut cashflow = Vec::new();
        let years = model.sim.years();
        let arms = model.arms.len();
        let per = |s: usize, y: usize| tally.flows.total(s, y) / nf;
        for (c, contract) in model.contracts.iter().enumerate() {
            for y in 0..years {
                cashflow.push(CashflowRow {
                    arm: tname.clone(),
                    contract: contract.name.clone(),
                    year: y,
                    payments: per(2 * arms + 2 * c, y),
                    payments_discounted: per(2 * arms + 2 * c + 1, y),
                    other_costs: per(2 * therapy, y),
                    other_costs_discounted: per(2 * therapy + 1, y),
                });
            }
        }
        for &a in layout.comparators() {
            for y in 0..years {
                cashflow.push(CashflowRow {
                    arm: model.arms[a].name.clone(),
                    contract: NO_CONTRACT.to_string(),
                    year: y,
                    payments: 0.0,
                    payments_discounted: 0.0,
                    other_costs: per(2 * a, y),
                    other_costs_discounted: per(2 * a + 1, y),
                });
            }
        }

        let mut occupancy = Vec::new();
        let step = model.sim.occupancy_step;
        for (a, arm) in model.arms.iter().enumerate() {
            let series: Vec<Vec<i64>> = (0..arm.states.len())
                .map(|s| tally.occupancy_series(a, s))
                .collect();
            let count = |s: usize, j: usize| series[s][j];
            for j in 0..model.sim.occupancy_points() {
                for (s, state) in arm.states.iter().enumerate() {
                    let share = count(s, j) as f64 / nf;
                    occupancy.push(OccupancyRow {
                        arm: arm.name.clone(),
                        time: (j as f64 * step).min(model.sim.horizon),
                        state: state.name.clone(),
                        share,
                        mcse: (share * (1.0 - share) / nf).sqrt(),
                    });
                }
            }
        }
        Results {
            summary,
            incremental,
            cashflow,
            occupancy,
            quantiles,
        }
    }

    /// The summary row of (arm, contract, metric), if any.
    pub fn summary_row(&self, arm: &str, contract: &str, metric: &str) -> Option<&SummaryRow> {
        self.summary
            .iter()
            .find(|r| r.arm == arm && r.contract == contract && r.metric == metric)
    }
}

/// ICER = E[ΔC]/E[ΔQ] with a delta-method standard error, and its quadrant.
fn icer(dc: f64, dq: f64, sd_c: f64, sd_q: f64, cov: f64, n: f64) -> (f64, f64, &'static str) {
    let note = match (dc > 0.0, dq > 0.0) {
        _ if dq == 0.0 => "no QALY difference",
        (true, false) => "dominated",
        (false, true) => "dominant",
        (false, false) => "less costly, less effective",
        (true, true) => "",
    };
    if dq == 0.0 {
        return (f64::NAN, f64::NAN, note);
    }
    let r = dc / dq;
    let var = (sd_c * sd_c - 2.0 * r * cov + r * r * sd_q * sd_q) / (dq * dq) / n;
    (r, var.max(0.0).sqrt(), note)
}
