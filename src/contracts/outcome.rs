//! Named outcomes (conditions on a history at a time) and how they are observed:
//! perfectly, or through an assessment plan with misclassification, missed assessments and
//! administrative costs.

use crate::history::History;
use crate::rng::{uniform_open, PatientRng};
use crate::scenario::MissedRule;

/// A compiled outcome condition on the therapy arm's history.
#[derive(Clone, Debug, PartialEq)]
pub enum OutcomeTest {
    /// In one of the marked states.
    InState(Vec<bool>),
    /// In none of the marked states.
    NotInState(Vec<bool>),
    /// Entered one of the marked states by t.
    Entered(Vec<bool>),
    /// Entered none of the marked states by t.
    NotEntered(Vec<bool>),
    /// Alive at t.
    Alive,
}

/// A named outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeDef {
    /// Name.
    pub name: String,
    /// The condition.
    pub test: OutcomeTest,
}

impl OutcomeDef {
    /// Whether the outcome holds at time `t` on the true history.
    pub fn holds(&self, h: &History, t: f64) -> bool {
        match &self.test {
            OutcomeTest::InState(m) => m[h.state_at(t)],
            OutcomeTest::NotInState(m) => !m[h.state_at(t)],
            OutcomeTest::Entered(m) => h
                .segments
                .iter()
                .take_while(|s| s.start <= t)
                .any(|s| m[s.state]),
            OutcomeTest::NotEntered(m) => !h
                .segments
                .iter()
                .take_while(|s| s.start <= t)
                .any(|s| m[s.state]),
            OutcomeTest::Alive => h.alive_at(t),
        }
    }

    /// The first time in [0, until] at which the outcome fails on the true history
    /// (continuous, perfect observation). Outcomes change only when a state is entered, so
    /// checking time 0 and every later entry time is exact.
    pub fn first_failure(&self, h: &History, until: f64) -> Option<f64> {
        if !self.holds(h, 0.0) {
            return Some(0.0);
        }
        h.segments
            .iter()
            .skip(1)
            .map(|s| s.start)
            .take_while(|&t| t <= until)
            .find(|&t| !self.holds(h, t))
    }
}

/// A compiled assessment plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanTerms {
    /// Name.
    pub name: String,
    /// Index of the outcome assessed.
    pub outcome: usize,
    /// Assessment times, increasing, within the horizon.
    pub times: Vec<f64>,
    /// P(assessed as holding | holds).
    pub sensitivity: f64,
    /// P(assessed as failed | fails).
    pub specificity: f64,
    /// P(an assessment is missed).
    pub missed: f64,
    /// What a missed assessment counts as.
    pub if_missed: MissedRule,
    /// Payer's cost per assessment done.
    pub cost_payer: f64,
    /// Manufacturer's cost per assessment done.
    pub cost_manufacturer: f64,
    /// Payer's cost per patient-year of follow-up.
    pub annual_cost_payer: f64,
    /// Manufacturer's cost per patient-year of follow-up.
    pub annual_cost_manufacturer: f64,
}

/// One assessment of one patient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    /// Scheduled time.
    pub time: f64,
    /// Whether it was done (alive and not missed).
    pub done: bool,
    /// The status it counts as for contracts (after misclassification and the missed rule).
    pub holds: bool,
}

impl PlanTerms {
    /// Assesses a patient: two uniforms per scheduled time, always drawn in the same order
    /// (so changing sensitivity or the missed rate keeps the other draws: common random
    /// numbers). Assessments stop at death.
    pub fn assess(
        &self,
        outcome: &OutcomeDef,
        h: &History,
        rng: &mut PatientRng,
        out: &mut Vec<Assessment>,
    ) {
        out.clear();
        let mut last = true;
        for &t in &self.times {
            let u_missed = uniform_open(rng);
            let u_class = uniform_open(rng);
            if !h.alive_at(t) {
                break;
            }
            let done = u_missed >= self.missed;
            let holds = if done {
                let truth = outcome.holds(h, t);
                if truth {
                    u_class < self.sensitivity
                } else {
                    u_class >= self.specificity
                }
            } else {
                match self.if_missed {
                    MissedRule::Pay => true,
                    MissedRule::Withhold => false,
                    MissedRule::CarryLast => last,
                }
            };
            last = holds;
            out.push(Assessment {
                time: t,
                done,
                holds,
            });
        }
    }

    /// End of follow-up for the annual administrative cost: the last scheduled assessment,
    /// or death if earlier.
    pub fn follow_up_end(&self, h: &History) -> f64 {
        let last = self.times.last().copied().unwrap_or(0.0);
        last.min(h.death_time).min(h.horizon)
    }
}

/// The status of an outcome at time `t` as seen through assessments: the last assessment at
/// or before `t`; holding when there is none yet (no evidence of failure).
pub fn observed_status(assessments: &[Assessment], t: f64) -> bool {
    let i = assessments.partition_point(|a| a.time <= t);
    if i == 0 {
        true
    } else {
        assessments[i - 1].holds
    }
}

/// The first assessment at or before `until` that counts as failed.
pub fn observed_first_failure(assessments: &[Assessment], until: f64) -> Option<f64> {
    assessments
        .iter()
        .take_while(|a| a.time <= until)
        .find(|a| !a.holds)
        .map(|a| a.time)
}
