//! The command-line interface: a thin layer over the library. One submodule per group of
//! commands: [`run`] (`run`, including shards), [`merge`], [`design`] (`sweep`, `solve`,
//! `compare`) and [`tools`] (`validate`, `plot`, `bench`); `slurm` and `cohort` live with
//! their libraries.
//!
//! Exit codes: 0 success, 2 bad input (scenario, arguments or an output directory that may
//! not be written), 1 any other failure, 130 interrupted.

mod design;
mod estimate;
mod merge;
mod run;
mod tools;

pub use design::{CompareArgs, SolveArgs, SweepArgs};
pub use merge::MergeArgs;
pub use run::RunArgs;
pub use tools::BenchArgs;

use crate::model::Model;
use crate::outdir::{OutputDirError, Request, StagedDir};
use crate::plan::Plan;
use crate::scenario::{ScenarioError, Source};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Exit code for bad input.
pub const EXIT_BAD_INPUT: i32 = 2;

/// Exit code for other failures.
pub const EXIT_FAILURE: i32 = 1;

/// Monte Carlo simulator of outcome-based and installment payment agreements for one-off
/// gene and cell therapies.
#[derive(Parser, Debug)]
#[command(name = "obasim", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario (the embedded example if no file is given) and write results.
    Run(RunArgs),
    /// Check a scenario file without running it.
    Validate {
        /// Scenario file (TOML).
        file: PathBuf,
    },
    /// Print the JSON Schema of the scenario format (for editors).
    Schema,
    /// Combine the shards of a run (from `run --shard i/N`) into its results.
    Merge(MergeArgs),
    /// Write (and optionally submit) a Slurm job array of shards and a dependent merge job
    Slurm(crate::slurm::SlurmArgs),
    /// Run a grid over scenario parameters (`--set PATH=VALUES`), every point on the same
    /// patients, into one tidy CSV and plots (lines over one parameter, heat maps over two).
    Sweep(SweepArgs),
    /// Find the value of one scenario parameter at which a result hits a target (bisection
    /// on common random numbers).
    Solve(SolveArgs),
    /// Side-by-side table of the key results of finished runs.
    Compare(CompareArgs),
    /// Exact cohort calculation of the discrete-time (Markov) arms and their contracts, as
    /// CSV on stdout (`--trace`: the state occupancy at each cycle).
    Cohort(crate::markov::CohortArgs),
    /// Throughput of the engine on the reference models of scenarios/bench/, against the
    /// floor (a loop drawing only the random numbers the model consumes), on 1 thread and all
    /// cores.
    Bench(BenchArgs),
    /// Redraw the plots and report.html of a finished run directory from its CSV files (or
    /// the plots of a sweep directory from its sweep.csv).
    Plot {
        /// Run or sweep directory.
        dir: PathBuf,
    },
}

enum Failure {
    BadInput(String),
    Other(String),
    Interrupted,
}

/// Exit code after SIGINT or SIGTERM (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A flag raised by SIGINT or SIGTERM; the engine stops between blocks when it is set.
fn interrupt_flag() -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // If a handler cannot be installed the default action (terminate) remains, and the
        // staging directory is never renamed into place.
        let _ = ctrlc::set_handler(|| FLAG.store(true, std::sync::atomic::Ordering::SeqCst));
    });
    &FLAG
}

impl From<ScenarioError> for Failure {
    fn from(e: ScenarioError) -> Self {
        Failure::BadInput(e.to_string())
    }
}

/// Runs the CLI with the process arguments; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Merge(args) => merge::merge(args),
        Command::Sweep(args) => design::sweep(args),
        Command::Solve(args) => design::solve(args),
        Command::Compare(args) => design::compare(args),
        Command::Slurm(args) => crate::slurm::slurm(&args).map_err(|e| match e {
            crate::slurm::SlurmError::BadInput(m) => Failure::BadInput(m),
            crate::slurm::SlurmError::Other(m) => Failure::Other(m),
        }),
        Command::Cohort(args) => crate::markov::cohort_command(&args).map_err(|e| match e {
            crate::markov::CohortFailure::BadInput(m) => Failure::BadInput(m),
            crate::markov::CohortFailure::Other(m) => Failure::Other(m),
        }),
        Command::Bench(args) => tools::bench(&args),
        Command::Plot { dir } => tools::plot(&dir),
        Command::Validate { file } => tools::validate(&file),
        Command::Schema => {
            println!("{}", crate::scenario::json_schema());
            Ok(())
        }
    };
    match result {
        Ok(()) => 0,
        Err(Failure::BadInput(m)) => {
            eprintln!("{m}");
            EXIT_BAD_INPUT
        }
        Err(Failure::Other(m)) => {
            eprintln!("error: {m}");
            EXIT_FAILURE
        }
        Err(Failure::Interrupted) => {
            eprintln!("interrupted: stopped cleanly; no results were written (the partial output was removed). Rerun the same command to start again.");
            EXIT_INTERRUPTED
        }
    }
}

fn print_warnings(model: &Model) {
    for w in &model.warnings {
        eprintln!("warning: {w}");
    }
}

/// Overrides from the command line, applied to every model of a run.
pub(crate) type Overrides = crate::plan::Adjust;

/// Loads a scenario, applies overrides, and plans its runs.
fn plan_for(
    source: &Source,
    ov: Overrides,
    draws: Option<u32>,
    tornado: bool,
    quiet: bool,
    allow_large: bool,
) -> Result<Plan, Failure> {
    let setup = crate::model::Setup::new(source)?;
    let mut model = setup.base()?;
    if !quiet {
        print_warnings(&model);
    }
    ov.apply(&mut model);
    if let Some(c) = &model.cohort {
        if model.sim.patients / c.size() < 2 {
            return Err(Failure::BadInput(format!(
                "error: {} patients is too few for the scenario's [cohort]: one cohort has {} patients and cohort-level results need at least two simulated cohorts ({} patients)",
                model.sim.patients,
                c.size(),
                2 * c.size()
            )));
        }
    }
    let draws = draws.unwrap_or(setup.params.settings.draws);
    if draws > run::MAX_DRAWS && !allow_large {
        return Err(Failure::BadInput(format!(
            "error: {draws} PSA draws is more than the limit of {}: split the analysis with --shard or pass --allow-large",
            run::MAX_DRAWS
        )));
    }
    if (draws > 0 || tornado) && !setup.params.is_uncertain() && !quiet {
        eprintln!(
            "warning: the scenario has no uncertain parameters (write e.g. {{ dist = \"beta\", mean = .., se = .. }} under [parameters] or in place of a number): draws differ only by Monte Carlo noise"
        );
    }
    estimate::check_draws_fit(&model, setup.params.params.len(), draws)?;
    Plan::new(setup, ov, draws, tornado).map_err(psa_failure)
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(total);
    b.set_style(
        ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} patients  {per_sec}  eta {eta}",
        )
        .expect("a valid progress template"),
    );
    b
}

/// The files a command reads: the scenario file and the data files it references.
fn inputs(source: &Source, model: &Model) -> Vec<PathBuf> {
    source
        .path()
        .into_iter()
        .chain(model.data_files.iter().cloned())
        .collect()
}

fn out_failure(e: OutputDirError) -> Failure {
    if e.is_bad_input() {
        Failure::BadInput(format!("error: {e}"))
    } else {
        Failure::Other(e.to_string())
    }
}

/// Prepares an explicit output directory (see [`crate::outdir`]).
fn staged(out: &Path, force: bool, inputs: Vec<PathBuf>) -> Result<StagedDir, Failure> {
    StagedDir::create(out, &Request { force, inputs }).map_err(out_failure)
}

/// Moves a finished output directory into place.
fn commit(staged: StagedDir) -> Result<PathBuf, Failure> {
    staged.commit().map_err(out_failure)
}

/// Worker threads: as asked (at most the available cores, with a warning above that),
/// or all cores.
fn worker_threads(requested: Option<usize>, quiet: bool) -> Result<usize, Failure> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match requested {
        None => Ok(cores),
        Some(0) => Err(Failure::BadInput(
            "error: --threads 0 is not allowed: at least 1 (omit it to use all cores)".into(),
        )),
        Some(t) if t > cores => {
            if !quiet {
                eprintln!(
                    "warning: --threads {t} is more than the {cores} core(s) available: using {cores} (results do not depend on it)"
                );
            }
            Ok(cores)
        }
        Some(t) => Ok(t),
    }
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure::Other(format!("writing results: {e}"))
}

fn pool(threads: Option<usize>, quiet: bool) -> Result<rayon::ThreadPool, Failure> {
    let t = worker_threads(threads, quiet)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build()
        .map_err(|e| Failure::Other(format!("cannot start {t} threads: {e}")))
}

fn design_failure(e: crate::design::DesignError) -> Failure {
    match e {
        crate::design::DesignError::Run(crate::engine::RunError::Invalid(m)) => {
            Failure::BadInput(format!("error: {m}"))
        }
        crate::design::DesignError::Run(_) => Failure::Interrupted,
        other => Failure::BadInput(format!("error: {other}")),
    }
}

/// Refuses to write results with a non-finite number in them.
fn check_outcome(outcome: &crate::plan::Outcome) -> Result<(), Failure> {
    let mut problem = outcome.base.check_finite().err();
    if let Some(p) = &outcome.psa {
        for d in &p.draws {
            if problem.is_none() {
                problem = d
                    .results
                    .check_finite_draw()
                    .err()
                    .map(|e| format!("PSA draw {}: {e}", d.draw));
            }
        }
    }
    match problem {
        None => Ok(()),
        Some(e) => Err(Failure::BadInput(format!(
            "error: {e}; no results were written. The scenario's numbers are at an extreme where the computation overflows or is undefined: check very large or very small rates, shapes and prices."
        ))),
    }
}

/// Draws the plots and the report of a run directory.
fn draw(dir: &Path) -> Result<(), Failure> {
    crate::plots::draw_run(dir).map_err(|e| Failure::Other(format!("drawing plots: {e}")))?;
    crate::report::write_report(dir)
        .map_err(|e| Failure::Other(format!("writing report.html: {e}")))?;
    Ok(())
}

fn psa_failure(e: crate::psa::analysis::PsaError) -> Failure {
    match e {
        crate::psa::analysis::PsaError::Run(r) => Failure::Other(r.to_string()),
        crate::psa::analysis::PsaError::Base(e) => Failure::BadInput(e.to_string()),
        other => Failure::BadInput(format!("error: {other}")),
    }
}
