//! Key incremental results by subgroup (`population.subgroups`): incremental cost, QALYs
//! and net monetary benefit at the first threshold, for every patient and for each
//! subgroup level, one dot per contract with a 95% Monte Carlo interval (± 1.96 MCSE), from
//! `incremental.csv`'s rows by `subgroup`.

use super::data::{IncrementalRow, RunData};
use super::layout::{self, Axis, AxisKind, Key, LegendEntry, MUTED, TEXT};
use super::{color_of, DrawResult, Scale};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Height of one subgroup row (SVG pixels).
const ROW: f64 = 34.0;
/// The label of the overall rows.
const EVERYONE: &str = "all patients";

/// One metric's panel: its title, axis text and (row, contract, value, mcse) points.
struct Panel {
    title: String,
    desc: String,
    points: Vec<(usize, String, f64, f64)>,
}

/// The subgroup labels, overall first (`name=level` shown as `name: level`).
fn rows(run: &RunData) -> Vec<String> {
    let mut v = vec![EVERYONE.to_string()];
    for r in &run.subgroup_incremental {
        if let Some(g) = &r.subgroup {
            if !v.contains(g) {
                v.push(g.clone());
            }
        }
    }
    v
}

/// The first comparator (the panels compare every contract against it).
fn comparator(run: &RunData) -> Option<String> {
    run.incremental.first().map(|r| r.comparator.clone())
}

fn panels(run: &RunData) -> Vec<Panel> {
    let labels = rows(run);
    let Some(cmp) = comparator(run) else {
        return Vec::new();
    };
    let wtp = run
        .incremental
        .iter()
        .find(|r| r.metric == "inc_nmb")
        .and_then(|r| r.wtp);
    let money = run.money_unit();
    let mut metrics = vec![
        (
            "inc_cost",
            None,
            "Incremental cost".to_string(),
            format!("{money} per patient"),
        ),
        (
            "inc_qalys",
            None,
            "Incremental QALYs".to_string(),
            "QALYs per patient".to_string(),
        ),
    ];
    if let Some(w) = wtp {
        metrics.push((
            "inc_nmb",
            Some(w),
            format!(
                "Incremental net monetary benefit at {}",
                super::format::thousands(w, 0)
            ),
            format!("{money} per patient"),
        ));
    }
    let row_of = |r: &IncrementalRow| {
        let g = r.subgroup.as_deref().unwrap_or(EVERYONE);
        let g = if g == crate::output::ALL_PATIENTS {
            EVERYONE
        } else {
            g
        };
        labels.iter().position(|l| l == g)
    };
    metrics
        .into_iter()
        .map(|(metric, wtp, title, desc)| {
            let points = run
                .incremental
                .iter()
                .chain(&run.subgroup_incremental)
                .filter(|r| r.metric == metric && r.comparator == cmp && r.wtp == wtp)
                .filter_map(|r| {
                    Some((
                        row_of(r)?,
                        r.contract.clone(),
                        r.value.filter(|v| v.is_finite())?,
                        r.mcse.filter(|m| m.is_finite()).unwrap_or(0.0),
                    ))
                })
                .collect();
            Panel {
                title,
                desc,
                points,
            }
        })
        .collect()
}

pub(super) fn size(run: &RunData) -> (u32, u32) {
    let n = rows(run).len() as f64;
    let panels = panels(run).len().max(1) as f64;
    (1000, (190.0 + panels * (95.0 + n * ROW)) as u32)
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let labels = rows(run);
    let all = panels(run);
    let contracts = run.contracts();
    let area = layout::header(
        root,
        s,
        super::Plot::Subgroups.title(),
        &format!(
            "{}: therapy under each contract against {}, mean per patient; whiskers: mean ± 1.96 MCSE",
            run.scenario_name(),
            comparator(run).unwrap_or_default()
        ),
    )?;
    let legend: Vec<LegendEntry> = contracts
        .iter()
        .map(|c| LegendEntry {
            label: c.clone(),
            color: color_of(run, c),
            key: Key::Line(3.0),
        })
        .collect();
    let area = layout::legend(&area, s, &legend)?;
    let name_font = s.font(layout::TICK_SIZE, TEXT);
    let max_name = area.dim_in_pixel().0 as i32 / 3;
    let mut names = Vec::new();
    let mut widest = 0;
    for l in &labels {
        let n = if l == EVERYONE {
            run.summary.first().and_then(|r| r.n)
        } else {
            run.subgroup_summary
                .iter()
                .find(|r| r.subgroup.as_deref() == Some(l.as_str()))
                .and_then(|r| r.n)
        };
        let count = n.map_or(String::new(), |n| {
            format!(" (n = {})", super::format::thousands(n as f64, 0))
        });
        let shown = l.replacen('=', ": ", 1) + &count;
        let name = layout::fit(&area, s, &shown, &name_font, max_name)?;
        widest = widest.max(s.text_width(&area, &name, &name_font)?);
        names.push(name);
    }
    let n = labels.len() as f64;
    let (_, area_h) = area.dim_in_pixel();
    let mut rest = area;
    let k = contracts.len().max(1) as f64;
    for panel in &all {
        let h = (area_h as f64 / all.len() as f64).round() as i32;
        let (chart_area, below) = rest.split_vertically(h);
        rest = below;
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for (_, _, v, m) in &panel.points {
            lo = lo.min(v - 1.96 * m);
            hi = hi.max(v + 1.96 * m);
        }
        let x = Axis::new(
            layout::padded(lo, hi, 0.08),
            AxisKind::Number,
            panel.desc.clone(),
        );
        let mut builder = ChartBuilder::on(&chart_area);
        builder
            .margin_left(s.px(16.0))
            .margin_right(s.px(24.0))
            .margin_top(s.px(4.0))
            .margin_bottom(s.px(4.0))
            .caption(&panel.title, s.font(layout::PANEL_TITLE_SIZE, TEXT))
            .x_label_area_size(s.px(layout::TICK_SIZE * 1.3 + layout::AXIS_DESC_SIZE * 1.3 + 20.0))
            .y_label_area_size(widest + s.px(16.0));
        let mut chart = builder.build_cartesian_2d(x.range.clone(), 0.0..n)?;
        let ticks = {
            use plotters::coord::ranged1d::{BoldPoints, Ranged};
            plotters::coord::types::RangedCoordf64::from(x.range.clone()).key_points(BoldPoints(8))
        };
        let fmt = super::format::TickFormat::for_ticks(&ticks);
        let x_label = |v: &f64| fmt.label(*v);
        layout::bar_mesh(&mut chart, &x_label, x.desc.clone(), s)?;
        layout::dashed(&mut chart, (0.0, 0.0), (0.0, n), MUTED, s)?;
        for (row, contract, v, m) in &panel.points {
            let c = contracts.iter().position(|x| x == contract).unwrap_or(0) as f64;
            let y = n - 1.0 - *row as f64 + (c + 1.0) / (k + 1.0);
            let color = color_of(run, contract);
            if *m > 0.0 {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(v - 1.96 * m, y), (v + 1.96 * m, y)],
                    color.stroke_width(s.u(2.0)),
                )))?;
            }
            chart.draw_series(std::iter::once(Circle::new(
                (*v, y),
                s.u(4.5),
                color.filled(),
            )))?;
        }
        for (i, name) in names.iter().enumerate() {
            let (nx, ny) = chart.backend_coord(&(x.range.start, n - 1.0 - i as f64 + 0.5));
            root.draw(&Text::new(
                name.clone(),
                (nx - s.px(10.0), ny),
                name_font.clone().pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
    }
    Ok(())
}

pub(super) fn caption(run: &RunData) -> String {
    format!(
        "Incremental results of the therapy under each contract against {} for every patient \
         and for each subgroup level (population.subgroups), with 95% Monte Carlo intervals \
         (mean ± 1.96 MCSE, from incremental.csv's rows by subgroup). Subgroup means add up \
         to the overall mean, weighted by the subgroups' patient counts (n in summary.csv); \
         a subgroup's interval is wider than the overall one because it holds fewer patients.",
        comparator(run).unwrap_or_default()
    )
}
