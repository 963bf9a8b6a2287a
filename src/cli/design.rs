//! `obasim sweep`, `obasim solve` and `obasim compare`: contract design over finished or
//! repeated runs.

use super::{
    commit, design_failure, inputs, interrupt_flag, io_failure, out_failure, pool, staged, Failure,
    Overrides,
};
use crate::design;
use crate::outdir::write_file;
use crate::output;
use crate::scenario::Source;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Replace an existing output directory, only if it holds obasim's results and nothing
    /// else (never the working directory, its parents, or a directory holding an input).
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
    /// Replace existing --out and --plot files, only if obasim's `compare` wrote them.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn sweep(args: SweepArgs) -> Result<(), Failure> {
    let source = Source::from_file(&args.file)?;
    let setup = crate::model::Setup::new(&source)?;
    let model = setup.base()?;
    let sets: Vec<design::SetSpec> = args
        .sets
        .iter()
        .map(|s| design::parse_set(s))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::BadInput(format!("error: --set {e}")))?;
    let paths: Vec<&str> = sets.iter().map(|s| s.path.as_str()).collect();
    let knobs = design::locate(&setup, &paths)?;
    let points = design::grid(&sets);
    let ov = Overrides {
        seed: args.seed,
        patients: args.patients,
    };
    let staged = staged(&args.out, args.force, inputs(&source, &model))?;
    let cancel = interrupt_flag();
    let started = Instant::now();
    let results = pool(args.threads, args.quiet)?
        .install(|| design::sweep(&setup, &knobs, &points, ov, &|_| {}, cancel))
        .map_err(design_failure)?;
    // A sweep keeps means and errors only (no quantiles): check what it reports.
    for r in &results {
        r.check_finite_draw()
            .map_err(|e| Failure::BadInput(format!("error: {e}")))?;
    }
    let dir = staged.path();
    output::write_sweep(dir, &paths, &points, &results).map_err(io_failure)?;
    output::write_scenario_copy(dir, &source.text).map_err(io_failure)?;
    let plots = if args.no_plots {
        crate::plots::sweep::SweepPlots::default()
    } else {
        crate::plots::sweep::draw_sweep(dir)
            .map_err(|e| Failure::Other(format!("drawing the sweep plots: {e}")))?
    };
    let mut files = vec!["sweep.csv".to_string(), "scenario.toml".to_string()];
    files.extend(plots.file_names());
    let mut m = model.clone();
    ov.apply(&mut m);
    let manifest = output::DirManifest::new("sweep", &source, &m, files);
    output::write_dir_manifest(dir, &manifest).map_err(io_failure)?;
    let dir = commit(staged)?;
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

pub(super) fn solve(args: SolveArgs) -> Result<(), Failure> {
    let source = Source::from_file(&args.file)?;
    let setup = crate::model::Setup::new(&source)?;
    setup.base()?;
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
    let knob = design::locate(&setup, &[args.vary.as_str()])?.remove(0);
    let ov = Overrides {
        seed: args.seed,
        patients: args.patients,
    };
    let cancel = interrupt_flag();
    let s = pool(args.threads, false)?
        .install(|| {
            design::solve(
                &setup,
                knob,
                (lo, hi),
                &target,
                args.tolerance,
                ov,
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

pub(super) fn compare(args: CompareArgs) -> Result<(), Failure> {
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
        let bytes = compare_csv(&rows).map_err(io_failure)?;
        write_file(out, &bytes, args.force, &is_compare_csv).map_err(out_failure)?;
    }
    if let (Some(path), Some(data)) = (&args.plot, &plot_data) {
        let bytes = crate::plots::compare::render_compare(data, path)
            .map_err(|e| Failure::Other(format!("drawing the comparison plot: {e}")))?;
        write_file(path, &bytes, args.force, &crate::plots::is_obasim_plot).map_err(out_failure)?;
        eprintln!("plot of {} written to {}", args.metric, path.display());
    }
    Ok(())
}

/// The header of the CSV `compare --out` writes.
const COMPARE_HEADER: &str = "run,scenario,arm,contract,metric,mean,mcse";

/// Whether `bytes` are a table `compare --out` wrote.
fn is_compare_csv(bytes: &[u8]) -> bool {
    bytes.starts_with(format!("{COMPARE_HEADER}\n").as_bytes())
}

/// The rows of `compare` as CSV (full precision).
fn compare_csv(rows: &[crate::design::CompareRow]) -> std::io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = std::io::Error::other;
    w.write_record(COMPARE_HEADER.split(',')).map_err(io)?;
    for r in rows {
        w.write_record([
            r.run.as_str(),
            &r.scenario,
            &r.arm,
            &r.contract,
            &r.metric,
            &output::num(r.mean),
            &output::num(r.mcse),
        ])
        .map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}
