//! The arms: states with their costs (by category) and utilities, time-to-event
//! transitions or a discrete-time table, and warnings for states no patient can enter.

use super::{unknown_name, Checker, Names, Place, INITIAL_SUM_TOLERANCE};
use crate::model::effects::{ArmEffects, Predictor, Target};
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
    /// Covariate effects on costs: (arm, state, is an entry cost, category, predictor).
    costs: Vec<(usize, usize, bool, Option<String>, Predictor)>,
}

/// Why numbers of a discrete-time arm cannot vary by patient.
const DISCRETE_FIXED: &str = "covariate effects (linear predictors) are supported in continuous-time arms; a discrete-time (markov) arm's numbers are the same for every patient";

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
    let ages = population.as_ref().map_or((0.0, 0.0), |p| p.ages());
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
    let costs = std::mem::take(&mut parts.costs);
    number_categories(&mut out, parts);
    cost_effects(&mut out, costs);
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

/// Adds the covariate effects on costs (their categories now numbered) to the arms.
fn cost_effects(out: &mut Arms, costs: Vec<(usize, usize, bool, Option<String>, Predictor)>) {
    for (a, state, entry, category, p) in costs {
        let part = category.and_then(|k| out.categories.iter().position(|x| *x == k));
        let Some(arm) = out.arms.get_mut(a) else {
            continue;
        };
        let e = arm.effects.get_or_insert_with(Default::default);
        let target = if entry {
            if part.is_some() && !e.entry_totals.contains(&state) {
                e.entry_totals.push(state);
            }
            Target::Entry { state, part }
        } else {
            if part.is_some() && !e.cost_totals.contains(&state) {
                e.cost_totals.push(state);
            }
            Target::Cost { state, part }
        };
        e.effects.push((target, p));
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
    let mut effects = ArmEffects::default();
    let (states, initial) = states(ck, arm, ai, f, parts, &mut effects);
    let varying_background = states
        .iter()
        .any(|s| s.smr != 1.0 || s.excess_hazard != 0.0);
    let cumulative = cumulative_initial(ck, f, &initial);
    let death = death_state(ck, arm, f, &state_names, &states, &initial);
    refuse_death_effects(ck, arm, f, death, &effects);
    let exits = transitions(ck, arm, f, &state_names, death, &mut effects);
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
        effects: (!effects.effects.is_empty()).then(|| Box::new(effects)),
        varying_background,
    })
}

/// The death state accrues nothing and starts nobody, for any patient.
fn refuse_death_effects(ck: &mut Checker, arm: &Arm, f: &str, death: usize, e: &ArmEffects) {
    for (t, _) in &e.effects {
        let field = match *t {
            Target::Utility { state } if state == death => "utility",
            Target::Initial { state } if state == death => "initial",
            _ => continue,
        };
        ck.error(
            &format!("{f}.states[{death}].{field}"),
            format!(
                "the death state `{}` has no {field}: it cannot vary by patient",
                arm.death_state
            ),
        );
    }
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

/// Where the numbers of an arm's states stand (a discrete-time arm's cannot vary by
/// patient).
fn state_place(arm: &Arm, place: Place) -> Place {
    if arm.markov.is_some() {
        Place::Fixed(DISCRETE_FIXED)
    } else {
        place
    }
}

/// The states with their costs and utilities, and the initial distribution; the numbers
/// that vary by patient go into `effects` (costs into `parts`, by category).
fn states(
    ck: &mut Checker,
    arm: &Arm,
    ai: usize,
    f: &str,
    parts: &mut Parts,
    effects: &mut ArmEffects,
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
        ck.begin(state_place(arm, Place::Initial));
        let p = ck.num(&format!("{sf}.initial"), &st.initial);
        for (_, _, pred) in ck.end() {
            effects.mlogit_initial = true;
            effects.effects.push((Target::Initial { state: si }, pred));
        }
        let (cost, cost_parts) = state_cost(
            ck,
            arm,
            ai,
            si,
            &format!("{sf}.cost"),
            &st.cost,
            false,
            parts,
        );
        let (entry_cost, entry_parts) = state_cost(
            ck,
            arm,
            ai,
            si,
            &format!("{sf}.entry_cost"),
            &st.entry_cost,
            true,
            parts,
        );
        ck.finite(&format!("{sf}.cost"), cost);
        ck.finite(&format!("{sf}.entry_cost"), entry_cost);
        ck.begin(state_place(arm, Place::Utility));
        let utility = ck.num(&format!("{sf}.utility"), &st.utility);
        let varying = ck.end();
        // A utility that varies by patient has no value to check here (its value at
        // covariates 0 may be no patient's).
        if varying.is_empty() {
            ck.range(
                &format!("{sf}.utility"),
                utility,
                f64::NEG_INFINITY,
                1.0,
                "a utility <= 1 (1 = full health, 0 = dead)",
            );
        }
        for (_, _, pred) in varying {
            effects.effects.push((Target::Utility { state: si }, pred));
        }
        for (k, v) in cost_parts {
            parts.rows.push((ai, Some(si), false, k, v));
        }
        for (k, v) in entry_parts {
            parts.rows.push((ai, Some(si), true, k, v));
        }
        let (smr, excess_hazard) = excess_mortality(ck, arm, &sf, st);
        initial.push(p);
        states.push(StateModel {
            name: st.name.clone(),
            cost,
            utility,
            entry_cost,
            cost_parts: Vec::new(),
            entry_parts: Vec::new(),
            smr,
            excess_hazard,
        });
    }
    if effects.mlogit_initial {
        mlogit_initial(ck, arm, f, effects, &mut initial);
    } else {
        for (si, p) in initial.iter().enumerate() {
            ck.range(
                &format!("{f}.states[{si}].initial"),
                *p,
                0.0,
                1.0,
                "a probability in [0, 1]",
            );
        }
    }
    (states, initial)
}

/// A state's standardised mortality ratio and excess hazard (1 and 0 when not given).
fn excess_mortality(
    ck: &mut Checker,
    arm: &Arm,
    sf: &str,
    st: &crate::scenario::State,
) -> (f64, f64) {
    let smr = ck.opt(&format!("{sf}.smr"), &st.smr);
    let excess = ck.opt(&format!("{sf}.excess_hazard"), &st.excess_hazard);
    if let Some(v) = smr {
        ck.range(&format!("{sf}.smr"), v, 0.0, f64::INFINITY, "a ratio >= 0");
        if arm.background_mortality == Some(false) {
            ck.error(
                &format!("{sf}.smr"),
                "the arm has no background mortality (background_mortality = false), so there is no background hazard to scale",
            );
        }
    }
    if let Some(v) = excess {
        ck.range(
            &format!("{sf}.excess_hazard"),
            v,
            0.0,
            f64::INFINITY,
            "a hazard per year >= 0",
        );
    }
    if arm.markov.is_some() && (smr.is_some() || excess.is_some()) {
        ck.error(
            sf,
            "smr and excess_hazard are not supported in discrete-time arms yet: write the mortality rows in the markov table",
        );
    }
    (smr.unwrap_or(1.0), excess.unwrap_or(0.0))
}

/// A state's annual or entry cost, its parts by category, and its covariate effects (into
/// `parts.costs`).
#[allow(clippy::too_many_arguments)]
fn state_cost(
    ck: &mut Checker,
    arm: &Arm,
    ai: usize,
    si: usize,
    field: &str,
    c: &crate::scenario::Cost,
    entry: bool,
    parts: &mut Parts,
) -> (f64, Vec<(String, f64)>) {
    ck.begin(state_place(arm, Place::Cost));
    let v = ck.cost(field, c);
    for (at, _, pred) in ck.end() {
        let category = at
            .strip_prefix(field)
            .and_then(|k| k.strip_prefix('.'))
            .map(str::to_string);
        parts.costs.push((ai, si, entry, category, pred));
    }
    v
}

/// A multinomial-logit initial distribution: every starting state has a predictor (the
/// reference one `intercept = 0`); the others start nobody. At covariates 0 the shares
/// are `exp(intercept)` normalised.
fn mlogit_initial(ck: &mut Checker, arm: &Arm, f: &str, effects: &ArmEffects, initial: &mut [f64]) {
    let linear: Vec<usize> = effects
        .effects
        .iter()
        .filter_map(|(t, _)| match t {
            Target::Initial { state } => Some(*state),
            _ => None,
        })
        .collect();
    for (si, p) in initial.iter_mut().enumerate() {
        if !linear.contains(&si) {
            if *p != 0.0 {
                ck.error(
                    &format!("{f}.states[{si}].initial"),
                    format!("arm `{}` has a multinomial-logit initial distribution, so every starting state's `initial` is an mlogit predictor (the reference state's is {{ link = \"mlogit\", intercept = 0 }}); state `{}` has a plain probability", arm.name, arm.states[si].name),
                );
            }
            *p = 0.0;
        }
    }
    let total: f64 = initial.iter().sum();
    for p in initial.iter_mut() {
        *p /= total;
    }
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
    effects: &mut ArmEffects,
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
        ck.begin(Place::Family {
            prefix: format!("{tf}.time"),
            time: tr.time.clone(),
        });
        let family = family_of(ck, &format!("{tf}.time"), &tr.time);
        let varying = ck.end();
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
            for (_, slot, pred) in varying {
                let exit = exits[from].len();
                effects.effects.push((
                    Target::Family {
                        state: from,
                        exit,
                        slot,
                    },
                    pred,
                ));
            }
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
