//! Contract design tools: sweeps over scenario parameters on common random numbers, solving
//! a term for a target, and side-by-side comparison of finished runs.
//!
//! What is varied is a named parameter of `[parameters]` (every place that uses it follows,
//! and so do the parameters derived from it), or one number of the scenario by its field
//! path (`contracts[1].warranty.refund`, `therapy.list_price`), exactly as error messages
//! name it. Each point is compiled from the parsed scenario with that value and checked like
//! any scenario. Every point of a sweep and every step of a solve simulates the same patients
//! (draw 0 streams), so differences between points are not sampling noise.

use crate::engine::{run_blocks_keeping, Blocks, RunError, Statistics};
use crate::model::{Model, Setup};
use crate::plan::Adjust;
use crate::results::Results;
use crate::scenario::ScenarioError;
use rayon::prelude::*;
use std::sync::atomic::AtomicBool;

/// One `--set PATH=VALUES` of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SetSpec {
    /// A named parameter, or a field path.
    pub path: String,
    /// Values to try.
    pub values: Vec<f64>,
}

/// Parses `PATH=v1,v2,...` or `PATH=from:to:step` (inclusive of `to` within rounding).
pub fn parse_set(s: &str) -> Result<SetSpec, String> {
    let (path, values) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write PATH=VALUES, e.g. therapy.list_price=1e6,1.5e6 or contracts[1].warranty.refund=0:1:0.25"))?;
    let num = |x: &str| -> Result<f64, String> {
        x.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{x}` in `{s}` is not a finite number"))
    };
    let values: Vec<f64> = if values.contains(':') {
        let parts: Vec<&str> = values.split(':').collect();
        if parts.len() != 3 {
            return Err(format!("`{values}`: a range is from:to:step"));
        }
        let (from, to, step) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
        if !(step > 0.0 && to >= from) || (to - from) / step > 10_000.0 {
            return Err(format!(
                "`{values}`: need from <= to, step > 0 and at most 10000 values"
            ));
        }
        let n = ((to - from) / step + 1e-9).floor() as usize;
        (0..=n).map(|k| from + step * k as f64).collect()
    } else {
        values.split(',').map(num).collect::<Result<_, _>>()?
    };
    if values.is_empty() {
        return Err(format!("`{s}`: no values"));
    }
    Ok(SetSpec {
        path: path.trim().to_string(),
        values,
    })
}

/// What a swept or solved value sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// A named parameter (its index): every place using it, and the parameters derived
    /// from it, follow.
    Parameter(usize),
    /// The one number written at this byte offset of the scenario text.
    Number(usize),
}

/// What each path names: a named parameter, or a number written in the scenario.
pub fn locate(setup: &Setup, paths: &[&str]) -> Result<Vec<Knob>, ScenarioError> {
    let source = &setup.source;
    let mut knobs = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if let Some(i) = setup.params.index(p) {
            knobs.push(Knob::Parameter(i));
            continue;
        }
        match source.value_span(p) {
            Some(span) => knobs.push(Knob::Number(span.start)),
            None => {
                let names = setup.params.names();
                let hint = crate::scenario::suggest::closest(p, &names)
                    .map_or(String::new(), |k| {
                        format!(" (did you mean the parameter `{k}`?)")
                    });
                errors.push(source.diagnostic(
                    p,
                    format!("`{p}` is neither a parameter of [parameters] nor written in this scenario{hint}: vary a named parameter, or a number written in the file (write its current value explicitly) addressed as in error messages, e.g. contracts[1].warranty.refund"),
                ))
            }
        }
    }
    if errors.is_empty() {
        Ok(knobs)
    } else {
        Err(ScenarioError {
            diagnostics: errors,
        })
    }
}

/// The model of the scenario with `values` set at `knobs` (everything else at base).
pub fn model_with(
    setup: &Setup,
    knobs: &[Knob],
    values: &[f64],
    adjust: Adjust,
) -> Result<Model, ScenarioError> {
    let mut params = Vec::new();
    let mut numbers = Vec::new();
    for (k, &v) in knobs.iter().zip(values) {
        match *k {
            Knob::Parameter(i) => params.push((i, v)),
            Knob::Number(at) => numbers.push((at, v)),
        }
    }
    let mut model = setup.model(&setup.params.with_overrides(&params), &numbers)?;
    adjust.apply(&mut model);
    Ok(model)
}

/// The points of a sweep: the Cartesian product of the values (last path varies fastest).
pub fn grid(sets: &[SetSpec]) -> Vec<Vec<f64>> {
    let mut points = vec![Vec::new()];
    for s in sets {
        let mut next = Vec::with_capacity(points.len() * s.values.len());
        for p in &points {
            for v in &s.values {
                let mut q = p.clone();
                q.push(*v);
                next.push(q);
            }
        }
        points = next;
    }
    points
}

/// Why a sweep or solve failed.
#[derive(Debug)]
pub enum DesignError {
    /// A point gives an invalid scenario.
    Invalid(Vec<f64>, ScenarioError),
    /// Interrupted.
    Run(RunError),
    /// Not solvable as asked.
    Solve(String),
}

impl std::fmt::Display for DesignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DesignError::Invalid(v, e) => {
                write!(f, "the values {v:?} make the scenario invalid:\n{e}")
            }
            DesignError::Run(e) => write!(f, "{e}"),
            DesignError::Solve(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for DesignError {}

/// Runs every point (in parallel, same patients for all); results in grid order. Each
/// point keeps means and errors only: the summary (quantiles NaN) and incremental tables.
pub fn sweep(
    setup: &Setup,
    knobs: &[Knob],
    points: &[Vec<f64>],
    adjust: Adjust,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<Vec<Results>, DesignError> {
    let models: Vec<Model> = points
        .iter()
        .map(|p| {
            model_with(setup, knobs, p, adjust).map_err(|e| DesignError::Invalid(p.clone(), e))
        })
        .collect::<Result<_, _>>()?;
    models
        .par_iter()
        .map(|m| run_means(m, progress, cancel).map_err(DesignError::Run))
        .collect()
}

/// Runs `model` (draw 0) keeping means and errors only: the summary (its quantiles NaN) and
/// incremental tables, all that sweeps and solves report. Without quantile sketches a run
/// takes about a quarter less time; its means and MCSEs are bit for bit those of a full run.
fn run_means(
    model: &Model,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<Results, RunError> {
    let t = run_blocks_keeping(
        model,
        0,
        Blocks::all(model),
        Statistics::WithoutSketches,
        progress,
        cancel,
    )?;
    Ok(Results::summary_from_tally(model, &t))
}

/// What a solve aims at: a metric of the therapy arm under a contract (or the incremental
/// NMB against a comparator at a threshold) equal to a target.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Summary metric (e.g. `manufacturer_npv`), or `inc_nmb`.
    pub metric: String,
    /// Target value.
    pub value: f64,
    /// Contract.
    pub contract: String,
    /// For `inc_nmb`: the comparator and threshold.
    pub comparator: Option<(String, f64)>,
}

impl Target {
    /// The metric's mean and MCSE in a result set.
    pub fn read(&self, model: &Model, r: &Results) -> Result<(f64, f64), DesignError> {
        if self.metric == "inc_nmb" {
            let (cmp, w) = self
                .comparator
                .clone()
                .ok_or_else(|| DesignError::Solve("inc_nmb needs --comparator and --wtp".into()))?;
            return r
                .incremental
                .iter()
                .find(|x| {
                    x.contract == self.contract
                        && x.comparator == cmp
                        && x.metric == "inc_nmb"
                        && x.wtp == Some(w)
                })
                .map(|x| (x.value, x.mcse))
                .ok_or_else(|| {
                    DesignError::Solve(format!(
                        "no inc_nmb of `{}` against `{cmp}` at {w} (is {w} in simulation.wtp?)",
                        self.contract
                    ))
                });
        }
        let arm = &model.arms[model.therapy.arm].name;
        r.summary_row(arm, &self.contract, &self.metric)
            .map(|x| (x.mean, x.mcse))
            .ok_or_else(|| {
                DesignError::Solve(format!(
                    "no metric `{}` for contract `{}`: use a metric of summary.csv or inc_nmb",
                    self.metric, self.contract
                ))
            })
    }
}

/// A solved term.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// The parameter value.
    pub value: f64,
    /// Its Monte Carlo standard error (metric MCSE / |slope|).
    pub mcse: f64,
    /// The metric at the solution.
    pub achieved: f64,
    /// Evaluations made.
    pub evaluations: usize,
}

/// Finds the value of `knob` in [lo, hi] where the target metric equals its target, by
/// bisection on common random numbers (the metric must change sign over the bracket). Each
/// evaluation is a full run on the same patients.
#[allow(clippy::too_many_arguments)]
pub fn solve(
    setup: &Setup,
    knob: Knob,
    (lo, hi): (f64, f64),
    target: &Target,
    tolerance: f64,
    adjust: Adjust,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<Solution, DesignError> {
    let knobs = [knob];
    let mut evaluations = 0;
    let mut eval = |x: f64| -> Result<(f64, f64), DesignError> {
        evaluations += 1;
        let m = model_with(setup, &knobs, &[x], adjust)
            .map_err(|e| DesignError::Invalid(vec![x], e))?;
        let r = run_means(&m, progress, cancel).map_err(DesignError::Run)?;
        let (v, se) = target.read(&m, &r)?;
        Ok((v - target.value, se))
    };
    let (mut a, mut b) = (lo, hi);
    let (f_lo, _) = eval(a)?;
    let (fb, _) = eval(b)?;
    let mut fa = f_lo;
    if fa == 0.0 {
        return Ok(Solution {
            value: a,
            mcse: 0.0,
            achieved: target.value,
            evaluations: 2,
        });
    }
    if fa.signum() == fb.signum() {
        return Err(DesignError::Solve(format!(
            "the target is not bracketed: at {lo} the metric is {} and at {hi} it is {} (target {}); widen --between",
            fa + target.value,
            fb + target.value,
            target.value
        )));
    }
    // The metric (minus its target) at the solution, once evaluated there.
    let mut at_solution = None;
    let mut se_last = 0.0;
    for _ in 0..60 {
        let m = 0.5 * (a + b);
        let (fm, se) = eval(m)?;
        se_last = se;
        if fm == 0.0 || (b - a).abs() <= tolerance * m.abs().max(1e-12) {
            a = m;
            b = m;
            at_solution = Some(fm);
            break;
        }
        if fm.signum() == fa.signum() {
            a = m;
            fa = fm;
        } else {
            b = m;
        }
    }
    let x = 0.5 * (a + b);
    // Slope from the original bracket (the metric is smooth in the term on common numbers).
    let slope = (fb - f_lo) / (hi - lo);
    let achieved = target.value
        + match at_solution {
            Some(f) => f,
            None => eval(x)?.0,
        };
    Ok(Solution {
        value: x,
        mcse: if slope != 0.0 {
            se_last / slope.abs()
        } else {
            f64::INFINITY
        },
        achieved,
        evaluations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pm_rounds_to_the_mcse_and_tables_align() {
        assert_eq!(mean_pm(9_525_317.956_6, 11_195.12), "9525318 ± 11195");
        assert_eq!(mean_pm(0.941_83, 0.001_7), "0.9418 ± 0.0017");
        assert_eq!(mean_pm(20.468_9, 0.014), "20.469 ± 0.014");
        assert_eq!(mean_pm(2_900_000.0, 0.0), "2900000 ± 0");
        assert_eq!(mean_pm(0.25, 0.0), "0.2500 ± 0.0000");
        assert_eq!(mean_pm(f64::NAN, 1.0), "—");
        let t = aligned(
            &[
                vec!["run".into(), "value".into()],
                vec!["a long name".into(), "1 ± 0".into()],
                vec!["b".into(), "—".into()],
            ],
            1,
        );
        assert_eq!(
            t,
            "run          value\na long name  1 ± 0\nb                —\n"
        );
    }

    #[test]
    fn set_syntax_and_grid() {
        assert_eq!(parse_set("a.b=1,2.5").unwrap().values, vec![1.0, 2.5]);
        assert_eq!(
            parse_set("x[0].y=0:1:0.25").unwrap().values,
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert!(parse_set("a").is_err());
        assert!(parse_set("a=1:0:1").is_err());
        let g = grid(&[
            SetSpec {
                path: "a".into(),
                values: vec![1.0, 2.0],
            },
            SetSpec {
                path: "b".into(),
                values: vec![3.0, 4.0, 5.0],
            },
        ]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[1], vec![1.0, 4.0]);
    }
}

/// One row of a comparison of finished runs.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    /// Run directory.
    pub run: String,
    /// Scenario name (from the manifest).
    pub scenario: String,
    /// Arm.
    pub arm: String,
    /// Contract.
    pub contract: String,
    /// Metric.
    pub metric: String,
    /// Mean.
    pub mean: f64,
    /// MCSE.
    pub mcse: f64,
}

/// Metrics shown by `obasim compare`.
pub const COMPARE_METRICS: [&str; 6] = [
    "payer_cost",
    "drug_paid",
    "share_of_price_paid",
    "qalys",
    "manufacturer_npv",
    "any_refund",
];

/// `mean ± mcse`, the mean rounded to the decimal place of the MCSE's second significant
/// digit (a constant, MCSE 0, keeps up to four decimals); "—" when the mean is not a number.
pub fn mean_pm(mean: f64, mcse: f64) -> String {
    if !mean.is_finite() {
        return "—".to_string();
    }
    let decimals = if mcse.is_finite() && mcse > 0.0 {
        (1 - mcse.log10().floor() as i32).clamp(0, 8) as usize
    } else if mean == mean.round() {
        0
    } else {
        4
    };
    format!("{mean:.decimals$} ± {mcse:.decimals$}")
}

/// A plain-text table: each column as wide as its widest cell; the first `text_columns`
/// columns left-aligned, the others (figures) right-aligned; two spaces between columns.
pub fn aligned(rows: &[Vec<String>], text_columns: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let w = width[c];
                if c < text_columns {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Reads the key metrics ([`COMPARE_METRICS`]) of finished run directories, in the order
/// given.
pub fn compare(dirs: &[std::path::PathBuf]) -> Result<Vec<CompareRow>, String> {
    compare_metrics(dirs, &COMPARE_METRICS)
}

/// Reads the given metrics of `summary.csv` of finished run directories, in the order given
/// (metrics a run does not have are left out).
pub fn compare_metrics(
    dirs: &[std::path::PathBuf],
    metrics: &[&str],
) -> Result<Vec<CompareRow>, String> {
    let mut rows = Vec::new();
    for d in dirs {
        let summary = d.join("summary.csv");
        let mut reader = csv::Reader::from_path(&summary)
            .map_err(|e| format!("{}: not a finished run directory ({e})", d.display()))?;
        let scenario = std::fs::read_to_string(d.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["scenario_name"].as_str().map(str::to_string))
            .unwrap_or_default();
        let headers = reader
            .headers()
            .map_err(|e| format!("{}: {e}", summary.display()))?
            .clone();
        let col = |n: &str| {
            headers
                .iter()
                .position(|h| h == n)
                .ok_or_else(|| format!("{}: no column `{n}`", summary.display()))
        };
        let (ia, ic, im, imean, ise) = (
            col("arm")?,
            col("contract")?,
            col("metric")?,
            col("mean")?,
            col("mcse")?,
        );
        // Subgroup rows (runs with `population.subgroups`) are not the run's results.
        let isub = headers.iter().position(|h| h == "subgroup");
        for rec in reader.records() {
            let rec = rec.map_err(|e| format!("{}: {e}", summary.display()))?;
            if !metrics.contains(&&rec[im]) {
                continue;
            }
            if isub.is_some_and(|i| &rec[i] != crate::output::ALL_PATIENTS) {
                continue;
            }
            let num = |i: usize| rec[i].parse::<f64>().unwrap_or(f64::NAN);
            rows.push(CompareRow {
                run: d.display().to_string(),
                scenario: scenario.clone(),
                arm: rec[ia].to_string(),
                contract: rec[ic].to_string(),
                metric: rec[im].to_string(),
                mean: num(imean),
                mcse: num(ise),
            });
        }
    }
    Ok(rows)
}
