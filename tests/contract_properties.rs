//! Invariants of every contract, on random contracts and random patient histories.

mod common;

use obasim::contracts::{
    AfterFailure, Assessment, ContractContext, ContractTerms, Installment, OnChurn, OnStop,
    OutcomeDef, OutcomeTest, PaidBy, Payment, PaymentKind, PlanTerms, ProrateRule, Warranty,
};
use obasim::history::{Ending, History, Segment};
use obasim::scenario::MissedRule;
use proptest::prelude::*;

const PRICE: f64 = 1000.0;
const HORIZON: f64 = 12.0;

/// A history over states 0 (response), 1 (failed), 2 (dead) from a list of sojourn lengths
/// and next states.
fn history(start: usize, steps: &[(f64, usize)]) -> History {
    let mut segments = Vec::new();
    let (mut t, mut state) = (0.0, start);
    let mut death = f64::INFINITY;
    for &(len, next) in steps {
        if state == 2 || t + len >= HORIZON {
            break;
        }
        segments.push(Segment {
            state,
            start: t,
            end: t + len,
        });
        t += len;
        state = if next == state { (next + 1) % 3 } else { next };
        if state == 2 {
            death = t;
        }
    }
    segments.push(Segment {
        state,
        start: t,
        end: HORIZON,
    });
    History {
        segments,
        death_time: death,
        ending: Ending::DiseaseDeath,
        horizon: HORIZON,
    }
}

fn outcomes() -> Vec<OutcomeDef> {
    vec![OutcomeDef {
        name: "responding".into(),
        test: OutcomeTest::InState(vec![true, false, false]),
    }]
}

prop_compose! {
    fn arb_history()(start in 0usize..2, steps in prop::collection::vec((0.05f64..4.0, 0usize..3), 0..6)) -> History {
        history(start, &steps)
    }
}

prop_compose! {
    fn arb_contract()(
        raw_times in prop::collection::vec(0.0f64..HORIZON, 1..7),
        fractions in prop::collection::vec(0.0f64..0.5, 7),
        conditional in prop::collection::vec(any::<bool>(), 7),
        resume in any::<bool>(),
        accelerate in any::<bool>(),
        stop_death in any::<bool>(),
        stop_churn in any::<bool>(),
        churn_rule in 0usize..3,
        warranty in prop::option::of((0.5f64..8.0, 0.0f64..=1.0, 0usize..4)),
        cap in prop::option::of(0.1f64..1.5),
        floor in prop::option::of(0.0f64..0.3),
        interest in prop::sample::select(vec![0.0, 0.05]),
    ) -> ContractTerms {
        let mut times = raw_times;
        times.sort_by(f64::total_cmp);
        times.dedup();
        let schedule = times.iter().enumerate().map(|(i, &time)| Installment {
            time,
            fraction: fractions[i],
            condition: conditional[i].then_some(0),
        }).collect();
        let mut c = ContractTerms::with_schedule("c", "installments", schedule);
        c.interest = interest;
        c.after_failure = if resume { AfterFailure::Resume } else { AfterFailure::Stop };
        c.on_stop = if accelerate { OnStop::Accelerate } else { OnStop::Forfeit };
        c.stop_on_death = stop_death;
        c.stop_on_churn = stop_churn;
        c.on_churn = [OnChurn::Transfer, OnChurn::Forfeit, OnChurn::Accelerate][churn_rule];
        c.warranty = warranty.map(|(window, refund, kind)| Warranty {
            outcome: 0,
            window,
            refund,
            prorate: match kind {
                0 => ProrateRule::None,
                1 => ProrateRule::Linear,
                2 => ProrateRule::Stepped,
                _ => ProrateRule::Table(vec![(1.0, 1.0), (3.0, 0.5)]),
            },
        });
        c.cap = cap;
        c.floor = floor.filter(|f| cap.is_none_or(|c| *f <= c));
        c
    }
}

fn evaluate(
    c: &ContractTerms,
    h: &History,
    churn: f64,
    default: f64,
    assessments: &[Vec<Assessment>],
) -> Vec<Payment> {
    let outcomes = outcomes();
    let ctx = ContractContext {
        history: h,
        outcomes: &outcomes,
        assessments,
        churn_time: churn,
        default_time: default,
        list_price: PRICE,
    };
    let mut out = Vec::new();
    c.evaluate(&ctx, &mut out);
    out
}

fn net(p: &[Payment]) -> f64 {
    p.iter().map(|p| p.amount).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::proptest_cases(512), ..ProptestConfig::default() })]

    #[test]
    fn payments_are_non_negative_and_refunds_bounded(
        c in arb_contract(), h in arb_history(), churn in 0.0f64..20.0, default in 0.0f64..20.0,
    ) {
        let out = evaluate(&c, &h, churn, default, &[]);
        for (i, p) in out.iter().enumerate() {
            prop_assert!(p.time >= 0.0 && p.time <= HORIZON);
            if p.kind == PaymentKind::Refund {
                prop_assert!(p.amount < 0.0);
                let before: f64 = out[..i]
                    .iter()
                    .filter(|q| q.paid_by == PaidBy::ThisPayer && q.time <= p.time)
                    .map(|q| q.amount)
                    .sum();
                prop_assert!(-p.amount <= before + 1e-9, "refund {} > paid {}", -p.amount, before);
            } else {
                prop_assert!(p.amount > 0.0);
            }
        }
        prop_assert!(net(&out) >= -1e-9);
    }

    #[test]
    fn a_cap_is_never_exceeded(c in arb_contract(), h in arb_history(), churn in 0.0f64..20.0) {
        let out = evaluate(&c, &h, churn, f64::INFINITY, &[]);
        if let Some(cap) = c.cap {
            let paid: f64 = out.iter().filter(|p| p.kind != PaymentKind::Refund && p.kind != PaymentKind::TopUp).map(|p| p.amount).sum();
            prop_assert!(paid <= cap * PRICE + 1e-9, "paid {paid} > cap {}", cap * PRICE);
        }
        if let Some(floor) = c.floor {
            prop_assert!(net(&out) >= floor * PRICE - 1e-9);
        }
    }

    #[test]
    fn conditions_never_pay_more(c in arb_contract(), h in arb_history(), churn in 0.0f64..20.0) {
        let mut unconditional = c.clone();
        for i in unconditional.schedule.iter_mut() {
            i.condition = None;
        }
        let with = evaluate(&c, &h, churn, f64::INFINITY, &[]);
        let without = evaluate(&unconditional, &h, churn, f64::INFINITY, &[]);
        prop_assert!(net(&with) <= net(&without) + 1e-9, "{} > {}", net(&with), net(&without));
    }

    #[test]
    fn perfect_observation_reproduces_the_truth(c in arb_contract(), h in arb_history(), churn in 0.0f64..20.0, seed in any::<u64>()) {
        // Assessments at every due date, never wrong, never missed.
        let mut c = c;
        c.warranty = None;
        let plan = PlanTerms {
            name: "perfect".into(),
            outcome: 0,
            times: c.schedule.iter().map(|i| i.time).collect(),
            sensitivity: 1.0,
            specificity: 1.0,
            missed: 0.0,
            if_missed: MissedRule::CarryLast,
            cost_payer: 0.0,
            cost_manufacturer: 0.0,
            annual_cost_payer: 0.0,
            annual_cost_manufacturer: 0.0,
        };
        let mut rng = obasim::rng::stream(seed, 0, 0, 0);
        let mut assessed = Vec::new();
        plan.assess(&outcomes()[0], &h, &mut rng, &mut assessed);
        let truth = evaluate(&c, &h, churn, f64::INFINITY, &[]);
        let mut observed_terms = c.clone();
        observed_terms.observed_by = Some(0);
        let observed = evaluate(&observed_terms, &h, churn, f64::INFINITY, &[assessed]);
        prop_assert_eq!(truth, observed);
    }
}
