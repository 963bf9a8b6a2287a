//! The command-line interface: `run`, `validate`, `schema`.
//!
//! Exit codes: 0 success, 2 bad input (scenario or arguments), 1 any other failure.

use crate::model::build::load;
use crate::output::{self, Manifest, StagedDir};
use crate::plan::Plan;
use crate::scenario::{ScenarioError, Source};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

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

/// Options of `obasim bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Reference model: `a` (3-state, life table, 5 contracts), `b` (6-state semi-Markov,
    /// Weibull) or `all`.
    #[arg(long, default_value = "all", value_parser = ["a", "b", "all"])]
    pub model: String,
    /// Patients per timed run.
    #[arg(long, default_value_t = 200_000)]
    pub patients: u64,
    /// Timed repetitions of each measurement; the best is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// Threads of the parallel measurement (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the measurements as JSON (one array of reports) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `obasim run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario file (TOML). Default: the embedded example (scenarios/beti-cel-germany.toml).
    pub file: Option<PathBuf>,
    /// Output directory. Default: results/<scenario file stem> (a free name is chosen if it exists).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the scenario's number of patients.
    #[arg(long)]
    pub patients: Option<u64>,
    /// Worker threads (default: all cores). Results do not depend on it.
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
    /// Run even if the estimated time (over 24 h) or memory (over 8 GiB) is beyond the limits.
    #[arg(long)]
    pub allow_large: bool,
    /// No progress bar or messages (errors are still printed).
    #[arg(long)]
    pub quiet: bool,
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
        Command::Run(args) => run(args),
        Command::Merge(args) => merge(args),
        Command::Sweep(args) => sweep(args),
        Command::Solve(args) => solve(args),
        Command::Compare(args) => compare(args),
        Command::Slurm(args) => crate::slurm::slurm(&args).map_err(|e| match e {
            crate::slurm::SlurmError::BadInput(m) => Failure::BadInput(m),
            crate::slurm::SlurmError::Other(m) => Failure::Other(m),
        }),
        Command::Cohort(args) => crate::markov::cohort_command(&args).map_err(|e| match e {
            crate::markov::CohortFailure::BadInput(m) => Failure::BadInput(m),
            crate::markov::CohortFailure::Other(m) => Failure::Other(m),
        }),
        Command::Bench(args) => bench(&args),
        Command::Plot { dir } => plot(&dir),
        Command::Validate { file } => validate(&file),
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

fn bench(args: &BenchArgs) -> Result<(), Failure> {
    if args.patients == 0 {
        return Err(Failure::BadInput(
            "error: --patients must be at least 1".into(),
        ));
    }
    let threads = match args.threads {
        Some(0) => {
            return Err(Failure::BadInput(
                "error: --threads 0 is not allowed".into(),
            ))
        }
        Some(t) => t,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
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

fn print_warnings(model: &crate::model::Model) {
    for w in &model.warnings {
        eprintln!("warning: {w}");
    }
}

fn validate(file: &Path) -> Result<(), Failure> {
    let source = Source::from_file(file)?;
    let (_, model) = load(&source)?;
    print_warnings(&model);
    println!(
        "{}: ok — {} arm(s) ({}), {} contract(s) ({}), {} patients, horizon {} years",
        source.display_name,
        model.arms.len(),
        model
            .arms
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        model.contracts.len(),
        model
            .contracts
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        model.sim.patients,
        model.sim.horizon
    );
    Ok(())
}

/// `results/<stem>`, or the first of `results/<stem>-2`, `-3`, ... that is free.
fn default_out(stem: &str) -> PathBuf {
    let base = PathBuf::from("results").join(stem);
    if !base.exists() {
        return base;
    }
    (2..)
        .map(|k| PathBuf::from("results").join(format!("{stem}-{k}")))
        .find(|p| !p.exists())
        .expect("an unused directory name")
}

/// Overrides from the command line, applied to every model of a run.
#[derive(Clone, Copy, Debug, Default)]
struct Overrides {
    seed: Option<u64>,
    patients: Option<u64>,
}

impl Overrides {
    fn apply(&self, m: &mut crate::model::Model) {
        if let Some(seed) = self.seed {
            m.sim.seed = seed;
        }
        if let Some(n) = self.patients {
            m.sim.patients = n;
            if let Some(c) = m.cohort.as_mut() {
                c.fit_to_patients(n);
            }
        }
    }
}

/// Loads a scenario, applies overrides, and plans its runs.
fn plan_for(
    source: &Source,
    ov: Overrides,
    draws: Option<u32>,
    tornado: bool,
    quiet: bool,
    allow_large: bool,
) -> Result<Plan, Failure> {
    let (_, mut model) = load(source)?;
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
    let uncertainty = crate::psa::Uncertainty::extract(source)?;
    let draws = draws.unwrap_or(uncertainty.settings.draws);
    if draws > MAX_DRAWS && !allow_large {
        return Err(Failure::BadInput(format!(
            "error: {draws} PSA draws is more than the limit of {MAX_DRAWS} (every draw is compiled and kept in memory): split the analysis with --shard or pass --allow-large"
        )));
    }
    if (draws > 0 || tornado) && uncertainty.is_empty() && !quiet {
        eprintln!(
            "warning: the scenario has no uncertain parameters (write e.g. {{ dist = \"beta\", mean = .., se = .. }} in place of a number): draws differ only by Monte Carlo noise"
        );
    }
    Plan::new(source, &model, uncertainty, draws, tornado, &|m| {
        ov.apply(m)
    })
    .map_err(psa_failure)
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

fn staged(out: &Path, force: bool) -> Result<StagedDir, Failure> {
    StagedDir::new(out, force).map_err(|e| match e {
        output::OutputDirError::NotEmpty(_) => Failure::BadInput(format!("error: {e}")),
        output::OutputDirError::Io(e) => Failure::Other(format!("{}: {e}", out.display())),
    })
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure::Other(format!("writing results: {e}"))
}

fn run(args: RunArgs) -> Result<(), Failure> {
    let source = match &args.file {
        Some(f) => Source::from_file(f)?,
        None => Source::example(),
    };
    if args.patients == Some(0) {
        return Err(Failure::BadInput(
            "error: --patients 0 is not allowed: at least 1".into(),
        ));
    }
    if args.threads == Some(0) {
        return Err(Failure::BadInput(
            "error: --threads 0 is not allowed: at least 1 (omit it to use all cores)".into(),
        ));
    }
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
    let out = match (&args.out, shard) {
        (Some(o), _) => o.clone(),
        (None, Some((i, n))) => default_out(&format!("{}-shard-{i}-of-{n}", source.stem)),
        (None, None) => default_out(&source.stem),
    };
    let staged = staged(&out, args.force)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let estimate = Estimate::of(&plan, shard.map_or(1, |(_, n)| n), threads);
    estimate.check(args.allow_large)?;
    let units = match shard {
        Some((i, n)) => plan.shard_units(i, n),
        None => plan.units(),
    };
    if !args.quiet && estimate.seconds > 60.0 {
        eprintln!(
            "estimated: about {} on {threads} thread(s), about {} of memory",
            human_seconds(estimate.seconds),
            human_bytes(estimate.bytes)
        );
    }
    let bar = progress_bar(plan.patients_in(&units), args.quiet);
    let cancel = interrupt_flag();
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Failure::Other(format!("cannot start {threads} threads: {e}")))?;
    let parts = pool
        .install(|| plan.execute(&units, &|k| bar.inc(k), cancel))
        .map_err(|e| match e {
            crate::engine::RunError::Cancelled => Failure::Interrupted,
        })?;
    let dir = staged.path();
    if let Some((i, n)) = shard {
        let file = crate::shard::ShardFile {
            format: crate::shard::SHARD_FORMAT,
            obasim_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario_file: source.display_name.clone(),
            scenario_sha256: source.sha256(),
            data_sha256: plan.runs[0].model.data_sha256.clone(),
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
            units_total: plan.units().len(),
            block_size: crate::engine::BLOCK_SIZE,
            parts,
        };
        crate::shard::write_shard(dir, &file).map_err(io_failure)?;
        bar.finish_and_clear();
        let final_dir = staged.commit().map_err(io_failure)?;
        if !args.quiet {
            eprintln!(
                "shard {i}/{n}: {} of {} work units in {:.2} s; partial results in {} (combine all shards with `obasim merge`)",
                units.len(),
                plan.units().len(),
                started.elapsed().as_secs_f64(),
                final_dir.display()
            );
        }
        return Ok(());
    }
    let outcome = plan.assemble(parts).map_err(psa_failure)?;
    check_outcome(&outcome)?;
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    write_outputs(
        dir,
        &source,
        &plan,
        &outcome,
        RunInfo {
            threads,
            wall,
            patients_csv: args.patients_csv,
            plots: !args.no_plots,
        },
    )?;
    if !args.no_plots {
        draw(dir)?;
    }
    let final_dir = staged.commit().map_err(io_failure)?;
    if !args.quiet {
        let model = &plan.runs[0].model;
        print_headline(model, &outcome.base);
        let extra = match (plan.draws, plan.tornado) {
            (0, false) => String::new(),
            (d, t) => format!(
                " (base case{}{})",
                if d > 0 {
                    format!(" + {d} PSA draws")
                } else {
                    String::new()
                },
                if t {
                    format!(" + {} one-way runs", 2 * plan.uncertainty.params.len())
                } else {
                    String::new()
                }
            ),
        };
        eprintln!(
            "{} patients per run{extra} in {wall:.2} s on {threads} thread(s); results written to {}",
            model.sim.patients,
            final_dir.display()
        );
    }
    Ok(())
}

/// How a run was executed (for the manifest) and what extra files to write.
#[derive(Clone, Copy, Debug)]
struct RunInfo {
    threads: usize,
    wall: f64,
    patients_csv: Option<u64>,
    plots: bool,
}

/// Writes every output file of a finished run (the same for a run and a merge).
fn write_outputs(
    dir: &Path,
    source: &Source,
    plan: &Plan,
    outcome: &crate::plan::Outcome,
    info: RunInfo,
) -> Result<(), Failure> {
    let RunInfo {
        threads,
        wall,
        patients_csv,
        plots,
    } = info;
    let model = &plan.runs[0].model;
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
    if let Some(k) = patients_csv {
        output::write_patients(dir, model, k, 0).map_err(io_failure)?;
        files.push("patients.csv".into());
        files.push("patient_payments.csv".into());
    }
    if plots {
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
        threads,
        wall_time_seconds: wall,
        command_line: std::env::args().collect(),
        currency: model.currency.clone(),
        price_year: model.price_year,
        files,
    };
    output::write_manifest(dir, &manifest).map_err(io_failure)?;
    Ok(())
}

/// Options of `obasim sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Scenario file (TOML).
    pub file: PathBuf,
    /// A parameter and its values: PATH=v1,v2,... or PATH=from:to:step, with PATH as in error
    /// messages (e.g. contracts[1].warranty.refund). Repeat for a grid.
    #[arg(long = "set", required = true, value_name = "PATH=VALUES")]
    pub sets: Vec<String>,
    /// Output directory (sweep.csv, the copied scenario and the sweep plots).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Override the number of patients (per point).
    #[arg(long)]
    pub patients: Option<u64>,
    /// Override the seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Do not draw the sweep plots (sweep_<metric>.png and .svg).
    #[arg(long)]
    pub no_plots: bool,
    /// No messages.
    #[arg(long)]
    pub quiet: bool,
}

/// Options of `obasim solve`.
#[derive(Args, Debug)]
pub struct SolveArgs {
    /// Scenario file (TOML).
    pub file: PathBuf,
    /// The parameter to solve for (field path, e.g. contracts[2].warranty.refund).
    #[arg(long)]
    pub vary: String,
    /// Search interval LO:HI (the result minus the target must change sign over it).
    #[arg(long, value_name = "LO:HI")]
    pub between: String,
    /// METRIC=VALUE: a metric of summary.csv for the therapy arm under --contract (e.g.
    /// manufacturer_npv=1000000), or inc_nmb=0 with --comparator and --wtp.
    #[arg(long, value_name = "METRIC=VALUE")]
    pub target: String,
    /// Contract whose result is targeted.
    #[arg(long)]
    pub contract: String,
    /// Comparator arm (for inc_nmb).
    #[arg(long)]
    pub comparator: Option<String>,
    /// Threshold (for inc_nmb).
    #[arg(long)]
    pub wtp: Option<f64>,
    /// Relative tolerance on the parameter (default 1e-4).
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
    /// Override the number of patients.
    #[arg(long)]
    pub patients: Option<u64>,
    /// Override the seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Options of `obasim compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Finished run directories.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Also write the table as CSV here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also draw a plot of one metric (--metric) here: bars per contract grouped by run,
    /// with mean ± 1.96 MCSE whiskers; PNG or SVG by the extension.
    #[arg(long, value_name = "FILE.png|FILE.svg")]
    pub plot: Option<PathBuf>,
    /// The metric of summary.csv to plot with --plot.
    #[arg(long, default_value = "drug_paid", requires = "plot")]
    pub metric: String,
}

fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool, Failure> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(Failure::BadInput(
                "error: --threads 0 is not allowed".into(),
            ));
        }
        b = b.num_threads(t);
    }
    b.build()
        .map_err(|e| Failure::Other(format!("cannot start threads: {e}")))
}

fn design_failure(e: crate::design::DesignError) -> Failure {
    match e {
        crate::design::DesignError::Run(_) => Failure::Interrupted,
        other => Failure::BadInput(format!("error: {other}")),
    }
}

fn sweep(args: SweepArgs) -> Result<(), Failure> {
    use crate::design;
    let source = Source::from_file(&args.file)?;
    load(&source)?;
    let sets: Vec<design::SetSpec> = args
        .sets
        .iter()
        .map(|s| design::parse_set(s))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::BadInput(format!("error: --set {e}")))?;
    let paths: Vec<&str> = sets.iter().map(|s| s.path.as_str()).collect();
    let spans = design::locate(&source, &paths)?;
    let points = design::grid(&sets);
    let ov = Overrides {
        seed: args.seed,
        patients: args.patients,
    };
    let staged = staged(&args.out, args.force)?;
    let cancel = interrupt_flag();
    let started = Instant::now();
    let results = pool(args.threads)?
        .install(|| design::sweep(&source, &spans, &points, &|m| ov.apply(m), &|_| {}, cancel))
        .map_err(design_failure)?;
    // A sweep keeps means and errors only (no quantiles): check what it reports.
    for r in &results {
        r.check_finite_draw()
            .map_err(|e| Failure::BadInput(format!("error: {e}")))?;
    }
    let path = staged.path().join("sweep.csv");
    let mut w = csv::Writer::from_path(&path).map_err(|e| io_failure(std::io::Error::other(e)))?;
    let mut header = vec!["point".to_string()];
    header.extend(paths.iter().map(|p| p.to_string()));
    header.extend(["arm", "contract", "metric", "mean", "mcse"].map(String::from));
    w.write_record(&header)
        .map_err(|e| io_failure(std::io::Error::other(e)))?;
    for (k, (p, r)) in points.iter().zip(&results).enumerate() {
        for row in &r.summary {
            let mut rec = vec![k.to_string()];
            rec.extend(p.iter().map(|v| output::num(*v)));
            rec.extend([
                row.arm.clone(),
                row.contract.clone(),
                row.metric.clone(),
                output::num(row.mean),
                output::num(row.mcse),
            ]);
            w.write_record(&rec)
                .map_err(|e| io_failure(std::io::Error::other(e)))?;
        }
        for row in &r.incremental {
            let mut rec = vec![k.to_string()];
            rec.extend(p.iter().map(|v| output::num(*v)));
            let metric = match row.wtp {
                Some(wtp) => format!("{}@{}", row.metric, output::num(wtp)),
                None => row.metric.clone(),
            };
            rec.extend([
                format!("vs {}", row.comparator),
                row.contract.clone(),
                metric,
                output::num(row.value),
                output::num(row.mcse),
            ]);
            w.write_record(&rec)
                .map_err(|e| io_failure(std::io::Error::other(e)))?;
        }
    }
    w.flush().map_err(io_failure)?;
    output::write_scenario_copy(staged.path(), &source.text).map_err(io_failure)?;
    let plots = if args.no_plots {
        crate::plots::sweep::SweepPlots::default()
    } else {
        crate::plots::sweep::draw_sweep(staged.path())
            .map_err(|e| Failure::Other(format!("drawing the sweep plots: {e}")))?
    };
    let dir = staged.commit().map_err(io_failure)?;
    if !args.quiet {
        eprintln!(
            "{} points in {:.2} s on the same patients; results written to {}",
            points.len(),
            started.elapsed().as_secs_f64(),
            dir.join("sweep.csv").display()
        );
        if !plots.files.is_empty() {
            eprintln!(
                "{} sweep plots (PNG and SVG) written to {}",
                plots.files.len() / 2,
                dir.display()
            );
        }
        for note in &plots.notes {
            eprintln!("note: {note}");
        }
    }
    Ok(())
}

fn solve(args: SolveArgs) -> Result<(), Failure> {
    use crate::design;
    let source = Source::from_file(&args.file)?;
    load(&source)?;
    let bad = |m: String| Failure::BadInput(format!("error: {m}"));
    let (lo, hi) = args
        .between
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| a < b && a.is_finite() && b.is_finite())
        .ok_or_else(|| {
            bad(format!(
                "--between `{}`: write LO:HI with LO < HI",
                args.between
            ))
        })?;
    let (metric, value) = args
        .target
        .split_once('=')
        .and_then(|(m, v)| Some((m.trim().to_string(), v.trim().parse::<f64>().ok()?)))
        .ok_or_else(|| bad(format!("--target `{}`: write METRIC=VALUE", args.target)))?;
    let target = design::Target {
        metric,
        value,
        contract: args.contract.clone(),
        comparator: match (&args.comparator, args.wtp) {
            (Some(c), Some(w)) => Some((c.clone(), w)),
            _ => None,
        },
    };
    let span = design::locate(&source, &[args.vary.as_str()])?.remove(0);
    let ov = Overrides {
        seed: args.seed,
        patients: args.patients,
    };
    let cancel = interrupt_flag();
    let s = pool(args.threads)?
        .install(|| {
            design::solve(
                &source,
                span,
                (lo, hi),
                &target,
                args.tolerance,
                &|m| ov.apply(m),
                &|_| {},
                cancel,
            )
        })
        .map_err(design_failure)?;
    println!("parameter,value,mcse,target_metric,target,achieved,evaluations");
    println!(
        "{},{},{},{},{},{},{}",
        args.vary,
        output::num(s.value),
        output::num(s.mcse),
        target.metric,
        output::num(target.value),
        output::num(s.achieved),
        s.evaluations
    );
    Ok(())
}

fn compare(args: CompareArgs) -> Result<(), Failure> {
    // Check the plot request before printing anything.
    if let Some(p) = &args.plot {
        crate::plots::compare::ImageFormat::of(p)
            .map_err(|e| Failure::BadInput(format!("error: {e}")))?;
    }
    let rows =
        crate::design::compare(&args.dirs).map_err(|e| Failure::BadInput(format!("error: {e}")))?;
    let plot_data = match &args.plot {
        Some(_) => {
            let plot_rows = crate::design::compare_metrics(&args.dirs, &[args.metric.as_str()])
                .map_err(|e| Failure::BadInput(format!("error: {e}")))?;
            let names: Vec<String> = args.dirs.iter().map(|d| d.display().to_string()).collect();
            let money: Vec<_> = args
                .dirs
                .iter()
                .map(|d| crate::plots::compare::run_money(d))
                .collect();
            Some(
                crate::plots::compare::CompareData::new(&plot_rows, &names, &money, &args.metric)
                    .map_err(|e| Failure::BadInput(format!("error: {e}")))?,
            )
        }
        None => None,
    };
    // Table: one line per (run, arm, contract); columns the key metrics as mean ± MCSE.
    let mut keys: Vec<(String, String, String, String)> = Vec::new();
    for r in &rows {
        let k = (
            r.run.clone(),
            r.scenario.clone(),
            r.arm.clone(),
            r.contract.clone(),
        );
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let metrics = crate::design::COMPARE_METRICS;
    let mut table: Vec<Vec<String>> = vec![["run", "arm", "contract"]
        .into_iter()
        .chain(metrics)
        .map(str::to_string)
        .collect()];
    for (run, _, arm, contract) in &keys {
        let short = Path::new(run)
            .file_name()
            .map_or(run.clone(), |f| f.to_string_lossy().into_owned());
        let mut line = vec![short, arm.clone(), contract.clone()];
        for m in metrics {
            line.push(
                match rows.iter().find(|r| {
                    &r.run == run && &r.arm == arm && &r.contract == contract && r.metric == m
                }) {
                    Some(r) => crate::design::mean_pm(r.mean, r.mcse),
                    None => "—".to_string(),
                },
            );
        }
        table.push(line);
    }
    print!("{}", crate::design::aligned(&table, 3));
    if let Some(out) = &args.out {
        let mut w =
            csv::Writer::from_path(out).map_err(|e| io_failure(std::io::Error::other(e)))?;
        w.write_record([
            "run", "scenario", "arm", "contract", "metric", "mean", "mcse",
        ])
        .map_err(|e| io_failure(std::io::Error::other(e)))?;
        for r in &rows {
            w.write_record([
                r.run.clone(),
                r.scenario.clone(),
                r.arm.clone(),
                r.contract.clone(),
                r.metric.clone(),
                output::num(r.mean),
                output::num(r.mcse),
            ])
            .map_err(|e| io_failure(std::io::Error::other(e)))?;
        }
        w.flush().map_err(io_failure)?;
    }
    if let (Some(path), Some(data)) = (&args.plot, &plot_data) {
        crate::plots::compare::write_compare_plot(data, path)
            .map_err(|e| Failure::Other(format!("drawing the comparison plot: {e}")))?;
        eprintln!("plot of {} written to {}", args.metric, path.display());
    }
    Ok(())
}

/// Options of `obasim merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard output directories (or their shard.json files), all shards of one run.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Output directory for the merged results.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Do not draw plots or write report.html.
    #[arg(long)]
    pub no_plots: bool,
    /// No messages.
    #[arg(long)]
    pub quiet: bool,
}

fn merge(args: MergeArgs) -> Result<(), Failure> {
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
    if plan.runs[0].model.data_sha256 != first.data_sha256 {
        return Err(Failure::BadInput(format!(
            "error: the data files the scenario reads (its life table) changed since the shards ran: their SHA-256 is now {}, the shards were run with {}. Rerun the shards, or restore the data files.",
            plan.runs[0].model.data_sha256, first.data_sha256
        )));
    }
    if plan.units().len() != first.units_total {
        return Err(Failure::BadInput(format!(
            "error: the shards describe {} work units but the scenario now gives {}: the data files or obasim changed since the shards ran",
            first.units_total,
            plan.units().len()
        )));
    }
    let staged = staged(&args.out, args.force)?;
    let parts: Vec<crate::plan::UnitResult> = shards.into_iter().flat_map(|s| s.parts).collect();
    let outcome = plan.assemble(parts).map_err(psa_failure)?;
    check_outcome(&outcome)?;
    let threads = rayon::current_num_threads();
    write_outputs(
        staged.path(),
        &source,
        &plan,
        &outcome,
        RunInfo {
            threads,
            wall: started.elapsed().as_secs_f64(),
            patients_csv: None,
            plots: !args.no_plots,
        },
    )?;
    if !args.no_plots {
        draw(staged.path())?;
    }
    let final_dir = staged.commit().map_err(io_failure)?;
    if !args.quiet {
        eprintln!(
            "merged {} shards; results written to {}",
            args.shards.len(),
            final_dir.display()
        );
    }
    Ok(())
}

/// A conservative estimate of a run's time and memory, made before it starts.
struct Estimate {
    seconds: f64,
    bytes: f64,
}

/// Patients per second per thread assumed by the estimate (a slow model on a slow core).
const ASSUMED_PATIENTS_PER_SECOND: f64 = 100_000.0;
/// Longest run accepted without --allow-large.
const MAX_SECONDS: f64 = 24.0 * 3600.0;
/// Most PSA draws accepted without --allow-large.
const MAX_DRAWS: u32 = 100_000;
/// Most memory accepted without --allow-large.
const MAX_BYTES: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;

impl Estimate {
    /// For one of `shards` equal shares of the plan's work.
    fn of(plan: &Plan, shards: u32, threads: usize) -> Estimate {
        let total: f64 = plan.runs.iter().map(|r| r.model.sim.patients as f64).sum();
        let patients = total / shards.max(1) as f64;
        let units = total / crate::engine::BLOCK_SIZE as f64;
        let m = &plan.runs[0].model;
        let slots = crate::engine::Layout::new(m).slots() as f64;
        let states: usize = m.arms.iter().map(|a| a.states.len()).sum();
        // Per accumulator: a sketch per slot (~20 kB when values spread), occupancy counts,
        // yearly flows, cohort sums.
        let cohort = m.cohort.as_ref().map_or(0.0, |c| {
            (c.replicates as usize * m.contracts.len() * c.years) as f64 * 2.0 * 48.0
        });
        let tally = slots * 20_000.0
            + (m.sim.occupancy_points() * states) as f64 * 8.0
            + (m.sim.years() * (2 * m.arms.len() + 4 * m.contracts.len())) as f64 * 48.0
            + cohort;
        let runs_in_flight = plan.runs.len().min(threads.max(1) * 4) as f64;
        let psa_rows = plan.draws as f64 * slots * 200.0;
        Estimate {
            seconds: patients / (ASSUMED_PATIENTS_PER_SECOND * threads.max(1) as f64),
            bytes: tally * (threads as f64 + 1.0) * runs_in_flight + psa_rows + units * 24.0 + 50e6,
        }
    }

    fn check(&self, allow: bool) -> Result<(), Failure> {
        if allow {
            return Ok(());
        }
        if self.seconds > MAX_SECONDS {
            return Err(Failure::BadInput(format!(
                "error: this run would take about {} (limit {}): reduce --patients or --draws, split it with --shard i/N, or pass --allow-large",
                human_seconds(self.seconds),
                human_seconds(MAX_SECONDS)
            )));
        }
        if self.bytes > MAX_BYTES {
            return Err(Failure::BadInput(format!(
                "error: this run would need about {} of memory (limit {}): reduce draws, cohort replicates or the occupancy grid, or pass --allow-large",
                human_bytes(self.bytes),
                human_bytes(MAX_BYTES)
            )));
        }
        Ok(())
    }
}

fn human_seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 3.0 * 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.0} days", s / 86400.0)
    }
}

fn human_bytes(b: f64) -> String {
    if b < 1e9 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.1} GB", b / 1e9)
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

fn plot(dir: &Path) -> Result<(), Failure> {
    if !dir.join("summary.csv").is_file() && dir.join("sweep.csv").is_file() {
        let plots = crate::plots::sweep::draw_sweep(dir).map_err(|e| match e {
            crate::plots::PlotError::Format { .. } => Failure::BadInput(format!("error: {e}")),
            other => Failure::Other(format!("drawing the sweep plots: {other}")),
        })?;
        for note in &plots.notes {
            eprintln!("note: {note}");
        }
        eprintln!(
            "{} sweep plots (PNG and SVG) written to {}",
            plots.files.len() / 2,
            dir.display()
        );
        return Ok(());
    }
    if !dir.join("summary.csv").is_file() {
        return Err(Failure::BadInput(format!(
            "error: {} is not a finished run or sweep directory (no summary.csv or sweep.csv)",
            dir.display()
        )));
    }
    draw(dir)?;
    eprintln!("plots and report.html written to {}", dir.display());
    Ok(())
}

fn psa_failure(e: crate::psa::analysis::PsaError) -> Failure {
    match e {
        crate::psa::analysis::PsaError::Run(r) => Failure::Other(r.to_string()),
        other => Failure::BadInput(format!("error: {other}")),
    }
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
