//! The engine against independent truths: closed forms and numerical integration.
//! Tolerances are 4 Monte Carlo standard errors at fixed seeds.

mod common;
use common::*;

/// A therapy arm (alive → dead, exponential λ) and a comparator (hazard 2λ, utility 0.5).
struct TwoState<'a> {
    horizon: f64,
    rates: (f64, f64, f64),
    lambda: f64,
    cost: f64,
    utility: f64,
    population: &'a str,
    contracts: &'a str,
}

fn two_state(t: &TwoState) -> String {
    let TwoState {
        horizon,
        rates,
        lambda,
        cost,
        utility,
        population,
        contracts,
    } = *t;
    format!(
        r#"{}
[population]
{population}
life_table = {{ file = "lt.csv", measure = "rate" }}

[therapy]
arm = "t"
list_price = 1000000.0
cost_of_goods = 100000.0

[[arms]]
name = "t"
death_state = "dead"
[[arms.states]]
name = "alive"
initial = 1.0
cost = {cost}
utility = {utility}
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {{ family = "exponential", rate = {lambda} }}

[[arms]]
name = "soc"
death_state = "dead"
[[arms.states]]
name = "alive"
initial = 1.0
cost = {cost}
utility = 0.5
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {{ family = "exponential", rate = {} }}
{contracts}
"#,
        header(40_000, 11, horizon, rates),
        2.0 * lambda
    )
}

#[test]
fn exponential_survival_constant_cost_closed_form() {
    // E[PV] = c (1 - e^{-(λ+δ)H})/(λ+δ); QALYs likewise with the outcome rate.
    let (lambda, c, u, h) = (0.15, 20_000.0, 0.8, 30.0);
    let (rc, ro) = (0.035, 0.015);
    let text = two_state(&TwoState {
        horizon: h,
        rates: (rc, ro, 0.08),
        lambda,
        cost: c,
        utility: u,
        population: "age = 30.0\nshare_female = 0.5\nmax_age = 150.0",
        contracts: "[[contracts]]\nname = \"upfront\"\ntype = \"upfront\"\n",
    });
    let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
    let model = model_of(&path);
    let r = run(&model, 2);
    let closed = |rate: f64, disc: f64| {
        let k = rate + (1.0 + disc).ln();
        (1.0 - (-k * h).exp()) / k
    };
    let row = r.summary_row("t", "upfront", "other_costs").unwrap();
    assert_within("PV cost", row.mean, row.mcse, c * closed(lambda, rc), 4.0);
    let row = r.summary_row("t", "upfront", "qalys").unwrap();
    assert_within("QALYs", row.mean, row.mcse, u * closed(lambda, ro), 4.0);
    let row = r
        .summary_row("t", "upfront", "life_years_undiscounted")
        .unwrap();
    assert_within(
        "LY",
        row.mean,
        row.mcse,
        (1.0 - (-lambda * h).exp()) / lambda,
        4.0,
    );
    // Upfront pays exactly the price, for every patient.
    let row = r.summary_row("t", "upfront", "drug_paid").unwrap();
    assert_eq!((row.mean, row.sd, row.p025, row.p975), (1e6, 0.0, 1e6, 1e6));
    let row = r.summary_row("t", "upfront", "manufacturer_npv").unwrap();
    assert_eq!(row.mean, 900_000.0);
    // Comparator: hazard 2λ, utility 0.5; paired increments.
    let inc = |m: &str| {
        r.incremental
            .iter()
            .find(|x| x.contract == "upfront" && x.metric == m)
            .unwrap()
            .clone()
    };
    let dq = inc("inc_qalys");
    assert_within(
        "inc QALYs",
        dq.value,
        dq.mcse,
        u * closed(lambda, ro) - 0.5 * closed(2.0 * lambda, ro),
        4.0,
    );
    let dc = inc("inc_cost");
    assert_within(
        "inc cost",
        dc.value,
        dc.mcse,
        1e6 + c * closed(lambda, rc) - c * closed(2.0 * lambda, rc),
        4.0,
    );
    // Occupancy: share alive at grid points follows e^{-λt}.
    for t in [1.0, 5.0, 12.0] {
        let o = r
            .occupancy
            .iter()
            .find(|x| x.arm == "t" && x.state == "alive" && (x.time - t).abs() < 1e-9)
            .unwrap();
        assert_within("occupancy", o.share, o.mcse, (-lambda * t).exp(), 4.0);
    }
    // Cash flows add up to the totals (an identity, up to rounding).
    let total: f64 = r
        .cashflow
        .iter()
        .filter(|x| x.arm == "t" && x.contract == "upfront")
        .map(|x| x.other_costs_discounted)
        .sum();
    let row = r.summary_row("t", "upfront", "other_costs").unwrap();
    assert!((total - row.mean).abs() < 1e-9 * row.mean);
}

#[test]
fn installments_stopping_at_death_with_life_table() {
    // E[paid] = Σ_k A S(t_k) d(t_k), S = disease survival × life-table survival from age 60.
    let (lambda, rc) = (0.1, 0.03);
    let text = two_state(&TwoState {
        horizon: 20.0,
        rates: (rc, rc, 0.08),
        lambda,
        cost: 0.0,
        utility: 1.0,
        population: "age = 60.0\nshare_female = 1.0",
        contracts: r#"[[contracts]]
name = "inst"
type = "installments"
payments = 6
interval = 1.5
first = 0.5
stop_on = ["death"]
"#,
    });
    let table = us_life_table();
    let (_d, path) = write_scenario(&text, &table);
    let model = model_of(&path);
    let r = run(&model, 2);
    // Independent background survival from the CSV: hazard m(x) constant on [x, x+1).
    let female: Vec<f64> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let cum = |age: f64| {
        let mut h = 0.0;
        let mut x = 0.0;
        while x + 1.0 <= age {
            h += female[x as usize];
            x += 1.0;
        }
        h + female[x as usize] * (age - x)
    };
    let s_bg = |t: f64| (-(cum(60.0 + t) - cum(60.0))).exp();
    let price = 1e6;
    let a = price / 6.0;
    let truth: f64 = (0..6)
        .map(|k| {
            let t = 0.5 + 1.5 * k as f64;
            a * (-lambda * t).exp() * s_bg(t) * (1.0 + rc).powf(-t)
        })
        .sum();
    let row = r.summary_row("t", "inst", "drug_paid").unwrap();
    assert_within("installments paid", row.mean, row.mcse, truth, 4.0);
    // Life years: ∫_0^H S(t) dt (undiscounted) by quadrature of the same survival.
    let ly = simpson(|t| (-lambda * t).exp() * s_bg(t), 0.0, 20.0, 4000);
    let row = r
        .summary_row("t", "inst", "life_years_undiscounted")
        .unwrap();
    assert_within("life years", row.mean, row.mcse, ly, 4.0);
}

#[test]
fn background_mortality_alone_matches_the_life_table() {
    // No disease deaths: survival is the table's, to a maximum age of 90 (certain death).
    let text = two_state(&TwoState {
        horizon: 60.0,
        rates: (0.0, 0.0, 0.0),
        lambda: 1e-12,
        cost: 0.0,
        utility: 1.0,
        population: "age = 45.0\nshare_female = 0.0\nmax_age = 90.0",
        contracts: "",
    });
    let table = us_life_table();
    let (_d, path) = write_scenario(&text, &table);
    let model = model_of(&path);
    let r = run(&model, 2);
    let male: Vec<f64> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    let s = |t: f64| {
        let age = 45.0 + t;
        if age >= 90.0 {
            return 0.0;
        }
        let mut h = 0.0;
        let mut x = 45.0;
        while x + 1.0 <= age {
            h += male[x as usize];
            x += 1.0;
        }
        (-(h + male[x as usize] * (age - x))).exp()
    };
    let ly = simpson(s, 0.0, 45.0, 9000);
    let row = r.summary_row("t", "upfront", "life_years").unwrap();
    assert_within("life years (table)", row.mean, row.mcse, ly, 4.0);
    for t in [10.0, 30.0, 44.0] {
        let o = r
            .occupancy
            .iter()
            .find(|x| x.arm == "t" && x.state == "alive" && (x.time - t).abs() < 1e-9)
            .unwrap();
        assert_within("survival (table)", o.share, o.mcse, s(t), 4.0);
    }
    // Nobody survives the maximum age.
    let o = r
        .occupancy
        .iter()
        .find(|x| x.arm == "t" && x.state == "alive" && (x.time - 46.0).abs() < 1e-9)
        .unwrap();
    assert_eq!(o.share, 0.0);
}

fn illness_death(clock: &str) -> String {
    format!(
        r#"{}
[population]
age = 30.0
share_female = 0.5
max_age = 150.0
life_table = {{ file = "lt.csv", measure = "rate" }}
[therapy]
arm = "t"
list_price = 1.0
[[arms]]
name = "t"
death_state = "dead"
[[arms.states]]
name = "well"
initial = 1.0
[[arms.states]]
name = "ill"
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "well"
to = "ill"
time = {{ family = "exponential", rate = 0.3 }}
[[arms.transitions]]
from = "ill"
to = "dead"
time = {{ family = "weibull", shape = 2.0, scale = 4.0 }}
clock = "{clock}"
"#,
        header(40_000, 5, 10.0, (0.0, 0.0, 0.0))
    )
}

#[test]
fn clock_reset_and_forward_match_quadrature() {
    let h = 6.0;
    let s_w = |t: f64| (-(t / 4.0f64).powi(2)).exp();
    let f_a = |s: f64| 0.3 * (-0.3 * s).exp();
    for clock in ["reset", "forward"] {
        let (_d, path) = write_scenario(&illness_death(clock), &flat_life_table(0.0));
        let model = model_of(&path);
        let r = run(&model, 2);
        // P(dead by h) = ∫_0^h f_A(s) P(death by h | ill at s) ds.
        let truth = simpson(
            |s| {
                let p = if clock == "reset" {
                    1.0 - s_w(h - s)
                } else {
                    1.0 - s_w(h) / s_w(s)
                };
                f_a(s) * p
            },
            0.0,
            h,
            2000,
        );
        let o = r
            .occupancy
            .iter()
            .find(|x| x.state == "dead" && (x.time - h).abs() < 1e-9)
            .unwrap();
        assert_within(
            &format!("P(dead by {h}), clock {clock}"),
            o.share,
            o.mcse,
            truth,
            4.0,
        );
    }
}

#[test]
fn net_benefit_spread_matches_the_qaly_distribution() {
    // Upfront price only (no other costs): NMB = λQ − P, so sd(NMB) = λ sd(Q) with
    // Q = u (1 − e^{−δ min(T, H)})/δ, T ~ Exp(κ): E[e^{−aδ min}] has a closed form.
    let (kappa, u, h, ro) = (0.1, 0.8, 30.0, 0.035);
    let text = two_state(&TwoState {
        horizon: h,
        rates: (0.0, ro, 0.08),
        lambda: kappa,
        cost: 0.0,
        utility: u,
        population: "age = 30.0\nshare_female = 0.5\nmax_age = 150.0",
        contracts: "",
    });
    let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
    let model = model_of(&path);
    let r = run(&model, 2);
    let delta = (1.0f64 + ro).ln();
    let m = |a: f64| {
        let k = kappa + a * delta;
        kappa / k * (1.0 - (-k * h).exp()) + (-k * h).exp()
    };
    let sd_q = u / delta * (m(2.0) - m(1.0) * m(1.0)).sqrt();
    let row = r
        .risk
        .iter()
        .find(|x| x.metric == "net_benefit_sd" && x.wtp == Some(100_000.0))
        .unwrap();
    // SE of a sample SD is about sd/sqrt(2n) for a light-tailed variable; allow 4 of them
    // doubled for the bounded, skewed QALY distribution.
    let n = model.sim.patients as f64;
    let tol = 8.0 * sd_q / (2.0 * n).sqrt();
    assert!(
        (row.value / 1e5 - sd_q).abs() < tol,
        "{} vs {}",
        row.value / 1e5,
        sd_q
    );
    // Upfront: the contract is its own upfront reference.
    let up = r
        .risk
        .iter()
        .find(|x| x.metric == "upfront_net_benefit_sd" && x.wtp == Some(100_000.0))
        .unwrap();
    assert!((up.value - row.value).abs() < 1e-9 * row.value);
}

#[test]
fn value_based_and_parity_prices() {
    // Two arms with exponential survival; the therapy costs P upfront (or in installments).
    // Value-based price at λ: P* = λΔQ − ΔC_other (upfront, K = 1), closed form.
    let (lambda, c, u, h, r) = (0.15, 20_000.0, 0.8, 30.0, 0.035);
    let text = two_state(&TwoState {
        horizon: h,
        rates: (r, r, 0.08),
        lambda,
        cost: c,
        utility: u,
        population: "age = 30.0\nshare_female = 0.5\nmax_age = 150.0",
        contracts: "[[contracts]]\nname = \"upfront\"\ntype = \"upfront\"\n\n[[contracts]]\nname = \"inst\"\ntype = \"installments\"\npayments = 4\ninterval = 1.0\n",
    });
    let (_d, path) = write_scenario(&text, &flat_life_table(0.0));
    let model = model_of(&path);
    let res = run(&model, 2);
    let closed = |rate: f64| {
        let k = rate + (1.0f64 + r).ln();
        (1.0 - (-k * h).exp()) / k
    };
    let w = 100_000.0;
    let dq = u * closed(lambda) - 0.5 * closed(2.0 * lambda);
    let dother = c * closed(lambda) - c * closed(2.0 * lambda);
    let price = |contract: &str, metric: &str| {
        res.prices
            .iter()
            .find(|p| {
                p.contract == contract
                    && p.metric == metric
                    && (p.wtp.is_none() || p.wtp == Some(w))
            })
            .unwrap()
            .clone()
    };
    let vb = price("upfront", "value_based_price");
    assert_within("value-based price", vb.value, vb.mcse, w * dq - dother, 4.0);
    // Installments stopping at death: K = Σ (1/4) S(t_k) d(t_k).
    let k: f64 = (0..4)
        .map(|t| 0.25 * (-lambda * t as f64).exp() * (1.0 + r).powf(-(t as f64)))
        .sum();
    let vb = price("inst", "value_based_price");
    assert_within(
        "value-based price, installments",
        vb.value,
        vb.mcse,
        (w * dq - dother) / k,
        4.0,
    );
    let parity = price("inst", "upfront_parity_price");
    assert_within("parity price", parity.value, parity.mcse, 1e6 / k, 4.0);
    // Linearity: at the solved price the incremental NMB is zero (same patients).
    let text2 = text.replace(
        "list_price = 1000000.0",
        &format!("list_price = {:?}", vb.value),
    );
    let (_d2, path2) = write_scenario(&text2, &flat_life_table(0.0));
    let res2 = run(&model_of(&path2), 2);
    let nmb = res2
        .incremental
        .iter()
        .find(|x| x.contract == "inst" && x.metric == "inc_nmb" && x.wtp == Some(w))
        .unwrap();
    assert!(
        nmb.value.abs() < 1e-6 * vb.value,
        "NMB at the solved price: {}",
        nmb.value
    );
}
