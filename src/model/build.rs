//! Compiles a parsed scenario into a [`Model`], checking every value and collecting all
//! errors (each located by field path, line and column).

use super::family::Family;
use super::lifetable::LifeTable;
use super::population::AgeModel;
use super::{ArmModel, Exit, Model, PopulationModel, SimSettings, StateModel, TherapyTerms};
use crate::accounting::Discounter;
use crate::contracts::ContractTerms;
use crate::scenario::{
    AgeDistribution, Contract, Diagnostic, Scenario, ScenarioError, Source, StopEvent, TimeToEvent,
};

/// Tolerance on the sum of an initial distribution.
pub const INITIAL_SUM_TOLERANCE: f64 = 1e-6;
/// Longest horizon accepted, in years.
pub const MAX_HORIZON: f64 = 200.0;
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
                    AgeModel::Normal { mean, sd, min, max }
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
    let life_table = match source.read_data(&lt.file) {
        Err(e) => {
            ck.error("population.life_table.file", e);
            None
        }
        Ok((shown, text)) => match LifeTable::from_csv(
            &text,
            lt.measure,
            (&lt.age_column, &lt.female_column, &lt.male_column),
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                ck.errors.push(Diagnostic {
                    file: shown,
                    line: None,
                    column: None,
                    field: String::new(),
                    message: format!("{e} (life table referenced by population.life_table.file)"),
                });
                None
            }
        },
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
    let mut names: Vec<&str> = Vec::new();
    let mut arms = Vec::new();
    if sc.arms.is_empty() {
        ck.error("arms", "at least one arm (the therapy arm) is required");
    }
    for (ai, arm) in sc.arms.iter().enumerate() {
        let f = format!("arms[{ai}]");
        if names.contains(&arm.name.as_str()) {
            ck.error(
                &format!("{f}.name"),
                format!("arm `{}` is defined twice", arm.name),
            );
        }
        names.push(&arm.name);
        ck.finite(&format!("{f}.start_cost"), arm.start_cost);
        if arm.states.is_empty() {
            ck.error(&format!("{f}.states"), "an arm needs at least one state");
            continue;
        }
        let state_names: Vec<&str> = arm.states.iter().map(|s| s.name.as_str()).collect();
        let known = state_names.join(", ");
        let mut states = Vec::new();
        let mut initial_sum = 0.0;
        let mut cumulative = Vec::new();
        for (si, st) in arm.states.iter().enumerate() {
            let sf = format!("{f}.states[{si}]");
            if state_names[..si].contains(&st.name.as_str()) {
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
        let death = match state_names.iter().position(|n| *n == arm.death_state) {
            Some(d) => d,
            None => {
                ck.error(
                    &format!("{f}.death_state"),
                    format!(
                        "`{}` is not a state of this arm; states: {known}",
                        arm.death_state
                    ),
                );
                0
            }
        };
        if let Some(d) = arm
            .states
            .get(death)
            .filter(|_| state_names.contains(&arm.death_state.as_str()))
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
            let from = state_names.iter().position(|n| *n == tr.from);
            let to = state_names.iter().position(|n| *n == tr.to);
            if from.is_none() {
                ck.error(
                    &format!("{tf}.from"),
                    format!("`{}` is not a state; states: {known}", tr.from),
                );
            }
            if to.is_none() {
                ck.error(
                    &format!("{tf}.to"),
                    format!("`{}` is not a state; states: {known}", tr.to),
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
        arms.push(ArmModel {
            name: arm.name.clone(),
            states,
            death,
            initial_cumulative: cumulative,
            exits,
            start_cost: arm.start_cost,
        });
    }

    // --- therapy
    let th = &sc.therapy;
    let therapy_arm = sc.arms.iter().position(|a| a.name == th.arm);
    if therapy_arm.is_none() {
        ck.error(
            "therapy.arm",
            format!("`{}` is not an arm; arms: {}", th.arm, names.join(", ")),
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

    // --- contracts
    let mut contracts = Vec::new();
    let mut contract_names: Vec<&str> = Vec::new();
    for (ci, c) in sc.contracts.iter().enumerate() {
        let f = format!("contracts[{ci}]");
        let name = c.name();
        if contract_names.contains(&name) {
            ck.error(
                &format!("{f}.name"),
                format!("contract `{name}` is defined twice"),
            );
        }
        if name == NO_CONTRACT || name.is_empty() {
            ck.error(
                &format!("{f}.name"),
                format!("`{name}` is not allowed as a contract name (`{NO_CONTRACT}` labels the comparators)"),
            );
        }
        contract_names.push(name);
        match c {
            Contract::Upfront { name, at } => {
                ck.range(
                    &format!("{f}.at"),
                    *at,
                    0.0,
                    s.horizon,
                    "a time in [0, horizon]",
                );
                contracts.push(ContractTerms::upfront(name, *at));
            }
            Contract::Installments {
                name,
                payments,
                interval,
                first,
                interest,
                stop_on,
            } => {
                if *payments == 0 {
                    ck.error(
                        &format!("{f}.payments"),
                        "0 is not allowed: at least 1 payment",
                    );
                }
                ck.positive(&format!("{f}.interval"), *interval);
                ck.range(
                    &format!("{f}.first"),
                    *first,
                    0.0,
                    s.horizon,
                    "a time in [0, horizon]",
                );
                ck.range(
                    &format!("{f}.interest"),
                    *interest,
                    0.0,
                    1.0,
                    "an annual rate in [0, 1]",
                );
                let last = first + interval * (payments.saturating_sub(1)) as f64;
                if last.is_finite() && last > s.horizon {
                    ck.error(
                        &format!("{f}.payments"),
                        format!(
                            "the last payment falls at {last} years, after the horizon ({} years)",
                            s.horizon
                        ),
                    );
                }
                contracts.push(ContractTerms::installments(
                    name,
                    *payments,
                    *interval,
                    *first,
                    *interest,
                    stop_on.contains(&StopEvent::Death),
                ));
            }
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
    })
}

/// Reads, parses and compiles a scenario in one step.
pub fn load(source: &Source) -> Result<(Scenario, Model), ScenarioError> {
    let sc = source.parse()?;
    let model = compile(source, &sc)?;
    Ok((sc, model))
}
