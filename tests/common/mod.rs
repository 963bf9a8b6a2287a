//! Shared helpers for the integration tests: small scenarios written to a temporary
//! directory, with their own life tables.
#![allow(dead_code)]

use obasim::model::build::load;
use obasim::model::Model;
use obasim::results::Results;
use obasim::scenario::Source;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// A life table with the same rate at every age 0..=110 for both sexes.
pub fn flat_life_table(rate: f64) -> String {
    let mut s = String::from("Age,Female,Male\n");
    for a in 0..=110 {
        s.push_str(&format!("{a},{rate},{rate}\n"));
    }
    s
}

/// The project's real life table (US 2015, m(x)).
pub fn us_life_table() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/lifetable_usa_2015_mx.csv"),
    )
    .expect("the shipped life table")
}

/// Writes `scenario` and `life_table` (as `lt.csv`) into a fresh temp dir; returns the
/// directory guard and the scenario path.
pub fn write_scenario(scenario: &str, life_table: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("lt.csv"), life_table).unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    (dir, path)
}

/// Loads and compiles a scenario file.
pub fn model_of(path: &Path) -> Model {
    let source = Source::from_file(path).expect("readable");
    match load(&source) {
        Ok((_, m)) => m,
        Err(e) => panic!("scenario does not compile:\n{e}"),
    }
}

/// Runs a model on `threads` threads.
pub fn run(model: &Model, threads: usize) -> Results {
    obasim::simulate(model, Some(threads), &|_| {}, &AtomicBool::new(false))
        .expect("run")
        .0
}

/// The header sections shared by the test scenarios; `extra_sim` is appended to
/// [simulation], `population` replaces the default population body.
pub fn header(patients: u64, seed: u64, horizon: f64, rates: (f64, f64, f64)) -> String {
    format!(
        r#"format = 1
[metadata]
name = "test"
currency = "EUR"
price_year = 2024

[simulation]
patients = {patients}
seed = {seed}
horizon = {horizon}
discount = {{ costs = {}, outcomes = {}, manufacturer = {} }}
wtp = [100000]
"#,
        rates.0, rates.1, rates.2
    )
}

/// Mean ± MCSE check: |estimate − truth| <= k·mcse (+ a tiny absolute slack for exact cases).
pub fn assert_within(name: &str, mean: f64, mcse: f64, truth: f64, k: f64) {
    let tol = k * mcse + 1e-9 * truth.abs().max(1.0);
    assert!(
        (mean - truth).abs() <= tol,
        "{name}: estimate {mean} vs truth {truth}: difference {} exceeds {k} MCSE ({mcse})",
        (mean - truth).abs()
    );
}

/// Simpson's rule on [a, b] with `n` (even) intervals.
pub fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let n = if n % 2 == 1 { n + 1 } else { n };
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        let x = a + h * i as f64;
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(x);
    }
    s * h / 3.0
}

/// The `obasim` binary built for these tests, as a command to add arguments to.
pub fn obasim() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_obasim"))
}

/// Checks that `path` is a PNG of `size` SVG pixels drawn at the PNG scale, with text and
/// axes (dark pixels) and coloured data (not one flat colour).
pub fn check_png(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 10_000,
        "{} is only {} bytes",
        path.display(),
        bytes.len()
    );
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut pixels).unwrap();
    let scale = obasim::plots::PNG_SCALE;
    let expected = (
        (size.0 as f64 * scale) as u32,
        (size.1 as f64 * scale) as u32,
    );
    assert_eq!((info.width, info.height), expected, "{}", path.display());
    // Every 5th pixel (unoptimised test builds are slow on millions of pixels).
    let sample: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(3).step_by(5).collect();
    let dark = sample.iter().filter(|p| p.iter().all(|&c| c < 128)).count();
    let coloured = sample
        .iter()
        .filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 60)
        .count();
    assert!(dark > 400, "{}: almost no text or axes", path.display());
    assert!(
        coloured > 400,
        "{}: almost no coloured data",
        path.display()
    );
}

/// Cases per property test: `PROPTEST_CASES` when set (to explore more), else `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
