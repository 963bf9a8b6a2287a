//! The comparison plot of finished runs (`obasim compare DIR... --plot FILE`): one metric's
//! mean per contract (and comparator arm) in each run as horizontal bars grouped by run,
//! with whiskers of mean ± 1.96 MCSE.

use super::data::{ManifestInfo, NO_CONTRACT};
use super::format::{mean_mcse, thousands, TickFormat};
use super::layout::{self, MUTED, TEXT};
use super::metric::{metric_info, MetricInfo};
use super::{contract_color, DrawResult, Figure, PlotError, Scale, COMPARATOR_COLOR};
use crate::design::CompareRow;
use plotters::coord::ranged1d::{BoldPoints, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Height of one bar row, in logical pixels.
const ROW: f64 = 40.0;

/// One run of a comparison plot.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRun {
    /// Run directory as given.
    pub run: String,
    /// Scenario name.
    pub scenario: String,
    /// Bars: (arm, contract, mean, MCSE); contract `none` for comparator arms.
    pub bars: Vec<(String, String, f64, f64)>,
}

/// The data of a comparison plot of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareData {
    /// The metric.
    pub metric: String,
    /// Runs in the order given.
    pub runs: Vec<CompareRun>,
    /// Currency and price year(s) of the runs, for the axis (`EUR (2024)`).
    pub money: String,
}

/// Which output format a plot path asks for, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// `.png`
    Png,
    /// `.svg`
    Svg,
}

impl ImageFormat {
    /// The format of `path` (`.png` or `.svg`, any case), or a message saying what is
    /// allowed.
    pub fn of(path: &Path) -> Result<ImageFormat, String> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            _ => Err(format!(
                "--plot {}: the file name must end in .png or .svg",
                path.display()
            )),
        }
    }
}

/// Currency and price year from a run directory's `manifest.json`, if it has them.
pub fn run_money(dir: &Path) -> (Option<String>, Option<i64>) {
    let m: Option<ManifestInfo> = std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match m {
        Some(m) => (m.currency, m.price_year),
        None => (None, None),
    }
}

impl CompareData {
    /// Groups the rows of `metric` by run (in the order of `dirs`). `money` is each run's
    /// currency and price year ([`run_money`]). Fails with a message for the user when no
    /// run has the metric, or when it is an amount and the runs use different currencies
    /// (one axis would mix them).
    pub fn new(
        rows: &[CompareRow],
        dirs: &[String],
        money: &[(Option<String>, Option<i64>)],
        metric: &str,
    ) -> Result<CompareData, String> {
        let info = metric_info(metric, None);
        let mut runs: Vec<CompareRun> = Vec::new();
        for d in dirs {
            let bars: Vec<(String, String, f64, f64)> = rows
                .iter()
                .filter(|r| &r.run == d && r.metric == metric && r.mean.is_finite())
                .map(|r| (r.arm.clone(), r.contract.clone(), r.mean, r.mcse))
                .collect();
            if runs.iter().any(|r| &r.run == d) {
                continue;
            }
            let scenario = rows
                .iter()
                .find(|r| &r.run == d)
                .map(|r| r.scenario.clone())
                .unwrap_or_default();
            runs.push(CompareRun {
                run: d.clone(),
                scenario,
                bars,
            });
        }
        if runs.iter().all(|r| r.bars.is_empty()) {
            return Err(format!(
                "--metric {metric}: no run has this metric in summary.csv; use a metric of \
                 summary.csv, e.g. payer_cost, drug_paid, manufacturer_npv, \
                 share_of_price_paid, qalys or any_refund"
            ));
        }
        let mut currencies: Vec<String> = Vec::new();
        let mut years: Vec<i64> = Vec::new();
        for (c, y) in money {
            if let Some(c) = c {
                if !currencies.contains(c) {
                    currencies.push(c.clone());
                }
            }
            if let Some(y) = y {
                if !years.contains(y) {
                    years.push(*y);
                }
            }
        }
        if info.is_money() && currencies.len() > 1 {
            return Err(format!(
                "--metric {metric}: the runs are in different currencies ({}), so their amounts \
                 cannot share one axis; compare runs in one currency, or plot a share such as \
                 share_of_price_paid",
                currencies.join(", ")
            ));
        }
        let currency = currencies
            .first()
            .cloned()
            .unwrap_or_else(|| "currency units".to_string());
        let money = if years.is_empty() {
            currency
        } else {
            let y: Vec<String> = years.iter().map(|y| y.to_string()).collect();
            format!("{currency} ({})", y.join(", "))
        };
        Ok(CompareData {
            metric: metric.to_string(),
            runs,
            money,
        })
    }

    /// Contract names in order of first appearance over all runs (their colours).
    pub fn contracts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.runs {
            for b in &r.bars {
                if b.1 != NO_CONTRACT && !out.contains(&b.1) {
                    out.push(b.1.clone());
                }
            }
        }
        out
    }

    fn info(&self) -> MetricInfo {
        metric_info(&self.metric, None)
    }

    fn color(&self, contract: &str) -> RGBColor {
        match self.contracts().iter().position(|c| c == contract) {
            Some(i) => contract_color(i),
            None => {
                let (r, g, b) = COMPARATOR_COLOR;
                RGBColor(r, g, b)
            }
        }
    }
}

/// Draws the comparison plot into `path` (PNG or SVG by its extension).
pub fn write_compare_plot(data: &CompareData, path: &Path) -> Result<(), PlotError> {
    super::write_file(path, &render_compare(data, path)?)
}

/// The comparison plot's file contents, PNG or SVG by `path`'s extension.
pub fn render_compare(data: &CompareData, path: &Path) -> Result<Vec<u8>, PlotError> {
    let format = ImageFormat::of(path).map_err(|message| PlotError::Format {
        path: path.to_path_buf(),
        message,
    })?;
    match format {
        ImageFormat::Svg => Ok(super::figure_svg(data)?.into_bytes()),
        ImageFormat::Png => super::figure_png(data),
    }
}

/// Renders the comparison plot as an SVG document.
pub fn render_compare_svg(data: &CompareData) -> Result<String, PlotError> {
    super::figure_svg(data)
}

/// A row of the plot: a run's heading or one bar.
enum Line<'a> {
    Heading(&'a CompareRun),
    Bar(&'a (String, String, f64, f64)),
}

impl CompareData {
    fn lines(&self) -> Vec<Line<'_>> {
        let mut out = Vec::new();
        for r in &self.runs {
            out.push(Line::Heading(r));
            out.extend(r.bars.iter().map(Line::Bar));
        }
        out
    }

    fn bar_label(b: &(String, String, f64, f64)) -> String {
        if b.1 == NO_CONTRACT {
            format!("{} (comparator)", b.0)
        } else {
            b.1.clone()
        }
    }

    fn value_label(&self, b: &(String, String, f64, f64)) -> String {
        let share = self.info().kind == super::metric::MetricKind::Share;
        let (m, se) = if share {
            (b.2 * 100.0, b.3 * 100.0)
        } else {
            (b.2, b.3)
        };
        let unit = if share { "%" } else { "" };
        if se == 0.0 {
            // Every patient has the same value: no Monte Carlo error.
            let exact = thousands(m, if share { 3 } else { 2 });
            let exact = if exact.contains('.') {
                exact
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
            } else {
                exact
            };
            return format!("{exact}{unit} (exact)");
        }
        let mcse = Some(se).filter(|v| v.is_finite());
        let (mean, mcse) = mean_mcse(m, mcse, 3, 0, 4);
        match mcse {
            Some(e) => format!("{mean}{unit} (MCSE {e}{unit})"),
            None => format!("{mean}{unit}"),
        }
    }
}

impl Figure for CompareData {
    fn stem(&self) -> String {
        format!("compare_{}", self.metric)
    }

    fn size(&self) -> (u32, u32) {
        let n = self.lines().len() as f64;
        (1000, (190.0 + ROW * n).max(320.0) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> DrawResult {
        let info = self.info();
        let area = layout::header(
            root,
            s,
            &format!("Comparison of runs: {}", info.desc),
            &format!(
                "{}: mean per patient of the therapy arm under each contract{} in each run; \
                 whiskers: mean ± 1.96 MCSE (95% Monte Carlo interval of each mean).",
                self.metric,
                if self
                    .runs
                    .iter()
                    .flat_map(|r| &r.bars)
                    .any(|b| b.1 == NO_CONTRACT)
                {
                    " and of each comparator arm (grey)"
                } else {
                    ""
                }
            ),
        )?;
        let lines = self.lines();
        let name_font = s.font(layout::LEGEND_SIZE, TEXT);
        let heading_font = s.font(layout::LEGEND_SIZE, MUTED);
        let value_font = s.font(layout::TICK_SIZE, TEXT);
        let (w, _) = area.dim_in_pixel();
        let max_name = w as i32 / 3;
        let indent = s.px(14.0);
        let mut names = Vec::new();
        let mut widest = 0;
        let mut widest_value = 0;
        for l in &lines {
            if let Line::Bar(b) = l {
                let name = layout::fit(&area, s, &Self::bar_label(b), &name_font, max_name)?;
                widest = widest.max(s.text_width(&area, &name, &name_font)?);
                names.push(name);
                widest_value =
                    widest_value.max(s.text_width(&area, &self.value_label(b), &value_font)?);
            } else {
                names.push(String::new());
            }
        }
        let bars = self.runs.iter().flat_map(|r| &r.bars);
        let band = |b: &(String, String, f64, f64)| 1.96 * if b.3.is_finite() { b.3 } else { 0.0 };
        let hi = bars.clone().map(|b| b.2 + band(b)).fold(0.0f64, f64::max);
        let lo = bars.clone().map(|b| b.2 - band(b)).fold(0.0f64, f64::min);
        let x_range = layout::from_zero(lo, hi, 0.04);
        let n = lines.len() as f64;
        let mut builder = ChartBuilder::on(&area);
        builder
            .margin_left(s.px(16.0))
            .margin_right(widest_value + s.px(24.0))
            .margin_top(s.px(4.0))
            .margin_bottom(s.px(4.0))
            .x_label_area_size(s.px(layout::TICK_SIZE * 1.3 + layout::AXIS_DESC_SIZE * 1.3 + 20.0))
            .y_label_area_size(widest + indent + s.px(16.0));
        let mut chart = builder.build_cartesian_2d(x_range.clone(), 0.0..n)?;
        let ticks = RangedCoordf64::from(x_range.clone()).key_points(BoldPoints(8));
        let fmt = match info.axis_kind() {
            layout::AxisKind::Percent => TickFormat::percent(&ticks),
            _ => TickFormat::for_ticks(&ticks),
        };
        let x_label = |v: &f64| fmt.label(*v);
        let x_desc = layout::fit(
            &area,
            s,
            &info.axis_desc(&self.money),
            &s.font(layout::AXIS_DESC_SIZE, TEXT),
            w as i32 - s.px(40.0),
        )?;
        layout::bar_mesh(&mut chart, &x_label, x_desc, s)?;
        if x_range.start < 0.0 {
            layout::dashed(&mut chart, (0.0, 0.0), (0.0, n), MUTED, s)?;
        }
        for (i, l) in lines.iter().enumerate() {
            let y = n - 1.0 - i as f64;
            let mid = y + 0.5;
            match l {
                Line::Heading(r) => {
                    let (_, py) = chart.backend_coord(&(x_range.start, mid));
                    let short = Path::new(&r.run)
                        .file_name()
                        .map_or(r.run.clone(), |f| f.to_string_lossy().into_owned());
                    let text = if r.scenario.is_empty() {
                        short
                    } else {
                        format!("{short} \u{2014} {}", r.scenario)
                    };
                    let text = if r.bars.is_empty() {
                        format!("{text} (no {})", self.metric)
                    } else {
                        text
                    };
                    let text = layout::fit(&area, s, &text, &heading_font, w as i32 - s.px(32.0))?;
                    // A light band across the row keeps the heading clear of grid lines.
                    let (_, top) = chart.backend_coord(&(x_range.start, y + 0.92));
                    let (right, bottom) = chart.backend_coord(&(x_range.end, y + 0.08));
                    root.draw(&Rectangle::new(
                        [(s.px(12.0), top), (right, bottom)],
                        RGBColor(242, 242, 242).filled(),
                    ))?;
                    root.draw(&Text::new(
                        text,
                        (s.px(16.0), py),
                        heading_font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
                    ))?;
                }
                Line::Bar(b) => {
                    let color = self.color(&b.1);
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y + 0.2), (b.2, y + 0.8)],
                        color.filled(),
                    )))?;
                    let e = band(b);
                    let (lw, hw) = (b.2 - e, b.2 + e);
                    layout::whisker(&mut chart, (lw, hw), mid, s)?;
                    let (px, py) = chart.backend_coord(&(hw.max(0.0), mid));
                    root.draw(&Text::new(
                        self.value_label(b),
                        (px + s.px(8.0), py),
                        value_font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
                    ))?;
                    let (nx, ny) = chart.backend_coord(&(x_range.start, mid));
                    root.draw(&Text::new(
                        names[i].clone(),
                        (nx - s.px(10.0), ny),
                        name_font.clone().pos(Pos::new(HPos::Right, VPos::Center)),
                    ))?;
                }
            }
        }
        Ok(())
    }
}
