//! Plots of the probabilistic sensitivity analysis (`--draws`: `ce_plane.csv`, `ceac.csv`,
//! `evpi.csv`) and of the one-way analysis (`--tornado`: `tornado.csv`). Each exists only
//! when its file does.

use super::data::{RunData, NO_CONTRACT};
use super::format::thousands;
use super::layout::{self, Axis, AxisKind, Key, LegendEntry, MUTED, TEXT};
use super::{color_of, DrawResult, Scale, COMPARATOR_COLOR};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// At most this many draws per contract are drawn on the cost-effectiveness plane.
const MAX_POINTS: usize = 2000;
/// At most this many parameters per contract in the tornado diagram.
const MAX_BARS: usize = 12;
const BAR_ROW: f64 = 30.0;

fn comparators(run: &RunData) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in run.ce_plane.iter().flatten() {
        if !out.contains(&r.comparator) {
            out.push(r.comparator.clone());
        }
    }
    out
}

fn thresholds(run: &RunData) -> Vec<f64> {
    run.scenario
        .as_ref()
        .map(|sc| sc.simulation.wtp.clone())
        .unwrap_or_default()
}

fn draws_text(run: &RunData) -> String {
    let draws = run
        .manifest_json
        .get("draws")
        .and_then(|d| d.as_u64())
        .or_else(|| {
            run.ce_plane
                .as_ref()
                .map(|rows| rows.iter().map(|r| r.draw).max().unwrap_or(0))
        });
    let patients = run
        .manifest
        .patients
        .map(|n| format!(" of {} patients", thousands(n as f64, 0)))
        .unwrap_or_default();
    match draws {
        Some(d) => format!("{d} parameter draws{patients}"),
        None => "parameter draws".to_string(),
    }
}

fn contract_legend(run: &RunData, width: f64) -> Vec<LegendEntry> {
    run.contracts()
        .iter()
        .map(|c| LegendEntry {
            label: c.clone(),
            color: color_of(run, c),
            key: Key::Line(width),
        })
        .collect()
}

pub(super) fn ce_plane_size(run: &RunData) -> (u32, u32) {
    let n = comparators(run).len().max(1);
    let rows = n.div_ceil(n.clamp(1, 2));
    (1000, (150.0 + 470.0 * rows as f64) as u32)
}

pub(super) fn draw_ce_plane<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let rows = run.ce_plane.as_deref().unwrap_or_default();
    let area = layout::header(
        root,
        s,
        super::Plot::CostEffectivenessPlane.title(),
        &format!(
            "{}: {}; outlined: mean over draws; dashed: cost per QALY thresholds",
            run.scenario_name(),
            draws_text(run)
        ),
    )?;
    let area = layout::legend(&area, s, &contract_legend(run, 4.0))?;
    let comps = comparators(run);
    let cols = comps.len().clamp(1, 2);
    let panels = area.split_evenly((comps.len().div_ceil(cols).max(1), cols));
    let money = run.money_unit();
    for (comp, panel) in comps.iter().zip(panels.iter()) {
        let pts: Vec<(&str, f64, f64)> = rows
            .iter()
            .filter(|r| &r.comparator == comp)
            .filter_map(|r| Some((r.contract.as_str(), r.inc_qalys?, r.inc_cost?)))
            .filter(|(_, q, c)| q.is_finite() && c.is_finite())
            .collect();
        let (mut x0, mut x1, mut y0, mut y1) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for &(_, q, c) in &pts {
            x0 = x0.min(q);
            x1 = x1.max(q);
            y0 = y0.min(c);
            y1 = y1.max(c);
        }
        let x = Axis::new(
            layout::padded(x0, x1, 0.06),
            AxisKind::Number,
            "Incremental QALYs per patient",
        );
        let y = Axis::new(
            layout::padded(y0, y1, 0.06),
            AxisKind::Number,
            format!("Incremental cost, {money} per patient"),
        );
        let title = if comps.len() > 1 || !comp.is_empty() {
            Some(format!("against {comp}"))
        } else {
            None
        };
        let mut chart = layout::panel(panel, s, title.as_deref(), &x, &y)?;
        // Threshold lines y = wtp * x, clipped to the panel.
        for wtp in thresholds(run).into_iter().filter(|w| *w > 0.0) {
            let lo = x.range.start.max(y.range.start / wtp);
            let hi = x.range.end.min(y.range.end / wtp);
            if hi <= lo {
                continue;
            }
            layout::dashed(&mut chart, (lo, wtp * lo), (hi, wtp * hi), MUTED, s)?;
            let (px, py) = chart.backend_coord(&(hi, wtp * hi));
            root.draw(&Text::new(
                format!(
                    "{}/QALY",
                    super::format::TickFormat::for_ticks(&[wtp]).label(wtp)
                ),
                (px - s.px(8.0), py - s.px(4.0)),
                s.font(layout::TICK_SIZE, MUTED)
                    .pos(Pos::new(HPos::Right, VPos::Bottom)),
            ))?;
        }
        layout::dashed(
            &mut chart,
            (x.range.start, 0.0),
            (x.range.end, 0.0),
            layout::GRID,
            s,
        )?;
        let contracts = run.contracts();
        let n = contracts.len();
        for (i, contract) in contracts.iter().enumerate() {
            let color = color_of(run, contract);
            // Earlier contracts larger, so that coinciding clouds stay visible as rings.
            let radius = 2.5 + (n - 1 - i) as f64 * (6.0 / n.max(2) as f64).min(1.5);
            let mine: Vec<(f64, f64)> = pts
                .iter()
                .filter(|(c, _, _)| c == contract)
                .map(|&(_, q, c)| (q, c))
                .collect();
            chart.draw_series(
                mine.iter()
                    .take(MAX_POINTS)
                    .map(|&p| Circle::new(p, s.u(radius), color.mix(0.45).filled())),
            )?;
            if !mine.is_empty() {
                let n = mine.len() as f64;
                let mean = (
                    mine.iter().map(|p| p.0).sum::<f64>() / n,
                    mine.iter().map(|p| p.1).sum::<f64>() / n,
                );
                chart.draw_series([
                    Circle::new(mean, s.u(radius + 4.5), color.filled()),
                    Circle::new(mean, s.u(radius + 4.5), TEXT.stroke_width(s.u(1.5))),
                ])?;
            }
        }
    }
    Ok(())
}

/// Grey shades for comparator strategies.
fn comparator_shade(i: usize) -> RGBColor {
    let (r, g, b) = COMPARATOR_COLOR;
    let d = (i as u8).saturating_mul(40);
    RGBColor(
        r.saturating_add(d),
        g.saturating_add(d),
        b.saturating_add(d),
    )
}

fn strategies(run: &RunData) -> Vec<(String, String, RGBColor)> {
    let mut out: Vec<(String, String, RGBColor)> = Vec::new();
    let mut comparators = 0;
    for r in run.ceac.iter().flatten() {
        if out.iter().any(|(s, _, _)| s == &r.strategy) {
            continue;
        }
        let color = if r.contract == NO_CONTRACT {
            comparators += 1;
            comparator_shade(comparators - 1)
        } else {
            color_of(run, &r.contract)
        };
        let label = if r.contract == NO_CONTRACT {
            r.arm.clone()
        } else {
            r.contract.clone()
        };
        out.push((r.strategy.clone(), label, color));
    }
    out
}

pub(super) fn draw_ceac<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let rows = run.ceac.as_deref().unwrap_or_default();
    let area = layout::header(
        root,
        s,
        super::Plot::Ceac.title(),
        &format!(
            "{}: share of {} in which each strategy has the highest net monetary benefit",
            run.scenario_name(),
            draws_text(run)
        ),
    )?;
    let strategies = strategies(run);
    let mut entries: Vec<LegendEntry> = strategies
        .iter()
        .map(|(_, label, color)| LegendEntry {
            label: label.clone(),
            color: *color,
            key: Key::Line(3.0),
        })
        .collect();
    entries.push(LegendEntry {
        label: "frontier (highest expected NMB)".to_string(),
        color: RGBColor(200, 200, 200),
        key: Key::Line(10.0),
    });
    let area = layout::legend(&area, s, &entries)?;
    let (w0, w1) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
            (a.min(r.wtp), b.max(r.wtp))
        });
    let x = Axis::new(
        if w1 > w0 {
            w0..w1
        } else {
            layout::padded(w0, w1, 0.0)
        },
        AxisKind::Number,
        format!("Willingness to pay, {} per QALY", run.money_unit()),
    );
    let mut y = Axis::new(
        -0.02..1.02,
        AxisKind::Percent,
        "Probability of the highest NMB",
    );
    y.labels = 6;
    let mut chart = layout::panel(&area, s, None, &x, &y)?;
    let mut frontier: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.on_frontier == 1)
        .filter_map(|r| Some((r.wtp, r.probability_cost_effective?)))
        .collect();
    frontier.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart.draw_series(LineSeries::new(
        frontier,
        RGBColor(200, 200, 200).stroke_width(s.u(10.0)),
    ))?;
    let widths = super::cumulative::widths(strategies.len());
    for (k, (strategy, _, color)) in strategies.iter().enumerate() {
        let mut line: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| &r.strategy == strategy)
            .filter_map(|r| Some((r.wtp, r.probability_cost_effective?)))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(line, color.stroke_width(s.u(widths[k]))))?;
    }
    Ok(())
}

pub(super) fn draw_evpi<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let mut pts: Vec<(f64, f64)> = run
        .evpi
        .iter()
        .flatten()
        .filter_map(|r| Some((r.wtp, r.evpi_per_patient?)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let area = layout::header(
        root,
        s,
        super::Plot::Evpi.title(),
        &format!(
            "{}: expected value of perfect information per patient over {}",
            run.scenario_name(),
            draws_text(run)
        ),
    )?;
    let (w0, w1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let hi = pts.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let money = run.money_unit();
    let x = Axis::new(
        if w1 > w0 {
            w0..w1
        } else {
            layout::padded(w0, w1, 0.0)
        },
        AxisKind::Number,
        format!("Willingness to pay, {money} per QALY"),
    );
    let y = Axis::new(
        layout::from_zero(0.0, hi, 0.08),
        AxisKind::Number,
        format!("EVPI, {money} per patient"),
    );
    let mut chart = layout::panel(&area, s, None, &x, &y)?;
    chart.draw_series(LineSeries::new(pts, TEXT.stroke_width(s.u(2.5))))?;
    Ok(())
}

struct Bar {
    parameter: String,
    low: Option<f64>,
    high: Option<f64>,
    base: f64,
    out_low: f64,
    out_high: f64,
}

/// Tornado bars per contract (largest swing first, at most [`MAX_BARS`]) and the output.
fn tornado(run: &RunData) -> (Vec<(String, Vec<Bar>)>, String) {
    let rows = run.tornado.as_deref().unwrap_or_default();
    let mut out: Vec<(String, Vec<Bar>)> = Vec::new();
    for r in rows {
        let (Some(base), Some(out_low), Some(out_high)) =
            (r.base_output, r.output_low, r.output_high)
        else {
            continue;
        };
        let bar = Bar {
            parameter: r.parameter.clone(),
            low: r.low,
            high: r.high,
            base,
            out_low,
            out_high,
        };
        match out.iter_mut().find(|(c, _)| c == &r.contract) {
            Some((_, bars)) => bars.push(bar),
            None => out.push((r.contract.clone(), vec![bar])),
        }
    }
    let order = run.contracts();
    out.sort_by_key(|(c, _)| order.iter().position(|o| o == c).unwrap_or(usize::MAX));
    for (_, bars) in &mut out {
        bars.sort_by(|a, b| {
            (b.out_high - b.out_low)
                .abs()
                .total_cmp(&(a.out_high - a.out_low).abs())
        });
        bars.truncate(MAX_BARS);
    }
    let output = rows.first().map(|r| r.output.clone()).unwrap_or_default();
    (out, output)
}

/// The unit of a tornado output: currency unless it is a health outcome.
fn output_desc(run: &RunData, output: &str) -> String {
    let o = output.to_ascii_lowercase();
    if o.contains("qaly") && !o.contains("nmb") || o.contains("life_years") {
        output.to_string()
    } else {
        format!("{output}, {} per patient", run.money_unit())
    }
}

pub(super) fn tornado_size(run: &RunData) -> (u32, u32) {
    let (groups, _) = tornado(run);
    let rows: usize = groups.iter().map(|(_, b)| b.len()).sum();
    let h = 175.0 + groups.len() as f64 * 70.0 + rows as f64 * BAR_ROW;
    (1000, h.max(320.0) as u32)
}

/// A parameter value with three significant digits (`0.00376`, `29.1k`, `1.58M`).
fn short(x: Option<f64>) -> String {
    let Some(v) = x.filter(|v| v.is_finite()) else {
        return "?".to_string();
    };
    if v == 0.0 {
        return "0".to_string();
    }
    let unit = super::format::Unit::for_max(v.abs());
    let scaled = v / unit.divisor;
    let d = (2 - scaled.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let t = format!("{scaled:.d$}");
    let t = if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    };
    t + unit.suffix
}

pub(super) fn draw_tornado<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let (groups, output) = tornado(run);
    let area = layout::header(
        root,
        s,
        super::Plot::Tornado.title(),
        &format!(
            "{}: each parameter at its low (light) and high (dark) value, the others at base; \
             line: base case",
            run.scenario_name()
        ),
    )?;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, bars) in &groups {
        for b in bars {
            for v in [b.base, b.out_low, b.out_high] {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    let x = Axis::new(
        layout::padded(lo, hi, 0.05),
        AxisKind::Number,
        output_desc(run, &output),
    );
    let heights: Vec<f64> = groups
        .iter()
        .enumerate()
        .map(|(k, (_, b))| {
            let axis = if k + 1 == groups.len() { 95.0 } else { 70.0 };
            axis + b.len() as f64 * BAR_ROW
        })
        .collect();
    let total: f64 = heights.iter().sum();
    let (_, area_h) = area.dim_in_pixel();
    let name_font = s.font(layout::TICK_SIZE, TEXT);
    let max_name = area.dim_in_pixel().0 as i32 * 9 / 20;
    let mut rest = area;
    for (k, (contract, bars)) in groups.iter().enumerate() {
        let last = k + 1 == groups.len();
        let h = (heights[k] / total * area_h as f64).round() as i32;
        let (panel, below) = rest.split_vertically(h);
        rest = below;
        let mut names = Vec::new();
        let mut widest = 0;
        for b in bars {
            // The parameter's name is shortened if need be, never its range.
            let range = format!(" ({} to {})", short(b.low), short(b.high));
            let room = max_name - s.text_width(&panel, &range, &name_font)?;
            let label = run.parameter_label(&b.parameter);
            let name = layout::fit(&panel, s, &label, &name_font, room)? + &range;
            widest = widest.max(s.text_width(&panel, &name, &name_font)?);
            names.push(name);
        }
        let n = bars.len().max(1) as f64;
        let mut builder = ChartBuilder::on(&panel);
        builder
            .margin_left(s.px(16.0))
            .margin_right(s.px(24.0))
            .margin_top(s.px(4.0))
            .margin_bottom(s.px(4.0))
            .caption(contract, s.font(layout::PANEL_TITLE_SIZE, TEXT))
            .x_label_area_size(s.px(if last {
                layout::TICK_SIZE * 1.3 + layout::AXIS_DESC_SIZE * 1.3 + 20.0
            } else {
                layout::TICK_SIZE * 1.3 + 14.0
            }))
            .y_label_area_size(widest + s.px(16.0));
        let mut chart = builder.build_cartesian_2d(x.range.clone(), 0.0..n)?;
        let ticks = {
            use plotters::coord::ranged1d::{BoldPoints, Ranged};
            plotters::coord::types::RangedCoordf64::from(x.range.clone()).key_points(BoldPoints(8))
        };
        let fmt = super::format::TickFormat::for_ticks(&ticks);
        let x_label = |v: &f64| fmt.label(*v);
        layout::bar_mesh(
            &mut chart,
            &x_label,
            if last { x.desc.clone() } else { String::new() },
            s,
        )?;
        let color = color_of(run, contract);
        for (i, b) in bars.iter().enumerate() {
            let y = n - 1.0 - i as f64;
            chart.draw_series([
                Rectangle::new(
                    [(b.base, y + 0.18), (b.out_low, y + 0.82)],
                    color.mix(0.35).filled(),
                ),
                Rectangle::new([(b.base, y + 0.18), (b.out_high, y + 0.82)], color.filled()),
            ])?;
            let (nx, ny) = chart.backend_coord(&(x.range.start, y + 0.5));
            root.draw(&Text::new(
                names[i].clone(),
                (nx - s.px(10.0), ny),
                name_font.clone().pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        if let Some(b) = bars.first() {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(b.base, 0.0), (b.base, n)],
                TEXT.stroke_width(s.u(1.5)),
            )))?;
        }
    }
    Ok(())
}

pub(super) fn caption_ce_plane(run: &RunData) -> String {
    format!(
        "Probabilistic sensitivity analysis: each point is one parameter draw ({}), the \
         incremental cost and QALYs per patient of the therapy under each contract against the \
         comparator; outlined points are the means over draws. Dashed lines are the scenario's \
         thresholds: points below a line are cost-effective at that threshold. The spread is \
         parameter uncertainty plus each draw's Monte Carlo noise (its size: the within-draw \
         MCSE in psa_incremental.csv). From ce_plane.csv{}.",
        draws_text(run),
        if run
            .ce_plane
            .as_ref()
            .is_some_and(|r| r.len() > MAX_POINTS * 8)
        {
            format!("; at most {MAX_POINTS} draws per contract are drawn")
        } else {
            String::new()
        }
    )
}

pub(super) fn caption_ceac(run: &RunData) -> String {
    format!(
        "Cost-effectiveness acceptability curves: for each willingness to pay per QALY, the \
         share of parameter draws ({}) in which each strategy (the comparator, or the therapy \
         under a contract) has the highest net monetary benefit. The wide grey line is the \
         acceptability frontier: the probability of the strategy with the highest expected \
         NMB. From ceac.csv.",
        draws_text(run)
    )
}

pub(super) fn caption_evpi(run: &RunData) -> String {
    let _ = run;
    "Expected value of perfect information per patient by willingness to pay per QALY, from \
     evpi.csv: what resolving all parameter uncertainty would be worth. Monte Carlo noise \
     within draws biases it upward."
        .to_string()
}

pub(super) fn caption_tornado(run: &RunData) -> String {
    let (_, output) = tornado(run);
    format!(
        "One-way sensitivity analysis of {output}: each uncertain parameter set to its low \
         (light bar) and high (dark bar) value with all others at base, on the base case's \
         simulated patients (common random numbers, so the swings are not Monte Carlo noise). \
         Parameters are sorted by swing (at most {MAX_BARS} per contract); the range after each \
         name is its low and high value. From tornado.csv."
    )
}
