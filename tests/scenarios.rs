//! The shipped scenario library (`scenarios/*.toml`): every file validates and runs end to end
//! through the library with few patients, every result row is finite, and each real contract
//! behaves as its terms say (checks that hold patient by patient, or with a wide margin).

use obasim::contracts::{PaidBy, Payment, PaymentKind};
use obasim::engine::PatientRecord;
use obasim::model::build::load;
use obasim::model::Model;
use obasim::results::Results;
use obasim::scenario::Source;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Patients per test run (at least two cohorts' worth when the scenario has a `[cohort]`).
const PATIENTS: u64 = 2000;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn scenario_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn load_model(path: &Path) -> Model {
    let source = Source::from_file(path).expect("readable scenario");
    match load(&source) {
        Ok((_, m)) => m,
        Err(e) => panic!("{} does not validate:\n{e}", path.display()),
    }
}

/// Runs a scenario with few patients on two threads.
fn run_small(path: &Path) -> (Model, Results) {
    let mut model = load_model(path);
    let mut n = PATIENTS;
    if let Some(c) = model.cohort.as_mut() {
        n = n.max(2 * c.size());
        // The number of simulated cohorts is fixed when the scenario is compiled (from its own
        // `patients`); with fewer patients only n / size whole cohorts exist.
        c.replicates = c.replicates.min(n / c.size()).max(1);
    }
    model.sim.patients = n;
    let results = obasim::simulate(&model, Some(2), &|_| {}, &AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("{} does not run: {e:?}", path.display()))
        .0;
    (model, results)
}

fn scenario(name: &str) -> (Model, Results) {
    run_small(&scenarios_dir().join(name))
}

fn mean(r: &Results, arm: &str, contract: &str, metric: &str) -> f64 {
    r.summary_row(arm, contract, metric)
        .unwrap_or_else(|| panic!("no summary row {arm}/{contract}/{metric}"))
        .mean
}

fn row<'a>(
    r: &'a Results,
    arm: &str,
    contract: &str,
    metric: &str,
) -> &'a obasim::results::SummaryRow {
    r.summary_row(arm, contract, metric)
        .unwrap_or_else(|| panic!("no summary row {arm}/{contract}/{metric}"))
}

const EPS: f64 = 1e-9;

/// Patients whose payments are checked one by one against a contract's terms.
const CHECKED: u64 = 400;

/// Calls `check(state name at t, alive at t, payments)` for the first `CHECKED` patients of
/// `contract`, with the therapy arm's state names looked up by time.
fn each_patient(
    model: &Model,
    contract: &str,
    mut check: impl FnMut(&dyn Fn(f64) -> String, &dyn Fn(f64) -> bool, &[Payment]),
) {
    let c = model
        .contracts
        .iter()
        .position(|x| x.name == contract)
        .unwrap_or_else(|| panic!("no contract {contract}"));
    let arm = &model.arms[model.therapy.arm];
    let mut rec = PatientRecord::new(model);
    for i in 0..CHECKED {
        rec.simulate(model, 0, i);
        let h = &rec.histories[model.therapy.arm];
        let state = |t: f64| arm.states[h.state_at(t)].name.clone();
        let alive = |t: f64| h.alive_at(t);
        check(&state, &alive, &rec.payments[c]);
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn every_scenario_validates_runs_and_gives_finite_results() {
    let files = scenario_files();
    assert!(
        files.len() >= 9,
        "the library has the example and eight real contracts"
    );
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let default_patients = load_model(path).sim.patients;
        assert!(
            (50_000..=200_000).contains(&default_patients),
            "{name}: default patients {default_patients} should keep a run to a few seconds"
        );
        let (model, r) = run_small(path);
        assert!(!model.contracts.is_empty(), "{name}: no contracts");
        assert!(
            model.contracts.iter().any(|c| c.kind == "upfront"),
            "{name}: every scenario compares with upfront payment"
        );
        assert!(model.arms.len() >= 2, "{name}: needs a comparator arm");
        for s in &r.summary {
            for v in [s.mean, s.mcse, s.sd, s.p025, s.p50, s.p975] {
                assert!(v.is_finite(), "{name}: summary {s:?}");
            }
        }
        for s in &r.incremental {
            assert!(
                s.value.is_finite() && s.mcse.is_finite(),
                "{name}: incremental {s:?}"
            );
        }
        for s in &r.cashflow {
            for v in [
                s.payments,
                s.payments_discounted,
                s.other_costs,
                s.other_costs_discounted,
                s.admin_costs,
                s.admin_costs_discounted,
            ] {
                assert!(v.is_finite(), "{name}: cashflow {s:?}");
            }
        }
        for s in &r.occupancy {
            assert!(
                s.share.is_finite() && s.mcse.is_finite(),
                "{name}: occupancy {s:?}"
            );
        }
        for s in &r.quantiles {
            assert!(s.value.is_finite(), "{name}: quantiles {s:?}");
        }
        for s in &r.budget {
            for v in [
                s.mean,
                s.sd,
                s.p025,
                s.p50,
                s.p975,
                s.cap_rebate,
                s.other_costs,
                s.total,
            ] {
                assert!(v.is_finite(), "{name}: budget {s:?}");
            }
        }
        for s in &r.risk {
            assert!(s.value.is_finite(), "{name}: risk {s:?}");
        }
        // Whatever the contract, the payer never pays more than the list price in total,
        // unless it charges interest on the deferred balance.
        for c in model.contracts.iter().filter(|c| c.interest == 0.0) {
            let share = row(
                &r,
                &model.arms[model.therapy.arm].name,
                &c.name,
                "share_of_price_paid",
            );
            assert!(share.p975 <= 1.0 + EPS, "{name}/{}: {share:?}", c.name);
            assert!(share.p025 >= -EPS, "{name}/{}: {share:?}", c.name);
        }
        assert_eq!(
            model.cohort.is_some(),
            !r.budget.is_empty(),
            "{name}: budget.csv exactly when there is a [cohort]"
        );
    }
}

#[test]
fn readme_documents_every_scenario() {
    let readme = std::fs::read_to_string(scenarios_dir().join("README.md")).expect("README");
    for path in scenario_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            readme.contains(&name),
            "scenarios/README.md does not mention {name}"
        );
    }
}

#[test]
fn zynteglo_germany_pays_a_fifth_then_only_while_transfusion_independent() {
    let (model, r) = scenario("zynteglo-germany.toml");
    let arm = "beti-cel";
    let aok = "AOK outcome-based installments";
    let share = row(&r, arm, aok, "share_of_price_paid");
    // 20% at infusion always; at most 100%; some installments withheld.
    assert!(share.p025 >= 0.2 - EPS, "{share:?}");
    assert!(mean(&r, arm, aok, "any_withheld") > 0.05);
    // Conditioning on TI never pays more than the same schedule without the condition.
    assert!(share.mean <= mean(&r, arm, "plain installments", "share_of_price_paid") + EPS);
    // Missing reports withhold payments: less is paid; reports cost the payer.
    assert!(
        mean(&r, arm, "AOK installments, annual reports", "drug_paid")
            < mean(&r, arm, aok, "drug_paid")
    );
    assert!(
        mean(
            &r,
            arm,
            "AOK installments, annual reports",
            "admin_cost_payer"
        ) > 0.0
    );
    // The US-style warranty refunds 80% of the price when it refunds at all.
    let refund = row(&r, arm, "US-style 80% refund", "refund");
    assert!(refund.p975 <= 0.8 * 1_575_000.0 + 1e-6);
    assert!(mean(&r, arm, "US-style 80% refund", "any_refund") > 0.0);
    // The cohort: upfront spend is deterministic and the EUR 15 M cap binds in the years
    // with 10 patients (years 3 and 4).
    let b = |c: &str, y: usize| {
        r.budget
            .iter()
            .find(|b| b.contract == c && b.year == y && b.arm == arm)
            .unwrap_or_else(|| panic!("no budget row {c} {y}"))
    };
    assert!((b("upfront", 1).mean - 4.0 * 1_575_000.0).abs() < 1e-6);
    assert!((b("upfront", 3).mean - 15_000_000.0).abs() < 1e-6);
    assert!((b("upfront", 3).cap_rebate - 750_000.0).abs() < 1e-6);
    assert!((b(aok, 1).mean - 4.0 * 0.2 * 1_575_000.0).abs() < 1e-6);
    // Patient by patient: 20% at infusion, then 20% at years 1-4 while alive and
    // transfusion-independent, stopping for good at the first failure.
    each_patient(&model, aok, |state, alive, pays| {
        let ti = |t: f64| alive(t) && state(t) == "transfusion_independent";
        let mut due = vec![0.0];
        due.extend((1..5).map(f64::from).take_while(|&t| ti(t)));
        let times: Vec<f64> = pays.iter().map(|p| p.time).collect();
        assert_eq!(times, due);
        assert!(pays.iter().all(|p| close(p.amount, 0.2 * 1_575_000.0)));
    });
}

#[test]
fn kymriah_spain_pays_52_percent_then_48_percent_on_complete_response() {
    let (model, r) = scenario("kymriah-spain.toml");
    let arm = "tisa-cel";
    let spain = "Spain 52/48, CR at 18 months";
    let share = row(&r, arm, spain, "share_of_price_paid");
    assert!(share.p025 >= 0.52 - EPS, "52% is always paid: {share:?}");
    // P(first remission at 18 months) = 0.477 in the fitted model: 0.52 + 0.48 * 0.477.
    assert!((share.mean - 0.749).abs() < 0.05, "{share:?}");
    // Looser conditions pay at least as much, patient by patient.
    let any = mean(
        &r,
        arm,
        "Spain 52/48, any remission at 18 months",
        "drug_paid",
    );
    let alive = mean(&r, arm, "Spain 52/48, alive at 18 months", "drug_paid");
    let cr = mean(&r, arm, spain, "drug_paid");
    assert!(cr <= any + EPS && any <= alive + EPS, "{cr} {any} {alive}");
    // The fitted survival: 3-year OS 63%, EFS 44% (wide margins at 2,000 patients).
    let occ = |state: &str, t: f64| {
        r.occupancy
            .iter()
            .find(|o| o.arm == arm && o.state == state && (o.time - t).abs() < 1e-6)
            .unwrap_or_else(|| panic!("no occupancy {state} {t}"))
            .share
    };
    assert!((1.0 - occ("dead", 3.0) - 0.63).abs() < 0.05);
    assert!((occ("remission", 3.0) - 0.44).abs() < 0.05);
    // Patient by patient: 52% at infusion; 48% at 18 months exactly when in first remission.
    each_patient(&model, spain, |state, alive, pays| {
        assert!(close(pays[0].amount, 0.52 * 320_000.0) && pays[0].time == 0.0);
        let cr = alive(1.5) && state(1.5) == "remission";
        assert_eq!(pays.len(), if cr { 2 } else { 1 });
        if cr {
            assert!(close(pays[1].amount, 0.48 * 320_000.0) && close(pays[1].time, 1.5));
        }
    });
}

#[test]
fn kymriah_italy_pays_a_third_at_infusion_and_the_rest_at_result() {
    let (_, r) = scenario("kymriah-italy.toml");
    let arm = "tisa-cel";
    let thirds = "Italy thirds (0, 6, 12 months)";
    let share = row(&r, arm, thirds, "share_of_price_paid");
    assert!(share.p025 >= 1.0 / 3.0 - 1e-6, "{share:?}");
    assert!((share.mean - 0.713).abs() < 0.05, "{share:?}");
    // 50/25/25 pays at least the thirds for every patient: 1/6 - (a + b)/12 >= 0.
    assert!(mean(&r, arm, "Italy 50/25/25", "drug_paid") >= mean(&r, arm, thirds, "drug_paid"));
}

#[test]
fn yescarta_italy_pays_nothing_at_infusion_and_thirds_while_responding() {
    let (model, r) = scenario("yescarta-italy.toml");
    let arm = "axi-cel";
    let italy = "Italy thirds at days 180/270/365";
    let share = row(&r, arm, italy, "share_of_price_paid");
    // Non-responders (17%) pay nothing at all.
    assert!(share.p025.abs() < EPS, "{share:?}");
    assert!(share.p975 <= 1.0 + 1e-6);
    assert!(mean(&r, arm, italy, "any_withheld") > 0.5);
    // P(responding) at days 180/270/365 = 0.459/0.399/0.364 in the fitted model.
    assert!((share.mean - 0.407).abs() < 0.05, "{share:?}");
    // Resuming after salvage (a looser condition, later payments not stopped) pays more.
    assert!(
        mean(&r, arm, "Italy thirds, resume after salvage", "drug_paid")
            >= mean(&r, arm, italy, "drug_paid")
    );
    // Spain's terms pay 52% at infusion.
    assert!(
        row(
            &r,
            arm,
            "Spain 52/48, alive at 18 months",
            "share_of_price_paid"
        )
        .p025
            >= 0.52 - EPS
    );
    // Patient by patient: nothing at infusion; a third at each of days 180, 270 and 365 only
    // while responding; nothing after the first missed payment.
    let days = [180.0 / 365.25, 270.0 / 365.25, 365.0 / 365.25];
    let third = 327_000.0 / 3.0;
    each_patient(&model, italy, |state, alive, pays| {
        let responding = |t: f64| {
            alive(t) && matches!(state(t).as_str(), "complete_response" | "partial_response")
        };
        let due: Vec<f64> = days
            .iter()
            .copied()
            .take_while(|&t| responding(t))
            .collect();
        assert_eq!(pays.len(), due.len(), "{pays:?}");
        for (p, t) in pays.iter().zip(due) {
            assert!(
                (p.time - t).abs() < 1e-6 && (p.amount - third).abs() < 1.0,
                "{p:?}"
            );
            assert_eq!(p.kind, PaymentKind::Scheduled);
        }
    });
}

#[test]
fn zolgensma_installments_under_churn_rules() {
    let (model, r) = scenario("zolgensma-us-installments.toml");
    let arm = "onasemnogene";
    let transfer = "installments, next payer takes over";
    let forfeit = "installments, balance forfeited on leaving";
    let accelerate = "installments, balance due on leaving";
    let keep = "installments, this payer keeps paying";
    assert!(mean(&r, arm, transfer, "paid_by_next_payer") > 0.0);
    for c in [forfeit, accelerate, keep, "upfront"] {
        assert_eq!(mean(&r, arm, c, "paid_by_next_payer"), 0.0, "{c}");
    }
    // The manufacturer is paid the same whichever payer pays.
    let (a, b) = (
        mean(&r, arm, transfer, "manufacturer_npv"),
        mean(&r, arm, keep, "manufacturer_npv"),
    );
    assert!((a - b).abs() <= 1e-9 * a.abs(), "{a} vs {b}");
    // This payer pays least when the balance moves on or is forfeited, most when it keeps
    // paying or the balance falls due.
    let paid = |c| mean(&r, arm, c, "drug_paid");
    assert!((paid(transfer) - paid(forfeit)).abs() < 1e-6);
    assert!(paid(forfeit) < paid(keep) && paid(keep) <= paid(accelerate) + 1e-6);
    assert!(paid(accelerate) <= paid("upfront"));
    assert!(
        mean(&r, arm, forfeit, "share_of_price_paid")
            < mean(&r, arm, transfer, "share_of_price_paid")
    );
    // Patient by patient: USD 425,000 a year at 0-4 years while alive, whoever pays.
    each_patient(&model, transfer, |_, alive, pays| {
        let due: Vec<f64> = (0..5).map(f64::from).take_while(|&t| alive(t)).collect();
        let times: Vec<f64> = pays.iter().map(|p| p.time).collect();
        assert_eq!(times, due);
        assert!(pays.iter().all(|p| close(p.amount, 425_000.0)));
        // Once the next payer takes over it pays the rest.
        if let Some(k) = pays.iter().position(|p| p.paid_by == PaidBy::NextPayer) {
            assert!(pays[k..].iter().all(|p| p.paid_by == PaidBy::NextPayer));
        }
    });
}

#[test]
fn roctavian_warranty_refunds_and_missing_assessments() {
    let (model, r) = scenario("roctavian-us-warranty.toml");
    let arm = "valoctocogene";
    let perfect = "warranty, perfect observation";
    // P(refund) = 0.03 + 0.97 P(loss within 4 years) = 0.11 (wide margin).
    let p = mean(&r, arm, perfect, "any_refund");
    assert!(p > 0.05 && p < 0.17, "{p}");
    // Refunds never exceed the price; linear prorating.
    assert!(row(&r, arm, perfect, "refund").p975 <= 2_900_000.0 + 1e-6);
    // Missing assessments that count as failures trigger many more refunds than missing
    // assessments that keep the last result.
    assert!(
        mean(&r, arm, "warranty, 20% missed count as failure", "refund")
            > mean(&r, arm, "warranty, 20% missed, carry last", "refund")
    );
    // Assessments cost both sides; the manufacturer may default before refunding.
    assert!(mean(&r, arm, "warranty, FVIII assessments", "admin_cost_payer") > 0.0);
    assert!(
        mean(
            &r,
            arm,
            "warranty, FVIII assessments",
            "admin_cost_manufacturer"
        ) > 0.0
    );
    assert!(
        mean(
            &r,
            arm,
            "warranty, 20% missed count as failure",
            "refund_lost"
        ) > 0.0
    );
    assert_eq!(mean(&r, arm, "upfront", "refund_lost"), 0.0);
    // Patient by patient (perfect observation): the price at 0, and a refund of
    // (1 - t/4) x price at the first failure t < 4 (non-responders: t = 0, the whole price).
    each_patient(&model, perfect, |state, alive, pays| {
        assert!(close(pays[0].amount, 2_900_000.0) && pays[0].time == 0.0);
        for p in &pays[1..] {
            assert_eq!(p.kind, PaymentKind::Refund);
            assert!(
                p.time < 4.0 && alive(p.time),
                "a refund is never for a death: {p:?}"
            );
            assert!(state(p.time) != "responding", "{p:?}");
            assert!(
                close(-p.amount, 2_900_000.0 * (1.0 - p.time / 4.0)),
                "{p:?}"
            );
        }
        if state(0.0) == "non_response" {
            assert!(pays.len() == 2 && close(pays[1].amount, -2_900_000.0));
        }
    });
}

#[test]
fn hemgenix_pays_only_while_off_prophylaxis() {
    let (model, r) = scenario("hemgenix-denmark.toml");
    let arm = "etranacogene";
    let amgros = "Amgros pay while it works, 8 years";
    let share = row(&r, arm, amgros, "share_of_price_paid");
    assert!(share.p025 >= 1.0 / 8.0 - 1e-6, "{share:?}");
    assert!((share.mean - 0.94).abs() < 0.04, "{share:?}");
    assert!(
        mean(&r, arm, amgros, "drug_paid") <= mean(&r, arm, "plain 8 installments", "drug_paid")
    );
    // The cohort: 3 patients treated in year 1 pay 3 x DKK 21.5 M upfront.
    let b1 = r
        .budget
        .iter()
        .find(|b| b.contract == "upfront" && b.year == 1 && b.arm == arm)
        .expect("budget row");
    assert!((b1.mean - 3.0 * 21_500_000.0).abs() < 1e-3);
    // Patient by patient: 1/8 at infusion, then 1/8 a year while off prophylaxis.
    each_patient(&model, amgros, |state, alive, pays| {
        let off = |t: f64| alive(t) && state(t) == "off_prophylaxis";
        let mut due = vec![0.0];
        due.extend((1..8).map(f64::from).take_while(|&t| off(t)));
        let times: Vec<f64> = pays.iter().map(|p| p.time).collect();
        assert_eq!(times, due);
        assert!(pays.iter().all(|p| close(p.amount, 21_500_000.0 / 8.0)));
    });
}

#[test]
fn luxturna_rebates_only_on_the_two_tests() {
    let (model, r) = scenario("luxturna-rebate.toml");
    let arm = "voretigene";
    for c in ["Harvard Pilgrim rebate", "rebate, exact tests"] {
        let refund = row(&r, arm, c, "refund");
        // At most the 50% rebate of the 90-day test.
        assert!(refund.p975 <= 0.5 * 850_000.0 + 1e-6, "{c}: {refund:?}");
        let p = mean(&r, arm, c, "any_refund");
        assert!(p > 0.08 && p < 0.32, "{c}: {p}");
    }
    // Each test costs the payer.
    assert!(mean(&r, arm, "Harvard Pilgrim rebate", "admin_cost_payer") > 0.0);
    // Pay at result on the same tests: at least 50%.
    assert!(row(&r, arm, "pay at result 50/25/25", "share_of_price_paid").p025 >= 0.5 - EPS);
    // Patient by patient: a rebate only on a test date: 50% at 90 days, 25% at 30 months;
    // with exact tests, exactly when the threshold is missed then.
    each_patient(&model, "rebate, exact tests", |state, alive, pays| {
        let fails = |t: f64| alive(t) && state(t) != "improved";
        let expect = if fails(0.2464) {
            Some((0.2464, 0.5))
        } else if fails(2.5) {
            Some((2.5, 0.25))
        } else {
            None
        };
        match expect {
            None => assert_eq!(pays.len(), 1, "{pays:?}"),
            Some((t, share)) => {
                assert_eq!(pays.len(), 2, "{pays:?}");
                assert!(close(pays[1].time, t) && close(-pays[1].amount, share * 850_000.0));
            }
        }
    });
}
