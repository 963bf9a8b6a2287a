//! `obasim slurm`: the generated job scripts (without a Slurm: their text, a fake `sbatch`,
//! and the array's tasks run one by one with bash), checked against a single-process run.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The shipped example with two uncertain parameters, and its life table, in `dir`.
fn scenario(dir: &Path) -> PathBuf {
    let text = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"))
        .replace(
            "cost = 40000.0 ",
            "cost = { dist = \"gamma\", mean = 40000, se = 6000 } ",
        )
        .replacen(
            "utility = 0.93",
            "utility = { dist = \"beta\", mean = 0.93, se = 0.02 }",
            1,
        );
    assert!(text.contains("dist = \"gamma\"") && text.contains("dist = \"beta\""));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/lifetable_usa_2015_mx.csv"),
        common::us_life_table(),
    )
    .unwrap();
    let p = dir.join("s.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A directory holding a fake `sbatch` that logs its arguments to `sbatch.log` beside it
/// and prints job ids 101, then 102 (with a cluster name, as `--parsable` may). Only bash
/// builtins: it works with PATH set to its directory alone.
fn fake_sbatch(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("sbatch.log");
    let script = format!(
        "#!/bin/bash\nprintf '%s\\n' \"$*\" >> '{log}'\nmapfile -t lines < '{log}'\nn=${{#lines[@]}}\nif [ \"$n\" -eq 1 ]; then echo 101; else echo \"$((100 + n));cluster\"; fi\n",
        log = log.display()
    );
    let path = bin.join("sbatch");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn scripts_hold_the_array_the_shard_arguments_the_dependency_and_absolute_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path());
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    // Relative scenario and output paths, from the temp dir: the scripts get absolute ones.
    let o = common::obasim()
        .current_dir(tmp.path())
        .args([
            "slurm",
            "s.toml",
            "--shards",
            "5",
            "--out",
            "jobs/run 1",
            "--patients",
            "3000",
            "--seed",
            "7",
            "--draws",
            "2",
            "--tornado",
            "--allow-large",
            "--partition",
            "short",
            "--time",
            "00:30:00",
            "--mem",
            "2G",
            "--cpus-per-task",
            "4",
            "--account",
            "proj-1",
            "--obasim",
            "/opt/obasim/bin/obasim",
        ])
        .output()
        .unwrap();
    ok(&o);
    assert!(file.is_file());
    let dir = root.join("jobs/run 1");
    let dir_q = format!("'{}'", dir.display());
    let shards = read(&dir.join("shards.sbatch"));
    let merge = read(&dir.join("merge.sbatch"));
    let submit = read(&dir.join("submit.sh"));
    for needle in [
        "#!/bin/bash\n",
        "\n#SBATCH --array=0-4\n",
        "\n#SBATCH --partition=short\n",
        "\n#SBATCH --time=00:30:00\n",
        "\n#SBATCH --mem=2G\n",
        "\n#SBATCH --cpus-per-task=4\n",
        "\n#SBATCH --account=proj-1\n",
        &format!(
            "\n#SBATCH --output=\"{}/logs/shard-%a.%A.out\"\n",
            dir.display()
        ),
        "\nOBASIM=/opt/obasim/bin/obasim\n",
        &format!("\nSCENARIO={}\n", root.join("s.toml").display()),
        &format!("\nOUT={dir_q}\n"),
        "exec \"$OBASIM\" run \"$SCENARIO\" --shard \"${SLURM_ARRAY_TASK_ID}/5\" --out \"$OUT/shards/shard-${SLURM_ARRAY_TASK_ID}\" --force --quiet --threads \"${SLURM_CPUS_PER_TASK:-1}\" --patients 3000 --seed 7 --draws 2 --tornado --allow-large\n",
        // The rerun of one failed task, with the script's absolute path.
        &format!(
            "\n#   sbatch --array=3 '{}/shards.sbatch'\n",
            dir.display()
        ),
        &format!("\n#   sbatch '{}/merge.sbatch'\n", dir.display()),
    ] {
        assert!(shards.contains(needle), "no {needle:?} in\n{shards}");
    }
    // Directives come before the first command (sbatch stops reading them there).
    let first_command = shards.find("\nset -euo pipefail").unwrap();
    assert!(shards.rfind("#SBATCH").unwrap() < first_command);
    for needle in [
        "\n#SBATCH --job-name=obasim-s-merge\n",
        "\n#SBATCH --partition=short\n",
        "\n#SBATCH --mem=2G\n",
        &format!(
            "\n#SBATCH --output=\"{}/logs/merge.%j.out\"\n",
            dir.display()
        ),
        &format!("\nOUT={dir_q}\n"),
        "shards=(\"$OUT\"/shards/shard-*)",
        "exec \"$OBASIM\" merge \"${shards[@]}\" --out \"$OUT/results\" --force\n",
    ] {
        assert!(merge.contains(needle), "no {needle:?} in\n{merge}");
    }
    assert!(!merge.contains("--array"));
    for needle in [
        &format!("\nDIR={dir_q}\n"),
        "shards_id=$(sbatch --parsable \"$DIR/shards.sbatch\")",
        "merge_id=$(sbatch --parsable --dependency=afterok:\"$shards_id\" \"$DIR/merge.sbatch\")",
        "echo \"shards job: $shards_id\"",
        "echo \"merge job: $merge_id\"",
    ] {
        assert!(submit.contains(needle), "no {needle:?} in\n{submit}");
    }
    use std::os::unix::fs::PermissionsExt;
    for f in ["shards.sbatch", "merge.sbatch", "submit.sh"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert!(mode & 0o100 != 0, "{f} is not executable");
        let syntax = Command::new("bash")
            .arg("-n")
            .arg(dir.join(f))
            .output()
            .unwrap();
        ok(&syntax);
    }
    assert!(dir.join("shards").is_dir() && dir.join("logs").is_dir());

    // Default binary: this executable's absolute path; without options, no resource lines.
    let o = common::obasim()
        .current_dir(tmp.path())
        .args(["slurm", "s.toml", "--shards", "2", "--out", "plain"])
        .output()
        .unwrap();
    ok(&o);
    let plain = read(&root.join("plain/shards.sbatch"));
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_obasim")).unwrap();
    assert!(
        plain.contains(&format!("\nOBASIM={}\n", exe.display())),
        "{plain}"
    );
    assert!(plain.contains("\n#SBATCH --array=0-1\n"));
    for absent in [
        "--partition",
        "--mem",
        "--time=",
        "--account",
        "--cpus-per-task",
    ] {
        assert!(!plain.contains(absent), "{absent} in\n{plain}");
    }
    assert!(plain.contains("--threads \"${SLURM_CPUS_PER_TASK:-1}\"\n"));
}

#[test]
fn bad_input_is_refused_before_anything_is_written_or_submitted() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path());
    // A broken scenario: exit 2 with the scenario error; nothing written.
    let broken = tmp.path().join("broken.toml");
    std::fs::write(
        &broken,
        read(&file).replace("list_price = ", "list_prize = "),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = common::obasim()
        .arg("slurm")
        .arg(&broken)
        .args(["--shards", "4", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("list_prize"),
        "{err}"
    );
    assert!(!out.exists());
    // Even with --submit (and a sbatch at hand): nothing is submitted.
    let fake = fake_sbatch(tmp.path());
    let o = common::obasim()
        .env("PATH", &fake)
        .arg("slurm")
        .arg(&broken)
        .args(["--shards", "4", "--submit", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!tmp.path().join("sbatch.log").exists());
    assert!(!out.exists());
    // A missing file, zero shards, a bad option value: exit 2.
    for args in [
        vec!["slurm", "missing.toml", "--shards", "2", "--out"],
        vec!["slurm", "s.toml", "--shards", "0", "--out"],
        vec!["slurm", "s.toml", "--shards", "2", "--mem", "2 G", "--out"],
    ] {
        let o = common::obasim()
            .current_dir(tmp.path())
            .args(&args)
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!out.exists());
    }
    // Too few patients for the scenario's cohorts: refused as `run` would refuse each shard.
    let cohorts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hemgenix-denmark.toml");
    let o = common::obasim()
        .arg("slurm")
        .arg(&cohorts)
        .args(["--shards", "2", "--patients", "20", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("[cohort]"));
    assert!(!out.exists());
    // A non-empty --out: refused without --force, replaced with it.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let run = |force: bool| {
        let mut c = common::obasim();
        c.arg("slurm").arg(&file).args(["--shards", "2", "--out"]);
        c.arg(&out);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let o = run(false);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert!(out.join("keep.txt").is_file() && !out.join("shards.sbatch").exists());
    // --force replaces only obasim's own directories: the user's file stays.
    let o = run(true);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("keep.txt") && err.contains("did not write"),
        "{err}"
    );
    assert!(out.join("keep.txt").is_file() && !out.join("shards.sbatch").exists());
    // A directory obasim slurm wrote (with logs and shards since) is replaced.
    std::fs::remove_file(out.join("keep.txt")).unwrap();
    ok(&run(false));
    std::fs::write(out.join("logs/shard-0.123.out"), "log").unwrap();
    ok(&run(true));
    assert!(out.join("shards.sbatch").is_file() && !out.join("logs/shard-0.123.out").exists());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["kind"], "slurm");
}

#[test]
fn submit_calls_sbatch_for_the_array_then_the_merge_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path());
    let out = tmp.path().join("jobs");
    // No sbatch on PATH: exit 1, a clear message, nothing written.
    let empty = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let o = common::obasim()
        .env("PATH", &empty)
        .arg("slurm")
        .arg(&file)
        .args(["--shards", "3", "--submit", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sbatch") && err.contains("PATH"), "{err}");
    assert!(!out.exists());
    // A fake sbatch: the array first, then the merge depending on its id.
    let bin = fake_sbatch(tmp.path());
    let o = common::obasim()
        .env("PATH", &bin)
        .arg("slurm")
        .arg(&file)
        .args(["--shards", "3", "--submit", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("shards job: 101\n"), "{stdout}");
    assert!(stdout.contains("merge job: 102\n"), "{stdout}");
    let dir = std::fs::canonicalize(&out).unwrap();
    let expected = format!(
        "--parsable {d}/shards.sbatch\n--parsable --dependency=afterok:101 {d}/merge.sbatch\n",
        d = dir.display()
    );
    let log = tmp.path().join("sbatch.log");
    assert_eq!(read(&log), expected);
    // submit.sh does the same.
    std::fs::remove_file(&log).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let o = Command::new("bash")
        .env("PATH", path)
        .arg(dir.join("submit.sh"))
        .output()
        .unwrap();
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("shards job: 101\n"), "{stdout}");
    assert!(stdout.contains("merge job: 102\n"), "{stdout}");
    assert_eq!(read(&log), expected);
}

#[test]
fn the_array_tasks_run_by_hand_merge_into_the_single_process_results() {
    let tmp = tempfile::tempdir().unwrap();
    // Spaces and a quote in every path.
    let base = tmp.path().join("a dir's name");
    let file = scenario(&base);
    let jobs = base.join("slurm jobs");
    let options = [
        "--patients",
        "3000",
        "--draws",
        "3",
        "--tornado",
        "--seed",
        "5",
    ];
    let o = common::obasim()
        .arg("slurm")
        .arg(&file)
        .args(["--shards", "3", "--out"])
        .arg(&jobs)
        .args(options)
        .output()
        .unwrap();
    ok(&o);
    // sbatch directives are comments to bash: run each task as Slurm would.
    for i in 0..3 {
        let o = Command::new("bash")
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .env_remove("SLURM_CPUS_PER_TASK")
            .arg(jobs.join("shards.sbatch"))
            .output()
            .unwrap();
        ok(&o);
        assert!(jobs.join(format!("shards/shard-{i}/shard.json")).is_file());
    }
    // Without a task id, the script refuses to run.
    let o = Command::new("bash")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .arg(jobs.join("shards.sbatch"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("SLURM_ARRAY_TASK_ID"));
    let o = Command::new("bash")
        .arg(jobs.join("merge.sbatch"))
        .output()
        .unwrap();
    ok(&o);
    let single = base.join("single");
    let o = common::obasim()
        .arg("run")
        .arg(&file)
        .args(options)
        .args(["--quiet", "--out"])
        .arg(&single)
        .output()
        .unwrap();
    ok(&o);
    let merged = jobs.join("results");
    let mut compared = 0;
    for entry in std::fs::read_dir(&single).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".csv") {
            let a = std::fs::read(single.join(&name)).unwrap();
            let b = std::fs::read(merged.join(&name))
                .unwrap_or_else(|e| panic!("{name} missing from the merge: {e}"));
            assert!(
                a == b,
                "{name} differs between the merge and the single run"
            );
            compared += 1;
        }
    }
    assert!(compared >= 13, "compared only {compared} files");
    for name in ["tornado.csv", "draws.csv", "ceac.csv"] {
        assert!(merged.join(name).is_file(), "no {name}");
    }
}
