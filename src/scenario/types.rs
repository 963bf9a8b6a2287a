//! The scenario file format (TOML, `format = 1`): plain serde types, one per section.
//!
//! These types are the whole interface of a scenario file; the JSON Schema printed by
//! `obasim schema` is derived from them. Semantic checks (probabilities sum to one, names
//! exist, ...) happen when the scenario is compiled into a model (`crate::model::build`).

pub use super::num::{Cost, CostKind, DistSpec, LinearSpec, Num, NumKind};
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
    /// Named outcomes: conditions on a patient's history, referred to by contracts.
    #[serde(default)]
    pub outcomes: Vec<Outcome>,
    /// Assessment plans: how and when outcomes are observed (errors, missing data, costs).
    #[serde(default)]
    pub observations: Vec<ObservationPlan>,
    /// The payer: patients leaving it (churn).
    #[serde(default)]
    pub payer: Option<Payer>,
    /// The manufacturer: risk that it can no longer pay refunds.
    #[serde(default)]
    pub manufacturer: Option<Manufacturer>,
    /// Treated cohorts by calendar year, for budget impact and cohort caps.
    #[serde(default)]
    pub cohort: Option<Cohort>,
    /// Payment agreements evaluated on the therapy arm (every contract on the same patients).
    #[serde(default)]
    pub contracts: Vec<Contract>,
    /// Probabilistic sensitivity analysis: number of draws, correlated parameter sets, grids.
    /// (Single uncertain parameters are written in place: `{ dist = "beta", mean = .., se = .. }`.)
    #[serde(default)]
    pub psa: Option<PsaSection>,
    /// Named parameters, shared by every place that names them: a number, a distribution
    /// (drawn once per PSA draw, however many places use it), or an expression over other
    /// parameters (`"exp(b0 + b_new)"`).
    #[serde(default)]
    pub parameters: ParameterTable,
}

/// The `[parameters]` table: (name, value) in the order written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParameterTable(pub Vec<(String, Num)>);

impl<'de> Deserialize<'de> for ParameterTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ParameterTable;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a table of parameters: name = number, \"expression\" or { dist = ... }",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ParameterTable, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    v.push((k, map.next_value::<Num>()?));
                }
                Ok(ParameterTable(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for ParameterTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl JsonSchema for ParameterTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Parameters".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let num = generator.subschema_for::<Num>();
        schemars::json_schema!({
            "type": "object",
            "description": "Named parameters: name = number, \"expression over parameters\" or { dist = ... }.",
            "additionalProperties": num
        })
    }
}

/// Settings of the probabilistic and one-way sensitivity analyses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PsaSection {
    /// Number of parameter draws (0: no PSA unless `--draws` is given).
    #[serde(default)]
    pub draws: u32,
    /// Dirichlet-distributed sets of parameters (e.g. an initial distribution).
    #[serde(default)]
    pub dirichlet: Vec<DirichletSet>,
    /// Correlated parameters as a multivariate normal (optionally on the log scale).
    #[serde(default)]
    pub multivariate_normal: Vec<MvnSet>,
    /// Willingness-to-pay grid for the CEAC and EVPI (default: 0 to 3 × the largest
    /// `simulation.wtp` in 60 steps).
    #[serde(default)]
    pub wtp_grid: Option<WtpGrid>,
    /// Output of the one-way analysis: "inc_nmb" (default; at `tornado_wtp`, against the
    /// first comparator) or a summary metric of the therapy arm (e.g. "payer_cost").
    #[serde(default)]
    pub tornado_output: Option<String>,
    /// Threshold for a tornado of incremental NMB (default: the first `simulation.wtp`).
    #[serde(default)]
    pub tornado_wtp: Option<f64>,
}

/// A Dirichlet-distributed set: the targets (field paths) sum to 1 in every draw.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirichletSet {
    /// Field paths, e.g. "arms[0].states[0].initial".
    pub targets: Vec<String>,
    /// Concentration parameters (e.g. observed counts), one per target.
    pub alpha: Vec<f64>,
}

/// Correlated parameters: target = mean + L z (or exp of it on the log scale).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MvnSet {
    /// Field paths.
    pub targets: Vec<String>,
    /// Means (on the stated scale).
    pub mean: Vec<f64>,
    /// Covariance matrix (on the stated scale), as flexsurv reports it.
    pub cov: Vec<Vec<f64>>,
    /// "identity" (default) or "log" (targets are exp of the normal draw).
    #[serde(default)]
    pub scale: MvnScale,
}

/// Scale of a multivariate normal set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MvnScale {
    /// The targets are the normal draws.
    #[default]
    Identity,
    /// The targets are exp of the normal draws.
    Log,
}

/// A grid of thresholds.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WtpGrid {
    /// First threshold.
    pub from: f64,
    /// Last threshold.
    pub to: f64,
    /// Step.
    pub step: f64,
}

/// A named condition on the therapy arm's history at a time t.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Outcome name (unique), referred to by contracts and observation plans.
    pub name: String,
    /// What must be true at t.
    pub kind: OutcomeKind,
    /// The states the condition refers to (not used by `alive`).
    #[serde(default)]
    pub states: Vec<String>,
}

/// Kinds of outcome conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// In one of `states` at t.
    InState,
    /// In none of `states` at t.
    NotInState,
    /// Entered one of `states` at or before t (including starting in it).
    Entered,
    /// Never entered any of `states` up to t.
    NotEntered,
    /// Alive at t.
    Alive,
}

/// An assessment plan: when an outcome is assessed, how reliably, and at what cost.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationPlan {
    /// Plan name (unique), referred to by contracts (`observed_by`).
    pub name: String,
    /// The outcome assessed.
    pub outcome: String,
    /// Explicit assessment times (years). Give this or `every`.
    #[serde(default)]
    pub times: Vec<Num>,
    /// Regular assessments every so many years, from `first` to `until`.
    #[serde(default)]
    pub every: Option<Num>,
    /// First regular assessment (default: `every`).
    #[serde(default)]
    pub first: Option<Num>,
    /// Last regular assessment time (default: the horizon).
    #[serde(default)]
    pub until: Option<Num>,
    /// P(assessed as holding | the outcome holds). Default 1.
    #[serde(default = "one")]
    pub sensitivity: Num,
    /// P(assessed as failed | the outcome fails). Default 1.
    #[serde(default = "one")]
    pub specificity: Num,
    /// Probability that an assessment is missed (not done or not reported). Default 0.
    #[serde(default)]
    pub missed: Num,
    /// What a missed assessment counts as: "pay" (holding), "withhold" (failed) or
    /// "carry_last" (the last available result; holding if none). Default "carry_last".
    #[serde(default)]
    pub if_missed: MissedRule,
    /// Administrative cost of each assessment done, to the payer.
    #[serde(default)]
    pub cost_payer: Num,
    /// Administrative cost of each assessment done, to the manufacturer.
    #[serde(default)]
    pub cost_manufacturer: Num,
    /// Administrative cost per patient-year of follow-up (from treatment to the last
    /// assessment, death or leaving the payer), to the payer.
    #[serde(default)]
    pub annual_cost_payer: Num,
    /// The same, to the manufacturer.
    #[serde(default)]
    pub annual_cost_manufacturer: Num,
}

fn one() -> Num {
    Num::value(1.0)
}

/// What a missed assessment counts as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedRule {
    /// As if the outcome held (the payment is made).
    Pay,
    /// As if the outcome failed (the payment is withheld).
    Withhold,
    /// The last available result (holding if there is none).
    #[default]
    CarryLast,
}

/// The payer's side: patients leaving this payer.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Payer {
    /// How patients leave this payer (none if absent).
    #[serde(default)]
    pub churn: Option<Churn>,
}

/// Patients leaving the payer: a constant annual probability, or a retention table.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Annual probability of leaving (constant hazard -ln(1 - p)).
    #[serde(default)]
    pub annual_probability: Option<Num>,
    /// Retention table: [years, share still with the payer] pairs, increasing in years;
    /// constant hazard between points, the last interval's hazard afterwards.
    #[serde(default)]
    pub retention: Vec<[Num; 2]>,
}

/// The manufacturer's side.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manufacturer {
    /// Annual probability that the manufacturer can no longer pay refunds (counterparty
    /// risk); refunds due after that are lost. Default 0.
    #[serde(default)]
    pub annual_default_probability: Num,
}

/// Treated cohorts: patients treated per calendar year, for budget impact.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cohort {
    /// Patients treated in calendar years 1, 2, ... (treatment at the start of the year).
    pub uptake: Vec<u32>,
    /// Calendar years reported in the budget (default 10).
    #[serde(default)]
    pub years: Option<u32>,
    /// This payer's cap on therapy spend per calendar year (excess paid back); none if absent.
    #[serde(default)]
    pub annual_cap: Option<Num>,
    /// Number of simulated cohorts (replicates) for the cohort-level risk (default 1000;
    /// limited by patients / cohort size).
    #[serde(default)]
    pub replicates: Option<u32>,
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
    pub horizon: Num,
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
    pub costs: Num,
    /// Rate for QALYs and life years.
    pub outcomes: Num,
    /// The manufacturer's rate (cost of capital) for its revenue.
    pub manufacturer: Num,
}

/// The treated population.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// Fixed age at treatment (years). Give this or `age_distribution`.
    #[serde(default)]
    pub age: Option<Num>,
    /// Distribution of the age at treatment, truncated to [min, max].
    #[serde(default)]
    pub age_distribution: Option<AgeDistribution>,
    /// Share of patients who are female, in [0, 1] (required unless the patient table has
    /// a `sex` or `female` column).
    #[serde(default)]
    pub share_female: Option<Num>,
    /// Age at which a patient still alive is taken to die (end of the life table). Default:
    /// one past the last age of the life table.
    #[serde(default)]
    pub max_age: Option<Num>,
    /// Background (general population) mortality. Required unless every arm has
    /// `background_mortality = false`.
    #[serde(default)]
    pub life_table: Option<LifeTableSpec>,
    /// Further patient characteristics (covariates), each drawn once per patient from its
    /// distribution, in the order written.
    #[serde(default)]
    pub characteristics: Vec<Characteristic>,
    /// Correlations between normal (or lognormal, on the log scale) characteristics and a
    /// normal age at treatment: a multivariate normal.
    #[serde(default)]
    pub correlation: Option<Correlation>,
    /// Patient profiles from a CSV file (as hesim's `patients` table): each patient is one
    /// profile, sampled by weight or taken in turn.
    #[serde(default)]
    pub patients: Option<PatientTableSpec>,
    /// Categorical characteristics (or `sex`) whose levels are reported apart as well as
    /// overall: rows with a `subgroup` column in summary, incremental, prices and cash flow.
    #[serde(default)]
    pub subgroups: Vec<String>,
}

/// A patient characteristic: continuous (`family`), categorical (`levels` with `shares` or
/// `shares_by_age`), or bands of another characteristic (`cut`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Characteristic {
    /// Name used in linear predictors and subgroups (letters, digits and _).
    pub name: String,
    /// Continuous distribution (as `age_distribution` names it): "normal" (mean, sd),
    /// "lognormal" (meanlog, sdlog, or mean and sd), "gamma" (shape, rate, or mean and sd)
    /// or "uniform" (min, max); truncated to [min, max] when given.
    #[serde(default)]
    pub family: Option<String>,
    /// Mean (normal; lognormal and gamma by moments).
    #[serde(default)]
    pub mean: Option<Num>,
    /// Standard deviation (normal; lognormal and gamma by moments).
    #[serde(default)]
    pub sd: Option<Num>,
    /// Mean of the log (lognormal).
    #[serde(default)]
    pub meanlog: Option<Num>,
    /// SD of the log (lognormal).
    #[serde(default)]
    pub sdlog: Option<Num>,
    /// Shape (gamma).
    #[serde(default)]
    pub shape: Option<Num>,
    /// Rate (gamma).
    #[serde(default)]
    pub rate: Option<Num>,
    /// Lower bound (uniform; truncation otherwise).
    #[serde(default)]
    pub min: Option<Num>,
    /// Upper bound (uniform; truncation otherwise).
    #[serde(default)]
    pub max: Option<Num>,
    /// Levels of a categorical characteristic, in order (the first is the reference level
    /// of a fit with treatment contrasts).
    #[serde(default)]
    pub levels: Vec<String>,
    /// Share of each level (sums to 1).
    #[serde(default)]
    pub shares: Vec<Num>,
    /// Shares of each level by band of age at treatment.
    #[serde(default)]
    pub shares_by_age: Option<SharesByAge>,
    /// Bands of this characteristic (`age` or a continuous one): `levels` named by
    /// `breaks` (level k for values in [breaks[k-1], breaks[k])).
    #[serde(default)]
    pub cut: Option<String>,
    /// Break points of `cut`, strictly increasing (one fewer than the levels).
    #[serde(default)]
    pub breaks: Vec<Num>,
}

/// Shares of a categorical characteristic's levels by band of age at treatment.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharesByAge {
    /// Ages where a new band starts, strictly increasing: band k covers ages in
    /// [ages[k-1], ages[k]) (the first from any age, the last to any age).
    pub ages: Vec<Num>,
    /// One row of shares per band (one more row than `ages`), each over the levels.
    pub shares: Vec<Vec<Num>>,
}

/// A multivariate normal over characteristics (and age at treatment).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Correlation {
    /// Normal or lognormal characteristics, and `age` when the age distribution is normal.
    pub names: Vec<String>,
    /// Correlation matrix (symmetric, ones on the diagonal, positive semi-definite).
    pub matrix: Vec<Vec<f64>>,
}

/// A table of patient profiles.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientTableSpec {
    /// CSV file, relative to the scenario file: one row per profile; columns `age`, `sex`
    /// (female/male) or `female` (1/0), and any characteristics (numbers: continuous; text:
    /// categorical).
    pub file: String,
    /// "weighted": each patient a profile drawn with replacement by weight (default);
    /// "each": patient i takes profile i mod rows, in the order listed.
    #[serde(default)]
    pub sampling: PatientSampling,
    /// Column of sampling weights (none: equal weights).
    #[serde(default)]
    pub weight_column: Option<String>,
}

/// How patients take profiles from a patient table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatientSampling {
    /// With replacement, with probability proportional to the weight.
    #[default]
    Weighted,
    /// Each profile in turn: patient i takes profile i mod rows.
    Each,
}

/// Distribution of age at treatment.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "family", rename_all = "snake_case")]
pub enum AgeDistribution {
    /// Normal(mean, sd) truncated to [min, max].
    Normal {
        /// Mean age.
        mean: Num,
        /// Standard deviation.
        sd: Num,
        /// Lower bound.
        min: Num,
        /// Upper bound.
        max: Num,
    },
    /// Uniform on [min, max].
    Uniform {
        /// Lower bound.
        min: Num,
        /// Upper bound.
        max: Num,
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
    /// What to do at ages past the table's last row that patients can reach (before
    /// `max_age` or the horizon). Default: nothing; such ages are an error.
    #[serde(default)]
    pub extrapolate: Option<LifeTableExtrapolation>,
}

/// How a life table is extended past its last row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifeTableExtrapolation {
    /// The last row's rate applies at every later age.
    LastRate,
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
    pub list_price: Num,
    /// Payer's cost of administering the therapy (hospital stay, conditioning), at time 0.
    #[serde(default)]
    pub administration_cost: Num,
    /// Manufacturer's cost of goods per treated patient, at time 0.
    #[serde(default)]
    pub cost_of_goods: Num,
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
    pub start_cost: Cost,
    /// The states.
    pub states: Vec<State>,
    /// The transitions between states (competing risks within each state).
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// Whether background (general population) mortality from the life table competes with
    /// the transitions of this continuous-time arm (default true). Set false when the
    /// transitions to death are all-cause (e.g. fitted to trial data on overall survival).
    /// Discrete-time arms say this in `markov.background_mortality`.
    #[serde(default)]
    pub background_mortality: Option<bool>,
    /// Makes this a discrete-time (cycle-based) Markov arm: patients move between states only
    /// at cycle boundaries, with per-cycle transition probabilities, and state costs and
    /// utilities are counted per cycle by a counting convention. Leave `transitions` empty
    /// (the transitions go in `markov.transitions`). The same definition is evaluated by the
    /// microsimulation (`obasim run`) and exactly as a cohort (`obasim cohort`).
    #[serde(default)]
    pub markov: Option<Markov>,
}

/// A discrete-time (cycle-based) Markov model of one arm.
///
/// Cycle k runs from t_k = k·Δ to t_(k+1) (Δ = `cycle_length`; the horizon must be a whole
/// number of cycles). A patient's state can change only at a cycle boundary: the history
/// shows the state entered at t_(k+1) from that time on, so contracts see discrete-time
/// histories unchanged. State `cost` (per year) and `utility` are counted at the occupancy
/// points t_0 … t_n with the weights of `counting` (each point discounted at its own time),
/// as cost·Δ and utility·Δ per cycle. One-time costs (`entry_cost` of a state, `cost` and
/// `qalys` of a transition) fall at the boundary where the state is entered.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Markov {
    /// Cycle length in years (1 = annual, 0.0833333 = monthly). The horizon must be a whole
    /// number of cycles (to 1 part in 10^6); the cycle length used is horizon / cycles.
    pub cycle_length: f64,
    /// How state rewards are counted in each cycle (see [`Counting`]).
    pub counting: Counting,
    /// How counted rewards are discounted: "annual" (default: (1 + r)^-t at the time t of
    /// each occupancy point) or "per_cycle" ((1 + r·Δ)^-k at point k, as the DARTH tutorials'
    /// code does; the same for annual cycles).
    #[serde(default)]
    pub discounting: CycleDiscounting,
    /// false (default): the probabilities out of a state are unconditional and the patient
    /// stays with the remainder. true: the probability to the death state applies first and
    /// the others are conditional on surviving the cycle (p_ij·(1 − p_iD), staying with
    /// (1 − p_iD)(1 − Σ p_ij)), as in the DARTH Sick-Sicker model.
    #[serde(default)]
    pub death_first: bool,
    /// Whether background mortality from the population's life table applies on top of the
    /// transitions (default false: the probabilities are all-cause). When true, the
    /// probability q of dying of background causes in a cycle (from the life table by sex and
    /// attained age) applies first: rows become (1 − q)·p_ij, plus q to the death state.
    #[serde(default)]
    pub background_mortality: bool,
    /// Transition probabilities per cycle (staying is the remainder of each row).
    #[serde(default)]
    pub transitions: Vec<MarkovTransition>,
    /// Costs per year added to the state costs in some cycles only (e.g. a drug given for
    /// the first two years).
    #[serde(default)]
    pub extra_costs: Vec<ExtraCost>,
}

/// Counting conventions of a discrete-time arm: the weight w_k of the occupancy at each
/// point t_k (k = 0 … n) in the total, for rewards constant over time. With time-varying
/// rewards (`extra_costs`) each cycle c contributes a_c at its start and b_c at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Counting {
    /// Beginning of cycle: the state at t_c counts for cycle c (w = 1, …, 1, 0).
    Start,
    /// End of cycle: the state at t_(c+1) counts for cycle c (w = 0, 1, …, 1).
    End,
    /// Half-cycle correction: end of cycle plus half the first point minus half the last
    /// (w = ½, 1, …, 1, ½).
    HalfCycle,
    /// Trapezoid (life-table) method: each cycle counts the mean of its start and end
    /// occupancy, each discounted at its own time. With point discounting this gives the
    /// same weights as `half_cycle` (w = ½, 1, …, 1, ½); both names are in use.
    Trapezoid,
    /// Simpson's 1/3 rule (w = 1/3, 4/3, 2/3, 4/3, …, 4/3, 1/3); needs an even number of
    /// cycles.
    Simpson,
    /// The within-cycle correction vector of the DARTH tutorials' `gen_wcc(method =
    /// "Simpson1/3")`, as published: 1/3 at both ends, 2/3 at odd and 4/3 at even interior
    /// points (w = 1/3, 2/3, 4/3, 2/3, …, 1/3). Use it to reproduce models built with it.
    DarthSimpson,
}

/// How the rewards of a discrete-time arm are discounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CycleDiscounting {
    /// (1 + r)^-t_k at occupancy point t_k.
    #[default]
    Annual,
    /// (1 + r·Δ)^-k at occupancy point k.
    PerCycle,
}

/// A transition of a discrete-time arm: its probability per cycle. Give exactly one of
/// `probability`, `rate`, `probabilities`, `rates`, `probability_by_age`, `rate_by_age`.
/// Rates are per year and become probabilities p = 1 − exp(−rate·Δ). A `hazard_ratio` h
/// multiplies the rate (a probability p is first converted: p' = 1 − (1 − p)^h); a
/// `relative_risk` multiplies the probability (p' = rr·p, which must stay ≤ 1).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkovTransition {
    /// Origin state.
    pub from: String,
    /// Destination state (another state; staying is the remainder of the row).
    pub to: String,
    /// Constant probability per cycle.
    #[serde(default)]
    pub probability: Option<Num>,
    /// Constant rate per year.
    #[serde(default)]
    pub rate: Option<Num>,
    /// Probability per cycle by cycle number (cycle 0 first; the last value repeats).
    #[serde(default)]
    pub probabilities: Vec<Num>,
    /// Rate per year by cycle number (cycle 0 first; the last value repeats).
    #[serde(default)]
    pub rates: Vec<Num>,
    /// Probability per cycle by attained age at the start of the cycle: [age, probability]
    /// rows in increasing age, each applying from its age to the next row's (the last row
    /// onwards). The first row must not be above the youngest age at treatment.
    #[serde(default)]
    pub probability_by_age: Vec<[Num; 2]>,
    /// Rate per year by attained age at the start of the cycle, as `probability_by_age`.
    #[serde(default)]
    pub rate_by_age: Vec<[Num; 2]>,
    /// Hazard ratio applied to the rate (default 1).
    #[serde(default)]
    pub hazard_ratio: Option<Num>,
    /// Relative risk applied to the probability (default 1).
    #[serde(default)]
    pub relative_risk: Option<Num>,
    /// The hazard ratio and relative risk apply to cycles starting at or after this time
    /// (years; default 0).
    #[serde(default)]
    pub effect_from: Option<Num>,
    /// … and before this time (years; default: the whole horizon).
    #[serde(default)]
    pub effect_until: Option<Num>,
    /// One-time cost (payer) when a patient makes this move (at the boundary where it
    /// happens; for a move to the death state also when the death is from background
    /// mortality).
    #[serde(default)]
    pub cost: Num,
    /// One-time QALY change when a patient makes this move (negative for a loss), counted in
    /// QALYs but not life years.
    #[serde(default)]
    pub qalys: Num,
}

/// A cost per year added in some states during some cycles.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraCost {
    /// States in which it is paid.
    pub states: Vec<String>,
    /// Cost per year (counted as cost·Δ per cycle like a state cost).
    pub cost: Num,
    /// Applies to cycles starting at or after this time (years; default 0).
    #[serde(default)]
    pub from: Option<Num>,
    /// … and before this time (years; default: the whole horizon).
    #[serde(default)]
    pub until: Option<Num>,
}

/// A health state.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// State name (unique within the arm).
    pub name: String,
    /// Probability of starting in this state at time 0 (the initial distribution sums to 1).
    #[serde(default)]
    pub initial: Num,
    /// Cost per year spent in the state (payer), as an annual rate.
    #[serde(default)]
    pub cost: Cost,
    /// Utility (QALY weight) per year in the state.
    #[serde(default)]
    pub utility: Num,
    /// One-time cost on entering the state (including at time 0 for the initial state).
    #[serde(default)]
    pub entry_cost: Cost,
    /// Standardised mortality ratio in this state: the background (life-table) hazard is
    /// multiplied by it while the patient is here (default 1).
    #[serde(default)]
    pub smr: Option<Num>,
    /// Excess hazard of death per year in this state, added to the background hazard
    /// (relative survival; default 0).
    #[serde(default)]
    pub excess_hazard: Option<Num>,
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
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "family", rename_all = "snake_case")]
pub enum TimeToEvent {
    /// S(t) = exp(-rate t).
    Exponential {
        /// Hazard rate per year.
        rate: Num,
    },
    /// S(t) = exp(-(t/scale)^shape).
    Weibull {
        /// Shape.
        shape: Num,
        /// Scale (years).
        scale: Num,
    },
    /// S(t) = exp(-(rate/shape)(e^(shape t) - 1)).
    Gompertz {
        /// Shape (may be negative: a share never has the event).
        shape: Num,
        /// Rate.
        rate: Num,
    },
    /// S(t) = 1 - Phi((ln t - meanlog)/sdlog).
    Lognormal {
        /// Mean of log time.
        meanlog: Num,
        /// SD of log time.
        sdlog: Num,
    },
    /// S(t) = 1/(1 + (t/scale)^shape).
    Loglogistic {
        /// Shape.
        shape: Num,
        /// Scale (years).
        scale: Num,
    },
    /// S(t) = 1 - P(shape, rate t).
    Gamma {
        /// Shape.
        shape: Num,
        /// Rate per year.
        rate: Num,
    },
    /// Constant hazards between cut points: rates[i] on [cuts[i-1], cuts[i]).
    PiecewiseExponential {
        /// Cut points in years, strictly increasing, > 0.
        cuts: Vec<Num>,
        /// Hazard rates, one more than the cuts.
        rates: Vec<Num>,
    },
    /// S(t) = cure_fraction + (1 - cure_fraction) S_uncured(t).
    MixtureCure {
        /// Share that never has the event.
        cure_fraction: Num,
        /// Distribution for the uncured.
        uncured: Box<TimeToEvent>,
    },
}

/// A payment agreement, evaluated on every patient of the therapy arm. One table with a
/// `type`; fields that do not apply to the type are errors.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Contract name (unique).
    pub name: String,
    /// "upfront", "installments", "milestones" or "warranty" (upfront with money back).
    #[serde(rename = "type")]
    pub kind: ContractType,
    /// upfront, warranty: payment time in years (default 0).
    #[serde(default)]
    pub at: Option<Num>,
    /// installments: number of payments (with `interval`); or give `times`.
    #[serde(default)]
    pub payments: Option<u32>,
    /// installments: years between payments.
    #[serde(default)]
    pub interval: Option<Num>,
    /// installments: time of the first payment (default 0, at infusion).
    #[serde(default)]
    pub first: Option<Num>,
    /// installments: explicit payment times (instead of payments/interval/first).
    #[serde(default)]
    pub times: Vec<Num>,
    /// installments: share of the list price of each payment (default equal shares).
    #[serde(default)]
    pub amounts: Vec<Num>,
    /// installments: annual interest on the deferred balance (annuity formula; default 0).
    #[serde(default)]
    pub interest: Option<Num>,
    /// installments: outcome that must hold at each due date from `condition_from` on.
    #[serde(default)]
    pub condition: Option<String>,
    /// installments: time from which payments are conditional (default 0: all).
    #[serde(default)]
    pub condition_from: Option<Num>,
    /// milestones: the payments, each with its own condition.
    #[serde(default)]
    pub milestones: Vec<Milestone>,
    /// Events that stop the remaining payments: "death", "churn" (default ["death"]).
    #[serde(default = "default_stop_on")]
    pub stop_on: Vec<StopEvent>,
    /// After a failed condition: "stop" for good (default) or "resume" if the outcome returns.
    #[serde(default)]
    pub after_failure: AfterFailure,
    /// The unpaid balance when payments stop at death: "forfeit" (default) or "accelerate"
    /// (due at once). After a failed condition nothing more is owed.
    #[serde(default)]
    pub on_stop: OnStop,
    /// The unpaid balance when the patient leaves the payer (with "churn" in `stop_on`):
    /// "transfer" (the next payer takes over, default), "forfeit" or "accelerate".
    #[serde(default)]
    pub on_churn: OnChurn,
    /// Assessment plan by which conditions and failures are observed (default: perfect
    /// observation of the true history).
    #[serde(default)]
    pub observed_by: Option<String>,
    /// Money back if the outcome fails within a window (required for type "warranty").
    #[serde(default)]
    pub warranty: Option<WarrantyTerms>,
    /// Most that may be paid in total (net of refunds), as a share of the list price.
    #[serde(default)]
    pub cap: Option<Num>,
    /// Least that is paid in total (net of refunds), as a share of the list price; a top-up
    /// is paid when the schedule ends.
    #[serde(default)]
    pub floor: Option<Num>,
}

/// Contract types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractType {
    /// The whole price at `at`.
    Upfront,
    /// Payments at fixed times, optionally conditional on an outcome.
    Installments,
    /// Payment at result: shares at given times, each optionally conditional.
    Milestones,
    /// Upfront with a money-back warranty.
    Warranty,
}

impl ContractType {
    /// The name as written in a scenario.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractType::Upfront => "upfront",
            ContractType::Installments => "installments",
            ContractType::Milestones => "milestones",
            ContractType::Warranty => "warranty",
        }
    }
}

/// One milestone payment.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    /// Due time in years.
    pub at: Num,
    /// Share of the list price.
    pub share: Num,
    /// Outcome that must hold at `at` (none: unconditional).
    #[serde(default)]
    pub condition: Option<String>,
}

/// Refund terms.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarrantyTerms {
    /// Outcome that must hold; the first observed failure within the window triggers a refund.
    pub outcome: String,
    /// Warranty window in years.
    pub window: Num,
    /// Share of what has been paid that is refunded for a failure at time 0 (default 1).
    #[serde(default = "one")]
    pub refund: Num,
    /// How the refund shrinks with the time of failure: "none" (full refund throughout),
    /// "linear" (refund × (1 − t/window)), "stepped" (refund × (1 − floor(t)/window), by
    /// whole years) or "table" (see `table`). Default "none".
    #[serde(default)]
    pub prorate: Prorate,
    /// For prorate = "table": [until years, share refunded] rows, increasing in time.
    #[serde(default)]
    pub table: Vec<[Num; 2]>,
}

/// Refund prorating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Prorate {
    /// Full refund throughout the window.
    #[default]
    None,
    /// Linear in the time of failure.
    Linear,
    /// Stepped by whole years.
    Stepped,
    /// From a table.
    Table,
}

/// After a failed condition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AfterFailure {
    /// No later payment is made.
    #[default]
    Stop,
    /// Later payments are made if the outcome holds again at their due date.
    Resume,
}

/// The unpaid balance when payments stop at death.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnStop {
    /// Not paid.
    #[default]
    Forfeit,
    /// Due at once.
    Accelerate,
}

/// The unpaid balance when the patient leaves the payer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnChurn {
    /// The next payer takes over the remaining schedule (same conditions).
    #[default]
    Transfer,
    /// Not paid by anyone.
    Forfeit,
    /// This payer pays the remaining balance at once.
    Accelerate,
}

/// Events that stop a payment schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopEvent {
    /// The patient dies.
    Death,
    /// The patient leaves this payer.
    Churn,
}

fn default_stop_on() -> Vec<StopEvent> {
    vec![StopEvent::Death]
}

/// The entries of a `{ family = "...", ... }` table: numbers keep their spans (serde's
/// internally tagged enums would buffer them and lose where they are written).
struct FamilyTable {
    family: String,
    nums: Vec<(String, Num)>,
    lists: Vec<(String, Vec<Num>)>,
    uncured: Option<Box<TimeToEvent>>,
}

impl FamilyTable {
    fn read<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<FamilyTable, A::Error> {
        let mut t = FamilyTable {
            family: String::new(),
            nums: Vec::new(),
            lists: Vec::new(),
            uncured: None,
        };
        let mut family = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "family" => family = Some(map.next_value::<String>()?),
                "uncured" => t.uncured = Some(Box::new(map.next_value()?)),
                "cuts" | "rates" => {
                    let v = map.next_value()?;
                    t.lists.push((key, v));
                }
                _ => {
                    let v = map.next_value()?;
                    t.nums.push((key, v));
                }
            }
        }
        t.family = family.ok_or_else(|| serde::de::Error::missing_field("family"))?;
        Ok(t)
    }

    /// Checks that only `fields` are given (besides `family`).
    fn only<E: serde::de::Error>(&self, fields: &'static [&'static str]) -> Result<(), E> {
        let given = self
            .nums
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(self.lists.iter().map(|(k, _)| k.as_str()))
            .chain(self.uncured.iter().map(|_| "uncured"));
        for k in given {
            if !fields.contains(&k) {
                return Err(E::unknown_field(k, fields));
            }
        }
        Ok(())
    }

    fn num<E: serde::de::Error>(&mut self, name: &'static str) -> Result<Num, E> {
        match self.nums.iter().position(|(k, _)| k == name) {
            Some(i) => Ok(self.nums.remove(i).1),
            None => Err(E::missing_field(name)),
        }
    }

    fn list<E: serde::de::Error>(&mut self, name: &'static str) -> Result<Vec<Num>, E> {
        match self.lists.iter().position(|(k, _)| k == name) {
            Some(i) => Ok(self.lists.remove(i).1),
            None => Err(E::missing_field(name)),
        }
    }
}

const TIME_FAMILIES: &[&str] = &[
    "exponential",
    "weibull",
    "gompertz",
    "lognormal",
    "loglogistic",
    "gamma",
    "piecewise_exponential",
    "mixture_cure",
];

impl<'de> Deserialize<'de> for TimeToEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TimeToEvent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a time-to-event distribution { family = \"weibull\", shape = .., scale = .. }",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TimeToEvent, A::Error> {
                let mut t = FamilyTable::read(map)?;
                Ok(match t.family.as_str() {
                    "exponential" => {
                        t.only(&["rate"])?;
                        TimeToEvent::Exponential {
                            rate: t.num("rate")?,
                        }
                    }
                    "weibull" => {
                        t.only(&["shape", "scale"])?;
                        TimeToEvent::Weibull {
                            shape: t.num("shape")?,
                            scale: t.num("scale")?,
                        }
                    }
                    "gompertz" => {
                        t.only(&["shape", "rate"])?;
                        TimeToEvent::Gompertz {
                            shape: t.num("shape")?,
                            rate: t.num("rate")?,
                        }
                    }
                    "lognormal" => {
                        t.only(&["meanlog", "sdlog"])?;
                        TimeToEvent::Lognormal {
                            meanlog: t.num("meanlog")?,
                            sdlog: t.num("sdlog")?,
                        }
                    }
                    "loglogistic" => {
                        t.only(&["shape", "scale"])?;
                        TimeToEvent::Loglogistic {
                            shape: t.num("shape")?,
                            scale: t.num("scale")?,
                        }
                    }
                    "gamma" => {
                        t.only(&["shape", "rate"])?;
                        TimeToEvent::Gamma {
                            shape: t.num("shape")?,
                            rate: t.num("rate")?,
                        }
                    }
                    "piecewise_exponential" => {
                        t.only(&["cuts", "rates"])?;
                        TimeToEvent::PiecewiseExponential {
                            cuts: t.list("cuts")?,
                            rates: t.list("rates")?,
                        }
                    }
                    "mixture_cure" => {
                        t.only(&["cure_fraction", "uncured"])?;
                        TimeToEvent::MixtureCure {
                            cure_fraction: t.num("cure_fraction")?,
                            uncured: t
                                .uncured
                                .take()
                                .ok_or_else(|| serde::de::Error::missing_field("uncured"))?,
                        }
                    }
                    other => return Err(serde::de::Error::unknown_variant(other, TIME_FAMILIES)),
                })
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for AgeDistribution {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AgeDistribution;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an age distribution { family = \"normal\", mean = .., sd = .., min = .., max = .. }")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<AgeDistribution, A::Error> {
                let mut t = FamilyTable::read(map)?;
                Ok(match t.family.as_str() {
                    "normal" => {
                        t.only(&["mean", "sd", "min", "max"])?;
                        AgeDistribution::Normal {
                            mean: t.num("mean")?,
                            sd: t.num("sd")?,
                            min: t.num("min")?,
                            max: t.num("max")?,
                        }
                    }
                    "uniform" => {
                        t.only(&["min", "max"])?;
                        AgeDistribution::Uniform {
                            min: t.num("min")?,
                            max: t.num("max")?,
                        }
                    }
                    other => {
                        return Err(serde::de::Error::unknown_variant(
                            other,
                            &["normal", "uniform"],
                        ))
                    }
                })
            }
        }
        d.deserialize_map(V)
    }
}
