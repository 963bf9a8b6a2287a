//! The exact (deterministic) cohort calculation of discrete-time arms.
//!
//! State-occupancy vectors m_(k+1) = m_k P_k are propagated through the same rows the
//! microsimulation draws from and multiplied by the same per-point weights and discount
//! factors, so the microsimulation's means converge to these numbers. The population enters
//! only through background mortality (by sex, exactly) and by-age transitions (which need a
//! fixed age at treatment).
//!
//! Contracts on a discrete therapy arm are evaluated exactly on the Markov chain, augmented
//! with what the contract needs to remember: whether each `entered`/`not_entered` outcome's
//! states have been entered, whether the schedule has ended (stop for good after a failed
//! condition, stop at death), whether the warranty outcome has failed, whether anything has
//! been paid, whether any scheduled amount went unpaid, and the expected amount paid so far
//! (for refunds). This covers upfront, installments (with interest, stopping at death with
//! forfeit or acceleration), conditional installments (`in_state`, `not_in_state`, `entered`,
//! `not_entered`, `alive`; stop or resume after a failure), milestones, warranties with any
//! prorating, manufacturer default, and churn that does not stop payments. It refuses (with
//! the reason) contracts observed through an assessment plan, contracts stopped by churn,
//! floors, and caps below the schedule's total.

use super::DiscreteArm;
use crate::accounting::ArmTotals;
use crate::contracts::{ContractTerms, Installment, OnStop, OutcomeTest};
use crate::engine::tally::CONTRACT_METRICS;
use crate::model::lifetable::Sex;
use crate::model::population::AgeModel;
use crate::model::{ArmModel, Model};
use crate::scenario::AfterFailure;

/// The cohort result of one arm.
#[derive(Clone, Debug)]
pub struct CohortArm {
    /// Arm name.
    pub name: String,
    /// Expected per-patient totals, or why they were not computed.
    pub totals: Result<ArmTotals, String>,
    /// Occupancy at each point t_0 … t_n (rows) by state (columns); empty if not computed.
    pub trace: Vec<Vec<f64>>,
    /// Times of the points.
    pub times: Vec<f64>,
}

/// The cohort result of one contract on the therapy arm.
#[derive(Clone, Debug)]
pub struct CohortContract {
    /// Contract name.
    pub name: String,
    /// Expected value of each metric in [`CONTRACT_METRICS`] order, or why the contract
    /// cannot be evaluated exactly.
    pub values: Result<Vec<f64>, String>,
}

/// The exact cohort results of a model.
#[derive(Clone, Debug)]
pub struct CohortResult {
    /// One per arm, in model order.
    pub arms: Vec<CohortArm>,
    /// One per contract.
    pub contracts: Vec<CohortContract>,
    /// Index of the therapy arm.
    pub therapy: usize,
}

impl CohortResult {
    /// The expected value of contract metric `metric` of contract `name`.
    pub fn contract_metric(&self, name: &str, metric: &str) -> Result<f64, String> {
        let c = self
            .contracts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("no contract `{name}`"))?;
        let m = CONTRACT_METRICS
            .iter()
            .position(|x| *x == metric)
            .ok_or_else(|| format!("no contract metric `{metric}`"))?;
        c.values.as_ref().map(|v| v[m]).map_err(|e| e.clone())
    }

    /// The expected totals of arm `name`.
    pub fn arm(&self, name: &str) -> Result<&ArmTotals, String> {
        let a = self
            .arms
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| format!("no arm `{name}`"))?;
        a.totals.as_ref().map_err(|e| e.clone())
    }
}

/// A homogeneous part of the cohort: its weight, age at treatment and sex (when background
/// mortality applies).
#[derive(Clone, Copy, Debug)]
struct Stratum {
    weight: f64,
    age: f64,
    sex: Option<Sex>,
}

fn strata(model: &Model, d: &DiscreteArm) -> Result<Vec<Stratum>, String> {
    let pop = &model.population;
    if !pop.characteristics.is_empty() {
        return Err("the population has characteristics beyond sex and age (or a patient table): the exact cohort calculation covers a fixed age and the share female only".into());
    }
    let needs_age = d.age_dependent || d.background;
    let age = match pop.age {
        AgeModel::Fixed(a) => a,
        _ if needs_age => {
            return Err("the arm depends on age (by-age transitions or background mortality) and the age at treatment is a distribution: the exact cohort calculation needs a fixed `population.age`".into())
        }
        _ => pop.age.min(),
    };
    if !d.background {
        return Ok(vec![Stratum {
            weight: 1.0,
            age,
            sex: None,
        }]);
    }
    let f = pop.share_female;
    Ok([(f, Sex::Female), (1.0 - f, Sex::Male)]
        .into_iter()
        .filter(|x| x.0 > 0.0)
        .map(|(weight, sex)| Stratum {
            weight,
            age,
            sex: Some(sex),
        })
        .collect())
}

/// The transition matrices of a stratum, one per cycle (row-major S × S).
fn matrices(model: &Model, d: &DiscreteArm, ns: usize, st: &Stratum) -> Vec<Vec<f64>> {
    (0..d.cycles)
        .map(|c| {
            let q = match st.sex {
                Some(sex) if d.background => {
                    let s0 = model.population.background_survival(sex, st.age, d.time(c));
                    let s1 = model
                        .population
                        .background_survival(sex, st.age, d.time(c + 1));
                    if s0 > 0.0 {
                        1.0 - s1 / s0
                    } else {
                        1.0
                    }
                }
                _ => 0.0,
            };
            let mut m = vec![0.0; ns * ns];
            for s in 0..ns {
                d.row(s, c, st.age, q, &mut m[s * ns..(s + 1) * ns]);
            }
            m
        })
        .collect()
}

fn initial(arm: &ArmModel) -> Vec<f64> {
    let mut prev = 0.0;
    arm.initial_cumulative
        .iter()
        .map(|&c| {
            let p = c - prev;
            prev = c;
            p
        })
        .collect()
}

fn trace_of(init: &[f64], mats: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let ns = init.len();
    let mut out = vec![init.to_vec()];
    for m in mats {
        let cur = out.last().expect("non-empty");
        let mut next = vec![0.0; ns];
        for i in 0..ns {
            if cur[i] != 0.0 {
                for j in 0..ns {
                    next[j] += cur[i] * m[i * ns + j];
                }
            }
        }
        out.push(next);
    }
    out
}

/// Expected totals of one stratum, by the same rules as [`super::account`].
fn totals_of(
    model: &Model,
    arm: &ArmModel,
    d: &DiscreteArm,
    tr: &[Vec<f64>],
    mats: &[Vec<f64>],
) -> ArmTotals {
    let ns = arm.states.len();
    let churn = |t: f64| model.churn.as_ref().map_or(1.0, |f| f.survival(t));
    let mut t = ArmTotals {
        other_costs: arm.start_cost,
        other_costs_undiscounted: arm.start_cost,
        ..ArmTotals::default()
    };
    for s in 0..ns {
        let e = arm.states[s].entry_cost * tr[0][s];
        t.other_costs += e * d.disc_costs[0];
        t.other_costs_undiscounted += e;
    }
    for (k, m) in tr.iter().enumerate() {
        let (dc, dout, w) = (d.disc_costs[k], d.disc_outcomes[k], d.point_weight[k]);
        let sc = churn(d.time(k));
        for s in 0..ns {
            if s == d.death || m[s] == 0.0 {
                continue;
            }
            t.life_years += m[s] * w * dout;
            t.life_years_undiscounted += m[s] * w;
            let u = arm.states[s].utility;
            t.qalys += m[s] * u * w * dout;
            t.qalys_undiscounted += m[s] * u * w;
            let c = m[s] * d.point_cost[s][k] * sc;
            t.other_costs += c * dc;
            t.other_costs_undiscounted += c;
        }
        if k == 0 {
            continue;
        }
        // Moves during cycle k − 1, entered at t_k.
        let p = &mats[k - 1];
        let prev = &tr[k - 1];
        for i in 0..ns {
            for j in 0..ns {
                if i == j || prev[i] == 0.0 {
                    continue;
                }
                let flow = prev[i] * p[i * ns + j];
                if flow == 0.0 {
                    continue;
                }
                let once = (arm.states[j].entry_cost + d.move_cost[i][j]) * flow * sc;
                t.other_costs += once * dc;
                t.other_costs_undiscounted += once;
                let q = d.move_qalys[i][j] * flow;
                t.qalys += q * dout;
                t.qalys_undiscounted += q;
            }
        }
    }
    t
}

fn add_totals(acc: &mut ArmTotals, x: &ArmTotals, w: f64) {
    acc.other_costs += w * x.other_costs;
    acc.other_costs_undiscounted += w * x.other_costs_undiscounted;
    acc.qalys += w * x.qalys;
    acc.qalys_undiscounted += w * x.qalys_undiscounted;
    acc.life_years += w * x.life_years;
    acc.life_years_undiscounted += w * x.life_years_undiscounted;
}

/// The exact cohort calculation of every discrete-time arm of `model`, and of every contract
/// when the therapy arm is discrete. Continuous-time arms are reported as not computed.
pub fn cohort(model: &Model) -> CohortResult {
    let mut arms = Vec::new();
    let mut therapy_strata = None;
    for (a, arm) in model.arms.iter().enumerate() {
        let Some(d) = &arm.discrete else {
            arms.push(CohortArm {
                name: arm.name.clone(),
                totals: Err("continuous-time arm: no cohort calculation (use `obasim run`)".into()),
                trace: Vec::new(),
                times: Vec::new(),
            });
            continue;
        };
        let ns = arm.states.len();
        let init = initial(arm);
        let result = strata(model, d).map(|strata| {
            let mut tot = ArmTotals::default();
            let mut trace = vec![vec![0.0; ns]; d.cycles + 1];
            let mut parts = Vec::new();
            for st in &strata {
                let mats = matrices(model, d, ns, st);
                let tr = trace_of(&init, &mats);
                add_totals(&mut tot, &totals_of(model, arm, d, &tr, &mats), st.weight);
                for (acc, row) in trace.iter_mut().zip(&tr) {
                    for (x, y) in acc.iter_mut().zip(row) {
                        *x += st.weight * y;
                    }
                }
                parts.push((*st, mats));
            }
            (tot, trace, parts)
        });
        let times = (0..=d.cycles).map(|k| d.time(k)).collect();
        match result {
            Ok((tot, trace, parts)) => {
                if a == model.therapy.arm {
                    therapy_strata = Some(parts);
                }
                arms.push(CohortArm {
                    name: arm.name.clone(),
                    totals: Ok(tot),
                    trace,
                    times,
                });
            }
            Err(e) => arms.push(CohortArm {
                name: arm.name.clone(),
                totals: Err(e),
                trace: Vec::new(),
                times,
            }),
        }
    }
    let therapy = &model.arms[model.therapy.arm];
    let contracts = model
        .contracts
        .iter()
        .map(|c| {
            let values = match (&therapy.discrete, &therapy_strata, &arms[model.therapy.arm].totals) {
                (None, _, _) => Err("the therapy arm is a continuous-time arm: contracts are evaluated by `obasim run`".to_string()),
                (Some(_), None, Err(e)) | (Some(_), Some(_), Err(e)) => Err(e.clone()),
                (Some(d), Some(parts), Ok(tot)) => contract_values(model, therapy, d, c, parts, tot),
                (Some(_), None, Ok(_)) => Err("internal: no strata".to_string()),
            };
            CohortContract {
                name: c.name.clone(),
                values,
            }
        })
        .collect();
    CohortResult {
        arms,
        contracts,
        therapy: model.therapy.arm,
    }
}

/// Why a contract cannot be evaluated exactly on the chain, if it cannot.
fn refusal(model: &Model, c: &ContractTerms) -> Option<String> {
    if c.observed_by.is_some() {
        return Some("observed through an assessment plan (misclassification, missed assessments): the cohort calculation covers perfect observation only; use `obasim run`".into());
    }
    if c.stop_on_churn && model.churn.is_some() {
        return Some("payments stop when the patient leaves the payer (stop_on = [\"churn\"]): not evaluated by the cohort calculation; use `obasim run`".into());
    }
    if c.floor.is_some() {
        return Some("a floor (top-up at the end of the schedule) is not evaluated by the cohort calculation; use `obasim run`".into());
    }
    if let Some(cap) = c.cap {
        if cap < c.full_fraction() - 1e-12 {
            return Some(format!("a cap ({cap}) below the schedule's total ({}) can bind, which depends on each patient's path: not evaluated by the cohort calculation; use `obasim run`", c.full_fraction()));
        }
    }
    None
}

/// Expected sums of one stratum's contract evaluation.
#[derive(Default, Clone, Copy)]
struct Sums {
    paid: f64,
    paid_u: f64,
    revenue: f64,
    net_all: f64,
    schedule_paid: f64,
    refund: f64,
    any_refund: f64,
    refund_lost: f64,
    any_withheld: f64,
}

fn contract_values(
    model: &Model,
    arm: &ArmModel,
    d: &DiscreteArm,
    c: &ContractTerms,
    parts: &[(Stratum, Vec<Vec<f64>>)],
    totals: &ArmTotals,
) -> Result<Vec<f64>, String> {
    if let Some(r) = refusal(model, c) {
        return Err(r);
    }
    let price = model.therapy.list_price;
    let in_horizon = c.schedule.partition_point(|i| i.time <= d.horizon);
    let sched = &c.schedule[..in_horizon];
    let mut s = Sums::default();
    for (st, mats) in parts {
        let x = chain(model, arm, d, c, sched, mats)?;
        let w = st.weight;
        s.paid += w * x.paid;
        s.paid_u += w * x.paid_u;
        s.revenue += w * x.revenue;
        s.net_all += w * x.net_all;
        s.schedule_paid += w * x.schedule_paid;
        s.refund += w * x.refund;
        s.any_refund += w * x.any_refund;
        s.refund_lost += w * x.refund_lost;
        s.any_withheld += w * x.any_withheld;
    }
    let due: f64 = sched.iter().map(|i| i.fraction * price).sum();
    let mut v = vec![0.0; CONTRACT_METRICS.len()];
    v[0] = s.paid + totals.other_costs;
    v[1] = s.paid;
    v[2] = s.paid_u;
    v[3] = s.revenue - model.therapy.cost_of_goods;
    v[4] = if price > 0.0 { s.net_all / price } else { 0.0 };
    v[5] = s.refund;
    v[6] = s.any_refund;
    v[7] = (due - s.schedule_paid).max(0.0);
    v[8] = s.any_withheld;
    v[9] = 0.0;
    v[10] = 0.0;
    v[11] = 0.0;
    v[12] = s.refund_lost;
    Ok(v)
}

/// The augmented chain of one stratum: index = flags · S + state.
struct Aug<'a> {
    ns: usize,
    death: usize,
    /// Outcomes whose history (entered or not) is remembered, with their bit.
    memory: Vec<(usize, &'a [bool])>,
    ended: usize,
    wfail: usize,
    paid: usize,
    short: usize,
    size: usize,
    outcomes: &'a [crate::contracts::OutcomeDef],
}

impl Aug<'_> {
    fn holds(&self, o: usize, s: usize, flags: usize) -> bool {
        let bit = || {
            self.memory
                .iter()
                .position(|m| m.0 == o)
                .map(|b| flags & (1 << b) != 0)
                .expect("memory bit of an entered outcome")
        };
        match &self.outcomes[o].test {
            OutcomeTest::InState(m) => m[s],
            OutcomeTest::NotInState(m) => !m[s],
            OutcomeTest::Entered(_) => bit(),
            OutcomeTest::NotEntered(_) => !bit(),
            OutcomeTest::Alive => s != self.death,
        }
    }

    fn enter(&self, s: usize, flags: usize) -> usize {
        let mut f = flags;
        for (b, (_, mask)) in self.memory.iter().enumerate() {
            if mask[s] {
                f |= 1 << b;
            }
        }
        f
    }
}

fn chain(
    model: &Model,
    arm: &ArmModel,
    d: &DiscreteArm,
    c: &ContractTerms,
    sched: &[Installment],
    mats: &[Vec<f64>],
) -> Result<Sums, String> {
    let outcomes = &model.outcomes;
    let mut used: Vec<usize> = sched.iter().filter_map(|i| i.condition).collect();
    if let Some(w) = &c.warranty {
        used.push(w.outcome);
    }
    used.sort_unstable();
    used.dedup();
    let memory: Vec<(usize, &[bool])> = used
        .iter()
        .filter_map(|&o| match &outcomes[o].test {
            OutcomeTest::Entered(m) | OutcomeTest::NotEntered(m) => Some((o, m.as_slice())),
            _ => None,
        })
        .collect();
    if memory.len() > 4 {
        return Err("more than 4 `entered`/`not_entered` outcomes in one contract: not evaluated by the cohort calculation".into());
    }
    let ns = arm.states.len();
    let b = memory.len();
    let aug = Aug {
        ns,
        death: d.death,
        memory,
        ended: 1 << b,
        wfail: 1 << (b + 1),
        paid: 1 << (b + 2),
        short: 1 << (b + 3),
        size: ns << (b + 4),
        outcomes,
    };
    let price = model.therapy.list_price;
    let (disc_c, disc_m) = (&model.sim.costs, &model.sim.manufacturer);
    let default_survival = |t: f64| {
        model
            .manufacturer_default
            .as_ref()
            .map_or(1.0, |f| f.survival(t))
    };
    let m = sched.len();
    let rest_due: Vec<f64> = (0..=m)
        .map(|j| sched[j..].iter().map(|i| i.fraction).sum())
        .collect();
    let mut sums = Sums::default();
    let pay = |sums: &mut Sums, mass: f64, amount: f64, t: f64| {
        let x = mass * amount;
        sums.paid += x * disc_c.factor(t);
        sums.paid_u += x;
        sums.revenue += x * disc_m.factor(t);
        sums.net_all += x;
        sums.schedule_paid += x;
    };
    let mut v = vec![0.0; aug.size];
    let mut a = vec![0.0; aug.size];
    for (s, p) in initial(arm).into_iter().enumerate() {
        if p > 0.0 {
            v[aug.enter(s, 0) * ns + s] += p;
        }
    }
    let until = c.warranty.as_ref().map(|w| w.window.min(d.horizon));
    let mut j = 0usize;
    for k in 0..=d.cycles {
        let tk = d.time(k);
        if k > 0 {
            let p = &mats[k - 1];
            let mut nv = vec![0.0; aug.size];
            let mut na = vec![0.0; aug.size];
            for x in 0..aug.size {
                if v[x] == 0.0 && a[x] == 0.0 {
                    continue;
                }
                let (s, fl) = (x % ns, x / ns);
                for s2 in 0..ns {
                    let pr = p[s * ns + s2];
                    if pr == 0.0 {
                        continue;
                    }
                    let mut fl2 = aug.enter(s2, fl);
                    let mass = v[x] * pr;
                    let mut amt = a[x] * pr;
                    if c.stop_on_death && s2 == d.death && s != d.death && fl & aug.ended == 0 {
                        fl2 |= aug.ended;
                        if j < m {
                            match c.on_stop {
                                OnStop::Accelerate => {
                                    let bal = balance(c.interest, &sched[j..], tk);
                                    pay(&mut sums, mass, bal * price, tk);
                                    amt += mass * bal * price;
                                    if bal * price > 0.0 {
                                        fl2 |= aug.paid;
                                    }
                                    if bal < rest_due[j] * (1.0 - 1e-12) {
                                        fl2 |= aug.short;
                                    }
                                }
                                OnStop::Forfeit => {
                                    if rest_due[j] > 0.0 {
                                        fl2 |= aug.short;
                                    }
                                }
                            }
                        }
                    }
                    let y = fl2 * ns + s2;
                    nv[y] += mass;
                    na[y] += amt;
                }
            }
            v = nv;
            a = na;
        }
        // Installments due exactly at t_k, then the warranty at t_k, then the rest of the
        // cycle's installments (the state at a time is the state at the last point at or
        // before it).
        while j < m && sched[j].time <= tk {
            installment(
                &aug,
                c,
                &sched[j],
                rest_due[j + 1],
                price,
                &mut v,
                &mut a,
                &mut sums,
                &pay,
            );
            j += 1;
        }
        if let (Some(w), Some(until)) = (&c.warranty, until) {
            if tk <= until {
                let share = w.refund_share(tk);
                let sd = default_survival(tk);
                let mut nv = vec![0.0; aug.size];
                let mut na = vec![0.0; aug.size];
                for x in 0..aug.size {
                    if v[x] == 0.0 && a[x] == 0.0 {
                        continue;
                    }
                    let (s, fl) = (x % ns, x / ns);
                    let mut fl2 = fl;
                    if fl & aug.wfail == 0 && !aug.holds(w.outcome, s, fl) {
                        fl2 |= aug.wfail;
                        let r = share * a[x];
                        let paid = r * sd;
                        sums.paid -= paid * disc_c.factor(tk);
                        sums.paid_u -= paid;
                        sums.revenue -= paid * disc_m.factor(tk);
                        sums.net_all -= paid;
                        sums.refund += paid;
                        sums.refund_lost += r * (1.0 - sd);
                        if share > 0.0 && fl & aug.paid != 0 {
                            sums.any_refund += v[x] * sd;
                        }
                    }
                    nv[fl2 * ns + s] += v[x];
                    na[fl2 * ns + s] += a[x];
                }
                v = nv;
                a = na;
            }
        }
        let next = if k < d.cycles {
            d.time(k + 1)
        } else {
            f64::INFINITY
        };
        while j < m && sched[j].time < next {
            installment(
                &aug,
                c,
                &sched[j],
                rest_due[j + 1],
                price,
                &mut v,
                &mut a,
                &mut sums,
                &pay,
            );
            j += 1;
        }
    }
    sums.any_withheld = (0..aug.size)
        .filter(|x| (x / ns) & aug.short != 0)
        .map(|x| v[x])
        .sum();
    Ok(sums)
}

/// Installment `inst` for the mass still in the schedule.
#[allow(clippy::too_many_arguments)]
fn installment(
    aug: &Aug,
    c: &ContractTerms,
    inst: &Installment,
    rest_after: f64,
    price: f64,
    v: &mut [f64],
    a: &mut [f64],
    sums: &mut Sums,
    pay: &impl Fn(&mut Sums, f64, f64, f64),
) {
    let ns = aug.ns;
    let mut nv = vec![0.0; aug.size];
    let mut na = vec![0.0; aug.size];
    let amount = inst.fraction * price;
    for x in 0..aug.size {
        if v[x] == 0.0 && a[x] == 0.0 {
            continue;
        }
        let (s, fl) = (x % ns, x / ns);
        let mut fl2 = fl;
        let mut add = 0.0;
        if fl & aug.ended == 0 {
            if c.stop_on_death && s == aug.death {
                // Dead before any installment was reached (cannot happen: death ends the
                // schedule when it occurs); nothing is paid.
                fl2 |= aug.ended;
            } else if inst.condition.is_some_and(|o| !aug.holds(o, s, fl)) {
                if inst.fraction > 0.0 {
                    fl2 |= aug.short;
                }
                if c.after_failure == AfterFailure::Stop {
                    fl2 |= aug.ended;
                    if rest_after > 0.0 {
                        fl2 |= aug.short;
                    }
                }
            } else {
                pay(sums, v[x], amount, inst.time);
                add = v[x] * amount;
                if amount > 0.0 {
                    fl2 |= aug.paid;
                }
            }
        }
        let y = fl2 * ns + s;
        nv[y] += v[x];
        na[y] += a[x] + add;
    }
    v.copy_from_slice(&nv);
    a.copy_from_slice(&na);
}

/// The outstanding balance at `t` of installments `rest` (each discounted to `t` at the
/// contract's interest; the nominal sum without interest), as a share of the price.
fn balance(interest: f64, rest: &[Installment], t: f64) -> f64 {
    rest.iter()
        .map(|i| i.fraction * (1.0 + interest).powf(-(i.time - t).max(0.0)))
        .sum()
}
