//! `obasim merge`: the shards of a run (from `run --shard i/N`) into its results, byte for
//! byte those of the unsharded run.

use super::run::{write_outputs, RunInfo};
use super::{check_outcome, commit, draw, plan_for, psa_failure, staged, Failure, Overrides};
use crate::scenario::Source;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `obasim merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard output directories (or their shard.json files), all shards of one run.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Output directory for the merged results (not one of the shards).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output directory, only if it holds obasim's results and nothing
    /// else (never a shard being merged).
    #[arg(long)]
    pub force: bool,
    /// Do not draw plots or write report.html.
    #[arg(long)]
    pub no_plots: bool,
    /// No messages.
    #[arg(long)]
    pub quiet: bool,
}

pub(super) fn merge(args: MergeArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let shards = crate::shard::read_shards(&args.shards)
        .map_err(|e| Failure::BadInput(format!("error: {e}")))?;
    let first = &shards[0];
    let source = Source::from_text(
        &first.scenario_file,
        &first.scenario_text,
        first.base_dir.as_ref().map(PathBuf::from),
    );
    let ov = Overrides {
        seed: first.seed,
        patients: first.patients,
    };
    let plan = plan_for(&source, ov, Some(first.draws), first.tornado, true, true)?;
    let model = &plan.base_model();
    if model.data_sha256 != first.data_sha256 {
        return Err(Failure::BadInput(format!(
            "error: the data files the scenario reads (its life table) changed since the shards ran: their SHA-256 is now {}, the shards were run with {}. Rerun the shards, or restore the data files.",
            model.data_sha256, first.data_sha256
        )));
    }
    if plan.unit_count() != first.units_total {
        return Err(Failure::BadInput(format!(
            "error: the shards describe {} work units but the scenario now gives {}: the data files or obasim changed since the shards ran",
            first.units_total,
            plan.unit_count()
        )));
    }
    // The merged results may not replace a shard being merged, nor the data files.
    let inputs: Vec<PathBuf> = args
        .shards
        .iter()
        .cloned()
        .chain(model.data_files.iter().cloned())
        .collect();
    let staged = staged(&args.out, args.force, inputs)?;
    let parts: Vec<crate::plan::UnitResult> = shards.into_iter().flat_map(|s| s.parts).collect();
    let outcome = plan.assemble(parts).map_err(psa_failure)?;
    check_outcome(&outcome)?;
    let info = RunInfo {
        threads: rayon::current_num_threads(),
        wall: started.elapsed().as_secs_f64(),
        patients_csv: None,
        plots: !args.no_plots,
    };
    write_outputs(staged.path(), &source, &plan, &outcome, info)?;
    if !args.no_plots {
        draw(staged.path())?;
    }
    let final_dir = commit(staged)?;
    if !args.quiet {
        eprintln!(
            "merged {} shards; results written to {}",
            args.shards.len(),
            final_dir.display()
        );
    }
    Ok(())
}
