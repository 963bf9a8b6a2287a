//! Probabilistic sensitivity analysis: samplers, reproducibility, outputs.

mod common;
use obasim::params::Parameters;
use obasim::scenario::Source;
use std::path::Path;
use std::process::Command;

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

const PARAMS: &str = r#"
a = { dist = "beta", mean = 0.3, se = 0.05 }
b = { dist = "gamma", mean = 40000, se = 8000 }
c = { dist = "lognormal", meanlog = 0.5, sdlog = 0.2 }
d = { dist = "normal", mean = 1.0, sd = 0.5, min = 0.0 }
e = { dist = "triangular", min = 0, mode = 1, max = 4 }
f = 0.0
g = 0.0
h = 0.0
x1 = 0.0
x2 = 0.0
[psa]
[[psa.dirichlet]]
targets = ["f", "g", "h"]
alpha = [2, 3, 5]
[[psa.multivariate_normal]]
targets = ["x1", "x2"]
mean = [0.0, 1.0]
cov = [[1.0, 0.6], [0.6, 4.0]]
scale = "log"
"#;

#[test]
fn sampler_moments_and_correlations() {
    let u = Parameters::of_text(&Source::from_text("p.toml", PARAMS, None)).unwrap();
    let names: Vec<&str> = u
        .columns()
        .iter()
        .map(|&i| u.params[i].name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e", "f", "g", "h", "x1", "x2"]);
    let n = 40_000;
    let draws: Vec<Vec<f64>> = (1..=n).map(|k| u.draw(7, k)).collect();
    let col = |i: usize| draws.iter().map(|d| d[i]).collect::<Vec<_>>();
    // Tolerance: 4 standard errors of the sample mean (and a loose check of the variance).
    let check = |i: usize, mean: f64, var: f64| {
        let (m, v) = mean_var(&col(i));
        assert!(
            (m - mean).abs() < 4.0 * (var / n as f64).sqrt(),
            "param {i}: mean {m} vs {mean}"
        );
        assert!(
            (v / var - 1.0).abs() < 0.05,
            "param {i}: variance {v} vs {var}"
        );
    };
    check(0, 0.3, 0.05f64.powi(2));
    check(1, 40000.0, 8000f64.powi(2));
    let (ml, sl) = (0.5f64, 0.2f64);
    check(
        2,
        (ml + sl * sl / 2.0).exp(),
        ((sl * sl).exp() - 1.0) * (2.0 * ml + sl * sl).exp(),
    );
    // Half-normal-ish: Normal(1, 0.5) truncated at 0 (mean from the closed form).
    let a = -2.0f64;
    let phi = (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let z = 1.0 - obasim::model::special::norm_cdf(a);
    let tmean = 1.0 + 0.5 * phi / z;
    let tvar = 0.25 * (1.0 + a * phi / z - (phi / z).powi(2));
    check(3, tmean, tvar);
    check(4, 5.0 / 3.0, (0.0 + 1.0 + 16.0 - 0.0 - 0.0 - 4.0) / 18.0);
    // Dirichlet(2, 3, 5): means α/10, sums to 1.
    for (i, al) in [(5, 2.0), (6, 3.0), (7, 5.0)] {
        check(i, al / 10.0, al * (10.0 - al) / (100.0 * 11.0));
    }
    assert!(draws
        .iter()
        .all(|d| (d[5] + d[6] + d[7] - 1.0).abs() < 1e-12));
    // Log-scale MVN: correlation of the logs is 0.6 / (1 × 2) = 0.3.
    let l1: Vec<f64> = col(8).iter().map(|x| x.ln()).collect();
    let l2: Vec<f64> = col(9).iter().map(|x| x.ln()).collect();
    let (m1, v1) = mean_var(&l1);
    let (m2, v2) = mean_var(&l2);
    let cov = l1
        .iter()
        .zip(&l2)
        .map(|(a, b)| (a - m1) * (b - m2))
        .sum::<f64>()
        / (n as f64 - 1.0);
    let r = cov / (v1 * v2).sqrt();
    // SE of a correlation ≈ (1 − r²)/√n.
    assert!(
        (r - 0.3).abs() < 4.0 * (1.0 - 0.09) / (n as f64).sqrt(),
        "correlation {r}"
    );
    assert!((m2 - 1.0).abs() < 4.0 * (4.0 / n as f64).sqrt());
    // Base case: stated means, written values for the sets.
    let base = u.base_values();
    assert_eq!(&base[..2], &[0.3, 40000.0]);
}

fn example_with_uncertainty() -> (tempfile::TempDir, std::path::PathBuf) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"),
    )
    .unwrap()
    .replacen(
        "initial = 0.89 ",
        "initial = { dist = \"beta\", mean = 0.89, se = 0.03 } ",
        1,
    )
    .replacen(
        "initial = 0.11 ",
        "initial = { dist = \"beta\", mean = 0.11, se = 0.03 } ",
        1,
    )
    .replacen(
        "time = { family = \"exponential\", rate = 0.01 }",
        "time = { family = \"exponential\", rate = { dist = \"gamma\", mean = 0.01, se = 0.004 } }",
        1,
    )
    .replace(
        "cost = 40000.0 ",
        "cost = { dist = \"gamma\", mean = 40000, se = 6000 } ",
    );
    // The two initial probabilities must sum to 1: use a Dirichlet instead of two betas.
    let text = text
        .replacen("initial = { dist = \"beta\", mean = 0.89, se = 0.03 } ", "initial = 0.89 ", 1)
        .replacen("initial = { dist = \"beta\", mean = 0.11, se = 0.03 } ", "initial = 0.11 ", 1)
        + "\n[psa]\ndraws = 12\n[[psa.dirichlet]]\ntargets = [\"arms[0].states[0].initial\", \"arms[0].states[1].initial\"]\nalpha = [89, 11]\n";
    let (dir, path) = common::write_scenario(&text, "");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/lifetable_usa_2015_mx.csv"),
        common::us_life_table(),
    )
    .unwrap();
    (dir, path)
}

#[test]
fn psa_outputs_are_identical_for_1_and_2_threads() {
    let (dir, path) = example_with_uncertainty();
    let run = |threads: &str| {
        let out = dir.path().join(format!("out{threads}"));
        let o = Command::new(env!("CARGO_BIN_EXE_obasim"))
            .args([
                "run",
                "--quiet",
                "--patients",
                "1500",
                "--tornado",
                "--threads",
                threads,
                "--out",
            ])
            .arg(&out)
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let (a, b) = (run("1"), run("2"));
    for f in [
        "draws.csv",
        "params.csv",
        "ce_plane.csv",
        "ceac.csv",
        "evpi.csv",
        "psa_incremental.csv",
        "tornado.csv",
        "summary.csv",
    ] {
        let x = std::fs::read_to_string(a.join(f)).unwrap();
        assert_eq!(
            x,
            std::fs::read_to_string(b.join(f)).unwrap(),
            "{f} differs"
        );
        assert!(!x.contains("NaN"));
    }
    let params = std::fs::read_to_string(a.join("params.csv")).unwrap();
    assert_eq!(params.lines().count(), 1 + 1 + 12, "header, base, 12 draws");
    let ceac = std::fs::read_to_string(a.join("ceac.csv")).unwrap();
    // At every threshold the probabilities over strategies sum to 1.
    let mut by_wtp = std::collections::BTreeMap::<String, f64>::new();
    for line in ceac.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        *by_wtp.entry(f[0].to_string()).or_default() += f[f.len() - 3].parse::<f64>().unwrap();
    }
    assert!(by_wtp.values().all(|s| (s - 1.0).abs() < 1e-9));
    // The tornado has every uncertain parameter for every contract: the three written in
    // place and both members of the Dirichlet set (the other member rescaled).
    let tornado = std::fs::read_to_string(a.join("tornado.csv")).unwrap();
    assert_eq!(tornado.lines().count(), 1 + 5 * 3);
    assert!(
        tornado.contains("\narms[0].states[0].initial,"),
        "{tornado}"
    );
}

#[test]
fn an_invalid_draw_is_reported_with_exit_2() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"),
    )
    .unwrap()
    .replacen(
        "utility = 0.93",
        "utility = { dist = \"normal\", mean = 0.93, sd = 0.2 }",
        1,
    );
    let (dir, path) = common::write_scenario(&text, "");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/lifetable_usa_2015_mx.csv"),
        common::us_life_table(),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args([
            "run",
            "--quiet",
            "--patients",
            "200",
            "--draws",
            "40",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("PSA draw") && err.contains("utility") && err.contains("<= 1"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}
