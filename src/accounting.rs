//! Exact continuous-time discounting and accounting over sojourns (DOMAIN.md §4).
//!
//! d(t) = (1 + r)^-t = e^(-δt) with δ = ln(1 + r); a payment A at t is worth A·d(t); a cost
//! flowing at annual rate c over [a, b] is worth c·(d(a) - d(b))/δ (c·(b - a) when r = 0).

use crate::history::History;
use crate::model::ArmModel;

/// Continuous discounting at an annual rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Discounter {
    /// Annual rate r.
    pub rate: f64,
    delta: f64,
    /// d(k) for whole years k < `WHOLE_YEARS` (payments fall on them), computed as
    /// [`Discounter::factor`] would, so a lookup gives the same value.
    whole_years: [f64; WHOLE_YEARS],
}

/// Whole years whose discount factor is tabulated.
const WHOLE_YEARS: usize = 16;

impl Discounter {
    /// Discounting at annual rate `rate` (> -1).
    pub fn new(rate: f64) -> Self {
        let delta = rate.ln_1p();
        let mut whole_years = [1.0; WHOLE_YEARS];
        if delta != 0.0 {
            for (k, d) in whole_years.iter_mut().enumerate() {
                *d = (-delta * k as f64).exp();
            }
        }
        Self {
            rate,
            delta,
            whole_years,
        }
    }

    /// The continuous rate δ = ln(1 + r).
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// Discount factor d(t).
    #[inline]
    pub fn factor(&self, t: f64) -> f64 {
        // An i32 cast is cheaper than a usize one (saturating either way).
        let k = t as i32;
        if (0..WHOLE_YEARS as i32).contains(&k) && k as f64 == t {
            self.whole_years[k as usize]
        } else if self.delta == 0.0 {
            1.0
        } else {
            (-self.delta * t).exp()
        }
    }

    /// ∫_a^b d(t) dt given d(a) = `da` already computed.
    #[inline]
    pub fn integral_given_start(&self, a: f64, b: f64, da: f64) -> f64 {
        if self.delta == 0.0 {
            b - a
        } else {
            // (d(a) - d(b))/δ = d(a)(1 - e^{-δ(b-a)})/δ, accurate for short sojourns.
            -da * (-self.delta * (b - a)).exp_m1() / self.delta
        }
    }

    /// ∫_a^b d(t) dt.
    #[inline]
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        self.integral_given_start(a, b, self.factor(a))
    }
}

/// Per-patient totals of one arm, discounted and undiscounted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArmTotals {
    /// Discounted costs other than the therapy's price (state, entry, start costs).
    pub other_costs: f64,
    /// The same, undiscounted.
    pub other_costs_undiscounted: f64,
    /// Discounted QALYs.
    pub qalys: f64,
    /// Undiscounted QALYs.
    pub qalys_undiscounted: f64,
    /// Discounted life years.
    pub life_years: f64,
    /// Undiscounted life years.
    pub life_years_undiscounted: f64,
}

/// Per-year cost flows of one patient, added into per-year sums of a block of patients.
///
/// A flow over [a, b] costs O(1) whatever its length: each endpoint t (in year y = ⌊t⌋)
/// adds its partial year [y, t] to `undiscounted[y]`/`discounted[y]` and marks the whole
/// years before y in the difference array `whole_years`; [`fold_whole_years`] turns the
/// marks into amounts once per block (a whole year y is worth 1 undiscounted and
/// ∫_y^{y+1} d(s) ds discounted).
pub struct YearFlows<'a> {
    /// Undiscounted amount falling in year y (time in [y, y+1)).
    pub undiscounted: &'a mut [f64],
    /// Discounted amount falling in year y.
    pub discounted: &'a mut [f64],
    /// Difference array of the annual rates of flows covering whole years.
    pub whole_years: &'a mut [f64],
    /// d(y) at the start of each year y (of the same discounting as the flows).
    pub year_start_factor: &'a [f64],
}

impl YearFlows<'_> {
    /// A one-time amount at time t (discount factor `d` already computed).
    #[inline]
    pub fn point(&mut self, t: f64, amount: f64, d: f64) {
        let y = year_of(t, self.undiscounted.len() - 1);
        self.undiscounted[y] += amount;
        self.discounted[y] += amount * d;
    }

    /// A one-time amount at time t, undiscounted `amount` and discounted `discounted`.
    #[inline]
    pub fn point_discounted(&mut self, t: f64, amount: f64, discounted: f64) {
        let y = year_of(t, self.undiscounted.len() - 1);
        self.undiscounted[y] += amount;
        self.discounted[y] += discounted;
    }

    /// A cost flowing at annual rate `c` over [a, b] (amounts after the last year go into
    /// it), with the discount factors d(a) = `da` and d(b) = `db` already computed.
    #[inline]
    pub fn flow(&mut self, a: f64, b: f64, c: f64, disc: &Discounter, da: f64, db: f64) {
        self.endpoint(b, c, disc, db);
        self.endpoint(a, -c, disc, da);
    }

    /// Adds w·[0, t] (a flow at rate w from time 0 to t).
    #[inline]
    fn endpoint(&mut self, t: f64, w: f64, disc: &Discounter, dt: f64) {
        let y = year_of(t, self.undiscounted.len() - 1);
        let start = y as f64;
        self.whole_years[0] += w;
        self.whole_years[y] -= w;
        self.undiscounted[y] += w * (t - start);
        self.discounted[y] += w * if disc.delta == 0.0 {
            t - start
        } else {
            (self.year_start_factor[y] - dt) / disc.delta
        };
    }
}

/// Year index of time t ≥ 0 (times past the last year fall into it). Truncation, not a call to
/// `floor`: t is never negative here.
#[inline]
fn year_of(t: f64, last: usize) -> usize {
    // An i32 cast (saturating) is cheaper than a usize one; negative times fall into year 0.
    (t as i32).clamp(0, last.min(i32::MAX as usize) as i32) as usize
}

/// d(y) at the start of each of `years` years.
pub fn year_start_factors(disc: &Discounter, years: usize) -> Vec<f64> {
    (0..years).map(|y| disc.factor(y as f64)).collect()
}

/// Adds the whole years marked in the difference array `whole_years` (see [`YearFlows`]) into
/// `undiscounted` and `discounted`, and clears the marks.
pub fn fold_whole_years(
    whole_years: &mut [f64],
    undiscounted: &mut [f64],
    discounted: &mut [f64],
    year_start_factor: &[f64],
    disc: &Discounter,
) {
    let one_year = disc.integral(0.0, 1.0);
    let mut rate = 0.0;
    for y in 0..whole_years.len() {
        rate += whole_years[y];
        whole_years[y] = 0.0;
        if rate != 0.0 {
            undiscounted[y] += rate;
            discounted[y] += rate * year_start_factor[y] * one_year;
        }
    }
}

/// Splits a cost flowing at annual rate `c` over [a, b] by year of time: calls
/// `sink(year, undiscounted, discounted)` for each year overlapped; years past `last_year`
/// are merged into `last_year`.
pub fn split_flow(
    a: f64,
    b: f64,
    c: f64,
    disc: &Discounter,
    last_year: usize,
    mut sink: impl FnMut(usize, f64, f64),
) {
    let mut lo = a;
    let mut dlo = disc.factor(lo);
    while lo < b {
        let y = (lo.floor() as usize).min(last_year);
        let hi = if y == last_year {
            b
        } else {
            b.min(y as f64 + 1.0)
        };
        sink(y, c * (hi - lo), c * disc.integral_given_start(lo, hi, dlo));
        lo = hi;
        dlo = disc.factor(hi);
    }
}

/// Accounts one arm's history exactly over each sojourn: state costs, entry costs, the start
/// cost, QALYs and life years; adds the payer's other-cost flows per year into `flows`.
/// Costs count only before `payer_until` (when the patient leaves the payer); health
/// outcomes count in full.
pub fn account_arm(
    arm: &ArmModel,
    history: &History,
    costs: &Discounter,
    outcomes: &Discounter,
    payer_until: f64,
    flows: &mut YearFlows<'_>,
) -> ArmTotals {
    if let Some(d) = &arm.discrete {
        return crate::markov::account(arm, d, history, payer_until, flows);
    }
    let mut t = ArmTotals {
        other_costs: arm.start_cost,
        other_costs_undiscounted: arm.start_cost,
        ..ArmTotals::default()
    };
    if arm.start_cost != 0.0 {
        flows.point(0.0, arm.start_cost, 1.0);
    }
    // d(t) at the costs' rate for the last time asked: a sojourn starts where the previous
    // one ended, so each factor is computed once. When health outcomes are discounted at the
    // same rate, their factors and integrals are the same numbers (same δ, same operations).
    let same_rates = outcomes.delta() == costs.delta();
    let mut known = (f64::NAN, 0.0);
    let mut cost_factor = |t: f64| {
        if t != known.0 {
            known = (t, costs.factor(t));
        }
        known.1
    };
    for seg in &history.segments {
        let state = &arm.states[seg.state];
        if state.entry_cost != 0.0 && seg.start < payer_until {
            let d = cost_factor(seg.start);
            t.other_costs += state.entry_cost * d;
            t.other_costs_undiscounted += state.entry_cost;
            flows.point(seg.start, state.entry_cost, d);
        }
        if seg.state == arm.death || seg.end <= seg.start {
            continue;
        }
        let length = seg.end - seg.start;
        let life = if same_rates {
            outcomes.integral_given_start(seg.start, seg.end, cost_factor(seg.start))
        } else {
            outcomes.integral(seg.start, seg.end)
        };
        t.life_years += life;
        t.life_years_undiscounted += length;
        t.qalys += state.utility * life;
        t.qalys_undiscounted += state.utility * length;
        let cost_end = seg.end.min(payer_until);
        if state.cost != 0.0 && cost_end > seg.start {
            let da = cost_factor(seg.start);
            let integral = if same_rates && cost_end == seg.end {
                life
            } else {
                costs.integral_given_start(seg.start, cost_end, da)
            };
            let db = cost_factor(cost_end);
            t.other_costs += state.cost * integral;
            t.other_costs_undiscounted += state.cost * (cost_end - seg.start);
            flows.flow(seg.start, cost_end, state.cost, costs, da, db);
        }
    }
    t
}

/// The costs of arm `arm` in cost category `k` over a history: its start cost's, entry
/// costs' and state costs' parts in that category (discounted, undiscounted), with the same
/// exact integrals and payer period as [`account_arm`]; their flows go into `flows`. The
/// parts of all categories sum to the categorised share of the arm's other costs.
pub fn account_category(
    arm: &ArmModel,
    history: &History,
    costs: &Discounter,
    payer_until: f64,
    k: usize,
    flows: &mut YearFlows<'_>,
) -> (f64, f64) {
    let start = arm.start_parts.get(k).copied().unwrap_or(0.0);
    let (mut d, mut u) = (start, start);
    if start != 0.0 {
        flows.point(0.0, start, 1.0);
    }
    for seg in &history.segments {
        let state = &arm.states[seg.state];
        let entry = state.entry_parts.get(k).copied().unwrap_or(0.0);
        if entry != 0.0 && seg.start < payer_until {
            let f = costs.factor(seg.start);
            d += entry * f;
            u += entry;
            flows.point(seg.start, entry, f);
        }
        let rate = state.cost_parts.get(k).copied().unwrap_or(0.0);
        let end = seg.end.min(payer_until);
        if seg.state == arm.death || rate == 0.0 || end <= seg.start {
            continue;
        }
        let (da, db) = (costs.factor(seg.start), costs.factor(end));
        d += rate * costs.integral_given_start(seg.start, end, da);
        u += rate * (end - seg.start);
        flows.flow(seg.start, end, rate, costs, da, db);
    }
    (d, u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounting_closed_forms() {
        let d = Discounter::new(0.035);
        assert!((d.factor(2.0) - 1.035f64.powi(-2)).abs() < 1e-15);
        let want = (1.0 - 1.035f64.powf(-10.0)) / 1.035f64.ln();
        assert!((d.integral(0.0, 10.0) - want).abs() < 1e-13);
        for k in 0..40 {
            let t = k as f64;
            assert_eq!(d.factor(t), (-d.delta() * t).exp(), "whole year {k}");
            assert_eq!(d.factor(t + 0.5), (-d.delta() * (t + 0.5)).exp());
        }
        let z = Discounter::new(0.0);
        assert_eq!(z.integral(1.0, 3.5), 2.5);
        assert_eq!(z.factor(7.0), 1.0);
    }

    #[test]
    fn year_flows_split_exactly() {
        let d = Discounter::new(0.05);
        let mut u = vec![0.0; 5];
        let mut v = vec![0.0; 5];
        let mut whole = vec![0.0; 5];
        let starts = year_start_factors(&d, 5);
        let mut f = YearFlows {
            undiscounted: &mut u,
            discounted: &mut v,
            whole_years: &mut whole,
            year_start_factor: &starts,
        };
        f.flow(0.5, 3.25, 100.0, &d, d.factor(0.5), d.factor(3.25));
        // Past the last year: [4, 6.5] all lands in year 4.
        f.flow(2.0, 6.5, 10.0, &d, d.factor(2.0), d.factor(6.5));
        fold_whole_years(&mut whole, &mut u, &mut v, &starts, &d);
        assert!(whole.iter().all(|&w| w == 0.0));
        let want_u = [50.0, 100.0, 110.0, 35.0, 25.0];
        for (y, w) in want_u.iter().enumerate() {
            assert!((u[y] - w).abs() < 1e-9, "year {y}: {} vs {w}", u[y]);
        }
        let want_d = [
            100.0 * d.integral(0.5, 1.0),
            100.0 * d.integral(1.0, 2.0),
            100.0 * d.integral(2.0, 3.0) + 10.0 * d.integral(2.0, 3.0),
            100.0 * d.integral(3.0, 3.25) + 10.0 * d.integral(3.0, 4.0),
            10.0 * d.integral(4.0, 6.5),
        ];
        for (y, w) in want_d.iter().enumerate() {
            assert!((v[y] - w).abs() < 1e-9, "year {y}: {} vs {w}", v[y]);
        }
        // Undiscounted, one year: a flow inside a single year.
        let z = Discounter::new(0.0);
        let (mut u, mut v, mut whole) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; 2]);
        let starts = year_start_factors(&z, 2);
        let mut f = YearFlows {
            undiscounted: &mut u,
            discounted: &mut v,
            whole_years: &mut whole,
            year_start_factor: &starts,
        };
        f.flow(0.25, 0.75, 4.0, &z, 1.0, 1.0);
        fold_whole_years(&mut whole, &mut u, &mut v, &starts, &z);
        assert!((u[0] - 2.0).abs() < 1e-12 && (v[0] - 2.0).abs() < 1e-12);
        assert_eq!((u[1], v[1]), (0.0, 0.0));
    }
}
