//! Compiles a parsed scenario into a [`Model`], checking every value and collecting all
//! errors (each located by field path, line and column).

use super::family::Family;
use super::lifetable::LifeTable;
use super::population::AgeModel;
use super::{
    ArmModel, CohortModel, Exit, Model, PopulationModel, SimSettings, StateModel, TherapyTerms,
};
use crate::accounting::Discounter;
use crate::contracts::{
    ContractTerms, Installment, OutcomeDef, OutcomeTest, PlanTerms, ProrateRule, Warranty,
};
use crate::scenario::{
    AgeDistribution, Contract, ContractType, Diagnostic, OutcomeKind, Prorate, Scenario,
    ScenarioError, Source, StopEvent, TimeToEvent,
};
use std::collections::HashSet;

/// Tolerance on the sum of an initial distribution.
pub const INITIAL_SUM_TOLERANCE: f64 = 1e-6;
/// Longest horizon accepted, in years.
pub const MAX_HORIZON: f64 = 200.0;
/// Most installments in one contract.
pub const MAX_PAYMENTS: u32 = 100_000;
/// Name used in outputs for the comparator arms' (absent) contract.
pub const NO_CONTRACT: &str = "none";

struct Checker<'a> {
    source: &'a Source,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(self.source.diagnostic(field, message));
    }

    /// A finite number in [lo, hi] (either bound may be infinite).
    fn range(&mut self, field: &str, v: f64, lo: f64, hi: f64, what: &str) {
        if !v.is_finite() || v < lo || v > hi {
            self.error(field, format!("{v} is not allowed: {what}"));
        }
    }

    fn positive(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.error(
                field,
                format!("{v} is not allowed: must be a finite number > 0"),
            );
        }
    }

    fn finite(&mut self, field: &str, v: f64) {
        if !v.is_finite() {
            self.error(
                field,
                format!("{v} is not allowed: must be a finite number"),
            );
        }
    }
}

fn family_of(t: &TimeToEvent) -> Family {
    match t {
        TimeToEvent::Exponential { rate } => Family::Exponential { rate: *rate },
        TimeToEvent::Weibull { shape, scale } => Family::Weibull {
            shape: *shape,
            scale: *scale,
        },
        TimeToEvent::Gompertz { shape, rate } => Family::Gompertz {
            shape: *shape,
            rate: *rate,
        },
        TimeToEvent::Lognormal { meanlog, sdlog } => Family::LogNormal {
            meanlog: *meanlog,
            sdlog: *sdlog,
        },
        TimeToEvent::Loglogistic { shape, scale } => Family::LogLogistic {
            shape: *shape,
            scale: *scale,
        },
        TimeToEvent::Gamma { shape, rate } => Family::Gamma {
            shape: *shape,
            rate: *rate,
        },
        TimeToEvent::PiecewiseExponential { cuts, rates } => Family::PiecewiseExponential {
            cuts: cuts.clone(),
            rates: rates.clone(),
        },
        TimeToEvent::MixtureCure {
            cure_fraction,
            uncured,
        } => Family::MixtureCure {
            cure_fraction: *cure_fraction,
            uncured: Box::new(family_of(uncured)),
        },
    }
}

/// A sum of decimal shares shown as the user would write it (0.6 + 0.6 + ... = 1.8, not
/// 1.7999999999999998).
fn rounded(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// Refuses a life table that ends before the ages patients can reach (the oldest age at
/// treatment plus the horizon, or `max_age` if earlier), unless it says how to extrapolate.
fn check_life_table_covers(
    ck: &mut Checker,
    t: &LifeTable,
    extrapolate: Option<crate::scenario::LifeTableExtrapolation>,
    max_age: Option<f64>,
    oldest: f64,
    horizon: f64,
) {
    let covered = t.last_age() + 1.0;
    // Without max_age, patients still alive die at the table's end.
    let reached = max_age.unwrap_or(covered).min(oldest + horizon);
    if extrapolate.is_some() || reached <= covered || reached.is_nan() {
        return;
    }
    let why = match max_age {
        Some(m) if m <= oldest + horizon => format!("max_age = {m}"),
        _ => format!("oldest age at treatment {oldest} + horizon {horizon}"),
    };
    ck.error(
        "population.life_table.file",
        format!(
            "the life table's last row is age {} (it covers ages below {covered}), but patients can reach age {reached} ({why}): ages {covered} to {reached} have no death rate. Extend the table, set population.max_age = {covered} or lower, or write `extrapolate = \"last_rate\"` in population.life_table to use the last row's rate at later ages",
            t.last_age()
        ),
    );
}

/// Checks a scenario and compiles it into a model. Reads the life table through `source`.
pub fn compile(source: &Source, sc: &Scenario) -> Result<Model, ScenarioError> {
    let mut ck = Checker {
        source,
        errors: Vec::new(),
    };

    // --- simulation
    let s = &sc.simulation;
    if s.patients == 0 {
        ck.error(
            "simulation.patients",
            "0 is not allowed: must be at least 1",
        );
    }
    if !(s.horizon.is_finite() && s.horizon > 0.0 && s.horizon <= MAX_HORIZON) {
        ck.error(
            "simulation.horizon",
            format!(
                "{} is not allowed: must be > 0 and <= {MAX_HORIZON} years",
                s.horizon
            ),
        );
    }
    for (field, r) in [
        ("simulation.discount.costs", s.discount.costs),
        ("simulation.discount.outcomes", s.discount.outcomes),
        ("simulation.discount.manufacturer", s.discount.manufacturer),
    ] {
        ck.range(
            field,
            r,
            0.0,
            1.0,
            "an annual rate in [0, 1] (0.035 means 3.5%)",
        );
    }
    for (i, w) in s.wtp.iter().enumerate() {
        ck.range(
            &format!("simulation.wtp[{i}]"),
            *w,
            0.0,
            f64::INFINITY,
            "a threshold >= 0 per QALY",
        );
    }
    let occupancy_step = s.occupancy_step.unwrap_or(1.0 / 12.0);
    if !(occupancy_step.is_finite() && occupancy_step > 0.0)
        || (s.horizon.is_finite() && s.horizon / occupancy_step > 100_000.0)
    {
        ck.error(
            "simulation.occupancy_step",
            format!(
                "{occupancy_step} is not allowed: must be > 0, with at most 100000 steps in the horizon"
            ),
        );
    }

    // --- population
    let p = &sc.population;
    ck.range(
        "population.share_female",
        p.share_female,
        0.0,
        1.0,
        "a share in [0, 1]",
    );
    let age = match (&p.age, &p.age_distribution) {
        (Some(a), None) => {
            ck.range("population.age", *a, 0.0, 150.0, "an age in [0, 150] years");
            AgeModel::Fixed(*a)
        }
        (None, Some(d)) => {
            let f = "population.age_distribution";
            match *d {
                AgeDistribution::Normal { mean, sd, min, max } => {
                    ck.finite(&format!("{f}.mean"), mean);
                    ck.positive(&format!("{f}.sd"), sd);
                    ck.range(&format!("{f}.min"), min, 0.0, 150.0, "an age in [0, 150]");
                    ck.range(&format!("{f}.max"), max, 0.0, 150.0, "an age in [0, 150]");
                    if min >= max {
                        ck.error(&format!("{f}.max"), format!("{max} must be > min ({min})"));
                    }
                    AgeModel::normal(mean, sd, min, max)
                }
                AgeDistribution::Uniform { min, max } => {
                    ck.range(&format!("{f}.min"), min, 0.0, 150.0, "an age in [0, 150]");
                    ck.range(&format!("{f}.max"), max, 0.0, 150.0, "an age in [0, 150]");
                    if min >= max {
                        ck.error(&format!("{f}.max"), format!("{max} must be > min ({min})"));
                    }
                    AgeModel::Uniform { min, max }
                }
            }
        }
        (Some(_), Some(_)) => {
            ck.error(
                "population.age",
                "give either `age` (fixed) or `age_distribution`, not both",
            );
            AgeModel::Fixed(0.0)
        }
        (None, None) => {
            ck.error(
                "population",
                "missing the age at treatment: give `age = 20` or `age_distribution = { family = \"normal\", mean = .., sd = .., min = .., max = .. }`",
            );
            AgeModel::Fixed(0.0)
        }
    };
    let lt = &p.life_table;
    let mut data_sha256 = String::new();
    let life_table = match source.read_data(&lt.file) {
        Err(e) => {
            ck.error("population.life_table.file", e);
            None
        }
        Ok((shown, text)) => {
            data_sha256 = data_digest(&[(&lt.file, &text)]);
            let columns = (
                lt.age_column.as_str(),
                lt.female_column.as_str(),
                lt.male_column.as_str(),
            );
            match LifeTable::from_csv(&text, lt.measure, columns) {
                Ok(t) => Some(t),
                Err(e) => {
                    ck.errors.push(Diagnostic {
                        file: shown,
                        line: None,
                        column: None,
                        field: String::new(),
                        message: format!(
                            "{e} (life table referenced by population.life_table.file)"
                        ),
                    });
                    None
                }
            }
        }
    };
    let mut max_age = p.max_age.unwrap_or(f64::NAN);
    if let Some(t) = &life_table {
        if p.max_age.is_none() {
            max_age = t.last_age() + 1.0;
        }
        if t.female.first_age() > age.min() {
            ck.error(
                "population.life_table.file",
                format!(
                    "the life table starts at age {}, after the youngest age at treatment ({})",
                    t.female.first_age(),
                    age.min()
                ),
            );
        }
    }
    if let Some(m) = p.max_age {
        ck.range("population.max_age", m, 1.0, 150.0, "an age in [1, 150]");
    }
    if let Some(t) = &life_table {
        check_life_table_covers(&mut ck, t, lt.extrapolate, p.max_age, age.max(), s.horizon);
    }
    if max_age.is_finite() && age.max() >= max_age {
        ck.error(
            "population.max_age",
            format!(
                "{max_age} must be above the oldest age at treatment ({})",
                age.max()
            ),
        );
    }

    // --- arms
    let mut warnings = Vec::new();
    let mut names: HashSet<&str> = HashSet::new();
    let mut arms = Vec::new();
    if sc.arms.is_empty() {
        ck.error("arms", "at least one arm (the therapy arm) is required");
    }
    for (ai, arm) in sc.arms.iter().enumerate() {
        let f = format!("arms[{ai}]");
        if !names.insert(&arm.name) {
            ck.error(
                &format!("{f}.name"),
                format!("arm `{}` is defined twice", arm.name),
            );
        }
        ck.finite(&format!("{f}.start_cost"), arm.start_cost);
        if arm.states.is_empty() {
            ck.error(&format!("{f}.states"), "an arm needs at least one state");
            continue;
        }
        let state_names = Names::new(arm.states.iter().map(|s| s.name.as_str()).collect());
        let mut states = Vec::new();
        let mut initial_sum = 0.0;
        let mut cumulative = Vec::new();
        let mut seen_states: HashSet<&str> = HashSet::new();
        for (si, st) in arm.states.iter().enumerate() {
            let sf = format!("{f}.states[{si}]");
            if !seen_states.insert(&st.name) {
                ck.error(
                    &format!("{sf}.name"),
                    format!("state `{}` is defined twice", st.name),
                );
            }
            ck.range(
                &format!("{sf}.initial"),
                st.initial,
                0.0,
                1.0,
                "a probability in [0, 1]",
            );
            ck.finite(&format!("{sf}.cost"), st.cost);
            ck.finite(&format!("{sf}.entry_cost"), st.entry_cost);
            ck.range(
                &format!("{sf}.utility"),
                st.utility,
                f64::NEG_INFINITY,
                1.0,
                "a utility <= 1 (1 = full health, 0 = dead)",
            );
            initial_sum += st.initial;
            cumulative.push(initial_sum);
            states.push(StateModel {
                name: st.name.clone(),
                cost: st.cost,
                utility: st.utility,
                entry_cost: st.entry_cost,
            });
        }
        if (initial_sum - 1.0).abs() > INITIAL_SUM_TOLERANCE {
            ck.error(
                &format!("{f}.states"),
                format!(
                    "the initial probabilities sum to {initial_sum}; they must sum to 1 (tolerance {INITIAL_SUM_TOLERANCE})"
                ),
            );
        }
        // Normalise away rounding so the last cumulative value is exactly 1.
        for c in cumulative.iter_mut() {
            *c /= initial_sum.max(f64::MIN_POSITIVE);
        }
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }
        let death = match state_names.find(&arm.death_state) {
            Some(d) => d,
            None => {
                ck.error(
                    &format!("{f}.death_state"),
                    unknown_name(
                        &arm.death_state,
                        "a state of this arm",
                        "states",
                        &state_names,
                    ),
                );
                0
            }
        };
        if let Some(d) = arm
            .states
            .get(death)
            .filter(|_| state_names.find(&arm.death_state).is_some())
        {
            let sf = format!("{f}.states[{death}]");
            if d.initial != 0.0 {
                ck.error(
                    &format!("{sf}.initial"),
                    "the death state cannot be an initial state",
                );
            }
            if d.cost != 0.0 || d.utility != 0.0 {
                ck.error(
                    &sf,
                    "the death state accrues no cost rate or utility (use entry_cost for a cost at death)",
                );
            }
        }
        let mut exits: Vec<Vec<Exit>> = vec![Vec::new(); arm.states.len()];
        for (ti, tr) in arm.transitions.iter().enumerate() {
            let tf = format!("{f}.transitions[{ti}]");
            let from = state_names.find(&tr.from);
            let to = state_names.find(&tr.to);
            if from.is_none() {
                ck.error(
                    &format!("{tf}.from"),
                    unknown_name(&tr.from, "a state", "states", &state_names),
                );
            }
            if to.is_none() {
                ck.error(
                    &format!("{tf}.to"),
                    unknown_name(&tr.to, "a state", "states", &state_names),
                );
            }
            let family = family_of(&tr.time);
            if let Err(e) = family.validate() {
                ck.error(&format!("{tf}.time"), e);
            }
            if let (Some(from), Some(to)) = (from, to) {
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
        }
        // A discrete-time (cycle-based) arm: its own transitions, counting and discounting.
        let mut discrete = None;
        let mut discrete_edges = Vec::new();
        if let Some(mk) = &arm.markov {
            let costs: Vec<f64> = states.iter().map(|st| st.cost).collect();
            let compiled = crate::markov::compile::compile(
                arm,
                mk,
                &f,
                death,
                &costs,
                crate::markov::compile::Context {
                    horizon: s.horizon,
                    discount_costs: s.discount.costs,
                    discount_outcomes: s.discount.outcomes,
                    ages: (age.min(), age.max()),
                },
            );
            for (field, message) in compiled.errors {
                ck.error(&field, message);
            }
            discrete = compiled.arm;
            discrete_edges = compiled.edges;
        }
        // States that can never be entered: no initial probability and no transition into
        // them from a reachable state (death is always reachable through background mortality).
        let mut reachable: Vec<bool> = arm.states.iter().map(|st| st.initial > 0.0).collect();
        if death < reachable.len() {
            reachable[death] = true;
        }
        loop {
            let mut changed = false;
            for (from, ex) in exits.iter().enumerate() {
                if reachable[from] {
                    for e in ex {
                        if !reachable[e.to] {
                            reachable[e.to] = true;
                            changed = true;
                        }
                    }
                }
            }
            for &(from, to) in &discrete_edges {
                if reachable[from] && !reachable[to] {
                    reachable[to] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (si, st) in arm.states.iter().enumerate() {
            if !reachable[si] {
                warnings.push(source.diagnostic(
                    &format!("{f}.states[{si}]"),
                    format!(
                        "state `{}` of arm `{}` can never be entered: it has no initial probability and no transition into it from a reachable state",
                        st.name, arm.name
                    ),
                ));
            }
        }
        arms.push(ArmModel {
            name: arm.name.clone(),
            states,
            death,
            initial_cumulative: cumulative,
            exits,
            start_cost: arm.start_cost,
            discrete,
        });
    }

    // --- therapy
    let th = &sc.therapy;
    let therapy_arm = sc.arms.iter().position(|a| a.name == th.arm);
    if therapy_arm.is_none() {
        ck.error(
            "therapy.arm",
            unknown_name(
                &th.arm,
                "an arm",
                "arms",
                &sc.arms.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ),
        );
    }
    ck.range(
        "therapy.list_price",
        th.list_price,
        0.0,
        f64::INFINITY,
        "a price >= 0",
    );
    ck.range(
        "therapy.administration_cost",
        th.administration_cost,
        0.0,
        f64::INFINITY,
        "a cost >= 0",
    );
    ck.range(
        "therapy.cost_of_goods",
        th.cost_of_goods,
        0.0,
        f64::INFINITY,
        "a cost >= 0",
    );
    if let Some(a) = therapy_arm.and_then(|a| arms.get_mut(a)) {
        a.start_cost += th.administration_cost;
    }

    // --- outcomes, assessment plans, payer, manufacturer, cohort, contracts
    let therapy_states = Names::new(
        therapy_arm
            .and_then(|a| sc.arms.get(a))
            .map(|a| a.states.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default(),
    );
    let outcomes = compile_outcomes(&mut ck, sc, &therapy_states);
    let outcome_names = Names::new(sc.outcomes.iter().map(|o| o.name.as_str()).collect());
    let plans = compile_plans(&mut ck, sc, &outcome_names);
    let plan_names = Names::new(sc.observations.iter().map(|o| o.name.as_str()).collect());
    let churn = sc
        .payer
        .as_ref()
        .and_then(|p| p.churn.as_ref())
        .and_then(|c| {
            let f = "payer.churn";
            match (c.annual_probability, c.retention.is_empty()) {
                (Some(p), true) => {
                    ck.range(
                        &format!("{f}.annual_probability"),
                        p,
                        0.0,
                        0.999_999,
                        "a probability in [0, 1)",
                    );
                    (p > 0.0).then(|| Family::Exponential {
                        rate: -(-p).ln_1p(),
                    })
                }
                (None, false) => retention_family(&mut ck, f, &c.retention),
                _ => {
                    ck.error(
                        f,
                        "give either `annual_probability` or `retention`, not both or neither",
                    );
                    None
                }
            }
        });
    let manufacturer_default = sc.manufacturer.as_ref().and_then(|m| {
        let p = m.annual_default_probability;
        ck.range(
            "manufacturer.annual_default_probability",
            p,
            0.0,
            0.999_999,
            "a probability in [0, 1)",
        );
        (p > 0.0 && p < 1.0).then(|| Family::Exponential {
            rate: -(-p).ln_1p(),
        })
    });
    let cohort = sc.cohort.as_ref().map(|c| {
        let size: u64 = c.uptake.iter().map(|&n| n as u64).sum();
        if size == 0 {
            ck.error("cohort.uptake", "at least one patient must be treated");
        }
        if let Some(cap) = c.annual_cap {
            ck.positive("cohort.annual_cap", cap);
        }
        let years = c.years.unwrap_or(10) as usize;
        if years == 0 || years > 200 {
            ck.error("cohort.years", format!("{years} is not allowed: 1 to 200 calendar years"));
        }
        let wanted = c.replicates.unwrap_or(1000) as u64;
        if wanted == 0 {
            ck.error("cohort.replicates", "0 is not allowed: at least 1");
        }
        let possible = s.patients / size.max(1);
        if possible < 2 && size > 0 && s.patients > 0 {
            ck.error(
                "cohort.uptake",
                format!(
                    "a cohort has {size} patients but the run simulates {}: simulate at least two cohorts' worth (cohort-level risk comes from whole simulated cohorts)",
                    s.patients
                ),
            );
        }
        CohortModel {
            uptake: c.uptake.clone(),
            years,
            annual_cap: c.annual_cap,
            replicates: wanted.min(possible).max(1),
            requested_replicates: wanted.max(1),
        }
    });

    let mut contracts = Vec::new();
    let mut contract_names: HashSet<&str> = HashSet::new();
    for (ci, c) in sc.contracts.iter().enumerate() {
        let f = format!("contracts[{ci}]");
        if !contract_names.insert(&c.name) {
            ck.error(
                &format!("{f}.name"),
                format!("contract `{}` is defined twice", c.name),
            );
        }
        if c.name == NO_CONTRACT || c.name.is_empty() {
            ck.error(
                &format!("{f}.name"),
                format!(
                    "`{}` is not allowed as a contract name (`{NO_CONTRACT}` labels the comparators)",
                    c.name
                ),
            );
        }
        if let Some(t) = compile_contract(&mut ck, &f, c, s.horizon, &outcome_names, &plan_names) {
            contracts.push(t);
        }
    }
    if sc.contracts.is_empty() {
        contracts.push(ContractTerms::upfront("upfront", 0.0));
    }

    if !ck.errors.is_empty() {
        return Err(ScenarioError {
            diagnostics: ck.errors,
        });
    }
    Ok(Model {
        data_sha256,
        data_files: source.data_path(&lt.file).into_iter().collect(),
        name: sc.metadata.name.clone(),
        description: sc.metadata.description.clone(),
        currency: sc.metadata.currency.clone(),
        price_year: sc.metadata.price_year,
        sim: SimSettings {
            patients: s.patients,
            seed: s.seed,
            horizon: s.horizon,
            costs: Discounter::new(s.discount.costs),
            outcomes: Discounter::new(s.discount.outcomes),
            manufacturer: Discounter::new(s.discount.manufacturer),
            wtp: s.wtp.clone(),
            occupancy_step,
        },
        population: PopulationModel {
            age,
            share_female: p.share_female,
            max_age,
            life_table: life_table.expect("no errors means the life table was read"),
        },
        therapy: TherapyTerms {
            arm: therapy_arm.expect("no errors means the therapy arm exists"),
            list_price: th.list_price,
            administration_cost: th.administration_cost,
            cost_of_goods: th.cost_of_goods,
        },
        arms,
        contracts,
        outcomes,
        plans,
        churn,
        manufacturer_default,
        cohort,
        warnings,
    })
}

/// "`name` is not a KIND; did you mean `x`? KINDs: a, b" — the closest known name is
/// suggested when it is close (case-insensitive match, or a few edits away).
pub fn unknown_name(name: &str, kind: &str, plural: &str, known: &[&str]) -> String {
    let hint = crate::scenario::suggest::closest(name, known)
        .map_or(String::new(), |k| format!("did you mean `{k}`? "));
    let list = if known.is_empty() {
        "(none)".to_string()
    } else {
        known.join(", ")
    };
    format!("`{name}` is not {kind}; {hint}{plural}: {list}")
}

/// Names with an index, for lookups in constant time (the first of repeated names wins).
struct Names<'a> {
    list: Vec<&'a str>,
    index: std::collections::HashMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    fn new(list: Vec<&'a str>) -> Self {
        let mut index = std::collections::HashMap::with_capacity(list.len());
        for (i, n) in list.iter().enumerate() {
            index.entry(*n).or_insert(i);
        }
        Names { list, index }
    }

    /// Position of `name`.
    fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

impl<'a> std::ops::Deref for Names<'a> {
    type Target = [&'a str];
    fn deref(&self) -> &[&'a str] {
        &self.list
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

fn compile_plans(ck: &mut Checker, sc: &Scenario, outcomes: &Names) -> Vec<PlanTerms> {
    let horizon = sc.simulation.horizon;
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
        let times = match (p.times.is_empty(), p.every) {
            (false, None) => {
                for (k, t) in p.times.iter().enumerate() {
                    ck.range(
                        &format!("{f}.times[{k}]"),
                        *t,
                        0.0,
                        horizon,
                        "a time in [0, horizon]",
                    );
                }
                if p.times.windows(2).any(|w| w[1] <= w[0]) {
                    ck.error(&format!("{f}.times"), "times must be strictly increasing");
                }
                p.times.clone()
            }
            (true, Some(every)) => {
                ck.positive(&format!("{f}.every"), every);
                let first = p.first.unwrap_or(every);
                let until = p.until.unwrap_or(horizon).min(horizon);
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
        for (name, v) in [
            ("sensitivity", p.sensitivity),
            ("specificity", p.specificity),
            ("missed", p.missed),
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
            ("cost_payer", p.cost_payer),
            ("cost_manufacturer", p.cost_manufacturer),
            ("annual_cost_payer", p.annual_cost_payer),
            ("annual_cost_manufacturer", p.annual_cost_manufacturer),
        ] {
            ck.range(&format!("{f}.{name}"), v, 0.0, f64::INFINITY, "a cost >= 0");
        }
        out.push(PlanTerms {
            name: p.name.clone(),
            outcome,
            times,
            sensitivity: p.sensitivity,
            specificity: p.specificity,
            missed: p.missed,
            if_missed: p.if_missed,
            cost_payer: p.cost_payer,
            cost_manufacturer: p.cost_manufacturer,
            annual_cost_payer: p.annual_cost_payer,
            annual_cost_manufacturer: p.annual_cost_manufacturer,
        });
    }
    out
}

/// A retention table (years, share still with the payer) as a piecewise-exponential
/// time to leaving: constant hazard between points, the last hazard afterwards.
fn retention_family(ck: &mut Checker, f: &str, rows: &[[f64; 2]]) -> Option<Family> {
    let mut cuts = Vec::new();
    let mut rates = Vec::new();
    let (mut t0, mut s0) = (0.0, 1.0);
    let mut ok = true;
    for (k, [t, share]) in rows.iter().copied().enumerate() {
        if !(t > t0 && t.is_finite() && share > 0.0 && share <= s0) {
            ck.error(
                &format!("{f}.retention[{k}]"),
                format!(
                    "[{t}, {share}] is not allowed: years must increase from 0 and shares must be in (0, 1] and not increase"
                ),
            );
            ok = false;
            break;
        }
        rates.push((s0 / share).ln() / (t - t0));
        cuts.push(t);
        (t0, s0) = (t, share);
    }
    if !ok || rates.is_empty() {
        if ok {
            ck.error(
                &format!("{f}.retention"),
                "the table needs at least one row",
            );
        }
        return None;
    }
    let last = *rates.last().expect("non-empty");
    rates.push(last);
    Some(Family::PiecewiseExponential { cuts, rates })
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
            let at = c.at.unwrap_or(0.0);
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
            let interest = c.interest.unwrap_or(0.0);
            ck.range(
                &format!("{f}.interest"),
                interest,
                0.0,
                1.0,
                "an annual rate in [0, 1]",
            );
            let times: Vec<f64> = match (c.times.is_empty(), c.payments, c.interval) {
                (true, Some(n), Some(iv)) => {
                    if n == 0 {
                        ck.error(
                            &format!("{f}.payments"),
                            "0 is not allowed: at least 1 payment",
                        );
                    }
                    ck.positive(&format!("{f}.interval"), iv);
                    let first = c.first.unwrap_or(0.0);
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
                    for (k, t) in c.times.iter().enumerate() {
                        in_time(ck, &format!("{f}.times[{k}]"), *t);
                    }
                    if c.times.windows(2).any(|w| w[1] <= w[0]) {
                        ck.error(&format!("{f}.times"), "times must be strictly increasing");
                    }
                    c.times.clone()
                }
                _ => {
                    ck.error(
                        f,
                        "give either `payments` and `interval` (with optional `first`), or `times`",
                    );
                    return None;
                }
            };
            let fractions: Vec<f64> = if c.amounts.is_empty() {
                vec![ContractTerms::annuity_fraction(&times, interest); times.len()]
            } else {
                if c.amounts.len() != times.len() {
                    ck.error(
                        &format!("{f}.amounts"),
                        format!(
                            "{} amounts for {} payments: give one share per payment",
                            c.amounts.len(),
                            times.len()
                        ),
                    );
                }
                for (k, a) in c.amounts.iter().enumerate() {
                    ck.range(
                        &format!("{f}.amounts[{k}]"),
                        *a,
                        0.0,
                        1.0,
                        "a share of the list price in [0, 1]",
                    );
                }
                let total: f64 = c.amounts.iter().sum();
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
                c.amounts.clone()
            };
            let condition = c
                .condition
                .as_ref()
                .and_then(|o| outcome_of(ck, &format!("{f}.condition"), o));
            let from = c.condition_from.unwrap_or(0.0);
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
                in_time(ck, &format!("{mf}.at"), m.at);
                ck.range(
                    &format!("{mf}.share"),
                    m.share,
                    0.0,
                    1.0,
                    "a share of the list price in [0, 1]",
                );
                let condition = m
                    .condition
                    .as_ref()
                    .and_then(|o| outcome_of(ck, &format!("{mf}.condition"), o));
                v.push(Installment {
                    time: m.at,
                    fraction: m.share,
                    condition,
                });
            }
            if c.milestones.windows(2).any(|w| w[1].at < w[0].at) {
                ck.error(
                    &format!("{f}.milestones"),
                    "milestones must be in time order",
                );
            }
            let total: f64 = c.milestones.iter().map(|m| m.share).sum();
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
        ck.range(
            &format!("{wf}.window"),
            w.window,
            1e-9,
            horizon,
            "a window in (0, horizon] years",
        );
        ck.range(
            &format!("{wf}.refund"),
            w.refund,
            0.0,
            1.0,
            "a share in [0, 1]",
        );
        let prorate = match w.prorate {
            Prorate::None => ProrateRule::None,
            Prorate::Linear => ProrateRule::Linear,
            Prorate::Stepped => ProrateRule::Stepped,
            Prorate::Table => {
                if w.table.is_empty() {
                    ck.error(
                        &format!("{wf}.table"),
                        "prorate = \"table\" needs table = [[until, share], ...]",
                    );
                }
                for (k, [until, share]) in w.table.iter().copied().enumerate() {
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
                if w.table.windows(2).any(|p| p[1][0] <= p[0][0]) {
                    ck.error(&format!("{wf}.table"), "rows must be in increasing time");
                }
                ProrateRule::Table(w.table.iter().map(|r| (r[0], r[1])).collect())
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
            window: w.window,
            refund: w.refund,
            prorate,
        });
    }
    if let Some(cap) = c.cap {
        ck.range(
            &format!("{f}.cap"),
            cap,
            0.0,
            f64::INFINITY,
            "a share of the list price >= 0",
        );
    }
    if let Some(floor) = c.floor {
        ck.range(
            &format!("{f}.floor"),
            floor,
            0.0,
            c.cap.unwrap_or(f64::INFINITY),
            "a share of the list price >= 0 and <= cap",
        );
    }
    terms.cap = c.cap;
    terms.floor = c.floor;
    Some(terms)
}

/// Reads, parses and compiles a scenario in one step.
pub fn load(source: &Source) -> Result<(Scenario, Model), ScenarioError> {
    let sc = source.parse()?;
    let model = compile(source, &sc)?;
    Ok((sc, model))
}

/// SHA-256 (hex) of the data files a scenario reads, each as its name as written in the
/// scenario and its content: what shards and manifests record so that results are tied to
/// the exact data.
pub fn data_digest(files: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
