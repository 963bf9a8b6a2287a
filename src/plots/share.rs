//! Share of the list price paid per contract (undiscounted), bars with 95% Monte Carlo
//! intervals (mean ± 1.96 MCSE) from `summary.csv`.

use super::data::{RunData, NO_CONTRACT};
use super::format::decimals_for_mcse;
use super::layout::{self, Axis, AxisKind, MUTED, TEXT};
use super::{color_of, DrawResult, Scale};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const ROW: f64 = 56.0;

struct Bar {
    contract: String,
    mean: f64,
    mcse: f64,
}

fn bars(run: &RunData) -> Vec<Bar> {
    run.contracts()
        .into_iter()
        .filter(|c| c != NO_CONTRACT)
        .filter_map(|c| {
            let r = run.contract_row(&c, "share_of_price_paid")?;
            Some(Bar {
                mean: r.mean?,
                mcse: r.mcse.filter(|m| m.is_finite()).unwrap_or(0.0),
                contract: c,
            })
        })
        .collect()
}

pub(super) fn size(run: &RunData) -> (u32, u32) {
    let n = bars(run).len().max(1) as f64;
    (1000, (170.0 + ROW * n).max(300.0) as u32)
}

/// "99.753% (MCSE 0.012%)": the mean to the precision of its MCSE.
fn label(b: &Bar) -> String {
    if b.mcse > 0.0 {
        let d = decimals_for_mcse(Some(b.mcse * 100.0), 1, 0, 4);
        let mean = super::format::thousands(b.mean * 100.0, d);
        format!(
            "{mean}% (MCSE {}%)",
            super::format::thousands(b.mcse * 100.0, d)
        )
    } else {
        let exact = super::format::thousands(b.mean * 100.0, 3);
        format!(
            "{}% (exact)",
            exact.trim_end_matches('0').trim_end_matches('.')
        )
    }
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let all = bars(run);
    let area = layout::header(
        root,
        s,
        super::Plot::ShareOfPrice.title(),
        &format!(
            "{}: undiscounted drug payments / list price, mean per treated patient; \
             whiskers: mean ± 1.96 MCSE",
            run.scenario_name()
        ),
    )?;
    let name_font = s.font(layout::LEGEND_SIZE, TEXT);
    // Contract names on the left, shortened if longer than a third of the width.
    let max_name = area.dim_in_pixel().0 as i32 / 3;
    let mut names = Vec::new();
    let mut widest = 0;
    for b in &all {
        let name = layout::fit(&area, s, &b.contract, &name_font, max_name)?;
        widest = widest.max(s.text_width(&area, &name, &name_font)?);
        names.push(name);
    }
    let hi = all
        .iter()
        .map(|b| b.mean + 1.96 * b.mcse)
        .fold(1.0f64, f64::max);
    let lo = all
        .iter()
        .map(|b| b.mean - 1.96 * b.mcse)
        .fold(0.0f64, f64::min);
    let n = all.len().max(1) as f64;
    let x = Axis::new(
        layout::from_zero(lo, hi, 0.0).start..hi * 1.3,
        AxisKind::Percent,
        "Share of the list price paid (undiscounted)",
    );
    let mut builder = ChartBuilder::on(&area);
    builder
        .margin_left(s.px(16.0))
        .margin_right(s.px(24.0))
        .margin_top(s.px(8.0))
        .margin_bottom(s.px(4.0))
        .x_label_area_size(s.px(layout::TICK_SIZE * 1.3 + layout::AXIS_DESC_SIZE * 1.3 + 20.0))
        .y_label_area_size(widest + s.px(16.0));
    let mut chart = builder.build_cartesian_2d(x.range.clone(), 0.0..n)?;
    let ticks = {
        use plotters::coord::ranged1d::{BoldPoints, Ranged};
        plotters::coord::types::RangedCoordf64::from(x.range.clone()).key_points(BoldPoints(8))
    };
    let fmt = super::format::TickFormat::percent(&ticks);
    let x_label = |v: &f64| fmt.label(*v);
    layout::bar_mesh(&mut chart, &x_label, x.desc.clone(), s)?;
    layout::dashed(&mut chart, (1.0, 0.0), (1.0, n), MUTED, s)?;
    for (i, b) in all.iter().enumerate() {
        let y = n - 1.0 - i as f64;
        let color = color_of(run, &b.contract);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y + 0.22), (b.mean, y + 0.78)],
            color.filled(),
        )))?;
        let (l, h) = (b.mean - 1.96 * b.mcse, b.mean + 1.96 * b.mcse);
        let mid = y + 0.5;
        layout::whisker(&mut chart, (l, h), mid, s)?;
        let (px, py) = chart.backend_coord(&(h, mid));
        root.draw(&Text::new(
            label(b),
            (px + s.px(10.0), py),
            s.font(layout::TICK_SIZE, TEXT)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let (nx, ny) = chart.backend_coord(&(x.range.start, mid));
        root.draw(&Text::new(
            names[i].clone(),
            (nx - s.px(10.0), ny),
            name_font.clone().pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    Ok(())
}

pub(super) fn caption(run: &RunData) -> String {
    let _ = run;
    "Mean share of the list price the payer pays per treated patient under each contract \
     (undiscounted payments divided by the list price; above 100% with interest), with its 95% \
     Monte Carlo interval (mean ± 1.96 MCSE, from summary.csv). The dashed line is 100%. \
     \"Exact\": every patient pays the same share, so the mean has no Monte Carlo error."
        .to_string()
}
