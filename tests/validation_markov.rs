//! Discrete-time (Markov) arms against independent truths: closed forms for the counting
//! conventions and discounting, hand calculations for by-age and by-cycle probabilities and
//! time-limited effects, and — the key property — the microsimulation's means equal the
//! exact cohort calculation within 3 Monte Carlo standard errors, for every arm metric and
//! every contract metric the cohort calculation supports.

mod common;
use common::*;
use obasim::engine::tally::{ARM_METRICS, CONTRACT_METRICS};
use obasim::markov::cohort;
use std::process::Command;

const CONVENTIONS: [&str; 6] = [
    "start",
    "end",
    "half_cycle",
    "trapezoid",
    "simpson",
    "darth_simpson",
];

/// One arm alive → dead with a constant probability p per cycle, for a counting convention.
fn survival_arm(
    name: &str,
    counting: &str,
    discounting: &str,
    p: f64,
    cost: f64,
    u: f64,
) -> String {
    format!(
        r#"
[[arms]]
name = "{name}"
death_state = "dead"
[arms.markov]
cycle_length = 0.5
counting = "{counting}"
discounting = "{discounting}"
transitions = [{{ from = "alive", to = "dead", probability = {p} }}]
[[arms.states]]
name = "alive"
initial = 1.0
cost = {cost}
utility = {u}
[[arms.states]]
name = "dead"
"#
    )
}

/// Σ_{k=a}^{b} x^k.
fn geometric(x: f64, a: usize, b: usize) -> f64 {
    (a..=b).map(|k| x.powi(k as i32)).sum()
}

/// The closed form of Σ_k w_k x^k for a convention over n cycles.
fn weighted(counting: &str, x: f64, n: usize) -> f64 {
    let xn = x.powi(n as i32);
    match counting {
        "start" => (1.0 - xn) / (1.0 - x),
        "end" => x * (1.0 - xn) / (1.0 - x),
        "half_cycle" | "trapezoid" => 0.5 * (1.0 + x) * (1.0 - xn) / (1.0 - x),
        "simpson" => {
            // 1/3 (1 + x^n) + 4/3 Σ odd + 2/3 Σ even interior
            (1.0 + xn) / 3.0
                + 4.0 / 3.0 * x * (1.0 - xn) / (1.0 - x * x)
                + 2.0 / 3.0 * x * x * (1.0 - x.powi(n as i32 - 2)) / (1.0 - x * x)
        }
        "darth_simpson" => {
            // 1/3 at both ends, 2/3 at odd and 4/3 at even interior points (DARTH gen_wcc).
            let odd: f64 = (1..n).step_by(2).map(|k| x.powi(k as i32)).sum();
            let even: f64 = (2..n).step_by(2).map(|k| x.powi(k as i32)).sum();
            (1.0 + xn) / 3.0 + 2.0 / 3.0 * odd + 4.0 / 3.0 * even
        }
        _ => unreachable!(),
    }
}

#[test]
fn counting_conventions_and_discounting_have_closed_forms() {
    let (p, cost, u, h, dt) = (0.06, 1200.0, 0.8, 10.0, 0.5);
    let (rc, ro) = (0.04, 0.015);
    let n = (h / dt) as usize;
    for discounting in ["annual", "per_cycle"] {
        let mut arms = String::new();
        for c in CONVENTIONS {
            arms.push_str(&survival_arm(c, c, discounting, p, cost, u));
        }
        let text = format!(
            "{}\n[population]\nage = 40.0\nshare_female = 0.5\nlife_table = {{ file = \"lt.csv\", measure = \"rate\" }}\n[therapy]\narm = \"start\"\nlist_price = 0.0\n{arms}",
            header(20_000, 5, h, (rc, ro, 0.08))
        );
        let (_d, path) = write_scenario(&text, &flat_life_table(0.01));
        let model = model_of(&path);
        let c = cohort(&model);
        let v = |r: f64| match discounting {
            "annual" => (1.0 + r).powf(-dt),
            _ => 1.0 / (1.0 + r * dt),
        };
        let r = run(&model, 4);
        for conv in CONVENTIONS {
            let t = c.arm(conv).unwrap();
            let ly = dt * weighted(conv, (1.0 - p) * v(ro), n);
            let ly_u = dt * weighted(conv, 1.0 - p, n);
            let costs = cost * dt * weighted(conv, (1.0 - p) * v(rc), n);
            for (what, got, want) in [
                ("life years", t.life_years, ly),
                ("life years undiscounted", t.life_years_undiscounted, ly_u),
                ("QALYs", t.qalys, u * ly),
                ("costs", t.other_costs, costs),
            ] {
                assert!(
                    (got - want).abs() <= 1e-10 * want.abs(),
                    "{conv}/{discounting} {what}: cohort {got} vs closed form {want}"
                );
            }
            // The survival curve at every boundary.
            for (k, row) in c
                .arms
                .iter()
                .find(|a| a.name == conv)
                .unwrap()
                .trace
                .iter()
                .enumerate()
            {
                let s = (1.0 - p).powi(k as i32);
                assert!((row[0] - s).abs() < 1e-13, "{conv} survival at {k}");
            }
            let contract = if conv == "start" { "upfront" } else { "none" };
            for (m, want) in [
                ("life_years", ly),
                ("other_costs", costs),
                ("qalys", u * ly),
            ] {
                let row = r.summary_row(conv, contract, m).unwrap();
                assert_within(
                    &format!("{conv}/{discounting} {m}"),
                    row.mean,
                    row.mcse,
                    want,
                    3.0,
                );
            }
        }
    }
    // Geometric helper sanity (the closed forms above rely on it).
    assert!((geometric(0.9, 0, 3) - (1.0 + 0.9 + 0.81 + 0.729)).abs() < 1e-15);
}

/// By-age rates, by-cycle probabilities, time-limited hazard ratio and relative risk, death
/// first, extra costs, transition costs and QALY changes, entry costs: the cohort against a
/// hand calculation, and the microsimulation against the cohort.
#[test]
fn time_varying_probabilities_and_one_time_amounts() {
    let (dt, h) = (1.0, 8.0);
    let text = format!(
        r#"{}
[population]
age = 38.5
share_female = 0.5
life_table = {{ file = "lt.csv", measure = "rate" }}
[therapy]
arm = "m"
list_price = 0.0
[[arms]]
name = "m"
death_state = "dead"
[arms.markov]
cycle_length = {dt}
counting = "end"
death_first = true
transitions = [
  {{ from = "well", to = "sick", rate_by_age = [[0.0, 0.1], [40.0, 0.3]], hazard_ratio = 0.5, effect_until = 2.0, cost = 5000.0, qalys = -0.1 }},
  {{ from = "well", to = "dead", probabilities = [0.01, 0.02, 0.03] }},
  {{ from = "sick", to = "well", probability = 0.2, relative_risk = 1.5, effect_from = 3.0 }},
  {{ from = "sick", to = "dead", probability_by_age = [[30.0, 0.05], [42.0, 0.1]] }},
]
[[arms.markov.extra_costs]]
states = ["sick"]
cost = 1000.0
from = 1.0
until = 3.0
[[arms.states]]
name = "well"
initial = 0.7
cost = 100.0
utility = 0.9
[[arms.states]]
name = "sick"
initial = 0.3
cost = 2000.0
utility = 0.6
entry_cost = 300.0
[[arms.states]]
name = "dead"
entry_cost = 7000.0
"#,
        header(40_000, 9, h, (0.0, 0.0, 0.0))
    );
    let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
    let model = model_of(&path);
    let c = cohort(&model);

    // Hand calculation: rows of cycle c at attained age 38.5 + c.
    let n = 8;
    let mut m = vec![0.7, 0.3, 0.0];
    let (mut cost, mut q, mut ly) = (300.0 * 0.3, 0.0, 0.0);
    for cy in 0..n {
        let age = 38.5 + cy as f64;
        let rate = if age >= 40.0 { 0.3 } else { 0.1 } * if cy < 2 { 0.5 } else { 1.0 };
        let p_ws = 1.0 - f64::exp(-rate * dt);
        let p_wd = [0.01, 0.02, 0.03][cy.min(2)];
        let p_sw = 0.2 * if cy >= 3 { 1.5 } else { 1.0 };
        let p_sd = if age >= 42.0 { 0.1 } else { 0.05 };
        // death first: other moves conditional on surviving
        let ws = (1.0 - p_wd) * p_ws;
        let sw = (1.0 - p_sd) * p_sw;
        let next = [
            m[0] * (1.0 - p_wd - ws) + m[1] * sw,
            m[0] * ws + m[1] * (1.0 - p_sd - sw),
            m[2] + m[0] * p_wd + m[1] * p_sd,
        ];
        // one-time: well → sick 5000 + entry 300, QALY −0.1; sick → well nothing; deaths 7000
        cost += m[0] * ws * (5000.0 + 300.0) + (m[0] * p_wd + m[1] * p_sd) * 7000.0;
        q += -0.1 * m[0] * ws;
        // end of cycle: the state at t_(c+1) counts for cycle c, with cycle c's costs
        let sick_cost = 2000.0 + if (1..3).contains(&cy) { 1000.0 } else { 0.0 };
        cost += next[0] * 100.0 + next[1] * sick_cost;
        q += next[0] * 0.9 + next[1] * 0.6;
        ly += next[0] + next[1];
        m = next.to_vec();
    }
    let t = c.arm("m").unwrap();
    for (what, got, want) in [
        ("costs", t.other_costs, cost),
        ("QALYs", t.qalys, q),
        ("life years", t.life_years, ly),
    ] {
        assert!(
            (got - want).abs() < 1e-9 * want.abs(),
            "{what}: cohort {got} vs hand {want}"
        );
    }
    let last = c.arms[0].trace.last().unwrap();
    for s in 0..3 {
        assert!((last[s] - m[s]).abs() < 1e-12);
    }

    let r = run(&model, 4);
    for (i, name) in ARM_METRICS.iter().enumerate() {
        let want = arm_value(t, i);
        let row = r.summary_row("m", "upfront", name).unwrap();
        assert_within(name, row.mean, row.mcse, want, 3.0);
    }
}

fn arm_value(t: &obasim::accounting::ArmTotals, i: usize) -> f64 {
    [
        t.other_costs,
        t.other_costs_undiscounted,
        t.qalys,
        t.qalys_undiscounted,
        t.life_years,
        t.life_years_undiscounted,
    ][i]
}

/// A discrete therapy arm with background mortality (US life table, both sexes), churn,
/// manufacturer default and a comparator, under many contracts.
fn contract_scenario(patients: u64, contracts: &str) -> String {
    format!(
        r#"{}
[population]
age = 35.0
share_female = 0.4
life_table = {{ file = "lt.csv", measure = "rate" }}

[therapy]
arm = "gt"
list_price = 1000000.0
administration_cost = 50000.0
cost_of_goods = 200000.0

[payer]
churn = {{ annual_probability = 0.1 }}

[manufacturer]
annual_default_probability = 0.03

[[arms]]
name = "gt"
death_state = "dead"
[arms.markov]
cycle_length = 0.25
counting = "half_cycle"
background_mortality = true
transitions = [
  {{ from = "response", to = "failure", rate_by_age = [[0.0, 0.15], [40.0, 0.10]], cost = 5000.0, qalys = -0.05 }},
  {{ from = "response", to = "dead", rate = 0.01 }},
  {{ from = "failure", to = "response", probability = 0.03 }},
  {{ from = "failure", to = "dead", probability = 0.02 }},
]
[[arms.states]]
name = "response"
initial = 0.85
cost = 2000.0
utility = 0.9
[[arms.states]]
name = "failure"
initial = 0.15
cost = 30000.0
utility = 0.6
[[arms.states]]
name = "dead"
entry_cost = 10000.0

[[arms]]
name = "soc"
death_state = "dead"
[arms.markov]
cycle_length = 0.5
counting = "start"
background_mortality = true
transitions = [{{ from = "failure", to = "dead", rate = 0.05 }}]
[[arms.states]]
name = "failure"
initial = 1.0
cost = 30000.0
utility = 0.6
[[arms.states]]
name = "dead"

[[outcomes]]
name = "responding"
kind = "in_state"
states = ["response"]
[[outcomes]]
name = "not failed"
kind = "not_in_state"
states = ["failure"]
[[outcomes]]
name = "never failed"
kind = "not_entered"
states = ["failure"]
[[outcomes]]
name = "failed once"
kind = "entered"
states = ["failure"]
[[outcomes]]
name = "alive"
kind = "alive"

[[observations]]
name = "annual"
outcome = "responding"
every = 1.0
sensitivity = 0.9

{contracts}
"#,
        header(patients, 31, 12.0, (0.035, 0.035, 0.08))
    )
}

const SUPPORTED: &str = r#"
[[contracts]]
name = "upfront"
type = "upfront"

[[contracts]]
name = "5 annual, stop at death"
type = "installments"
payments = 5
interval = 1.0
interest = 0.03

[[contracts]]
name = "accelerate at death"
type = "installments"
times = [0.6, 2.1, 3.6, 5.1]
interest = 0.05
on_stop = "accelerate"

[[contracts]]
name = "outcome-based, stop"
type = "installments"
payments = 5
interval = 1.0
condition = "responding"
condition_from = 1.0
cap = 1.0

[[contracts]]
name = "outcome-based, resume, off-boundary"
type = "installments"
times = [0.1, 1.1, 2.1, 3.1, 4.1]
condition = "not failed"
after_failure = "resume"
stop_on = []

[[contracts]]
name = "milestones"
type = "milestones"
milestones = [ { at = 0.0, share = 0.5 }, { at = 1.5, share = 0.3, condition = "never failed" }, { at = 3.0, share = 0.2, condition = "alive" } ]

[[contracts]]
name = "warranty, linear"
type = "warranty"
warranty = { outcome = "responding", window = 4.0, prorate = "linear" }

[[contracts]]
name = "installments with a stepped warranty"
type = "installments"
payments = 3
interval = 1.0
warranty = { outcome = "never failed", window = 3.0, refund = 0.8, prorate = "stepped" }

[[contracts]]
name = "warranty at 0.5, table, never failed"
type = "warranty"
at = 0.5
warranty = { outcome = "never failed", window = 5.0, prorate = "table", table = [[1.0, 1.0], [3.0, 0.5]] }
"#;

#[test]
fn contracts_cohort_equals_microsimulation_expectation() {
    let (_d, path) = write_scenario(&contract_scenario(40_000, SUPPORTED), &us_life_table());
    let model = model_of(&path);
    let c = cohort(&model);
    let r = run(&model, 4);
    let mut worst = (0.0f64, String::new());
    for (a, arm) in ["gt", "soc"].iter().enumerate() {
        let t = c.arms[a].totals.as_ref().unwrap();
        let contract = if a == 0 { "upfront" } else { "none" };
        for (i, name) in ARM_METRICS.iter().enumerate() {
            let row = r.summary_row(arm, contract, name).unwrap();
            assert_within(
                &format!("{arm} {name}"),
                row.mean,
                row.mcse,
                arm_value(t, i),
                3.0,
            );
        }
    }
    for cc in &c.contracts {
        let v = cc
            .values
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", cc.name));
        for (i, name) in CONTRACT_METRICS.iter().enumerate() {
            let row = r.summary_row("gt", &cc.name, name).unwrap();
            let what = format!("{} / {name}", cc.name);
            assert_within(&what, row.mean, row.mcse, v[i], 3.0);
            if row.mcse > 0.0 {
                let z = ((row.mean - v[i]) / row.mcse).abs();
                if z > worst.0 {
                    worst = (z, what);
                }
            }
        }
    }
    println!("largest |z| = {:.2} ({})", worst.0, worst.1);
    // Sanity: the contracts differ, and refunds, withheld amounts and lost refunds occur.
    let get = |n: &str, m: &str| c.contract_metric(n, m).unwrap();
    assert!(get("warranty, linear", "refund") > 0.0);
    assert!(get("warranty, linear", "refund_lost") > 0.0);
    assert!(get("outcome-based, stop", "any_withheld") > 0.0);
    assert!(get("upfront", "drug_paid") == 1_000_000.0);
    assert!(
        get("outcome-based, resume, off-boundary", "drug_paid")
            > get("outcome-based, stop", "drug_paid")
    );
}

/// Installments stopping at death under a constant probability of death per cycle: the
/// expected payments have a closed form the cohort reproduces exactly.
#[test]
fn installments_stopping_at_death_closed_form() {
    let p: f64 = 0.1;
    let text = format!(
        r#"{}
[population]
age = 30.0
share_female = 0.5
life_table = {{ file = "lt.csv", measure = "rate" }}
[therapy]
arm = "t"
list_price = 1000.0
[[arms]]
name = "t"
death_state = "dead"
[arms.markov]
cycle_length = 1.0
counting = "start"
transitions = [{{ from = "alive", to = "dead", probability = {p} }}]
[[arms.states]]
name = "alive"
initial = 1.0
[[arms.states]]
name = "dead"
[[contracts]]
name = "5 annual"
type = "installments"
payments = 5
interval = 1.0
[[contracts]]
name = "accelerate"
type = "installments"
payments = 5
interval = 1.0
interest = 0.1
on_stop = "accelerate"
"#,
        header(1000, 1, 10.0, (0.05, 0.05, 0.05))
    );
    let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
    let model = model_of(&path);
    let c = cohort(&model);
    // Payment k (at year k) is made if alive at k: probability (1 − p)^k.
    let paid: f64 = (0..5).map(|k| 200.0 * (1.0 - p).powi(k)).sum();
    let pv: f64 = (0..5)
        .map(|k| 200.0 * (1.0 - p).powi(k) * 1.05f64.powi(-k))
        .sum();
    let got = c
        .contract_metric("5 annual", "drug_paid_undiscounted")
        .unwrap();
    assert!((got - paid).abs() < 1e-9, "{got} vs {paid}");
    let got = c.contract_metric("5 annual", "drug_paid").unwrap();
    assert!((got - pv).abs() < 1e-9, "{got} vs {pv}");
    let got = c.contract_metric("5 annual", "withheld").unwrap();
    assert!((got - (1000.0 - paid)).abs() < 1e-9);
    let got = c.contract_metric("5 annual", "any_withheld").unwrap();
    assert!((got - (1.0 - (1.0 - p).powi(4))).abs() < 1e-12);
    // Accelerated at death at year j (1 <= j <= 4): the balance of payments j..4 discounted
    // to j at the interest rate, i.e. the annuity's outstanding principal.
    let frac = 1.0 / (0..5).map(|k| 1.1f64.powi(-k)).sum::<f64>();
    let mut want = 0.0;
    for j in 0..5 {
        let alive = (1.0 - p).powi(j);
        want += 1000.0 * frac * alive; // scheduled payment j, made when alive at j
        if j >= 1 {
            let dies_at_j = (1.0 - p).powi(j - 1) * p;
            let bal: f64 = (j..5).map(|i| frac * 1.1f64.powi(-(i - j))).sum();
            want += 1000.0 * bal * dies_at_j;
        }
    }
    let got = c
        .contract_metric("accelerate", "drug_paid_undiscounted")
        .unwrap();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
}

#[test]
fn contracts_the_cohort_cannot_evaluate_exactly_say_why() {
    let refused = r#"
[[contracts]]
name = "floor"
type = "warranty"
warranty = { outcome = "responding", window = 4.0 }
floor = 0.5
[[contracts]]
name = "binding cap"
type = "installments"
payments = 4
interval = 1.0
amounts = [0.4, 0.3, 0.2, 0.1]
cap = 0.6
[[contracts]]
name = "observed"
type = "installments"
payments = 3
interval = 1.0
condition = "responding"
observed_by = "annual"
[[contracts]]
name = "churn"
type = "installments"
payments = 3
interval = 1.0
stop_on = ["death", "churn"]
"#;
    let (_d, path) = write_scenario(&contract_scenario(1024, refused), &us_life_table());
    let model = model_of(&path);
    let c = cohort(&model);
    let why = |n: &str| {
        c.contracts
            .iter()
            .find(|x| x.name == n)
            .unwrap()
            .values
            .clone()
            .unwrap_err()
    };
    assert!(why("floor").contains("floor"));
    assert!(why("binding cap").contains("cap"));
    assert!(why("observed").contains("assessment plan"));
    assert!(why("churn").contains("churn"));
    // The arms are still computed.
    assert!(c.arm("gt").is_ok() && c.arm("soc").is_ok());
    // An age distribution with background mortality: the arm is refused, not approximated.
    let text = contract_scenario(1024, "").replace(
        "age = 35.0",
        "age_distribution = { family = \"uniform\", min = 30, max = 40 }",
    );
    let (_d2, path) = write_scenario(&text, &us_life_table());
    let c = cohort(&model_of(&path));
    assert!(c.arm("gt").unwrap_err().contains("fixed `population.age`"));
    assert!(c.contracts[0]
        .values
        .as_ref()
        .unwrap_err()
        .contains("fixed"));
}

#[test]
fn invalid_markov_tables_are_located_errors() {
    let base = |arm: &str| {
        format!(
            "{}\n[population]\nage = 30.0\nshare_female = 0.5\nlife_table = {{ file = \"lt.csv\", measure = \"rate\" }}\n[therapy]\narm = \"a\"\nlist_price = 0.0\n{arm}",
            header(100, 1, 10.0, (0.0, 0.0, 0.0))
        )
    };
    let errors = |arm: &str| -> String {
        let (_d, path) = write_scenario(&base(arm), &flat_life_table(0.0));
        let source = obasim::scenario::Source::from_file(&path).unwrap();
        match obasim::model::build::load(&source) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let arm = |markov: &str, extra: &str| {
        format!(
            "[[arms]]\nname = \"a\"\ndeath_state = \"d\"\n{extra}[arms.markov]\n{markov}\n[[arms.states]]\nname = \"x\"\ninitial = 1.0\n[[arms.states]]\nname = \"y\"\n[[arms.states]]\nname = \"d\"\n"
        )
    };
    let e = errors(&arm(
        "cycle_length = 1.0\ncounting = \"end\"\ntransitions = [{ from = \"x\", to = \"y\", probability = 0.7 }, { from = \"x\", to = \"d\", probability = 0.4 }]",
        "",
    ));
    assert!(
        e.contains("out of `x` sum to 1.1 ") && e.contains("arms[0].markov.transitions"),
        "{e}"
    );
    let e = errors(&arm(
        "cycle_length = 3.0\ncounting = \"end\"\ntransitions = []",
        "",
    ));
    assert!(e.contains("whole number of cycles"), "{e}");
    let e = errors(&arm("cycle_length = 2.0\ncounting = \"simpson\"", ""));
    assert!(e.contains("even number of cycles"), "{e}");
    let e = errors(&arm(
        "cycle_length = 1.0\ncounting = \"end\"\ntransitions = [{ from = \"x\", to = \"yy\", probability = 0.1 }]",
        "",
    ));
    assert!(e.contains("did you mean `y`"), "{e}");
    let e = errors(&arm(
        "cycle_length = 1.0\ncounting = \"end\"\ntransitions = [{ from = \"x\", to = \"y\", probability = 0.1, rate = 0.2 }]",
        "",
    ));
    assert!(e.contains("exactly one of"), "{e}");
    let e = errors(&arm(
        "cycle_length = 1.0\ncounting = \"end\"\ntransitions = [{ from = \"x\", to = \"y\", probability = 0.5, relative_risk = 3.0, effect_until = 4.0 }]",
        "",
    ));
    assert!(e.contains("at most 1") && e.contains("cycle 0"), "{e}");
    let e = errors(&arm(
        "cycle_length = 1.0\ncounting = \"end\"",
        "[[arms.transitions]]\nfrom = \"x\"\nto = \"y\"\ntime = { family = \"exponential\", rate = 0.1 }\n",
    ));
    assert!(e.contains("markov.transitions"), "{e}");
    // The age table must cover the youngest patient.
    let e = errors(&arm(
        "cycle_length = 1.0\ncounting = \"end\"\ntransitions = [{ from = \"x\", to = \"y\", probability_by_age = [[31.0, 0.1]] }]",
        "",
    ));
    assert!(e.contains("starts at age 31"), "{e}");
    // A state reachable only through a Markov transition is not warned about.
    let (_d, path) = write_scenario(
        &base(&arm(
            "cycle_length = 1.0\ncounting = \"end\"\ntransitions = [{ from = \"x\", to = \"y\", probability = 0.1 }]",
            "",
        )),
        &flat_life_table(0.0),
    );
    assert!(model_of(&path).warnings.is_empty());
}

#[test]
fn cohort_command_prints_results_and_trace() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/validation/hiv-chancellor-briggs.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args(["cohort", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("arm,contract,comparator,metric,value,note\n"));
    let icer = text
        .lines()
        .find(|l| l.starts_with("combination,none paid,monotherapy,icer,"))
        .unwrap();
    let v: f64 = icer.split(',').nth(4).unwrap().parse().unwrap();
    assert_eq!(v.round(), 6276.0);
    let out = Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args(["cohort", "--trace", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nmonotherapy,0,0,A,1\n"), "{text}");
    // 2 arms × 21 points × 4 states + header.
    assert_eq!(text.lines().count(), 1 + 2 * 21 * 4);
    // A scenario without discrete arms is bad input (exit code 2).
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args(["cohort", example.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
