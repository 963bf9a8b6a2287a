//! Plots of a sweep directory (`obasim sweep`), drawn from its `sweep.csv` and the copy of
//! the scenario (for the currency, price year and names).
//!
//! One varied parameter: for each key metric a line per contract against the parameter's
//! value, with a band of mean ± 1.96 MCSE. Two varied parameters: a heat map per key
//! metric, one panel per contract, on one colour scale with a colour bar; each cell shows
//! the mean and ±1.96 MCSE when they fit. Parameters given a single value are fixed (named
//! in the subtitle); with more than two varied parameters nothing is drawn and
//! [`SweepPlots::notes`] says why. Files are `sweep_<metric>.png` and `.svg` next to
//! `sweep.csv`.
//!
//! Key metrics: `payer_cost`, `drug_paid` and `manufacturer_npv` of the therapy arm, and
//! `inc_nmb` at each threshold against each comparator.

use super::data::{parameter_label, NO_CONTRACT};
use super::format::{decimals_for_mcse, thousands, TickFormat, Unit};
use super::layout::{self, Axis, Key, LegendEntry, MUTED, TEXT};
use super::metric::{metric_info, MetricInfo, MetricKind};
use super::{contract_color, DrawResult, Figure, PlotError, Scale};
use crate::scenario::{Scenario, Source};
use plotters::coord::ranged1d::{BoldPoints, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fs;
use std::path::{Path, PathBuf};

/// The file a sweep writes its results to.
pub const SWEEP_CSV: &str = "sweep.csv";

/// Summary metrics of the therapy arm that get a sweep plot (when present).
pub const SWEEP_METRICS: [&str; 3] = ["payer_cost", "drug_paid", "manufacturer_npv"];

/// Markers are drawn on the lines when a sweep has at most this many values.
const MAX_MARKERS: usize = 30;

/// One row of `sweep.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// Point number (grid order).
    pub point: usize,
    /// The value of each swept parameter at this point, in [`SweepData::params`] order.
    pub values: Vec<f64>,
    /// Arm (`vs <comparator>` for incremental results).
    pub arm: String,
    /// Contract (`none` for comparator arms).
    pub contract: String,
    /// Metric (`inc_nmb@<wtp>` for net monetary benefit at a threshold).
    pub metric: String,
    /// Mean (NaN if not finite).
    pub mean: f64,
    /// Monte Carlo standard error of the mean (NaN if not finite).
    pub mcse: f64,
}

/// Everything read from a sweep directory.
#[derive(Clone, Debug)]
pub struct SweepData {
    /// The sweep directory.
    pub dir: PathBuf,
    /// The swept parameter paths (the columns between `point` and `arm`).
    pub params: Vec<String>,
    /// The rows of `sweep.csv`.
    pub rows: Vec<SweepRow>,
    /// `scenario.toml` parsed, or why it could not be.
    pub scenario: Result<Scenario, String>,
}

/// A metric that gets a sweep plot.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepMetric {
    /// The `arm` column of its rows (the therapy arm, or `vs <comparator>`).
    pub arm: String,
    /// The `metric` column.
    pub metric: String,
    /// The comparator of an incremental metric.
    pub comparator: Option<String>,
    /// File stem of its plot (`sweep_drug_paid`).
    pub stem: String,
}

/// One contract's line in a one-parameter sweep plot.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSeries {
    /// Contract.
    pub contract: String,
    /// Its colour index (order of first appearance in `sweep.csv`, as in a run's plots).
    pub color: usize,
    /// (parameter value, mean, MCSE), in increasing parameter value.
    pub points: Vec<(f64, f64, f64)>,
}

/// The cells of one heat-map panel: `cells[j][i]` is the (mean, MCSE) at the i-th value of
/// the x parameter and the j-th value of the y parameter, if the sweep has it.
pub type Cells = Vec<Vec<Option<(f64, f64)>>>;

/// What [`draw_sweep`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepPlots {
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Why some or all plots were not drawn (to show the user).
    pub notes: Vec<String>,
}

impl SweepPlots {
    /// The names of the files written (without their directory).
    pub fn file_names(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect()
    }
}

fn format_error(path: &Path, message: impl Into<String>) -> PlotError {
    PlotError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl SweepData {
    /// Reads `sweep.csv` and `scenario.toml` (optional) of a sweep directory.
    pub fn load(dir: &Path) -> Result<SweepData, PlotError> {
        let path = dir.join(SWEEP_CSV);
        let mut reader =
            csv::Reader::from_path(&path).map_err(|e| format_error(&path, e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| format_error(&path, e.to_string()))?
            .clone();
        let names: Vec<&str> = headers.iter().collect();
        let arm_col = names
            .iter()
            .position(|h| *h == "arm")
            .filter(|&i| {
                names.first() == Some(&"point")
                    && names[i..] == ["arm", "contract", "metric", "mean", "mcse"]
            })
            .ok_or_else(|| {
                format_error(
                    &path,
                    "expected the columns point, the parameters, arm, contract, metric, mean, mcse",
                )
            })?;
        let params: Vec<String> = names[1..arm_col].iter().map(|s| s.to_string()).collect();
        let mut rows = Vec::new();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format_error(&path, e.to_string()))?;
            let bad = |what: &str| format_error(&path, format!("row {}: {what}", line + 2));
            let point = record[0]
                .parse::<usize>()
                .map_err(|_| bad("`point` is not a whole number"))?;
            let values = (1..arm_col)
                .map(|i| record[i].parse::<f64>().ok().filter(|v| v.is_finite()))
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| bad("a parameter value is not a finite number"))?;
            let num = |i: usize| record[i].parse::<f64>().unwrap_or(f64::NAN);
            rows.push(SweepRow {
                point,
                values,
                arm: record[arm_col].to_string(),
                contract: record[arm_col + 1].to_string(),
                metric: record[arm_col + 2].to_string(),
                mean: num(arm_col + 3),
                mcse: num(arm_col + 4),
            });
        }
        let scenario = match fs::read_to_string(dir.join("scenario.toml")) {
            Ok(t) => Source::from_text("scenario.toml", &t, Some(dir.to_path_buf()))
                .parse()
                .map_err(|e| e.to_string()),
            Err(_) => Err("scenario.toml is not in the sweep directory".to_string()),
        };
        Ok(SweepData {
            dir: dir.to_path_buf(),
            params,
            rows,
            scenario,
        })
    }

    /// Contract names in order of first appearance (the order that fixes their colours).
    pub fn contracts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.rows {
            if r.contract != NO_CONTRACT && !out.contains(&r.contract) {
                out.push(r.contract.clone());
            }
        }
        out
    }

    /// The therapy arm: from the scenario, else the arm of the first contract row.
    pub fn therapy_arm(&self) -> Option<String> {
        if let Ok(sc) = &self.scenario {
            return Some(sc.therapy.arm.clone());
        }
        self.rows
            .iter()
            .find(|r| r.contract != NO_CONTRACT && !r.arm.starts_with("vs "))
            .map(|r| r.arm.clone())
    }

    /// The distinct values of parameter `i`, increasing.
    pub fn values(&self, i: usize) -> Vec<f64> {
        let mut v: Vec<f64> = self.rows.iter().map(|r| r.values[i]).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    }

    /// The parameters that take more than one value (the others are fixed).
    pub fn varied(&self) -> Vec<usize> {
        (0..self.params.len())
            .filter(|&i| self.values(i).len() > 1)
            .collect()
    }

    /// Currency and price year for axis labels, e.g. `USD (2023)`.
    pub fn money_unit(&self) -> String {
        match &self.scenario {
            Ok(sc) => format!("{} ({})", sc.metadata.currency, sc.metadata.price_year),
            Err(_) => "currency units".to_string(),
        }
    }

    /// The scenario name, else the directory name.
    pub fn scenario_name(&self) -> String {
        match &self.scenario {
            Ok(sc) => sc.metadata.name.clone(),
            Err(_) => self
                .dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// A parameter path for an axis: the path, followed by the names of the arm, state,
    /// transition or contract it indexes (`contracts[1].warranty.window (warranty, perfect
    /// observation: warranty: window)`).
    pub fn parameter_desc(&self, i: usize) -> String {
        let path = &self.params[i];
        match &self.scenario {
            Ok(sc) if path.contains('[') => format!("{path} ({})", parameter_label(sc, path)),
            _ => path.clone(),
        }
    }

    /// The metrics that get a plot, in file order: [`SWEEP_METRICS`] of the therapy arm,
    /// then `inc_nmb` at each threshold against each comparator.
    pub fn metrics(&self) -> Vec<SweepMetric> {
        let mut out: Vec<SweepMetric> = Vec::new();
        if let Some(arm) = self.therapy_arm() {
            for m in SWEEP_METRICS {
                if self
                    .rows
                    .iter()
                    .any(|r| r.arm == arm && r.metric == m && r.contract != NO_CONTRACT)
                {
                    out.push(SweepMetric {
                        arm: arm.clone(),
                        metric: m.to_string(),
                        comparator: None,
                        stem: format!("sweep_{m}"),
                    });
                }
            }
        }
        for r in &self.rows {
            let Some(comparator) = r.arm.strip_prefix("vs ") else {
                continue;
            };
            let Some(wtp) = r.metric.strip_prefix("inc_nmb@") else {
                continue;
            };
            if out.iter().any(|m| m.arm == r.arm && m.metric == r.metric) {
                continue;
            }
            let base = format!("sweep_inc_nmb_{}_vs_{}", slug(wtp), slug(comparator));
            let mut stem = base.clone();
            let mut k = 2;
            while out.iter().any(|m| m.stem == stem) {
                stem = format!("{base}_{k}");
                k += 1;
            }
            out.push(SweepMetric {
                arm: r.arm.clone(),
                metric: r.metric.clone(),
                comparator: Some(comparator.to_string()),
                stem,
            });
        }
        out
    }

    /// The lines of a one-parameter plot: per contract, (value of parameter `param`, mean,
    /// MCSE) of `metric`, in increasing parameter value (non-finite means left out).
    pub fn series(&self, metric: &SweepMetric, param: usize) -> Vec<SweepSeries> {
        self.contracts()
            .into_iter()
            .enumerate()
            .filter_map(|(color, contract)| {
                let mut points: Vec<(f64, f64, f64)> = self
                    .rows
                    .iter()
                    .filter(|r| {
                        r.arm == metric.arm
                            && r.metric == metric.metric
                            && r.contract == contract
                            && r.mean.is_finite()
                    })
                    .map(|r| (r.values[param], r.mean, r.mcse))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                points.dedup_by(|a, b| a.0 == b.0);
                (!points.is_empty()).then_some(SweepSeries {
                    contract,
                    color,
                    points,
                })
            })
            .collect()
    }

    /// The cells of a two-parameter plot for one contract: `cells[j][i]` is the (mean, MCSE)
    /// at the i-th value of parameter `px` and the j-th value of `py` (both increasing).
    pub fn cells(&self, metric: &SweepMetric, contract: &str, px: usize, py: usize) -> Cells {
        let (xs, ys) = (self.values(px), self.values(py));
        let mut cells = vec![vec![None; xs.len()]; ys.len()];
        for r in &self.rows {
            if r.arm != metric.arm
                || r.metric != metric.metric
                || r.contract != contract
                || !r.mean.is_finite()
            {
                continue;
            }
            let i = xs.iter().position(|v| *v == r.values[px]);
            let j = ys.iter().position(|v| *v == r.values[py]);
            if let (Some(i), Some(j)) = (i, j) {
                cells[j][i] = Some((r.mean, r.mcse));
            }
        }
        cells
    }

    fn fixed_text(&self) -> String {
        let varied = self.varied();
        let fixed: Vec<String> = (0..self.params.len())
            .filter(|i| !varied.contains(i))
            .map(|i| {
                format!(
                    "{} = {}",
                    self.params[i],
                    crate::output::num(self.values(i)[0])
                )
            })
            .collect();
        if fixed.is_empty() {
            String::new()
        } else {
            format!(" Fixed: {}.", fixed.join(", "))
        }
    }

    fn info(&self, metric: &SweepMetric) -> MetricInfo {
        metric_info(&metric.metric, metric.comparator.as_deref())
    }

    /// Axis descriptions of a metric, longest first.
    fn metric_descs(&self, metric: &SweepMetric) -> Vec<String> {
        let info = self.info(metric);
        let money = self.money_unit();
        let name = match &metric.comparator {
            Some(c) => format!("{} vs {c}", metric.metric),
            None => metric.metric.clone(),
        };
        vec![
            info.axis_desc(&money),
            info.short_axis_desc(&name, &money),
            info.short_axis_desc(&metric.metric, &money),
            format!("{}, {money}", metric.metric),
        ]
    }

    /// Axis descriptions of parameter `i`, longest first.
    fn param_descs(&self, i: usize) -> Vec<String> {
        vec![self.parameter_desc(i), self.params[i].clone()]
    }
}

/// The first of `candidates` that fits in `width` backend pixels, else the last shortened.
fn fit_first<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    candidates: &[String],
    font: &TextStyle,
    width: i32,
) -> Result<String, super::DrawError> {
    for c in candidates {
        if s.text_width(area, c, font)? <= width {
            return Ok(c.clone());
        }
    }
    layout::fit(
        area,
        s,
        candidates.last().map_or("", |c| c.as_str()),
        font,
        width,
    )
}

/// A file-name-safe form of a name: lower-case ASCII letters and digits, other runs of
/// characters as `_`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let t = out.trim_matches('_').to_string();
    if t.is_empty() {
        "x".to_string()
    } else {
        t
    }
}

/// Reads the sweep directory `dir` and writes its plots next to `sweep.csv`, each as
/// `<stem>.png` and `<stem>.svg`. With no or more than two varied parameters nothing is
/// drawn and the notes say why.
pub fn draw_sweep(dir: &Path) -> Result<SweepPlots, PlotError> {
    let data = SweepData::load(dir)?;
    let mut out = SweepPlots::default();
    let varied = data.varied();
    let metrics = data.metrics();
    if data.contracts().is_empty() || metrics.is_empty() {
        out.notes
            .push("no sweep plots: sweep.csv has no contract results to plot".to_string());
        return Ok(out);
    }
    let names = |idx: &[usize]| {
        idx.iter()
            .map(|&i| data.params[i].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let figures: Vec<SweepFigure> = match varied.as_slice() {
        [] => {
            out.notes.push(
                "no sweep plots: every swept parameter has a single value (one point); \
                 give at least two values to plot"
                    .to_string(),
            );
            return Ok(out);
        }
        [p] => metrics
            .iter()
            .map(|m| SweepFigure::Lines {
                data: &data,
                metric: m.clone(),
                param: *p,
            })
            .collect(),
        [px, py] => metrics
            .iter()
            .map(|m| SweepFigure::Heat {
                data: &data,
                metric: m.clone(),
                px: *px,
                py: *py,
            })
            .collect(),
        more => {
            out.notes.push(format!(
                "no sweep plots: {} parameters vary ({}); plots are drawn for one varied \
                 parameter (lines) or two (heat maps). Every result is in sweep.csv; sweep \
                 at most two parameters at a time (give the others one value) to plot them",
                more.len(),
                names(more)
            ));
            return Ok(out);
        }
    };
    for fig in &figures {
        let stem = fig.stem();
        let svg_path = dir.join(format!("{stem}.svg"));
        super::write_file(&svg_path, super::figure_svg(fig)?.as_bytes())?;
        out.files.push(svg_path);
        let png_path = dir.join(format!("{stem}.png"));
        super::write_file(&png_path, &super::figure_png(fig)?)?;
        out.files.push(png_path);
    }
    Ok(out)
}

/// One sweep plot.
enum SweepFigure<'a> {
    /// Lines against one parameter.
    Lines {
        data: &'a SweepData,
        metric: SweepMetric,
        param: usize,
    },
    /// A heat map per contract over two parameters.
    Heat {
        data: &'a SweepData,
        metric: SweepMetric,
        px: usize,
        py: usize,
    },
}

/// Width of a heat-map panel and of its cell area, in logical pixels.
const HEAT_PANEL_W: f64 = 360.0;
const HEAT_PANEL_H: f64 = 330.0;
/// Width of the colour-bar strip on the right of a heat map.
const COLOR_BAR_W: f64 = 150.0;
/// Height reserved for the title block of a heat map.
const HEAT_HEADER_H: f64 = 120.0;

impl SweepFigure<'_> {
    fn heat_grid(n: usize) -> (usize, usize) {
        let cols = n.clamp(1, 3);
        (cols, n.div_ceil(cols).max(1))
    }
}

impl Figure for SweepFigure<'_> {
    fn stem(&self) -> String {
        match self {
            SweepFigure::Lines { metric, .. } | SweepFigure::Heat { metric, .. } => {
                metric.stem.clone()
            }
        }
    }

    fn size(&self) -> (u32, u32) {
        match self {
            SweepFigure::Lines { .. } => (1000, 640),
            SweepFigure::Heat { data, .. } => {
                let (cols, rows) = Self::heat_grid(data.contracts().len());
                (
                    (HEAT_PANEL_W * cols as f64 + COLOR_BAR_W + 24.0) as u32,
                    (HEAT_HEADER_H + HEAT_PANEL_H * rows as f64) as u32,
                )
            }
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> DrawResult {
        match self {
            SweepFigure::Lines {
                data,
                metric,
                param,
            } => draw_lines(root, s, data, metric, *param),
            SweepFigure::Heat {
                data,
                metric,
                px,
                py,
            } => draw_heat(root, s, data, metric, *px, *py),
        }
    }
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: Scale,
    data: &SweepData,
    metric: &SweepMetric,
    param: usize,
) -> DrawResult {
    let info = data.info(metric);
    let all = data.series(metric, param);
    let area = layout::header(
        root,
        s,
        &format!("Sweep: {}", info.desc),
        &format!(
            "{}: mean per treated patient at each value of {}; shaded band: mean ± 1.96 MCSE \
             (95% Monte Carlo interval of each mean). Every point simulates the same patients, \
             so differences between points are more precise than the bands suggest.{}",
            data.scenario_name(),
            data.params[param],
            data.fixed_text()
        ),
    )?;
    // The first contract widest, so that lines that coincide stay visible nested.
    let widths: Vec<f64> = (0..all.len())
        .map(|i| {
            let step = if all.len() > 1 {
                (4.0 / (all.len() - 1) as f64).min(1.0)
            } else {
                0.0
            };
            2.5 + step * (all.len() - 1 - i) as f64
        })
        .collect();
    let entries: Vec<LegendEntry> = all
        .iter()
        .enumerate()
        .map(|(i, c)| LegendEntry {
            label: c.contract.clone(),
            color: contract_color(c.color),
            key: Key::Line(widths[i].min(4.0)),
        })
        .collect();
    let area = layout::legend(&area, s, &entries)?;
    let xs = data.values(param);
    let (xlo, xhi) = (xs[0], xs[xs.len() - 1]);
    let (lo, hi) = all.iter().flat_map(|c| c.points.iter()).fold(
        (f64::INFINITY, f64::NEG_INFINITY),
        |(lo, hi), p| {
            let band = 1.96 * if p.2.is_finite() { p.2 } else { 0.0 };
            (lo.min(p.1 - band), hi.max(p.1 + band))
        },
    );
    let y_range = layout::padded(lo, hi, 0.08);
    let desc_font = s.font(layout::AXIS_DESC_SIZE, TEXT);
    let (aw, ah) = area.dim_in_pixel();
    let x_desc = fit_first(
        &area,
        s,
        &data.param_descs(param),
        &desc_font,
        aw as i32 - s.px(120.0),
    )?;
    let y_desc = fit_first(
        &area,
        s,
        &data.metric_descs(metric),
        &desc_font,
        ah as i32 - s.px(layout::TICK_SIZE * 1.3 + layout::AXIS_DESC_SIZE * 1.3 + 30.0),
    )?;
    let x = Axis::new(
        layout::padded(xlo, xhi, 0.03),
        layout::AxisKind::Number,
        x_desc,
    );
    let y = Axis::new(y_range.clone(), info.axis_kind(), y_desc);
    let mut chart = layout::panel(&area, s, None, &x, &y)?;
    if y_range.start < 0.0 && y_range.end > 0.0 && metric.metric.starts_with("inc_nmb") {
        layout::dashed(
            &mut chart,
            (x.range.start, 0.0),
            (x.range.end, 0.0),
            MUTED,
            s,
        )?;
    }
    // Bands first, then lines on top (the first contract widest, so coinciding lines nest).
    for c in &all {
        let color = contract_color(c.color);
        let band = |p: &(f64, f64, f64), sign: f64| {
            let m = if p.2.is_finite() { p.2 } else { 0.0 };
            (p.0, p.1 + sign * 1.96 * m)
        };
        let mut poly: Vec<(f64, f64)> = c.points.iter().map(|p| band(p, 1.0)).collect();
        poly.extend(c.points.iter().rev().map(|p| band(p, -1.0)));
        chart.draw_series(std::iter::once(Polygon::new(
            poly,
            color.mix(0.16).filled(),
        )))?;
    }
    for (i, c) in all.iter().enumerate() {
        let color = contract_color(c.color);
        chart.draw_series(LineSeries::new(
            c.points.iter().map(|p| (p.0, p.1)),
            color.stroke_width(s.u(widths[i])),
        ))?;
        if c.points.len() <= MAX_MARKERS {
            chart.draw_series(
                c.points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), s.u(3.5), color.filled())),
            )?;
        }
    }
    Ok(())
}

/// A colour for `t` in [0, 1]: viridis (sequential) or red–white–blue (diverging).
fn colormap(t: f64, diverging: bool) -> RGBColor {
    const VIRIDIS: [(u8, u8, u8); 5] = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    const RDBU: [(u8, u8, u8); 5] = [
        (178, 24, 43),
        (239, 138, 98),
        (247, 247, 247),
        (103, 169, 207),
        (33, 102, 172),
    ];
    let stops = if diverging { &RDBU } else { &VIRIDIS };
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let x = t * (stops.len() - 1) as f64;
    let k = (x.floor() as usize).min(stops.len() - 2);
    let f = x - k as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (stops[k], stops[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Text colour readable on `bg`.
fn ink(bg: RGBColor) -> RGBColor {
    let l = 0.299 * bg.0 as f64 + 0.587 * bg.1 as f64 + 0.114 * bg.2 as f64;
    if l < 140.0 {
        WHITE
    } else {
        TEXT
    }
}

/// The colour scale of a heat map: domain and whether it diverges around zero.
struct ColorScale {
    lo: f64,
    hi: f64,
    diverging: bool,
}

impl ColorScale {
    fn new(lo: f64, hi: f64) -> ColorScale {
        if lo < 0.0 && hi > 0.0 {
            let m = lo.abs().max(hi);
            ColorScale {
                lo: -m,
                hi: m,
                diverging: true,
            }
        } else if hi > lo {
            ColorScale {
                lo,
                hi,
                diverging: false,
            }
        } else {
            let w = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
            ColorScale {
                lo: lo - w,
                hi: hi + w,
                diverging: false,
            }
        }
    }

    fn color(&self, v: f64) -> RGBColor {
        colormap((v - self.lo) / (self.hi - self.lo), self.diverging)
    }
}

/// Formats cell values: one unit for the whole figure, three significant digits of the
/// largest value, the MCSE to two significant digits.
struct CellFormat {
    unit: Unit,
    decimals: usize,
}

impl CellFormat {
    fn new(max_abs: f64, kind: MetricKind) -> CellFormat {
        let unit = if kind == MetricKind::Share {
            Unit {
                divisor: 0.01,
                suffix: "%",
            }
        } else {
            Unit::for_max(max_abs)
        };
        let scaled = max_abs / unit.divisor;
        let decimals = if scaled > 0.0 && scaled.is_finite() {
            (2 - scaled.log10().floor() as i64).clamp(0, 3) as usize
        } else {
            0
        };
        CellFormat { unit, decimals }
    }

    fn value(&self, v: f64) -> String {
        format!(
            "{}{}",
            thousands(v / self.unit.divisor, self.decimals),
            self.unit.suffix
        )
    }

    fn band(&self, mcse: f64) -> String {
        if !mcse.is_finite() {
            return "±?".to_string();
        }
        let w = 1.96 * mcse / self.unit.divisor;
        if w == 0.0 {
            return "±0".to_string();
        }
        let d = decimals_for_mcse(Some(w), self.decimals, self.decimals, 4);
        format!("±{}{}", thousands(w, d), self.unit.suffix)
    }
}

fn draw_heat<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: Scale,
    data: &SweepData,
    metric: &SweepMetric,
    px: usize,
    py: usize,
) -> DrawResult {
    let info = data.info(metric);
    let contracts = data.contracts();
    let grids: Vec<Cells> = contracts
        .iter()
        .map(|c| data.cells(metric, c, px, py))
        .collect();
    let all = grids.iter().flatten().flatten().flatten();
    let (lo, hi) = all
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c.0), hi.max(c.0))
        });
    let max_abs = all.clone().fold(0.0f64, |m, c| m.max(c.0.abs()));
    let max_band = all
        .clone()
        .map(|c| 1.96 * c.1)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let scale = ColorScale::new(lo, hi);
    let cell_fmt = CellFormat::new(max_abs, info.kind);
    let (xs, ys) = (data.values(px), data.values(py));
    let (nx, ny) = (xs.len(), ys.len());
    let area = layout::header(
        root,
        s,
        &format!("Sweep: {}", info.desc),
        &format!(
            "{}: mean per treated patient at each pair of values; cells show the mean and \
             ± 1.96 MCSE (95% Monte Carlo interval; largest {}). Every point simulates the \
             same patients, so differences between cells are more precise than that.{}",
            data.scenario_name(),
            cell_fmt.band(max_band / 1.96).trim_start_matches('±'),
            data.fixed_text()
        ),
    )?;
    let (w, _) = area.dim_in_pixel();
    let (panels_area, bar_area) = area.split_horizontally(w as i32 - s.px(COLOR_BAR_W));
    let (cols, rows) = SweepFigure::heat_grid(contracts.len());
    let panels = panels_area.split_evenly((rows, cols));
    let tick_font = s.font(layout::TICK_SIZE, TEXT);
    let desc_font = s.font(layout::AXIS_DESC_SIZE - 1.0, TEXT);
    let x_ticks = TickFormat::for_ticks(&xs);
    let y_ticks = TickFormat::for_ticks(&ys);
    let x_labels: Vec<String> = xs.iter().map(|v| x_ticks.label(*v)).collect();
    let y_labels: Vec<String> = ys.iter().map(|v| y_ticks.label(*v)).collect();
    let mut y_label_w = 0;
    for l in &y_labels {
        y_label_w = y_label_w.max(s.text_width(root, l, &tick_font)?);
    }
    // Cell text: shown only if every label fits its cell.
    let cell_font_size = 13.0;
    let cell_font = s.font(cell_font_size, TEXT);
    for (k, panel) in panels.iter().enumerate() {
        let Some(contract) = contracts.get(k) else {
            continue;
        };
        let (pw, ph) = panel.dim_in_pixel();
        let (pw, ph) = (pw as i32, ph as i32);
        // Panel title with the contract's colour key.
        let title_font = s.font(layout::PANEL_TITLE_SIZE, TEXT);
        let left = s.px(12.0);
        let key_w = s.px(18.0);
        panel.draw(&Rectangle::new(
            [(left, s.px(6.0)), (left + key_w, s.px(20.0))],
            contract_color(k).filled(),
        ))?;
        let title = layout::fit(
            panel,
            s,
            contract,
            &title_font,
            pw - left - key_w - s.px(20.0),
        )?;
        panel.draw(&Text::new(
            title,
            (left + key_w + s.px(8.0), s.px(13.0)),
            title_font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        // Cell area.
        let x0 = s.px(layout::AXIS_DESC_SIZE * 1.4 + 14.0) + y_label_w;
        let x1 = pw - s.px(14.0);
        let y0 = s.px(32.0);
        let y1 = ph - s.px(layout::TICK_SIZE * 1.3 + layout::AXIS_DESC_SIZE * 1.3 + 18.0);
        let cw = (x1 - x0) as f64 / nx as f64;
        let chh = (y1 - y0) as f64 / ny as f64;
        let grid = &grids[k];
        let mut show_values = true;
        let mut show_bands = chh >= s.px(cell_font_size * 2.6) as f64;
        for row in grid {
            for (mean, mcse) in row.iter().flatten() {
                let room = cw as i32 - s.px(6.0);
                if s.text_width(panel, &cell_fmt.value(*mean), &cell_font)? > room {
                    show_values = false;
                }
                if s.text_width(panel, &cell_fmt.band(*mcse), &cell_font)? > room {
                    show_bands = false;
                }
            }
        }
        show_values &= chh >= s.px(cell_font_size * 1.3) as f64;
        for (j, row) in grid.iter().enumerate() {
            for (i, cell) in row.iter().enumerate() {
                let cx0 = x0 + (cw * i as f64).round() as i32;
                let cx1 = x0 + (cw * (i + 1) as f64).round() as i32;
                // Row 0 (smallest value) at the bottom.
                let cy1 = y1 - (chh * j as f64).round() as i32;
                let cy0 = y1 - (chh * (j + 1) as f64).round() as i32;
                let Some((mean, mcse)) = cell else {
                    panel.draw(&Rectangle::new(
                        [(cx0, cy0), (cx1, cy1)],
                        layout::GRID.filled(),
                    ))?;
                    continue;
                };
                let bg = scale.color(*mean);
                panel.draw(&Rectangle::new([(cx0, cy0), (cx1, cy1)], bg.filled()))?;
                panel.draw(&Rectangle::new(
                    [(cx0, cy0), (cx1, cy1)],
                    WHITE.stroke_width(s.u(1.0)),
                ))?;
                if show_values {
                    let fg = ink(bg);
                    let font = s.font(cell_font_size, fg);
                    let cx = (cx0 + cx1) / 2;
                    let cy = (cy0 + cy1) / 2;
                    let dy = if show_bands {
                        s.px(cell_font_size * 0.62)
                    } else {
                        0
                    };
                    panel.draw(&Text::new(
                        cell_fmt.value(*mean),
                        (cx, cy - dy),
                        font.clone().pos(Pos::new(HPos::Center, VPos::Center)),
                    ))?;
                    if show_bands {
                        panel.draw(&Text::new(
                            cell_fmt.band(*mcse),
                            (cx, cy + dy),
                            font.pos(Pos::new(HPos::Center, VPos::Center)),
                        ))?;
                    }
                }
            }
        }
        // Axes: a tick label under each column and left of each row.
        for (i, l) in x_labels.iter().enumerate() {
            let cx = x0 + (cw * (i as f64 + 0.5)).round() as i32;
            panel.draw(&Text::new(
                l.clone(),
                (cx, y1 + s.px(6.0)),
                tick_font.clone().pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        for (j, l) in y_labels.iter().enumerate() {
            let cy = y1 - (chh * (j as f64 + 0.5)).round() as i32;
            panel.draw(&Text::new(
                l.clone(),
                (x0 - s.px(6.0), cy),
                tick_font.clone().pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        let x_desc = fit_first(panel, s, &data.param_descs(px), &desc_font, x1 - x0)?;
        panel.draw(&Text::new(
            x_desc,
            ((x0 + x1) / 2, ph - s.px(6.0)),
            desc_font.clone().pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
        let y_desc = fit_first(panel, s, &data.param_descs(py), &desc_font, y1 - y0)?;
        panel.draw(&Text::new(
            y_desc,
            (s.px(4.0), (y0 + y1) / 2),
            desc_font
                .clone()
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    draw_color_bar(&bar_area, s, &scale, &info, &data.metric_descs(metric))
}

fn draw_color_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    scale: &ColorScale,
    info: &MetricInfo,
    descs: &[String],
) -> DrawResult {
    let (_, h) = area.dim_in_pixel();
    let (top, bottom) = (s.px(40.0), h as i32 - s.px(70.0));
    let (left, right) = (s.px(40.0), s.px(58.0));
    let steps = 100;
    for k in 0..steps {
        let a = top + ((bottom - top) as f64 * k as f64 / steps as f64).round() as i32;
        let b = top + ((bottom - top) as f64 * (k + 1) as f64 / steps as f64).round() as i32;
        let v = scale.hi - (scale.hi - scale.lo) * (k as f64 + 0.5) / steps as f64;
        area.draw(&Rectangle::new(
            [(left, a), (right, b)],
            scale.color(v).filled(),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(left, top), (right, bottom)],
        TEXT.stroke_width(s.u(1.0)),
    ))?;
    let ticks = RangedCoordf64::from(scale.lo..scale.hi).key_points(BoldPoints(6));
    let fmt = if info.kind == MetricKind::Share {
        TickFormat::percent(&ticks)
    } else {
        TickFormat::for_ticks(&ticks)
    };
    let font = s.font(layout::TICK_SIZE, TEXT);
    for t in ticks {
        let y = bottom
            - ((t - scale.lo) / (scale.hi - scale.lo) * (bottom - top) as f64).round() as i32;
        area.draw(&PathElement::new(
            vec![(right, y), (right + s.px(5.0), y)],
            TEXT.stroke_width(s.u(1.0)),
        ))?;
        area.draw(&Text::new(
            fmt.label(t),
            (right + s.px(8.0), y),
            font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    let desc_font = s.font(layout::AXIS_DESC_SIZE - 1.0, TEXT);
    let desc = fit_first(area, s, descs, &desc_font, bottom - top + s.px(60.0))?;
    area.draw(&Text::new(
        desc,
        (s.px(10.0), (top + bottom) / 2),
        desc_font
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_cell_formats() {
        assert_eq!(
            slug("standard care & <chelation>"),
            "standard_care_chelation"
        );
        assert_eq!(slug("1e+05"), "1e_05");
        assert_eq!(slug("!!"), "x");
        let f = CellFormat::new(3_500_000.0, MetricKind::Money);
        assert_eq!(f.value(2_345_678.0), "2.35M");
        assert_eq!(f.band(6_000.0), "±0.012M");
        let f = CellFormat::new(850_000.0, MetricKind::Money);
        assert_eq!(f.value(850_000.0), "850k");
        let f = CellFormat::new(0.93, MetricKind::Share);
        assert_eq!(f.value(0.9312), "93.1%");
        let c = ColorScale::new(-1.0, 3.0);
        assert!(c.diverging && c.lo == -3.0);
        assert_eq!(colormap(0.5, true), RGBColor(247, 247, 247));
        assert_eq!(ink(RGBColor(68, 1, 84)), WHITE);
    }
}
