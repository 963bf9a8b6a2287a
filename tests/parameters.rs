//! The parameter layer: named parameters shared by every place that uses them, expressions,
//! correlated sets, one draw per parameter per PSA draw, cost categories, arms without
//! background mortality. Expected values come from closed forms and hand calculation.

mod common;
use common::{assert_within, header, obasim};
use obasim::model::Setup;
use obasim::scenario::Source;
use std::path::Path;

/// Two arms `t` and `c`, each alive → dead (exponential rates `rt`, `rc`), no background
/// mortality and no life table; `params` is the `[parameters]` body, `ut`/`uc` the
/// utilities and `ct`/`cc` the costs as written.
fn two_arms(
    params: &str,
    (rt, ut, ct): (&str, &str, &str),
    (rc, uc, cc): (&str, &str, &str),
    extra: &str,
) -> String {
    format!(
        r#"{}
[population]
age = 40.0
share_female = 0.5

[parameters]
{params}

[therapy]
arm = "t"
list_price = 0.0

[[arms]]
name = "t"
death_state = "dead"
background_mortality = false
[[arms.states]]
name = "alive"
initial = 1.0
cost = {ct}
utility = {ut}
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {{ family = "exponential", rate = {rt} }}

[[arms]]
name = "c"
death_state = "dead"
background_mortality = false
[[arms.states]]
name = "alive"
initial = 1.0
cost = {cc}
utility = {uc}
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {{ family = "exponential", rate = {rc} }}
{extra}"#,
        header(4000, 11, 20.0, (0.0, 0.0, 0.0))
    )
}

/// Writes `text` into a fresh directory; runs obasim with `args` and the file; returns the
/// directory guard, the output directory and the process output.
fn run(text: &str, args: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let o = obasim()
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    (dir, out, o)
}

/// (header, rows) of a CSV file.
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (h, rows)
}

/// Per draw, the value of `metric` for (`a`, `b`) in draws.csv: (mean, mcse).
fn per_draw(out: &Path, arm: &str, contract: &str, metric: &str) -> Vec<(f64, f64)> {
    let (_, rows) = csv(&out.join("draws.csv"));
    rows.iter()
        .filter(|r| r[1] == arm && r[2] == contract && r[3] == metric)
        .map(|r| (r[4].parse().unwrap(), r[5].parse().unwrap()))
        .collect()
}

/// A parameter's column of params.csv (draws 1.., without the base row).
fn param_column(out: &Path, name: &str) -> Vec<f64> {
    let (h, rows) = csv(&out.join("params.csv"));
    let i = h
        .iter()
        .position(|x| x == name)
        .unwrap_or_else(|| panic!("no column {name}: {h:?}"));
    rows.iter().skip(1).map(|r| r[i].parse().unwrap()).collect()
}

#[test]
fn a_parameter_shared_by_two_arms_is_drawn_once_in_place_ones_are_not() {
    // Identical arms (same survival: only exits are their own, same rate; same patients
    // through stream 0 is not enough, so both arms die by the same exponential but from
    // their own streams). QALYs differ by Monte Carlo noise only if the utility is shared.
    // With one shared parameter: in every draw, utility is the same in both arms, so the
    // arms' life years give their QALYs with one factor.
    let shared = two_arms(
        "u = { dist = \"beta\", mean = 0.8, se = 0.05 }",
        ("0.1", "\"u\"", "0"),
        ("0.1", "\"u\"", "0"),
        "[psa]\ndraws = 40\n",
    );
    let (_d, out, o) = run(&shared, &["run", "--quiet", "--no-plots"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let u = param_column(&out, "u");
    assert_eq!(u.len(), 40);
    let qt = per_draw(&out, "t", "upfront", "qalys");
    let lt = per_draw(&out, "t", "upfront", "life_years");
    let qc = per_draw(&out, "c", "none", "qalys");
    let lc = per_draw(&out, "c", "none", "life_years");
    for d in 0..40 {
        // Utility is constant within an arm: QALYs = u × life years, exactly.
        assert!(
            (qt[d].0 - u[d] * lt[d].0).abs() <= 1e-9 * qt[d].0,
            "draw {d}: therapy"
        );
        assert!(
            (qc[d].0 - u[d] * lc[d].0).abs() <= 1e-9 * qc[d].0,
            "draw {d}: comparator"
        );
    }
    // The same distribution written in place in each arm: two parameters, drawn apart, and
    // a warning that says how to share them.
    let apart = two_arms(
        "",
        ("0.1", "{ dist = \"beta\", mean = 0.8, se = 0.05 }", "0"),
        ("0.1", "{ dist = \"beta\", mean = 0.8, se = 0.05 }", "0"),
        "[psa]\ndraws = 40\n",
    );
    let (_d, out, o) = run(&apart, &["run", "--no-plots"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning:")
            && err.contains("the same distribution")
            && err.contains("arms[0].states[0].utility")
            && err.contains("arms[1].states[0].utility")
            && err.contains("[parameters]"),
        "{err}"
    );
    let a = param_column(&out, "arms[0].states[0].utility");
    let b = param_column(&out, "arms[1].states[0].utility");
    assert!(a.iter().zip(&b).all(|(x, y)| x != y), "drawn apart");
}

#[test]
fn incremental_psa_interval_with_a_shared_parameter_matches_its_closed_form() {
    // Therapy: rate 0.1, comparator: rate 0.2, horizon 20, no discounting, no background
    // mortality, shared utility u ~ Beta(mean 0.8, se 0.05). Then inc_qalys = u × ΔLY with
    // ΔLY = (1 − e^{−0.1·20})/0.1 − (1 − e^{−0.2·20})/0.2, up to each draw's Monte Carlo
    // error.
    let text = two_arms(
        "u = { dist = \"beta\", mean = 0.8, se = 0.05 }",
        ("0.1", "\"u\"", "0"),
        ("0.2", "\"u\"", "0"),
        "[psa]\ndraws = 200\n",
    );
    let (_d, out, o) = run(&text, &["run", "--quiet", "--no-plots"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dly = (1.0 - (-2.0f64).exp()) / 0.1 - (1.0 - (-4.0f64).exp()) / 0.2;
    let u = param_column(&out, "u");
    let (_, rows) = csv(&out.join("ce_plane.csv"));
    let inc: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r[4].parse().unwrap(), r[6].parse().unwrap()))
        .collect();
    assert_eq!(inc.len(), 200);
    // Each draw: within 4.5 of its own MCSE (200 draws: a false alarm once in ~700 runs;
    // the fixed seed makes it deterministic).
    let worst = inc
        .iter()
        .zip(&u)
        .map(|((q, se), u)| ((q - u * dly) / se).abs())
        .fold(0.0, f64::max);
    assert!(worst < 4.5, "largest |z| {worst}");
    // The interval over draws: psa_incremental's 2.5% and 97.5% points against the same
    // points of u × ΔLY over the drawn u (the draws' Monte Carlo error, ~0.6% of the value,
    // is the slack), and against the Beta distribution's own points, within the sampling
    // error of a 2.5% point from 200 draws.
    let (_, rows) = csv(&out.join("psa_incremental.csv"));
    let r = rows
        .iter()
        .find(|r| r[2] == "inc_qalys")
        .expect("an inc_qalys row");
    let (p025, p975): (f64, f64) = (r[5].parse().unwrap(), r[6].parse().unwrap());
    let mut truth: Vec<f64> = u.iter().map(|u| u * dly).collect();
    truth.sort_by(f64::total_cmp);
    let q = |p: f64| truth[((p * 200.0).ceil() as usize).clamp(1, 200) - 1];
    let slack = 4.0 * inc.iter().map(|x| x.1).fold(0.0, f64::max);
    assert!((p025 - q(0.025)).abs() < slack, "{p025} vs {}", q(0.025));
    assert!((p975 - q(0.975)).abs() < slack, "{p975} vs {}", q(0.975));
    // Beta(α, β) with α + β = m(1 − m)/se² − 1 = 63: its 2.5% and 97.5% points.
    let beta = obasim::params::dist::Dist::Beta {
        alpha: 0.8 * 63.0,
        beta: 0.2 * 63.0,
    };
    let (lo, hi) = (beta.quantile(0.025) * dly, beta.quantile(0.975) * dly);
    // The empirical 2.5% point of 200 draws has SE ≈ √(p(1−p)/n)/f(x): about 0.012 in u.
    let se_u = 0.012 * dly;
    assert!((p025 - lo).abs() < 4.0 * se_u + slack, "{p025} vs {lo}");
    assert!((p975 - hi).abs() < 4.0 * se_u + slack, "{p975} vs {hi}");
}

#[test]
fn expressions_give_the_hand_computed_values_everywhere_they_are_used() {
    let text = two_arms(
        "c_drug = 5000\nc_med = 1200\nb0 = 2.0\nb_new = -0.5\nrate_t = \"exp(-(b0 - b_new))\"\nrate_c = \"exp(-b0)\"\nu = 0.8\nu_t = \"min(u + 0.05, 1)\"",
        ("\"rate_t\"", "\"u_t\"", "\"c_drug + c_med\""),
        ("\"rate_c\"", "\"u\"", "{ drug = \"c_drug / 2\", medical = \"c_med\" }"),
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, &text).unwrap();
    let setup = Setup::new(&Source::from_file(&file).unwrap()).unwrap();
    let m = setup.base().unwrap();
    let (t, c) = (&m.arms[0], &m.arms[1]);
    let rate = |a: &obasim::model::ArmModel| match &a.exits[0][0].family {
        obasim::model::family::Family::Exponential { rate } => *rate,
        other => panic!("{other:?}"),
    };
    assert_eq!(rate(t), (-2.5f64).exp());
    assert_eq!(rate(c), (-2.0f64).exp());
    assert_eq!(t.states[0].cost, 6200.0);
    assert_eq!(t.states[0].utility, 0.8 + 0.05);
    assert_eq!(c.states[0].cost, 3700.0);
    assert_eq!(
        m.cost_categories,
        vec!["drug".to_string(), "medical".to_string()]
    );
    assert_eq!(c.states[0].cost_parts, vec![2500.0, 1200.0]);
    assert_eq!(
        t.states[0].cost_parts,
        vec![0.0, 0.0],
        "a cost written as one number"
    );
    // Writing numbers through parameters changes no result: the same scenario with the
    // values written out gives byte-identical tables.
    let plain = two_arms(
        "",
        (
            &format!("{:?}", (-2.5f64).exp()),
            &format!("{:?}", 0.8 + 0.05),
            "6200.0",
        ),
        (&format!("{:?}", (-2.0f64).exp()), "0.8", "3700.0"),
        "",
    );
    let (_a, out_p, o1) = run(&plain, &["run", "--quiet", "--no-plots"]);
    let (_b, out_e, o2) = run(
        &text.replace(
            "{ drug = \"c_drug / 2\", medical = \"c_med\" }",
            "\"c_drug / 2 + c_med\"",
        ),
        &["run", "--quiet", "--no-plots"],
    );
    assert!(
        o1.status.success() && o2.status.success(),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    for f in [
        "summary.csv",
        "incremental.csv",
        "cashflow.csv",
        "occupancy.csv",
        "quantiles.csv",
    ] {
        assert_eq!(
            std::fs::read(out_p.join(f)).unwrap(),
            std::fs::read(out_e.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// Validates `text`; returns the exit code and stderr.
fn validate(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, text).unwrap();
    let o = obasim().arg("validate").arg(&file).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The line of the first occurrence of `needle` in `text` (1-based) and the column of its
/// `offset`-th character.
fn line_col(text: &str, needle: &str, offset: usize) -> (usize, usize) {
    let at = text.find(needle).expect("the needle is in the text") + offset;
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn bad_expressions_unknown_names_and_cycles_are_located_errors_all_at_once() {
    let text = two_arms(
        "util = 1.0\nb = \"util * (2 +\"\nx = \"y + 1\"\ny = \"z * 2\"\nz = \"x - 1\"",
        ("0.1", "\"utl\"", "0"),
        ("0.1", "0.8", "\"ln(util\""),
        "",
    );
    let (code, err) = validate(&text);
    assert_eq!(code, Some(2), "{err}");
    // Syntax: the end of "util * (2 +" (a value expected at character 12).
    let (l, c) = line_col(&text, "b = \"util * (2 +\"", 4 + 1 + 11);
    assert!(
        err.contains(&format!("s.toml:{l}:{c}: field `parameters.b`")),
        "{err}"
    );
    assert!(err.contains("value was expected"), "{err}");
    // Unknown name with a suggestion, at its own line and column.
    let (l, c) = line_col(&text, "utility = \"utl\"", 11);
    assert!(
        err.contains(&format!(
            "s.toml:{l}:{c}: field `arms[0].states[0].utility`"
        )) && err.contains("unknown parameter `utl`; did you mean `util`?"),
        "{err}"
    );
    // The unclosed call in a cost.
    assert!(
        err.contains("arms[1].states[0].cost") && err.contains("missing `)`"),
        "{err}"
    );
    // The cycle, named.
    assert!(err.contains("in a circle: x → y → z → x"), "{err}");
    assert!(err.contains("4 errors"), "{err}");
}

#[test]
fn correlated_sets_over_named_parameters_accept_semi_definite_covariances() {
    // Duplicated coordinates: b1 and b2 perfectly correlated (a singular covariance that
    // is positive semi-definite): they are equal in every draw.
    let sets = "[psa]\ndraws = 30\n[[psa.multivariate_normal]]\ntargets = [\"b1\", \"b2\", \"b3\"]\nmean = [-2.0, -2.0, 0.0]\ncov = [[0.04, 0.04, 0.0], [0.04, 0.04, 0.0], [0.0, 0.0, 0.01]]\n";
    let text = two_arms(
        "b1 = -2.0\nb2 = -2.0\nb3 = 0.0",
        ("\"exp(b1 + b3)\"", "0.8", "0"),
        ("\"exp(b2)\"", "0.8", "0"),
        sets,
    );
    let (_d, out, o) = run(
        &text,
        &["run", "--quiet", "--no-plots", "--patients", "100"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (b1, b2, b3) = (
        param_column(&out, "b1"),
        param_column(&out, "b2"),
        param_column(&out, "b3"),
    );
    for d in 0..30 {
        assert!(
            (b1[d] - b2[d]).abs() < 1e-12,
            "draw {d}: {} vs {}",
            b1[d],
            b2[d]
        );
    }
    assert!(b3.iter().any(|x| *x != 0.0));
    // Not positive semi-definite: refused, located at the covariance.
    let bad = text.replace(
        "[0.04, 0.04, 0.0], [0.04, 0.04, 0.0]",
        "[0.04, 0.05, 0.0], [0.05, 0.04, 0.0]",
    );
    assert_ne!(bad, text);
    let (code, err) = validate(&bad);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("psa.multivariate_normal[0].cov") && err.contains("positive semi-definite"),
        "{err}"
    );
    // A target drawn by a set must be declared as a plain number.
    let (code, err) =
        validate(&text.replace("b3 = 0.0", "b3 = { dist = \"normal\", mean = 0, sd = 0.1 }"));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("`b3` is drawn by psa.multivariate_normal[0]"),
        "{err}"
    );
}

#[test]
fn one_way_runs_move_a_dirichlet_member_and_rescale_the_others() {
    let text = two_arms(
        "p_a = 0.6\np_b = 0.3\np_c = 0.1\nu = { dist = \"beta\", mean = 0.8, se = 0.05 }",
        ("\"0.1 * p_a + 0.2 * p_b + 0.4 * p_c\"", "\"u\"", "0"),
        ("0.2", "\"u\"", "0"),
        "[psa]\ntornado_output = \"qalys\"\n[[psa.dirichlet]]\ntargets = [\"p_a\", \"p_b\", \"p_c\"]\nalpha = [60, 30, 10]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, &text).unwrap();
    let setup = Setup::new(&Source::from_file(&file).unwrap()).unwrap();
    let p = &setup.params;
    let runs = p.one_way_runs();
    let ia = p.index("p_a").unwrap();
    let low = runs.iter().find(|r| r.param == ia && !r.high).unwrap();
    // Beta(60, 40)'s 2.5% point.
    let beta = obasim::params::dist::Dist::Beta {
        alpha: 60.0,
        beta: 40.0,
    };
    assert!((low.value - beta.quantile(0.025)).abs() < 1e-12);
    let v = p.one_way(low);
    let (ib, ic) = (p.index("p_b").unwrap(), p.index("p_c").unwrap());
    // The others keep their ratio (3:1) and the set sums to 1.
    assert!((v[ib] / v[ic] - 3.0).abs() < 1e-12);
    assert!((v[ia] + v[ib] + v[ic] - 1.0).abs() < 1e-12);
    // Every drawn parameter has its two one-way runs: u, and the three members.
    assert_eq!(runs.len(), 2 * 4);
    let (_d, out, o) = run(
        &text,
        &[
            "run",
            "--quiet",
            "--no-plots",
            "--tornado",
            "--patients",
            "500",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tornado = std::fs::read_to_string(out.join("tornado.csv")).unwrap();
    for name in ["p_a", "p_b", "p_c", "u"] {
        assert!(
            tornado.contains(&format!("\n{name},")),
            "{name} missing:\n{tornado}"
        );
    }
}

#[test]
fn cost_categories_add_up_and_match_their_closed_forms() {
    // Alive → dead at rate λ = 0.1, horizon 20, no discounting: expected years alive
    // (1 − e^{−2})/λ; each category's cost is its rate times that.
    let text = two_arms(
        "c_med = 1200",
        ("0.1", "0.8", "{ drug = 5000, medical = \"c_med\" }"),
        ("0.1", "0.8", "{ medical = 800, nursing = 300 }"),
        "",
    )
    .replace("patients = 4000", "patients = 20000");
    let (_d, out, o) = run(&text, &["run", "--quiet", "--no-plots"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, rows) = csv(&out.join("summary.csv"));
    let get = |arm: &str, metric: &str| -> (f64, f64) {
        let r = rows
            .iter()
            .find(|r| r[0] == arm && r[2] == metric)
            .unwrap_or_else(|| panic!("{arm} {metric}"));
        (r[3].parse().unwrap(), r[4].parse().unwrap())
    };
    let ly = (1.0 - (-2.0f64).exp()) / 0.1;
    for (arm, metric, rate) in [
        ("t", "cost_drug", 5000.0),
        ("t", "cost_medical", 1200.0),
        ("t", "cost_nursing", 0.0),
        ("c", "cost_medical", 800.0),
        ("c", "cost_nursing", 300.0),
        ("c", "cost_drug_undiscounted", 0.0),
    ] {
        let (m, se) = get(arm, metric);
        assert_within(&format!("{arm} {metric}"), m, se, rate * ly, 4.0);
    }
    // The categories sum to the other costs exactly, patient by patient (so the means do).
    for arm in ["t", "c"] {
        let total = get(arm, "other_costs").0;
        let parts: f64 = ["cost_drug", "cost_medical", "cost_nursing"]
            .iter()
            .map(|m| get(arm, m).0)
            .sum();
        assert!(
            (total - parts).abs() < 1e-9 * total,
            "{arm}: {total} vs {parts}"
        );
    }
    // cashflow.csv: rows by category (an added last column), summing to the total rows.
    let (h, rows) = csv(&out.join("cashflow.csv"));
    assert_eq!(h.last().map(String::as_str), Some("category"));
    for y in ["0", "7"] {
        let of = |cat: &str| -> f64 {
            rows.iter()
                .find(|r| r[0] == "t" && r[2] == y && r[11] == cat)
                .map(|r| r[5].parse().unwrap())
                .unwrap()
        };
        assert!(
            (of("") - of("drug") - of("medical") - of("nursing")).abs() < 1e-9 * of(""),
            "year {y}"
        );
    }
}

#[test]
fn no_background_mortality_is_the_same_as_a_life_table_of_zeros() {
    // The same arms, once without background mortality (no life table) and once with a
    // life table of zero rates: the same numbers.
    let none = two_arms("", ("0.1", "0.8", "100"), ("0.2", "0.7", "50"), "");
    let zeros = none
        .replace("background_mortality = false\n", "")
        .replace(
            "share_female = 0.5\n",
            "share_female = 0.5\nlife_table = { file = \"lt.csv\", measure = \"rate\" }\nmax_age = 111\n",
        );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lt.csv"), common::flat_life_table(0.0)).unwrap();
    let mut outs = Vec::new();
    for (name, text) in [("none.toml", &none), ("zeros.toml", &zeros)] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join(format!("{name}.out"));
        let o = obasim()
            .args(["run", "--quiet", "--no-plots", "--out"])
            .arg(&out)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        outs.push(out);
    }
    for f in ["summary.csv", "incremental.csv", "occupancy.csv"] {
        assert_eq!(
            std::fs::read(outs[0].join(f)).unwrap(),
            std::fs::read(outs[1].join(f)).unwrap(),
            "{f}"
        );
    }
    // An arm with background mortality needs a life table.
    let (code, err) = validate(&none.replacen("background_mortality = false\n", "", 1));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("arms[0]") && err.contains("needs a `life_table`"),
        "{err}"
    );
}
