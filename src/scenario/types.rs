//! The scenario file format (TOML, `format = 1`): plain serde types, one per section.
//!
//! These types are the whole interface of a scenario file; the JSON Schema printed by
//! `obasim schema` is derived from them. Semantic checks (probabilities sum to one, names
//! exist, ...) happen when the scenario is compiled into a model (`crate::model::build`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The current (and only) scenario format version.
pub const FORMAT_VERSION: u32 = 1;

/// A whole scenario file.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario format version; must be 1.
    pub format: u32,
    /// Descriptive metadata.
    pub metadata: Metadata,
    /// Simulation size, seed, horizon, discounting and thresholds.
    pub simulation: Simulation,
    /// Who is treated: age, sex and background mortality.
    pub population: Population,
    /// The one-off therapy: price and costs around it.
    pub therapy: Therapy,
    /// The therapy arm and its comparators, each with its own outcome model.
    pub arms: Vec<Arm>,
    /// Payment agreements evaluated on the therapy arm (every contract on the same patients).
    #[serde(default)]
    pub contracts: Vec<Contract>,
}

/// Descriptive metadata.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Short name of the scenario.
    pub name: String,
    /// What the scenario represents and where its numbers come from.
    #[serde(default)]
    pub description: String,
    /// Currency code of every amount (e.g. "EUR").
    pub currency: String,
    /// Price year of every amount.
    pub price_year: i32,
}

/// Simulation settings.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// Number of simulated patients (each is simulated once per arm).
    pub patients: u64,
    /// Seed of all random streams.
    pub seed: u64,
    /// Time horizon in years since treatment.
    pub horizon: f64,
    /// Annual discount rates.
    pub discount: Discount,
    /// Willingness-to-pay thresholds (currency per QALY) for net monetary benefit.
    #[serde(default)]
    pub wtp: Vec<f64>,
    /// Step of the state-occupancy grid in years (default 1/12: monthly).
    #[serde(default)]
    pub occupancy_step: Option<f64>,
}

/// Annual discount rates (e.g. 0.035 for 3.5%); continuous discounting d(t) = (1+r)^-t.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    /// Rate for the payer's costs and payments.
    pub costs: f64,
    /// Rate for QALYs and life years.
    pub outcomes: f64,
    /// The manufacturer's rate (cost of capital) for its revenue.
    pub manufacturer: f64,
}

/// The treated population.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// Fixed age at treatment (years). Give this or `age_distribution`.
    #[serde(default)]
    pub age: Option<f64>,
    /// Distribution of the age at treatment, truncated to [min, max].
    #[serde(default)]
    pub age_distribution: Option<AgeDistribution>,
    /// Share of patients who are female, in [0, 1].
    pub share_female: f64,
    /// Age at which a patient still alive is taken to die (end of the life table). Default:
    /// one past the last age of the life table.
    #[serde(default)]
    pub max_age: Option<f64>,
    /// Background (general population) mortality.
    pub life_table: LifeTableSpec,
}

/// Distribution of age at treatment.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "family", rename_all = "snake_case")]
pub enum AgeDistribution {
    /// Normal(mean, sd) truncated to [min, max].
    Normal {
        /// Mean age.
        mean: f64,
        /// Standard deviation.
        sd: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Uniform on [min, max].
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

/// A life table in a CSV file: one row per single year of age, one column per sex.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifeTableSpec {
    /// CSV file, relative to the scenario file.
    pub file: String,
    /// What the columns hold: "rate" (central death rate m(x), a hazard) or "probability"
    /// (q(x), probability of dying within the year).
    pub measure: LifeTableMeasure,
    /// Column with the age (default "Age").
    #[serde(default = "default_age_column")]
    pub age_column: String,
    /// Column for females (default "Female").
    #[serde(default = "default_female_column")]
    pub female_column: String,
    /// Column for males (default "Male").
    #[serde(default = "default_male_column")]
    pub male_column: String,
}

fn default_age_column() -> String {
    "Age".into()
}
fn default_female_column() -> String {
    "Female".into()
}
fn default_male_column() -> String {
    "Male".into()
}

/// What a life table's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifeTableMeasure {
    /// Central death rate m(x): the hazard on [x, x+1).
    Rate,
    /// Probability q(x) of dying within [x, x+1); hazard -ln(1 - q).
    Probability,
}

/// The one-off therapy.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Therapy {
    /// Name of the arm that receives the therapy; all other arms are comparators.
    pub arm: String,
    /// List price per patient; contracts decide how much of it is paid and when.
    pub list_price: f64,
    /// Payer's cost of administering the therapy (hospital stay, conditioning), at time 0.
    #[serde(default)]
    pub administration_cost: f64,
    /// Manufacturer's cost of goods per treated patient, at time 0.
    #[serde(default)]
    pub cost_of_goods: f64,
}

/// One arm: a continuous-time multi-state outcome model with its costs and utilities.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// Arm name (unique).
    pub name: String,
    /// The absorbing death state; background mortality moves patients here.
    pub death_state: String,
    /// One-time cost at time 0 (for the therapy arm, added to the therapy's administration cost).
    #[serde(default)]
    pub start_cost: f64,
    /// The states.
    pub states: Vec<State>,
    /// The transitions between states (competing risks within each state).
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

/// A health state.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// State name (unique within the arm).
    pub name: String,
    /// Probability of starting in this state at time 0 (the initial distribution sums to 1).
    #[serde(default)]
    pub initial: f64,
    /// Cost per year spent in the state (payer), as an annual rate.
    #[serde(default)]
    pub cost: f64,
    /// Utility (QALY weight) per year in the state.
    #[serde(default)]
    pub utility: f64,
    /// One-time cost on entering the state (including at time 0 for the initial state).
    #[serde(default)]
    pub entry_cost: f64,
}

/// A transition from one state to another with a time-to-event distribution.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Origin state.
    pub from: String,
    /// Destination state.
    pub to: String,
    /// Time-to-event distribution.
    pub time: TimeToEvent,
    /// Which clock the distribution runs on: "reset" (time in the state, default) or
    /// "forward" (time since treatment).
    #[serde(default)]
    pub clock: Clock,
}

/// The clock of a transition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Time since entering the current state (semi-Markov).
    #[default]
    Reset,
    /// Time since treatment (Markov in calendar time).
    Forward,
}

/// A parametric time-to-event distribution, parameterised as in R's flexsurv (years).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "family", rename_all = "snake_case")]
pub enum TimeToEvent {
    /// S(t) = exp(-rate t).
    Exponential {
        /// Hazard rate per year.
        rate: f64,
    },
    /// S(t) = exp(-(t/scale)^shape).
    Weibull {
        /// Shape.
        shape: f64,
        /// Scale (years).
        scale: f64,
    },
    /// S(t) = exp(-(rate/shape)(e^(shape t) - 1)).
    Gompertz {
        /// Shape (may be negative: a share never has the event).
        shape: f64,
        /// Rate.
        rate: f64,
    },
    /// S(t) = 1 - Phi((ln t - meanlog)/sdlog).
    Lognormal {
        /// Mean of log time.
        meanlog: f64,
        /// SD of log time.
        sdlog: f64,
    },
    /// S(t) = 1/(1 + (t/scale)^shape).
    Loglogistic {
        /// Shape.
        shape: f64,
        /// Scale (years).
        scale: f64,
    },
    /// S(t) = 1 - P(shape, rate t).
    Gamma {
        /// Shape.
        shape: f64,
        /// Rate per year.
        rate: f64,
    },
    /// Constant hazards between cut points: rates[i] on [cuts[i-1], cuts[i]).
    PiecewiseExponential {
        /// Cut points in years, strictly increasing, > 0.
        cuts: Vec<f64>,
        /// Hazard rates, one more than the cuts.
        rates: Vec<f64>,
    },
    /// S(t) = cure_fraction + (1 - cure_fraction) S_uncured(t).
    MixtureCure {
        /// Share that never has the event.
        cure_fraction: f64,
        /// Distribution for the uncured.
        uncured: Box<TimeToEvent>,
    },
}

/// A payment agreement, evaluated on every patient of the therapy arm.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum Contract {
    /// The whole list price at time `at` (default 0, infusion).
    Upfront {
        /// Contract name (unique).
        name: String,
        /// Payment time in years (default 0).
        #[serde(default)]
        at: f64,
    },
    /// The price split into payments at fixed times.
    Installments {
        /// Contract name (unique).
        name: String,
        /// Number of payments.
        payments: u32,
        /// Years between payments.
        interval: f64,
        /// Time of the first payment (default 0, at infusion).
        #[serde(default)]
        first: f64,
        /// Annual interest charged on the deferred balance (annuity formula; default 0).
        #[serde(default)]
        interest: f64,
        /// Events that stop the remaining payments (default ["death"]).
        #[serde(default = "default_stop_on")]
        stop_on: Vec<StopEvent>,
    },
}

/// Events that stop a payment schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopEvent {
    /// The patient dies.
    Death,
}

fn default_stop_on() -> Vec<StopEvent> {
    vec![StopEvent::Death]
}

impl Contract {
    /// The contract's name.
    pub fn name(&self) -> &str {
        match self {
            Contract::Upfront { name, .. } | Contract::Installments { name, .. } => name,
        }
    }
}
