//! Crash safety: `run`, `sweep` and `merge`, replacing earlier results with `--force`, are
//! killed with SIGKILL at many instants of their work (simulation, writing, flushing, the
//! exchange). After every kill the output directory holds either the earlier results or
//! the new ones, complete, byte for byte; nothing else that looks like results appears; and
//! the next command cleans up what the killed one left.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Kills per command.
const KILLS: u32 = 50;

/// Every file under `dir`, relative path → content; `manifest.json` without the fields
/// that differ between two runs of the same command (wall time, threads, command line).
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let mut bytes = std::fs::read(&p).unwrap();
            if rel == Path::new("manifest.json") {
                let mut m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                for k in ["wall_time_seconds", "threads", "command_line"] {
                    m.as_object_mut().unwrap().remove(k);
                }
                bytes = m.to_string().into_bytes();
            }
            if rel == Path::new("report.html") {
                let text = String::from_utf8(bytes).unwrap();
                bytes = text
                    .lines()
                    .filter(|l| {
                        !l.contains("<th>Wall time</th>") && !l.contains("<th>Command line</th>")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes();
            }
            v.push((rel, bytes));
        }
    }
    v.sort();
    v
}

/// The first file in which two directory contents differ, if any.
fn first_difference(a: &[(PathBuf, Vec<u8>)], b: &[(PathBuf, Vec<u8>)]) -> Option<String> {
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    if names(a) != names(b) {
        return Some(format!("files {:?} vs {:?}", names(a), names(b)));
    }
    a.iter()
        .zip(b)
        .find(|(x, y)| x.1 != y.1)
        .map(|(x, _)| x.0.display().to_string())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A folder with the example scenario and its data.
fn folder() -> (tempfile::TempDir, PathBuf) {
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
    (tmp, root)
}

fn obasim(root: &Path, args: &[String]) -> Command {
    let mut c = common::obasim();
    c.current_dir(root).args(args);
    c
}

fn ok(root: &Path, args: &[String]) {
    let o = obasim(root, args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Entries of `root` whose names do not start with a dot.
fn visible(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Kills `new` (a command writing `root/out` with --force) after `kills` delays spread
/// over its duration; `old` are the contents of `out` before. Returns how many kills left
/// the old and the new results.
fn kill_repeatedly(root: &Path, new: &[String], kills: u32) -> (u32, u32) {
    let out = root.join("out");
    let old = contents(&out);
    let old_copy = root.join(".old-copy-for-the-test");
    copy_tree(&out, &old_copy);
    // The new results, run to completion elsewhere.
    let reference: Vec<String> = new
        .iter()
        .map(|a| {
            if a == "out" {
                "reference".to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let started = Instant::now();
    ok(root, &reference);
    let duration = started.elapsed();
    let fresh = contents(&root.join("reference"));
    assert_ne!(
        fresh, old,
        "the test needs new results that differ from the old"
    );
    let entries = visible(root);
    let (mut kept, mut replaced) = (0, 0);
    for k in 0..kills {
        // Up to 1.6 times the reference duration: a loaded machine slows the killed runs.
        let delay = duration.mul_f64(1.6 * (k as f64 + 0.5) / kills as f64);
        let mut child = obasim(root, new)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(
            visible(root),
            entries,
            "kill {k} after {delay:?}: a new entry appeared"
        );
        if !out.exists() {
            // Only where the file system cannot exchange two directories atomically: killed
            // between its two renames, the old results are set aside, complete (the next
            // command writing `out` puts them back: tests/safety.rs).
            let aside: Vec<PathBuf> = std::fs::read_dir(root)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(".out.old-")
                })
                .collect();
            assert_eq!(aside.len(), 1, "kill {k}: `out` is gone and not set aside");
            assert_eq!(
                contents(&aside[0]),
                old,
                "kill {k}: the set-aside results changed"
            );
            std::fs::rename(&aside[0], &out).unwrap();
        }
        let now = contents(&out);
        if now == old {
            kept += 1;
        } else if now == fresh {
            replaced += 1;
            std::fs::remove_dir_all(&out).unwrap();
            copy_tree(&old_copy, &out);
        } else {
            panic!(
                "kill {k} after {delay:?}: `out` holds neither the old nor the new results ({:?} against the old, {:?} against the new)",
                first_difference(&now, &old),
                first_difference(&now, &fresh)
            );
        }
    }
    // Run to completion: the leftovers of the killed processes are gone.
    ok(root, new);
    assert_eq!(first_difference(&contents(&out), &fresh), None);
    let left: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out."))
        .collect();
    let detail: Vec<String> = left
        .iter()
        .map(|n| {
            let entries: Vec<String> = std::fs::read_dir(root.join(n))
                .map(|d| {
                    d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            format!("{n}: {entries:?}")
        })
        .collect();
    assert!(left.is_empty(), "{}: left behind: {detail:?}", new[0]);
    std::fs::remove_dir_all(&old_copy).unwrap();
    std::fs::remove_dir_all(root.join("reference")).unwrap();
    eprintln!(
        "{}: {duration:?}; {kept} kills kept the old results, {replaced} left the new",
        new[0]
    );
    (kept, replaced)
}

#[test]
fn run_sweep_and_merge_killed_at_any_instant_leave_old_or_new_results_complete() {
    let (_tmp, root) = folder();
    // run
    ok(
        &root,
        &strings(&[
            "run",
            "s.toml",
            "--out",
            "out",
            "--patients",
            "150000",
            "--quiet",
            "--no-plots",
            "--seed",
            "1",
        ]),
    );
    let new = strings(&[
        "run",
        "s.toml",
        "--out",
        "out",
        "--force",
        "--patients",
        "150000",
        "--quiet",
        "--no-plots",
        "--seed",
        "2",
    ]);
    let (kept, replaced) = kill_repeatedly(&root, &new, KILLS);
    assert!(
        kept > 0 && replaced > 0,
        "run: kept {kept}, replaced {replaced}"
    );
    // run with plots and report (fewer kills: drawing is slow in a test build)
    let new = strings(&[
        "run",
        "s.toml",
        "--out",
        "out",
        "--force",
        "--patients",
        "5000",
        "--quiet",
        "--seed",
        "3",
    ]);
    kill_repeatedly(&root, &new, 8);
    // sweep
    std::fs::remove_dir_all(root.join("out")).unwrap();
    let sweep = |seed: &str, force: bool| {
        let mut a = strings(&[
            "sweep",
            "s.toml",
            "--set",
            "therapy.list_price=1e6,2e6,3e6",
            "--out",
            "out",
            "--patients",
            "40000",
            "--quiet",
            "--no-plots",
            "--seed",
            seed,
        ]);
        if force {
            a.push("--force".into());
        }
        a
    };
    ok(&root, &sweep("1", false));
    let (kept, replaced) = kill_repeatedly(&root, &sweep("2", true), KILLS);
    assert!(
        kept > 0 && replaced > 0,
        "sweep: kept {kept}, replaced {replaced}"
    );
    // merge (over earlier results of a run)
    std::fs::remove_dir_all(root.join("out")).unwrap();
    for i in 0..3 {
        ok(
            &root,
            &strings(&[
                "run",
                "s.toml",
                "--patients",
                "100000",
                "--quiet",
                "--shard",
                &format!("{i}/3"),
                "--out",
                &format!("s{i}"),
            ]),
        );
    }
    ok(
        &root,
        &strings(&[
            "run",
            "s.toml",
            "--out",
            "out",
            "--patients",
            "3000",
            "--quiet",
            "--no-plots",
            "--seed",
            "5",
        ]),
    );
    let new = strings(&[
        "merge",
        "s0",
        "s1",
        "s2",
        "--out",
        "out",
        "--force",
        "--quiet",
        "--no-plots",
    ]);
    let (kept, replaced) = kill_repeatedly(&root, &new, KILLS);
    assert!(kept + replaced == KILLS, "merge");
}
