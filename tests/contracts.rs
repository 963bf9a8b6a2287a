//! Every contract term against an expectation computed independently (closed form or
//! quadrature), within 4 Monte Carlo standard errors at a fixed seed.
//!
//! The test model: a share `p` responds at treatment; response is lost at rate μ (to
//! "failed", which may return to "response" at rate ρ); background mortality is a flat life
//! table at rate λ in every state. So P(alive at t) = e^{-λt} and, with ρ = 0,
//! P(responding at t) = p e^{-(μ+λ)t}.

mod common;
use common::*;
use obasim::results::Results;

const P: f64 = 0.8;
const MU: f64 = 0.15;
const LAMBDA: f64 = 0.05;
const PRICE: f64 = 1_000_000.0;
const R: f64 = 0.03;
const RM: f64 = 0.08;

fn scenario(rho: f64, extra: &str, contracts: &str) -> String {
    let back = if rho > 0.0 {
        format!(
            "[[arms.transitions]]\nfrom = \"failed\"\nto = \"response\"\ntime = {{ family = \"exponential\", rate = {rho} }}\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"{}
[population]
age = 30.0
share_female = 0.5
max_age = 150.0
life_table = {{ file = "lt.csv", measure = "rate" }}

[therapy]
arm = "t"
list_price = {PRICE}
cost_of_goods = 200000.0

[[arms]]
name = "t"
death_state = "dead"
[[arms.states]]
name = "response"
initial = {P}
cost = 1000.0
utility = 0.9
[[arms.states]]
name = "failed"
initial = {}
cost = 30000.0
utility = 0.6
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "response"
to = "failed"
time = {{ family = "exponential", rate = {MU} }}
{back}
[[outcomes]]
name = "responding"
kind = "in_state"
states = ["response"]

{extra}
{contracts}
"#,
        header(60_000, 2024, 40.0, (R, R, RM)),
        1.0 - P
    )
}

fn run_text(text: &str) -> Results {
    let (_d, path) = write_scenario(text, &flat_life_table(LAMBDA));
    let model = model_of(&path);
    run(&model, 2)
}

fn metric(r: &Results, contract: &str, m: &str) -> (f64, f64) {
    let row = r
        .summary_row("t", contract, m)
        .unwrap_or_else(|| panic!("no {contract}/{m}"));
    (row.mean, row.mcse)
}

fn d(t: f64) -> f64 {
    (1.0 + R).powf(-t)
}

/// P(still responding at t), no return.
fn resp(t: f64) -> f64 {
    P * (-(MU + LAMBDA) * t).exp()
}

fn alive(t: f64) -> f64 {
    (-LAMBDA * t).exp()
}

#[test]
fn outcome_based_installments_stop_for_good() {
    // Zynteglo-like: 20% at infusion, then four annual 20% while responding.
    let r = run_text(&scenario(
        0.0,
        "",
        r#"[[contracts]]
name = "obi"
type = "installments"
payments = 5
interval = 1.0
condition = "responding"
condition_from = 1.0
"#,
    ));
    let truth: f64 = 0.2 * PRICE
        + (1..5)
            .map(|k| 0.2 * PRICE * resp(k as f64) * d(k as f64))
            .sum::<f64>();
    let (m, se) = metric(&r, "obi", "drug_paid");
    assert_within("obi paid", m, se, truth, 4.0);
    let withheld: f64 = (1..5).map(|k| 0.2 * PRICE * (1.0 - resp(k as f64))).sum();
    let (m, se) = metric(&r, "obi", "withheld");
    assert_within("obi withheld", m, se, withheld, 4.0);
    // Something is withheld unless the patient responds (and lives) through the last date.
    let (m, se) = metric(&r, "obi", "any_withheld");
    assert_within("P(withheld)", m, se, 1.0 - resp(4.0), 4.0);
}

#[test]
fn outcome_based_installments_resume() {
    // With recovery at rate ρ and resume, a payment at t is made iff responding at t:
    // P_R(t) = [ρ/(μ+ρ) + (p − ρ/(μ+ρ)) e^{-(μ+ρ)t}] e^{-λt}.
    let rho = 0.4;
    let r = run_text(&scenario(
        rho,
        "",
        r#"[[contracts]]
name = "resume"
type = "installments"
times = [0.5, 1.5, 2.5, 3.5]
condition = "responding"
after_failure = "resume"
"#,
    ));
    let s = MU + rho;
    let pr = |t: f64| (rho / s + (P - rho / s) * (-s * t).exp()) * alive(t);
    let truth: f64 = [0.5, 1.5, 2.5, 3.5]
        .iter()
        .map(|&t| 0.25 * PRICE * pr(t) * d(t))
        .sum();
    let (m, se) = metric(&r, "resume", "drug_paid");
    assert_within("resume paid", m, se, truth, 4.0);
}

#[test]
fn milestones_payment_at_result() {
    // Kymriah Spain: 52% at infusion, 48% at 18 months if responding.
    let r = run_text(&scenario(
        0.0,
        "",
        r#"[[contracts]]
name = "spain"
type = "milestones"
milestones = [ { at = 0.0, share = 0.52 }, { at = 1.5, share = 0.48, condition = "responding" } ]
"#,
    ));
    let truth = 0.52 * PRICE + 0.48 * PRICE * resp(1.5) * d(1.5);
    let (m, se) = metric(&r, "spain", "drug_paid");
    assert_within("milestones", m, se, truth, 4.0);
    let (m, se) = metric(&r, "spain", "share_of_price_paid");
    assert_within("share", m, se, 0.52 + 0.48 * resp(1.5), 4.0);
    // The manufacturer discounts at its own rate and bears the cost of goods.
    let npv = 0.52 * PRICE + 0.48 * PRICE * resp(1.5) * (1.0 + RM).powf(-1.5) - 200_000.0;
    let (m, se) = metric(&r, "spain", "manufacturer_npv");
    assert_within("npv", m, se, npv, 4.0);
}

#[test]
fn warranty_prorated_with_counterparty_risk() {
    // Upfront; refund × (1 − t/W) if response fails (or the patient dies) by W = 4.
    // Non-responders fail at 0 (full refund). The manufacturer defaults at 10% a year:
    // refunds after its default are lost.
    let w = 4.0;
    let h_def = -(0.9f64).ln();
    let r = run_text(&scenario(
        0.0,
        "[manufacturer]\nannual_default_probability = 0.1\n",
        r#"[[contracts]]
name = "warranty"
type = "warranty"
warranty = { outcome = "responding", window = 4.0, refund = 1.0, prorate = "linear" }
"#,
    ));
    let k = MU + LAMBDA;
    let f = |t: f64| P * k * (-k * t).exp();
    let refund_received = (1.0 - P) * PRICE
        + simpson(
            |t| PRICE * (1.0 - t / w) * f(t) * (-h_def * t).exp(),
            0.0,
            w,
            4000,
        );
    let refund_lost = simpson(
        |t| PRICE * (1.0 - t / w) * f(t) * (1.0 - (-h_def * t).exp()),
        0.0,
        w,
        4000,
    );
    let (m, se) = metric(&r, "warranty", "refund");
    assert_within("refund", m, se, refund_received, 4.0);
    let (m, se) = metric(&r, "warranty", "refund_lost");
    assert_within("refund lost", m, se, refund_lost, 4.0);
    let (m, se) = metric(&r, "warranty", "any_refund");
    // A refund at the very end of the window is 0: P(any) = (1−p) + p(1 − e^{-kW}) minus
    // the (measure-zero) edge, all received or lost.
    let p_fail = (1.0 - P) + P * (1.0 - (-k * w).exp());
    let p_lost = simpson(|t| f(t) * (1.0 - (-h_def * t).exp()), 0.0, w, 4000);
    assert_within("P(refund)", m, se, p_fail - p_lost, 4.0);
    let pv = PRICE
        - (1.0 - P) * PRICE
        - simpson(
            |t| PRICE * (1.0 - t / w) * f(t) * (-h_def * t).exp() * d(t),
            0.0,
            w,
            4000,
        );
    let (m, se) = metric(&r, "warranty", "drug_paid");
    assert_within("net paid PV", m, se, pv, 4.0);
}

#[test]
fn warranty_stepped_and_table_with_floor() {
    let w = 3.0;
    let r = run_text(&scenario(
        0.0,
        "",
        r#"[[contracts]]
name = "stepped"
type = "warranty"
warranty = { outcome = "responding", window = 3.0, refund = 0.8, prorate = "stepped" }

[[contracts]]
name = "table"
type = "warranty"
warranty = { outcome = "responding", window = 3.0, refund = 1.0, prorate = "table", table = [[1.0, 1.0], [2.0, 0.5], [3.0, 0.25]] }

[[contracts]]
name = "floored"
type = "warranty"
floor = 0.4
warranty = { outcome = "responding", window = 3.0, refund = 1.0 }
"#,
    ));
    let k = MU + LAMBDA;
    // P(first failure in [a, b)) for responders, plus non-responders at 0.
    let fail_in = |a: f64, b: f64| P * ((-k * a).exp() - (-k * b).exp());
    let stepped = PRICE
        * 0.8
        * ((1.0 - P)
            + fail_in(0.0, 1.0)
            + fail_in(1.0, 2.0) * (1.0 - 1.0 / w)
            + fail_in(2.0, 3.0) * (1.0 - 2.0 / w));
    let (m, se) = metric(&r, "stepped", "refund");
    assert_within("stepped", m, se, stepped, 4.0);
    let table = PRICE
        * ((1.0 - P) + fail_in(0.0, 1.0) + 0.5 * fail_in(1.0, 2.0) + 0.25 * fail_in(2.0, 3.0));
    let (m, se) = metric(&r, "table", "refund");
    assert_within("table", m, se, table, 4.0);
    // Full refund on failure, but at least 40% is paid: net = price (no failure) or 0.4 price.
    let p_fail = (1.0 - P) + fail_in(0.0, w);
    let (m, se) = metric(&r, "floored", "share_of_price_paid");
    assert_within("floor", m, se, (1.0 - p_fail) + 0.4 * p_fail, 4.0);
    let row = r
        .summary_row("t", "floored", "share_of_price_paid")
        .unwrap();
    assert!(row.p025 >= 0.4 - 1e-12, "the floor is never undercut");
}

#[test]
fn imperfect_observation_missed_assessments_and_costs() {
    // Outcome-based installments judged by annual assessments with sensitivity a, specificity
    // b and missed assessments m. With `carry_last`, a missed assessment keeps the last
    // (holding) status. P(paid at t_k) = P(alive) · E[Π_{j<=k} q(truth_j)],
    // q(holds) = m + (1−m)·sens, q(fails) = m + (1−m)(1 − spec).
    let (sens, spec, miss) = (0.9, 0.8, 0.2);
    let plan = format!(
        r#"[[observations]]
name = "annual"
outcome = "responding"
every = 1.0
until = 4.0
sensitivity = {sens}
specificity = {spec}
missed = {miss}
if_missed = "carry_last"
cost_payer = 500.0
annual_cost_payer = 100.0
cost_manufacturer = 200.0
"#
    );
    let contracts = r#"[[contracts]]
name = "observed"
type = "installments"
times = [1.0, 2.0, 3.0, 4.0]
condition = "responding"
observed_by = "annual"

[[contracts]]
name = "withhold"
type = "installments"
times = [1.0, 2.0, 3.0, 4.0]
condition = "responding"
observed_by = "annual_w"
"#;
    let plan_w = plan
        .replace("name = \"annual\"", "name = \"annual_w\"")
        .replace("carry_last", "withhold");
    let r = run_text(&scenario(0.0, &format!("{plan}\n{plan_w}"), contracts));
    let k = MU + LAMBDA;
    let expect = |q1: f64, q0: f64| -> f64 {
        (1..=4)
            .map(|kk| {
                let tk = kk as f64;
                // T = time response is lost (0 for non-responders); death independent.
                // Conditional on T in (t_i, t_{i+1}] (t_0 = 0): truths 1..i hold, i+1..k fail.
                let mut e = (1.0 - P) * q0.powi(kk);
                for i in 0..kk {
                    let lo = i as f64;
                    let hi = lo + 1.0;
                    let p_t = P * ((-MU * lo).exp() - (-MU * hi).exp());
                    e += p_t * q1.powi(i) * q0.powi(kk - i);
                }
                e += P * (-MU * tk).exp() * q1.powi(kk);
                let _ = k;
                0.25 * PRICE * alive(tk) * e * d(tk)
            })
            .sum()
    };
    let q1 = miss + (1.0 - miss) * sens;
    let q0 = miss + (1.0 - miss) * (1.0 - spec);
    let (m, se) = metric(&r, "observed", "drug_paid");
    assert_within("observed paid", m, se, expect(q1, q0), 4.0);
    let (m, se) = metric(&r, "withhold", "drug_paid");
    assert_within(
        "withhold paid",
        m,
        se,
        expect((1.0 - miss) * sens, (1.0 - miss) * (1.0 - spec)),
        4.0,
    );
    // Assessment costs: each assessment at t = 1..4 done if alive and not missed; annual
    // cost over follow-up to min(death, 4).
    let admin_payer: f64 = (1..=4)
        .map(|j| 500.0 * (1.0 - miss) * alive(j as f64) * d(j as f64))
        .sum::<f64>()
        + 100.0 * simpson(|t| alive(t) * d(t), 0.0, 4.0, 2000);
    let (m, se) = metric(&r, "observed", "admin_cost_payer");
    assert_within("admin payer", m, se, admin_payer, 4.0);
    let admin_mfr: f64 = (1..=4)
        .map(|j| 200.0 * (1.0 - miss) * alive(j as f64) * (1.0 + RM).powf(-(j as f64)))
        .sum();
    let (m, se) = metric(&r, "observed", "admin_cost_manufacturer");
    assert_within("admin manufacturer", m, se, admin_mfr, 4.0);
}

#[test]
fn churn_transfer_forfeit_and_payer_perspective_costs() {
    // The patient leaves the payer at 20% a year (hazard c). Installments stop for this
    // payer at churn; `transfer` hands them to the next payer.
    let c = -(0.8f64).ln();
    let contracts = r#"[[contracts]]
name = "transfer"
type = "installments"
payments = 5
interval = 1.0
stop_on = ["death", "churn"]
on_churn = "transfer"

[[contracts]]
name = "forfeit"
type = "installments"
payments = 5
interval = 1.0
stop_on = ["death", "churn"]
on_churn = "forfeit"

[[contracts]]
name = "upfront"
type = "upfront"
"#;
    let r = run_text(&scenario(
        0.0,
        "[payer]\nchurn = { annual_probability = 0.2 }\n",
        contracts,
    ));
    let mine: f64 = (0..5)
        .map(|k| 0.2 * PRICE * alive(k as f64) * (-c * k as f64).exp() * d(k as f64))
        .sum();
    let next: f64 = (0..5)
        .map(|k| 0.2 * PRICE * alive(k as f64) * (1.0 - (-c * k as f64).exp()))
        .sum();
    let (m, se) = metric(&r, "transfer", "drug_paid");
    assert_within("this payer", m, se, mine, 4.0);
    let (m, se) = metric(&r, "transfer", "paid_by_next_payer");
    assert_within("next payer", m, se, next, 4.0);
    let (m, se) = metric(&r, "forfeit", "drug_paid");
    assert_within("forfeit, this payer", m, se, mine, 4.0);
    let (m, _) = metric(&r, "forfeit", "paid_by_next_payer");
    assert_eq!(m, 0.0);
    // This payer's other costs stop when the patient leaves: in response (cost 1000, left
    // at rate μ+λ+c) and failed (cost 30000) until churn, death or the horizon.
    let h = 40.0;
    let delta = (1.0 + R).ln();
    let in_resp = |t: f64| P * (-(MU + LAMBDA + c) * t).exp();
    let in_fail = |t: f64| (1.0 - resp(t) / alive(t)) * alive(t) * (-c * t).exp();
    let other = simpson(
        |t| (1000.0 * in_resp(t) + 30000.0 * in_fail(t)) * (-delta * t).exp(),
        0.0,
        h,
        8000,
    );
    let (m, se) = metric(&r, "upfront", "other_costs");
    assert_within("payer-perspective other costs", m, se, other, 4.0);
}

#[test]
fn retention_table_churn() {
    // Kuester 2019 (fully insured, rare disease) as years: hazard constant between points.
    let extra = "[payer]\nchurn = { retention = [[1.0, 0.848], [2.0, 0.703], [3.0, 0.562], [4.0, 0.485], [5.0, 0.434]] }\n";
    let contracts = r#"[[contracts]]
name = "inst"
type = "installments"
times = [0.5, 2.5, 4.5]
stop_on = ["churn"]
on_churn = "forfeit"
"#;
    let r = run_text(&scenario(0.0, extra, contracts));
    // Retention at 0.5, 2.5 and 4.5 by the exponential interpolation between the points.
    let ret = [
        0.848f64.powf(0.5),
        0.703 * (0.562f64 / 0.703).powf(0.5),
        0.485 * (0.434f64 / 0.485).powf(0.5),
    ];
    // stop_on excludes death: payments continue for dead patients while with the payer.
    let truth: f64 = [0.5, 2.5, 4.5]
        .iter()
        .zip(ret)
        .map(|(&t, s)| PRICE / 3.0 * s * d(t))
        .sum();
    let (m, se) = metric(&r, "inst", "drug_paid");
    assert_within("retention table", m, se, truth, 4.0);
}

#[test]
fn cohort_budget_cap_and_risk() {
    let extra =
        "[cohort]\nuptake = [10, 20, 5]\nyears = 6\nannual_cap = 15000000.0\nreplicates = 400\n";
    let contracts = r#"[[contracts]]
name = "upfront"
type = "upfront"

[[contracts]]
name = "inst"
type = "installments"
payments = 3
interval = 1.0
"#;
    let r = run_text(&scenario(0.0, extra, contracts));
    let row = |c: &str, y: usize| {
        r.budget
            .iter()
            .find(|b| b.contract == c && b.year == y && b.arm == "t")
            .unwrap()
            .clone()
    };
    // Upfront: the cohort of year Y pays N_Y × price at once; the cap takes the excess.
    for (y, n) in [(1, 10.0), (2, 20.0), (3, 5.0), (4, 0.0)] {
        let b = row("upfront", y);
        let spend = n * PRICE;
        assert!(
            (b.mean - spend.min(15e6)).abs() < 1e-6 * PRICE,
            "year {y}: {b:?}"
        );
        assert!((b.cap_rebate - (spend - 15e6).max(0.0)).abs() < 1e-6 * PRICE);
        assert_eq!(b.sd, 0.0);
    }
    // Installments: E[spend in Y] = Σ_u N_u · price/3 · P(alive at Y − u), u <= Y < u + 3.
    let uptake = [10.0, 20.0, 5.0];
    for y in 1..=5usize {
        let mut truth = 0.0;
        for (u, n) in uptake.iter().enumerate() {
            let since = y as i64 - 1 - u as i64;
            if (0..3).contains(&since) {
                truth += n * PRICE / 3.0 * alive(since as f64);
            }
        }
        let b = row("inst", y);
        let se = b.sd / (b.replicates as f64).sqrt();
        // No year reaches the cap here (at most 35 patients × price/3).
        assert_within(&format!("budget year {y}"), b.mean, se, truth, 4.0);
    }
    let risk = |c: &str, m: &str| {
        r.risk
            .iter()
            .find(|x| x.contract == c && x.metric == m)
            .unwrap()
            .value
    };
    // Upfront payment moves no variance off the payer; the cohort spend is deterministic.
    assert!(
        risk("upfront", "variance_moved_off_payer").abs()
            < 1e-6 * risk("upfront", "payer_cost_variance")
    );
    assert_eq!(risk("upfront", "cohort_spend_pv_sd"), 0.0);
    assert!(risk("inst", "cohort_spend_pv_cvar95") >= risk("inst", "cohort_spend_pv_var95"));
    assert!(risk("inst", "cohort_spend_pv_var95") >= risk("inst", "cohort_spend_pv_mean"));
}
