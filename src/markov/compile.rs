//! Checks an arm's `[arms.markov]` table and compiles it into a [`DiscreteArm`]. Errors are
//! returned as (field path, message) pairs for `model::build` to locate.

use super::{point_weights, split_of, DiscreteArm, DiscreteExit, Value};
use crate::model::build::unknown_name;
use crate::scenario::{Arm, Counting, CycleDiscounting, Markov, Num};

/// Most cycles in a discrete-time arm.
pub const MAX_CYCLES: usize = 100_000;
/// Tolerance on a row of probabilities summing to at most 1.
pub const ROW_TOLERANCE: f64 = 1e-9;

/// What the compile step needs from the rest of the scenario.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// Horizon in years.
    pub horizon: f64,
    /// Annual discount rate of costs.
    pub discount_costs: f64,
    /// Annual discount rate of outcomes.
    pub discount_outcomes: f64,
    /// Youngest and oldest age at treatment.
    pub ages: (f64, f64),
}

/// The result of compiling one arm's Markov table.
#[derive(Debug, Default)]
pub struct Compiled {
    /// The arm, when there were no errors.
    pub arm: Option<DiscreteArm>,
    /// (field, message) errors.
    pub errors: Vec<(String, String)>,
    /// (from, to) moves that are possible, for the reachability warning.
    pub edges: Vec<(usize, usize)>,
}

/// The value of number `n` at `field` (NaN, with an error, if it has none).
fn resolve(
    value: &dyn Fn(&Num) -> Result<f64, String>,
    errs: &mut Vec<(String, String)>,
    field: String,
    n: &Num,
) -> f64 {
    match value(n) {
        Ok(v) => v,
        Err(m) => {
            errs.push((field, m));
            f64::NAN
        }
    }
}

/// Compiles `mk`, the Markov table of arm `arm` (field path `f`), whose death state is
/// `death`. `costs[s]` is state s's cost per year; `value` gives each number of the table
/// its value in this run.
pub fn compile(
    arm: &Arm,
    mk: &Markov,
    f: &str,
    death: usize,
    costs: &[f64],
    ctx: Context,
    value: &dyn Fn(&Num) -> Result<f64, String>,
) -> Compiled {
    let mut out = Compiled::default();
    let mf = format!("{f}.markov");
    let mut errs: Vec<(String, String)> = Vec::new();
    macro_rules! err {
        ($field:expr, $msg:expr $(,)?) => {
            errs.push(($field, $msg))
        };
    }
    let names: Vec<&str> = arm.states.iter().map(|s| s.name.as_str()).collect();
    let ns = names.len();
    if !arm.transitions.is_empty() {
        err!(
            format!("{f}.transitions"),
            "a discrete-time arm (with [arms.markov]) takes its transitions in `markov.transitions` (per-cycle probabilities), not time-to-event `transitions`".into(),
        );
    }
    let h = ctx.horizon;
    let dt_in = mk.cycle_length;
    let mut cycles = 0usize;
    if !(dt_in.is_finite() && dt_in > 0.0) {
        err!(
            format!("{mf}.cycle_length"),
            format!("{dt_in} is not allowed: a cycle length in years > 0"),
        );
    } else if h.is_finite() && h > 0.0 {
        let n = (h / dt_in).round();
        if n < 1.0 || (n * dt_in - h).abs() > 1e-6 * h {
            err!(
                format!("{mf}.cycle_length"),
                format!(
                    "{dt_in} is not allowed: the horizon ({h} years) must be a whole number of cycles ({:.4} cycles)",
                    h / dt_in
                ),
            );
        } else if n as usize > MAX_CYCLES {
            err!(
                format!("{mf}.cycle_length"),
                format!("{dt_in} is not allowed: at most {MAX_CYCLES} cycles in the horizon"),
            );
        } else {
            cycles = n as usize;
        }
    }
    if mk.counting == Counting::Simpson && cycles % 2 == 1 {
        err!(
            format!("{mf}.counting"),
            format!("\"simpson\" needs an even number of cycles; the horizon has {cycles}"),
        );
    }
    let dt = if cycles > 0 { h / cycles as f64 } else { 1.0 };
    let in_horizon = |v: f64| v.is_finite() && v >= 0.0 && v <= h + 1e-9;

    // --- transitions
    let mut exits: Vec<Vec<DiscreteExit>> = vec![Vec::new(); ns];
    let mut move_cost = vec![vec![0.0; ns]; ns];
    let mut move_qalys = vec![vec![0.0; ns]; ns];
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for (ti, tr) in mk.transitions.iter().enumerate() {
        let tf = format!("{mf}.transitions[{ti}]");
        let from = names.iter().position(|n| *n == tr.from);
        let to = names.iter().position(|n| *n == tr.to);
        if from.is_none() {
            err!(
                format!("{tf}.from"),
                unknown_name(&tr.from, "a state of this arm", "states", &names),
            );
        }
        if to.is_none() {
            err!(
                format!("{tf}.to"),
                unknown_name(&tr.to, "a state of this arm", "states", &names),
            );
        }
        let given: Vec<&str> = [
            ("probability", tr.probability.is_some()),
            ("rate", tr.rate.is_some()),
            ("probabilities", !tr.probabilities.is_empty()),
            ("rates", !tr.rates.is_empty()),
            ("probability_by_age", !tr.probability_by_age.is_empty()),
            ("rate_by_age", !tr.rate_by_age.is_empty()),
        ]
        .iter()
        .filter(|x| x.1)
        .map(|x| x.0)
        .collect();
        if given.len() != 1 {
            err!(
                tf.clone(),
                format!(
                    "give exactly one of probability, rate, probabilities, rates, probability_by_age, rate_by_age (given: {})",
                    if given.is_empty() { "none".to_string() } else { given.join(", ") }
                ),
            );
            continue;
        }
        let prob_ok = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        let rate_ok = |v: f64| v.is_finite() && v >= 0.0;
        let check_list = |errs: &mut Vec<(String, String)>,
                          field: &str,
                          vals: &[f64],
                          ok: &dyn Fn(f64) -> bool,
                          what: &str| {
            for (k, v) in vals.iter().enumerate() {
                if !ok(*v) {
                    errs.push((
                        format!("{tf}.{field}[{k}]"),
                        format!("{v} is not allowed: {what}"),
                    ));
                }
            }
        };
        let list = |errs: &mut Vec<(String, String)>, field: &str, v: &[Num]| -> Vec<f64> {
            v.iter()
                .enumerate()
                .map(|(k, n)| resolve(value, errs, format!("{tf}.{field}[{k}]"), n))
                .collect()
        };
        let opt = |errs: &mut Vec<(String, String)>, field: &str, v: &Option<Num>| {
            v.as_ref()
                .map(|n| resolve(value, errs, format!("{tf}.{field}"), n))
        };
        let probability = opt(&mut errs, "probability", &tr.probability);
        let rate = opt(&mut errs, "rate", &tr.rate);
        let hazard_ratio = opt(&mut errs, "hazard_ratio", &tr.hazard_ratio);
        let relative_risk = opt(&mut errs, "relative_risk", &tr.relative_risk);
        let effect_from = opt(&mut errs, "effect_from", &tr.effect_from);
        let effect_until = opt(&mut errs, "effect_until", &tr.effect_until);
        let move_cost_value = resolve(value, &mut errs, format!("{tf}.cost"), &tr.cost);
        let move_qalys_value = resolve(value, &mut errs, format!("{tf}.qalys"), &tr.qalys);
        let probabilities = list(&mut errs, "probabilities", &tr.probabilities);
        let rates = list(&mut errs, "rates", &tr.rates);
        let by_age =
            |errs: &mut Vec<(String, String)>, field: &str, rows: &[[Num; 2]]| -> Vec<[f64; 2]> {
                rows.iter()
                    .enumerate()
                    .map(|(k, [a, b])| {
                        let f = format!("{tf}.{field}[{k}]");
                        [
                            resolve(value, errs, f.clone(), a),
                            resolve(value, errs, f, b),
                        ]
                    })
                    .collect()
            };
        let probability_by_age = by_age(&mut errs, "probability_by_age", &tr.probability_by_age);
        let rate_by_age = by_age(&mut errs, "rate_by_age", &tr.rate_by_age);
        let value = if let Some(p) = probability {
            check_list(
                &mut errs,
                "probability",
                &[p],
                &prob_ok,
                "a probability in [0, 1]",
            );
            Value::Probability(p)
        } else if let Some(r) = rate {
            check_list(&mut errs, "rate", &[r], &rate_ok, "a rate per year >= 0");
            Value::Rate(r)
        } else if !probabilities.is_empty() {
            check_list(
                &mut errs,
                "probabilities",
                &probabilities,
                &prob_ok,
                "a probability in [0, 1]",
            );
            Value::ProbabilityByCycle(probabilities)
        } else if !rates.is_empty() {
            check_list(&mut errs, "rates", &rates, &rate_ok, "a rate per year >= 0");
            Value::RateByCycle(rates)
        } else {
            let (field, rows, is_rate) = if !probability_by_age.is_empty() {
                ("probability_by_age", &probability_by_age, false)
            } else {
                ("rate_by_age", &rate_by_age, true)
            };
            let mut prev = f64::NEG_INFINITY;
            for (k, [age, v]) in rows.iter().copied().enumerate() {
                let ok = if is_rate { rate_ok(v) } else { prob_ok(v) };
                if !(age.is_finite() && age > prev && ok) {
                    err!(
                        format!("{tf}.{field}[{k}]"),
                        format!(
                            "[{age}, {v}] is not allowed: ages must increase and values be {}",
                            if is_rate {
                                "rates >= 0"
                            } else {
                                "probabilities in [0, 1]"
                            }
                        ),
                    );
                }
                prev = age;
            }
            if rows[0][0] > ctx.ages.0 {
                err!(
                    format!("{tf}.{field}[0]"),
                    format!(
                        "the table starts at age {}, after the youngest age at treatment ({})",
                        rows[0][0], ctx.ages.0
                    ),
                );
            }
            let t: Vec<(f64, f64)> = rows.iter().map(|r| (r[0], r[1])).collect();
            if is_rate {
                Value::RateByAge(t)
            } else {
                Value::ProbabilityByAge(t)
            }
        };
        let hr = hazard_ratio.unwrap_or(1.0);
        let rr = relative_risk.unwrap_or(1.0);
        for (field, v) in [("hazard_ratio", hr), ("relative_risk", rr)] {
            if !(v.is_finite() && v >= 0.0) {
                err!(
                    format!("{tf}.{field}"),
                    format!("{v} is not allowed: a ratio >= 0"),
                );
            }
        }
        let e0 = effect_from.unwrap_or(0.0);
        let e1 = effect_until.unwrap_or(f64::INFINITY);
        if !in_horizon(e0) {
            err!(
                format!("{tf}.effect_from"),
                format!("{e0} is not allowed: a time in [0, horizon]"),
            );
        }
        if tr.effect_until.is_some() && !(in_horizon(e1) && e1 > e0) {
            err!(
                format!("{tf}.effect_until"),
                format!("{e1} is not allowed: a time in (effect_from, horizon]"),
            );
        }
        if (tr.effect_from.is_some() || tr.effect_until.is_some())
            && tr.hazard_ratio.is_none()
            && tr.relative_risk.is_none()
        {
            err!(
                tf.clone(),
                "effect_from/effect_until limit a hazard_ratio or relative_risk; give one".into(),
            );
        }
        for (field, v) in [("cost", move_cost_value), ("qalys", move_qalys_value)] {
            if !v.is_finite() {
                err!(
                    format!("{tf}.{field}"),
                    format!("{v} is not allowed: a finite number"),
                );
            }
        }
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if from == to {
            err!(
                format!("{tf}.to"),
                "a transition must lead to another state (staying is the remainder of the row)"
                    .into(),
            );
            continue;
        }
        if from == death {
            err!(
                format!("{tf}.from"),
                "the death state is absorbing: no transition may leave it".into(),
            );
            continue;
        }
        if seen.contains(&(from, to)) {
            err!(
                tf.clone(),
                format!(
                    "the move `{}` → `{}` is given twice",
                    names[from], names[to]
                ),
            );
            continue;
        }
        seen.push((from, to));
        move_cost[from][to] = move_cost_value;
        move_qalys[from][to] = move_qalys_value;
        exits[from].push(DiscreteExit {
            to,
            value,
            hazard_ratio: hr,
            relative_risk: rr,
            effect: (e0, e1),
            by_cycle: None,
        });
    }
    out.edges = seen.clone();
    if mk.background_mortality {
        for s in 0..ns {
            if s != death {
                out.edges.push((s, death));
            }
        }
    }

    // --- extra costs
    let mut extra: Vec<(Vec<bool>, f64, f64, f64)> = Vec::new();
    for (ei, x) in mk.extra_costs.iter().enumerate() {
        let xf = format!("{mf}.extra_costs[{ei}]");
        let mut mask = vec![false; ns];
        for (k, st) in x.states.iter().enumerate() {
            match names.iter().position(|n| n == st) {
                Some(j) if j == death => err!(
                    format!("{xf}.states[{k}]"),
                    "the death state accrues no cost (use its entry_cost for a cost at death)"
                        .into(),
                ),
                Some(j) => mask[j] = true,
                None => err!(
                    format!("{xf}.states[{k}]"),
                    unknown_name(st, "a state of this arm", "states", &names),
                ),
            }
        }
        if x.states.is_empty() {
            err!(format!("{xf}.states"), "list at least one state".into());
        }
        let cost = resolve(value, &mut errs, format!("{xf}.cost"), &x.cost);
        if !cost.is_finite() {
            err!(
                format!("{xf}.cost"),
                format!("{cost} is not allowed: a finite cost per year"),
            );
        }
        let a = x
            .from
            .as_ref()
            .map_or(0.0, |n| resolve(value, &mut errs, format!("{xf}.from"), n));
        let b = x.until.as_ref().map_or(f64::INFINITY, |n| {
            resolve(value, &mut errs, format!("{xf}.until"), n)
        });
        if !in_horizon(a) {
            err!(
                format!("{xf}.from"),
                format!("{a} is not allowed: a time in [0, horizon]"),
            );
        }
        if x.until.is_some() && !(in_horizon(b) && b > a) {
            err!(
                format!("{xf}.until"),
                format!("{b} is not allowed: a time in (from, horizon]"),
            );
        }
        extra.push((mask, cost, a, b));
    }

    out.errors = errs;
    if !out.errors.is_empty() || cycles == 0 {
        return out;
    }

    // --- compile
    let n = cycles;
    let split = split_of(mk.counting, n);
    let weights = point_weights(&split);
    let time = |k: usize| -> f64 {
        if k >= n {
            h
        } else {
            k as f64 * h / n as f64
        }
    };
    let disc = |r: f64| -> Vec<f64> {
        (0..=n)
            .map(|k| match mk.discounting {
                CycleDiscounting::Annual => (-r.ln_1p() * time(k)).exp(),
                CycleDiscounting::PerCycle => (-(r * dt).ln_1p() * k as f64).exp(),
            })
            .collect()
    };
    let tol = 1e-9 * dt;
    let cycle_cost = |s: usize, c: usize| -> f64 {
        let t = time(c);
        costs[s]
            + extra
                .iter()
                .filter(|x| x.0[s] && t >= x.2 - tol && t < x.3 - tol)
                .map(|x| x.1)
                .sum::<f64>()
    };
    let point_cost: Vec<Vec<f64>> = (0..ns)
        .map(|s| {
            (0..=n)
                .map(|k| {
                    let a = if k < n {
                        split[k].0 * cycle_cost(s, k)
                    } else {
                        0.0
                    };
                    let b = if k > 0 {
                        split[k - 1].1 * cycle_cost(s, k - 1)
                    } else {
                        0.0
                    };
                    dt * (a + b)
                })
                .collect()
        })
        .collect();
    let age_dependent = exits.iter().flatten().any(|e| e.value.by_age());
    let mut d = DiscreteArm {
        cycles: n,
        horizon: h,
        dt,
        counting: mk.counting,
        split,
        disc_costs: disc(ctx.discount_costs),
        disc_outcomes: disc(ctx.discount_outcomes),
        death_first: mk.death_first,
        background: mk.background_mortality,
        death,
        exits,
        move_cost,
        move_qalys,
        point_cost,
        point_weight: weights.iter().map(|w| w * dt).collect(),
        age_dependent,
    };
    // Precompute the probabilities that do not depend on age, one per cycle.
    for s in 0..ns {
        for j in 0..d.exits[s].len() {
            if !d.exits[s][j].value.by_age() {
                let v: Vec<f64> = (0..n)
                    .map(|c| d.probability(&d.exits[s][j], c, 0.0))
                    .collect();
                d.exits[s][j].by_cycle = Some(v);
            }
        }
    }
    // Every row must be a distribution, for every cycle and every attained age that can
    // occur (by-age tables are step functions: checking each step reached is exhaustive).
    'states: for s in 0..ns {
        if d.exits[s].is_empty() {
            continue;
        }
        let cuts: Vec<f64> = d.exits[s].iter().flat_map(|e| e.value.age_cuts()).collect();
        for c in 0..n {
            let t = d.time(c);
            let mut ages = vec![ctx.ages.0];
            for &cut in &cuts {
                let a0 = cut - t;
                if a0 > ctx.ages.0 && a0 <= ctx.ages.1 {
                    ages.push(a0);
                }
            }
            for &a0 in &ages {
                let ps: Vec<(usize, f64)> = d.exits[s]
                    .iter()
                    .map(|e| (e.to, d.probability(e, c, a0)))
                    .collect();
                let bad_single = ps
                    .iter()
                    .find(|x| x.1.is_nan() || x.1 > 1.0 + ROW_TOLERANCE);
                let sum_of = |death_part: bool| -> f64 {
                    ps.iter()
                        .filter(|x| !d.death_first || (x.0 == death) == death_part)
                        .map(|x| x.1)
                        .sum()
                };
                let sums = if d.death_first {
                    vec![sum_of(false), sum_of(true)]
                } else {
                    vec![sum_of(false)]
                };
                let at = if d.age_dependent {
                    format!(" (age at treatment {a0})")
                } else {
                    String::new()
                };
                if let Some((to, p)) = bad_single {
                    out.errors.push((
                        format!("{mf}.transitions"),
                        format!(
                            "the probability of `{}` → `{}` is {p} in cycle {c}{at} (after the relative risk): at most 1",
                            names[s], names[*to]
                        ),
                    ));
                    continue 'states;
                }
                if let Some(sum) = sums.iter().find(|x| **x > 1.0 + ROW_TOLERANCE) {
                    out.errors.push((
                        format!("{mf}.transitions"),
                        format!(
                            "the probabilities out of `{}` sum to {sum} in cycle {c}{at}: at most 1 (staying is the remainder){}",
                            names[s],
                            if d.death_first { "; with death_first the moves to other states are conditional on surviving and sum to at most 1 by themselves" } else { "" }
                        ),
                    ));
                    continue 'states;
                }
            }
        }
    }
    if out.errors.is_empty() {
        out.arm = Some(d);
    }
    out
}
