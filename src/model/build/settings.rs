//! The scenario's settings: simulation, population, therapy, payer, manufacturer, cohort.

use super::{Checker, Data, MAX_HORIZON};
use crate::accounting::Discounter;
use crate::model::family::Family;
use crate::model::lifetable::LifeTable;
use crate::model::population::AgeModel;
use crate::model::{ArmModel, CohortModel, PopulationModel, SimSettings, TherapyTerms};
use crate::scenario::{AgeDistribution, LifeTableExtrapolation, Num, Scenario};

/// `[simulation]`.
pub(super) fn simulation(ck: &mut Checker, sc: &Scenario) -> SimSettings {
    let s = &sc.simulation;
    if s.patients == 0 {
        ck.error(
            "simulation.patients",
            "0 is not allowed: must be at least 1",
        );
    }
    let horizon = ck.num("simulation.horizon", &s.horizon);
    if !(horizon.is_finite() && horizon > 0.0 && horizon <= MAX_HORIZON) {
        ck.error(
            "simulation.horizon",
            format!("{horizon} is not allowed: must be > 0 and <= {MAX_HORIZON} years"),
        );
    }
    let mut rate = |field: &str, n: &Num| {
        let r = ck.num(field, n);
        ck.range(
            field,
            r,
            0.0,
            1.0,
            "an annual rate in [0, 1] (0.035 means 3.5%)",
        );
        r
    };
    let costs = rate("simulation.discount.costs", &s.discount.costs);
    let outcomes = rate("simulation.discount.outcomes", &s.discount.outcomes);
    let manufacturer = rate("simulation.discount.manufacturer", &s.discount.manufacturer);
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
        || (horizon.is_finite() && horizon / occupancy_step > 100_000.0)
    {
        ck.error(
            "simulation.occupancy_step",
            format!(
                "{occupancy_step} is not allowed: must be > 0, with at most 100000 steps in the horizon"
            ),
        );
    }
    SimSettings {
        patients: s.patients,
        seed: s.seed,
        horizon,
        costs: Discounter::new(costs),
        outcomes: Discounter::new(outcomes),
        manufacturer: Discounter::new(manufacturer),
        wtp: s.wtp.clone(),
        occupancy_step,
    }
}

/// The age at treatment.
fn age(ck: &mut Checker, sc: &Scenario, table_age: bool) -> AgeModel {
    let p = &sc.population;
    if table_age {
        if p.age.is_some() || p.age_distribution.is_some() {
            ck.error(
                "population.age",
                "the patient table gives each patient's age: remove `age` / `age_distribution`",
            );
        }
        // Not drawn: each patient's age comes from its profile.
        return AgeModel::Fixed(f64::NAN);
    }
    match (&p.age, &p.age_distribution) {
        (Some(a), None) => {
            let a = ck.num("population.age", a);
            ck.range("population.age", a, 0.0, 150.0, "an age in [0, 150] years");
            AgeModel::Fixed(a)
        }
        (None, Some(d)) => {
            let f = "population.age_distribution";
            let bounds = |ck: &mut Checker, min: &Num, max: &Num| {
                let (min, max) = (
                    ck.num(&format!("{f}.min"), min),
                    ck.num(&format!("{f}.max"), max),
                );
                ck.range(&format!("{f}.min"), min, 0.0, 150.0, "an age in [0, 150]");
                ck.range(&format!("{f}.max"), max, 0.0, 150.0, "an age in [0, 150]");
                if min >= max {
                    ck.error(&format!("{f}.max"), format!("{max} must be > min ({min})"));
                }
                (min, max)
            };
            match d {
                AgeDistribution::Normal { mean, sd, min, max } => {
                    let mean = ck.num(&format!("{f}.mean"), mean);
                    let sd = ck.num(&format!("{f}.sd"), sd);
                    ck.finite(&format!("{f}.mean"), mean);
                    ck.positive(&format!("{f}.sd"), sd);
                    let (min, max) = bounds(ck, min, max);
                    AgeModel::normal(mean, sd, min, max)
                }
                AgeDistribution::Uniform { min, max } => {
                    let (min, max) = bounds(ck, min, max);
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
    }
}

/// Refuses a life table that ends before the ages patients can reach (the oldest age at
/// treatment plus the horizon, or `max_age` if earlier), unless it says how to extrapolate.
fn check_life_table_covers(
    ck: &mut Checker,
    t: &LifeTable,
    extrapolate: Option<LifeTableExtrapolation>,
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

/// `[population]`: age, sex and background mortality.
pub(super) fn population(
    ck: &mut Checker,
    sc: &Scenario,
    data: &Data,
    horizon: f64,
) -> Option<PopulationModel> {
    let p = &sc.population;
    let table_age = p.patients.is_some()
        && data
            .patients
            .as_ref()
            .is_some_and(|t| t.columns.iter().any(|(n, _)| n == "age"));
    let age = age(ck, sc, table_age);
    let chars = super::characteristics::characteristics(ck, sc, data, &age);
    let table_sex = chars.table.as_ref().is_some_and(|t| t.has_sex);
    let share_female = match (&p.share_female, table_sex) {
        (Some(n), false) => {
            let v = ck.num("population.share_female", n);
            ck.range("population.share_female", v, 0.0, 1.0, "a share in [0, 1]");
            v
        }
        (Some(_), true) => {
            ck.error(
                "population.share_female",
                "the patient table gives each patient's sex: remove share_female",
            );
            f64::NAN
        }
        (None, true) => f64::NAN,
        (None, false) => {
            ck.error(
                "population",
                "missing `share_female` (the share of patients who are female, in [0, 1])",
            );
            f64::NAN
        }
    };
    // The ages patients are treated at: the table's, when it gives them.
    let ages = match chars.table.as_ref().and_then(|t| t.age_range()) {
        Some(r) => r,
        None => (age.min(), age.max()),
    };
    let given_max = ck.opt("population.max_age", &p.max_age);
    if let Some(m) = given_max {
        ck.range("population.max_age", m, 1.0, 150.0, "an age in [1, 150]");
    }
    let mut max_age = given_max.unwrap_or(f64::INFINITY);
    if let Some(t) = &data.life_table {
        if given_max.is_none() {
            max_age = t.last_age() + 1.0;
        }
        if t.female.first_age() > ages.0 {
            ck.error(
                "population.life_table.file",
                format!(
                    "the life table starts at age {}, after the youngest age at treatment ({})",
                    t.female.first_age(),
                    ages.0
                ),
            );
        }
        let extrapolate = p.life_table.as_ref().and_then(|l| l.extrapolate);
        check_life_table_covers(ck, t, extrapolate, given_max, ages.1, horizon);
    }
    if max_age.is_finite() && ages.1 >= max_age {
        ck.error(
            "population.max_age",
            format!(
                "{max_age} must be above the oldest age at treatment ({})",
                ages.1
            ),
        );
    }
    Some(PopulationModel {
        age,
        share_female,
        max_age,
        life_table: data.life_table.clone(),
        characteristics: chars,
    })
}

/// `[therapy]`: its arm, price and costs; the administration cost is added to the therapy
/// arm's start cost.
pub(super) fn therapy(
    ck: &mut Checker,
    sc: &Scenario,
    arms: &mut [ArmModel],
) -> Option<TherapyTerms> {
    let th = &sc.therapy;
    let arm = sc.arms.iter().position(|a| a.name == th.arm);
    if arm.is_none() {
        let names: Vec<&str> = sc.arms.iter().map(|a| a.name.as_str()).collect();
        ck.error(
            "therapy.arm",
            super::unknown_name(&th.arm, "an arm", "arms", &names),
        );
    }
    let mut amount = |field: &str, n: &Num, what: &str| {
        let v = ck.num(field, n);
        ck.range(field, v, 0.0, f64::INFINITY, what);
        v
    };
    let list_price = amount("therapy.list_price", &th.list_price, "a price >= 0");
    let administration_cost = amount(
        "therapy.administration_cost",
        &th.administration_cost,
        "a cost >= 0",
    );
    let cost_of_goods = amount("therapy.cost_of_goods", &th.cost_of_goods, "a cost >= 0");
    if let Some(a) = arm.and_then(|a| arms.get_mut(a)) {
        a.start_cost += administration_cost;
    }
    Some(TherapyTerms {
        arm: arm?,
        list_price,
        administration_cost,
        cost_of_goods,
    })
}

/// `[payer.churn]`: the time until a patient leaves the payer.
pub(super) fn churn(ck: &mut Checker, sc: &Scenario) -> Option<Family> {
    let c = sc.payer.as_ref().and_then(|p| p.churn.as_ref())?;
    let f = "payer.churn";
    match (&c.annual_probability, c.retention.is_empty()) {
        (Some(p), true) => {
            let field = format!("{f}.annual_probability");
            let p = ck.num(&field, p);
            ck.range(&field, p, 0.0, 0.999_999, "a probability in [0, 1)");
            (p > 0.0).then(|| Family::Exponential {
                rate: -(-p).ln_1p(),
            })
        }
        (None, false) => {
            let rows = ck.rows(&format!("{f}.retention"), &c.retention);
            retention_family(ck, f, &rows)
        }
        _ => {
            ck.error(
                f,
                "give either `annual_probability` or `retention`, not both or neither",
            );
            None
        }
    }
}

/// A retention table (years, share still with the payer) as a piecewise-exponential
/// time to leaving: constant hazard between points, the last hazard afterwards.
fn retention_family(ck: &mut Checker, f: &str, rows: &[[f64; 2]]) -> Option<Family> {
    let mut cuts = Vec::new();
    let mut rates = Vec::new();
    let (mut t0, mut s0) = (0.0, 1.0);
    for (k, [t, share]) in rows.iter().copied().enumerate() {
        if !(t > t0 && t.is_finite() && share > 0.0 && share <= s0) {
            ck.error(
                &format!("{f}.retention[{k}]"),
                format!(
                    "[{t}, {share}] is not allowed: years must increase from 0 and shares must be in (0, 1] and not increase"
                ),
            );
            return None;
        }
        rates.push((s0 / share).ln() / (t - t0));
        cuts.push(t);
        (t0, s0) = (t, share);
    }
    let Some(&last) = rates.last() else {
        ck.error(
            &format!("{f}.retention"),
            "the table needs at least one row",
        );
        return None;
    };
    rates.push(last);
    Some(Family::PiecewiseExponential { cuts, rates })
}

/// `[manufacturer]`: the time until it can no longer pay refunds.
pub(super) fn manufacturer_default(ck: &mut Checker, sc: &Scenario) -> Option<Family> {
    let m = sc.manufacturer.as_ref()?;
    let field = "manufacturer.annual_default_probability";
    let p = ck.num(field, &m.annual_default_probability);
    ck.range(field, p, 0.0, 0.999_999, "a probability in [0, 1)");
    (p > 0.0 && p < 1.0).then(|| Family::Exponential {
        rate: -(-p).ln_1p(),
    })
}

/// `[cohort]`: treated cohorts for budget impact.
pub(super) fn cohort(ck: &mut Checker, sc: &Scenario) -> Option<CohortModel> {
    let c = sc.cohort.as_ref()?;
    let patients = sc.simulation.patients;
    let size: u64 = c.uptake.iter().map(|&n| n as u64).sum();
    if size == 0 {
        ck.error("cohort.uptake", "at least one patient must be treated");
    }
    let annual_cap = ck.opt("cohort.annual_cap", &c.annual_cap);
    if let Some(cap) = annual_cap {
        ck.positive("cohort.annual_cap", cap);
    }
    let years = c.years.unwrap_or(10) as usize;
    if years == 0 || years > 200 {
        ck.error(
            "cohort.years",
            format!("{years} is not allowed: 1 to 200 calendar years"),
        );
    }
    let wanted = c.replicates.unwrap_or(1000) as u64;
    if wanted == 0 {
        ck.error("cohort.replicates", "0 is not allowed: at least 1");
    }
    let possible = patients / size.max(1);
    if possible < 2 && size > 0 && patients > 0 {
        ck.error(
            "cohort.uptake",
            format!(
                "a cohort has {size} patients but the run simulates {patients}: simulate at least two cohorts' worth (cohort-level risk comes from whole simulated cohorts)"
            ),
        );
    }
    Some(CohortModel {
        uptake: c.uptake.clone(),
        years,
        annual_cap,
        replicates: wanted.min(possible).max(1),
        requested_replicates: wanted.max(1),
    })
}
