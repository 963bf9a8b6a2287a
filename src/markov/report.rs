//! `obasim cohort FILE`: the exact cohort results of a scenario's discrete-time arms as CSV.

use super::cohort::{cohort, CohortResult};
use crate::engine::tally::{ARM_METRICS, CONTRACT_METRICS};
use crate::model::build::{load, NO_CONTRACT};
use crate::model::Model;
use crate::scenario::Source;
use std::io::Write;
use std::path::PathBuf;

/// Options of `obasim cohort`.
#[derive(clap::Args, Debug)]
pub struct CohortArgs {
    /// Scenario file (TOML) with discrete-time arms (`[arms.markov]`).
    pub file: PathBuf,
    /// Print the cohort trace (share of the cohort in each state at each cycle boundary)
    /// instead of the totals.
    #[arg(long)]
    pub trace: bool,
}

/// Why `obasim cohort` failed: bad input (exit code 2) or another failure.
#[derive(Debug)]
pub enum CohortFailure {
    /// The scenario is invalid.
    BadInput(String),
    /// Writing failed.
    Other(String),
}

/// Runs `obasim cohort`: loads the scenario and prints the exact cohort results (or trace) as
/// CSV on stdout.
pub fn cohort_command(args: &CohortArgs) -> Result<(), CohortFailure> {
    let source =
        Source::from_file(&args.file).map_err(|e| CohortFailure::BadInput(e.to_string()))?;
    let (_, model) = load(&source).map_err(|e| CohortFailure::BadInput(e.to_string()))?;
    if model.arms.iter().all(|a| a.discrete.is_none()) {
        return Err(CohortFailure::BadInput(format!(
            "{}: no discrete-time arm (add an [arms.markov] table); continuous-time arms are evaluated by `obasim run`",
            args.file.display()
        )));
    }
    let result = cohort(&model);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if args.trace {
        write_trace(&model, &result, &mut out)
    } else {
        write_results(&model, &result, &mut out)
    };
    match written {
        // A closed pipe (`obasim cohort f.toml | head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| CohortFailure::Other(format!("writing the results: {e}"))),
    }
}

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn number(v: f64) -> String {
    format!("{v}")
}

/// Writes `arm,contract,comparator,metric,value,note`: every arm metric, every contract
/// metric of the therapy arm, and the increments against each comparator (with the ICER).
/// Values that are not computed are empty, with the reason in `note`.
pub fn write_results(model: &Model, r: &CohortResult, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "arm,contract,comparator,metric,value,note")?;
    for (a, arm) in r.arms.iter().enumerate() {
        let contracts: Vec<&str> = if a == r.therapy {
            model.contracts.iter().map(|c| c.name.as_str()).collect()
        } else {
            vec![NO_CONTRACT]
        };
        for c in contracts {
            for (m, name) in ARM_METRICS.iter().enumerate() {
                match &arm.totals {
                    Ok(t) => {
                        let v = [
                            t.other_costs,
                            t.other_costs_undiscounted,
                            t.qalys,
                            t.qalys_undiscounted,
                            t.life_years,
                            t.life_years_undiscounted,
                        ][m];
                        writeln!(
                            out,
                            "{},{},,{name},{},",
                            field(&arm.name),
                            field(c),
                            number(v)
                        )?;
                    }
                    Err(e) => writeln!(
                        out,
                        "{},{},,{name},,{}",
                        field(&arm.name),
                        field(c),
                        field(e)
                    )?,
                }
            }
        }
    }
    let therapy = &r.arms[r.therapy];
    for c in &r.contracts {
        for (m, name) in CONTRACT_METRICS.iter().enumerate() {
            match &c.values {
                Ok(v) => writeln!(
                    out,
                    "{},{},,{name},{},",
                    field(&therapy.name),
                    field(&c.name),
                    number(v[m])
                )?,
                Err(e) => writeln!(
                    out,
                    "{},{},,{name},,{}",
                    field(&therapy.name),
                    field(&c.name),
                    field(e)
                )?,
            }
        }
        for cmp in model.comparators() {
            let other = &r.arms[cmp];
            let inc = match (&c.values, &therapy.totals, &other.totals) {
                (Ok(v), Ok(t), Ok(o)) => Ok((
                    v[0] - o.other_costs,
                    t.qalys - o.qalys,
                    t.life_years - o.life_years,
                )),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e.clone()),
            };
            for (k, name) in ["inc_cost", "inc_qalys", "inc_life_years", "icer"]
                .iter()
                .enumerate()
            {
                match &inc {
                    Ok((dc, dq, dl)) => {
                        let v = [*dc, *dq, *dl, dc / dq][k];
                        let note = if k == 3 && *dq == 0.0 {
                            "no QALY difference"
                        } else {
                            ""
                        };
                        writeln!(
                            out,
                            "{},{},{},{name},{},{note}",
                            field(&therapy.name),
                            field(&c.name),
                            field(&other.name),
                            number(v)
                        )?;
                    }
                    Err(e) => writeln!(
                        out,
                        "{},{},{},{name},,{}",
                        field(&therapy.name),
                        field(&c.name),
                        field(&other.name),
                        field(e)
                    )?,
                }
            }
        }
    }
    Ok(())
}

/// Writes `arm,cycle,time,state,share`: the cohort trace of every discrete-time arm.
pub fn write_trace(model: &Model, r: &CohortResult, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "arm,cycle,time,state,share")?;
    for (arm, res) in model.arms.iter().zip(&r.arms) {
        for (k, row) in res.trace.iter().enumerate() {
            for (s, share) in row.iter().enumerate() {
                writeln!(
                    out,
                    "{},{k},{},{},{}",
                    field(&arm.name),
                    number(res.times[k]),
                    field(&arm.states[s].name),
                    number(*share)
                )?;
            }
        }
    }
    Ok(())
}
