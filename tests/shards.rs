//! Sharded runs merge into exactly the results of the unsharded run.

mod common;
use std::path::{Path, PathBuf};

fn obasim(args: &[&str], extra: &[&Path]) -> std::process::Output {
    let mut c = common::obasim();
    c.args(args);
    for p in extra {
        c.arg(p);
    }
    c.output().unwrap()
}

fn scenario(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"),
    )
    .unwrap()
    .replace(
        "cost = 40000.0 ",
        "cost = { dist = \"gamma\", mean = 40000, se = 6000 } ",
    )
    .replacen(
        "utility = 0.93",
        "utility = { dist = \"beta\", mean = 0.93, se = 0.02 }",
        1,
    );
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

#[test]
fn three_shards_merge_byte_identical_and_bad_sets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path());
    let common = ["--quiet", "--patients", "3000", "--draws", "5", "--tornado"];
    let full = tmp.path().join("full");
    let mut args = vec!["run"];
    args.extend(common);
    args.push("--out");
    let o = obasim(&args, &[&full, &file]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut shards = Vec::new();
    for i in 0..3 {
        let dir = tmp.path().join(format!("s{i}"));
        let spec = format!("{i}/3");
        let mut args = vec!["run", "--threads", "1", "--shard", &spec];
        args.extend(common);
        args.push("--out");
        let o = obasim(&args, &[&dir, &file]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(dir.join("shard.json").is_file());
        shards.push(dir);
    }
    // Missing shard: refused, naming it.
    let bad = tmp.path().join("bad");
    let o = obasim(&["merge", "--out"], &[&bad, &shards[0], &shards[2]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing: 1/3"));
    assert!(!bad.exists());
    // A shard of another seed: refused.
    let other = tmp.path().join("other");
    let mut args = vec!["run", "--seed", "99", "--shard", "1/3"];
    args.extend(common);
    args.push("--out");
    assert!(obasim(&args, &[&other, &file]).status.success());
    let o = obasim(&["merge", "--out"], &[&bad, &shards[0], &other, &shards[2]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another seed"));
    // A damaged shard file claiming a shard number beyond the set: refused, no panic.
    let damaged = tmp.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for entry in std::fs::read_dir(&shards[1]).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), damaged.join(entry.file_name())).unwrap();
    }
    // An edited shard (its shard number changed) no longer matches its checksum.
    let json = std::fs::read_to_string(damaged.join("shard.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["shard"]["shard"] = serde_json::json!(7);
    std::fs::write(damaged.join("shard.json"), v.to_string()).unwrap();
    let merge_damaged = || {
        obasim(
            &["merge", "--out"],
            &[&bad, &shards[0], &damaged, &shards[2]],
        )
    };
    let o = merge_damaged();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("damaged") && err.contains("damaged/shard.json"),
        "{err}"
    );
    assert!(!bad.exists());
    // Signed again (as a forger would), the shard is still refused: its number is impossible.
    let body = v["shard"].to_string();
    let digest: String = {
        use sha2::Digest;
        sha2::Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    std::fs::write(
        damaged.join("shard.json"),
        format!("{{\"obasim_shard\":2,\"sha256\":\"{digest}\",\"shard\":{body}}}"),
    )
    .unwrap();
    let o = merge_damaged();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard 7 of 3"));
    assert!(!bad.exists());
    // The life table changed after the shards ran: the merge refuses (the scenario text is
    // the same, only the data file differs).
    let table = tmp.path().join("data/lifetable_usa_2015_mx.csv");
    let original = std::fs::read_to_string(&table).unwrap();
    // Female mortality at age 40 doubled.
    let edited = original.replace("\n2015,40,", "\n2015,40,2*");
    let edited = edited
        .lines()
        .map(|l| match l.strip_prefix("2015,40,2*") {
            Some(rest) => {
                let (female, others) = rest.split_once(',').unwrap();
                format!("2015,40,{},{others}", 2.0 * female.parse::<f64>().unwrap())
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(edited.trim_end(), original.trim_end());
    std::fs::write(&table, edited + "\n").unwrap();
    let o = obasim(
        &["merge", "--out"],
        &[&bad, &shards[0], &shards[1], &shards[2]],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("data files"));
    assert!(!bad.exists());
    // A shard run on the changed table does not merge with the others.
    let changed = tmp.path().join("changed");
    let mut args = vec!["run", "--shard", "1/3"];
    args.extend(common);
    args.push("--out");
    assert!(obasim(&args, &[&changed, &file]).status.success());
    let o = obasim(
        &["merge", "--out"],
        &[&bad, &shards[0], &changed, &shards[2]],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other data files"));
    std::fs::write(&table, original).unwrap();
    // The complete set: byte-identical tables.
    let merged = tmp.path().join("merged");
    let o = obasim(
        &["merge", "--quiet", "--out"],
        &[&merged, &shards[2], &shards[0], &shards[1]],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut compared = 0;
    for entry in std::fs::read_dir(&full).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".csv") {
            let a = std::fs::read(full.join(&*name)).unwrap();
            let b = std::fs::read(merged.join(&*name)).unwrap();
            assert!(a == b, "{name} differs after merge");
            compared += 1;
        }
    }
    assert!(compared >= 13, "compared only {compared} files");
}
