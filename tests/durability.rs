//! Durability and time: excess mortality per state (SMR on the background hazard, additive
//! excess hazards), treatment effects on reference curves (proportional hazards,
//! acceleration, waning), and values that depend on time. Expected values come from closed
//! forms and from quadrature of the hazard written in the test.

mod common;
use common::{assert_within, flat_life_table, header, model_of, run, write_scenario};
use obasim::results::Results;

/// (mean, mcse) of a summary metric.
fn metric(r: &Results, arm: &str, contract: &str, name: &str) -> (f64, f64) {
    let row = r
        .summary_row(arm, contract, name)
        .unwrap_or_else(|| panic!("no {arm}/{contract}/{name}"));
    (row.mean, row.mcse)
}

/// An arm `t` with states `a` → `b` → dead and a comparator `c` alive → dead; `a_extra`,
/// `b_extra` are added to the states, the life table is flat at `mu`.
fn two_state(a_extra: &str, b_extra: &str, a_to_b: f64, patients: u64, horizon: f64) -> String {
    format!(
        r#"{}
[population]
age = 40.0
share_female = 0.5
life_table = {{ file = "lt.csv", measure = "rate", extrapolate = "last_rate" }}

[therapy]
arm = "t"
list_price = 0.0

[[arms]]
name = "t"
death_state = "dead"
[[arms.states]]
name = "a"
initial = 1.0
{a_extra}
[[arms.states]]
name = "b"
{b_extra}
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "a"
to = "b"
time = {{ family = "exponential", rate = {a_to_b} }}

[[arms]]
name = "c"
death_state = "dead"
[[arms.states]]
name = "alive"
initial = 1.0
[[arms.states]]
name = "dead"

[[contracts]]
name = "upfront"
type = "upfront"
"#,
        header(patients, 29, horizon, (0.0, 0.0, 0.0))
    )
}

fn results(text: &str, mu: f64) -> Results {
    let (_dir, path) = write_scenario(text, &flat_life_table(mu));
    run(&model_of(&path), 2)
}

#[test]
fn an_smr_and_an_excess_hazard_per_state_match_the_closed_form() {
    // a: background μ (SMR 1); b: 3μ + 0.05 (an SMR of 3 and an excess hazard). With a flat
    // life table the path is Markov: P(a at t) = e^-(k+μ)t, P(b at t) = k/(k+μ−c)·(e^-ct −
    // e^-(k+μ)t), c = 3μ + 0.05.
    let (mu, k, h) = (0.02, 0.3, 30.0);
    let text = two_state("", "smr = 3.0\nexcess_hazard = 0.05", k, 60_000, h);
    let r = results(&text, mu);
    let c = 3.0 * mu + 0.05;
    let p = k + mu;
    let in_a = (1.0 - (-p * h).exp()) / p;
    let in_b = k / (p - c) * ((1.0 - (-c * h).exp()) / c - (1.0 - (-p * h).exp()) / p);
    let (m, se) = metric(&r, "t", "upfront", "life_years_undiscounted");
    assert_within(
        "life years with excess mortality in b",
        m,
        se,
        in_a + in_b,
        4.0,
    );
    // The comparator has no SMR: (1 − e^-μH)/μ.
    let (m, se) = metric(&r, "c", "none", "life_years_undiscounted");
    assert_within("comparator", m, se, (1.0 - (-mu * h).exp()) / mu, 4.0);
}

#[test]
fn an_smr_of_one_and_no_excess_are_the_same_as_none() {
    let plain = two_state("", "", 0.3, 5_000, 20.0);
    let stated = two_state(
        "smr = 1.0\nexcess_hazard = 0.0",
        "smr = 1",
        0.3,
        5_000,
        20.0,
    );
    assert_eq!(
        results(&plain, 0.02).summary,
        results(&stated, 0.02).summary
    );
}

#[test]
fn an_smr_in_the_first_state_only_shortens_only_that_sojourn() {
    // SMR 5 in a, none in b: the hazard of death is 5μ in a, μ in b; the path is again
    // Markov with a flat table.
    let (mu, k, h) = (0.01, 0.2, 40.0);
    let text = two_state("smr = 5.0", "", k, 60_000, h);
    let r = results(&text, mu);
    let p = k + 5.0 * mu;
    let c = mu;
    let in_a = (1.0 - (-p * h).exp()) / p;
    let in_b = k / (p - c) * ((1.0 - (-c * h).exp()) / c - (1.0 - (-p * h).exp()) / p);
    let (m, se) = metric(&r, "t", "upfront", "life_years_undiscounted");
    assert_within("life years", m, se, in_a + in_b, 4.0);
}

/// Cumulative hazard of the shipped life table (columns Year, Age, Female, Male, Total: m(x)
/// on [x, x + 1), the last row's rate beyond) from age `a0` to `a1`, for column `col` (2
/// female, 3 male).
fn table_cumulative(text: &str, col: usize, a0: f64, a1: f64) -> f64 {
    let rows: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.trim().parse().unwrap()).collect();
            (v[1], v[col])
        })
        .collect();
    let mut h = 0.0;
    for (k, &(age, rate)) in rows.iter().enumerate() {
        let end = if k + 1 == rows.len() {
            f64::INFINITY
        } else {
            age + 1.0
        };
        let (lo, hi) = (a0.max(age), a1.min(end));
        if hi > lo {
            h += rate * (hi - lo);
        }
    }
    h
}

#[test]
fn an_smr_on_a_real_life_table_matches_quadrature() {
    // One state with SMR 2 on the US life table, women aged 40: S(t) = exp(−2 H(40, 40 + t)).
    let text = format!(
        r#"{}
[population]
age = 40.0
share_female = 1.0
life_table = {{ file = "lt.csv", measure = "rate" }}

[therapy]
arm = "t"
list_price = 0.0

[[arms]]
name = "t"
death_state = "dead"
[[arms.states]]
name = "alive"
initial = 1.0
smr = 2.0
[[arms.states]]
name = "dead"

[[contracts]]
name = "upfront"
type = "upfront"
"#,
        header(40_000, 5, 60.0, (0.0, 0.0, 0.0))
    );
    let lt = common::us_life_table();
    let (_dir, path) = write_scenario(&text, &lt);
    let r = run(&model_of(&path), 2);
    let truth = common::simpson(
        |t| (-2.0 * table_cumulative(&lt, 2, 40.0, 40.0 + t)).exp(),
        0.0,
        60.0,
        6000,
    );
    let (m, se) = metric(&r, "t", "upfront", "life_years_undiscounted");
    assert_within("life years at SMR 2", m, se, truth, 4.0);
}
