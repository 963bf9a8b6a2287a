//! `obasim validate`, `obasim plot` and `obasim bench`.

use super::{commit, draw, out_failure, print_warnings, worker_threads, Failure};
use crate::model::build::load;
use crate::outdir::StagedDir;
use crate::scenario::Source;
use clap::Args;
use std::path::Path;

/// Options of `obasim bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Reference model: `a` (3-state, life table, 5 contracts), `b` (6-state semi-Markov,
    /// Weibull), `c` (hesim's illness-death model) or `all`.
    #[arg(long, default_value = "all", value_parser = ["a", "b", "c", "d", "all"])]
    pub model: String,
    /// Patients per timed run.
    #[arg(long, default_value_t = 200_000)]
    pub patients: u64,
    /// Timed repetitions of each measurement; the best is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// Threads of the parallel measurement (default: all cores; at most the cores available).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the measurements as JSON (one array of reports) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn bench(args: &BenchArgs) -> Result<(), Failure> {
    if args.patients == 0 {
        return Err(Failure::BadInput(
            "error: --patients must be at least 1".into(),
        ));
    }
    let threads = worker_threads(args.threads, false)?;
    let options = crate::bench::BenchOptions {
        patients: args.patients,
        repeats: args.repeats,
        threads,
    };
    let models: Vec<_> = crate::bench::REFERENCE_MODELS
        .iter()
        .filter(|m| args.model == "all" || m.key == args.model)
        .collect();
    let mut reports = Vec::new();
    for m in models {
        let r = crate::bench::bench_model(m, &options).map_err(Failure::Other)?;
        if !args.json {
            println!("{}", crate::bench::render(&r));
        }
        reports.push(r);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(|e| Failure::Other(e.to_string()))?
        );
    }
    Ok(())
}

pub(super) fn validate(file: &Path) -> Result<(), Failure> {
    let source = Source::from_file(file)?;
    let (_, model) = load(&source)?;
    print_warnings(&model);
    let names = |v: Vec<&str>| v.join(", ");
    println!(
        "{}: ok — {} arm(s) ({}), {} contract(s) ({}), {} patients, horizon {} years",
        source.display_name,
        model.arms.len(),
        names(model.arms.iter().map(|a| a.name.as_str()).collect()),
        model.contracts.len(),
        names(model.contracts.iter().map(|c| c.name.as_str()).collect()),
        model.sim.patients,
        model.sim.horizon
    );
    Ok(())
}

/// Redraws the plots (and report) of a finished run or sweep directory: into a staged copy
/// of it (its other files hard-linked, never rewritten), which then replaces it in one step.
pub(super) fn plot(dir: &Path) -> Result<(), Failure> {
    let is_run = dir.join("summary.csv").is_file();
    if !is_run && !dir.join("sweep.csv").is_file() {
        return Err(Failure::BadInput(format!(
            "error: {} is not a finished run or sweep directory (no summary.csv or sweep.csv)",
            dir.display()
        )));
    }
    let redrawn = |name: &str| {
        if is_run {
            name == "plots" || name == "report.html"
        } else {
            name.starts_with("sweep_") && (name.ends_with(".png") || name.ends_with(".svg"))
        }
    };
    let staged = StagedDir::update(dir, &redrawn).map_err(out_failure)?;
    let written: Vec<String> = if is_run {
        draw(staged.path())?;
        vec!["plots/".into(), "report.html".into()]
    } else {
        let plots = crate::plots::sweep::draw_sweep(staged.path()).map_err(|e| match e {
            crate::plots::PlotError::Format { .. } => Failure::BadInput(format!("error: {e}")),
            other => Failure::Other(format!("drawing the sweep plots: {other}")),
        })?;
        for note in &plots.notes {
            eprintln!("note: {note}");
        }
        plots.file_names()
    };
    crate::output::add_to_manifest(staged.path(), &written, &redrawn).map_err(super::io_failure)?;
    let dir = commit(staged)?;
    if is_run {
        eprintln!("plots and report.html written to {}", dir.display());
    } else {
        eprintln!(
            "{} sweep plots (PNG and SVG) written to {}",
            written.len() / 2,
            dir.display()
        );
    }
    Ok(())
}
