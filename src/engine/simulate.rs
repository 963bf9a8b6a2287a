//! The sampler: one patient's trajectory in each arm, exactly in continuous time.
//!
//! In each state every outgoing transition draws its event time (competing risks; clock
//! reset or forward), background mortality competes from every living state, and the
//! earliest event wins. No time grid.

use crate::contracts::{Assessment, ContractContext, ContractEvents, Payment};
use crate::history::{Ending, History, Segment};
use crate::model::population::Patient;
use crate::model::{ArmModel, Model, PopulationModel};
use crate::rng::{
    exp1, uniform_open, PatientRng, PatientStreams, STREAM_ARM0, STREAM_CHURN, STREAM_MANUFACTURER,
    STREAM_PLAN0, STREAM_POPULATION,
};
use crate::scenario::Clock;

/// Simulates one arm for `patient`, filling `out` (reused; cleared first).
pub fn simulate_arm(
    arm: &ArmModel,
    population: &PopulationModel,
    patient: &Patient,
    horizon: f64,
    rng: &mut PatientRng,
    out: &mut History,
) {
    if let Some(d) = &arm.discrete {
        return crate::markov::simulate(arm, d, patient, rng, out);
    }
    out.segments.clear();
    out.horizon = horizon;
    out.death_time = f64::INFINITY;
    out.ending = Ending::AliveAtHorizon;
    let u = uniform_open(rng);
    let mut state = arm
        .initial_cumulative
        .iter()
        .position(|&c| u <= c)
        .unwrap_or(arm.initial_cumulative.len() - 1);
    let mut t = 0.0;
    // An arm whose transitions are all-cause has no background mortality.
    let fixed_background = if arm.background {
        patient.background_death
    } else {
        f64::INFINITY
    };
    // Scaled background hazard accrued in earlier states (arms with SMRs or excess hazards).
    let mut accrued = 0.0;
    loop {
        if state == arm.death {
            out.segments.push(Segment {
                state,
                start: t,
                end: horizon,
            });
            return;
        }
        let mut next_t = f64::INFINITY;
        let mut next_state = state;
        for exit in &arm.exits[state] {
            let e = exp1(rng);
            let at = match exit.clock {
                Clock::Reset => t + exit.family.sample_after(0.0, e),
                Clock::Forward => exit.family.sample_after(t, e),
            };
            if at < next_t {
                next_t = at;
                next_state = exit.to;
            }
        }
        let background = if arm.varying_background {
            let st = &arm.states[state];
            let smr = if arm.background { st.smr } else { 0.0 };
            let at = population.background_after(
                patient,
                t,
                patient.background_hazard - accrued,
                smr,
                st.excess_hazard,
            );
            if next_t < at && next_t < horizon {
                accrued += population.background_accrued(patient, t, next_t, smr, st.excess_hazard);
            }
            at
        } else {
            fixed_background
        };
        let background_first = background <= next_t;
        let event = if background_first { background } else { next_t };
        if event >= horizon {
            out.segments.push(Segment {
                state,
                start: t,
                end: horizon,
            });
            return;
        }
        out.segments.push(Segment {
            state,
            start: t,
            end: event,
        });
        t = event;
        if background_first {
            state = arm.death;
            out.ending = Ending::BackgroundDeath;
        } else {
            state = next_state;
            if state == arm.death {
                out.ending = Ending::DiseaseDeath;
            }
        }
        if state == arm.death {
            out.death_time = t;
        }
    }
}

/// Reusable per-worker buffers holding one simulated patient: characteristics, a history per
/// arm and the payments of every contract.
#[derive(Clone, Debug)]
pub struct PatientRecord {
    /// Patient index within the draw.
    pub index: u64,
    /// Sex, age and background death time.
    pub patient: Patient,
    /// The patient's characteristics (see [`crate::model::characteristics`]).
    pub covariates: Vec<f64>,
    /// The arms as they are for this patient, for arms whose numbers vary by patient
    /// (others are read from the model; see [`PatientRecord::arm`]).
    pub arms: Vec<ArmModel>,
    /// One history per arm.
    pub histories: Vec<History>,
    /// When the patient leaves the payer (infinite if never).
    pub churn_time: f64,
    /// When the manufacturer can no longer pay refunds (infinite if never).
    pub default_time: f64,
    /// Assessments of the therapy arm under each plan.
    pub assessments: Vec<Vec<Assessment>>,
    /// Payments per contract (therapy arm).
    pub payments: Vec<Vec<Payment>>,
    /// Other per-patient contract events (withheld amounts, lost refunds).
    pub events: Vec<ContractEvents>,
    /// The random streams this patient used, in order, with the number of generator outputs
    /// drawn from each (what `obasim bench` replays to time its floor).
    pub random_numbers: Vec<(u64, u32)>,
}

impl PatientRecord {
    /// Arm `a` as it is for this patient.
    pub fn arm<'a>(&'a self, model: &'a Model, a: usize) -> &'a ArmModel {
        match model.arms[a].effects {
            Some(_) => &self.arms[a],
            None => &model.arms[a],
        }
    }

    /// Empty buffers sized for `model`.
    pub fn new(model: &Model) -> Self {
        Self {
            index: 0,
            patient: Patient {
                sex: crate::model::lifetable::Sex::Female,
                age: 0.0,
                background_death: 0.0,
                background_hazard: 0.0,
            },
            covariates: Vec::with_capacity(model.population.characteristics.names.len()),
            arms: if model.arms.iter().any(|a| a.effects.is_some()) {
                model.arms.clone()
            } else {
                Vec::new()
            },
            histories: vec![History::new(); model.arms.len()],
            churn_time: f64::INFINITY,
            default_time: f64::INFINITY,
            assessments: vec![Vec::new(); model.plans.len()],
            payments: vec![Vec::with_capacity(16); model.contracts.len()],
            events: vec![ContractEvents::default(); model.contracts.len()],
            random_numbers: Vec::with_capacity(4 + model.arms.len() + model.plans.len()),
        }
    }

    /// Simulates patient `index` of PSA draw `draw`: its characteristics from the population
    /// stream, each arm from its own stream, then every contract's payments on the therapy arm.
    pub fn simulate(&mut self, model: &Model, draw: u64, index: u64) {
        let seed = model.sim.seed;
        self.index = index;
        self.random_numbers.clear();
        let streams = PatientStreams::new(seed, draw, index);
        let mut rng = streams.stream(STREAM_POPULATION);
        self.patient = model
            .population
            .sample(index, &mut rng, &mut self.covariates);
        self.random_numbers.push((STREAM_POPULATION, rng.drawn()));
        for (a, template) in model.arms.iter().enumerate() {
            let arm = match &template.effects {
                Some(e) => {
                    e.personalise(&self.covariates, &mut self.arms[a]);
                    &self.arms[a]
                }
                None => template,
            };
            let mut rng = streams.stream(STREAM_ARM0 + a as u64);
            simulate_arm(
                arm,
                &model.population,
                &self.patient,
                model.sim.horizon,
                &mut rng,
                &mut self.histories[a],
            );
            self.random_numbers
                .push((STREAM_ARM0 + a as u64, rng.drawn()));
        }
        let used = &mut self.random_numbers;
        let mut event_time = |family: &Option<crate::model::family::Family>, id: u64| match family {
            Some(f) => {
                used.push((id, 1));
                f.sample_after(0.0, exp1(&mut streams.stream(id)))
            }
            None => f64::INFINITY,
        };
        self.churn_time = event_time(&model.churn, STREAM_CHURN);
        self.default_time = event_time(&model.manufacturer_default, STREAM_MANUFACTURER);
        let therapy = &self.histories[model.therapy.arm];
        for (k, plan) in model.plans.iter().enumerate() {
            let mut rng = streams.stream(STREAM_PLAN0 + k as u64);
            plan.assess(
                &model.outcomes[plan.outcome],
                therapy,
                &mut rng,
                &mut self.assessments[k],
            );
            self.random_numbers
                .push((STREAM_PLAN0 + k as u64, rng.drawn()));
        }
        let ctx = ContractContext {
            history: therapy,
            outcomes: &model.outcomes,
            assessments: &self.assessments,
            churn_time: self.churn_time,
            default_time: self.default_time,
            list_price: model.therapy.list_price,
        };
        for (c, contract) in model.contracts.iter().enumerate() {
            self.payments[c].clear();
            self.events[c] = contract.evaluate(&ctx, &mut self.payments[c]);
        }
    }
}
