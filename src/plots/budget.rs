//! Payer spend on the treated cohorts by calendar year, from `budget.csv` (written by later
//! versions; the plot exists only when the file does).

use super::data::{BudgetRow, RunData, NO_CONTRACT};
use super::layout::{self, Axis, AxisKind, Key, LegendEntry};
use super::{color_of, DrawResult, Scale};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One line: an (arm, contract) pair and its rows sorted by year.
struct Series<'a> {
    label: String,
    contract: String,
    rows: Vec<&'a BudgetRow>,
}

fn series(run: &RunData) -> Vec<Series<'_>> {
    let Some(budget) = &run.budget else {
        return Vec::new();
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in budget {
        let k = (r.arm.clone(), r.contract.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Contracts in their colour order first, then comparators.
    let order = run.contracts();
    keys.sort_by_key(|(_, c)| order.iter().position(|o| o == c).unwrap_or(usize::MAX));
    keys.into_iter()
        .map(|(arm, contract)| {
            let mut rows: Vec<&BudgetRow> = budget
                .iter()
                .filter(|r| r.arm == arm && r.contract == contract)
                .collect();
            rows.sort_by(|a, b| a.year.total_cmp(&b.year));
            let label = if contract == NO_CONTRACT {
                arm.clone()
            } else {
                contract.clone()
            };
            Series {
                label,
                contract,
                rows,
            }
        })
        .collect()
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let all = series(run);
    let area = layout::header(
        root,
        s,
        super::Plot::Budget.title(),
        &format!(
            "{}: mean payer spend on the treated cohorts; band: 2.5th to 97.5th percentile over simulated cohorts",
            run.scenario_name()
        ),
    )?;
    let entries: Vec<LegendEntry> = all
        .iter()
        .map(|c| LegendEntry {
            label: c.label.clone(),
            color: color_of(run, &c.contract),
            key: Key::Line(2.5),
        })
        .collect();
    let area = layout::legend(&area, s, &entries)?;
    let rows = all.iter().flat_map(|c| c.rows.iter());
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
    for r in rows {
        x_lo = x_lo.min(r.year);
        x_hi = x_hi.max(r.year);
        for v in [r.mean, r.p025, r.p975].into_iter().flatten() {
            y_lo = f64::min(y_lo, v);
            y_hi = f64::max(y_hi, v);
        }
    }
    let x_range = if x_lo.is_finite() && x_hi > x_lo {
        x_lo..x_hi
    } else {
        layout::padded(x_lo, x_hi, 0.0)
    };
    let x = Axis::new(x_range, AxisKind::Plain, "Calendar year");
    let y = Axis::new(
        layout::from_zero(y_lo, y_hi, 0.06),
        AxisKind::Number,
        format!("Payer spend, {} per year", run.money_unit()),
    );
    let mut chart = layout::panel(&area, s, None, &x, &y)?;
    for c in &all {
        let color = color_of(run, &c.contract);
        let upper: Vec<(f64, f64)> = c
            .rows
            .iter()
            .filter_map(|r| Some((r.year, r.p975?)))
            .collect();
        let lower: Vec<(f64, f64)> = c
            .rows
            .iter()
            .filter_map(|r| Some((r.year, r.p025?)))
            .collect();
        if upper.len() == c.rows.len() && lower.len() == c.rows.len() && !upper.is_empty() {
            // A faint fill with thin edges: overlapping bands stay readable.
            let edge = color.mix(0.6).stroke_width(s.u(1.0));
            chart.draw_series(LineSeries::new(upper.clone(), edge))?;
            chart.draw_series(LineSeries::new(lower.clone(), edge))?;
            let mut band = upper;
            band.extend(lower.into_iter().rev());
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.07).filled(),
            )))?;
        }
    }
    for c in &all {
        let color = color_of(run, &c.contract);
        let line: Vec<(f64, f64)> = c
            .rows
            .iter()
            .filter_map(|r| Some((r.year, r.mean?)))
            .collect();
        chart.draw_series(LineSeries::new(line, color.stroke_width(s.u(2.5))))?;
    }
    Ok(())
}

pub(super) fn caption(run: &RunData) -> String {
    format!(
        "Payer spend on the treated cohorts by calendar year ({}), mean per year with the \
         2.5th to 97.5th percentile over simulated cohorts as a band, from budget.csv.",
        run.money_unit()
    )
}
