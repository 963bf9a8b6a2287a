//! Per-patient distributions from `quantiles.csv`, drawn as cumulative distribution curves
//! (the quantile function turned on its side): drug payments and the manufacturer's NPV.

use super::data::{RunData, NO_CONTRACT};
use super::layout::{self, Axis, AxisKind, Key, LegendEntry};
use super::{color_of, cumulative::widths, DrawResult, Scale};
use plotters::coord::Shift;
use plotters::prelude::*;

/// The quantile function of (contract, metric) on the therapy arm: (p, value) sorted by p.
fn quantiles(run: &RunData, contract: &str, metric: &str) -> Vec<(f64, f64)> {
    let mut q: Vec<(f64, f64)> = run
        .quantiles
        .iter()
        .filter(|r| r.contract == contract && r.metric == metric)
        .filter_map(|r| Some((r.p, r.value?)))
        .filter(|(p, v)| p.is_finite() && v.is_finite())
        .collect();
    q.sort_by(|a, b| a.0.total_cmp(&b.0));
    q
}

struct Panel {
    title: String,
    metric: &'static str,
    x_desc: String,
}

fn rate(run: &RunData, f: impl Fn(&crate::scenario::Discount) -> &crate::scenario::Num) -> String {
    match &run.scenario {
        Ok(sc) => {
            let r = run.num(f(&sc.simulation.discount)) * 100.0;
            let t = super::format::thousands(r, 2);
            format!("{}%", t.trim_end_matches('0').trim_end_matches('.'))
        }
        Err(_) => "its rate".to_string(),
    }
}

fn draw_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
    title: &str,
    y_desc: &str,
    panels: &[Panel],
) -> DrawResult {
    let contracts: Vec<String> = run
        .contracts()
        .into_iter()
        .filter(|c| c != NO_CONTRACT)
        .collect();
    let area = layout::header(
        root,
        s,
        title,
        &format!(
            "{}: cumulative distribution over simulated treated patients",
            run.scenario_name()
        ),
    )?;
    let w = widths(contracts.len());
    let entries: Vec<LegendEntry> = contracts
        .iter()
        .enumerate()
        .map(|(i, c)| LegendEntry {
            label: c.clone(),
            color: color_of(run, c),
            key: Key::Line(w[i].min(4.0)),
        })
        .collect();
    let area = layout::legend(&area, s, &entries)?;
    let curves: Vec<Vec<Vec<(f64, f64)>>> = panels
        .iter()
        .map(|p| {
            contracts
                .iter()
                .map(|c| quantiles(run, c, p.metric))
                .collect()
        })
        .collect();
    // One x range for all panels, so that they compare at a glance.
    let (lo, hi) = curves
        .iter()
        .flatten()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        });
    let x_range = layout::padded(lo, hi, 0.05);
    let areas = area.split_evenly((1, panels.len()));
    for (k, (panel, panel_area)) in panels.iter().zip(areas.iter()).enumerate() {
        let x = Axis::new(x_range.clone(), AxisKind::Number, panel.x_desc.clone());
        // A little room below 0 and above 1 keeps the flat ends off the axis lines.
        let mut y = Axis::new(-0.02..1.02, AxisKind::Percent, y_desc);
        y.labels = 6;
        let title = (panels.len() > 1).then_some(panel.title.as_str());
        let mut chart = layout::panel(panel_area, s, title, &x, &y)?;
        for (i, c) in contracts.iter().enumerate() {
            let q = &curves[k][i];
            let (Some(first), Some(last)) = (q.first(), q.last()) else {
                continue;
            };
            let mut pts = vec![(x_range.start, 0.0), (first.1, 0.0)];
            pts.extend(q.iter().map(|&(p, v)| (v, p)));
            pts.push((last.1, 1.0));
            pts.push((x_range.end, 1.0));
            chart.draw_series(LineSeries::new(
                pts,
                color_of(run, c).stroke_width(s.u(w[i])),
            ))?;
        }
    }
    Ok(())
}

pub(super) fn draw_drug<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let money = run.money_unit();
    let panels = [
        Panel {
            title: "Undiscounted".to_string(),
            metric: "drug_paid_undiscounted",
            x_desc: format!("Drug paid, {money} per patient"),
        },
        Panel {
            title: format!("Discounted at {} a year", rate(run, |d| &d.costs)),
            metric: "drug_paid",
            x_desc: format!("Drug paid (present value), {money} per patient"),
        },
    ];
    draw_panels(
        root,
        run,
        s,
        super::Plot::DrugPaidDistribution.title(),
        "Share of patients paid at most x",
        &panels,
    )
}

pub(super) fn draw_npv<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let panels = [Panel {
        title: String::new(),
        metric: "manufacturer_npv",
        x_desc: format!(
            "Manufacturer NPV at {} a year, {} per patient",
            rate(run, |d| &d.manufacturer),
            run.money_unit()
        ),
    }];
    draw_panels(
        root,
        run,
        s,
        super::Plot::ManufacturerNpvDistribution.title(),
        "Share of patients with NPV at most x",
        &panels,
    )
}

pub(super) fn caption_drug(run: &RunData) -> String {
    format!(
        "Cumulative distribution of what the payer pays for the drug per treated patient under \
         each contract: the height of a curve at x is the share of patients for whom at most x \
         was paid. Left undiscounted, right discounted at the payer's rate of {} a year. A \
         vertical step is a share of patients who all pay the same (e.g. the full price). Read \
         from quantiles.csv (p = 0, 0.01, …, 1; within 0.2% relative); lines that coincide are \
         drawn nested (the first contract widest).",
        rate(run, |d| &d.costs)
    )
}

pub(super) fn caption_npv(run: &RunData) -> String {
    format!(
        "Cumulative distribution of the manufacturer's net present value per treated patient \
         (payments discounted at {} a year, less cost of goods) under each contract, from \
         quantiles.csv.",
        rate(run, |d| &d.manufacturer)
    )
}
