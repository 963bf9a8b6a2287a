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
}

impl Discounter {
    /// Discounting at annual rate `rate` (> -1).
    pub fn new(rate: f64) -> Self {
        Self {
            rate,
            delta: rate.ln_1p(),
        }
    }

    /// The continuous rate δ = ln(1 + r).
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// Discount factor d(t).
    #[inline]
    pub fn factor(&self, t: f64) -> f64 {
        if self.delta == 0.0 {
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

/// Per-year cost flows of one patient, added into `undiscounted[y]` and `discounted[y]`.
pub struct YearFlows<'a> {
    /// Undiscounted amount falling in year y (time in [y, y+1)).
    pub undiscounted: &'a mut [f64],
    /// Discounted amount falling in year y.
    pub discounted: &'a mut [f64],
}

impl YearFlows<'_> {
    /// A one-time amount at time t (discount factor `d` already computed).
    #[inline]
    pub fn point(&mut self, t: f64, amount: f64, d: f64) {
        let y = (t.max(0.0).floor() as usize).min(self.undiscounted.len() - 1);
        self.undiscounted[y] += amount;
        self.discounted[y] += amount * d;
    }

    /// A cost flowing at annual rate `c` over [a, b] (amounts after the last year go into it).
    pub fn flow(&mut self, a: f64, b: f64, c: f64, disc: &Discounter) {
        let last = self.undiscounted.len() - 1;
        split_flow(a, b, c, disc, last, |y, u, d| {
            self.undiscounted[y] += u;
            self.discounted[y] += d;
        });
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
    for seg in &history.segments {
        let state = &arm.states[seg.state];
        if state.entry_cost != 0.0 && seg.start < payer_until {
            let d = costs.factor(seg.start);
            t.other_costs += state.entry_cost * d;
            t.other_costs_undiscounted += state.entry_cost;
            flows.point(seg.start, state.entry_cost, d);
        }
        if seg.state == arm.death || seg.end <= seg.start {
            continue;
        }
        let length = seg.end - seg.start;
        let life = outcomes.integral(seg.start, seg.end);
        t.life_years += life;
        t.life_years_undiscounted += length;
        t.qalys += state.utility * life;
        t.qalys_undiscounted += state.utility * length;
        let cost_end = seg.end.min(payer_until);
        if state.cost != 0.0 && cost_end > seg.start {
            t.other_costs += state.cost * costs.integral(seg.start, cost_end);
            t.other_costs_undiscounted += state.cost * (cost_end - seg.start);
            flows.flow(seg.start, cost_end, state.cost, costs);
        }
    }
    t
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
        let z = Discounter::new(0.0);
        assert_eq!(z.integral(1.0, 3.5), 2.5);
        assert_eq!(z.factor(7.0), 1.0);
    }

    #[test]
    fn year_flows_split_exactly() {
        let d = Discounter::new(0.05);
        let mut u = vec![0.0; 5];
        let mut v = vec![0.0; 5];
        let mut f = YearFlows {
            undiscounted: &mut u,
            discounted: &mut v,
        };
        f.flow(0.5, 3.25, 100.0, &d);
        assert!((u[0] - 50.0).abs() < 1e-12);
        assert!((u[1] - 100.0).abs() < 1e-12);
        assert!((u[3] - 25.0).abs() < 1e-12);
        let total: f64 = v.iter().sum();
        assert!((total - 100.0 * d.integral(0.5, 3.25)).abs() < 1e-9);
    }
}
