//! Shared layout: a title block, a legend that wraps, and cartesian panels whose axes carry
//! human-readable tick labels.

use super::format::TickFormat;
use super::{DrawResult, Scale};
use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{BoldPoints, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Dark grey for text.
pub const TEXT: RGBColor = RGBColor(34, 34, 34);
/// Mid grey for secondary text.
pub const MUTED: RGBColor = RGBColor(96, 96, 96);
/// Light grey for grid lines.
pub const GRID: RGBColor = RGBColor(225, 225, 225);

/// Font sizes in logical pixels.
pub const TITLE_SIZE: f64 = 24.0;
pub const SUBTITLE_SIZE: f64 = 15.0;
pub const PANEL_TITLE_SIZE: f64 = 17.0;
pub const AXIS_DESC_SIZE: f64 = 16.0;
pub const TICK_SIZE: f64 = 14.5;
pub const LEGEND_SIZE: f64 = 15.5;

/// A cartesian chart on f64 axes.
pub type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// How the ticks of an axis are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisKind {
    /// Amounts or counts: `1.5M`, `320k`, `0.9`.
    Number,
    /// Shares in [0, 1] as percentages.
    Percent,
    /// Plain values such as years (`2030`, `15`).
    Plain,
}

/// An axis: its range, how to label it, and its description (with units).
#[derive(Clone, Debug)]
pub struct Axis {
    /// The visible range.
    pub range: Range<f64>,
    /// Tick label style.
    pub kind: AxisKind,
    /// Description, e.g. "Years since treatment".
    pub desc: String,
    /// Maximum number of labelled ticks.
    pub labels: usize,
}

impl Axis {
    /// A new axis with up to 8 labelled ticks.
    pub fn new(range: Range<f64>, kind: AxisKind, desc: impl Into<String>) -> Axis {
        Axis {
            range,
            kind,
            desc: desc.into(),
            labels: 8,
        }
    }

    /// The tick values plotters will label, and their format.
    fn ticks(&self) -> (Vec<f64>, TickFormat) {
        let points = RangedCoordf64::from(self.range.clone()).key_points(BoldPoints(self.labels));
        let fmt = match self.kind {
            AxisKind::Number => TickFormat::for_ticks(&points),
            AxisKind::Percent => TickFormat::percent(&points),
            AxisKind::Plain => TickFormat::plain(&points),
        };
        (points, fmt)
    }
}

/// Draws the title and subtitle at the top of `root`; returns the area below them.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: Scale,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, super::DrawError> {
    let left = s.px(16.0);
    root.draw(&Text::new(
        title.to_string(),
        (left, s.px(12.0)),
        s.font(TITLE_SIZE, TEXT)
            .pos(Pos::new(HPos::Left, VPos::Top)),
    ))?;
    let mut height = 12.0 + TITLE_SIZE * 1.15;
    let font = s.font(SUBTITLE_SIZE, MUTED);
    let width = root.dim_in_pixel().0 as i32 - 2 * left;
    for line in wrap(root, s, subtitle, &font, width)? {
        root.draw(&Text::new(
            line,
            (left, s.px(height + 6.0)),
            font.clone().pos(Pos::new(HPos::Left, VPos::Top)),
        ))?;
        height += 6.0 + SUBTITLE_SIZE * 1.2;
    }
    Ok(root.split_vertically(s.px(height + 8.0)).1)
}

/// Splits `text` into lines no wider than `width` backend pixels, at spaces.
pub fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    text: &str,
    font: &TextStyle,
    width: i32,
) -> Result<Vec<String>, super::DrawError> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && s.text_width(area, &candidate, font)? > width {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    Ok(lines)
}

/// `text`, shortened with an ellipsis to at most `width` backend pixels.
pub fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    text: &str,
    font: &TextStyle,
    width: i32,
) -> Result<String, super::DrawError> {
    if s.text_width(area, text, font)? <= width {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let mut n = chars.len();
    while n > 1 {
        n -= 1;
        let t: String = chars[..n].iter().collect::<String>() + "\u{2026}";
        if s.text_width(area, &t, font)? <= width {
            return Ok(t);
        }
    }
    Ok("\u{2026}".to_string())
}

/// What a legend entry's key looks like.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    /// A line of the given width (logical pixels).
    Line(f64),
}

/// One legend entry.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    /// Label.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Key.
    pub key: Key,
}

/// Draws a legend in rows across the top of `area` (wrapping when needed); returns the
/// area below it.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    entries: &[LegendEntry],
) -> Result<DrawingArea<DB, Shift>, super::DrawError> {
    if entries.is_empty() {
        return Ok(area.clone());
    }
    let font = s.font(LEGEND_SIZE, TEXT);
    let (width, _) = area.dim_in_pixel();
    let left = s.px(16.0);
    let key_w = s.px(28.0);
    let gap = s.px(8.0);
    let spacing = s.px(26.0);
    let row_h = s.px(LEGEND_SIZE * 1.6);
    let mut x = left;
    let mut y = row_h / 2;
    for e in entries {
        let label = fit(
            area,
            s,
            &e.label,
            &font,
            width as i32 - 2 * left - key_w - gap,
        )?;
        let w = key_w + gap + s.text_width(area, &label, &font)?;
        if x > left && x + w > width as i32 - left {
            x = left;
            y += row_h;
        }
        match e.key {
            Key::Line(lw) => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + key_w, y)],
                    e.color.stroke_width(s.u(lw)),
                ))?;
            }
        }
        area.draw(&Text::new(
            label,
            (x + key_w + gap, y),
            font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += w + spacing;
    }
    Ok(area.split_vertically(y + row_h / 2 + s.px(4.0)).1)
}

/// Builds a chart on `area` with the given axes and an optional panel title, and draws its
/// grid, axes, tick labels and descriptions.
pub fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    s: Scale,
    title: Option<&str>,
    x: &Axis,
    y: &Axis,
) -> Result<Chart<'a, DB>, super::DrawError> {
    let (x_ticks, x_fmt) = x.ticks();
    let (y_ticks, y_fmt) = y.ticks();
    let tick_font = s.font(TICK_SIZE, TEXT);
    let mut widest = 0;
    for t in &y_ticks {
        widest = widest.max(s.text_width(area, &y_fmt.label(*t), &tick_font)?);
    }
    let _ = x_ticks;
    let y_area = widest + s.px(AXIS_DESC_SIZE * 1.3 + 20.0);
    let x_area = s.px(TICK_SIZE * 1.3 + AXIS_DESC_SIZE * 1.3 + 20.0);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_left(s.px(8.0))
        .margin_right(s.px(24.0))
        .margin_top(s.px(8.0))
        .margin_bottom(s.px(4.0))
        .x_label_area_size(x_area)
        .y_label_area_size(y_area);
    if let Some(t) = title {
        builder.caption(t, s.font(PANEL_TITLE_SIZE, TEXT));
    }
    let mut chart = builder.build_cartesian_2d(x.range.clone(), y.range.clone())?;
    let x_label = |v: &f64| x_fmt.label(*v);
    let y_label = |v: &f64| y_fmt.label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(x.labels)
        .y_labels(y.labels)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(x.desc.clone())
        .y_desc(y.desc.clone())
        .label_style(tick_font);
    house_style(&mut mesh, s).draw()?;
    Ok(chart)
}

/// The fonts and line styles every mesh shares: axis descriptions, axes, grid lines (no
/// minor lines) and tick marks.
fn house_style<'m, 'a, 'b, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB>,
    s: Scale,
) -> &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB> {
    mesh.axis_desc_style(s.font(AXIS_DESC_SIZE, TEXT))
        .axis_style(TEXT.stroke_width(s.u(1.0)))
        .bold_line_style(GRID.stroke_width(s.u(1.0)))
        .light_line_style(TRANSPARENT)
        .set_all_tick_mark_size(s.px(5.0))
}

/// The mesh of a horizontal bar chart: value ticks and grid on x, no y labels (the bars are
/// named beside them), the shared fonts and line styles.
pub fn bar_mesh<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    x_label: &dyn Fn(&f64) -> String,
    x_desc: String,
    s: Scale,
) -> DrawResult {
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(8)
        .y_labels(0)
        .disable_y_mesh()
        .x_label_formatter(x_label)
        .x_desc(x_desc)
        .label_style(s.font(TICK_SIZE, TEXT));
    house_style(&mut mesh, s).draw()?;
    Ok(())
}

/// A horizontal error whisker from `lo` to `hi` at height `mid`, with end caps.
pub fn whisker<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    (lo, hi): (f64, f64),
    mid: f64,
    s: Scale,
) -> DrawResult {
    let style = TEXT.stroke_width(s.u(1.5));
    chart.draw_series([
        PathElement::new(vec![(lo, mid), (hi, mid)], style),
        PathElement::new(vec![(lo, mid - 0.12), (lo, mid + 0.12)], style),
        PathElement::new(vec![(hi, mid - 0.12), (hi, mid + 0.12)], style),
    ])?;
    Ok(())
}

/// Draws a horizontal or vertical reference line across the chart (dashed look by short
/// segments), e.g. at 100% of the list price.
pub fn dashed<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    from: (f64, f64),
    to: (f64, f64),
    color: RGBColor,
    s: Scale,
) -> DrawResult {
    let n = 40;
    let style = color.stroke_width(s.u(1.5));
    let segments = (0..n).step_by(2).map(|i| {
        let a = i as f64 / n as f64;
        let b = (i + 1) as f64 / n as f64;
        PathElement::new(
            vec![
                (from.0 + (to.0 - from.0) * a, from.1 + (to.1 - from.1) * a),
                (from.0 + (to.0 - from.0) * b, from.1 + (to.1 - from.1) * b),
            ],
            style,
        )
    });
    chart.draw_series(segments)?;
    Ok(())
}

/// A range that contains `lo..hi` with `pad` (share of the span) on either side; a
/// degenerate range is widened around its value.
pub fn padded(lo: f64, hi: f64, pad: f64) -> Range<f64> {
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let span = hi - lo;
    if span <= 0.0 {
        let w = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        return (lo - w)..(hi + w);
    }
    (lo - span * pad)..(hi + span * pad)
}

/// `0..hi` (or `lo..hi` if something is negative) with headroom above the data.
pub fn from_zero(lo: f64, hi: f64, headroom: f64) -> Range<f64> {
    let lo = lo.min(0.0);
    let hi = hi.max(0.0);
    if hi - lo <= 0.0 {
        return 0.0..1.0;
    }
    let span = hi - lo;
    let lo = if lo < 0.0 { lo - span * headroom } else { 0.0 };
    lo..(hi + span * headroom)
}
