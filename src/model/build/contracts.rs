//! Outcomes, assessment plans and contracts: the payment terms evaluated on the therapy
//! arm's histories.

use super::{rounded, unknown_name, Checker, Names, MAX_PAYMENTS};
use crate::contracts::{
    ContractTerms, Installment, OutcomeDef, OutcomeTest, PlanTerms, ProrateRule, Warranty,
};
use crate::scenario::{Contract, ContractType, OutcomeKind, Prorate, Scenario, StopEvent};
use std::collections::HashSet;

/// The compiled payment terms and what they refer to.
pub(super) struct Terms {
    /// Contracts (an upfront payment if the scenario lists none).
    pub contracts: Vec<ContractTerms>,
    /// Named outcomes on the therapy arm.
    pub outcomes: Vec<OutcomeDef>,
    /// Assessment plans.
    pub plans: Vec<PlanTerms>,
}

/// Outcomes, plans and contracts of the scenario (`therapy_arm`: the therapy arm's index,
/// if it exists).
pub(super) fn all(
    ck: &mut Checker,
    sc: &Scenario,
    horizon: f64,
    therapy_arm: Option<usize>,
) -> Terms {
    let therapy_states = Names::new(
        therapy_arm
            .and_then(|a| sc.arms.get(a))
            .map(|a| a.states.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default(),
    );
    let outcomes = compile_outcomes(ck, sc, &therapy_states);
    let outcome_names = Names::new(sc.outcomes.iter().map(|o| o.name.as_str()).collect());
    let plans = compile_plans(ck, sc, horizon, &outcome_names);
    let plan_names = Names::new(sc.observations.iter().map(|o| o.name.as_str()).collect());
    let mut contracts = Vec::new();
    let mut names: HashSet<&str> = HashSet::new();
    for (ci, c) in sc.contracts.iter().enumerate() {
        let f = format!("contracts[{ci}]");
        if !names.insert(&c.name) {
            ck.error(
                &format!("{f}.name"),
                format!("contract `{}` is defined twice", c.name),
            );
        }
        if c.name == super::NO_CONTRACT || c.name.is_empty() {
            ck.error(
                &format!("{f}.name"),
                format!(
                    "`{}` is not allowed as a contract name (`{}` labels the comparators)",
                    c.name,
                    super::NO_CONTRACT
                ),
            );
        }
        if let Some(t) = compile_contract(ck, &f, c, horizon, &outcome_names, &plan_names) {
            contracts.push(t);
        }
    }
    if sc.contracts.is_empty() {
        contracts.push(ContractTerms::upfront("upfront", 0.0));
    }
    Terms {
        contracts,
        outcomes,
        plans,
    }
}

fn compile_outcomes(ck: &mut Checker, sc: &Scenario, states: &Names) -> Vec<OutcomeDef> {
    let mut out = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, o) in sc.outcomes.iter().enumerate() {
        let f = format!("outcomes[{i}]");
        if !seen.insert(&o.name) {
            ck.error(
                &format!("{f}.name"),
                format!("outcome `{}` is defined twice", o.name),
            );
        }
        let mut mask = vec![false; states.len()];
        for (k, st) in o.states.iter().enumerate() {
            match states.find(st) {
                Some(j) => mask[j] = true,
                None => ck.error(
                    &format!("{f}.states[{k}]"),
                    unknown_name(st, "a state of the therapy arm", "states", states),
                ),
            }
        }
        let needs_states = o.kind != OutcomeKind::Alive;
        if needs_states && o.states.is_empty() {
            ck.error(
                &format!("{f}.states"),
                "list at least one state for this kind",
            );
        }
        if !needs_states && !o.states.is_empty() {
            ck.error(&format!("{f}.states"), "kind `alive` takes no states");
        }
        let test = match o.kind {
            OutcomeKind::InState => OutcomeTest::InState(mask),
            OutcomeKind::NotInState => OutcomeTest::NotInState(mask),
            OutcomeKind::Entered => OutcomeTest::Entered(mask),
            OutcomeKind::NotEntered => OutcomeTest::NotEntered(mask),
            OutcomeKind::Alive => OutcomeTest::Alive,
        };
        out.push(OutcomeDef {
            name: o.name.clone(),
            test,
        });
    }
    out
}

fn compile_plans(
    ck: &mut Checker,
    sc: &Scenario,
    horizon: f64,
    outcomes: &Names,
) -> Vec<PlanTerms> {
    let mut out = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, p) in sc.observations.iter().enumerate() {
        let f = format!("observations[{i}]");
        if !seen.insert(&p.name) {
            ck.error(
                &format!("{f}.name"),
                format!("plan `{}` is defined twice", p.name),
            );
        }
        let outcome = outcomes.find(&p.outcome).unwrap_or_else(|| {
            ck.error(
                &format!("{f}.outcome"),
                unknown_name(&p.outcome, "an outcome", "outcomes", outcomes),
            );
            0
        });
        let listed = ck.list(&format!("{f}.times"), &p.times);
        let every = ck.opt(&format!("{f}.every"), &p.every);
        let times = match (listed.is_empty(), every) {
            (false, None) => {
                for (k, t) in listed.iter().enumerate() {
                    ck.range(
                        &format!("{f}.times[{k}]"),
                        *t,
                        0.0,
                        horizon,
                        "a time in [0, horizon]",
                    );
                }
                if listed.windows(2).any(|w| w[1] <= w[0]) {
                    ck.error(&format!("{f}.times"), "times must be strictly increasing");
                }
                listed
            }
            (true, Some(every)) => {
                ck.positive(&format!("{f}.every"), every);
                let first = ck.opt(&format!("{f}.first"), &p.first).unwrap_or(every);
                let until = ck
                    .opt(&format!("{f}.until"), &p.until)
                    .unwrap_or(horizon)
                    .min(horizon);
                ck.range(
                    &format!("{f}.first"),
                    first,
                    0.0,
                    horizon,
                    "a time in [0, horizon]",
                );
                let mut v = Vec::new();
                if every > 0.0 && every.is_finite() && first.is_finite() {
                    let mut k = 0u32;
                    loop {
                        let t = first + every * k as f64;
                        if t > until + 1e-9 || v.len() > 100_000 {
                            break;
                        }
                        v.push(t);
                        k += 1;
                    }
                }
                v
            }
            _ => {
                ck.error(
                    &f,
                    "give either `times` or `every` (with optional `first`, `until`)",
                );
                Vec::new()
            }
        };
        let sensitivity = ck.num(&format!("{f}.sensitivity"), &p.sensitivity);
        let specificity = ck.num(&format!("{f}.specificity"), &p.specificity);
        let missed = ck.num(&format!("{f}.missed"), &p.missed);
        let cost_payer = ck.num(&format!("{f}.cost_payer"), &p.cost_payer);
        let cost_manufacturer = ck.num(&format!("{f}.cost_manufacturer"), &p.cost_manufacturer);
        let annual_cost_payer = ck.num(&format!("{f}.annual_cost_payer"), &p.annual_cost_payer);
        let annual_cost_manufacturer = ck.num(
            &format!("{f}.annual_cost_manufacturer"),
            &p.annual_cost_manufacturer,
        );
        for (name, v) in [
            ("sensitivity", sensitivity),
            ("specificity", specificity),
            ("missed", missed),
        ] {
            ck.range(
                &format!("{f}.{name}"),
                v,
                0.0,
                1.0,
                "a probability in [0, 1]",
            );
        }
        for (name, v) in [
            ("cost_payer", cost_payer),
            ("cost_manufacturer", cost_manufacturer),
            ("annual_cost_payer", annual_cost_payer),
            ("annual_cost_manufacturer", annual_cost_manufacturer),
        ] {
            ck.range(&format!("{f}.{name}"), v, 0.0, f64::INFINITY, "a cost >= 0");
        }
        out.push(PlanTerms {
            name: p.name.clone(),
            outcome,
            times,
            sensitivity,
            specificity,
            missed,
            if_missed: p.if_missed,
            cost_payer,
            cost_manufacturer,
            annual_cost_payer,
            annual_cost_manufacturer,
        });
    }
    out
}

fn compile_contract(
    ck: &mut Checker,
    f: &str,
    c: &Contract,
    horizon: f64,
    outcomes: &Names,
    plans: &Names,
) -> Option<ContractTerms> {
    let kind = c.kind;
    let not_for = |ck: &mut Checker, field: &str, given: bool| {
        if given {
            ck.error(
                &format!("{f}.{field}"),
                format!(
                    "`{field}` does not apply to contracts of type `{}`",
                    kind.as_str()
                ),
            );
        }
    };
    let is_inst = kind == ContractType::Installments;
    not_for(
        ck,
        "at",
        c.at.is_some() && !matches!(kind, ContractType::Upfront | ContractType::Warranty),
    );
    for (field, given) in [
        ("payments", c.payments.is_some()),
        ("interval", c.interval.is_some()),
        ("first", c.first.is_some()),
        ("times", !c.times.is_empty()),
        ("amounts", !c.amounts.is_empty()),
        ("interest", c.interest.is_some()),
        ("condition", c.condition.is_some()),
        ("condition_from", c.condition_from.is_some()),
    ] {
        not_for(ck, field, given && !is_inst);
    }
    not_for(
        ck,
        "milestones",
        !c.milestones.is_empty() && kind != ContractType::Milestones,
    );
    let outcome_of = |ck: &mut Checker, field: &str, name: &str| -> Option<usize> {
        let i = outcomes.find(name);
        if i.is_none() {
            ck.error(
                field,
                unknown_name(
                    name,
                    "an outcome",
                    "outcomes (define them under [[outcomes]])",
                    outcomes,
                ),
            );
        }
        i
    };
    let in_time = |ck: &mut Checker, field: &str, t: f64| {
        ck.range(field, t, 0.0, horizon, "a time in [0, horizon]");
    };

    let (schedule, interest) = match kind {
        ContractType::Upfront | ContractType::Warranty => {
            let at = ck.opt(&format!("{f}.at"), &c.at).unwrap_or(0.0);
            in_time(ck, &format!("{f}.at"), at);
            (
                vec![Installment {
                    time: at,
                    fraction: 1.0,
                    condition: None,
                }],
                0.0,
            )
        }
        ContractType::Installments => {
            let interest = ck.opt(&format!("{f}.interest"), &c.interest).unwrap_or(0.0);
            let listed = ck.list(&format!("{f}.times"), &c.times);
            let interval = ck.opt(&format!("{f}.interval"), &c.interval);
            let amounts = ck.list(&format!("{f}.amounts"), &c.amounts);
            ck.range(
                &format!("{f}.interest"),
                interest,
                0.0,
                1.0,
                "an annual rate in [0, 1]",
            );
            let times: Vec<f64> = match (listed.is_empty(), c.payments, interval) {
                (true, Some(n), Some(iv)) => {
                    if n == 0 {
                        ck.error(
                            &format!("{f}.payments"),
                            "0 is not allowed: at least 1 payment",
                        );
                    }
                    ck.positive(&format!("{f}.interval"), iv);
                    let first = ck.opt(&format!("{f}.first"), &c.first).unwrap_or(0.0);
                    in_time(ck, &format!("{f}.first"), first);
                    let last = first + iv * n.saturating_sub(1) as f64;
                    if last.is_finite() && last > horizon {
                        ck.error(
                            &format!("{f}.payments"),
                            format!("the last payment falls at {last} years, after the horizon ({horizon} years)"),
                        );
                    }
                    if n > MAX_PAYMENTS || !(last.is_finite() && last <= horizon) {
                        if n > MAX_PAYMENTS {
                            ck.error(
                                &format!("{f}.payments"),
                                format!("{n} is not allowed: at most {MAX_PAYMENTS} payments"),
                            );
                        }
                        return None;
                    }
                    (0..n).map(|k| first + iv * k as f64).collect()
                }
                (false, None, None) if c.first.is_none() => {
                    for (k, t) in listed.iter().enumerate() {
                        in_time(ck, &format!("{f}.times[{k}]"), *t);
                    }
                    if listed.windows(2).any(|w| w[1] <= w[0]) {
                        ck.error(&format!("{f}.times"), "times must be strictly increasing");
                    }
                    listed
                }
                _ => {
                    ck.error(
                        f,
                        "give either `payments` and `interval` (with optional `first`), or `times`",
                    );
                    return None;
                }
            };
            let fractions: Vec<f64> = if amounts.is_empty() {
                vec![ContractTerms::annuity_fraction(&times, interest); times.len()]
            } else {
                if amounts.len() != times.len() {
                    ck.error(
                        &format!("{f}.amounts"),
                        format!(
                            "{} amounts for {} payments: give one share per payment",
                            amounts.len(),
                            times.len()
                        ),
                    );
                }
                for (k, a) in amounts.iter().enumerate() {
                    ck.range(
                        &format!("{f}.amounts[{k}]"),
                        *a,
                        0.0,
                        1.0,
                        "a share of the list price in [0, 1]",
                    );
                }
                let total: f64 = amounts.iter().sum();
                if total > 1.0 + 1e-9 {
                    ck.error(
                        &format!("{f}.amounts"),
                        format!(
                            "the amounts sum to {}; at most 1 (the list price)",
                            rounded(total)
                        ),
                    );
                }
                if c.interest.is_some() {
                    ck.error(
                        &format!("{f}.interest"),
                        "give `interest` or listed `amounts`, not both",
                    );
                }
                amounts
            };
            let condition = c
                .condition
                .as_ref()
                .and_then(|o| outcome_of(ck, &format!("{f}.condition"), o));
            let from = ck
                .opt(&format!("{f}.condition_from"), &c.condition_from)
                .unwrap_or(0.0);
            ck.range(
                &format!("{f}.condition_from"),
                from,
                0.0,
                horizon,
                "a time in [0, horizon]",
            );
            (
                times
                    .iter()
                    .zip(&fractions)
                    .map(|(&time, &fraction)| Installment {
                        time,
                        fraction,
                        condition: condition.filter(|_| time >= from),
                    })
                    .collect(),
                interest,
            )
        }
        ContractType::Milestones => {
            if c.milestones.is_empty() {
                ck.error(&format!("{f}.milestones"), "list at least one milestone");
            }
            let mut v = Vec::new();
            for (k, m) in c.milestones.iter().enumerate() {
                let mf = format!("{f}.milestones[{k}]");
                let at = ck.num(&format!("{mf}.at"), &m.at);
                let share = ck.num(&format!("{mf}.share"), &m.share);
                in_time(ck, &format!("{mf}.at"), at);
                ck.range(
                    &format!("{mf}.share"),
                    share,
                    0.0,
                    1.0,
                    "a share of the list price in [0, 1]",
                );
                let condition = m
                    .condition
                    .as_ref()
                    .and_then(|o| outcome_of(ck, &format!("{mf}.condition"), o));
                v.push(Installment {
                    time: at,
                    fraction: share,
                    condition,
                });
            }
            if v.windows(2).any(|w| w[1].time < w[0].time) {
                ck.error(
                    &format!("{f}.milestones"),
                    "milestones must be in time order",
                );
            }
            let total: f64 = v.iter().map(|m| m.fraction).sum();
            if total > 1.0 + 1e-9 {
                ck.error(
                    &format!("{f}.milestones"),
                    format!(
                        "the shares sum to {}; at most 1 (the list price)",
                        rounded(total)
                    ),
                );
            }
            (v, 0.0)
        }
    };

    let mut terms = ContractTerms::with_schedule(&c.name, kind.as_str(), schedule);
    terms.interest = interest;
    terms.stop_on_death = c.stop_on.contains(&StopEvent::Death);
    terms.stop_on_churn = c.stop_on.contains(&StopEvent::Churn);
    terms.after_failure = c.after_failure;
    terms.on_stop = c.on_stop;
    terms.on_churn = c.on_churn;
    terms.observed_by = c.observed_by.as_ref().and_then(|p| {
        let i = plans.find(p);
        if i.is_none() {
            ck.error(
                &format!("{f}.observed_by"),
                unknown_name(
                    p,
                    "an assessment plan",
                    "plans (define them under [[observations]])",
                    plans,
                ),
            );
        }
        i
    });
    if kind == ContractType::Warranty && c.warranty.is_none() {
        ck.error(f, "a contract of type `warranty` needs a `warranty = { outcome = .., window = .. }` table");
    }
    if let Some(w) = &c.warranty {
        let wf = format!("{f}.warranty");
        let outcome = outcome_of(ck, &format!("{wf}.outcome"), &w.outcome);
        let window = ck.num(&format!("{wf}.window"), &w.window);
        let refund = ck.num(&format!("{wf}.refund"), &w.refund);
        let table = ck.rows(&format!("{wf}.table"), &w.table);
        ck.range(
            &format!("{wf}.window"),
            window,
            1e-9,
            horizon,
            "a window in (0, horizon] years",
        );
        ck.range(
            &format!("{wf}.refund"),
            refund,
            0.0,
            1.0,
            "a share in [0, 1]",
        );
        let prorate = match w.prorate {
            Prorate::None => ProrateRule::None,
            Prorate::Linear => ProrateRule::Linear,
            Prorate::Stepped => ProrateRule::Stepped,
            Prorate::Table => {
                if table.is_empty() {
                    ck.error(
                        &format!("{wf}.table"),
                        "prorate = \"table\" needs table = [[until, share], ...]",
                    );
                }
                for (k, [until, share]) in table.iter().copied().enumerate() {
                    ck.range(
                        &format!("{wf}.table[{k}]"),
                        share,
                        0.0,
                        1.0,
                        "a share in [0, 1]",
                    );
                    if !(until > 0.0 && until.is_finite()) {
                        ck.error(
                            &format!("{wf}.table[{k}]"),
                            format!("until = {until} must be a time > 0"),
                        );
                    }
                }
                if table.windows(2).any(|p| p[1][0] <= p[0][0]) {
                    ck.error(&format!("{wf}.table"), "rows must be in increasing time");
                }
                ProrateRule::Table(table.iter().map(|r| (r[0], r[1])).collect())
            }
        };
        if w.prorate != Prorate::Table && !w.table.is_empty() {
            ck.error(
                &format!("{wf}.table"),
                "a table is only used with prorate = \"table\"",
            );
        }
        terms.warranty = outcome.map(|outcome| Warranty {
            outcome,
            window,
            refund,
            prorate,
        });
    }
    let cap = ck.opt(&format!("{f}.cap"), &c.cap);
    let floor = ck.opt(&format!("{f}.floor"), &c.floor);
    if let Some(cap) = cap {
        ck.range(
            &format!("{f}.cap"),
            cap,
            0.0,
            f64::INFINITY,
            "a share of the list price >= 0",
        );
    }
    if let Some(floor) = floor {
        ck.range(
            &format!("{f}.floor"),
            floor,
            0.0,
            cap.unwrap_or(f64::INFINITY),
            "a share of the list price >= 0 and <= cap",
        );
    }
    terms.cap = cap;
    terms.floor = floor;
    Some(terms)
}
