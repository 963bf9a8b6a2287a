//! Result tables computed from a finished [`Tally`]: summary statistics with Monte Carlo
//! error, incremental cost-effectiveness, cash flows by year and state occupancy.

use crate::engine::tally::{contract_metric, FlowSeries, ARM_METRICS, CONTRACT_METRICS};
use crate::engine::Tally;
use crate::model::build::NO_CONTRACT;
use crate::model::Model;
use serde::{Deserialize, Serialize};

/// Serialises `f64` values that may be NaN or infinite (as strings), for shard files.
pub mod serde_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises a float: finite as a number, otherwise as "NaN", "inf" or "-inf".
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_str(&x.to_string())
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(x) => Ok(x),
            NumOrStr::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// One row of `summary.csv`: a metric of an (arm, contract) over patients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Arm name.
    pub arm: String,
    /// Contract name (`none` for comparators).
    pub contract: String,
    /// Metric name.
    pub metric: String,
    /// Mean over patients.
    #[serde(with = "serde_f64")]
    pub mean: f64,
    /// Monte Carlo standard error of the mean.
    #[serde(with = "serde_f64")]
    pub mcse: f64,
    /// Standard deviation over patients.
    #[serde(with = "serde_f64")]
    pub sd: f64,
    /// 2.5% quantile over patients.
    #[serde(with = "serde_f64")]
    pub p025: f64,
    /// Median over patients.
    #[serde(with = "serde_f64")]
    pub p50: f64,
    /// 97.5% quantile over patients.
    #[serde(with = "serde_f64")]
    pub p975: f64,
    /// Number of patients.
    pub n: u64,
}

/// One row of `incremental.csv`: therapy under a contract against a comparator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    #[serde(with = "serde_f64")]
    pub value: f64,
    /// Monte Carlo standard error (delta method for the ICER).
    #[serde(with = "serde_f64")]
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
    /// Administrative (assessment) costs of the contract, undiscounted.
    pub admin_costs: f64,
    /// Administrative costs, discounted.
    pub admin_costs_discounted: f64,
    /// The cost category of `other_costs` (none: every cost; then the row has payments
    /// and administrative costs too).
    pub category: Option<String>,
}

/// One row of `budget.csv`: this payer's spend on the treated cohorts in a calendar year.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetRow {
    /// Arm.
    pub arm: String,
    /// Contract (`none` for comparators).
    pub contract: String,
    /// Calendar year (1 = the first year of uptake).
    pub year: usize,
    /// Mean therapy spend (payments net of refunds, assessment costs, after the cap).
    pub mean: f64,
    /// SD of the therapy spend over simulated cohorts.
    pub sd: f64,
    /// 2.5% quantile over simulated cohorts.
    pub p025: f64,
    /// Median.
    pub p50: f64,
    /// 97.5% quantile.
    pub p975: f64,
    /// Mean amount paid back under the annual cap.
    pub cap_rebate: f64,
    /// Expected other costs (state, entry, start) of the cohorts in the year.
    pub other_costs: f64,
    /// mean + other_costs.
    pub total: f64,
    /// Number of simulated cohorts.
    pub replicates: usize,
}

/// One row of `risk.csv`: how much risk a contract leaves with the payer.
#[derive(Clone, Debug, PartialEq)]
pub struct RiskRow {
    /// Contract.
    pub contract: String,
    /// Metric name.
    pub metric: String,
    /// Threshold, for net-benefit metrics.
    pub wtp: Option<f64>,
    /// Value.
    pub value: f64,
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

/// One row of `prices.csv`: a price solved from the run (payments are linear in the list
/// price, so one run gives every price).
#[derive(Clone, Debug, PartialEq)]
pub struct PriceRow {
    /// Contract.
    pub contract: String,
    /// Comparator (empty for the parity price).
    pub comparator: String,
    /// `value_based_price` (incremental NMB = 0 at `wtp`) or `upfront_parity_price` (the
    /// list price under this contract whose expected PV paid equals paying the current list
    /// price at infusion).
    pub metric: String,
    /// Threshold (value-based prices).
    pub wtp: Option<f64>,
    /// The price.
    pub value: f64,
    /// Monte Carlo standard error (delta method).
    pub mcse: f64,
}

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
    /// `budget.csv` (empty without a `[cohort]`).
    pub budget: Vec<BudgetRow>,
    /// `risk.csv`.
    pub risk: Vec<RiskRow>,
    /// `prices.csv`.
    pub prices: Vec<PriceRow>,
    /// The results of each subgroup level (`name=level`, in the order of
    /// `population.subgroups` and each one's levels): summary, incremental, cash flow and
    /// prices, written as rows with that `subgroup` in the same files.
    pub subgroups: Vec<(String, Results)>,
}

impl Results {
    /// Computes every table from a finished tally, and its subgroups' tables.
    pub fn from_tally(model: &Model, tally: &Tally) -> Results {
        let mut r = Self::build(model, tally, true);
        let labels = model.population.characteristics.subgroup_labels();
        r.subgroups = labels
            .into_iter()
            .zip(&tally.subgroups)
            .map(|(label, t)| {
                let mut g = Self::build(model, t, true);
                // Only these tables are written by subgroup.
                g.occupancy.clear();
                g.quantiles.clear();
                g.budget.clear();
                g.risk.clear();
                (label, g)
            })
            .collect();
        r
    }

    /// Only the summary (without quantiles.csv's distributions) and incremental tables: what
    /// a PSA draw keeps. The other tables are left empty; the summary's quantiles are NaN
    /// when the tally kept no sketches ([`Tally::without_sketches`]).
    pub fn summary_from_tally(model: &Model, tally: &Tally) -> Results {
        Self::build(model, tally, false)
    }

    /// Results holding only a summary and incremental table (a PSA draw's), the other
    /// tables empty.
    pub fn with_summary(summary: Vec<SummaryRow>, incremental: Vec<IncrementalRow>) -> Results {
        Results {
            summary,
            incremental,
            cashflow: Vec::new(),
            occupancy: Vec::new(),
            quantiles: Vec::new(),
            budget: Vec::new(),
            risk: Vec::new(),
            prices: Vec::new(),
            subgroups: Vec::new(),
        }
    }

    fn build(model: &Model, tally: &Tally, full: bool) -> Results {
        let layout = tally.layout();
        let n = tally.moments.count();
        let row = |arm: &str, contract: &str, metric: &str, slot: usize| {
            let m = tally.moments.mean_sd(slot);
            let q = tally.sketch(slot).quantiles(&[0.025, 0.5, 0.975]);
            let q = |i: usize| q[i].unwrap_or(f64::NAN);
            SummaryRow {
                arm: arm.to_string(),
                contract: contract.to_string(),
                metric: metric.to_string(),
                mean: m.mean,
                mcse: m.mcse,
                sd: m.sd,
                p025: q(0),
                p50: q(1),
                p975: q(2),
                n,
            }
        };
        let mut summary = Vec::new();
        let mut quantiles = Vec::new();
        let mut distribution = |arm: &str, contract: &str, metric: &str, slot: usize| {
            if !full || !DISTRIBUTION_METRICS.contains(&metric) {
                return;
            }
            let ps: Vec<f64> = (0..=100).map(|k| k as f64 / 100.0).collect();
            let values = tally.sketch(slot).quantiles(&ps);
            for (p, value) in ps.into_iter().zip(values) {
                quantiles.push(QuantileRow {
                    arm: arm.to_string(),
                    contract: contract.to_string(),
                    metric: metric.to_string(),
                    p,
                    value: value.unwrap_or(f64::NAN),
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
            for (k, cat) in model.cost_categories.iter().enumerate() {
                for (u, suffix) in [(false, ""), (true, "_undiscounted")] {
                    let metric = format!("cost_{cat}{suffix}");
                    summary.push(row(
                        tname,
                        &contract.name,
                        &metric,
                        layout.category(therapy, k, u),
                    ));
                }
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
            for (k, cat) in model.cost_categories.iter().enumerate() {
                for (u, suffix) in [(false, ""), (true, "_undiscounted")] {
                    let metric = format!("cost_{cat}{suffix}");
                    summary.push(row(name, NO_CONTRACT, &metric, layout.category(a, k, u)));
                }
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
                        (nonnegative(var) / nf).sqrt(),
                        "",
                    ));
                }
            }
        }

        if !full {
            return Results::with_summary(summary, incremental);
        }
        let mut cashflow = Vec::new();
        let years = model.sim.years();
        let fs = FlowSeries::new(model);
        let per = |s: usize, y: usize| tally.flows.total(s, y) / nf;
        for (c, contract) in model.contracts.iter().enumerate() {
            for y in 0..years {
                cashflow.push(CashflowRow {
                    arm: tname.clone(),
                    contract: contract.name.clone(),
                    year: y,
                    payments: per(fs.payments(c), y),
                    payments_discounted: per(fs.payments(c) + 1, y),
                    other_costs: per(fs.arm_costs(therapy), y),
                    other_costs_discounted: per(fs.arm_costs(therapy) + 1, y),
                    admin_costs: per(fs.admin(c), y),
                    admin_costs_discounted: per(fs.admin(c) + 1, y),
                    category: None,
                });
            }
            category_rows(&mut cashflow, model, tally, therapy, &contract.name);
        }
        for &a in layout.comparators() {
            for y in 0..years {
                cashflow.push(CashflowRow {
                    arm: model.arms[a].name.clone(),
                    contract: NO_CONTRACT.to_string(),
                    year: y,
                    payments: 0.0,
                    payments_discounted: 0.0,
                    other_costs: per(fs.arm_costs(a), y),
                    other_costs_discounted: per(fs.arm_costs(a) + 1, y),
                    admin_costs: 0.0,
                    admin_costs_discounted: 0.0,
                    category: None,
                });
            }
            category_rows(&mut cashflow, model, tally, a, NO_CONTRACT);
        }
        let budget = budget_rows(model, tally, &cashflow);
        let risk = risk_rows(model, tally);
        let prices = price_rows(model, tally);

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
                        mcse: if nf >= 2.0 {
                            (share * (1.0 - share) / nf).sqrt()
                        } else {
                            f64::NAN
                        },
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
            budget,
            risk,
            prices,
            subgroups: Vec::new(),
        }
    }

    /// Checks that every number that will be written is finite (an ICER without a QALY
    /// difference is the one documented exception: it is written empty with a note).
    /// Returns a message naming the first offending table and row.
    pub fn check_finite(&self) -> Result<(), String> {
        self.check_finite_keeping(true)
    }

    /// [`Results::check_finite`] for a PSA draw's tables, whose summary has no quantiles
    /// (see [`Results::summary_from_tally`]).
    pub fn check_finite_draw(&self) -> Result<(), String> {
        self.check_finite_keeping(false)
    }

    fn check_finite_keeping(&self, quantiles: bool) -> Result<(), String> {
        let bad =
            |table: &str, what: String| Err(format!("{table}: {what} is not a finite number"));
        // With one patient no spread can be estimated: SDs, MCSEs and variances are
        // undefined and written empty (the run warns); everything else must be finite.
        let single = self.summary.first().is_some_and(|r| r.n < 2);
        let error_ok = |v: f64| v.is_finite() || (single && v.is_nan());
        for r in &self.summary {
            if !(error_ok(r.mcse) && error_ok(r.sd)) {
                return bad(
                    "summary.csv",
                    format!("mcse or sd of {} / {} / {}", r.arm, r.contract, r.metric),
                );
            }
            let checked = if quantiles { 4 } else { 1 };
            for (name, v) in [
                ("mean", r.mean),
                ("p025", r.p025),
                ("p50", r.p50),
                ("p975", r.p975),
            ]
            .into_iter()
            .take(checked)
            {
                if !v.is_finite() {
                    return bad(
                        "summary.csv",
                        format!("{} of {} / {} / {}", name, r.arm, r.contract, r.metric),
                    );
                }
            }
        }
        for r in &self.incremental {
            let exempt = r.metric == "icer" && r.note == "no QALY difference";
            let finite = r.value.is_finite() && error_ok(r.mcse);
            if !(exempt || finite) {
                return bad(
                    "incremental.csv",
                    format!("{} of {} vs {}", r.metric, r.contract, r.comparator),
                );
            }
        }
        for r in &self.cashflow {
            if ![
                r.payments,
                r.payments_discounted,
                r.other_costs,
                r.other_costs_discounted,
                r.admin_costs,
                r.admin_costs_discounted,
            ]
            .iter()
            .all(|v| v.is_finite())
            {
                return bad(
                    "cashflow.csv",
                    format!("year {} of {} / {}", r.year, r.arm, r.contract),
                );
            }
        }
        for r in &self.occupancy {
            if !(r.share.is_finite() && error_ok(r.mcse)) {
                return bad(
                    "occupancy.csv",
                    format!("{} at {} in {}", r.state, r.time, r.arm),
                );
            }
        }
        for r in &self.quantiles {
            if !r.value.is_finite() {
                return bad(
                    "quantiles.csv",
                    format!("{} of {} / {}", r.metric, r.arm, r.contract),
                );
            }
        }
        for r in &self.budget {
            if ![
                r.mean,
                r.sd,
                r.p025,
                r.p50,
                r.p975,
                r.cap_rebate,
                r.other_costs,
                r.total,
            ]
            .iter()
            .all(|v| v.is_finite())
            {
                return bad(
                    "budget.csv",
                    format!("year {} of {} / {}", r.year, r.arm, r.contract),
                );
            }
        }
        for r in &self.risk {
            if !error_ok(r.value) {
                return bad("risk.csv", format!("{} of {}", r.metric, r.contract));
            }
        }
        for r in &self.prices {
            if !(r.value.is_finite() && error_ok(r.mcse)) {
                return bad("prices.csv", format!("{} of {}", r.metric, r.contract));
            }
        }
        Ok(())
    }

    /// The summary row of (arm, contract, metric), if any.
    pub fn summary_row(&self, arm: &str, contract: &str, metric: &str) -> Option<&SummaryRow> {
        self.summary
            .iter()
            .find(|r| r.arm == arm && r.contract == contract && r.metric == metric)
    }
}

/// The rows of `cashflow.csv` giving arm `a`'s costs by category (under `contract`), year
/// by year.
fn category_rows(
    out: &mut Vec<CashflowRow>,
    model: &Model,
    tally: &Tally,
    a: usize,
    contract: &str,
) {
    let fs = FlowSeries::new(model);
    let nf = tally.moments.count() as f64;
    for (k, cat) in model.cost_categories.iter().enumerate() {
        let s = fs.category_costs(a, k);
        for y in 0..model.sim.years() {
            out.push(CashflowRow {
                arm: model.arms[a].name.clone(),
                contract: contract.to_string(),
                year: y,
                payments: 0.0,
                payments_discounted: 0.0,
                other_costs: tally.flows.total(s, y) / nf,
                other_costs_discounted: tally.flows.total(s + 1, y) / nf,
                admin_costs: 0.0,
                admin_costs_discounted: 0.0,
                category: Some(cat.clone()),
            });
        }
    }
}

/// A variance computed as a difference of sums, with rounding below zero cut to 0; an
/// undefined one (NaN: fewer than two values) stays undefined.
fn nonnegative(var: f64) -> f64 {
    if var < 0.0 {
        0.0
    } else {
        var
    }
}

/// Quantile (inverse ECDF) of sorted values.
fn sorted_quantile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// Mean and sample SD (shifted by the first value, so a constant has SD exactly 0).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let Some(&k) = v.first() else {
        return (f64::NAN, f64::NAN);
    };
    let n = v.len() as f64;
    let s1: f64 = v.iter().map(|x| x - k).sum();
    let s2: f64 = v.iter().map(|x| (x - k) * (x - k)).sum();
    let var = if v.len() > 1 {
        ((s2 - s1 * s1 / n) / (n - 1.0)).max(0.0)
    } else {
        f64::NAN
    };
    (k + s1 / n, var.sqrt())
}

/// This payer's therapy spend per simulated cohort and calendar year, after the annual cap:
/// (undiscounted spend, discounted spend, undiscounted rebate, discounted rebate), indexed
/// [replicate][year], for contract `c`. Rebates are paid back at the end of the year.
fn cohort_spend(model: &Model, tally: &Tally, c: usize) -> Vec<Vec<(f64, f64, f64, f64)>> {
    let (Some(cm), Some(cs)) = (model.cohort.as_ref(), tally.cohort.as_ref()) else {
        return Vec::new();
    };
    (0..cs.replicates())
        .map(|r| {
            (0..cs.years())
                .map(|y| {
                    let (u, d) = cs.spend(r, c, y);
                    let rebate = cm.annual_cap.map_or(0.0, |cap| (u - cap).max(0.0));
                    let rebate_d = rebate * model.sim.costs.factor(y as f64 + 1.0);
                    (u - rebate, d - rebate_d, rebate, rebate_d)
                })
                .collect()
        })
        .collect()
}

fn budget_rows(model: &Model, tally: &Tally, cashflow: &[CashflowRow]) -> Vec<BudgetRow> {
    let Some(cm) = model.cohort.as_ref() else {
        return Vec::new();
    };
    let tname = &model.arms[model.therapy.arm].name;
    // Expected other costs of the cohorts in calendar year Y: Σ_u N_u · E[other costs in
    // year Y − u since treatment] (exact expectation from all simulated patients).
    let other = |arm: &str, contract: &str, y: usize| -> f64 {
        cm.uptake
            .iter()
            .enumerate()
            .filter(|(u, _)| *u <= y)
            .map(|(u, &n)| {
                cashflow
                    .iter()
                    .find(|r| {
                        r.arm == arm
                            && r.contract == contract
                            && r.year == y - u
                            && r.category.is_none()
                    })
                    .map_or(0.0, |r| n as f64 * r.other_costs)
            })
            .sum()
    };
    let mut rows = Vec::new();
    for (c, contract) in model.contracts.iter().enumerate() {
        let spend = cohort_spend(model, tally, c);
        let reps = spend.len();
        for y in 0..cm.years {
            let mut v: Vec<f64> = spend.iter().map(|r| r[y].0).collect();
            let rebate = spend.iter().map(|r| r[y].2).sum::<f64>() / reps as f64;
            let (mean, sd) = mean_sd(&v);
            v.sort_by(f64::total_cmp);
            let other_costs = other(tname, &contract.name, y);
            rows.push(BudgetRow {
                arm: tname.clone(),
                contract: contract.name.clone(),
                year: y + 1,
                mean,
                sd,
                p025: sorted_quantile(&v, 0.025),
                p50: sorted_quantile(&v, 0.5),
                p975: sorted_quantile(&v, 0.975),
                cap_rebate: rebate,
                other_costs,
                total: mean + other_costs,
                replicates: reps,
            });
        }
    }
    for a in model.comparators() {
        let name = &model.arms[a].name;
        for y in 0..cm.years {
            let other_costs = other(name, NO_CONTRACT, y);
            rows.push(BudgetRow {
                arm: name.clone(),
                contract: NO_CONTRACT.to_string(),
                year: y + 1,
                mean: 0.0,
                sd: 0.0,
                p025: 0.0,
                p50: 0.0,
                p975: 0.0,
                cap_rebate: 0.0,
                other_costs,
                total: other_costs,
                replicates: cm.replicates as usize,
            });
        }
    }
    rows
}

/// Risk measures per contract: per-patient payer-cost SD and the variance moved off the
/// payer relative to paying upfront; with cohorts, the SD, 95% VaR and CVaR of the payer's
/// discounted therapy spend on a treated cohort.
fn risk_rows(model: &Model, tally: &Tally) -> Vec<RiskRow> {
    let layout = tally.layout();
    let therapy = model.therapy.arm;
    // Under upfront payment the payer cost is price + other costs: its variance is that of
    // the therapy arm's other costs (the price is fixed).
    let upfront_var = tally.moments.mean_sd(layout.arm(therapy, 0)).sd.powi(2);
    let mut rows = Vec::new();
    for (c, contract) in model.contracts.iter().enumerate() {
        let mut push_at = |metric: &str, wtp: Option<f64>, value: f64| {
            rows.push(RiskRow {
                contract: contract.name.clone(),
                metric: metric.to_string(),
                wtp,
                value,
            })
        };
        let q = tally.moments.mean_sd(layout.arm(therapy, 2)).sd;
        let cov_qc = tally.moments.covariance(layout.pair_qalys_cost(c));
        let cov_qo = tally.moments.covariance(layout.pair_qalys_other());
        let sd_c = tally
            .moments
            .mean_sd(layout.contract(c, contract_metric("payer_cost")))
            .sd;
        for &w in &model.sim.wtp {
            // Var(λQ − C): how uncertain the value for money of one treated patient is.
            let var = nonnegative(w * w * q * q + sd_c * sd_c - 2.0 * w * cov_qc);
            let var_up = nonnegative(w * w * q * q + upfront_var - 2.0 * w * cov_qo);
            push_at("net_benefit_sd", Some(w), var.sqrt());
            push_at("upfront_net_benefit_sd", Some(w), var_up.sqrt());
            push_at(
                "net_benefit_variance_moved_off_payer",
                Some(w),
                var_up - var,
            );
            if var_up > 0.0 {
                push_at(
                    "net_benefit_variance_moved_off_payer_share",
                    Some(w),
                    (var_up - var) / var_up,
                );
            }
        }
        let mut push = |metric: &str, value: f64| push_at(metric, None, value);
        let sd = tally
            .moments
            .mean_sd(layout.contract(c, contract_metric("payer_cost")))
            .sd;
        push("payer_cost_sd", sd);
        push("payer_cost_variance", sd * sd);
        push("upfront_payer_cost_variance", upfront_var);
        push("variance_moved_off_payer", upfront_var - sd * sd);
        if upfront_var > 0.0 {
            push(
                "variance_moved_off_payer_share",
                (upfront_var - sd * sd) / upfront_var,
            );
        }
        let spend = cohort_spend(model, tally, c);
        if !spend.is_empty() {
            let mut pv: Vec<f64> = spend
                .iter()
                .map(|r| r.iter().map(|x| x.1).sum::<f64>())
                .collect();
            let rebates: Vec<f64> = spend
                .iter()
                .map(|r| r.iter().map(|x| x.3).sum::<f64>())
                .collect();
            let (mean, sd) = mean_sd(&pv);
            pv.sort_by(f64::total_cmp);
            let var95 = sorted_quantile(&pv, 0.95);
            let tail = ((0.05 * pv.len() as f64).ceil() as usize).max(1);
            let cvar95 = pv[pv.len() - tail..].iter().sum::<f64>() / tail as f64;
            push("cohort_replicates", pv.len() as f64);
            push("cohort_spend_pv_mean", mean);
            push("cohort_spend_pv_sd", sd);
            push("cohort_spend_pv_var95", var95);
            push("cohort_spend_pv_cvar95", cvar95);
            push("cohort_cap_rebate_pv_mean", mean_sd(&rebates).0);
        }
    }
    rows
}

/// Prices solved from one run. Payments scale with the list price P: drug paid = P·K with K
/// the PV paid per unit of price. The value-based price at λ solves
/// E[λΔQ − (ΔC − paid)] = p·E[K]; its MCSE comes from the delta method on the ratio of means
/// (with the covariances of ΔQ, ΔC and paid over patients).
fn price_rows(model: &Model, tally: &Tally) -> Vec<PriceRow> {
    let layout = tally.layout();
    let price = model.therapy.list_price;
    let n = tally.moments.count() as f64;
    let mut rows = Vec::new();
    if price <= 0.0 || n < 1.0 {
        return rows;
    }
    for (c, contract) in model.contracts.iter().enumerate() {
        let paid_slot = layout.contract(c, contract_metric("drug_paid"));
        let paid = tally.moments.mean_sd(paid_slot);
        if paid.mean > 0.0 {
            // Upfront at infusion pays P (PV P); under this contract P' gives P'·K.
            let k = paid.mean / price;
            rows.push(PriceRow {
                contract: contract.name.clone(),
                comparator: String::new(),
                metric: "upfront_parity_price".into(),
                wtp: None,
                value: price / k,
                mcse: price / k * paid.mcse / paid.mean,
            });
        }
        for (kk, &a) in layout.comparators().iter().enumerate() {
            let dc = tally.moments.mean_sd(layout.incremental(c, kk, 0));
            let dq = tally.moments.mean_sd(layout.incremental(c, kk, 1));
            let cov_cq = tally.moments.covariance(layout.pair(c, kk));
            let (i_cp, i_qp) = layout.pairs_paid(c, kk);
            let (cov_cp, cov_qp) = (
                tally.moments.covariance(i_cp),
                tally.moments.covariance(i_qp),
            );
            let var_p = paid.sd * paid.sd;
            let b = paid.mean / price;
            if b <= 0.0 {
                continue;
            }
            for &w in &model.sim.wtp {
                // A = λΔQ − ΔC + paid; B = paid / P.
                let a_mean = w * dq.mean - dc.mean + paid.mean;
                let var_a = w * w * dq.sd * dq.sd + dc.sd * dc.sd + var_p - 2.0 * w * cov_cq
                    + 2.0 * w * cov_qp
                    - 2.0 * cov_cp;
                let cov_ab = (w * cov_qp - cov_cp + var_p) / price;
                let var_b = var_p / (price * price);
                let r = a_mean / b;
                let var_r = (var_a - 2.0 * r * cov_ab + r * r * var_b) / (b * b) / n;
                rows.push(PriceRow {
                    contract: contract.name.clone(),
                    comparator: model.arms[a].name.clone(),
                    metric: "value_based_price".into(),
                    wtp: Some(w),
                    value: r,
                    mcse: nonnegative(var_r).sqrt(),
                });
            }
        }
    }
    rows
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
    (r, nonnegative(var).sqrt(), note)
}
