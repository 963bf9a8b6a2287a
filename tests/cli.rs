//! The `obasim` binary as a user runs it.

mod common;
use std::path::Path;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml")
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
}

#[test]
fn shipped_example_runs_end_to_end_and_default_run_works_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    // `obasim run` with no file, from an unrelated directory, uses the embedded example.
    let out = common::obasim()
        .current_dir(tmp.path())
        .args(["run", "--patients", "3000", "--patients-csv", "5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("results written to results/beti-cel-germany"),
        "{stderr}"
    );
    let dir = tmp.path().join("results/beti-cel-germany");
    for f in obasim::output::RUN_FILES
        .iter()
        .chain(&["patients.csv", "patient_payments.csv"])
    {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    let summary = read(&dir, "summary.csv");
    assert!(summary.starts_with("arm,contract,metric,mean,mcse,sd,p025,p50,p975,n\n"));
    for metric in [
        "payer_cost",
        "drug_paid",
        "other_costs",
        "qalys",
        "life_years",
        "manufacturer_npv",
        "share_of_price_paid",
    ] {
        assert!(summary.contains(&format!(",{metric},")), "no {metric}");
    }
    assert!(!summary.contains("NaN") && !summary.contains("inf"));
    let manifest: serde_json::Value = serde_json::from_str(&read(&dir, "manifest.json")).unwrap();
    assert_eq!(manifest["patients"], 3000);
    assert_eq!(manifest["seed"], 20201001);
    assert_eq!(manifest["scenario_sha256"].as_str().unwrap().len(), 64);
    // A second default run does not clobber the first.
    let out = common::obasim()
        .current_dir(tmp.path())
        .args(["run", "--patients", "100", "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(tmp
        .path()
        .join("results/beti-cel-germany-2/summary.csv")
        .is_file());
    // The shipped file and the embedded example are the same scenario.
    let shipped = common::obasim()
        .args(["run", "--patients", "3000", "--quiet", "--out"])
        .arg(tmp.path().join("shipped"))
        .arg(example())
        .output()
        .unwrap();
    assert!(shipped.status.success());
    assert_eq!(summary, read(&tmp.path().join("shipped"), "summary.csv"));
}

#[test]
fn identical_outputs_for_1_2_and_4_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for threads in [1, 2, 4] {
        let dir = tmp.path().join(format!("t{threads}"));
        let out = common::obasim()
            .args([
                "run",
                "--quiet",
                "--no-plots",
                "--patients",
                "5000",
                "--threads",
            ])
            .arg(threads.to_string())
            .arg("--out")
            .arg(&dir)
            .arg(example())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dirs.push(dir);
    }
    for f in [
        "summary.csv",
        "incremental.csv",
        "cashflow.csv",
        "occupancy.csv",
    ] {
        let a = read(&dirs[0], f);
        for d in &dirs[1..] {
            assert!(a == read(d, f), "{f} differs between thread counts");
        }
    }
    // The manifest differs only in threads, wall time and command line.
    let strip = |d: &Path| {
        let mut v: serde_json::Value = serde_json::from_str(&read(d, "manifest.json")).unwrap();
        for k in ["threads", "wall_time_seconds", "command_line"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(strip(&dirs[0]), strip(&dirs[2]));
}

#[test]
fn output_directory_is_refused_unless_forced_and_force_replaces_only_obasim_results() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "x").unwrap();
    let run = |force: bool| {
        let mut c = common::obasim();
        c.args(["run", "--quiet", "--no-plots", "--patients", "50", "--out"])
            .arg(&dir);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--force") && err.contains("not empty"),
        "{err}"
    );
    assert!(dir.join("keep.txt").exists());
    // --force does not delete a file obasim did not write: exit 2, naming it.
    let out = run(true);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keep.txt") && err.contains("did not write"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("keep.txt")).unwrap(), "x");
    assert!(!dir.join("summary.csv").exists());
    // Earlier obasim results are replaced with --force.
    std::fs::remove_file(dir.join("keep.txt")).unwrap();
    assert!(run(false).status.success());
    let first = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let out = run(false);
    assert_eq!(out.status.code(), Some(2), "refused without --force");
    let out = run(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("summary.csv").exists());
    assert_ne!(
        std::fs::read_to_string(dir.join("manifest.json")).unwrap(),
        first
    );
    // No staging, set-aside or lock file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Writes a broken variant of the example next to a copy of its data; returns the stderr and
/// exit code of `obasim validate` and `obasim run`.
fn broken(edit: impl Fn(&str) -> String) -> (String, Option<i32>, Option<i32>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/lifetable_usa_2015_mx.csv"),
        data.join("lifetable_usa_2015_mx.csv"),
    )
    .unwrap();
    let text = edit(&std::fs::read_to_string(example()).unwrap());
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, text).unwrap();
    let v = common::obasim()
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let r = common::obasim()
        .args(["run", "--quiet", "--no-plots", "--out"])
        .arg(tmp.path().join("out"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !tmp.path().join("out").exists(),
        "a failed run left an output directory"
    );
    (
        String::from_utf8_lossy(&v.stderr).into_owned(),
        v.status.code(),
        r.status.code(),
    )
}

#[test]
fn example_validates() {
    let out = common::obasim()
        .arg("validate")
        .arg(example())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn malformed_files_exit_2_naming_file_line_and_field() {
    // (text to replace, replacement, what the message must contain)
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "share_female = 0.5",
            "share_female = 0.5\nshare_male = 0.5",
            vec!["bad.toml:", "unknown field `share_male`", "share_female"],
        ),
        (
            "initial = 0.11",
            "initial = 0.2",
            vec!["bad.toml:", "arms[0].states", "sum to 1.09"],
        ),
        (
            "list_price = 1575000.0",
            "list_price = \"a lot\"",
            vec![
                "bad.toml:46:15:",
                "therapy.list_price",
                "in the expression \"a lot\"",
                "unknown parameter `a`",
            ],
        ),
        (
            "to = \"transfusion_dependent\"",
            "to = \"relapse\"",
            vec![
                "arms[0].transitions[0].to",
                "`relapse` is not a state",
                "transfusion_dependent",
            ],
        ),
        (
            "rate = 0.01 }",
            "rate = -0.01 }",
            vec!["arms[0].transitions[0].time", "rate"],
        ),
        (
            "family = \"exponential\"",
            "family = \"expo\"",
            vec!["bad.toml:", "expo", "exponential", "weibull"],
        ),
        (
            "data/lifetable_usa_2015_mx.csv",
            "data/missing.csv",
            vec!["population.life_table.file", "missing.csv"],
        ),
        (
            "format = 1",
            "format = 7",
            vec!["field `format`", "unsupported format 7"],
        ),
        (
            "payments = 5\n",
            "payments = 500\n",
            vec!["contracts[1].payments", "after the horizon"],
        ),
    ];
    for (i, (old, new, needles)) in cases.into_iter().enumerate() {
        let (stderr, v, r) = broken(|t| {
            assert!(t.contains(old), "case {i}: `{old}` not in the example");
            t.replacen(old, new, 1)
        });
        assert_eq!(
            v,
            Some(2),
            "case {i}: validate exit code; stderr:\n{stderr}"
        );
        assert_eq!(r, Some(2), "case {i}: run exit code");
        for n in needles {
            assert!(stderr.contains(n), "case {i}: `{n}` not in:\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "case {i}: {stderr}");
    }
}

#[test]
fn several_errors_are_reported_together_with_lines() {
    let (stderr, v, _) = broken(|t| {
        t.replace("initial = 0.11", "initial = 0.2")
            .replace("utility = 0.93", "utility = 1.5")
    });
    assert_eq!(v, Some(2));
    assert!(stderr.contains("2 errors"), "{stderr}");
    // utility = 1.5 is on line 52 of the example: the message names its line and column.
    let line = std::fs::read_to_string(example())
        .unwrap()
        .lines()
        .position(|l| l.contains("utility = 0.93"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("bad.toml:{line}:")),
        "line {line} not named:\n{stderr}"
    );
}

#[test]
fn schema_is_json_and_describes_the_format() {
    let out = common::obasim().arg("schema").output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    for key in [
        "simulation",
        "population",
        "arms",
        "contracts",
        "installments",
        "weibull",
    ] {
        assert!(text.contains(key), "schema lacks {key}");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let out = common::obasim()
        .args(["run", "--threads", "zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = common::obasim()
        .args(["run", "--threads", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = common::obasim().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = common::obasim()
        .args(["validate", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));
}

#[test]
fn headline_figures_line_up_whatever_the_contract_names() {
    // The Roctavian scenario's contract names run from 7 to 37 characters.
    let tmp = tempfile::tempdir().unwrap();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/roctavian-us-warranty.toml");
    let out = common::obasim()
        .args(["run", "--patients", "500", "--no-plots", "--out"])
        .arg(tmp.path().join("run"))
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Column (in characters) of each contract's "drug paid" figure.
    let columns: Vec<usize> = stderr
        .lines()
        .filter_map(|l| l.find(" drug paid ").map(|b| l[..b].chars().count()))
        .collect();
    assert_eq!(columns.len(), 6, "{stderr}");
    assert!(columns.iter().all(|&c| c == columns[0]), "{stderr}");
}
