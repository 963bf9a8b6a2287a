//! The compiled model: everything the engine needs, checked and in numeric form.
//!
//! `build::compile` turns a parsed [`crate::scenario::Scenario`] into a [`Model`], collecting
//! every semantic error with its field path. The engine, the accounting and the contracts
//! read only this type.

pub mod build;
pub mod characteristics;
pub mod effects;
pub mod family;
pub mod lifetable;
pub mod population;
pub mod special;

use crate::accounting::Discounter;
use crate::contracts::{ContractTerms, OutcomeDef, PlanTerms};
use crate::scenario::Clock;
pub use build::{compile, Setup};
use family::Family;
use lifetable::LifeTable;
use population::AgeModel;

/// A ready-to-run model.
#[derive(Clone, Debug)]
pub struct Model {
    /// SHA-256 of the data files the scenario read (life table), see
    /// [`build::data_digest`].
    pub data_sha256: String,
    /// The data files read, on disk (none for embedded scenarios): inputs an output
    /// directory must not replace.
    pub data_files: Vec<std::path::PathBuf>,
    /// Scenario name.
    pub name: String,
    /// Scenario description.
    pub description: String,
    /// Currency of all amounts.
    pub currency: String,
    /// Price year of all amounts.
    pub price_year: i32,
    /// Simulation settings.
    pub sim: SimSettings,
    /// The treated population.
    pub population: PopulationModel,
    /// Therapy price and costs.
    pub therapy: TherapyTerms,
    /// Arms; `therapy.arm` indexes the therapy arm.
    pub arms: Vec<ArmModel>,
    /// Cost categories named by the scenario's costs (`cost = { drug = .., medical = .. }`),
    /// in order of first appearance; costs written as one number belong to none.
    pub cost_categories: Vec<String>,
    /// Contracts evaluated on the therapy arm.
    pub contracts: Vec<ContractTerms>,
    /// Named outcomes on the therapy arm.
    pub outcomes: Vec<OutcomeDef>,
    /// Assessment plans.
    pub plans: Vec<PlanTerms>,
    /// Time until the patient leaves the payer (none: never).
    pub churn: Option<Family>,
    /// Time until the manufacturer can no longer pay refunds (none: never).
    pub manufacturer_default: Option<Family>,
    /// Treated cohorts for budget impact.
    pub cohort: Option<CohortModel>,
    /// Things in the scenario that are allowed but probably not meant (e.g. unreachable
    /// states), located like errors.
    pub warnings: Vec<crate::scenario::Diagnostic>,
}

/// Treated cohorts by calendar year.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortModel {
    /// Patients treated at the start of calendar year 1, 2, ...
    pub uptake: Vec<u32>,
    /// Calendar years reported.
    pub years: usize,
    /// Annual cap on this payer's therapy spend.
    pub annual_cap: Option<f64>,
    /// Number of simulated cohorts used (each of `size()` consecutive patients).
    pub replicates: u64,
    /// Number of simulated cohorts asked for (`replicates` is this, or fewer when the
    /// patients do not suffice).
    pub requested_replicates: u64,
}

impl CohortModel {
    /// Patients in one cohort replicate (all uptake years).
    pub fn size(&self) -> u64 {
        self.uptake.iter().map(|&n| n as u64).sum()
    }

    /// Uses as many whole cohorts as `patients` allow (at most the requested number).
    pub fn fit_to_patients(&mut self, patients: u64) {
        self.replicates = self
            .requested_replicates
            .min(patients / self.size().max(1))
            .max(1);
    }

    /// For patient `i`: its replicate and uptake year (0-based), if it belongs to one of the
    /// simulated cohorts.
    pub fn place(&self, i: u64) -> Option<(usize, usize)> {
        let m = self.size();
        let r = i / m;
        if r >= self.replicates {
            return None;
        }
        let mut pos = i % m;
        for (u, &n) in self.uptake.iter().enumerate() {
            if pos < n as u64 {
                return Some((r as usize, u));
            }
            pos -= n as u64;
        }
        None
    }
}

/// Simulation settings.
#[derive(Clone, Debug)]
pub struct SimSettings {
    /// Number of patients.
    pub patients: u64,
    /// Seed of all streams.
    pub seed: u64,
    /// Horizon in years.
    pub horizon: f64,
    /// Payer's discounting of costs and payments.
    pub costs: Discounter,
    /// Discounting of QALYs and life years.
    pub outcomes: Discounter,
    /// The manufacturer's discounting of revenue.
    pub manufacturer: Discounter,
    /// Willingness-to-pay thresholds.
    pub wtp: Vec<f64>,
    /// Step of the occupancy grid (years).
    pub occupancy_step: f64,
}

impl SimSettings {
    /// Number of whole or partial years in the horizon (rows of the cash-flow table).
    pub fn years(&self) -> usize {
        (self.horizon.ceil() as usize).max(1)
    }

    /// Number of points of the occupancy grid (0, step, 2 step, ... <= horizon).
    pub fn occupancy_points(&self) -> usize {
        (self.horizon / self.occupancy_step * (1.0 + 1e-12)).floor() as usize + 1
    }
}

/// Population characteristics and background mortality.
#[derive(Clone, Debug)]
pub struct PopulationModel {
    /// Age at treatment.
    pub age: AgeModel,
    /// Share female.
    pub share_female: f64,
    /// Age of certain death (infinite: none).
    pub max_age: f64,
    /// Background mortality (none: no arm has any).
    pub life_table: Option<std::sync::Arc<LifeTable>>,
    /// Characteristics beyond sex and age, and the subgroups reported.
    pub characteristics: characteristics::Characteristics,
}

/// The therapy's price and the costs around it.
#[derive(Clone, Debug)]
pub struct TherapyTerms {
    /// Index of the therapy arm.
    pub arm: usize,
    /// List price.
    pub list_price: f64,
    /// Payer's administration cost at time 0.
    pub administration_cost: f64,
    /// Manufacturer's cost of goods at time 0.
    pub cost_of_goods: f64,
}

/// One arm's multi-state model and its costs and utilities.
#[derive(Clone, Debug)]
pub struct ArmModel {
    /// Arm name.
    pub name: String,
    /// States, in file order.
    pub states: Vec<StateModel>,
    /// Index of the absorbing death state.
    pub death: usize,
    /// Cumulative initial distribution over states (last element 1).
    pub initial_cumulative: Vec<f64>,
    /// Outgoing transitions of each state.
    pub exits: Vec<Vec<Exit>>,
    /// One-time cost at time 0 (includes the therapy's administration cost for the therapy arm).
    pub start_cost: f64,
    /// The start cost's parts by cost category (see [`Model::cost_categories`]; empty when
    /// the scenario names none).
    pub start_parts: Vec<f64>,
    /// Whether background mortality competes with the transitions (continuous-time arms;
    /// a discrete-time arm's own flag is in `discrete`).
    pub background: bool,
    /// A discrete-time (cycle-based) Markov arm: its cycles, transition rows and counting
    /// (then `exits` is empty). None for a continuous-time arm.
    pub discrete: Option<crate::markov::DiscreteArm>,
    /// Numbers that vary by patient (linear predictors over characteristics); none: the
    /// arm is the same for everyone.
    pub effects: Option<Box<effects::ArmEffects>>,
    /// Whether some state scales the background hazard (`smr`) or adds an excess hazard:
    /// then the background death time depends on the path (continuous-time arms).
    pub varying_background: bool,
}

/// A state's costs and utility.
#[derive(Clone, Debug)]
pub struct StateModel {
    /// State name.
    pub name: String,
    /// Annual cost rate.
    pub cost: f64,
    /// Utility per year.
    pub utility: f64,
    /// One-time cost on entry.
    pub entry_cost: f64,
    /// The annual cost's parts by cost category (see [`Model::cost_categories`]; empty
    /// when the scenario names none).
    pub cost_parts: Vec<f64>,
    /// The entry cost's parts by cost category.
    pub entry_parts: Vec<f64>,
    /// Standardised mortality ratio on the background hazard in this state (1: none).
    pub smr: f64,
    /// Excess hazard of death per year in this state, added to the background (0: none).
    pub excess_hazard: f64,
}

/// A transition out of a state.
#[derive(Clone, Debug)]
pub struct Exit {
    /// Destination state index.
    pub to: usize,
    /// Time-to-event distribution.
    pub family: Family,
    /// Which clock it runs on.
    pub clock: Clock,
}

impl ArmModel {
    /// Index of a state by name.
    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| s.name == name)
    }
}

impl Model {
    /// Indices of the comparator arms (all arms but the therapy arm).
    pub fn comparators(&self) -> Vec<usize> {
        (0..self.arms.len())
            .filter(|&a| a != self.therapy.arm)
            .collect()
    }
}
