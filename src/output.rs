//! Writing a run's results: CSV tables and `manifest.json`, into a temporary directory that
//! is renamed into place only when everything has been written, so an interrupted or failed
//! run never leaves a directory that looks complete.

use crate::engine::PatientRecord;
use crate::model::Model;
use crate::results::Results;
use serde::Serialize;
use std::fs;
use std::io;
use std::path::Path;

/// The files every run writes.
pub const RUN_FILES: [&str; 9] = [
    "summary.csv",
    "incremental.csv",
    "cashflow.csv",
    "occupancy.csv",
    "quantiles.csv",
    "risk.csv",
    "prices.csv",
    "scenario.toml",
    "manifest.json",
];

/// Provenance of a run, written as `manifest.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// obasim version.
    pub obasim_version: String,
    /// Scenario name.
    pub scenario_name: String,
    /// Scenario file as given (or `<embedded>/...`).
    pub scenario_file: String,
    /// SHA-256 of the scenario file.
    pub scenario_sha256: String,
    /// SHA-256 of the data files the scenario read (its life table).
    pub data_sha256: String,
    /// Seed.
    pub seed: u64,
    /// Number of patients (per draw).
    pub patients: u64,
    /// PSA draws (0: none).
    pub draws: u32,
    /// Patients per fixed block (the reduction unit).
    pub block_size: u64,
    /// Worker threads used.
    pub threads: usize,
    /// Wall time of the simulation in seconds.
    pub wall_time_seconds: f64,
    /// The command line.
    pub command_line: Vec<String>,
    /// Currency and price year of all amounts.
    pub currency: String,
    /// Price year.
    pub price_year: i32,
    /// Files in the run directory.
    pub files: Vec<String>,
}

/// Provenance of a sweep or Slurm directory, written as its `manifest.json`: what ran, and
/// the files obasim wrote there (by which `--force` recognises the directory as its own).
#[derive(Clone, Debug, Serialize)]
pub struct DirManifest {
    /// obasim version.
    pub obasim_version: String,
    /// What wrote the directory: `sweep` or `slurm`.
    pub kind: String,
    /// Scenario name.
    pub scenario_name: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// SHA-256 of the scenario file.
    pub scenario_sha256: String,
    /// SHA-256 of the data files the scenario read.
    pub data_sha256: String,
    /// Seed.
    pub seed: u64,
    /// Number of patients (per point or run).
    pub patients: u64,
    /// The command line.
    pub command_line: Vec<String>,
    /// Files and directories (ending in `/`) obasim writes here.
    pub files: Vec<String>,
}

impl DirManifest {
    /// The manifest of a `kind` directory for `model` (overrides applied) of `source`.
    pub fn new(
        kind: &str,
        source: &crate::scenario::Source,
        model: &Model,
        files: Vec<String>,
    ) -> Self {
        DirManifest {
            obasim_version: env!("CARGO_PKG_VERSION").to_string(),
            kind: kind.to_string(),
            scenario_name: model.name.clone(),
            scenario_file: source.display_name.clone(),
            scenario_sha256: source.sha256(),
            data_sha256: model.data_sha256.clone(),
            seed: model.sim.seed,
            patients: model.sim.patients,
            command_line: std::env::args().collect(),
            files,
        }
    }
}

/// Writes a sweep or Slurm directory's `manifest.json`.
pub fn write_dir_manifest(dir: &Path, manifest: &DirManifest) -> io::Result<()> {
    let text = serde_json::to_string_pretty(manifest).map_err(io::Error::other)?;
    fs::write(dir.join("manifest.json"), text + "\n")
}

/// Writes `sweep.csv`: per point, its parameter values and every summary mean and
/// incremental value (`vs COMPARATOR` in the arm column, `metric@wtp` for thresholds).
pub fn write_sweep(
    dir: &Path,
    paths: &[&str],
    points: &[Vec<f64>],
    results: &[Results],
) -> io::Result<()> {
    let mut header = vec!["point".to_string()];
    header.extend(paths.iter().map(|p| p.to_string()));
    header.extend(["arm", "contract", "metric", "mean", "mcse"].map(String::from));
    let mut w = Table::create(dir, "sweep.csv", &header)?;
    for (k, (p, r)) in points.iter().zip(results).enumerate() {
        let lead = || {
            let mut rec = vec![k.to_string()];
            rec.extend(p.iter().map(|v| num(*v)));
            rec
        };
        for row in &r.summary {
            let mut rec = lead();
            rec.extend([
                row.arm.clone(),
                row.contract.clone(),
                row.metric.clone(),
                num(row.mean),
                num(row.mcse),
            ]);
            w.row(&rec)?;
        }
        for row in &r.incremental {
            let metric = match row.wtp {
                Some(wtp) => format!("{}@{}", row.metric, num(wtp)),
                None => row.metric.clone(),
            };
            let mut rec = lead();
            rec.extend([
                format!("vs {}", row.comparator),
                row.contract.clone(),
                metric,
                num(row.value),
                num(row.mcse),
            ]);
            w.row(&rec)?;
        }
    }
    w.finish()
}

/// Formats a number for CSV: shortest round-trip representation; empty if not finite.
pub fn num(x: f64) -> String {
    if x.is_finite() {
        // Avoid "-0" in outputs.
        if x == 0.0 {
            "0".to_string()
        } else {
            format!("{x}")
        }
    } else {
        String::new()
    }
}

fn csv_err(e: csv::Error) -> io::Error {
    io::Error::other(e)
}

/// A CSV file being written into a run directory: the header first, then one record at a
/// time; CSV errors come back as I/O errors.
struct Table(csv::Writer<fs::File>);

impl Table {
    /// Creates `dir/name` and writes its header.
    fn create<H, T>(dir: &Path, name: &str, header: H) -> io::Result<Self>
    where
        H: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut t = Table(csv::Writer::from_path(dir.join(name)).map_err(csv_err)?);
        t.row(header)?;
        Ok(t)
    }

    /// Writes one record.
    fn row<I, T>(&mut self, fields: I) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.0.write_record(fields).map_err(csv_err)
    }

    /// Flushes the file (its last records reach the disk or the error is returned).
    fn finish(mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Writes `dir/name`: the header, then one record per item of `rows`.
fn write_csv<R, T>(
    dir: &Path,
    name: &str,
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> io::Result<()>
where
    R: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut t = Table::create(dir, name, header)?;
    for r in rows {
        t.row(r)?;
    }
    t.finish()
}

/// The label of the overall rows in the `subgroup` column.
pub const ALL_PATIENTS: &str = "all";

/// The result sets written to the tables that have a `subgroup` column: the overall
/// results, then each subgroup level's; `None` when there are no subgroups (no column).
fn by_subgroup(r: &Results) -> Vec<(Option<&str>, &Results)> {
    let mut v = vec![((!r.subgroups.is_empty()).then_some(ALL_PATIENTS), r)];
    v.extend(r.subgroups.iter().map(|(l, g)| (Some(l.as_str()), g)));
    v
}

/// `header`, with a last `subgroup` column when there are subgroups.
fn with_subgroup<'a>(header: &[&'a str], r: &Results) -> Vec<&'a str> {
    let mut h = header.to_vec();
    if !r.subgroups.is_empty() {
        h.push("subgroup");
    }
    h
}

/// `fields`, with the subgroup label last when there is one.
fn labelled(mut fields: Vec<String>, label: Option<&str>) -> Vec<String> {
    if let Some(l) = label {
        fields.push(l.to_string());
    }
    fields
}

/// Writes the CSV tables into `dir`.
pub fn write_tables(dir: &Path, r: &Results) -> io::Result<()> {
    let sets = by_subgroup(r);
    write_csv(
        dir,
        "summary.csv",
        &with_subgroup(
            &[
                "arm", "contract", "metric", "mean", "mcse", "sd", "p025", "p50", "p975", "n",
            ],
            r,
        ),
        sets.iter().flat_map(|(label, g)| {
            g.summary.iter().map(move |x| {
                labelled(
                    vec![
                        x.arm.clone(),
                        x.contract.clone(),
                        x.metric.clone(),
                        num(x.mean),
                        num(x.mcse),
                        num(x.sd),
                        num(x.p025),
                        num(x.p50),
                        num(x.p975),
                        x.n.to_string(),
                    ],
                    *label,
                )
            })
        }),
    )?;

    write_csv(
        dir,
        "incremental.csv",
        &with_subgroup(
            &[
                "contract",
                "comparator",
                "metric",
                "wtp",
                "value",
                "mcse",
                "note",
            ],
            r,
        ),
        sets.iter().flat_map(|(label, g)| {
            g.incremental.iter().map(move |x| {
                labelled(
                    vec![
                        x.contract.clone(),
                        x.comparator.clone(),
                        x.metric.clone(),
                        x.wtp.map(num).unwrap_or_default(),
                        num(x.value),
                        num(x.mcse),
                        x.note.clone(),
                    ],
                    *label,
                )
            })
        }),
    )?;

    write_cashflow(dir, &sets)?;

    write_csv(
        dir,
        "occupancy.csv",
        &["arm", "time", "state", "share", "mcse"],
        r.occupancy.iter().map(|x| {
            [
                x.arm.clone(),
                num(x.time),
                x.state.clone(),
                num(x.share),
                num(x.mcse),
            ]
        }),
    )?;

    write_csv(
        dir,
        "prices.csv",
        &with_subgroup(
            &["contract", "comparator", "metric", "wtp", "value", "mcse"],
            r,
        ),
        sets.iter().flat_map(|(label, g)| {
            g.prices.iter().map(move |x| {
                labelled(
                    vec![
                        x.contract.clone(),
                        x.comparator.clone(),
                        x.metric.clone(),
                        x.wtp.map(num).unwrap_or_default(),
                        num(x.value),
                        num(x.mcse),
                    ],
                    *label,
                )
            })
        }),
    )?;

    write_csv(
        dir,
        "risk.csv",
        &["contract", "metric", "wtp", "value"],
        r.risk.iter().map(|x| {
            [
                x.contract.clone(),
                x.metric.clone(),
                x.wtp.map(num).unwrap_or_default(),
                num(x.value),
            ]
        }),
    )?;

    if !r.budget.is_empty() {
        write_csv(
            dir,
            "budget.csv",
            &[
                "arm",
                "contract",
                "year",
                "mean",
                "sd",
                "p025",
                "p50",
                "p975",
                "cap_rebate",
                "other_costs",
                "total",
                "replicates",
            ],
            r.budget.iter().map(|x| {
                [
                    x.arm.clone(),
                    x.contract.clone(),
                    x.year.to_string(),
                    num(x.mean),
                    num(x.sd),
                    num(x.p025),
                    num(x.p50),
                    num(x.p975),
                    num(x.cap_rebate),
                    num(x.other_costs),
                    num(x.total),
                    x.replicates.to_string(),
                ]
            }),
        )?;
    }

    write_csv(
        dir,
        "quantiles.csv",
        &["arm", "contract", "metric", "p", "value"],
        r.quantiles.iter().map(|x| {
            [
                x.arm.clone(),
                x.contract.clone(),
                x.metric.clone(),
                num(x.p),
                num(x.value),
            ]
        }),
    )
}

/// Writes `cashflow.csv`; with cost categories, a column `category` names the category
/// of each added row (empty on the rows of every cost); with subgroups, a last column
/// `subgroup`.
fn write_cashflow(dir: &Path, sets: &[(Option<&str>, &Results)]) -> io::Result<()> {
    let categories = sets[0].1.cashflow.iter().any(|x| x.category.is_some());
    let mut header = vec![
        "arm",
        "contract",
        "year",
        "payments",
        "payments_discounted",
        "other_costs",
        "other_costs_discounted",
        "total",
        "total_discounted",
        "admin_costs",
        "admin_costs_discounted",
    ];
    if categories {
        header.push("category");
    }
    if sets[0].0.is_some() {
        header.push("subgroup");
    }
    write_csv(
        dir,
        "cashflow.csv",
        &header,
        sets.iter().flat_map(|(label, g)| {
            g.cashflow.iter().map(move |x| {
                let mut v = vec![
                    x.arm.clone(),
                    x.contract.clone(),
                    x.year.to_string(),
                    num(x.payments),
                    num(x.payments_discounted),
                    num(x.other_costs),
                    num(x.other_costs_discounted),
                    num(x.payments + x.other_costs + x.admin_costs),
                    num(x.payments_discounted
                        + x.other_costs_discounted
                        + x.admin_costs_discounted),
                    num(x.admin_costs),
                    num(x.admin_costs_discounted),
                ];
                if categories {
                    v.push(x.category.clone().unwrap_or_default());
                }
                labelled(v, *label)
            })
        }),
    )
}

/// Copies the scenario text into the run directory as `scenario.toml` (provenance; the run
/// can be repeated from it, with data files resolved against the original location).
pub fn write_scenario_copy(dir: &Path, text: &str) -> io::Result<()> {
    fs::write(dir.join("scenario.toml"), text)
}

/// Writes the first patients' event histories (`patients.csv`) and payments
/// (`patient_payments.csv`) for checking by hand.
pub fn write_patients(dir: &Path, model: &Model, count: u64, draw: u64) -> io::Result<()> {
    let mut h = Table::create(
        dir,
        "patients.csv",
        [
            "patient",
            "sex",
            "age",
            "arm",
            "state",
            "entered",
            "left",
            "background_death",
        ],
    )?;
    let mut p = Table::create(
        dir,
        "patient_payments.csv",
        ["patient", "contract", "time", "amount"],
    )?;
    let mut rec = PatientRecord::new(model);
    for i in 0..count.min(model.sim.patients) {
        rec.simulate(model, draw, i);
        for (a, hist) in rec.histories.iter().enumerate() {
            let arm = &model.arms[a];
            for seg in &hist.segments {
                h.row([
                    i.to_string(),
                    rec.patient.sex.as_str().to_string(),
                    num(rec.patient.age),
                    arm.name.clone(),
                    arm.states[seg.state].name.clone(),
                    num(seg.start),
                    num(seg.end),
                    num(rec.patient.background_death),
                ])?;
            }
        }
        for (c, pays) in rec.payments.iter().enumerate() {
            for pay in pays {
                p.row([
                    i.to_string(),
                    model.contracts[c].name.clone(),
                    num(pay.time),
                    num(pay.amount),
                ])?;
            }
        }
    }
    h.finish()?;
    p.finish()?;
    Ok(())
}

/// Updates the `files` list of the `manifest.json` in `dir`, if there is one: drops the
/// entries `replaced` selects and adds `written` (after `obasim plot` redraws them). Other
/// fields are kept as they are.
pub fn add_to_manifest(
    dir: &Path,
    written: &[String],
    replaced: &dyn Fn(&str) -> bool,
) -> io::Result<()> {
    let path = dir.join("manifest.json");
    if !path.is_file() {
        return Ok(());
    }
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path)?).map_err(io::Error::other)?;
    let mut files: Vec<String> = v["files"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str())
                .filter(|f| !replaced(f.trim_end_matches('/')))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    files.extend(written.iter().cloned());
    v["files"] = serde_json::json!(files);
    let text = serde_json::to_string_pretty(&v).map_err(io::Error::other)?;
    fs::write(path, text + "\n")
}

/// Writes `manifest.json`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> io::Result<()> {
    let text = serde_json::to_string_pretty(manifest).map_err(io::Error::other)?;
    fs::write(dir.join("manifest.json"), text + "\n")
}

/// Writes the PSA tables: `draws.csv`, `params.csv`, `ce_plane.csv`, `ceac.csv`,
/// `evpi.csv` and `psa_incremental.csv`. Returns the file names written.
pub fn write_psa(
    dir: &Path,
    p: &crate::psa::analysis::PsaResults,
    model: &Model,
) -> io::Result<Vec<String>> {
    use crate::psa::analysis::{ceac, evpi};
    write_csv(
        dir,
        "draws.csv",
        &["draw", "arm", "contract", "metric", "mean", "mcse"],
        p.draws.iter().flat_map(|d| {
            d.results.summary.iter().map(|r| {
                [
                    d.draw.to_string(),
                    r.arm.clone(),
                    r.contract.clone(),
                    r.metric.clone(),
                    num(r.mean),
                    num(r.mcse),
                ]
            })
        }),
    )?;

    let mut header = vec!["draw".to_string()];
    header.extend(p.names.iter().cloned());
    let mut w = Table::create(dir, "params.csv", &header)?;
    let mut base = vec!["0".to_string()];
    base.extend(p.base_values.iter().map(|v| num(*v)));
    w.row(&base)?;
    for d in &p.draws {
        let mut row = vec![d.draw.to_string()];
        row.extend(d.values.iter().map(|v| num(*v)));
        w.row(&row)?;
    }
    w.finish()?;

    let mut w = Table::create(
        dir,
        "ce_plane.csv",
        [
            "draw",
            "contract",
            "comparator",
            "inc_cost",
            "inc_qalys",
            "inc_cost_mcse",
            "inc_qalys_mcse",
        ],
    )?;
    let inc = |r: &Results, c: &str, k: &str, m: &str| {
        r.incremental
            .iter()
            .find(|x| x.contract == c && x.comparator == k && x.metric == m)
            .map_or((f64::NAN, f64::NAN), |x| (x.value, x.mcse))
    };
    let comparators: Vec<String> = model
        .comparators()
        .iter()
        .map(|&a| model.arms[a].name.clone())
        .collect();
    for d in &p.draws {
        for c in &model.contracts {
            for k in &comparators {
                let (dc, sc) = inc(&d.results, &c.name, k, "inc_cost");
                let (dq, sq) = inc(&d.results, &c.name, k, "inc_qalys");
                w.row([
                    d.draw.to_string(),
                    c.name.clone(),
                    k.clone(),
                    num(dc),
                    num(dq),
                    num(sc),
                    num(sq),
                ])?;
            }
        }
    }
    w.finish()?;

    let mut w = Table::create(
        dir,
        "ceac.csv",
        [
            "wtp",
            "strategy",
            "arm",
            "contract",
            "probability_cost_effective",
            "expected_nmb",
            "on_frontier",
        ],
    )?;
    for (wtp, s, prob, nmb, frontier) in ceac(p) {
        let st = &p.strategies[s];
        w.row([
            num(wtp),
            st.name.clone(),
            st.arm.clone(),
            st.contract.clone(),
            num(prob),
            num(nmb),
            u8::from(frontier).to_string(),
        ])?;
    }
    w.finish()?;

    let mut w = Table::create(dir, "evpi.csv", ["wtp", "evpi_per_patient"])?;
    for (wtp, e) in evpi(p) {
        w.row([num(wtp), num(e)])?;
    }
    w.finish()?;

    let mut w = Table::create(
        dir,
        "psa_incremental.csv",
        [
            "contract",
            "comparator",
            "metric",
            "wtp",
            "mean",
            "p025",
            "p975",
            "mean_within_draw_mcse",
            "draws",
        ],
    )?;
    let k = p.draws.len();
    let q = |mut v: Vec<f64>, prob: f64| {
        v.sort_by(f64::total_cmp);
        let rank = ((prob * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    };
    for c in &model.contracts {
        for cmp in &comparators {
            let dc: Vec<(f64, f64)> = p
                .draws
                .iter()
                .map(|d| inc(&d.results, &c.name, cmp, "inc_cost"))
                .collect();
            let dq: Vec<(f64, f64)> = p
                .draws
                .iter()
                .map(|d| inc(&d.results, &c.name, cmp, "inc_qalys"))
                .collect();
            let mean = |v: &[(f64, f64)]| v.iter().map(|x| x.0).sum::<f64>() / k as f64;
            let mse = |v: &[(f64, f64)]| v.iter().map(|x| x.1).sum::<f64>() / k as f64;
            for (metric, v) in [("inc_cost", &dc), ("inc_qalys", &dq)] {
                let vals: Vec<f64> = v.iter().map(|x| x.0).collect();
                w.row([
                    c.name.clone(),
                    cmp.clone(),
                    metric.to_string(),
                    String::new(),
                    num(mean(v)),
                    num(q(vals.clone(), 0.025)),
                    num(q(vals, 0.975)),
                    num(mse(v)),
                    k.to_string(),
                ])?;
            }
            w.row([
                c.name.clone(),
                cmp.clone(),
                "icer".to_string(),
                String::new(),
                num(mean(&dc) / mean(&dq)),
                String::new(),
                String::new(),
                String::new(),
                k.to_string(),
            ])?;
            for &wtp in &model.sim.wtp {
                let prob = dc
                    .iter()
                    .zip(&dq)
                    .filter(|(c, q)| wtp * q.0 - c.0 > 0.0)
                    .count() as f64
                    / k as f64;
                w.row([
                    c.name.clone(),
                    cmp.clone(),
                    "prob_cost_effective".to_string(),
                    num(wtp),
                    num(prob),
                    String::new(),
                    String::new(),
                    String::new(),
                    k.to_string(),
                ])?;
            }
        }
    }
    w.finish()?;
    Ok([
        "draws.csv",
        "params.csv",
        "ce_plane.csv",
        "ceac.csv",
        "evpi.csv",
        "psa_incremental.csv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect())
}

/// Writes `tornado.csv`.
pub fn write_tornado(dir: &Path, rows: &[crate::psa::analysis::TornadoRow]) -> io::Result<()> {
    write_csv(
        dir,
        "tornado.csv",
        &[
            "parameter",
            "contract",
            "output",
            "base_output",
            "low",
            "high",
            "output_low",
            "output_high",
            "swing",
        ],
        rows.iter().map(|r| {
            [
                r.parameter.clone(),
                r.contract.clone(),
                r.output.clone(),
                num(r.base_output),
                num(r.low),
                num(r.high),
                num(r.output_low),
                num(r.output_high),
                num((r.output_high - r.output_low).abs()),
            ]
        }),
    )
}
