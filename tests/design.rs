//! Sweeps, solving and comparison.

mod common;
use std::path::Path;

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
    common::obasim().args(args).output().unwrap()
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
            "--no-plots",
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

    // The plot: grouped bars of one metric per contract and run, PNG or SVG.
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let png = tmp.path().join("cmp.png");
    let o = obasim(&["compare", a, b, "--plot", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 2 runs × (heading + 3 contracts) rows of 40 px under a 190 px frame.
    common::check_png(&png, (1000, 190 + 40 * 8));
    let svg_path = tmp.path().join("cmp.svg");
    let o = obasim(&[
        "compare",
        a,
        b,
        "--plot",
        svg_path.to_str().unwrap(),
        "--metric",
        "payer_cost",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("Payer cost (discounted)") && svg.contains("EUR (2020)"));
    for contract in [
        "upfront",
        "5 annual installments",
        "5 installments, 3% interest",
    ] {
        assert_eq!(text_count(&svg, contract), 2, "{contract}");
    }
    // payer_cost has a comparator arm (grey bars): one per run.
    assert_eq!(text_count(&svg, "standard_care (comparator)"), 2);
    // Bad requests: exit 2 with a message, nothing written.
    for (args, message) in [
        (vec!["--plot", "x.pdf"], "must end in .png or .svg"),
        (
            vec!["--plot", "x.png", "--metric", "nope"],
            "no run has this metric",
        ),
        (vec!["--metric", "qalys"], "--plot"),
    ] {
        let mut all = vec!["compare", a, b];
        all.extend(args);
        let o = obasim(&all);
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(message),
            "{all:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// How many SVG text elements read exactly `text` (plotters writes each on its own line).
fn text_count(svg: &str, text: &str) -> usize {
    svg.lines().filter(|l| l.trim() == text).count()
}

/// The rows of sweep.csv as (values of the parameters, arm, contract, metric, mean, mcse),
/// read independently of the plotting code.
type CsvRow = (Vec<f64>, String, String, String, f64, f64);

fn read_sweep_csv(dir: &Path, n_params: usize) -> Vec<CsvRow> {
    let mut r = csv::Reader::from_path(dir.join("sweep.csv")).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let k = n_params;
            (
                (1..=k).map(|i| rec[i].parse().unwrap()).collect(),
                rec[k + 1].to_string(),
                rec[k + 2].to_string(),
                rec[k + 3].to_string(),
                rec[k + 4].parse().unwrap_or(f64::NAN),
                rec[k + 5].parse().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn stems(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(&format!(".{ext}")).map(str::to_string))
        .filter(|n| n.starts_with("sweep_"))
        .collect();
    v.sort();
    v
}

const CONTRACTS: [&str; 3] = [
    "upfront",
    "5 annual installments",
    "5 installments, 3% interest",
];
const SWEEP_STEMS: [&str; 6] = [
    "sweep_drug_paid",
    "sweep_inc_nmb_100000_vs_standard_care",
    "sweep_inc_nmb_150000_vs_standard_care",
    "sweep_inc_nmb_50000_vs_standard_care",
    "sweep_manufacturer_npv",
    "sweep_payer_cost",
];

#[test]
fn a_sweep_over_one_parameter_draws_a_line_per_contract_from_its_csv() {
    use obasim::plots::sweep::SweepData;
    let tmp = tempfile::tempdir().unwrap();
    let file = example(tmp.path());
    let out = tmp.path().join("sw");
    let o = obasim(&[
        "sweep",
        file.to_str().unwrap(),
        "--patients",
        "600",
        "--set",
        "therapy.list_price=1e6,1.5e6,2e6",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("6 sweep plots"));
    assert_eq!(stems(&out, "png"), SWEEP_STEMS);
    assert_eq!(stems(&out, "svg"), SWEEP_STEMS);
    common::check_png(&out.join("sweep_drug_paid.png"), (1000, 640));

    // The plotted series are the CSV's numbers.
    let data = SweepData::load(&out).unwrap();
    assert_eq!(data.params, ["therapy.list_price"]);
    assert_eq!(data.contracts(), CONTRACTS);
    let csv = read_sweep_csv(&out, 1);
    let metrics = data.metrics();
    assert_eq!(metrics.len(), 6);
    for m in &metrics {
        let series = data.series(m, 0);
        assert_eq!(series.len(), 3, "{}", m.stem);
        for s in &series {
            let expected: Vec<(f64, f64, f64)> = csv
                .iter()
                .filter(|r| r.1 == m.arm && r.2 == s.contract && r.3 == m.metric)
                .map(|r| (r.0[0], r.4, r.5))
                .collect();
            assert_eq!(s.points, expected, "{} {}", m.stem, s.contract);
        }
    }

    // One line per contract in the SVG, in its colour, through the three points; upfront
    // pays the list price, so its points are equally spaced like the prices.
    let svg = std::fs::read_to_string(out.join("sweep_drug_paid.svg")).unwrap();
    assert!(svg.contains("therapy.list_price") && svg.contains("EUR (2020) per patient"));
    let colours = ["#0072B2", "#D55E00", "#009E73"];
    let mut ys = Vec::new();
    for (contract, colour) in CONTRACTS.iter().zip(colours) {
        assert!(text_count(&svg, contract) > 0, "legend: {contract}");
        let lines: Vec<Vec<(f64, f64)>> = svg
            .split("<polyline")
            .skip(1)
            .filter(|p| p.contains(&format!("stroke=\"{colour}\"")))
            .map(|p| {
                let pts = p.split("points=\"").nth(1).unwrap();
                pts[..pts.find('"').unwrap()]
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect();
        // The legend key (2 points) and the data line (3 points).
        let data_lines: Vec<_> = lines.iter().filter(|l| l.len() == 3).collect();
        assert_eq!(data_lines.len(), 1, "{contract}: {lines:?}");
        ys.push(data_lines[0].iter().map(|p| p.1).collect::<Vec<f64>>());
    }
    let up = &ys[0];
    assert!(
        up[0] > up[1] && up[1] > up[2],
        "higher price drawn higher: {up:?}"
    );
    assert!(((up[0] - up[1]) - (up[1] - up[2])).abs() <= 1.0, "{up:?}");
}

#[test]
fn a_sweep_over_two_parameters_draws_heat_maps_and_more_are_skipped_with_a_note() {
    use obasim::plots::sweep::SweepData;
    let tmp = tempfile::tempdir().unwrap();
    let file = example(tmp.path());
    let f = file.to_str().unwrap();
    let out = tmp.path().join("heat");
    let o = obasim(&[
        "sweep",
        f,
        "--quiet",
        "--patients",
        "400",
        "--set",
        "therapy.list_price=1e6,2e6",
        "--set",
        "arms[0].transitions[0].time.rate=0.005,0.02,0.05",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stems(&out, "svg"), SWEEP_STEMS);
    // Three contracts: one row of three panels and the colour bar.
    common::check_png(
        &out.join("sweep_drug_paid.png"),
        (3 * 360 + 150 + 24, 120 + 330),
    );
    let data = SweepData::load(&out).unwrap();
    let csv = read_sweep_csv(&out, 2);
    let drug = data
        .metrics()
        .into_iter()
        .find(|m| m.metric == "drug_paid")
        .unwrap();
    for contract in CONTRACTS {
        let cells = data.cells(&drug, contract, 0, 1);
        assert_eq!((cells.len(), cells[0].len()), (3, 2));
        for r in csv.iter().filter(|r| r.2 == contract && r.3 == "drug_paid") {
            let i = [1e6, 2e6].iter().position(|v| *v == r.0[0]).unwrap();
            let j = [0.005, 0.02, 0.05]
                .iter()
                .position(|v| *v == r.0[1])
                .unwrap();
            assert_eq!(cells[j][i], Some((r.4, r.5)), "{contract}");
        }
    }
    let svg = std::fs::read_to_string(out.join("sweep_drug_paid.svg")).unwrap();
    for contract in CONTRACTS {
        assert!(text_count(&svg, contract) > 0, "panel title {contract}");
    }
    // Upfront pays the list price exactly: its cells read 1.00M and 2.00M with ±0 (with 3%
    // interest discounted at 3% the PV rounds to the price too).
    assert_eq!(text_count(&svg, "1.00M"), 6);
    assert_eq!(text_count(&svg, "2.00M"), 6);
    assert!(text_count(&svg, "±0") >= 6);
    assert!(svg.contains("EUR (2020)"));

    // `obasim plot` redraws a sweep directory.
    std::fs::remove_file(out.join("sweep_payer_cost.png")).unwrap();
    let o = obasim(&["plot", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("sweep_payer_cost.png").is_file());

    // Three varied parameters: the CSV, no plots, and a note saying why.
    let three = tmp.path().join("three");
    let o = obasim(&[
        "sweep",
        f,
        "--patients",
        "200",
        "--set",
        "therapy.list_price=1e6,2e6",
        "--set",
        "arms[0].transitions[0].time.rate=0.005,0.02",
        "--set",
        "contracts[1].interval=1,2",
        "--out",
        three.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(three.join("sweep.csv").is_file());
    assert!(stems(&three, "png").is_empty());
    assert!(stderr.contains("3 parameters vary"), "{stderr}");
    // --no-plots: only the CSV and the scenario.
    let none = tmp.path().join("none");
    let o = obasim(&[
        "sweep",
        f,
        "--quiet",
        "--no-plots",
        "--patients",
        "200",
        "--set",
        "therapy.list_price=1e6,2e6",
        "--out",
        none.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(stems(&none, "png").is_empty() && stems(&none, "svg").is_empty());
}
