//! Analytic checks of the continuous-time engine (docs/VALIDATION.md): an illness-death
//! model with exponential transitions has closed-form state occupancy and sojourn times; a
//! single Weibull transition has mean sojourn Γ(1 + 1/k)·λ. All within 3 Monte Carlo
//! standard errors. And a discrete-time arm whose probabilities come from the same rates
//! converges to the continuous-time result as the cycle shrinks.

mod common;
use common::*;
use obasim::markov::cohort;
use obasim::model::special::{gamma_p, ln_gamma};

fn population(max_age: f64) -> String {
    format!(
        "[population]\nage = 30.0\nshare_female = 0.5\nmax_age = {max_age}\nlife_table = {{ file = \"lt.csv\", measure = \"rate\", extrapolate = \"last_rate\" }}\n[therapy]\narm = \"a\"\nlist_price = 0.0\n"
    )
}

/// healthy → ill (rate a), healthy → dead (b), ill → dead (c).
#[test]
fn illness_death_occupancy_and_sojourns_closed_form() {
    let (a, b, c, h) = (0.12, 0.03, 0.25, 30.0);
    let text = format!(
        r#"{}occupancy_step = 0.5
{}
[[arms]]
name = "a"
death_state = "dead"
[[arms.states]]
name = "healthy"
initial = 1.0
utility = 1.0
[[arms.states]]
name = "ill"
utility = 0.5
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "healthy"
to = "ill"
time = {{ family = "exponential", rate = {a} }}
[[arms.transitions]]
from = "healthy"
to = "dead"
time = {{ family = "exponential", rate = {b} }}
[[arms.transitions]]
from = "ill"
to = "dead"
time = {{ family = "exponential", rate = {c} }}
"#,
        header(100_000, 17, h, (0.0, 0.0, 0.0)),
        population(150.0)
    );
    let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
    let model = model_of(&path);
    let r = run(&model, 4);
    let k = a + b;
    let p_h = |t: f64| (-k * t).exp();
    let p_i = |t: f64| a / (k - c) * ((-c * t).exp() - (-k * t).exp());
    for t in [0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0] {
        for (state, want) in [
            ("healthy", p_h(t)),
            ("ill", p_i(t)),
            ("dead", 1.0 - p_h(t) - p_i(t)),
        ] {
            let row = r
                .occupancy
                .iter()
                .find(|o| o.arm == "a" && o.state == state && (o.time - t).abs() < 1e-9)
                .unwrap_or_else(|| panic!("occupancy {state} at {t}"));
            assert_within(
                &format!("P({state} at {t})"),
                row.share,
                row.mcse,
                want,
                3.0,
            );
        }
    }
    // Expected time in each state up to the horizon: ∫ p(t) dt.
    let in_h = (1.0 - (-k * h).exp()) / k;
    let in_i = a / (k - c) * ((1.0 - (-c * h).exp()) / c - (1.0 - (-k * h).exp()) / k);
    let row = r
        .summary_row("a", "upfront", "life_years_undiscounted")
        .unwrap();
    assert_within("life years", row.mean, row.mcse, in_h + in_i, 3.0);
    let row = r.summary_row("a", "upfront", "qalys_undiscounted").unwrap();
    assert_within(
        "QALYs (ill at 0.5)",
        row.mean,
        row.mcse,
        in_h + 0.5 * in_i,
        3.0,
    );
}

/// alive → dead with a Weibull(shape k, scale λ) time: mean sojourn λ·Γ(1 + 1/k) (for
/// k = 0.7 the horizon truncates it: E[min(T, H)] = λ·Γ(1 + 1/k)·P(1/k, (H/λ)^k)).
#[test]
fn weibull_mean_sojourn_closed_form() {
    let (scale, h): (f64, f64) = (8.0, 115.0);
    for shape in [0.7, 1.2, 1.5, 3.0] {
        let text = format!(
            r#"{}
{}
[[arms]]
name = "a"
death_state = "dead"
[[arms.states]]
name = "alive"
initial = 1.0
utility = 1.0
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {{ family = "weibull", shape = {shape}, scale = {scale} }}
"#,
            header(40_000, 23, h, (0.0, 0.0, 0.0)),
            population(150.0)
        );
        let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
        let r = run(&model_of(&path), 4);
        let mean = scale * ln_gamma(1.0 + 1.0 / shape).exp();
        let survival_at_h = (-(h / scale).powf(shape)).exp();
        let want = if shape >= 1.0 {
            // P(T > H) < 1e-10: the plain mean.
            assert!(survival_at_h < 1e-10);
            mean
        } else {
            mean * gamma_p(1.0 / shape, (h / scale).powf(shape))
        };
        let row = r
            .summary_row("a", "upfront", "life_years_undiscounted")
            .unwrap();
        assert_within(
            &format!("Weibull k={shape} mean"),
            row.mean,
            row.mcse,
            want,
            3.0,
        );
    }
}

/// A discrete arm with p = 1 − exp(−rate·Δ) and the half-cycle correction approaches the
/// continuous-time life expectancy (1 − e^(−λH))/λ as Δ shrinks (error O(Δ²)).
#[test]
fn discrete_converges_to_continuous() {
    let (lambda, h): (f64, f64) = (0.2, 20.0);
    let exact = (1.0 - (-lambda * h).exp()) / lambda;
    let mut errors = Vec::new();
    for dt in [1.0f64, 0.5, 0.25, 1.0 / 12.0] {
        let text = format!(
            r#"{}
{}
[[arms]]
name = "a"
death_state = "dead"
[arms.markov]
cycle_length = {dt}
counting = "half_cycle"
transitions = [{{ from = "alive", to = "dead", rate = {lambda} }}]
[[arms.states]]
name = "alive"
initial = 1.0
utility = 1.0
[[arms.states]]
name = "dead"
"#,
            header(100, 1, h, (0.0, 0.0, 0.0)),
            population(150.0)
        );
        let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
        let c = cohort(&model_of(&path));
        let ly = c.arm("a").unwrap().life_years;
        errors.push((dt, (ly - exact).abs()));
    }
    // Trapezoid error ≈ Δ²·λ/12·(1 − e^(−λH)): halving Δ quarters it.
    for w in errors.windows(2) {
        let ratio = w[0].1 / w[1].1;
        let want = (w[0].0 / w[1].0).powi(2);
        assert!(
            (ratio / want - 1.0).abs() < 0.01,
            "error ratio {ratio} vs {want}: {errors:?}"
        );
    }
    assert!(errors.last().unwrap().1 < 1e-3 * exact);
}
