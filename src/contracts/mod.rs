//! Payment agreements: a contract turns a patient's history into dated payments.
//!
//! Every contract type of the scenario (upfront, installments, outcome-based installments,
//! milestones, warranty) compiles into one [`ContractTerms`]: a schedule of installments
//! (each a share of the list price at a time, optionally conditional on a named outcome),
//! the rules that stop it (death, failure, the patient leaving the payer) and what happens to
//! the unpaid balance, an optional warranty (refund on failure within a window, prorated),
//! an observation plan, and per-patient caps and floors. Contracts see only the history and
//! the patient's payer events ([`ContractContext`]), never the sampler, so every contract is
//! evaluated on the same simulated patients (common random numbers).

pub mod outcome;

use crate::history::History;
pub use crate::scenario::{AfterFailure, OnChurn, OnStop};
use outcome::{observed_first_failure, observed_status};
pub use outcome::{Assessment, OutcomeDef, OutcomeTest, PlanTerms};

/// One scheduled payment: `fraction` of the list price at `time`, paid only if `condition`
/// (an outcome index) holds then, when given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Installment {
    /// Due time, years since treatment.
    pub time: f64,
    /// Share of the list price.
    pub fraction: f64,
    /// Outcome that must hold at the due time.
    pub condition: Option<usize>,
}

/// Who pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaidBy {
    /// The payer whose perspective the results take.
    ThisPayer,
    /// The next payer, after the patient left (balance transferred).
    NextPayer,
}

/// Why money moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentKind {
    /// A scheduled installment.
    Scheduled,
    /// An unpaid balance made due at once.
    Accelerated,
    /// A top-up to the floor.
    TopUp,
    /// Money back under the warranty (negative amount).
    Refund,
}

/// A payment made: `amount` at `time` (negative for a refund).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Payment {
    /// Time, years since treatment.
    pub time: f64,
    /// Amount in currency (negative: refund to the payer).
    pub amount: f64,
    /// Who pays (or receives a refund).
    pub paid_by: PaidBy,
    /// Why.
    pub kind: PaymentKind,
}

/// How refunds shrink with the time of failure.
#[derive(Clone, Debug, PartialEq)]
pub enum ProrateRule {
    /// Full refund throughout the window.
    None,
    /// (1 − t/window).
    Linear,
    /// (1 − floor(t)/window): by whole years.
    Stepped,
    /// Share from a table of (until, share) rows: the first row with t <= until.
    Table(Vec<(f64, f64)>),
}

/// Money-back terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Warranty {
    /// Outcome whose failure triggers the refund.
    pub outcome: usize,
    /// Window in years.
    pub window: f64,
    /// Share of what was paid refunded at time 0.
    pub refund: f64,
    /// Prorating.
    pub prorate: ProrateRule,
}

impl Warranty {
    /// Share of what was paid that is refunded for a failure at `t` (0 outside the window).
    pub fn refund_share(&self, t: f64) -> f64 {
        if t > self.window {
            return 0.0;
        }
        let factor = match &self.prorate {
            ProrateRule::None => 1.0,
            ProrateRule::Linear => 1.0 - t / self.window,
            ProrateRule::Stepped => 1.0 - t.floor() / self.window,
            ProrateRule::Table(rows) => rows
                .iter()
                .find(|(until, _)| t <= *until)
                .map_or(0.0, |(_, share)| *share),
        };
        (self.refund * factor).clamp(0.0, 1.0)
    }
}

/// The compiled terms of a contract.
#[derive(Clone, Debug, PartialEq)]
pub struct ContractTerms {
    /// Name.
    pub name: String,
    /// Type as written in the scenario.
    pub kind: &'static str,
    /// Scheduled payments in time order.
    pub schedule: Vec<Installment>,
    /// Annual interest on the deferred balance (sizes installments and accelerated balances).
    pub interest: f64,
    /// Whether death stops the remaining payments.
    pub stop_on_death: bool,
    /// Whether the patient leaving the payer stops this payer's payments.
    pub stop_on_churn: bool,
    /// After a failed condition.
    pub after_failure: AfterFailure,
    /// Balance on a stop at death. (A failed condition never makes a balance due: the
    /// payment is not owed, so an outcome-based schedule never pays more than a plain one.)
    pub on_stop: OnStop,
    /// Balance when the patient leaves the payer.
    pub on_churn: OnChurn,
    /// Index of the assessment plan that observes conditions and failures (perfect if none).
    pub observed_by: Option<usize>,
    /// Money-back terms.
    pub warranty: Option<Warranty>,
    /// Most paid in total, net of refunds, as a share of the price.
    pub cap: Option<f64>,
    /// Least paid in total, net of refunds, as a share of the price.
    pub floor: Option<f64>,
}

/// What a contract sees of one patient.
#[derive(Clone, Copy, Debug)]
pub struct ContractContext<'a> {
    /// The therapy arm's history.
    pub history: &'a History,
    /// The scenario's outcomes.
    pub outcomes: &'a [OutcomeDef],
    /// Assessments of this patient under each plan (index = plan).
    pub assessments: &'a [Vec<Assessment>],
    /// When the patient leaves the payer (infinite if never).
    pub churn_time: f64,
    /// When the manufacturer can no longer pay refunds (infinite if never).
    pub default_time: f64,
    /// The list price.
    pub list_price: f64,
}

/// Per-patient events of a contract beyond the payments themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ContractEvents {
    /// Scheduled amounts (within the horizon) that nobody paid: failed conditions, stops,
    /// forfeited balances, the cap.
    pub withheld: f64,
    /// Refunds due but lost because the manufacturer could no longer pay.
    pub refund_lost: f64,
}

impl ContractTerms {
    /// A contract with the given schedule and default rules (stop at death, forfeit).
    pub fn with_schedule(name: &str, kind: &'static str, schedule: Vec<Installment>) -> Self {
        Self {
            name: name.to_string(),
            kind,
            schedule,
            interest: 0.0,
            stop_on_death: true,
            stop_on_churn: false,
            after_failure: AfterFailure::Stop,
            on_stop: OnStop::Forfeit,
            on_churn: OnChurn::Transfer,
            observed_by: None,
            warranty: None,
            cap: None,
            floor: None,
        }
    }

    /// The whole price at time `at`.
    pub fn upfront(name: &str, at: f64) -> Self {
        Self::with_schedule(
            name,
            "upfront",
            vec![Installment {
                time: at,
                fraction: 1.0,
                condition: None,
            }],
        )
    }

    /// Installment fractions at `times` for a price financed at annual `interest`: equal
    /// payments A with Σ_k A (1 + i)^(-t_k) = 1 (the annuity formula; 1/n when i = 0).
    pub fn annuity_fraction(times: &[f64], interest: f64) -> f64 {
        1.0 / times
            .iter()
            .map(|&t| (1.0 + interest).powf(-t))
            .sum::<f64>()
    }

    /// `n` equal payments every `interval` years from `first`, financed at `interest`.
    pub fn installments(
        name: &str,
        n: u32,
        interval: f64,
        first: f64,
        interest: f64,
        stop_on_death: bool,
    ) -> Self {
        let times: Vec<f64> = (0..n).map(|k| first + interval * k as f64).collect();
        let fraction = Self::annuity_fraction(&times, interest);
        let mut c = Self::with_schedule(
            name,
            "installments",
            times
                .into_iter()
                .map(|time| Installment {
                    time,
                    fraction,
                    condition: None,
                })
                .collect(),
        );
        c.interest = interest;
        c.stop_on_death = stop_on_death;
        c
    }

    /// The undiscounted total due if every installment is paid, as a share of the price.
    pub fn full_fraction(&self) -> f64 {
        self.schedule.iter().map(|i| i.fraction).sum()
    }

    /// The outstanding balance at time `t` of installments `rest`: each discounted to `t` at
    /// the contract's interest rate (the nominal sum without interest).
    fn balance(&self, rest: &[Installment], t: f64) -> f64 {
        rest.iter()
            .map(|i| i.fraction * (1.0 + self.interest).powf(-(i.time - t).max(0.0)))
            .sum()
    }

    /// Whether `outcome` counts as holding at `t`: the truth under perfect observation,
    /// otherwise the assessments. Death is always observed (registries record it).
    fn status(&self, ctx: &ContractContext, outcome: usize, t: f64) -> bool {
        let truth = || ctx.outcomes[outcome].holds(ctx.history, t);
        match self.observed_by {
            Some(p) if ctx.history.alive_at(t) => observed_status(&ctx.assessments[p], t),
            _ => truth(),
        }
    }

    /// The first time in [0, until] at which `outcome` counts as failed: the truth under
    /// perfect observation; otherwise the first failed assessment, or death if the outcome
    /// fails at death.
    fn first_failure(&self, ctx: &ContractContext, outcome: usize, until: f64) -> Option<f64> {
        let def = &ctx.outcomes[outcome];
        match self.observed_by {
            None => def.first_failure(ctx.history, until),
            Some(p) => {
                let assessed = observed_first_failure(&ctx.assessments[p], until);
                let d = ctx.history.death_time;
                let at_death = (d <= until && !def.holds(ctx.history, d)).then_some(d);
                match (assessed, at_death) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// Appends this contract's payments for one patient to `out` (in time order, nothing
    /// after the horizon) and returns the other per-patient events.
    pub fn evaluate(&self, ctx: &ContractContext, out: &mut Vec<Payment>) -> ContractEvents {
        let h = ctx.history;
        let price = ctx.list_price;
        let cap = self.cap.map(|c| c * price);
        let mut net = 0.0;
        let mut scheduled_due = 0.0;
        let mut paid_by = PaidBy::ThisPayer;
        let mut end_time = 0.0;
        let first_out = out.len();
        let pay = |out: &mut Vec<Payment>, net: &mut f64, time: f64, amount: f64, by, kind| {
            let amount = match cap {
                Some(c) => amount.min(c - *net).max(0.0),
                None => amount,
            };
            if amount > 0.0 {
                out.push(Payment {
                    time,
                    amount,
                    paid_by: by,
                    kind,
                });
                *net += amount;
            }
        };
        let schedule = match self.schedule.last() {
            Some(last) if last.time > h.horizon => {
                &self.schedule[..self.schedule.partition_point(|i| i.time <= h.horizon)]
            }
            _ => &self.schedule[..],
        };
        for (k, inst) in schedule.iter().enumerate() {
            scheduled_due += inst.fraction * price;
            if self.stop_on_churn && paid_by == PaidBy::ThisPayer && ctx.churn_time <= inst.time {
                match self.on_churn {
                    OnChurn::Transfer => paid_by = PaidBy::NextPayer,
                    OnChurn::Forfeit => {
                        end_time = ctx.churn_time;
                        scheduled_due += rest_due(&schedule[k + 1..], price);
                        break;
                    }
                    OnChurn::Accelerate => {
                        let t = ctx.churn_time;
                        let b = self.balance(&schedule[k..], t) * price;
                        pay(
                            out,
                            &mut net,
                            t,
                            b,
                            PaidBy::ThisPayer,
                            PaymentKind::Accelerated,
                        );
                        end_time = t;
                        scheduled_due += rest_due(&schedule[k + 1..], price);
                        break;
                    }
                }
            }
            if self.stop_on_death && !h.alive_at(inst.time) {
                let t = h.death_time;
                if self.on_stop == OnStop::Accelerate {
                    let b = self.balance(&schedule[k..], t) * price;
                    pay(out, &mut net, t, b, paid_by, PaymentKind::Accelerated);
                }
                end_time = t;
                scheduled_due += rest_due(&schedule[k + 1..], price);
                break;
            }
            end_time = inst.time;
            if let Some(o) = inst.condition {
                if !self.status(ctx, o, inst.time) {
                    if self.after_failure == AfterFailure::Stop {
                        scheduled_due += rest_due(&schedule[k + 1..], price);
                        break;
                    }
                    continue;
                }
            }
            pay(
                out,
                &mut net,
                inst.time,
                inst.fraction * price,
                paid_by,
                PaymentKind::Scheduled,
            );
        }
        // Everything paid so far (`net` sums the payments made, in order).
        let paid_schedule = net;
        // Rounding (e.g. an accelerated balance summed differently from the instalments it
        // replaces) is not a withheld amount.
        let withheld = scheduled_due - paid_schedule;
        let mut events = ContractEvents {
            withheld: if withheld > 1e-9 * price.max(1.0) {
                withheld
            } else {
                0.0
            },
            refund_lost: 0.0,
        };

        if let Some(w) = &self.warranty {
            let until = w.window.min(h.horizon);
            let failure = self.first_failure(ctx, w.outcome, until);
            if let Some(t) = failure {
                let paid_before: f64 = out[first_out..]
                    .iter()
                    .filter(|p| p.time <= t && p.paid_by == PaidBy::ThisPayer)
                    .map(|p| p.amount)
                    .sum();
                let refund = w.refund_share(t) * paid_before;
                if refund > 0.0 {
                    if ctx.default_time <= t {
                        events.refund_lost = refund;
                    } else {
                        let i = out[first_out..].partition_point(|p| p.time <= t) + first_out;
                        out.insert(
                            i,
                            Payment {
                                time: t,
                                amount: -refund,
                                paid_by: PaidBy::ThisPayer,
                                kind: PaymentKind::Refund,
                            },
                        );
                        net -= refund;
                    }
                }
            }
        }

        if let Some(f) = self.floor {
            let need = f * price - net;
            if need > 1e-9 * price.max(1.0) {
                let t = out[first_out..]
                    .last()
                    .map_or(end_time, |p| p.time)
                    .max(end_time);
                out.push(Payment {
                    time: t,
                    amount: need,
                    paid_by,
                    kind: PaymentKind::TopUp,
                });
            }
        }
        events
    }
}

fn rest_due(rest: &[Installment], price: f64) -> f64 {
    rest.iter().map(|i| i.fraction * price).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ending, Segment};

    /// Responding (state 0) until `fail`, then failed (state 1) until `death`, then dead (2).
    fn history(fail: f64, death: f64) -> History {
        let mut segments = vec![Segment {
            state: 0,
            start: 0.0,
            end: fail.min(death).min(10.0),
        }];
        if fail < death && fail < 10.0 {
            segments.push(Segment {
                state: 1,
                start: fail,
                end: death.min(10.0),
            });
        }
        if death < 10.0 {
            segments.push(Segment {
                state: 2,
                start: death,
                end: 10.0,
            });
        }
        History {
            segments,
            death_time: death,
            ending: Ending::DiseaseDeath,
            horizon: 10.0,
        }
    }

    fn responding() -> Vec<OutcomeDef> {
        vec![OutcomeDef {
            name: "responding".into(),
            test: OutcomeTest::InState(vec![true, false, false]),
        }]
    }

    fn eval(c: &ContractTerms, h: &History, churn: f64) -> (Vec<Payment>, ContractEvents) {
        let outcomes = responding();
        let ctx = ContractContext {
            history: h,
            outcomes: &outcomes,
            assessments: &[],
            churn_time: churn,
            default_time: f64::INFINITY,
            list_price: 1000.0,
        };
        let mut out = Vec::new();
        let ev = c.evaluate(&ctx, &mut out);
        (out, ev)
    }

    fn total(p: &[Payment]) -> f64 {
        p.iter().map(|p| p.amount).sum()
    }

    #[test]
    fn installments_stop_at_death() {
        let c = ContractTerms::installments("i", 5, 1.0, 0.0, 0.0, true);
        let (out, ev) = eval(&c, &history(20.0, 2.5), f64::INFINITY);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| (p.amount - 200.0).abs() < 1e-9));
        assert!((ev.withheld - 400.0).abs() < 1e-9);
        // Dying exactly on a due date: that payment is not made.
        let (out, _) = eval(&c, &history(20.0, 2.0), f64::INFINITY);
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
        let a = 0.05 / (1.0 - 1.05f64.powi(-5));
        assert!((c.schedule[0].fraction - a).abs() < 1e-12);
    }

    #[test]
    fn outcome_based_stop_or_resume() {
        let mut c = ContractTerms::installments("i", 5, 1.0, 0.0, 0.0, true);
        for i in c.schedule.iter_mut().skip(1) {
            i.condition = Some(0);
        }
        // Fails at 2.5: pays at 0, 1, 2 then stops.
        let (out, ev) = eval(&c, &history(2.5, 20.0), f64::INFINITY);
        assert_eq!(total(&out), 600.0);
        assert_eq!(ev.withheld, 400.0);
        // Accelerate applies to death: dying at 2.5, the balance is due at once.
        c.on_stop = OnStop::Accelerate;
        let (out, _) = eval(&c, &history(20.0, 2.5), f64::INFINITY);
        assert!((total(&out) - 1000.0).abs() < 1e-9);
        assert_eq!(out.last().unwrap().kind, PaymentKind::Accelerated);
        assert_eq!(out.last().unwrap().time, 2.5);
    }

    #[test]
    fn churn_rules() {
        let mut c = ContractTerms::installments("i", 5, 1.0, 0.0, 0.0, true);
        c.stop_on_churn = true;
        let h = history(20.0, 20.0);
        let (out, _) = eval(&c, &h, 1.5);
        let mine: f64 = out
            .iter()
            .filter(|p| p.paid_by == PaidBy::ThisPayer)
            .map(|p| p.amount)
            .sum();
        assert_eq!((mine, total(&out)), (400.0, 1000.0));
        c.on_churn = OnChurn::Forfeit;
        let (out, ev) = eval(&c, &h, 1.5);
        assert_eq!((total(&out), ev.withheld), (400.0, 600.0));
        c.on_churn = OnChurn::Accelerate;
        let (out, _) = eval(&c, &h, 1.5);
        assert!((total(&out) - 1000.0).abs() < 1e-9);
        assert_eq!(out.last().unwrap().time, 1.5);
    }

    #[test]
    fn warranty_prorating_cap_and_floor() {
        let mut c = ContractTerms::upfront("w", 0.0);
        c.warranty = Some(Warranty {
            outcome: 0,
            window: 4.0,
            refund: 1.0,
            prorate: ProrateRule::Linear,
        });
        let (out, _) = eval(&c, &history(1.0, 20.0), f64::INFINITY);
        assert_eq!(total(&out), 1000.0 - 750.0);
        assert_eq!(out[1].kind, PaymentKind::Refund);
        // Failure after the window: no refund.
        let (out, _) = eval(&c, &history(4.5, 20.0), f64::INFINITY);
        assert_eq!(total(&out), 1000.0);
        // Stepped by year and a floor of 50%.
        c.warranty.as_mut().unwrap().prorate = ProrateRule::Stepped;
        c.floor = Some(0.5);
        let (out, _) = eval(&c, &history(0.5, 20.0), f64::INFINITY);
        assert_eq!(total(&out), 500.0);
        // Table.
        c.floor = None;
        c.warranty.as_mut().unwrap().prorate = ProrateRule::Table(vec![(1.0, 0.8), (3.0, 0.4)]);
        let (out, _) = eval(&c, &history(2.0, 20.0), f64::INFINITY);
        assert_eq!(total(&out), 600.0);
        // Cap: installments of 30% each, capped at 80% in total.
        let mut c = ContractTerms::installments("i", 4, 1.0, 0.0, 0.0, true);
        for i in c.schedule.iter_mut() {
            i.fraction = 0.3;
        }
        c.cap = Some(0.8);
        let (out, _) = eval(&c, &history(20.0, 20.0), f64::INFINITY);
        assert!((total(&out) - 800.0).abs() < 1e-9);
    }
}
