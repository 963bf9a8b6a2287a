//! `obasim run`: a scenario's base case, PSA draws and one-way runs, or one shard of them.

use super::estimate::Estimate;
use super::{
    check_outcome, commit, draw, inputs, interrupt_flag, io_failure, plan_for, progress_bar,
    psa_failure, staged, worker_threads, Failure, Overrides,
};
use crate::outdir::StagedDir;
use crate::output::{self, Manifest};
use crate::plan::{Plan, Work};
use crate::scenario::Source;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `obasim run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario file (TOML). Default: the embedded example (scenarios/beti-cel-germany.toml).
    pub file: Option<PathBuf>,
    /// Output directory. Default: results/<scenario file stem> (a free name is chosen if it exists).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing output directory, only if it holds obasim's results and nothing
    /// else (never the working directory, its parents, or a directory holding an input).
    #[arg(long)]
    pub force: bool,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the scenario's number of patients.
    #[arg(long)]
    pub patients: Option<u64>,
    /// Worker threads (default: all cores; at most the cores available). Results do not
    /// depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the first N patients' event histories and payments.
    #[arg(long, value_name = "N")]
    pub patients_csv: Option<u64>,
    /// Probabilistic sensitivity analysis: this many parameter draws (overrides `[psa] draws`).
    #[arg(long, value_name = "K")]
    pub draws: Option<u32>,
    /// One-way sensitivity analysis of every uncertain parameter (writes tornado.csv).
    #[arg(long)]
    pub tornado: bool,
    /// Run only shard i of N (0 <= i < N) of a fixed partition of the work, writing
    /// mergeable partial results (combine with `obasim merge`).
    #[arg(long, value_name = "i/N")]
    pub shard: Option<String>,
    /// Do not draw plots or write report.html.
    #[arg(long)]
    pub no_plots: bool,
    /// Run even if the estimated time (over 24 h) or memory (over 8 GiB) is beyond the
    /// limits (never beyond the machine's memory).
    #[arg(long)]
    pub allow_large: bool,
    /// No progress bar or messages (errors are still printed).
    #[arg(long)]
    pub quiet: bool,
}

/// Most PSA draws accepted without --allow-large.
pub(super) const MAX_DRAWS: u32 = 100_000;

pub(super) fn run(args: RunArgs) -> Result<(), Failure> {
    let source = match &args.file {
        Some(f) => Source::from_file(f)?,
        None => Source::example(),
    };
    if args.patients == Some(0) {
        return Err(Failure::BadInput(
            "error: --patients 0 is not allowed: at least 1".into(),
        ));
    }
    let threads = worker_threads(args.threads, args.quiet)?;
    let shard = match &args.shard {
        Some(s) => Some(
            crate::shard::parse_shard(s)
                .map_err(|e| Failure::BadInput(format!("error: --shard {e}")))?,
        ),
        None => None,
    };
    let ov = Overrides {
        seed: args.seed,
        patients: args.patients,
    };
    let plan = plan_for(
        &source,
        ov,
        args.draws,
        args.tornado,
        args.quiet,
        args.allow_large,
    )?;
    let model = &plan.base_model();
    if model.sim.patients < 2 && !args.quiet {
        eprintln!(
            "warning: 1 patient: a standard deviation or Monte Carlo error needs at least 2, so they are left empty (undefined) in every table"
        );
    }
    let estimate = Estimate::of(&plan, shard.map_or(1, |(_, n)| n), threads);
    estimate.check(args.allow_large)?;
    let staged = output_dir(&args, &source, inputs(&source, model), shard)?;
    let work = match shard {
        Some((i, n)) => plan.shard_work(i, n),
        None => plan.all_work(),
    };
    if !args.quiet && estimate.seconds > 60.0 {
        eprintln!("estimated: {}", estimate.describe(threads));
    }
    let started = Instant::now();
    let parts = execute(&plan, &work, threads, args.quiet)?;
    if let Some((i, n)) = shard {
        let file = shard_file(&source, &plan, &args, (i, n), parts);
        crate::shard::write_shard(staged.path(), &file).map_err(io_failure)?;
        let final_dir = commit(staged)?;
        if !args.quiet {
            eprintln!(
                "shard {i}/{n}: {} of {} work units in {:.2} s; partial results in {} (combine all shards with `obasim merge`)",
                Plan::units_in(&work),
                plan.unit_count(),
                started.elapsed().as_secs_f64(),
                final_dir.display()
            );
        }
        return Ok(());
    }
    let outcome = plan.assemble(parts).map_err(psa_failure)?;
    check_outcome(&outcome)?;
    let wall = started.elapsed().as_secs_f64();
    let info = RunInfo {
        threads,
        wall,
        patients_csv: args.patients_csv,
        plots: !args.no_plots,
    };
    write_outputs(staged.path(), &source, &plan, &outcome, info)?;
    if !args.no_plots {
        draw(staged.path())?;
    }
    let final_dir = commit(staged)?;
    if !args.quiet {
        print_headline(model, &outcome.base);
        eprintln!(
            "{} patients per run{} in {wall:.2} s on {threads} thread(s); results written to {}",
            model.sim.patients,
            runs_description(&plan),
            final_dir.display()
        );
    }
    Ok(())
}

/// The output directory: `--out` as given, or the first free `results/<stem>[-k]`.
fn output_dir(
    args: &RunArgs,
    source: &Source,
    inputs: Vec<PathBuf>,
    shard: Option<(u32, u32)>,
) -> Result<StagedDir, Failure> {
    match &args.out {
        Some(o) => staged(o, args.force, inputs),
        None => {
            let stem = match shard {
                Some((i, n)) => format!("{}-shard-{i}-of-{n}", source.stem),
                None => source.stem.clone(),
            };
            StagedDir::first_free(&PathBuf::from("results").join(stem)).map_err(super::out_failure)
        }
    }
}

/// Simulates `work` on `threads` threads, with a progress bar.
fn execute(
    plan: &Plan,
    work: &[Work],
    threads: usize,
    quiet: bool,
) -> Result<Vec<crate::plan::UnitResult>, Failure> {
    let bar = progress_bar(plan.patients_in(work), quiet);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Failure::Other(format!("cannot start {threads} threads: {e}")))?;
    let cancel = interrupt_flag();
    let parts = pool
        .install(|| plan.execute(work, &|k| bar.inc(k), cancel))
        .map_err(|e| match e {
            crate::engine::RunError::Cancelled => Failure::Interrupted,
            crate::engine::RunError::Invalid(m) => Failure::BadInput(format!("error: {m}")),
        })?;
    bar.finish_and_clear();
    Ok(parts)
}

/// What a shard writes: what was run, and its units' partial results.
fn shard_file(
    source: &Source,
    plan: &Plan,
    args: &RunArgs,
    (i, n): (u32, u32),
    parts: Vec<crate::plan::UnitResult>,
) -> crate::shard::ShardFile {
    crate::shard::ShardFile {
        format: crate::shard::SHARD_FORMAT,
        obasim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_file: source.display_name.clone(),
        scenario_sha256: source.sha256(),
        data_sha256: plan.base_model().data_sha256.clone(),
        scenario_text: source.text.clone(),
        base_dir: source.base_dir().map(|d| {
            std::fs::canonicalize(d)
                .unwrap_or_else(|_| d.to_path_buf())
                .display()
                .to_string()
        }),
        seed: args.seed,
        patients: args.patients,
        draws: plan.draws,
        tornado: plan.tornado,
        shard: i,
        shards: n,
        units_total: plan.unit_count(),
        block_size: crate::engine::BLOCK_SIZE,
        parts,
    }
}

/// " (base case + K PSA draws + M one-way runs)", or nothing for a base case alone.
fn runs_description(plan: &Plan) -> String {
    let mut parts = Vec::new();
    if plan.draws > 0 {
        parts.push(format!(" + {} PSA draws", plan.draws));
    }
    if plan.tornado {
        parts.push(format!(" + {} one-way runs", plan.one_way.len()));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (base case{})", parts.concat())
    }
}

/// How a run was executed (for the manifest) and what extra files to write.
#[derive(Clone, Copy, Debug)]
pub(super) struct RunInfo {
    pub threads: usize,
    pub wall: f64,
    pub patients_csv: Option<u64>,
    pub plots: bool,
}

/// Writes every output file of a finished run (the same for a run and a merge).
pub(super) fn write_outputs(
    dir: &Path,
    source: &Source,
    plan: &Plan,
    outcome: &crate::plan::Outcome,
    info: RunInfo,
) -> Result<(), Failure> {
    let model = &plan.base_model();
    output::write_tables(dir, &outcome.base).map_err(io_failure)?;
    output::write_scenario_copy(dir, &source.text).map_err(io_failure)?;
    let mut files: Vec<String> = output::RUN_FILES.iter().map(|s| s.to_string()).collect();
    if !outcome.base.budget.is_empty() {
        files.push("budget.csv".into());
    }
    if let Some(p) = &outcome.psa {
        files.extend(output::write_psa(dir, p, model).map_err(io_failure)?);
    }
    if let Some(rows) = &outcome.tornado {
        output::write_tornado(dir, rows).map_err(io_failure)?;
        files.push("tornado.csv".into());
    }
    if let Some(k) = info.patients_csv {
        output::write_patients(dir, model, k, 0).map_err(io_failure)?;
        files.push("patients.csv".into());
        files.push("patient_payments.csv".into());
    }
    if info.plots {
        files.push("plots/".into());
        files.push("report.html".into());
    }
    let manifest = Manifest {
        obasim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_name: model.name.clone(),
        scenario_file: source.display_name.clone(),
        scenario_sha256: source.sha256(),
        data_sha256: model.data_sha256.clone(),
        seed: model.sim.seed,
        patients: model.sim.patients,
        draws: plan.draws,
        block_size: crate::engine::BLOCK_SIZE,
        threads: info.threads,
        wall_time_seconds: info.wall,
        command_line: std::env::args().collect(),
        currency: model.currency.clone(),
        price_year: model.price_year,
        files,
    };
    output::write_manifest(dir, &manifest).map_err(io_failure)?;
    Ok(())
}

fn print_headline(model: &crate::model::Model, r: &crate::results::Results) {
    let tname = &model.arms[model.therapy.arm].name;
    eprintln!(
        "{} — mean per patient ({} {}, discounted; ± MCSE):",
        model.name, model.currency, model.price_year
    );
    // The name column as wide as the longest contract name, so the figures line up.
    let w = model
        .contracts
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    for c in &model.contracts {
        let get = |m: &str| r.summary_row(tname, &c.name, m);
        if let (Some(paid), Some(cost), Some(q)) =
            (get("drug_paid"), get("payer_cost"), get("qalys"))
        {
            eprintln!(
                "  {:<w$}  drug paid {:>14.0} ± {:<10.0} payer cost {:>14.0} ± {:<10.0} QALYs {:.3} ± {:.3}",
                c.name, paid.mean, paid.mcse, cost.mean, cost.mcse, q.mean, q.mcse
            );
        }
    }
}
