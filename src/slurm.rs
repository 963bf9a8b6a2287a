//! `obasim slurm`: writes (and optionally submits) a Slurm job array that runs the shards of
//! a scenario (`obasim run FILE --shard i/N`), and a merge job that depends on it
//! (`obasim merge`).
//!
//! The output directory gets `shards.sbatch` (the array, one task per shard),
//! `merge.sbatch`, `submit.sh` (submits both, the merge with `--dependency=afterok`), and
//! the directories `shards/` (one directory per task), `logs/` and, after the merge,
//! `results/`. Every path in the scripts is absolute and shell-quoted.

use crate::outdir::{Request, StagedDir};
use crate::output::DirManifest;
use crate::plan::Plan;
use crate::psa::analysis::PsaError;
use crate::scenario::Source;
use clap::Args;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Name of the job-array script.
pub const SHARDS_SCRIPT: &str = "shards.sbatch";
/// Name of the merge job script.
pub const MERGE_SCRIPT: &str = "merge.sbatch";
/// Name of the script that submits both.
pub const SUBMIT_SCRIPT: &str = "submit.sh";

/// Options of `obasim slurm`.
#[derive(Args, Debug, Clone)]
pub struct SlurmArgs {
    /// Scenario file (TOML).
    pub file: PathBuf,
    /// Number of shards (tasks of the job array).
    #[arg(long, value_name = "N")]
    pub shards: u32,
    /// Directory for the scripts, the shards, the logs and the merged results (DIR/results).
    /// It must be on a file system that every node sees.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace a non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Also submit the jobs (with `sbatch`): the array, then the merge after it.
    #[arg(long)]
    pub submit: bool,
    /// Slurm partition (`#SBATCH --partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each job (`#SBATCH --time`), e.g. 00:30:00.
    #[arg(long)]
    pub time: Option<String>,
    /// Memory of each job (`#SBATCH --mem`), e.g. 2G.
    #[arg(long)]
    pub mem: Option<String>,
    /// CPUs of each job (`#SBATCH --cpus-per-task`); each shard runs that many threads.
    #[arg(long, value_name = "N")]
    pub cpus_per_task: Option<u32>,
    /// Account to charge (`#SBATCH --account`).
    #[arg(long)]
    pub account: Option<String>,
    /// The obasim binary the jobs run. Default: this executable's absolute path. A bare
    /// name (no `/`) is looked up on the compute nodes' PATH.
    #[arg(long, value_name = "PATH")]
    pub obasim: Option<PathBuf>,
    /// PSA draws, passed to every shard (overrides `[psa] draws`).
    #[arg(long, value_name = "K")]
    pub draws: Option<u32>,
    /// One-way sensitivity runs, passed to every shard.
    #[arg(long)]
    pub tornado: bool,
    /// Patients per run, passed to every shard (overrides the scenario's).
    #[arg(long, value_name = "N")]
    pub patients: Option<u64>,
    /// Seed, passed to every shard (overrides the scenario's).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Passed to every shard: run even if a shard's estimated time or memory is beyond
    /// `run`'s limits.
    #[arg(long)]
    pub allow_large: bool,
}

/// Why `obasim slurm` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmError {
    /// Bad input: the scenario, the options or the output directory (exit code 2). The
    /// message is complete (it carries its own `error:` prefix where one is due).
    BadInput(String),
    /// Any other failure: writing the scripts, `sbatch` missing or failing (exit code 1).
    Other(String),
}

impl fmt::Display for SlurmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlurmError::BadInput(m) | SlurmError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SlurmError {}

fn bad(m: impl fmt::Display) -> SlurmError {
    SlurmError::BadInput(format!("error: {m}"))
}

/// Quotes `s` for a POSIX shell (single quotes; a quote inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:=@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A path as UTF-8 text for a script, refusing characters that cannot be written safely
/// into an `#SBATCH` line (double quotes, backslashes, control characters).
fn script_path(p: &Path, what: &str) -> Result<String, SlurmError> {
    let s = p.to_str().ok_or_else(|| {
        bad(format_args!(
            "{what} `{}` is not valid UTF-8: it cannot be written into a job script",
            p.display()
        ))
    })?;
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() || *c == '"' || *c == '\\')
    {
        return Err(bad(format_args!(
            "{what} `{}` contains {c:?}, which cannot be written safely into a job script: choose another path",
            s.escape_debug()
        )));
    }
    Ok(s.to_string())
}

/// A Slurm option value for an `#SBATCH` line: no whitespace, quotes or shell syntax.
fn sbatch_value(name: &str, v: &str) -> Result<String, SlurmError> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:,+@=%/[]".contains(c));
    if !ok {
        return Err(bad(format_args!(
            "--{name} `{}` is not a valid Slurm value (letters, digits and - _ . : , + @ = % / [ ] only)",
            v.escape_debug()
        )));
    }
    Ok(v.to_string())
}

/// An `#SBATCH` file name pattern: `%` is special there, so a literal one is doubled.
fn sbatch_pattern(dir: &str, file: &str) -> String {
    format!("\"{}/{file}\"", dir.replace('%', "%%"))
}

/// A job name from the scenario's file stem: letters, digits, `-`, `_`, `.` only.
fn job_name(stem: &str) -> String {
    let s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("obasim-{s}")
}

/// Everything the scripts are made of, resolved and checked.
#[derive(Debug, Clone)]
struct Spec {
    shards: u32,
    obasim: String,
    scenario: String,
    out: String,
    job: String,
    sbatch_options: Vec<(String, String)>,
    pass_through: Vec<String>,
    scenario_sha256: String,
    units: u64,
    /// Files the jobs read: the `--out` directory may not hold them.
    inputs: Vec<PathBuf>,
    /// What goes into the directory's manifest.json.
    manifest: DirManifest,
}

impl Spec {
    fn directives(&self) -> String {
        self.sbatch_options
            .iter()
            .map(|(k, v)| format!("#SBATCH --{k}={v}\n"))
            .collect()
    }

    fn pass_through(&self) -> String {
        self.pass_through
            .iter()
            .map(|a| format!(" {}", shell_quote(a)))
            .collect()
    }

    fn run_options_note(&self) -> String {
        if self.pass_through.is_empty() {
            "(none)".into()
        } else {
            self.pass_through.join(" ")
        }
    }

    fn shards_script(&self) -> String {
        let n = self.shards;
        let dir = shell_quote(&self.out);
        let script = shell_quote(&format!("{}/{SHARDS_SCRIPT}", self.out));
        let merge = shell_quote(&format!("{}/{MERGE_SCRIPT}", self.out));
        format!(
            r#"#!/bin/bash
# obasim job array: {n} shard(s) of {scenario_q}
# (scenario SHA-256 {sha}; {units} work units; run options {opts}).
# Written by `obasim slurm`; task i runs `obasim run FILE --shard i/{n}` into
# {dir}/shards/shard-i and logs to {dir}/logs/.
#
# Submit everything (this array, then the merge once every task succeeded):
#   bash {submit}
# If a task fails, the merge job stays pending (DependencyNeverSatisfied): scancel it,
# read the task's log, and rerun the task alone (here task 3; several: --array=3,7), then
# the merge:
#   sbatch --array=3 {script}
#   sbatch {merge}
# (or wait for the rerun: sbatch --dependency=afterok:JOBID {merge}).
# Without Slurm, task i runs as: SLURM_ARRAY_TASK_ID=i bash {script}
#SBATCH --job-name={job}
#SBATCH --array=0-{last}
#SBATCH --ntasks=1
#SBATCH --output={log}
{directives}
set -euo pipefail
OBASIM={obasim}
SCENARIO={scenario_q}
OUT={dir}
: "${{SLURM_ARRAY_TASK_ID:?is not set: submit this script with sbatch (it is a job array), or set it to the shard index}}"
exec "$OBASIM" run "$SCENARIO" --shard "${{SLURM_ARRAY_TASK_ID}}/{n}" --out "$OUT/shards/shard-${{SLURM_ARRAY_TASK_ID}}" --force --quiet --threads "${{SLURM_CPUS_PER_TASK:-1}}"{pass}
"#,
            scenario_q = shell_quote(&self.scenario),
            sha = self.scenario_sha256,
            units = self.units,
            opts = self.run_options_note(),
            submit = shell_quote(&format!("{}/{SUBMIT_SCRIPT}", self.out)),
            job = self.job,
            last = n - 1,
            log = sbatch_pattern(&self.out, "logs/shard-%a.%A.out"),
            directives = self.directives(),
            obasim = shell_quote(&self.obasim),
            pass = self.pass_through(),
        )
    }

    fn merge_script(&self) -> String {
        let n = self.shards;
        let dir = shell_quote(&self.out);
        format!(
            r#"#!/bin/bash
# obasim merge job: combines the {n} shard(s) in {dir}/shards into {dir}/results
# (byte-identical to the unsharded run). `obasim merge` refuses shards of different runs
# (scenario, version, seed, patients, draws, partition) and names any missing shard.
# Written by `obasim slurm`; submitted by submit.sh after the array succeeded, or by hand:
#   sbatch {merge}
#SBATCH --job-name={job}-merge
#SBATCH --ntasks=1
#SBATCH --output={log}
{directives}
set -euo pipefail
OBASIM={obasim}
OUT={dir}
shopt -s nullglob
shards=("$OUT"/shards/shard-*)
if [ "${{#shards[@]}}" -eq 0 ]; then
  echo "error: no shard directories in $OUT/shards: run the job array first" >&2
  exit 1
fi
exec "$OBASIM" merge "${{shards[@]}}" --out "$OUT/results" --force
"#,
            merge = shell_quote(&format!("{}/{MERGE_SCRIPT}", self.out)),
            job = self.job,
            log = sbatch_pattern(&self.out, "logs/merge.%j.out"),
            directives = self.directives(),
            obasim = shell_quote(&self.obasim),
        )
    }

    fn submit_script(&self) -> String {
        format!(
            r#"#!/bin/bash
# Submits the obasim job array ({n} shard(s)), then the merge job, which starts only once
# every task of the array succeeded (afterok). Prints both job ids.
# Written by `obasim slurm`.
set -euo pipefail
DIR={dir}
shards_id=$(sbatch --parsable "$DIR/{SHARDS_SCRIPT}")
shards_id=${{shards_id%%;*}}
echo "shards job: $shards_id"
merge_id=$(sbatch --parsable --dependency=afterok:"$shards_id" "$DIR/{MERGE_SCRIPT}")
merge_id=${{merge_id%%;*}}
echo "merge job: $merge_id"
echo "results (when the merge job is done): $DIR/results"
"#,
            n = self.shards,
            dir = shell_quote(&self.out),
        )
    }
}

/// Resolves and checks everything: the scenario (loaded, with every PSA draw and one-way
/// run compiled), the options, the paths.
fn spec(args: &SlurmArgs) -> Result<Spec, SlurmError> {
    if args.shards == 0 {
        return Err(bad("--shards 0 is not allowed: at least 1"));
    }
    if args.patients == Some(0) {
        return Err(bad("--patients 0 is not allowed: at least 1"));
    }
    if args.cpus_per_task == Some(0) {
        return Err(bad("--cpus-per-task 0 is not allowed: at least 1"));
    }
    let source = Source::from_file(&args.file).map_err(|e| SlurmError::BadInput(e.to_string()))?;
    let setup =
        crate::model::Setup::new(&source).map_err(|e| SlurmError::BadInput(e.to_string()))?;
    let adjust = crate::plan::Adjust {
        seed: args.seed,
        patients: args.patients,
    };
    let mut model = setup
        .base()
        .map_err(|e| SlurmError::BadInput(e.to_string()))?;
    adjust.apply(&mut model);
    if let Some(c) = &model.cohort {
        // The same check as `obasim run` makes, so that no shard fails on it.
        if model.sim.patients / c.size() < 2 {
            return Err(bad(format_args!(
                "{} patients is too few for the scenario's [cohort]: one cohort has {} patients and cohort-level results need at least two simulated cohorts ({} patients)",
                model.sim.patients,
                c.size(),
                2 * c.size()
            )));
        }
    }
    let draws = args.draws.unwrap_or(setup.params.settings.draws);
    let plan = Plan::new(setup, adjust, draws, args.tornado).map_err(|e| match e {
        PsaError::Run(r) => SlurmError::Other(r.to_string()),
        other => bad(other),
    })?;
    let units = plan.unit_count();

    let scenario_abs = std::fs::canonicalize(&args.file)
        .map_err(|e| bad(format_args!("{}: {e}", args.file.display())))?;
    let scenario = script_path(&scenario_abs, "the scenario path")?;
    let out_abs = std::path::absolute(&args.out)
        .map_err(|e| bad(format_args!("--out {}: {e}", args.out.display())))?;
    let out_abs = normalize(&out_abs);
    let out = script_path(&out_abs, "--out")?;
    let obasim = match &args.obasim {
        Some(p) if p.components().count() == 1 && !p.is_absolute() => script_path(p, "--obasim")?,
        Some(p) => {
            let abs = std::path::absolute(p)
                .map_err(|e| bad(format_args!("--obasim {}: {e}", p.display())))?;
            script_path(&normalize(&abs), "--obasim")?
        }
        None => {
            let exe = std::env::current_exe().map_err(|e| {
                SlurmError::Other(format!(
                    "cannot find the path of this executable ({e}): give it with --obasim PATH"
                ))
            })?;
            script_path(&exe, "this executable's path")?
        }
    };

    let mut sbatch_options = Vec::new();
    for (name, value) in [
        ("partition", &args.partition),
        ("account", &args.account),
        ("time", &args.time),
        ("mem", &args.mem),
    ] {
        if let Some(v) = value {
            sbatch_options.push((name.to_string(), sbatch_value(name, v)?));
        }
    }
    if let Some(c) = args.cpus_per_task {
        sbatch_options.push(("cpus-per-task".into(), c.to_string()));
    }
    let mut pass_through = Vec::new();
    if let Some(p) = args.patients {
        pass_through.extend(["--patients".to_string(), p.to_string()]);
    }
    if let Some(s) = args.seed {
        pass_through.extend(["--seed".to_string(), s.to_string()]);
    }
    if let Some(d) = args.draws {
        pass_through.extend(["--draws".to_string(), d.to_string()]);
    }
    if args.tornado {
        pass_through.push("--tornado".into());
    }
    if args.allow_large {
        pass_through.push("--allow-large".into());
    }
    Ok(Spec {
        shards: args.shards,
        obasim,
        scenario,
        out,
        job: job_name(&source.stem),
        sbatch_options,
        pass_through,
        scenario_sha256: source.sha256(),
        units,
        inputs: std::iter::once(args.file.clone())
            .chain(model.data_files.iter().cloned())
            .collect(),
        manifest: DirManifest::new(
            "slurm",
            &source,
            &model,
            [
                SHARDS_SCRIPT,
                MERGE_SCRIPT,
                SUBMIT_SCRIPT,
                "shards/",
                "logs/",
                "results/",
            ]
            .map(String::from)
            .to_vec(),
        ),
    })
}

/// Removes `.` and `..` components lexically (the path is absolute).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Finds an executable `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs `sbatch --parsable ARGS` and returns the job id it printed.
fn sbatch(sbatch: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(sbatch)
        .arg("--parsable")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", sbatch.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "`sbatch --parsable {}` failed ({}): {}",
            args.join(" "),
            out.status,
            stderr.trim()
        ));
    }
    let id = stdout.trim().split(';').next().unwrap_or("").trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`sbatch --parsable {}` printed no job id: {} {}",
            args.join(" "),
            stdout.trim(),
            stderr.trim()
        ));
    }
    Ok(id.to_string())
}

/// `obasim slurm`: checks the scenario (every run it plans is compiled, so a broken file
/// fails here with [`SlurmError::BadInput`] before anything is written or submitted),
/// writes `shards.sbatch`, `merge.sbatch` and `submit.sh` into `--out`, and with
/// `--submit` submits the array and the dependent merge job, printing both job ids.
pub fn slurm(args: &SlurmArgs) -> Result<(), SlurmError> {
    let spec = spec(args)?;
    let sbatch_bin = if args.submit {
        Some(on_path("sbatch").ok_or_else(|| {
            SlurmError::Other(
                "--submit: `sbatch` is not on PATH (is this a Slurm login node?); nothing was written or submitted. Run without --submit to only write the scripts"
                    .into(),
            )
        })?)
    } else {
        None
    };
    let out_error = |e: crate::outdir::OutputDirError| {
        if e.is_bad_input() {
            bad(e)
        } else {
            SlurmError::Other(e.to_string())
        }
    };
    let request = Request {
        force: args.force,
        inputs: spec.inputs.clone(),
    };
    let staged = StagedDir::create(Path::new(&spec.out), &request).map_err(out_error)?;
    let write_err = |e: std::io::Error| SlurmError::Other(format!("writing the job scripts: {e}"));
    let dir = staged.path();
    for sub in ["shards", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(write_err)?;
    }
    for (name, text) in [
        (SHARDS_SCRIPT, spec.shards_script()),
        (MERGE_SCRIPT, spec.merge_script()),
        (SUBMIT_SCRIPT, spec.submit_script()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(write_err)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(write_err)?;
    }
    crate::output::write_dir_manifest(dir, &spec.manifest).map_err(write_err)?;
    staged.commit().map_err(out_error)?;
    if spec.shards as u64 > spec.units {
        eprintln!(
            "warning: {} shards but only {} work units: shards {}..{} have nothing to do",
            spec.shards,
            spec.units,
            spec.units,
            spec.shards - 1
        );
    }
    if spec.shards > 1001 {
        eprintln!(
            "warning: {} array tasks: many clusters limit arrays to MaxArraySize (default 1001)",
            spec.shards
        );
    }
    let out = &spec.out;
    eprintln!(
        "wrote {out}/{SHARDS_SCRIPT} ({} shard task(s), {} work units), {out}/{MERGE_SCRIPT} and {out}/{SUBMIT_SCRIPT}",
        spec.shards, spec.units
    );
    let Some(sbatch_bin) = sbatch_bin else {
        eprintln!(
            "submit with: bash {}",
            shell_quote(&format!("{out}/{SUBMIT_SCRIPT}"))
        );
        return Ok(());
    };
    let shards_path = format!("{out}/{SHARDS_SCRIPT}");
    let merge_path = format!("{out}/{MERGE_SCRIPT}");
    let shards_id = sbatch(&sbatch_bin, &[&shards_path]).map_err(SlurmError::Other)?;
    println!("shards job: {shards_id}");
    let dependency = format!("--dependency=afterok:{shards_id}");
    let merge_id = sbatch(&sbatch_bin, &[&dependency, &merge_path]).map_err(|e| {
        SlurmError::Other(format!(
            "{e}\nthe job array {shards_id} was submitted; submit the merge by hand: sbatch {dependency} {}",
            shell_quote(&merge_path)
        ))
    })?;
    println!("merge job: {merge_id}");
    println!("results (when the merge job is done): {out}/results");
    Ok(())
}
