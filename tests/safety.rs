//! Data safety, as a user meets it: scenarios, life tables, notes and earlier results kept
//! in the same folders. No command deletes or overwrites what obasim did not write, two
//! processes never write the same output, damaged inputs are refused, and a request that
//! cannot be met is refused before anything is allocated or written.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A user's folder: the example scenario `s.toml`, its life table in `data/`, and notes.
fn user_folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    std::fs::create_dir(root.join("data")).unwrap();
    std::fs::write(
        root.join("data/lifetable_usa_2015_mx.csv"),
        common::us_life_table(),
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"),
        root.join("s.toml"),
    )
    .unwrap();
    std::fs::write(root.join("notes.txt"), "my notes").unwrap();
    (tmp, root)
}

/// Runs obasim in `dir` with `args`.
fn obasim_in(dir: &Path, args: &[&str]) -> Output {
    common::obasim()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit code 2 and a message containing every one of `words`.
fn refused(o: &Output, words: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    for w in words {
        assert!(e.contains(w), "`{w}` not in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    v.sort();
    v
}

const SMALL: [&str; 5] = ["--patients", "2000", "--quiet", "--no-plots", "--force"];

#[test]
fn force_never_deletes_what_obasim_did_not_write() {
    let (_tmp, root) = user_folder();
    let before = snapshot(&root);
    let run = |out: &str| {
        let mut a = vec!["run", "s.toml", "--out", out];
        a.extend(SMALL);
        obasim_in(&root, &a)
    };
    refused(&run("."), &["working directory", "Nothing was deleted"]);
    refused(&run(".."), &["holds the working directory"]);
    refused(&run("data"), &["data/lifetable_usa_2015_mx.csv", "reads"]);
    let mut sweep = vec!["sweep", "s.toml", "--set", "therapy.list_price=1e6,2e6"];
    sweep.extend(["--out", "."]);
    sweep.extend(SMALL);
    refused(&obasim_in(&root, &sweep), &["working directory"]);
    assert_eq!(snapshot(&root), before, "a file changed");
    // Shards, and merges over them.
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = format!("s{i}");
        let o = obasim_in(
            &root,
            &[
                "run",
                "s.toml",
                "--patients",
                "3000",
                "--quiet",
                "--shard",
                &shard,
                "--out",
                &out,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let shard0 = snapshot(&root.join("s0"));
    let merge = |out: &str| {
        obasim_in(
            &root,
            &[
                "merge",
                "s0",
                "s1",
                "s2",
                "--out",
                out,
                "--force",
                "--no-plots",
                "--quiet",
            ],
        )
    };
    refused(&merge("."), &["working directory"]);
    refused(&merge("s0"), &["is `s0`", "reads"]);
    assert_eq!(
        snapshot(&root.join("s0")),
        shard0,
        "the input shard changed"
    );
    // A folder of the user's own inside the output is not deleted either.
    let o = merge("m");
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(root.join("m/my-analysis.R"), "x <- 1").unwrap();
    refused(&merge("m"), &["my-analysis.R", "did not write"]);
    assert!(root.join("m/my-analysis.R").is_file());
    // The notes and data are as they were.
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt")).unwrap(),
        "my notes"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("data/lifetable_usa_2015_mx.csv")).unwrap(),
        common::us_life_table()
    );
}

#[test]
fn an_output_that_is_a_file_or_a_link_is_refused_and_kept() {
    let (_tmp, root) = user_folder();
    for force in [false, true] {
        let mut a = vec![
            "run",
            "s.toml",
            "--out",
            "notes.txt",
            "--patients",
            "500",
            "--quiet",
        ];
        if force {
            a.push("--force");
        }
        refused(
            &obasim_in(&root, &a),
            &["`notes.txt` is a file, not a directory"],
        );
        assert_eq!(
            std::fs::read_to_string(root.join("notes.txt")).unwrap(),
            "my notes"
        );
    }
    std::os::unix::fs::symlink(root.join("data"), root.join("link")).unwrap();
    refused(
        &obasim_in(
            &root,
            &["run", "s.toml", "--out", "link", "--force", "--quiet"],
        ),
        &["symbolic link"],
    );
    assert!(root.join("data/lifetable_usa_2015_mx.csv").is_file());
}

/// Starts `obasim run` with seed `seed` (and `--out out` if given), without waiting.
fn spawn_run(root: &Path, seed: &str, out: Option<&str>) -> std::process::Child {
    let mut c = common::obasim();
    c.current_dir(root).args([
        "run",
        "s.toml",
        "--patients",
        "400000",
        "--no-plots",
        "--quiet",
        "--seed",
        seed,
    ]);
    if let Some(o) = out {
        c.args(["--out", o]);
    }
    c.stderr(std::process::Stdio::piped()).spawn().unwrap()
}

fn seed_of(dir: &Path) -> u64 {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    m["seed"].as_u64().unwrap()
}

#[test]
fn two_runs_at_once_never_write_the_same_directory() {
    let (_tmp, root) = user_folder();
    // Started together: one writes `out`, the other is refused (while the first holds the
    // output, or after it finished, as a non-empty directory); nothing is silently lost.
    let (a, b) = (
        spawn_run(&root, "11", Some("out")),
        spawn_run(&root, "22", Some("out")),
    );
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let winners: Vec<u64> = [(&a, 11), (&b, 22)]
        .iter()
        .filter(|(o, _)| o.status.success())
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one run writes `out`: {} / {}",
        stderr(&a),
        stderr(&b)
    );
    let loser = if a.status.success() { &b } else { &a };
    let e = stderr(loser);
    assert_eq!(loser.status.code(), Some(2), "{e}");
    assert!(
        e.contains("being written by another obasim process") || e.contains("not empty"),
        "{e}"
    );
    assert_eq!(seed_of(&root.join("out")), winners[0]);
    // Without --out, the second takes the next free name: both results are kept.
    let (a, b) = (spawn_run(&root, "11", None), spawn_run(&root, "22", None));
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    let mut seeds = vec![
        seed_of(&root.join("results/s")),
        seed_of(&root.join("results/s-2")),
    ];
    seeds.sort();
    assert_eq!(seeds, vec![11, 22]);
    let hidden: Vec<_> = std::fs::read_dir(root.join("results"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");
}

/// Writes shard i of 3 of the example into `root/s{i}`.
fn shards(root: &Path) -> Vec<PathBuf> {
    (0..3)
        .map(|i| {
            let out = format!("s{i}");
            let shard = format!("{i}/3");
            let o = obasim_in(
                root,
                &[
                    "run",
                    "s.toml",
                    "--patients",
                    "3000",
                    "--quiet",
                    "--shard",
                    &shard,
                    "--out",
                    &out,
                ],
            );
            assert!(o.status.success(), "{}", stderr(&o));
            root.join(out)
        })
        .collect()
}

fn merge_into(root: &Path, out: &str) -> Output {
    obasim_in(
        root,
        &[
            "merge",
            "s0",
            "s1",
            "s2",
            "--out",
            out,
            "--no-plots",
            "--quiet",
        ],
    )
}

#[test]
fn merge_refuses_damaged_or_edited_shards_naming_them() {
    let (_tmp, root) = user_folder();
    let dirs = shards(&root);
    let file = dirs[1].join("shard.json");
    let pristine = std::fs::read(&file).unwrap();
    // One bit flipped in a number of the partial sums.
    let at = pristine.windows(7).position(|w| w == b"\"parts\"").unwrap();
    let digit = at
        + pristine[at..]
            .iter()
            .position(|b| b.is_ascii_digit() && *b != b'0')
            .unwrap();
    let mut flipped = pristine.clone();
    flipped[digit] ^= 1;
    assert_ne!(flipped, pristine);
    std::fs::write(&file, &flipped).unwrap();
    refused(&merge_into(&root, "m"), &["s1/shard.json", "damaged"]);
    assert!(!root.join("m").exists());
    // The list price edited in every shard's stored scenario text.
    for d in &dirs {
        let p = d.join("shard.json");
        let t = String::from_utf8(std::fs::read(&p).unwrap()).unwrap();
        let t = if d.ends_with("s1") {
            String::from_utf8(pristine.clone()).unwrap()
        } else {
            t
        };
        let edited = t.replace("list_price = 1575000.0", "list_price = 2575000.0");
        assert_ne!(edited, t, "the edit applies");
        std::fs::write(&p, edited).unwrap();
    }
    refused(&merge_into(&root, "m"), &["s0/shard.json", "damaged"]);
    assert!(!root.join("m").exists());
}

#[test]
fn the_stored_scenario_must_match_its_hash_and_old_shards_are_refused() {
    use sha2::Digest;
    let (_tmp, root) = user_folder();
    let dirs = shards(&root);
    // Re-signed after editing the price: the envelope is consistent, the scenario hash not.
    let p = dirs[2].join("shard.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let mut body = v["shard"].clone();
    let text = body["scenario_text"]
        .as_str()
        .unwrap()
        .replace("1575000.0", "2575000.0");
    body["scenario_text"] = serde_json::json!(text);
    let body = body.to_string();
    let digest: String = sha2::Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        &p,
        format!("{{\"obasim_shard\":2,\"sha256\":\"{digest}\",\"shard\":{body}}}"),
    )
    .unwrap();
    refused(
        &merge_into(&root, "m"),
        &["s2/shard.json", "scenario text", "SHA-256"],
    );
    // A format 1 shard (no checksum).
    std::fs::write(&p, v["shard"].to_string()).unwrap();
    refused(&merge_into(&root, "m"), &["s2/shard.json", "format 1"]);
    // Not a regular file.
    refused(
        &obasim_in(&root, &["merge", "s0", "s1", "/dev/zero", "--out", "m"]),
        &["/dev/zero", "not a regular file"],
    );
    assert!(!root.join("m").exists());
}

#[test]
fn requests_that_cannot_be_met_are_refused_before_anything_is_written() {
    let (_tmp, root) = user_folder();
    for allow in [false, true] {
        let mut a = vec![
            "run",
            "s.toml",
            "--patients",
            "9223372036854775807",
            "--out",
            "big",
        ];
        if allow {
            a.push("--allow-large");
        }
        let o = obasim_in(&root, &a);
        refused(&o, &["limit"]);
        if allow {
            assert!(
                stderr(&o).contains("--allow-large or not"),
                "{}",
                stderr(&o)
            );
        }
        let left: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("big"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// The example with its life table cut after age 60 (`max_age = 100` stays).
fn short_table_scenario(root: &Path, extrapolate: bool) -> PathBuf {
    let full = common::us_life_table();
    let short: Vec<&str> = full.lines().take(62).collect();
    assert!(short.last().unwrap().starts_with("2015,60,"));
    std::fs::write(root.join("data/short.csv"), short.join("\n") + "\n").unwrap();
    let text = std::fs::read_to_string(root.join("s.toml")).unwrap();
    let spec = if extrapolate {
        "file = \"data/short.csv\", measure = \"rate\", extrapolate = \"last_rate\""
    } else {
        "file = \"data/short.csv\", measure = \"rate\""
    };
    let edited = text.replace(
        "file = \"data/lifetable_usa_2015_mx.csv\", measure = \"rate\"",
        spec,
    );
    assert_ne!(edited, text);
    let p = root.join(if extrapolate {
        "ext.toml"
    } else {
        "short.toml"
    });
    std::fs::write(&p, edited).unwrap();
    p
}

#[test]
fn a_life_table_that_ends_too_early_is_an_error_unless_extrapolation_is_asked_for() {
    let (_tmp, root) = user_folder();
    let short = short_table_scenario(&root, false);
    for cmd in ["validate", "run"] {
        let o = obasim_in(
            &root,
            &[cmd, short.to_str().unwrap(), "--patients", "100"]
                [..if cmd == "run" { 4 } else { 2 }],
        );
        refused(
            &o,
            &[
                "short.toml:42:",
                "population.life_table.file",
                "last row is age 60",
                "reach age 100",
                "max_age",
                "extrapolate = \"last_rate\"",
            ],
        );
    }
    let ext = short_table_scenario(&root, true);
    let o = obasim_in(&root, &["validate", ext.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn data_and_scenario_files_must_be_regular_files() {
    let (_tmp, root) = user_folder();
    let text = std::fs::read_to_string(root.join("s.toml")).unwrap();
    for device in ["/dev/zero", "/dev/urandom"] {
        let edited = text.replace("data/lifetable_usa_2015_mx.csv", device);
        std::fs::write(root.join("dev.toml"), edited).unwrap();
        // A watchdog: these used to hang.
        let mut child = common::obasim()
            .current_dir(&root)
            .args(["validate", "dev.toml"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed().as_secs() > 60 {
                child.kill().unwrap();
                panic!("validate with a life table at {device} did not finish");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut e = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut e).unwrap();
        assert_eq!(status.code(), Some(2), "{e}");
        assert!(
            e.contains("population.life_table.file") && e.contains("not a regular file"),
            "{e}"
        );
    }
    refused(
        &obasim_in(&root, &["validate", "/dev/zero"]),
        &["/dev/zero", "not a regular file"],
    );
}

/// The example up to `before`.
fn example_head(before: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"),
    )
    .unwrap();
    text[..text.find(before).unwrap()].to_string()
}

/// Seconds to load and check `text` (best of 3), checking the model with `check`.
fn validation_seconds(text: &str, check: impl Fn(&obasim::model::Model)) -> f64 {
    let source = obasim::scenario::Source::from_text(
        "many.toml",
        text,
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")),
    );
    (0..3)
        .map(|_| {
            let t = std::time::Instant::now();
            let (_, m) = obasim::model::build::load(&source).expect("valid");
            check(&m);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The example with `n` upfront contracts.
fn many_contracts(n: usize) -> String {
    let contracts: String = (0..n)
        .map(|k| format!("\n[[contracts]]\nname = \"c{k}\"\ntype = \"upfront\"\n"))
        .collect();
    example_head("[[contracts]]") + &contracts
}

/// A therapy arm of `n` states in a chain (`n - 1` transitions), and `outcomes` outcomes
/// on its first state.
fn many_states(n: usize, outcomes: usize) -> String {
    let mut t = example_head("# --- Therapy arm");
    t += "[[arms]]\nname = \"beti-cel\"\ndeath_state = \"dead\"\n";
    for k in 0..n {
        let initial = if k == 0 { "initial = 1.0\n" } else { "" };
        t += &format!("[[arms.states]]\nname = \"s{k}\"\n{initial}cost = 1.0\nutility = 0.9\n");
    }
    t += "[[arms.states]]\nname = \"dead\"\n";
    for k in 1..n {
        t += &format!(
            "[[arms.transitions]]\nfrom = \"s{}\"\nto = \"s{k}\"\ntime = {{ family = \"exponential\", rate = 0.1 }}\n",
            k - 1
        );
    }
    t += "[[arms]]\nname = \"standard_care\"\ndeath_state = \"dead\"\n[[arms.states]]\nname = \"alive\"\ninitial = 1.0\n[[arms.states]]\nname = \"dead\"\n";
    for k in 0..outcomes {
        t += &format!("[[outcomes]]\nname = \"o{k}\"\nkind = \"in_state\"\nstates = [\"s0\"]\n");
    }
    t + "[[contracts]]\nname = \"upfront\"\ntype = \"upfront\"\n"
}

#[test]
fn validation_time_grows_linearly_with_contracts_states_transitions_and_outcomes() {
    // Linear: a ratio of about 10 for 10 times the size (a loaded machine's noise allows
    // some slack); quadratic: about 100.
    let ratio = |what: &str, small: f64, large: f64| {
        let r = large / small;
        eprintln!("{what}: {small:.3} s, 10x: {large:.3} s ({r:.1}x)");
        assert!(
            r < 30.0,
            "10x the {what} took {r:.1}x the time ({small:.3} s vs {large:.3} s)"
        );
    };
    let contracts =
        |n| validation_seconds(&many_contracts(n), |m| assert_eq!(m.contracts.len(), n));
    ratio("contracts", contracts(4_000), contracts(40_000));
    let states = |n| {
        validation_seconds(&many_states(n, 1), |m| {
            assert_eq!(m.arms[0].states.len(), n + 1)
        })
    };
    ratio("states and transitions", states(3_000), states(30_000));
    let outcomes = |n| validation_seconds(&many_states(3, n), |m| assert_eq!(m.outcomes.len(), n));
    ratio("outcomes", outcomes(4_000), outcomes(40_000));
}

/// A PID that is not running: that of a process that has exited.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn leftovers_of_killed_processes_are_cleaned_or_restored_by_the_next_command() {
    let (_tmp, root) = user_folder();
    let pid = dead_pid();
    // A staging directory of a process killed mid-run (marked as obasim's).
    let stale = root.join(format!(".out.partial-{pid}"));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join(".obasim-staging"), "").unwrap();
    std::fs::write(stale.join("summary.csv"), "half").unwrap();
    // A hidden directory of the user's that only looks like one: kept.
    let theirs = root.join(".out.partial-3999999999");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("precious.txt"), "mine").unwrap();
    let o = obasim_in(
        &root,
        &[
            "run",
            "s.toml",
            "--out",
            "out",
            "--patients",
            "500",
            "--quiet",
            "--no-plots",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stale.exists(),
        "the stale staging directory is still there"
    );
    assert!(theirs.join("precious.txt").is_file());
    std::fs::remove_dir_all(&theirs).unwrap();
    // A replacement interrupted between its two renames (file systems without an atomic
    // exchange): the old results set aside, nothing at `out`. The next command puts them back.
    let before = snapshot(&root.join("out"));
    std::fs::rename(root.join("out"), root.join(format!(".out.old-{pid}"))).unwrap();
    let o = obasim_in(
        &root,
        &[
            "run",
            "s.toml",
            "--out",
            "out",
            "--patients",
            "500",
            "--quiet",
            "--no-plots",
        ],
    );
    refused(&o, &["not empty"]);
    assert_eq!(
        snapshot(&root.join("out")),
        before,
        "the old results were restored"
    );
    assert!(!root.join(format!(".out.old-{pid}")).exists());
}

#[test]
fn one_patient_has_no_standard_deviation_and_threads_are_capped() {
    let (_tmp, root) = user_folder();
    let o = obasim_in(
        &root,
        &[
            "run",
            "s.toml",
            "--out",
            "one",
            "--patients",
            "1",
            "--no-plots",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: 1 patient"), "{}", stderr(&o));
    let summary = std::fs::read_to_string(root.join("one/summary.csv")).unwrap();
    let row = summary
        .lines()
        .find(|l| l.starts_with("beti-cel,upfront,payer_cost,"))
        .unwrap();
    let f: Vec<&str> = row.split(',').collect();
    assert!(f[3].parse::<f64>().unwrap() > 0.0);
    assert_eq!((f[4], f[5]), ("", ""), "mcse and sd must be empty: {row}");
    for (file, col) in [
        ("incremental.csv", 5),
        ("prices.csv", 5),
        ("occupancy.csv", 4),
    ] {
        let mut r = csv::Reader::from_path(root.join("one").join(file)).unwrap();
        let mut rows = 0;
        for rec in r.records() {
            let rec = rec.unwrap();
            rows += 1;
            // The upfront parity price is the list price exactly: its error is 0 by
            // construction, not an estimate.
            let exact =
                file == "prices.csv" && &rec[2] == "upfront_parity_price" && &rec[0] == "upfront";
            assert!(
                rec[col].is_empty() || exact && &rec[col] == "0",
                "{file}: {rec:?}"
            );
        }
        assert!(rows > 0, "{file} has rows");
    }
    let cores = std::thread::available_parallelism().unwrap().get();
    let o = obasim_in(
        &root,
        &[
            "run",
            "s.toml",
            "--out",
            "t",
            "--patients",
            "100",
            "--no-plots",
            "--threads",
            "1000",
        ],
    );
    assert!(o.status.success());
    assert!(
        stderr(&o).contains(&format!("--threads 1000 is more than the {cores} core(s)")),
        "{}",
        stderr(&o)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("t/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["threads"].as_u64().unwrap() as usize, cores);
}

#[test]
fn installment_amounts_and_psa_targets_are_checked() {
    let (_tmp, root) = user_folder();
    let text = std::fs::read_to_string(root.join("s.toml")).unwrap();
    let edited = text.replacen(
        "type = \"installments\"\npayments = 5",
        "type = \"installments\"\namounts = [0.6, 0.6, 0.2, 0.2, 0.2]\npayments = 5",
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(root.join("a.toml"), edited).unwrap();
    let o = obasim_in(&root, &["validate", "a.toml"]);
    refused(
        &o,
        &[
            "a.toml:",
            "contracts[1].amounts",
            "sum to 1.8;",
            "at most 1",
        ],
    );
    // The same target twice in one set, and in two sets.
    for sets in [
        "[[psa.multivariate_normal]]\ntargets = [\"therapy.list_price\", \"therapy.list_price\"]\nmean = [1.0, 1.0]\ncov = [[1.0, 0.0], [0.0, 1.0]]\n",
        "[[psa.multivariate_normal]]\ntargets = [\"therapy.list_price\"]\nmean = [1.0]\ncov = [[1.0]]\n[[psa.dirichlet]]\ntargets = [\"arms[0].states[0].initial\", \"therapy.list_price\"]\nalpha = [1.0, 2.0]\n",
    ] {
        std::fs::write(root.join("p.toml"), format!("{text}\n[psa]\ndraws = 2\n{sets}")).unwrap();
        for cmd in ["validate", "run"] {
            let o = obasim_in(&root, &[cmd, "p.toml"]);
            refused(&o, &["p.toml:", "`therapy.list_price` is drawn twice", "psa.multivariate_normal[0]"]);
        }
    }
}

#[test]
fn plot_and_compare_write_only_where_obasim_wrote() {
    let (_tmp, root) = user_folder();
    // `plot` on a folder that is not obasim's: refused, nothing written.
    std::fs::create_dir(root.join("mine")).unwrap();
    std::fs::write(root.join("mine/summary.csv"), "arm,contract\n").unwrap();
    std::fs::write(root.join("mine/report.html"), "<p>my report</p>").unwrap();
    refused(&obasim_in(&root, &["plot", "mine"]), &["did not write"]);
    assert_eq!(
        std::fs::read_to_string(root.join("mine/report.html")).unwrap(),
        "<p>my report</p>"
    );
    assert!(!root.join("mine/plots").exists());
    // On a run without plots: drawn, and the manifest lists them.
    let o = obasim_in(
        &root,
        &[
            "run",
            "s.toml",
            "--out",
            "r",
            "--patients",
            "500",
            "--quiet",
            "--no-plots",
        ],
    );
    assert!(o.status.success());
    let csv_before = std::fs::read(root.join("r/summary.csv")).unwrap();
    let o = obasim_in(&root, &["plot", "r"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(root.join("r/report.html").is_file() && root.join("r/plots").is_dir());
    assert_eq!(
        std::fs::read(root.join("r/summary.csv")).unwrap(),
        csv_before
    );
    let m = std::fs::read_to_string(root.join("r/manifest.json")).unwrap();
    assert!(
        m.contains("\"plots/\"") && m.contains("\"report.html\""),
        "{m}"
    );
    // Redrawn again: still obasim's (the manifest lists them once).
    assert!(obasim_in(&root, &["plot", "r"]).status.success());
    assert_eq!(
        std::fs::read_to_string(root.join("r/manifest.json"))
            .unwrap()
            .matches("\"plots/\"")
            .count(),
        1
    );
    // `compare --out` and `--plot` over a user's files: refused, even with --force.
    for (flag, file) in [("--out", "notes.txt"), ("--plot", "figure.png")] {
        std::fs::write(root.join(file), "mine").unwrap();
        for force in [false, true] {
            let mut a = vec!["compare", "r", flag, file];
            if force {
                a.push("--force");
            }
            let o = obasim_in(&root, &a);
            refused(&o, &[file]);
            assert_eq!(std::fs::read_to_string(root.join(file)).unwrap(), "mine");
        }
    }
    // Its own files are replaced with --force.
    for (flag, file) in [("--out", "c.csv"), ("--plot", "c.png"), ("--plot", "c.svg")] {
        assert!(obasim_in(&root, &["compare", "r", flag, file])
            .status
            .success());
        refused(
            &obasim_in(&root, &["compare", "r", flag, file]),
            &["--force"],
        );
        let o = obasim_in(&root, &["compare", "r", flag, file, "--force"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
