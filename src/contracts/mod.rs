//! Payment agreements: a contract turns a patient's [`History`] into dated payments.
//!
//! A contract is compiled into [`ContractTerms`]: a schedule of installments (each a share
//! of the list price at a time) and the rules that stop it. Upfront payment is the
//! one-installment case. Contracts see only the history, never the sampler, so every
//! contract is evaluated on the same simulated patients (common random numbers).

use crate::history::History;

/// One scheduled payment: `fraction` of the list price at `time`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Installment {
    /// Due time, years since treatment.
    pub time: f64,
    /// Share of the list price (may exceed 1/n with interest).
    pub fraction: f64,
}

/// A payment made: `amount` at `time` (negative for a refund).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Payment {
    /// Time, years since treatment.
    pub time: f64,
    /// Amount in currency.
    pub amount: f64,
}

/// The compiled terms of a contract.
#[derive(Clone, Debug, PartialEq)]
pub struct ContractTerms {
    /// Name.
    pub name: String,
    /// Kind of contract as written in the scenario ("upfront", "installments").
    pub kind: &'static str,
    /// Scheduled payments in time order.
    pub schedule: Vec<Installment>,
    /// Whether death stops the remaining payments.
    pub stop_on_death: bool,
    /// Annual interest on the deferred balance used to size the installments.
    pub interest: f64,
}

impl ContractTerms {
    /// The whole price at time `at`.
    pub fn upfront(name: &str, at: f64) -> Self {
        Self {
            name: name.to_string(),
            kind: "upfront",
            schedule: vec![Installment {
                time: at,
                fraction: 1.0,
            }],
            stop_on_death: true,
            interest: 0.0,
        }
    }

    /// `n` equal payments every `interval` years from `first`. With interest `i` on the
    /// deferred balance, each payment is sized so that the payments discounted at `i` equal
    /// the price at time 0 (annuity formula): A = P / Σ_k (1 + i)^(-t_k).
    pub fn installments(
        name: &str,
        n: u32,
        interval: f64,
        first: f64,
        interest: f64,
        stop_on_death: bool,
    ) -> Self {
        let times: Vec<f64> = (0..n).map(|k| first + interval * k as f64).collect();
        let annuity: f64 = times.iter().map(|&t| (1.0 + interest).powf(-t)).sum();
        let fraction = 1.0 / annuity;
        Self {
            name: name.to_string(),
            kind: "installments",
            schedule: times
                .into_iter()
                .map(|time| Installment { time, fraction })
                .collect(),
            stop_on_death,
            interest,
        }
    }

    /// The undiscounted total due if every installment is paid, as a share of the price.
    pub fn full_fraction(&self) -> f64 {
        self.schedule.iter().map(|i| i.fraction).sum()
    }

    /// Appends the payments this contract makes for a patient with `history` to `out`
    /// (in time order; nothing after the horizon).
    pub fn payments(&self, history: &History, list_price: f64, out: &mut Vec<Payment>) {
        for inst in &self.schedule {
            if inst.time > history.horizon {
                break;
            }
            if self.stop_on_death && !history.alive_at(inst.time) {
                break;
            }
            out.push(Payment {
                time: inst.time,
                amount: inst.fraction * list_price,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ending, Segment};

    fn history(death: f64) -> History {
        History {
            segments: vec![
                Segment {
                    state: 0,
                    start: 0.0,
                    end: death.min(10.0),
                },
                Segment {
                    state: 1,
                    start: death.min(10.0),
                    end: 10.0,
                },
            ],
            death_time: death,
            ending: Ending::DiseaseDeath,
            horizon: 10.0,
        }
    }

    #[test]
    fn installments_stop_at_death() {
        let c = ContractTerms::installments("i", 5, 1.0, 0.0, 0.0, true);
        let mut out = Vec::new();
        c.payments(&history(2.5), 1000.0, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| (p.amount - 200.0).abs() < 1e-9));
        out.clear();
        // Dying exactly on a due date: that payment is not made.
        c.payments(&history(2.0), 1000.0, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn annuity_with_interest_repays_the_price() {
        let c = ContractTerms::installments("i", 5, 1.0, 1.0, 0.05, true);
        let pv: f64 = c
            .schedule
            .iter()
            .map(|i| i.fraction * 1.05f64.powf(-i.time))
            .sum();
        assert!((pv - 1.0).abs() < 1e-12);
        // Textbook annuity-immediate: A = P i / (1 - (1+i)^-n).
        let a = 0.05 / (1.0 - 1.05f64.powi(-5));
        assert!((c.schedule[0].fraction - a).abs() < 1e-12);
    }
}
