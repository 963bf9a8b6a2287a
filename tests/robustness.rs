//! Bad and extreme inputs: clear errors, never a panic, never a non-finite number, never a
//! half-written result.

mod common;
use obasim::model::build::load;
use obasim::scenario::Source;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

fn example_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"),
    )
    .unwrap()
}

/// A temp dir holding `text` as s.toml with the shipped data next to it.
fn scenario_dir(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/lifetable_usa_2015_mx.csv"),
        common::us_life_table(),
    )
    .unwrap();
    let p = dir.path().join("s.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

fn obasim(args: &[&str], paths: &[&Path]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_obasim"));
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().unwrap()
}

#[test]
fn misspelt_names_get_did_you_mean() {
    let text = example_text()
        .replacen(
            "to = \"transfusion_dependent\"",
            "to = \"transfusion_dependant\"",
            1,
        )
        .replacen("family = \"gompertz\"", "family = \"gompertx\"", 1);
    let (_d, p) = scenario_dir(&text);
    let o = obasim(&["validate"], &[&p]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    // Type errors stop parsing first: the family is reported.
    assert!(err.contains("did you mean `gompertz`?"), "{err}");
    let text = example_text().replacen(
        "to = \"transfusion_dependent\"",
        "to = \"transfusion_dependant\"",
        1,
    );
    let (_d, p) = scenario_dir(&text);
    let err = String::from_utf8_lossy(&obasim(&["validate"], &[&p]).stderr).into_owned();
    assert!(
        err.contains("did you mean `transfusion_dependent`?"),
        "{err}"
    );
    let text = example_text().replace("share_female = 0.5", "share_femal = 0.5");
    let (_d, p) = scenario_dir(&text);
    let err = String::from_utf8_lossy(&obasim(&["validate"], &[&p]).stderr).into_owned();
    assert!(err.contains("did you mean `share_female`?"), "{err}");
}

#[test]
fn unreachable_states_are_warned_not_refused() {
    let text = example_text().replacen(
        "[[arms.states]]\nname = \"dead\"",
        "[[arms.states]]\nname = \"limbo\"\n\n[[arms.states]]\nname = \"dead\"",
        1,
    );
    let (_d, p) = scenario_dir(&text);
    let o = obasim(&["validate"], &[&p]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning:") && err.contains("`limbo`") && err.contains("never be entered"),
        "{err}"
    );
}

#[test]
fn absurd_sizes_are_refused_naming_the_override() {
    let o = Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args(["run", "--quiet", "--patients", "10000000000000"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--allow-large") && err.contains("limit"),
        "{err}"
    );
}

/// Runs a scenario text through the library: Ok(()) for finite results, Err(message) for a
/// clear refusal. Panics propagate (the test fails).
fn run_text(text: &str, patients: u64) -> Result<(), String> {
    let (_d, p) = scenario_dir(text);
    let source = Source::from_file(&p).map_err(|e| e.to_string())?;
    let (_, mut model) = load(&source).map_err(|e| e.to_string())?;
    model.sim.patients = patients;
    if let Some(c) = model.cohort.as_mut() {
        c.fit_to_patients(patients);
    }
    let (r, _) = obasim::simulate(&model, Some(2), &|_| {}, &AtomicBool::new(false))
        .map_err(|e| e.to_string())?;
    r.check_finite()
}

#[test]
fn numerical_edge_cases_give_finite_results_or_a_clear_error() {
    let base = example_text();
    let cases: Vec<(&str, String)> = vec![
        ("rate near 0", base.replace("rate = 0.01 }", "rate = 1e-300 }")),
        ("very large rate", base.replace("rate = 0.01 }", "rate = 1e12 }")),
        (
            "weibull shape near 0",
            base.replace("{ family = \"exponential\", rate = 0.01 }", "{ family = \"weibull\", shape = 1e-3, scale = 5 }"),
        ),
        (
            "cure fraction 0",
            base.replace("{ family = \"exponential\", rate = 0.01 }", "{ family = \"mixture_cure\", cure_fraction = 0.0, uncured = { family = \"weibull\", shape = 2, scale = 10 } }"),
        ),
        (
            "cure fraction 1",
            base.replace("{ family = \"exponential\", rate = 0.01 }", "{ family = \"mixture_cure\", cure_fraction = 1.0, uncured = { family = \"weibull\", shape = 2, scale = 10 } }"),
        ),
        ("horizon of a day", base.replace("horizon = 90.0", "horizon = 0.00274").replace("payments = 5", "payments = 1")),
        ("horizon of 150 years", base.replace("horizon = 90.0", "horizon = 150.0").replace("max_age = 100.0", "max_age = 150.0")),
        ("zero discount rates", base.replace("costs = 0.03, outcomes = 0.03, manufacturer = 0.08", "costs = 0.0, outcomes = 0.0, manufacturer = 0.0")),
        ("price 0", base.replace("list_price = 1575000.0", "list_price = 0.0")),
        ("gompertz shape large", base.replace("shape = 0.05, rate = 0.004 }   #", "shape = 50.0, rate = 0.004 }   #")),
        (
            "lognormal far tail",
            base.replace("{ family = \"exponential\", rate = 0.01 }", "{ family = \"lognormal\", meanlog = 40, sdlog = 0.01 }"),
        ),
        (
            "gamma tiny shape",
            base.replace("{ family = \"exponential\", rate = 0.01 }", "{ family = \"gamma\", shape = 1e-4, rate = 1 }"),
        ),
    ];
    for (name, text) in cases {
        match run_text(&text, 3000) {
            Ok(()) => {}
            Err(e) => assert!(
                e.contains("error") || e.contains("not a finite number"),
                "{name}: unclear failure: {e}"
            ),
        }
    }
}

#[test]
fn sigint_stops_cleanly_and_sigkill_leaves_nothing_that_looks_complete() {
    let tmp = tempfile::tempdir().unwrap();
    for signal in ["-INT", "-TERM", "-KILL"] {
        let out = tmp.path().join(format!("out{signal}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_obasim"))
            .args([
                "run",
                "--quiet",
                "--no-plots",
                "--patients",
                "200000000",
                "--allow-large",
                "--out",
            ])
            .arg(&out)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        let k = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(k.success());
        let status = child.wait().unwrap();
        assert!(
            !out.exists(),
            "{signal}: the output directory exists after the signal"
        );
        if signal != "-KILL" {
            assert_eq!(status.code(), Some(130), "{signal}: exit code");
            let leftovers = std::fs::read_dir(tmp.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
                .count();
            assert_eq!(leftovers, 0, "{signal}: staging directory left behind");
        }
        // Rerunning the same command works.
        let o = Command::new(env!("CARGO_BIN_EXE_obasim"))
            .args([
                "run",
                "--quiet",
                "--no-plots",
                "--patients",
                "2000",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.join("summary.csv").is_file());
    }
}

/// Random edits of the example: deleting a line, duplicating a line, replacing a number by
/// an extreme value, a string by a number, truncating the file.
fn mutate(text: &str, kind: u8, at: usize, value: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        // Truncated to nothing by an earlier edit: nothing left to edit.
        return text.to_string();
    }
    let i = at % lines.len();
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let extreme = [
        "0",
        "-1",
        "1e308",
        "-1e308",
        "nan",
        "inf",
        "1e-320",
        "\"x\"",
        "[]",
        "{}",
        "2.5",
        "999999999999",
    ];
    match kind % 6 {
        0 => {
            v.remove(i);
        }
        1 => {
            let l = v[i].clone();
            v.insert(i, l);
        }
        2 | 3 => {
            if let Some(eq) = v[i].find('=') {
                let key = v[i][..eq].to_string();
                v[i] = format!("{key}= {}", extreme[value % extreme.len()]);
            }
        }
        4 => {
            let cut = (value % text.len().max(1)).min(text.len());
            let mut end = cut;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return text[..end].to_string();
        }
        _ => {
            v[i] = v[i].replace('"', "");
        }
    }
    v.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::proptest_cases(160), ..ProptestConfig::default() })]

    /// The loader, validator and engine never panic on a damaged scenario, and never
    /// produce a non-finite number without saying so.
    #[test]
    fn damaged_scenarios_never_panic(edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..4)) {
        let mut text = example_text();
        for (k, at, v) in edits {
            text = mutate(&text, k, at, v);
        }
        let _ = run_text(&text, 300);
    }
}

/// Inputs that once were, or could be, trouble: each is refused with a located error or runs
/// to finite results. New cases found by the property test go here.
#[test]
fn regression_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        n += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        if let Err(e) = run_text(&text, 300) {
            assert!(!e.is_empty(), "{}: empty error", path.display());
        }
        // Through the binary: exit 0 or 2, never a crash.
        let o = Command::new(env!("CARGO_BIN_EXE_obasim"))
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            matches!(o.status.code(), Some(0) | Some(2)),
            "{}: {:?}",
            path.display(),
            o.status
        );
        assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    }
    assert!(n >= 9, "corpus has {n} files");
}
