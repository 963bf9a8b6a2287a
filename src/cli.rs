//! The command-line interface: `run`, `validate`, `schema`.
//!
//! Exit codes: 0 success, 2 bad input (scenario or arguments), 1 any other failure.

use crate::model::build::load;
use crate::output::{self, Manifest, StagedDir};
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
    /// No progress bar or messages (errors are still printed).
    #[arg(long)]
    pub quiet: bool,
}

enum Failure {
    BadInput(String),
    Other(String),
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
    }
}

fn validate(file: &Path) -> Result<(), Failure> {
    let source = Source::from_file(file)?;
    let (_, model) = load(&source)?;
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

fn run(args: RunArgs) -> Result<(), Failure> {
    let source = match &args.file {
        Some(f) => Source::from_file(f)?,
        None => Source::example(),
    };
    let (_, mut model) = load(&source)?;
    if args.patients == Some(0) {
        return Err(Failure::BadInput(
            "error: --patients 0 is not allowed: at least 1".into(),
        ));
    }
    let adjust = |m: &mut crate::model::Model| {
        if let Some(seed) = args.seed {
            m.sim.seed = seed;
        }
        if let Some(n) = args.patients {
            m.sim.patients = n;
        }
    };
    adjust(&mut model);
    let uncertainty = crate::psa::Uncertainty::extract(&source)?;
    let draws = args.draws.unwrap_or(uncertainty.settings.draws);
    if (draws > 0 || args.tornado) && uncertainty.is_empty() && !args.quiet {
        eprintln!(
            "warning: the scenario has no uncertain parameters (write e.g. {{ dist = \"beta\", mean = .., se = .. }} in place of a number): draws differ only by Monte Carlo noise"
        );
    }
    if args.threads == Some(0) {
        return Err(Failure::BadInput(
            "error: --threads 0 is not allowed: at least 1 (omit it to use all cores)".into(),
        ));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&source.stem));
    let staged = StagedDir::new(&out, args.force).map_err(|e| match e {
        output::OutputDirError::NotEmpty(_) => Failure::BadInput(format!("error: {e}")),
        output::OutputDirError::Io(e) => Failure::Other(format!("{}: {e}", out.display())),
    })?;

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let show = !args.quiet && std::io::stderr().is_terminal();
    let runs = 1
        + draws as u64
        + if args.tornado {
            2 * uncertainty.params.len() as u64
        } else {
            0
        };
    let bar = if show {
        let b = ProgressBar::new(model.sim.patients * runs);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} patients  {per_sec}  eta {eta}",
            )
            .expect("a valid progress template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let (results, _) = crate::simulate(&model, Some(threads), &|k| bar.inc(k), &cancel)
        .map_err(|e| Failure::Other(e.to_string()))?;
    let psa = if draws > 0 {
        Some(
            crate::psa::analysis::run_psa(
                &source,
                &uncertainty,
                &model,
                draws,
                &adjust,
                &|k| bar.inc(k),
                &cancel,
            )
            .map_err(psa_failure)?,
        )
    } else {
        None
    };
    let tornado = if args.tornado {
        Some(
            crate::psa::analysis::tornado(
                &source,
                &uncertainty,
                &model,
                &results,
                &adjust,
                &|k| bar.inc(k),
                &cancel,
            )
            .map_err(psa_failure)?,
        )
    } else {
        None
    };
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let io = |e: std::io::Error| Failure::Other(format!("writing results: {e}"));
    let dir = staged.path();
    output::write_tables(dir, &results).map_err(io)?;
    output::write_scenario_copy(dir, &source.text).map_err(io)?;
    let mut files: Vec<String> = output::RUN_FILES.iter().map(|s| s.to_string()).collect();
    if !results.budget.is_empty() {
        files.push("budget.csv".into());
    }
    if let Some(p) = &psa {
        files.extend(output::write_psa(dir, p, &model).map_err(io)?);
    }
    if let Some(rows) = &tornado {
        output::write_tornado(dir, rows).map_err(io)?;
        files.push("tornado.csv".into());
    }
    if let Some(k) = args.patients_csv {
        output::write_patients(dir, &model, k, 0).map_err(io)?;
        files.push("patients.csv".into());
        files.push("patient_payments.csv".into());
    }
    let manifest = Manifest {
        obasim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_name: model.name.clone(),
        scenario_file: source.display_name.clone(),
        scenario_sha256: source.sha256(),
        seed: model.sim.seed,
        patients: model.sim.patients,
        draws,
        block_size: crate::engine::BLOCK_SIZE,
        threads,
        wall_time_seconds: wall,
        command_line: std::env::args().collect(),
        currency: model.currency.clone(),
        price_year: model.price_year,
        files,
    };
    output::write_manifest(dir, &manifest).map_err(io)?;
    let final_dir = staged.commit().map_err(io)?;
    if !args.quiet {
        print_headline(&model, &results);
        let extra = match (draws, args.tornado) {
            (0, false) => String::new(),
            _ => format!(
                " (base case{}{})",
                if draws > 0 {
                    format!(" + {draws} PSA draws")
                } else {
                    String::new()
                },
                if args.tornado {
                    format!(" + {} one-way runs", runs - 1 - draws as u64)
                } else {
                    String::new()
                }
            ),
        };
        eprintln!(
            "{} patients per run{extra} in {:.2} s on {} thread(s); results written to {}",
            model.sim.patients,
            wall,
            threads,
            final_dir.display()
        );
    }
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
    for c in &model.contracts {
        let get = |m: &str| r.summary_row(tname, &c.name, m);
        if let (Some(paid), Some(cost), Some(q)) =
            (get("drug_paid"), get("payer_cost"), get("qalys"))
        {
            eprintln!(
                "  {:<28} drug paid {:>14.0} ± {:<10.0} payer cost {:>14.0} ± {:<10.0} QALYs {:.3} ± {:.3}",
                c.name, paid.mean, paid.mcse, cost.mean, cost.mcse, q.mean, q.mcse
            );
        }
    }
}
