//! Reading a finished run directory (the files `obasim run` writes) for plots and the report.
//! Only reads; the formats are those documented in README.md. Columns that a later version
//! adds are ignored; empty numeric fields (non-finite values) read as `None`.

use super::PlotError;
use crate::scenario::{Scenario, Source};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};

/// The contract name that comparator arms carry in the tables.
pub const NO_CONTRACT: &str = "none";

/// Files of a probabilistic sensitivity analysis (`--draws`) and of the one-way analysis
/// (`--tornado`); [`RunData::psa_files`] lists those present.
pub const PSA_FILES: [&str; 7] = [
    "params.csv",
    "draws.csv",
    "ce_plane.csv",
    "ceac.csv",
    "evpi.csv",
    "psa_incremental.csv",
    "tornado.csv",
];

/// One row of `summary.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct SummaryRow {
    /// Arm name.
    pub arm: String,
    /// Contract name (`none` for comparators).
    pub contract: String,
    /// Metric name (`payer_cost`, `drug_paid`, ...).
    pub metric: String,
    /// Mean per patient.
    pub mean: Option<f64>,
    /// Monte Carlo standard error of the mean.
    pub mcse: Option<f64>,
    /// Standard deviation over patients.
    pub sd: Option<f64>,
    /// 2.5th percentile over patients.
    pub p025: Option<f64>,
    /// Median over patients.
    pub p50: Option<f64>,
    /// 97.5th percentile over patients.
    pub p975: Option<f64>,
    /// Number of patients.
    pub n: Option<u64>,
    /// Subgroup level (`name=level`; none or `all`: every patient).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub subgroup: Option<String>,
}

/// One row of `incremental.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct IncrementalRow {
    /// Contract of the therapy arm.
    pub contract: String,
    /// Comparator arm.
    pub comparator: String,
    /// `inc_cost`, `inc_qalys`, `inc_life_years`, `icer` or `inc_nmb`.
    pub metric: String,
    /// Willingness to pay per QALY (for `inc_nmb`).
    pub wtp: Option<f64>,
    /// The value.
    pub value: Option<f64>,
    /// Its Monte Carlo standard error (paired).
    pub mcse: Option<f64>,
    /// A note (for the ICER: the quadrant, e.g. dominant).
    #[serde(default)]
    pub note: Option<String>,
    /// Subgroup level (`name=level`; none or `all`: every patient).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub subgroup: Option<String>,
}

/// One row of `cashflow.csv`: expected amounts per patient in year [year, year + 1).
#[derive(Clone, Debug, Deserialize)]
pub struct CashflowRow {
    /// Arm name.
    pub arm: String,
    /// Contract name.
    pub contract: String,
    /// Years since treatment (start of the year).
    pub year: f64,
    /// Drug payments, undiscounted.
    pub payments: Option<f64>,
    /// Drug payments, discounted at the payer's rate.
    pub payments_discounted: Option<f64>,
    /// Other payer costs, undiscounted.
    pub other_costs: Option<f64>,
    /// Other payer costs, discounted.
    pub other_costs_discounted: Option<f64>,
    /// Payments plus other costs, undiscounted.
    pub total: Option<f64>,
    /// Payments plus other costs, discounted.
    pub total_discounted: Option<f64>,
    /// The cost category of the row (none: every cost).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub category: Option<String>,
    /// Subgroup level (`name=level`; none or `all`: every patient).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub subgroup: Option<String>,
}

/// Whether a row's `subgroup` is every patient.
fn overall(subgroup: &Option<String>) -> bool {
    subgroup
        .as_deref()
        .is_none_or(|g| g == crate::output::ALL_PATIENTS)
}

/// An empty CSV field as `None`.
fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(s.filter(|s| !s.is_empty()))
}

/// One row of `occupancy.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct OccupancyRow {
    /// Arm name.
    pub arm: String,
    /// Years since treatment.
    pub time: f64,
    /// State name.
    pub state: String,
    /// Share of patients in the state.
    pub share: Option<f64>,
    /// Binomial Monte Carlo standard error of the share.
    pub mcse: Option<f64>,
}

/// One row of `quantiles.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct QuantileRow {
    /// Arm name.
    pub arm: String,
    /// Contract name.
    pub contract: String,
    /// Metric name.
    pub metric: String,
    /// Probability in [0, 1].
    pub p: f64,
    /// Quantile of the per-patient distribution at `p`.
    pub value: Option<f64>,
}

/// One row of `budget.csv` (written by later versions): payer spend on the treated cohorts
/// in a calendar year.
#[derive(Clone, Debug, Deserialize)]
pub struct BudgetRow {
    /// Arm name.
    pub arm: String,
    /// Contract name.
    pub contract: String,
    /// Calendar year.
    pub year: f64,
    /// Mean spend.
    pub mean: Option<f64>,
    /// Standard deviation of the spend.
    pub sd: Option<f64>,
    /// 2.5th percentile.
    pub p025: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 97.5th percentile.
    pub p975: Option<f64>,
}

/// One row of `ce_plane.csv`: a PSA draw's incremental cost and QALYs.
#[derive(Clone, Debug, Deserialize)]
pub struct CePlaneRow {
    /// Draw number (1, 2, ...).
    pub draw: u64,
    /// Contract of the therapy arm.
    pub contract: String,
    /// Comparator arm.
    pub comparator: String,
    /// Incremental cost per patient.
    pub inc_cost: Option<f64>,
    /// Incremental QALYs per patient.
    pub inc_qalys: Option<f64>,
}

/// One row of `ceac.csv`: a strategy's probability of the highest net monetary benefit at a
/// threshold.
#[derive(Clone, Debug, Deserialize)]
pub struct CeacRow {
    /// Willingness to pay per QALY.
    pub wtp: f64,
    /// Strategy name (`arm / contract`, or the comparator arm).
    pub strategy: String,
    /// Arm.
    pub arm: String,
    /// Contract (`none` for comparators).
    pub contract: String,
    /// Share of draws in which the strategy has the highest NMB.
    pub probability_cost_effective: Option<f64>,
    /// Expected NMB over draws.
    pub expected_nmb: Option<f64>,
    /// 1 if the strategy has the highest expected NMB at this threshold (the CEAF).
    pub on_frontier: u8,
}

/// One row of `evpi.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct EvpiRow {
    /// Willingness to pay per QALY.
    pub wtp: f64,
    /// Expected value of perfect information per patient.
    pub evpi_per_patient: Option<f64>,
}

/// One row of `tornado.csv`: one parameter at its low and high value, the others at base.
#[derive(Clone, Debug, Deserialize)]
pub struct TornadoRow {
    /// Parameter (path in the scenario).
    pub parameter: String,
    /// Contract.
    pub contract: String,
    /// The output (e.g. `inc_nmb at 100000 vs standard_care`).
    pub output: String,
    /// The output at the base case.
    pub base_output: Option<f64>,
    /// The parameter's low value.
    pub low: Option<f64>,
    /// The parameter's high value.
    pub high: Option<f64>,
    /// The output with the parameter low.
    pub output_low: Option<f64>,
    /// The output with the parameter high.
    pub output_high: Option<f64>,
    /// |output_high − output_low|.
    pub swing: Option<f64>,
}

/// One row of `psa_incremental.csv`: incremental results over PSA draws.
#[derive(Clone, Debug, Deserialize)]
pub struct PsaIncrementalRow {
    /// Contract.
    pub contract: String,
    /// Comparator arm.
    pub comparator: String,
    /// `inc_cost`, `inc_qalys`, `icer` or `prob_cost_effective`.
    pub metric: String,
    /// Threshold (for `prob_cost_effective`).
    pub wtp: Option<f64>,
    /// Mean over draws (for `icer`: the ratio of the means; for `prob_cost_effective`: the
    /// probability).
    pub mean: Option<f64>,
    /// 2.5th percentile over draws.
    pub p025: Option<f64>,
    /// 97.5th percentile over draws.
    pub p975: Option<f64>,
    /// Mean Monte Carlo error within a draw.
    pub mean_within_draw_mcse: Option<f64>,
    /// Number of draws.
    pub draws: Option<u64>,
}

/// `params.csv`: the sampled parameter values, draw 0 = base case.
#[derive(Clone, Debug, Default)]
pub struct Params {
    /// Parameter paths (the columns after `draw`).
    pub names: Vec<String>,
    /// The base case (draw 0).
    pub base: Vec<f64>,
    /// Values per draw (draws 1, 2, ...), one row per draw.
    pub draws: Vec<Vec<f64>>,
}

/// `manifest.json` as far as plots and the report use it; every field is optional so that
/// older or newer manifests still read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ManifestInfo {
    /// obasim version.
    pub obasim_version: Option<String>,
    /// Scenario name.
    pub scenario_name: Option<String>,
    /// Scenario file as given.
    pub scenario_file: Option<String>,
    /// SHA-256 of the scenario file.
    pub scenario_sha256: Option<String>,
    /// Seed.
    pub seed: Option<u64>,
    /// Number of patients.
    pub patients: Option<u64>,
    /// Patients per block.
    pub block_size: Option<u64>,
    /// Worker threads.
    pub threads: Option<u64>,
    /// Wall time of the simulation in seconds.
    pub wall_time_seconds: Option<f64>,
    /// The command line.
    pub command_line: Vec<String>,
    /// Currency of all amounts.
    pub currency: Option<String>,
    /// Price year of all amounts.
    pub price_year: Option<i64>,
    /// Files in the run directory.
    pub files: Vec<String>,
}

/// Everything read from a run directory.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// `manifest.json`.
    pub manifest: ManifestInfo,
    /// `manifest.json` as a JSON value (all fields, for the report).
    pub manifest_json: serde_json::Value,
    /// `summary.csv`.
    pub summary: Vec<SummaryRow>,
    /// `incremental.csv`.
    pub incremental: Vec<IncrementalRow>,
    /// `summary.csv`'s rows by subgroup level (empty without subgroups).
    pub subgroup_summary: Vec<SummaryRow>,
    /// `incremental.csv`'s rows by subgroup level.
    pub subgroup_incremental: Vec<IncrementalRow>,
    /// `cashflow.csv`: the rows of every cost (no category).
    pub cashflow: Vec<CashflowRow>,
    /// `cashflow.csv`: the rows by cost category, when the scenario has categories.
    pub cashflow_by_category: Vec<CashflowRow>,
    /// `occupancy.csv`.
    pub occupancy: Vec<OccupancyRow>,
    /// `quantiles.csv`.
    pub quantiles: Vec<QuantileRow>,
    /// `budget.csv`, when the run wrote one.
    pub budget: Option<Vec<BudgetRow>>,
    /// `scenario.toml` as text, when present.
    pub scenario_text: Option<String>,
    /// `scenario.toml` parsed, or why it could not be.
    pub scenario: Result<Scenario, String>,
    /// The scenario's parameters and their base-case values, to give its numbers (written
    /// as expressions or distributions) their base-case values; none if it did not parse.
    pub parameters: Option<(crate::params::Parameters, Vec<f64>)>,
    /// The PSA files ([`PSA_FILES`]) present in the directory.
    pub psa_files: Vec<String>,
    /// `ce_plane.csv`, when present.
    pub ce_plane: Option<Vec<CePlaneRow>>,
    /// `ceac.csv`, when present.
    pub ceac: Option<Vec<CeacRow>>,
    /// `evpi.csv`, when present.
    pub evpi: Option<Vec<EvpiRow>>,
    /// `tornado.csv`, when present.
    pub tornado: Option<Vec<TornadoRow>>,
    /// `psa_incremental.csv`, when present.
    pub psa_incremental: Option<Vec<PsaIncrementalRow>>,
    /// `params.csv`, when present.
    pub params: Option<Params>,
}

impl RunData {
    /// The base-case value of a number of the scenario (NaN if it has none).
    pub fn num(&self, n: &crate::scenario::Num) -> f64 {
        match &self.parameters {
            Some((p, v)) => p.resolve(n, v, &[]).unwrap_or(f64::NAN),
            None => n.plain().unwrap_or(f64::NAN),
        }
    }

    /// Reads a run directory. `summary.csv`, `incremental.csv`, `cashflow.csv`,
    /// `occupancy.csv`, `quantiles.csv` and `manifest.json` are required; `scenario.toml`,
    /// `budget.csv` and the PSA files are read when present.
    pub fn load(dir: &Path) -> Result<RunData, PlotError> {
        let manifest_path = dir.join("manifest.json");
        let manifest_text = fs::read_to_string(&manifest_path).map_err(|source| PlotError::Io {
            path: manifest_path.clone(),
            source,
        })?;
        let manifest_json: serde_json::Value =
            serde_json::from_str(&manifest_text).map_err(|e| PlotError::Format {
                path: manifest_path.clone(),
                message: e.to_string(),
            })?;
        let manifest: ManifestInfo =
            serde_json::from_value(manifest_json.clone()).map_err(|e| PlotError::Format {
                path: manifest_path.clone(),
                message: e.to_string(),
            })?;
        let scenario_path = dir.join("scenario.toml");
        let scenario_text = fs::read_to_string(&scenario_path).ok();
        // Through the scenario reader, so that parameter distributions (PSA) read as their
        // base case.
        let source = scenario_text
            .as_ref()
            .map(|t| Source::from_text("scenario.toml", t, Some(dir.to_path_buf())));
        let scenario = match &source {
            Some(s) => s.parse().map_err(|e| e.to_string()),
            None => Err("scenario.toml is not in the run directory".to_string()),
        };
        let parameters = match (&source, &scenario) {
            (Some(src), Ok(sc)) => crate::params::Parameters::new(src, sc).ok().map(|p| {
                let v = p.base_values();
                (p, v)
            }),
            _ => None,
        };
        let (cashflow_by_category, cashflow_all): (Vec<CashflowRow>, Vec<CashflowRow>) =
            read_csv::<CashflowRow>(&dir.join("cashflow.csv"))?
                .into_iter()
                .filter(|r| overall(&r.subgroup))
                .partition(|r| r.category.is_some());
        let (summary, subgroup_summary): (Vec<SummaryRow>, Vec<SummaryRow>) =
            read_csv::<SummaryRow>(&dir.join("summary.csv"))?
                .into_iter()
                .partition(|r| overall(&r.subgroup));
        let (incremental, subgroup_incremental): (Vec<IncrementalRow>, Vec<IncrementalRow>) =
            read_csv::<IncrementalRow>(&dir.join("incremental.csv"))?
                .into_iter()
                .partition(|r| overall(&r.subgroup));
        let psa_files = PSA_FILES
            .iter()
            .filter(|f| dir.join(f).is_file())
            .map(|f| f.to_string())
            .collect();
        Ok(RunData {
            dir: dir.to_path_buf(),
            manifest,
            manifest_json,
            summary,
            incremental,
            subgroup_summary,
            subgroup_incremental,
            cashflow: cashflow_all,
            cashflow_by_category,
            occupancy: read_csv(&dir.join("occupancy.csv"))?,
            quantiles: read_csv(&dir.join("quantiles.csv"))?,
            budget: read_optional_csv(&dir.join("budget.csv"))?,
            scenario_text,
            scenario,
            parameters,
            psa_files,
            ce_plane: read_optional_csv(&dir.join("ce_plane.csv"))?,
            ceac: read_optional_csv(&dir.join("ceac.csv"))?,
            evpi: read_optional_csv(&dir.join("evpi.csv"))?,
            tornado: read_optional_csv(&dir.join("tornado.csv"))?,
            psa_incremental: read_optional_csv(&dir.join("psa_incremental.csv"))?,
            params: read_params(&dir.join("params.csv"))?,
        })
    }

    /// Contract names (not `none`) in order of first appearance in `summary.csv`: the order
    /// that fixes each contract's colour.
    pub fn contracts(&self) -> Vec<String> {
        unique(
            self.summary
                .iter()
                .filter(|r| r.contract != NO_CONTRACT)
                .map(|r| r.contract.as_str()),
        )
    }

    /// Arm names in order of first appearance in `summary.csv`.
    pub fn arms(&self) -> Vec<String> {
        unique(self.summary.iter().map(|r| r.arm.as_str()))
    }

    /// The therapy arm: the arm whose rows carry contracts (from the scenario if it parsed).
    pub fn therapy_arm(&self) -> Option<String> {
        if let Ok(sc) = &self.scenario {
            return Some(sc.therapy.arm.clone());
        }
        self.summary
            .iter()
            .find(|r| r.contract != NO_CONTRACT)
            .map(|r| r.arm.clone())
    }

    /// Comparator arms: the arms other than the therapy arm, in order of appearance.
    pub fn comparators(&self) -> Vec<String> {
        let therapy = self.therapy_arm();
        self.arms()
            .into_iter()
            .filter(|a| Some(a) != therapy.as_ref())
            .collect()
    }

    /// The summary row of (arm, contract, metric).
    pub fn summary_row(&self, arm: &str, contract: &str, metric: &str) -> Option<&SummaryRow> {
        self.summary
            .iter()
            .find(|r| r.arm == arm && r.contract == contract && r.metric == metric)
    }

    /// The summary row of a contract (any arm) and metric.
    pub fn contract_row(&self, contract: &str, metric: &str) -> Option<&SummaryRow> {
        self.summary
            .iter()
            .find(|r| r.contract == contract && r.metric == metric)
    }

    /// The currency, or "currency units" if the manifest has none.
    pub fn currency(&self) -> String {
        self.manifest
            .currency
            .clone()
            .or_else(|| {
                self.scenario
                    .as_ref()
                    .ok()
                    .map(|s| s.metadata.currency.clone())
            })
            .unwrap_or_else(|| "currency units".to_string())
    }

    /// Currency and price year for axis labels, e.g. `EUR (2020)`.
    pub fn money_unit(&self) -> String {
        let year = self.manifest.price_year.or_else(|| {
            self.scenario
                .as_ref()
                .ok()
                .map(|s| s.metadata.price_year as i64)
        });
        match year {
            Some(y) => format!("{} ({y})", self.currency()),
            None => self.currency(),
        }
    }

    /// A parameter path of the PSA (`arms[0].states[1].cost`) with names in place of
    /// indices (`beti-cel: transfusion_dependent: cost`), when the scenario has them.
    pub fn parameter_label(&self, path: &str) -> String {
        match &self.scenario {
            Ok(sc) => parameter_label(sc, path),
            Err(_) => path.to_string(),
        }
    }

    /// The scenario name (manifest, else scenario, else the directory name).
    pub fn scenario_name(&self) -> String {
        self.manifest
            .scenario_name
            .clone()
            .or_else(|| self.scenario.as_ref().ok().map(|s| s.metadata.name.clone()))
            .unwrap_or_else(|| {
                self.dir
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
    }
}

/// A parameter path (`arms[0].states[1].cost`) with names in place of indices
/// (`beti-cel: transfusion_dependent: cost`), as far as the scenario has them.
pub fn parameter_label(sc: &Scenario, path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut arm: Option<&crate::scenario::Arm> = None;
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let label = match (name, index) {
            ("arms", Some(i)) => {
                arm = sc.arms.get(i);
                arm.map(|a| a.name.clone())
            }
            ("states", Some(i)) => arm.and_then(|a| a.states.get(i)).map(|s| s.name.clone()),
            ("transitions", Some(i)) => arm
                .and_then(|a| a.transitions.get(i))
                .map(|t| format!("{} → {}", t.from, t.to)),
            ("contracts", Some(i)) => sc.contracts.get(i).map(|c| c.name.clone()),
            _ => None,
        };
        parts.push(label.unwrap_or_else(|| segment.to_string()));
    }
    parts.join(": ")
}

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

fn read_optional_csv<T: DeserializeOwned>(path: &Path) -> Result<Option<Vec<T>>, PlotError> {
    if path.is_file() {
        read_csv(path).map(Some)
    } else {
        Ok(None)
    }
}

fn read_params(path: &Path) -> Result<Option<Params>, PlotError> {
    if !path.is_file() {
        return Ok(None);
    }
    let format = |message: String| PlotError::Format {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| format(e.to_string()))?;
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| format(e.to_string()))?
        .iter()
        .skip(1)
        .map(str::to_string)
        .collect();
    let mut params = Params {
        names,
        ..Params::default()
    };
    for record in reader.records() {
        let record = record.map_err(|e| format(e.to_string()))?;
        let draw = record.get(0).unwrap_or_default().to_string();
        let values: Vec<f64> = record
            .iter()
            .skip(1)
            .map(|v| v.parse::<f64>().unwrap_or(f64::NAN))
            .collect();
        if draw == "0" {
            params.base = values;
        } else {
            params.draws.push(values);
        }
    }
    Ok(Some(params))
}

fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, PlotError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| PlotError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    reader
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| PlotError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}
