//! Discrete-time (cycle-based) Markov arms, evaluated two ways on one definition.
//!
//! A [`DiscreteArm`] is compiled from an arm's `[arms.markov]` table (see
//! [`crate::scenario::Markov`]). It is used by
//! - the microsimulation ([`simulate`]): each patient moves between states at cycle
//!   boundaries by one uniform per cycle from its arm stream, producing an ordinary
//!   [`History`] whose segments start at cycle boundaries, so contracts work unchanged; its
//!   accounting ([`account`]) follows the arm's counting convention exactly; and
//! - the exact cohort calculation ([`cohort`]): state-occupancy vectors propagated through the
//!   same transition rows, times the same per-point weights, and contract expectations
//!   computed on the Markov chain where the contract allows it.
//!
//! Because both use the same rows, weights and discount factors, the microsimulation's
//! expectation equals the cohort result exactly (up to Monte Carlo error).
//!
//! Conventions. Cycle c runs from t_c to t_(c+1), t_c = c·H/n (H the horizon, n cycles).
//! Occupancy points are t_0 … t_n. A state reward r (cost per year, utility) counts
//! r·Δ·(a_c at t_c + b_c at t_(c+1)) for cycle c, each point discounted at its own time:
//! (1 + r)^-t ("annual") or (1 + r·Δ)^-k ("per_cycle"). One-time amounts (entry costs,
//! transition costs and QALY changes) fall at the boundary where the state is entered and
//! are discounted the same way. Contract payments are discounted like every payment in
//! obasim, (1 + r)^-t at their time.

// Index loops over states and points read more clearly than iterator chains here.
#![allow(clippy::needless_range_loop)]

pub mod cohort;
pub mod compile;
pub mod report;

use crate::accounting::{ArmTotals, YearFlows};
use crate::history::{Ending, History, Segment};
use crate::model::population::Patient;
use crate::model::ArmModel;
use crate::rng::{uniform_open, PatientRng};
use crate::scenario::Counting;

pub use cohort::{cohort, CohortResult};
pub use report::{cohort_command, CohortArgs, CohortFailure};

/// How a transition's base probability per cycle is given.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Constant probability per cycle.
    Probability(f64),
    /// Constant rate per year.
    Rate(f64),
    /// Probability per cycle by cycle number (last repeats).
    ProbabilityByCycle(Vec<f64>),
    /// Rate per year by cycle number (last repeats).
    RateByCycle(Vec<f64>),
    /// Probability per cycle by attained age: (from age, value) rows, increasing.
    ProbabilityByAge(Vec<(f64, f64)>),
    /// Rate per year by attained age.
    RateByAge(Vec<(f64, f64)>),
}

impl Value {
    /// Whether the value depends on the patient's age.
    pub fn by_age(&self) -> bool {
        matches!(self, Value::ProbabilityByAge(_) | Value::RateByAge(_))
    }

    /// The ages at which a by-age table changes value.
    pub fn age_cuts(&self) -> Vec<f64> {
        match self {
            Value::ProbabilityByAge(t) | Value::RateByAge(t) => t.iter().map(|r| r.0).collect(),
            _ => Vec::new(),
        }
    }
}

fn step_lookup(rows: &[(f64, f64)], age: f64) -> f64 {
    let i = rows.partition_point(|r| r.0 <= age);
    rows[i.saturating_sub(1)].1
}

/// One transition out of a state of a discrete arm.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteExit {
    /// Destination state.
    pub to: usize,
    /// Base probability or rate.
    pub value: Value,
    /// Hazard ratio (applied to the rate).
    pub hazard_ratio: f64,
    /// Relative risk (applied to the probability).
    pub relative_risk: f64,
    /// Cycles starting in [from, until) get the hazard ratio and relative risk.
    pub effect: (f64, f64),
    /// Probability per cycle when it does not depend on age (one per cycle), precomputed.
    pub by_cycle: Option<Vec<f64>>,
}

/// A compiled discrete-time arm (the states' costs and utilities stay in [`ArmModel`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteArm {
    /// Number of cycles n.
    pub cycles: usize,
    /// Horizon H = n·Δ.
    pub horizon: f64,
    /// Cycle length Δ = H / n.
    pub dt: f64,
    /// Counting convention.
    pub counting: Counting,
    /// (a_c, b_c): weight of cycle c's rewards at its start and at its end point.
    pub split: Vec<(f64, f64)>,
    /// Discount factor of costs at each point k = 0..=n.
    pub disc_costs: Vec<f64>,
    /// Discount factor of outcomes at each point.
    pub disc_outcomes: Vec<f64>,
    /// Death transitions apply first, others conditional on surviving.
    pub death_first: bool,
    /// Background mortality from the life table applies on top.
    pub background: bool,
    /// Index of the death state.
    pub death: usize,
    /// Exits of each state, in file order.
    pub exits: Vec<Vec<DiscreteExit>>,
    /// One-time cost of a move from → to (row from, column to).
    pub move_cost: Vec<Vec<f64>>,
    /// One-time QALY change of a move from → to.
    pub move_qalys: Vec<Vec<f64>>,
    /// Undiscounted state cost counted at each point k: point_cost[s][k] = Δ·(a_k·c_s(k) +
    /// b_(k−1)·c_s(k−1)), with c_s(c) the cost per year of state s in cycle c.
    pub point_cost: Vec<Vec<f64>>,
    /// Undiscounted time counted at each point: Δ·(a_k + b_(k−1)).
    pub point_weight: Vec<f64>,
    /// Whether any transition depends on the patient's age.
    pub age_dependent: bool,
}

impl DiscreteArm {
    /// Time of occupancy point k (t_n is exactly the horizon).
    #[inline]
    pub fn time(&self, k: usize) -> f64 {
        if k >= self.cycles {
            self.horizon
        } else {
            k as f64 * self.horizon / self.cycles as f64
        }
    }

    /// The last point at or before time `t` (0 for t < 0): the state at `t` is the state at
    /// this point.
    pub fn point_at(&self, t: f64) -> usize {
        if t <= 0.0 {
            return 0;
        }
        let mut k =
            ((t / self.horizon * self.cycles as f64).floor().max(0.0) as usize).min(self.cycles);
        while k > 0 && self.time(k) > t {
            k -= 1;
        }
        while k < self.cycles && self.time(k + 1) <= t {
            k += 1;
        }
        k
    }

    /// The point whose time is exactly `t` (a segment start).
    fn point_of_boundary(&self, t: f64) -> usize {
        self.point_at(t)
    }

    /// Probability per cycle of `exit` in cycle `c` for a patient aged `age0` at treatment,
    /// after the hazard ratio and relative risk.
    pub fn probability(&self, exit: &DiscreteExit, c: usize, age0: f64) -> f64 {
        if let Some(v) = &exit.by_cycle {
            return v[c.min(v.len() - 1)];
        }
        let age = age0 + self.time(c);
        let (is_rate, base) = match &exit.value {
            Value::Probability(p) => (false, *p),
            Value::Rate(r) => (true, *r),
            Value::ProbabilityByCycle(v) => (false, v[c.min(v.len() - 1)]),
            Value::RateByCycle(v) => (true, v[c.min(v.len() - 1)]),
            Value::ProbabilityByAge(t) => (false, step_lookup(t, age)),
            Value::RateByAge(t) => (true, step_lookup(t, age)),
        };
        self.modify(exit, c, is_rate, base)
    }

    /// Applies the rate conversion and the effect modifiers for cycle `c`.
    pub fn modify(&self, exit: &DiscreteExit, c: usize, is_rate: bool, base: f64) -> f64 {
        let t = self.time(c);
        let tol = 1e-9 * self.dt;
        let active = t >= exit.effect.0 - tol && t < exit.effect.1 - tol;
        let (hr, rr) = if active {
            (exit.hazard_ratio, exit.relative_risk)
        } else {
            (1.0, 1.0)
        };
        let p = if is_rate {
            -(-base * hr * self.dt).exp_m1()
        } else if hr != 1.0 {
            // p' = 1 − (1 − p)^hr: the rate −ln(1 − p)/Δ times hr.
            -((-base).ln_1p() * hr).exp_m1()
        } else {
            base
        };
        p * rr
    }

    /// The row of cycle `c` out of state `s`: `out[j]` = P(state j at t_(c+1) | s at t_c),
    /// with a background probability `q` of dying applied first.
    pub fn row(&self, s: usize, c: usize, age0: f64, q: f64, out: &mut [f64]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        if s == self.death {
            out[s] = 1.0;
            return;
        }
        let (p_death, scale) = self.death_split(s, c, age0);
        let mut moved = 0.0;
        for e in &self.exits[s] {
            if e.to == self.death && self.death_first {
                continue;
            }
            let p = scale * self.probability(e, c, age0);
            out[e.to] += p;
            moved += p;
        }
        out[self.death] += p_death;
        out[s] += (scale - moved).max(0.0);
        if q > 0.0 {
            for x in out.iter_mut() {
                *x *= 1.0 - q;
            }
            out[self.death] += q;
        }
    }

    /// With `death_first`: (p_iD, 1 − p_iD) — the death probability and the factor applied to
    /// the other probabilities of the row; otherwise (0, 1) (death is an ordinary exit).
    fn death_split(&self, s: usize, c: usize, age0: f64) -> (f64, f64) {
        if !self.death_first {
            return (0.0, 1.0);
        }
        let p: f64 = self.exits[s]
            .iter()
            .filter(|e| e.to == self.death)
            .map(|e| self.probability(e, c, age0))
            .sum();
        (p, 1.0 - p)
    }

    /// Draws the state at t_(c+1) from state `s` at t_c with uniform `u` (no background
    /// mortality: that comes from the patient's background death time).
    fn step(&self, s: usize, c: usize, age0: f64, u: f64) -> usize {
        let (p_death, scale) = self.death_split(s, c, age0);
        let mut acc = 0.0;
        if self.death_first {
            acc += p_death;
            if u < acc {
                return self.death;
            }
        }
        for e in &self.exits[s] {
            if e.to == self.death && self.death_first {
                continue;
            }
            acc += scale * self.probability(e, c, age0);
            if u < acc {
                return e.to;
            }
        }
        s
    }
}

/// Simulates one patient in a discrete arm: one uniform for the initial state (as for a
/// continuous arm), then one per cycle while alive. Background death (when the arm uses it)
/// happens in the cycle containing the patient's background death time T (t_c < T <= t_(c+1)),
/// whatever the uniform; it is recorded at the end of that cycle, like every transition.
pub fn simulate(
    arm: &ArmModel,
    d: &DiscreteArm,
    patient: &Patient,
    rng: &mut PatientRng,
    out: &mut History,
) {
    out.segments.clear();
    out.horizon = d.horizon;
    out.death_time = f64::INFINITY;
    out.ending = Ending::AliveAtHorizon;
    let u = uniform_open(rng);
    let mut state = arm
        .initial_cumulative
        .iter()
        .position(|&c| u <= c)
        .unwrap_or(arm.initial_cumulative.len() - 1);
    let mut start = 0.0;
    for c in 0..d.cycles {
        if state == d.death {
            break;
        }
        let u = uniform_open(rng);
        let t_next = d.time(c + 1);
        let (next, background) = if d.background && patient.background_death <= t_next {
            (d.death, true)
        } else {
            (d.step(state, c, patient.age, u), false)
        };
        if next != state {
            out.segments.push(Segment {
                state,
                start,
                end: t_next,
            });
            start = t_next;
            state = next;
            if state == d.death {
                out.death_time = t_next;
                out.ending = if background {
                    Ending::BackgroundDeath
                } else {
                    Ending::DiseaseDeath
                };
            }
        }
    }
    out.segments.push(Segment {
        state,
        start,
        end: d.horizon,
    });
}

/// Accounts one patient's history in a discrete arm by the arm's counting convention:
/// state costs, utilities and life years at the occupancy points, one-time amounts at the
/// boundaries where states are entered, the start cost at time 0. Costs count only at
/// points before `payer_until`; health outcomes count in full. Cost flows go into `flows`
/// at the time of their point.
pub fn account(
    arm: &ArmModel,
    d: &DiscreteArm,
    history: &History,
    payer_until: f64,
    flows: &mut YearFlows<'_>,
) -> ArmTotals {
    let mut t = ArmTotals {
        other_costs: arm.start_cost,
        other_costs_undiscounted: arm.start_cost,
        ..ArmTotals::default()
    };
    if arm.start_cost != 0.0 {
        flows.point(0.0, arm.start_cost, 1.0);
    }
    let last = history.segments.len() - 1;
    let mut prev: Option<usize> = None;
    for (i, seg) in history.segments.iter().enumerate() {
        let s = seg.state;
        let k0 = d.point_of_boundary(seg.start);
        let k1 = if i == last {
            d.cycles
        } else {
            d.point_of_boundary(seg.end) - 1
        };
        let mut once = arm.states[s].entry_cost;
        if let Some(p) = prev {
            once += d.move_cost[p][s];
            let q = d.move_qalys[p][s];
            t.qalys += q * d.disc_outcomes[k0];
            t.qalys_undiscounted += q;
        }
        if once != 0.0 && seg.start < payer_until {
            let dc = d.disc_costs[k0];
            t.other_costs += once * dc;
            t.other_costs_undiscounted += once;
            flows.point(seg.start, once, dc);
        }
        prev = Some(s);
        if s == d.death {
            continue;
        }
        let u = arm.states[s].utility;
        let costs = &d.point_cost[s];
        for k in k0..=k1 {
            let w = d.point_weight[k];
            let wo = w * d.disc_outcomes[k];
            t.life_years += wo;
            t.life_years_undiscounted += w;
            t.qalys += u * wo;
            t.qalys_undiscounted += u * w;
            let c = costs[k];
            if c != 0.0 {
                let tk = d.time(k);
                if tk < payer_until {
                    let dc = d.disc_costs[k];
                    t.other_costs += c * dc;
                    t.other_costs_undiscounted += c;
                    flows.point(tk, c, dc);
                }
            }
        }
    }
    t
}

/// The split (a_c, b_c) of each cycle's rewards between its start and end point, and the
/// resulting point weights w_k (for constant rewards) of a counting convention over `n`
/// cycles.
pub fn split_of(counting: Counting, n: usize) -> Vec<(f64, f64)> {
    match counting {
        Counting::Start => vec![(1.0, 0.0); n],
        Counting::End => vec![(0.0, 1.0); n],
        Counting::HalfCycle | Counting::Trapezoid => vec![(0.5, 0.5); n],
        Counting::Simpson => (0..n)
            .map(|c| {
                if c % 2 == 0 {
                    (1.0 / 3.0, 2.0 / 3.0)
                } else {
                    (2.0 / 3.0, 1.0 / 3.0)
                }
            })
            .collect(),
        Counting::DarthSimpson => {
            // gen_wcc: entries 1..=n+1 (point k = entry − 1): even entries 2/3, odd 4/3,
            // first and last 1/3; interior points split equally between their two cycles.
            let w = |k: usize| -> f64 {
                if k == 0 || k == n {
                    1.0 / 3.0
                } else if (k + 1).is_multiple_of(2) {
                    2.0 / 3.0
                } else {
                    4.0 / 3.0
                }
            };
            (0..n)
                .map(|c| {
                    let a = if c == 0 { w(0) } else { w(c) / 2.0 };
                    let b = if c + 1 == n { w(n) } else { w(c + 1) / 2.0 };
                    (a, b)
                })
                .collect()
        }
    }
}

/// Point weights w_k = a_k + b_(k−1) (k = 0..=n) of a split.
pub fn point_weights(split: &[(f64, f64)]) -> Vec<f64> {
    let n = split.len();
    (0..=n)
        .map(|k| {
            let a = if k < n { split[k].0 } else { 0.0 };
            let b = if k > 0 { split[k - 1].1 } else { 0.0 };
            a + b
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_weights() {
        let w = point_weights(&split_of(Counting::HalfCycle, 4));
        assert_eq!(w, vec![0.5, 1.0, 1.0, 1.0, 0.5]);
        let w = point_weights(&split_of(Counting::Start, 3));
        assert_eq!(w, vec![1.0, 1.0, 1.0, 0.0]);
        let w = point_weights(&split_of(Counting::End, 3));
        assert_eq!(w, vec![0.0, 1.0, 1.0, 1.0]);
        let w = point_weights(&split_of(Counting::Simpson, 4));
        let want = [1.0 / 3.0, 4.0 / 3.0, 2.0 / 3.0, 4.0 / 3.0, 1.0 / 3.0];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
        // DARTH's gen_wcc(5, "Simpson1/3"): 1/3, 2/3, 4/3, 2/3, 4/3, 1/3.
        let w = point_weights(&split_of(Counting::DarthSimpson, 5));
        let want = [1.0, 2.0, 4.0, 2.0, 4.0, 1.0];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b / 3.0).abs() < 1e-15, "{w:?}");
        }
    }
}
