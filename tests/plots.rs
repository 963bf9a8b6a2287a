//! Plots and the HTML report, drawn from small real run directories made through the
//! library as `obasim run` makes them.

mod common;

use obasim::model::build::load;
use obasim::output::{self, Manifest};
use obasim::plots::{draw_run, Plot, RunData};
use obasim::report::write_report;
use obasim::scenario::Source;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Simulates `source` with 2000 patients and writes a run directory into a temp dir.
fn run_dir(source: &Source) -> tempfile::TempDir {
    let (_, mut model) = load(source).unwrap_or_else(|e| panic!("scenario: {e}"));
    model.sim.patients = 2000;
    let (results, _) =
        obasim::simulate(&model, Some(2), &|_| {}, &AtomicBool::new(false)).expect("run");
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    output::write_tables(dir, &results).unwrap();
    output::write_scenario_copy(dir, &source.text).unwrap();
    let manifest = Manifest {
        obasim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_name: model.name.clone(),
        scenario_file: source.display_name.clone(),
        scenario_sha256: source.sha256(),
        data_sha256: model.data_sha256.clone(),
        seed: model.sim.seed,
        patients: model.sim.patients,
        draws: 0,
        block_size: obasim::engine::BLOCK_SIZE,
        threads: 2,
        wall_time_seconds: 0.1,
        command_line: vec!["obasim".into(), "run".into()],
        currency: model.currency.clone(),
        price_year: model.price_year,
        files: output::RUN_FILES.iter().map(|s| s.to_string()).collect(),
    };
    output::write_manifest(dir, &manifest).unwrap();
    tmp
}

/// The example with a contract name full of markup, a price in the hundreds of thousands
/// and a comparator name with an ampersand.
fn awkward_source() -> Source {
    let text = Source::example()
        .text
        .replace(
            "name = \"upfront\"",
            "name = \"up<front> & \\\"all\\\" 'now'\"",
        )
        .replace("list_price = 1575000.0", "list_price = 850000.0")
        .replace("\"standard_care\"", "\"standard care & <chelation>\"")
        .replace("name = \"beti-cel-like", "name = \"<b>beti-cel</b>-like");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    Source::from_text("awkward.toml", &text, Some(scenarios))
}

/// Checks that every element opened is closed in order (void elements and `<x/>` aside),
/// skipping comments, the doctype and the contents of `<style>`. Returns the elements seen.
fn check_balanced(doc: &str) -> Vec<String> {
    const VOID: [&str; 8] = ["meta", "br", "hr", "img", "input", "link", "col", "wbr"];
    let mut stack: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").expect("unclosed comment");
            rest = &rest[end + 3..];
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            let end = rest.find('>').expect("unclosed declaration");
            rest = &rest[end + 1..];
            continue;
        }
        // Find the end of the tag, honouring quoted attribute values.
        let bytes = rest.as_bytes();
        let mut j = 1;
        let mut quote: Option<u8> = None;
        while j < bytes.len() {
            match (quote, bytes[j]) {
                (None, b'"') | (None, b'\'') => quote = Some(bytes[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                (None, b'<') => panic!("'<' inside a tag near {:?}", &rest[..j.min(80)]),
                _ => {}
            }
            j += 1;
        }
        assert!(
            j < bytes.len(),
            "unterminated tag near {:?}",
            &rest[..80.min(rest.len())]
        );
        let tag = &rest[1..j];
        rest = &rest[j + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "<{open}> closed by </{name}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "bad tag name in <{tag}>"
        );
        seen.push(name.clone());
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        if name == "style" || name == "script" {
            let close = format!("</{name}>");
            let end = rest.find(&close).expect("unclosed raw-text element");
            rest = &rest[end + close.len()..];
            continue;
        }
        stack.push(name);
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    seen
}

/// Every `src=`/`href=`/`url(` in the document points at a data: URI or a fragment.
fn check_self_contained(doc: &str) {
    for key in ["src=", "href=", "url("] {
        for (i, _) in doc.match_indices(key) {
            let after = doc[i + key.len()..].trim_start_matches(['"', '\'', ' ']);
            assert!(
                after.starts_with("data:") || after.starts_with('#'),
                "external resource: {}",
                &doc[i..(i + 80).min(doc.len())]
            );
        }
    }
    assert!(!doc.contains("@import"), "CSS import");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks the plots of `dir` (`expect`, in report order) and its report; returns the
/// report. With `files`, through `draw_run` and the PNG and SVG files it writes (PNG
/// decoding is slow in unoptimised builds, so one test does this); else the SVGs in memory.
fn draw_and_check(dir: &Path, expect: &[Plot], files: bool) -> String {
    let run = RunData::load(dir).unwrap();
    assert_eq!(Plot::for_run(&run), expect);
    if files {
        let mut got = draw_run(dir).unwrap();
        let mut expected: Vec<PathBuf> = Vec::new();
        for plot in expect {
            for ext in ["svg", "png"] {
                expected.push(
                    dir.join("plots")
                        .join(format!("{}.{ext}", plot.file_stem())),
                );
            }
        }
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
    }
    let money = run.money_unit();
    for plot in expect {
        let stem = plot.file_stem();
        let svg = if files {
            common::check_png(&dir.join(format!("plots/{stem}.png")), plot.size(&run));
            read(&dir.join(format!("plots/{stem}.svg")))
        } else {
            obasim::plots::render_svg(*plot, &run).unwrap()
        };
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem}"
        );
        check_balanced(&svg);
        let title = plot.title().replace('\'', "&apos;");
        assert!(svg.contains(&title), "{stem}: no title");
        match plot {
            Plot::Occupancy => {
                assert!(svg.contains("Share of patients"), "{stem}");
                assert!(svg.contains("Years since treatment"), "{stem}");
            }
            Plot::ShareOfPrice => assert!(svg.contains("100%"), "{stem}"),
            _ => assert!(
                svg.contains(&money),
                "{stem}: no currency in the axis labels"
            ),
        }
    }
    let report = write_report(dir).unwrap();
    assert_eq!(report, dir.join("report.html"));
    let html = read(&report);
    assert!(html.starts_with("<!DOCTYPE html>"));
    let elements = check_balanced(&html);
    for once in ["html", "head", "body", "title"] {
        assert_eq!(
            elements.iter().filter(|e| *e == once).count(),
            1,
            "<{once}>"
        );
    }
    check_self_contained(&html);
    assert_eq!(html.matches("<svg ").count(), expect.len());
    for plot in expect {
        assert!(html.contains(&format!("id=\"fig-{}\"", plot.file_stem())));
    }
    for contract in run.contracts() {
        let escaped = contract
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        assert!(
            html.contains(&escaped),
            "contract {contract} not in the report"
        );
    }
    html
}

const CORE: [Plot; 5] = [
    Plot::CumulativePayments,
    Plot::DrugPaidDistribution,
    Plot::ManufacturerNpvDistribution,
    Plot::ShareOfPrice,
    Plot::Occupancy,
];

#[test]
fn example_run_draws_every_plot_and_a_self_contained_report() {
    let tmp = run_dir(&Source::example());
    let dir = tmp.path();
    let html = draw_and_check(dir, &CORE, true);
    // The key results and the CHEERS items are there, with MCSE.
    for text in [
        "Perspective",
        "Time horizon",
        "Discount rates",
        "Comparators",
        "Currency, price date",
        "Payer cost",
        "Manufacturer NPV",
        "ICER",
        "NMB at 100,000",
        "5 annual installments",
        "standard_care",
        "EUR (2020)",
        "± ",
        "Scenario SHA-256",
    ] {
        assert!(html.contains(text), "report lacks {text:?}");
    }
    assert!(html.contains("No probabilistic sensitivity analysis"));
}

#[test]
fn optional_budget_and_psa_files_are_used_when_present() {
    let tmp = run_dir(&Source::example());
    let dir = tmp.path();
    let mut budget = String::from("arm,contract,year,mean,sd,p025,p50,p975\n");
    for (contract, scale) in [("upfront", 1.0), ("5 annual installments", 0.3)] {
        for year in 2025..2035 {
            let mean = if year < 2030 { 15.0e6 * scale } else { 0.5e6 };
            budget.push_str(&format!(
                "beti-cel,{contract},{year},{mean},{},{},{mean},{}\n",
                mean * 0.1,
                mean * 0.8,
                mean * 1.2
            ));
        }
    }
    std::fs::write(dir.join("budget.csv"), budget).unwrap();
    write_psa_files(dir);
    let mut expect = CORE.to_vec();
    expect.extend([
        Plot::Budget,
        Plot::CostEffectivenessPlane,
        Plot::Ceac,
        Plot::Evpi,
        Plot::Tornado,
    ]);
    let html = draw_and_check(dir, &expect, false);
    let run = RunData::load(dir).unwrap();
    let svg = obasim::plots::render_svg(Plot::Budget, &run).unwrap();
    assert!(
        svg.contains("Calendar year") && svg.contains("2030"),
        "year ticks"
    );
    assert!(!svg.contains("2.0k"), "years must not be abbreviated");
    for text in [
        "Uncertain parameters",
        "beti-cel: transfusion_independent: utility",
        "P(cost-effective)",
        "Probabilistic sensitivity analysis: 40 draws",
        "One-way sensitivity analysis",
    ] {
        assert!(html.contains(text), "report lacks {text:?}");
    }
    let tornado = obasim::plots::render_svg(Plot::Tornado, &run).unwrap();
    assert!(tornado.contains("0.9 to 0.96"), "parameter ranges");
}

/// PSA and one-way files in the formats `obasim run --draws K --tornado` writes.
fn write_psa_files(dir: &Path) {
    let contracts = [
        "upfront",
        "5 annual installments",
        "5 installments, 3% interest",
    ];
    let quote = |c: &str| format!("\"{c}\"");
    let mut ce =
        String::from("draw,contract,comparator,inc_cost,inc_qalys,inc_cost_mcse,inc_qalys_mcse\n");
    let mut params =
        String::from("draw,therapy.administration_cost,arms[0].states[0].utility\n0,60000,0.93\n");
    for d in 1..=40 {
        let x = d as f64 / 40.0;
        for (k, c) in contracts.iter().enumerate() {
            ce.push_str(&format!(
                "{d},{},standard_care,{},{},5000,0.08\n",
                quote(c),
                1.0e6 - 9.0e4 * k as f64 + 2.0e5 * (x - 0.5),
                7.0 + 1.5 * (x * 7.0).sin()
            ));
        }
        params.push_str(&format!(
            "{d},{},{}\n",
            50000.0 + 500.0 * d as f64,
            0.9 + x / 20.0
        ));
    }
    let mut ceac = String::from(
        "wtp,strategy,arm,contract,probability_cost_effective,expected_nmb,on_frontier\n",
    );
    let mut evpi = String::from("wtp,evpi_per_patient\n");
    for w in (0..=300_000).step_by(10_000) {
        let p = 1.0 / (1.0 + (-(w as f64 - 120_000.0) / 10_000.0).exp());
        ceac.push_str(&format!(
            "{w},standard_care,standard_care,none,{},0,{}\n",
            1.0 - p,
            u8::from(p < 0.5)
        ));
        for (k, c) in contracts.iter().enumerate() {
            let share = if k == 1 { p } else { 0.0 };
            ceac.push_str(&format!(
                "{w},{},beti-cel,{},{share},0,{}\n",
                quote(&format!("beti-cel / {c}")),
                quote(c),
                u8::from(k == 1 && p >= 0.5)
            ));
        }
        evpi.push_str(&format!("{w},{}\n", 4.0e4 * p * (1.0 - p)));
    }
    let mut tornado = String::from(
        "parameter,contract,output,base_output,low,high,output_low,output_high,swing\n",
    );
    let mut incremental =
        String::from("contract,comparator,metric,wtp,mean,p025,p975,mean_within_draw_mcse,draws\n");
    for c in contracts {
        tornado.push_str(&format!(
            "arms[0].states[0].utility,{},inc_nmb at 100000 vs standard_care,-170000,0.9,0.96,\
             -250000,-100000,150000\n\
             therapy.administration_cost,{},inc_nmb at 100000 vs standard_care,-170000,42000,\
             81000,-150000,-190000,40000\n",
            quote(c),
            quote(c)
        ));
        incremental.push_str(&format!(
            "{q},standard_care,inc_cost,,1000000,900000,1100000,5000,40\n\
             {q},standard_care,inc_qalys,,7.5,6.5,8.5,0.08,40\n\
             {q},standard_care,icer,,133333,,,,40\n\
             {q},standard_care,prob_cost_effective,100000,0.3,,,,40\n",
            q = quote(c)
        ));
    }
    for (file, text) in [
        ("ce_plane.csv", ce),
        ("params.csv", params),
        ("ceac.csv", ceac),
        ("evpi.csv", evpi),
        ("tornado.csv", tornado),
        ("psa_incremental.csv", incremental),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

#[test]
fn markup_in_names_is_escaped_and_axes_follow_the_price_scale() {
    let tmp = run_dir(&awkward_source());
    let dir = tmp.path();
    let html = draw_and_check(dir, &CORE, false);
    assert!(!html.contains("up<front>"), "raw markup in the report");
    assert!(!html.contains("<b>beti-cel"), "raw markup in the report");
    assert!(html.contains("&lt;b&gt;beti-cel&lt;/b&gt;-like"));
    assert!(html.contains("standard care &amp; &lt;chelation&gt;"));
    // A price of 850,000: payments axes in thousands.
    let run = RunData::load(dir).unwrap();
    let svg = obasim::plots::render_svg(Plot::CumulativePayments, &run).unwrap();
    assert!(!svg.contains("up<front>"));
    assert!(svg.contains("up&lt;front&gt;"));
    assert!(
        ["200k", "400k", "600k", "800k"]
            .iter()
            .any(|t| svg.contains(t)),
        "tick labels in thousands"
    );
}
