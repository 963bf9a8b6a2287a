//! Sweeps, solving and comparison.

mod common;
use std::path::Path;
use std::process::Command;

fn example(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/lifetable_usa_2015_mx.csv"),
        common::us_life_table(),
    )
    .unwrap();
    let p = dir.join("s.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/beti-cel-germany.toml"),
        &p,
    )
    .unwrap();
    p
}

fn obasim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn sweep_points_equal_separate_runs_and_do_not_depend_on_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let file = example(tmp.path());
    let f = file.to_str().unwrap();
    let out1 = tmp.path().join("sw1");
    let out2 = tmp.path().join("sw2");
    for (out, threads) in [(&out1, "1"), (&out2, "2")] {
        let o = obasim(&[
            "sweep",
            f,
            "--quiet",
            "--patients",
            "3000",
            "--threads",
            threads,
            "--set",
            "therapy.list_price=1e6,2e6",
            "--set",
            "arms[0].transitions[0].time.rate=0.005:0.02:0.015",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let a = std::fs::read_to_string(out1.join("sweep.csv")).unwrap();
    assert_eq!(a, std::fs::read_to_string(out2.join("sweep.csv")).unwrap());
    // 2 × 2 points; point 3 is (2e6, 0.02). It equals a plain run with those values.
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("list_price = 1575000.0", "list_price = 2e6")
        .replace("rate = 0.01 }", "rate = 0.02 }");
    let single = tmp.path().join("single.toml");
    std::fs::write(&single, edited).unwrap();
    let run = tmp.path().join("run");
    let o = obasim(&[
        "run",
        "--quiet",
        "--no-plots",
        "--patients",
        "3000",
        "--out",
        run.to_str().unwrap(),
        single.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    let mut checked = 0;
    for line in summary.lines().skip(1) {
        let f: Vec<&str> = line.rsplitn(8, ',').collect();
        // f: n, p975, p50, p025, sd, mcse, mean, rest(arm,contract,metric)
        let (mean, head) = (f[6], f[7]);
        let needle = format!("3,2000000,0.02,{head},{mean},");
        assert!(a.contains(&needle), "sweep lacks `{needle}`");
        checked += 1;
    }
    assert!(checked > 20);
}

#[test]
fn solving_the_price_for_zero_nmb_matches_the_value_based_price() {
    let tmp = tempfile::tempdir().unwrap();
    let file = example(tmp.path());
    let f = file.to_str().unwrap();
    let run = tmp.path().join("run");
    assert!(obasim(&[
        "run",
        "--quiet",
        "--no-plots",
        "--patients",
        "4000",
        "--out",
        run.to_str().unwrap(),
        f
    ])
    .status
    .success());
    let prices = std::fs::read_to_string(run.join("prices.csv")).unwrap();
    let line = prices
        .lines()
        .find(|l| l.starts_with("upfront,standard_care,value_based_price,100000,"))
        .unwrap();
    let expected: f64 = line.split(',').nth(4).unwrap().parse().unwrap();
    let o = obasim(&[
        "solve",
        f,
        "--patients",
        "4000",
        "--vary",
        "therapy.list_price",
        "--between",
        "1e5:5e6",
        "--target",
        "inc_nmb=0",
        "--contract",
        "upfront",
        "--comparator",
        "standard_care",
        "--wtp",
        "100000",
        "--tolerance",
        "1e-7",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let got: f64 = stdout
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (got - expected).abs() < 1e-5 * expected,
        "solved {got} vs prices.csv {expected}"
    );
    // Not bracketed: a clear error, exit 2.
    let o = obasim(&[
        "solve",
        f,
        "--patients",
        "500",
        "--vary",
        "therapy.list_price",
        "--between",
        "1e5:2e5",
        "--target",
        "inc_nmb=0",
        "--contract",
        "upfront",
        "--comparator",
        "standard_care",
        "--wtp",
        "100000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not bracketed"));
}

#[test]
fn compare_lists_every_run_and_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let file = example(tmp.path());
    let f = file.to_str().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    assert!(obasim(&[
        "run",
        "--quiet",
        "--no-plots",
        "--patients",
        "1000",
        "--out",
        a.to_str().unwrap(),
        f
    ])
    .status
    .success());
    assert!(obasim(&[
        "run",
        "--quiet",
        "--no-plots",
        "--patients",
        "1000",
        "--seed",
        "5",
        "--out",
        b.to_str().unwrap(),
        f
    ])
    .status
    .success());
    let csv = tmp.path().join("cmp.csv");
    let o = obasim(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(table.lines().count(), 1 + 2 * 4, "{table}");
    let text = std::fs::read_to_string(csv).unwrap();
    assert!(text.contains("5 annual installments") && text.contains("share_of_price_paid"));
    let o = obasim(&["compare", tmp.path().join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}
