//! State occupancy curves per arm from `occupancy.csv`: the share of patients in each state
//! over years since treatment, one panel per arm, with ±1.96 MCSE bands.

use super::data::RunData;
use super::layout::{self, Axis, AxisKind, Key, LegendEntry};
use super::{DrawResult, Scale};
use plotters::coord::Shift;
use plotters::prelude::*;

/// State colours: Okabe–Ito in an order different from the contracts'; death states grey.
const STATE_PALETTE: [(u8, u8, u8); 7] = [
    (0, 158, 115),   // bluish green
    (230, 159, 0),   // orange
    (86, 180, 233),  // sky blue
    (204, 121, 167), // reddish purple
    (213, 94, 0),    // vermillion
    (0, 114, 178),   // blue
    (240, 228, 66),  // yellow
];
const DEATH_COLOR: RGBColor = RGBColor(80, 80, 80);
const PANEL_HEIGHT: f64 = 380.0;

fn columns(n: usize) -> usize {
    n.clamp(1, 2)
}

pub(super) fn size(run: &RunData) -> (u32, u32) {
    let n = arms(run).len().max(1);
    let rows = n.div_ceil(columns(n));
    (1000, (110.0 + PANEL_HEIGHT * rows as f64) as u32)
}

fn arms(run: &RunData) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &run.occupancy {
        if !out.contains(&r.arm) {
            out.push(r.arm.clone());
        }
    }
    out
}

/// State names in order of first appearance, and whether each is a death state.
fn states(run: &RunData) -> Vec<(String, bool)> {
    let deaths: Vec<String> = match &run.scenario {
        Ok(sc) => sc.arms.iter().map(|a| a.death_state.clone()).collect(),
        Err(_) => Vec::new(),
    };
    let mut out: Vec<(String, bool)> = Vec::new();
    for r in &run.occupancy {
        if !out.iter().any(|(s, _)| s == &r.state) {
            out.push((r.state.clone(), deaths.contains(&r.state)));
        }
    }
    // Death states last, so that the legend reads from the living states.
    out.sort_by_key(|(_, dead)| *dead);
    out
}

fn state_color(all: &[(String, bool)], state: &str) -> RGBColor {
    let mut k = 0;
    for (name, dead) in all {
        if *dead {
            if name == state {
                return DEATH_COLOR;
            }
            continue;
        }
        if name == state {
            let (r, g, b) = STATE_PALETTE[k % STATE_PALETTE.len()];
            return RGBColor(r, g, b);
        }
        k += 1;
    }
    DEATH_COLOR
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunData,
    s: Scale,
) -> DrawResult {
    let all_states = states(run);
    let arm_names = arms(run);
    let area = layout::header(
        root,
        s,
        super::Plot::Occupancy.title(),
        &format!(
            "{}: share of simulated patients in each state; shaded: ±1.96 MCSE",
            run.scenario_name()
        ),
    )?;
    let entries: Vec<LegendEntry> = all_states
        .iter()
        .map(|(name, _)| LegendEntry {
            label: name.clone(),
            color: state_color(&all_states, name),
            key: Key::Line(2.5),
        })
        .collect();
    let area = layout::legend(&area, s, &entries)?;
    let t_max = run
        .occupancy
        .iter()
        .map(|r| r.time)
        .filter(|t| t.is_finite())
        .fold(0.0f64, f64::max);
    let cols = columns(arm_names.len());
    let rows = arm_names.len().div_ceil(cols).max(1);
    let panels = area.split_evenly((rows, cols));
    let therapy = run.therapy_arm();
    for (arm, panel_area) in arm_names.iter().zip(panels.iter()) {
        let title = if Some(arm) == therapy.as_ref() {
            format!("{arm} (therapy arm)")
        } else {
            format!("{arm} (comparator)")
        };
        let x = Axis::new(
            0.0..if t_max > 0.0 { t_max } else { 1.0 },
            AxisKind::Plain,
            "Years since treatment",
        );
        let mut y = Axis::new(0.0..1.0, AxisKind::Percent, "Share of patients");
        y.labels = 6;
        let mut chart = layout::panel(panel_area, s, Some(&title), &x, &y)?;
        for (state, _) in &all_states {
            let mut pts: Vec<(f64, f64, f64)> = run
                .occupancy
                .iter()
                .filter(|r| &r.arm == arm && &r.state == state)
                .filter_map(|r| Some((r.time, r.share?, r.mcse.unwrap_or(0.0))))
                .collect();
            if pts.is_empty() {
                continue;
            }
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = state_color(&all_states, state);
            let mut band: Vec<(f64, f64)> = pts
                .iter()
                .map(|&(t, v, m)| (t, (v + 1.96 * m).min(1.0)))
                .collect();
            band.extend(
                pts.iter()
                    .rev()
                    .map(|&(t, v, m)| (t, (v - 1.96 * m).max(0.0))),
            );
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.25).filled(),
            )))?;
            chart.draw_series(LineSeries::new(
                pts.iter().map(|&(t, v, _)| (t, v)),
                color.stroke_width(s.u(2.0)),
            ))?;
        }
    }
    Ok(())
}

pub(super) fn caption(run: &RunData) -> String {
    let _ = run;
    "Share of simulated patients in each health state by years since treatment, one panel per \
     arm (the curves to set beside published Kaplan–Meier plots). Shaded: ±1.96 binomial Monte \
     Carlo standard errors from occupancy.csv; with many patients the band is thinner than the \
     line."
        .to_string()
}
