//! Cumulative expected drug payments per patient over years since treatment, from
//! `cashflow.csv`: undiscounted and discounted panels, one line per contract.

use super::data::{RunData, NO_CONTRACT};
use super::layout::{self, Axis, AxisKind, Key, LegendEntry};
use super::{color_of, DrawResult, Scale};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A contract's cumulative payments: (year, cumulative undiscounted, cumulative discounted)
/// through the end of each year.
struct Series {
    contract: String,
    points: Vec<(f64, f64, f64)>,
}

fn series(run: &RunData) -> Vec<Series> {
    run.contracts()
        .into_iter()
        .filter(|c| c != NO_CONTRACT)
        .map(|c| {
            let mut rows: Vec<_> = run.cashflow.iter().filter(|r| r.contract == c).collect();
            rows.sort_by(|a, b| a.year.total_cmp(&b.year));
            let (mut u, mut d) = (0.0, 0.0);
            let points = rows
                .iter()
                .map(|r| {
                    u += r.payments.unwrap_or(0.0);
                    d += r.payments_discounted.unwrap_or(0.0);
                    (r.year, u, d)
                })
                .collect();
            Series {
                contract: c,
                points,
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// The last year shown: a margin past the last year with any payment, at least 5 years,
/// at most the horizon.
/// Returns (last year shown, end of the cash-flow table, last year with a payment).
fn shown_until(all: &[Series], run: &RunData) -> (f64, f64, Option<f64>) {
    let end = all
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0 + 1.0))
        .fold(0.0f64, f64::max);
    let last_paid = run
        .cashflow
        .iter()
        .filter(|r| r.contract != NO_CONTRACT && r.payments.is_some_and(|p| p != 0.0))
        .map(|r| r.year)
        .fold(f64::NEG_INFINITY, f64::max);
    let until = if last_paid.is_finite() {
        ((last_paid + 1.0) * 1.25).ceil() + 1.0
    } else {
        10.0
    };
    (
        until.max(5.0).min(end),
        end,
        last_paid.is_finite().then_some(last_paid),
    )
}

/// Line widths: the first contract widest, so lines that coincide stay visible as nested
/// colours.
pub(crate) fn widths(n: usize) -> Vec<f64> {
    if n <= 1 {
        return vec![2.5; n];
    }
    let step = (8.0 / (n - 1) as f64).min(2.0);
    (0..n).map(|i| 2.0 + step * (n - 1 - i) as f64).collect()
}

fn rate_text(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!(
            "{}%",
            super::format::thousands(r * 100.0, 2)
                .trim_end_matches('0')
                .trim_end_matches('.')
        ),
        None => "the payer's rate".to_string(),
    }
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let all = series(run);
    let (until, _, _) = shown_until(&all, run);
    let rate = run
        .scenario
        .as_ref()
        .ok()
        .map(|sc| run.num(&sc.simulation.discount.costs));
    let patients = run
        .manifest
        .patients
        .map(|n| {
            format!(
                ", {} simulated patients",
                super::format::thousands(n as f64, 0)
            )
        })
        .unwrap_or_default();
    let area = layout::header(
        root,
        s,
        super::Plot::CumulativePayments.title(),
        &format!(
            "{}: mean per treated patient{patients}; payments in year y counted from its start",
            run.scenario_name()
        ),
    )?;
    let w = widths(all.len());
    let entries: Vec<LegendEntry> = all
        .iter()
        .enumerate()
        .map(|(i, c)| LegendEntry {
            label: c.contract.clone(),
            color: color_of(run, &c.contract),
            key: Key::Line(w[i].min(4.0)),
        })
        .collect();
    let area = layout::legend(&area, s, &entries)?;
    let (lo, hi) = all
        .iter()
        .flat_map(|c| c.points.iter())
        .filter(|p| p.0 < until)
        .fold((0.0f64, 0.0f64), |(lo, hi), p| {
            (lo.min(p.1).min(p.2), hi.max(p.1).max(p.2))
        });
    let y_range = layout::from_zero(lo, hi, 0.06);
    let panels = area.split_evenly((1, 2));
    let titles = [
        "Undiscounted".to_string(),
        format!("Discounted at {} a year", rate_text(rate)),
    ];
    let money = run.money_unit();
    for (k, panel_area) in panels.iter().enumerate() {
        let x = Axis::new(0.0..until, AxisKind::Plain, "Years since treatment");
        let y = Axis::new(
            y_range.clone(),
            AxisKind::Number,
            format!("Cumulative payments, {money} per patient"),
        );
        let mut chart = layout::panel(panel_area, s, Some(&titles[k]), &x, &y)?;
        for (i, c) in all.iter().enumerate() {
            let color = color_of(run, &c.contract);
            let mut pts = vec![(0.0, 0.0)];
            let mut prev = 0.0;
            for &(year, u, d) in &c.points {
                if year >= until {
                    break;
                }
                let v = if k == 0 { u } else { d };
                pts.push((year, prev));
                pts.push((year, v));
                pts.push(((year + 1.0).min(until), v));
                prev = v;
            }
            chart.draw_series(LineSeries::new(pts, color.stroke_width(s.u(w[i]))))?;
        }
    }
    Ok(())
}

pub(super) fn caption(run: &RunData) -> String {
    let all = series(run);
    let (until, end, last_paid) = shown_until(&all, run);
    let rate = run
        .scenario
        .as_ref()
        .ok()
        .map(|sc| run.num(&sc.simulation.discount.costs));
    let mut text = format!(
        "Expected (mean) cumulative drug payments per treated patient by years since treatment, \
         undiscounted (left) and discounted at {} a year (right). Amounts paid during year y \
         (from cashflow.csv, years [y, y + 1)) are counted from the start of that year. ",
        rate_text(rate)
    );
    if until < end {
        let why = match last_paid {
            Some(y) => format!("no contract pays anything after year {y}"),
            None => "no contract pays anything".to_string(),
        };
        text.push_str(&format!(
            "Years {until} to {end} are not shown: {why}, so the curves are flat there. "
        ));
    }
    text.push_str(
        "Lines that coincide are drawn nested (the first contract widest). No Monte Carlo band: \
         cashflow.csv holds per-year means only; the MCSE of the total (drug paid) is in the \
         results table.",
    );
    text
}
