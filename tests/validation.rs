//! Validation against published cycle-based models (scenarios/validation/*.toml, documented
//! in docs/VALIDATION.md). For each model:
//! - the exact cohort calculation (`obasim cohort`) reproduces every published figure to the
//!   precision it was published with;
//! - the microsimulation of the same scenario (`obasim run`) agrees with the cohort result
//!   and with the published figure within 3 Monte Carlo standard errors (plus half a unit of
//!   the published precision).

mod common;
use common::*;
use obasim::markov::cohort;
use obasim::results::Results;
use std::path::{Path, PathBuf};

fn validation(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/validation")
        .join(name)
}

/// The cohort value equals the published one to the published precision (`half_unit` is half
/// the last published digit).
fn assert_published(what: &str, obasim: f64, published: f64, half_unit: f64) {
    assert!(
        (obasim - published).abs() <= half_unit,
        "{what}: obasim {obasim} does not round to the published {published} (±{half_unit})"
    );
}

/// A microsimulation mean (with its MCSE) against the cohort value and the published figure.
fn assert_micro(what: &str, mean: f64, mcse: f64, cohort: f64, published: f64, half_unit: f64) {
    assert!(mcse > 0.0, "{what}: no Monte Carlo error reported");
    assert_within(
        &format!("{what} (microsimulation vs cohort)"),
        mean,
        mcse,
        cohort,
        3.0,
    );
    assert!(
        (mean - published).abs() <= 3.0 * mcse + half_unit,
        "{what}: microsimulation {mean} ± {mcse} vs published {published}"
    );
}

fn summary(r: &Results, arm: &str, contract: &str, metric: &str) -> (f64, f64) {
    let row = r
        .summary_row(arm, contract, metric)
        .unwrap_or_else(|| panic!("{arm}/{contract}/{metric}"));
    (row.mean, row.mcse)
}

fn incremental(r: &Results, comparator: &str, metric: &str) -> (f64, f64) {
    let row = r
        .incremental
        .iter()
        .find(|x| x.comparator == comparator && x.metric == metric)
        .unwrap_or_else(|| panic!("incremental {comparator}/{metric}"));
    (row.value, row.mcse)
}

/// Alarid-Escudero et al., Med Decis Making 2023 (DARTH introductory cSTM tutorial): the
/// time-independent Sick-Sicker model, four strategies.
#[test]
fn sick_sicker_darth_tutorial() {
    let model = model_of(&validation("sick-sicker-darth.toml"));
    let c = cohort(&model);
    // Published: costs to the dollar, QALYs to 3 decimals (table of expected outcomes).
    let published = [
        ("Standard of care", 151_580.0, 20.711),
        ("Strategy A", 284_805.0, 21.499),
        ("Strategy B", 259_100.0, 22.184),
        ("Strategy AB", 378_875.0, 23.137),
    ];
    for (arm, cost, qalys) in published {
        let t = c.arm(arm).unwrap();
        assert_published(&format!("{arm} cost"), t.other_costs, cost, 0.5);
        assert_published(&format!("{arm} QALYs"), t.qalys, qalys, 0.0005);
    }
    // CEA table: increments and ICERs of the frontier SoC → B → AB (A is dominated).
    let (soc, b, ab) = (
        c.arm("Standard of care").unwrap(),
        c.arm("Strategy B").unwrap(),
        c.arm("Strategy AB").unwrap(),
    );
    let a = c.arm("Strategy A").unwrap();
    assert!(
        a.other_costs > b.other_costs && a.qalys < b.qalys,
        "A is dominated by B"
    );
    assert_published(
        "B − SoC cost",
        b.other_costs - soc.other_costs,
        107_521.0,
        0.5,
    );
    assert_published("B − SoC QALYs", b.qalys - soc.qalys, 1.473, 0.0005);
    let icer_b = (b.other_costs - soc.other_costs) / (b.qalys - soc.qalys);
    assert_published("ICER B vs SoC", icer_b, 72_988.0, 0.5);
    assert_published(
        "AB − B cost",
        ab.other_costs - b.other_costs,
        119_775.0,
        0.5,
    );
    assert_published("AB − B QALYs", ab.qalys - b.qalys, 0.952, 0.0005);
    let icer_ab = (ab.other_costs - b.other_costs) / (ab.qalys - b.qalys);
    assert_published("ICER AB vs B", icer_ab, 125_764.0, 0.5);
    // The cohort trace under SoC for cycles 0-5 (table of the trace, 3 decimals).
    let trace = [
        [1.000, 0.000, 0.000, 0.000],
        [0.859, 0.139, 0.000, 0.002],
        [0.792, 0.189, 0.014, 0.005],
        [0.755, 0.206, 0.032, 0.008],
        [0.729, 0.208, 0.052, 0.011],
        [0.707, 0.206, 0.072, 0.015],
    ];
    let soc_trace = &c.arms[0].trace;
    for (k, row) in trace.iter().enumerate() {
        for (s, v) in row.iter().enumerate() {
            assert_published(
                &format!("SoC trace cycle {k} state {s}"),
                soc_trace[k][s],
                *v,
                0.0005,
            );
        }
    }

    // The microsimulation of the same file.
    let r = run(&model, 4);
    for (arm, cost, qalys) in published {
        let contract = if arm == "Strategy AB" {
            "none paid"
        } else {
            "none"
        };
        let t = c.arm(arm).unwrap();
        let (m, e) = summary(&r, arm, contract, "other_costs");
        assert_micro(&format!("{arm} cost"), m, e, t.other_costs, cost, 0.5);
        let (m, e) = summary(&r, arm, contract, "qalys");
        assert_micro(&format!("{arm} QALYs"), m, e, t.qalys, qalys, 0.0005);
        for metric in [
            "life_years",
            "life_years_undiscounted",
            "other_costs_undiscounted",
        ] {
            let v = match metric {
                "life_years" => t.life_years,
                "life_years_undiscounted" => t.life_years_undiscounted,
                _ => t.other_costs_undiscounted,
            };
            let (m, e) = summary(&r, arm, contract, metric);
            assert_within(&format!("{arm} {metric}"), m, e, v, 3.0);
        }
    }
    // Paired increments of AB against B (the therapy arm against a comparator), and the ICER.
    let (m, e) = incremental(&r, "Strategy B", "inc_qalys");
    assert_micro("AB − B QALYs", m, e, ab.qalys - b.qalys, 0.952, 0.0005);
    let (m, e) = incremental(&r, "Strategy B", "inc_cost");
    assert_micro(
        "AB − B cost",
        m,
        e,
        ab.other_costs - b.other_costs,
        119_775.0,
        0.5,
    );
    let (m, e) = incremental(&r, "Strategy B", "icer");
    assert_micro("ICER AB vs B", m, e, icer_ab, 125_764.0, 0.5);
    // Occupancy (yearly grid) against the trace, every cycle and state.
    for (s, name) in ["H", "S1", "S2", "D"].iter().enumerate() {
        for (k, want) in soc_trace.iter().map(|row| row[s]).enumerate() {
            let row = r
                .occupancy
                .iter()
                .find(|o| {
                    o.arm == "Standard of care"
                        && o.state == *name
                        && (o.time - k as f64).abs() < 1e-9
                })
                .unwrap_or_else(|| panic!("occupancy {name} {k}"));
            let tol = 3.0 * row.mcse.max((want * (1.0 - want) / 20_000.0).sqrt()) + 1e-12;
            assert!(
                (row.share - want).abs() <= tol,
                "SoC occupancy of {name} at cycle {k}: {} vs cohort {want}",
                row.share
            );
        }
    }
}

/// Chancellor et al. 1997 as replicated in Briggs, Claxton & Sculpher (2006), exercise 2.5:
/// zidovudine monotherapy against combination therapy with lamivudine for two years.
#[test]
fn hiv_chancellor_briggs() {
    let model = model_of(&validation("hiv-chancellor-briggs.toml"));
    let c = cohort(&model);
    let (mono, comb) = (c.arm("monotherapy").unwrap(), c.arm("combination").unwrap());
    assert_published("monotherapy life years", mono.life_years, 7.991, 0.0005);
    assert_published("monotherapy cost", mono.other_costs, 44_663.0, 0.5);
    assert_published("combination life years", comb.life_years, 8.937, 0.0005);
    assert_published("combination cost", comb.other_costs, 50_602.0, 0.5);
    let icer = (comb.other_costs - mono.other_costs) / (comb.life_years - mono.life_years);
    assert_published("ICER per life year gained", icer, 6_276.0, 0.5);
    // The cohort's own ICER row (obasim cohort) is the same number.
    let inc_cost = c.contract_metric("none paid", "payer_cost").unwrap() - mono.other_costs;
    assert!((inc_cost / (comb.qalys - mono.qalys) - icer).abs() < 1e-9);

    let r = run(&model, 4);
    for (arm, contract, t, ly, cost) in [
        ("monotherapy", "none", mono, 7.991, 44_663.0),
        ("combination", "none paid", comb, 8.937, 50_602.0),
    ] {
        let (m, e) = summary(&r, arm, contract, "life_years");
        assert_micro(&format!("{arm} life years"), m, e, t.life_years, ly, 0.0005);
        let (m, e) = summary(&r, arm, contract, "other_costs");
        assert_micro(&format!("{arm} cost"), m, e, t.other_costs, cost, 0.5);
    }
    let (m, e) = incremental(&r, "monotherapy", "icer");
    assert_micro("ICER", m, e, icer, 6_276.0, 0.5);
}

/// The same model with the half-cycle correction: the published corrected life years.
#[test]
fn hiv_chancellor_briggs_half_cycle() {
    let model = model_of(&validation("hiv-chancellor-briggs-hcc.toml"));
    let c = cohort(&model);
    let (mono, comb) = (c.arm("monotherapy").unwrap(), c.arm("combination").unwrap());
    assert_published(
        "monotherapy life years (HCC)",
        mono.life_years,
        8.475,
        0.0005,
    );
    assert_published("combination life years (HCC)", comb.life_years, 9.42, 0.005);
    let r = run(&model, 4);
    let (m, e) = summary(&r, "monotherapy", "none", "life_years");
    assert_micro(
        "monotherapy life years (HCC)",
        m,
        e,
        mono.life_years,
        8.475,
        0.0005,
    );
    let (m, e) = summary(&r, "combination", "none paid", "life_years");
    assert_micro(
        "combination life years (HCC)",
        m,
        e,
        comb.life_years,
        9.42,
        0.005,
    );
}
