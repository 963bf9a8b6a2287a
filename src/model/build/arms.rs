//! The arms: states with their costs (by category) and utilities, time-to-event
//! transitions or a discrete-time table, and warnings for states no patient can enter.

use super::{unknown_name, Checker, Names, INITIAL_SUM_TOLERANCE};
use crate::model::family::Family;
use crate::model::{ArmModel, Exit, PopulationModel, SimSettings, StateModel};
use crate::scenario::{Arm, Diagnostic, Scenario, TimeToEvent};
use std::collections::HashSet;

/// The compiled arms, the cost categories they name, and warnings.
pub(super) struct Arms {
    /// One per scenario arm (in order).
    pub arms: Vec<ArmModel>,
    /// Cost categories, in order of first appearance.
    pub categories: Vec<String>,
    /// Things allowed but probably not meant.
    pub warnings: Vec<Diagnostic>,
}

/// A state's or arm's costs by category before the categories are numbered.
#[derive(Default)]
struct Parts {
    /// (arm, state or None for the start cost, is an entry cost, category, value).
    rows: Vec<(usize, Option<usize>, bool, String, f64)>,
}

/// The family of a transition, with its numbers for this run.
fn family_of(ck: &mut Checker, f: &str, t: &TimeToEvent) -> Family {
    let mut n = |name: &str, v: &crate::scenario::Num| ck.num(&format!("{f}.{name}"), v);
    match t {
        TimeToEvent::Exponential { rate } => Family::Exponential {
            rate: n("rate", rate),
        },
        TimeToEvent::Weibull { shape, scale } => Family::Weibull {
            shape: n("shape", shape),
            scale: n("scale", scale),
        },
        TimeToEvent::Gompertz { shape, rate } => Family::Gompertz {
            shape: n("shape", shape),
            rate: n("rate", rate),
        },
        TimeToEvent::Lognormal { meanlog, sdlog } => Family::LogNormal {
            meanlog: n("meanlog", meanlog),
            sdlog: n("sdlog", sdlog),
        },
        TimeToEvent::Loglogistic { shape, scale } => Family::LogLogistic {
            shape: n("shape", shape),
            scale: n("scale", scale),
        },
        TimeToEvent::Gamma { shape, rate } => Family::Gamma {
            shape: n("shape", shape),
            rate: n("rate", rate),
        },
        TimeToEvent::PiecewiseExponential { cuts, rates } => Family::PiecewiseExponential {
            cuts: ck.list(&format!("{f}.cuts"), cuts),
            rates: ck.list(&format!("{f}.rates"), rates),
        },
        TimeToEvent::MixtureCure {
            cure_fraction,
            uncured,
        } => {
            let cure_fraction = ck.num(&format!("{f}.cure_fraction"), cure_fraction);
            Family::MixtureCure {
                cure_fraction,
                uncured: Box::new(family_of(ck, &format!("{f}.uncured"), uncured)),
            }
        }
    }
}

/// Every arm of the scenario.
pub(super) fn arms(
    ck: &mut Checker,
    sc: &Scenario,
    sim: &SimSettings,
    population: &Option<PopulationModel>,
) -> Arms {
    let mut out = Arms {
        arms: Vec::new(),
        categories: Vec::new(),
        warnings: Vec::new(),
    };
    let mut parts = Parts::default();
    let mut names: HashSet<&str> = HashSet::new();
    if sc.arms.is_empty() {
        ck.error("arms", "at least one arm (the therapy arm) is required");
    }
    let ages = population
        .as_ref()
        .map_or((0.0, 0.0), |p| (p.age.min(), p.age.max()));
    for (ai, arm) in sc.arms.iter().enumerate() {
        let f = format!("arms[{ai}]");
        if !names.insert(&arm.name) {
            ck.error(
                &format!("{f}.name"),
                format!("arm `{}` is defined twice", arm.name),
            );
        }
        if let Some(a) = one_arm(ck, arm, ai, &f, sim, ages, &mut parts, &mut out.warnings) {
            out.arms.push(a);
        }
    }
    number_categories(&mut out, parts);
    out
}

/// Gives each cost category an index and fills the arms' per-category costs.
fn number_categories(out: &mut Arms, parts: Parts) {
    for (_, _, _, k, _) in &parts.rows {
        if !out.categories.contains(k) {
            out.categories.push(k.clone());
        }
    }
    let n = out.categories.len();
    if n == 0 {
        return;
    }
    for a in &mut out.arms {
        a.start_parts = vec![0.0; n];
        for s in &mut a.states {
            s.cost_parts = vec![0.0; n];
            s.entry_parts = vec![0.0; n];
        }
    }
    for (a, state, entry, k, v) in parts.rows {
        let c = out.categories.iter().position(|x| *x == k).unwrap_or(0);
        let Some(arm) = out.arms.get_mut(a) else {
            continue;
        };
        match state {
            None => arm.start_parts[c] += v,
            Some(s) if entry => arm.states[s].entry_parts[c] += v,
            Some(s) => arm.states[s].cost_parts[c] += v,
        }
    }
}

/// One arm (None when it cannot be compiled at all).
#[allow(clippy::too_many_arguments)]
fn one_arm(
    ck: &mut Checker,
    arm: &Arm,
    ai: usize,
    f: &str,
    sim: &SimSettings,
    ages: (f64, f64),
    parts: &mut Parts,
    warnings: &mut Vec<Diagnostic>,
) -> Option<ArmModel> {
    if arm.markov.is_some() {
        refuse_categories(ck, arm, f);
    }
    let (start_cost, start_parts) = ck.cost(&format!("{f}.start_cost"), &arm.start_cost);
    ck.finite(&format!("{f}.start_cost"), start_cost);
    for (k, v) in start_parts {
        parts.rows.push((ai, None, false, k, v));
    }
    if arm.states.is_empty() {
        ck.error(&format!("{f}.states"), "an arm needs at least one state");
        return None;
    }
    let state_names = Names::new(arm.states.iter().map(|s| s.name.as_str()).collect());
    let (states, initial) = states(ck, arm, ai, f, parts);
    let cumulative = cumulative_initial(ck, f, &initial);
    let death = death_state(ck, arm, f, &state_names, &states, &initial);
    let exits = transitions(ck, arm, f, &state_names, death);
    let background = match (&arm.markov, arm.background_mortality) {
        (Some(mk), None) => mk.background_mortality,
        (Some(_), Some(_)) => {
            ck.error(
                &format!("{f}.background_mortality"),
                "a discrete-time arm says this in `markov.background_mortality`",
            );
            false
        }
        (None, b) => b.unwrap_or(true),
    };
    // A discrete-time (cycle-based) arm: its own transitions, counting and discounting.
    let mut discrete = None;
    let mut discrete_edges = Vec::new();
    if let Some(mk) = &arm.markov {
        let costs: Vec<f64> = states.iter().map(|st| st.cost).collect();
        let run = ck.run;
        let compiled = crate::markov::compile::compile(
            arm,
            mk,
            f,
            death,
            &costs,
            crate::markov::compile::Context {
                horizon: sim.horizon,
                discount_costs: sim.costs.rate,
                discount_outcomes: sim.outcomes.rate,
                ages,
            },
            &|n| run.value(n).map_err(|e| e.message),
        );
        for (field, message) in compiled.errors {
            ck.error(&field, message);
        }
        discrete = compiled.arm;
        discrete_edges = compiled.edges;
    }
    warn_unreachable(
        ck,
        arm,
        f,
        &initial,
        death,
        &exits,
        &discrete_edges,
        warnings,
    );
    Some(ArmModel {
        name: arm.name.clone(),
        states,
        death,
        initial_cumulative: cumulative,
        exits,
        start_cost,
        start_parts: Vec::new(),
        background,
        discrete,
    })
}

/// Cost categories are counted over continuous sojourns; a discrete-time arm counts costs by
/// its counting convention, which categories do not follow yet.
fn refuse_categories(ck: &mut Checker, arm: &Arm, f: &str) {
    use crate::scenario::CostKind;
    let categorised = |c: &crate::scenario::Cost| matches!(c.kind, CostKind::Categories(_));
    if categorised(&arm.start_cost) {
        ck.error(
            &format!("{f}.start_cost"),
            "cost categories are not supported in discrete-time arms yet: write the total",
        );
    }
    for (si, st) in arm.states.iter().enumerate() {
        for (name, c) in [("cost", &st.cost), ("entry_cost", &st.entry_cost)] {
            if categorised(c) {
                ck.error(
                    &format!("{f}.states[{si}].{name}"),
                    "cost categories are not supported in discrete-time arms yet: write the total",
                );
            }
        }
    }
}

/// The states with their costs and utilities, and the initial distribution.
fn states(
    ck: &mut Checker,
    arm: &Arm,
    ai: usize,
    f: &str,
    parts: &mut Parts,
) -> (Vec<StateModel>, Vec<f64>) {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut states = Vec::new();
    let mut initial = Vec::new();
    for (si, st) in arm.states.iter().enumerate() {
        let sf = format!("{f}.states[{si}]");
        if !seen.insert(&st.name) {
            ck.error(
                &format!("{sf}.name"),
                format!("state `{}` is defined twice", st.name),
            );
        }
        let p = ck.num(&format!("{sf}.initial"), &st.initial);
        ck.range(
            &format!("{sf}.initial"),
            p,
            0.0,
            1.0,
            "a probability in [0, 1]",
        );
        let (cost, cost_parts) = ck.cost(&format!("{sf}.cost"), &st.cost);
        let (entry_cost, entry_parts) = ck.cost(&format!("{sf}.entry_cost"), &st.entry_cost);
        ck.finite(&format!("{sf}.cost"), cost);
        ck.finite(&format!("{sf}.entry_cost"), entry_cost);
        let utility = ck.num(&format!("{sf}.utility"), &st.utility);
        ck.range(
            &format!("{sf}.utility"),
            utility,
            f64::NEG_INFINITY,
            1.0,
            "a utility <= 1 (1 = full health, 0 = dead)",
        );
        for (k, v) in cost_parts {
            parts.rows.push((ai, Some(si), false, k, v));
        }
        for (k, v) in entry_parts {
            parts.rows.push((ai, Some(si), true, k, v));
        }
        initial.push(p);
        states.push(StateModel {
            name: st.name.clone(),
            cost,
            utility,
            entry_cost,
            cost_parts: Vec::new(),
            entry_parts: Vec::new(),
        });
    }
    (states, initial)
}

/// The initial distribution as cumulative probabilities (checked to sum to 1; the last is
/// exactly 1).
fn cumulative_initial(ck: &mut Checker, f: &str, initial: &[f64]) -> Vec<f64> {
    let mut sum = 0.0;
    let mut cumulative: Vec<f64> = initial
        .iter()
        .map(|p| {
            sum += p;
            sum
        })
        .collect();
    if (sum - 1.0).abs() > INITIAL_SUM_TOLERANCE {
        ck.error(
            &format!("{f}.states"),
            format!(
                "the initial probabilities sum to {sum}; they must sum to 1 (tolerance {INITIAL_SUM_TOLERANCE})"
            ),
        );
    }
    // Normalise away rounding so the last cumulative value is exactly 1.
    for c in cumulative.iter_mut() {
        *c /= sum.max(f64::MIN_POSITIVE);
    }
    if let Some(last) = cumulative.last_mut() {
        *last = 1.0;
    }
    cumulative
}

/// The index of the death state, checked to accrue nothing and start nobody.
fn death_state(
    ck: &mut Checker,
    arm: &Arm,
    f: &str,
    names: &Names,
    states: &[StateModel],
    initial: &[f64],
) -> usize {
    let Some(death) = names.find(&arm.death_state) else {
        ck.error(
            &format!("{f}.death_state"),
            unknown_name(&arm.death_state, "a state of this arm", "states", names),
        );
        return 0;
    };
    let sf = format!("{f}.states[{death}]");
    if initial[death] != 0.0 {
        ck.error(
            &format!("{sf}.initial"),
            "the death state cannot be an initial state",
        );
    }
    if states[death].cost != 0.0 || states[death].utility != 0.0 {
        ck.error(
            &sf,
            "the death state accrues no cost rate or utility (use entry_cost for a cost at death)",
        );
    }
    death
}

/// The time-to-event transitions out of each state.
fn transitions(
    ck: &mut Checker,
    arm: &Arm,
    f: &str,
    names: &Names,
    death: usize,
) -> Vec<Vec<Exit>> {
    let mut exits: Vec<Vec<Exit>> = vec![Vec::new(); arm.states.len()];
    for (ti, tr) in arm.transitions.iter().enumerate() {
        let tf = format!("{f}.transitions[{ti}]");
        let from = names.find(&tr.from);
        let to = names.find(&tr.to);
        if from.is_none() {
            ck.error(
                &format!("{tf}.from"),
                unknown_name(&tr.from, "a state", "states", names),
            );
        }
        if to.is_none() {
            ck.error(
                &format!("{tf}.to"),
                unknown_name(&tr.to, "a state", "states", names),
            );
        }
        let family = family_of(ck, &format!("{tf}.time"), &tr.time);
        if let Err(e) = family.validate() {
            ck.error(&format!("{tf}.time"), e);
        }
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if from == to {
            ck.error(
                &format!("{tf}.to"),
                "a transition must lead to another state",
            );
        } else if from == death {
            ck.error(
                &format!("{tf}.from"),
                "the death state is absorbing: no transition may leave it",
            );
        } else {
            exits[from].push(Exit {
                to,
                family,
                clock: tr.clock,
            });
        }
    }
    exits
}

/// Warns of states that can never be entered: no initial probability and no transition
/// into them from a reachable state (death is reachable through background mortality).
#[allow(clippy::too_many_arguments)]
fn warn_unreachable(
    ck: &Checker,
    arm: &Arm,
    f: &str,
    initial: &[f64],
    death: usize,
    exits: &[Vec<Exit>],
    discrete_edges: &[(usize, usize)],
    warnings: &mut Vec<Diagnostic>,
) {
    let n = arm.states.len();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, ex) in exits.iter().enumerate() {
        next[from].extend(ex.iter().map(|e| e.to));
    }
    for &(from, to) in discrete_edges {
        if from < n && to < n {
            next[from].push(to);
        }
    }
    let mut reachable: Vec<bool> = initial.iter().map(|p| *p > 0.0).collect();
    if death < n {
        reachable[death] = true;
    }
    // Breadth-first from the states patients start in: linear in states and transitions.
    let mut queue: Vec<usize> = (0..n).filter(|&s| reachable[s]).collect();
    while let Some(s) = queue.pop() {
        for &t in &next[s] {
            if !reachable[t] {
                reachable[t] = true;
                queue.push(t);
            }
        }
    }
    for (si, st) in arm.states.iter().enumerate() {
        if !reachable[si] {
            warnings.push(ck.warning(
                &format!("{f}.states[{si}]"),
                format!(
                    "state `{}` of arm `{}` can never be entered: it has no initial probability and no transition into it from a reachable state",
                    st.name, arm.name
                ),
            ));
        }
    }
}
