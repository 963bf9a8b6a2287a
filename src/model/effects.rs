//! Covariate effects: numbers of an arm that are linear predictors over a patient's
//! characteristics, compiled once and evaluated once per patient.
//!
//! A predictor's value is `inverse_link(intercept + Σ coefficient × term(x))`, where a term
//! is a product of factors (a characteristic's value, or the indicator of one of its levels).
//! [`ArmEffects::personalise`] writes a patient's values into a copy of the arm (the
//! transition parameters, costs, utilities and initial distribution it changes), which the
//! sampler and the accounting then read as they read any arm.

use super::characteristics::{Characteristics, Kind};
use super::family::Family;
use super::ArmModel;
use crate::scenario::TimeToEvent;

/// The scale a predictor is linear on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The number itself.
    Identity,
    /// Its logarithm (rates, scales, shapes, standard deviations).
    Log,
    /// Its log-odds (a probability).
    Logit,
    /// Multinomial logit: a share of `exp(η)` over the arm's starting states.
    Mlogit,
}

impl Link {
    /// Parses a link as written.
    pub fn parse(s: &str) -> Option<Link> {
        Some(match s {
            "identity" => Link::Identity,
            "log" => Link::Log,
            "logit" => Link::Logit,
            "mlogit" => Link::Mlogit,
            _ => return None,
        })
    }

    /// The link as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Identity => "identity",
            Link::Log => "log",
            Link::Logit => "logit",
            Link::Mlogit => "mlogit",
        }
    }

    /// The number for linear predictor `eta` (`exp(eta)` for mlogit, before the shares are
    /// normalised).
    pub fn inverse(self, eta: f64) -> f64 {
        match self {
            Link::Identity => eta,
            Link::Log | Link::Mlogit => eta.exp(),
            Link::Logit => {
                if eta >= 0.0 {
                    1.0 / (1.0 + (-eta).exp())
                } else {
                    let e = eta.exp();
                    e / (1.0 + e)
                }
            }
        }
    }
}

/// A factor of a term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Factor {
    /// The value of covariate `k`.
    Value(usize),
    /// 1 if covariate `k` is at level `l`, else 0.
    Level(usize, f64),
}

impl Factor {
    fn of(self, x: &[f64]) -> f64 {
        match self {
            Factor::Value(k) => x[k],
            Factor::Level(k, l) => (x[k] == l) as u8 as f64,
        }
    }
}

/// A term of a predictor: its coefficient and factors (one, or more for an interaction).
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// Coefficient.
    pub coefficient: f64,
    /// Factors multiplied.
    pub factors: Vec<Factor>,
}

/// A compiled linear predictor.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictor {
    /// Its link.
    pub link: Link,
    /// Intercept.
    pub intercept: f64,
    /// Terms.
    pub terms: Vec<Term>,
}

impl Predictor {
    /// The linear predictor for covariates `x`.
    pub fn eta(&self, x: &[f64]) -> f64 {
        let mut eta = self.intercept;
        for t in &self.terms {
            let mut v = t.coefficient;
            for f in &t.factors {
                v *= f.of(x);
            }
            eta += v;
        }
        eta
    }

    /// The number for covariates `x`.
    pub fn value(&self, x: &[f64]) -> f64 {
        self.link.inverse(self.eta(x))
    }
}

/// What a predictor sets in an arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Parameter `slot` of the family of exit `exit` of `state` (slots number a family's
    /// parameters in the order the scenario names them; see [`set_slot`]).
    Family {
        /// State.
        state: usize,
        /// Index among the state's exits.
        exit: usize,
        /// Parameter slot.
        slot: usize,
    },
    /// A state's annual cost (`part`: a cost category's part; the total is then the sum of
    /// the parts).
    Cost {
        /// State.
        state: usize,
        /// Category index, if the cost is split into categories.
        part: Option<usize>,
    },
    /// A state's entry cost (as `Cost`).
    Entry {
        /// State.
        state: usize,
        /// Category index.
        part: Option<usize>,
    },
    /// A state's utility.
    Utility {
        /// State.
        state: usize,
    },
    /// A state's `exp(η)` in the arm's multinomial-logit initial distribution.
    Initial {
        /// State.
        state: usize,
    },
}

/// The covariate effects of one arm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmEffects {
    /// (what, predictor), in scenario order.
    pub effects: Vec<(Target, Predictor)>,
    /// Whether the initial distribution is a multinomial logit.
    pub mlogit_initial: bool,
    /// States whose annual cost is the sum of categories of which one varies by patient.
    pub cost_totals: Vec<usize>,
    /// States whose entry cost is such a sum.
    pub entry_totals: Vec<usize>,
}

impl ArmEffects {
    /// Writes the patient's values (covariates `x`) into `out`, a copy of the arm (every
    /// number the effects change is written, so `out` may hold an earlier patient's).
    pub fn personalise(&self, x: &[f64], out: &mut ArmModel) {
        let mut initial_total = 0.0;
        if self.mlogit_initial {
            out.initial_cumulative.iter_mut().for_each(|c| *c = 0.0);
        }
        for (target, p) in &self.effects {
            let v = p.value(x);
            match *target {
                Target::Family { state, exit, slot } => {
                    set_slot(&mut out.exits[state][exit].family, slot, v)
                }
                Target::Cost { state, part: None } => out.states[state].cost = v,
                Target::Cost {
                    state,
                    part: Some(k),
                } => {
                    out.states[state].cost_parts[k] = v;
                }
                Target::Entry { state, part: None } => out.states[state].entry_cost = v,
                Target::Entry {
                    state,
                    part: Some(k),
                } => {
                    out.states[state].entry_parts[k] = v;
                }
                Target::Utility { state } => out.states[state].utility = v,
                Target::Initial { state } => {
                    // exp(η) per starting state, made cumulative below.
                    out.initial_cumulative[state] = v;
                    initial_total += v;
                }
            }
        }
        for &s in &self.cost_totals {
            out.states[s].cost = out.states[s].cost_parts.iter().sum();
        }
        for &s in &self.entry_totals {
            out.states[s].entry_cost = out.states[s].entry_parts.iter().sum();
        }
        if self.mlogit_initial {
            let mut acc = 0.0;
            for c in out.initial_cumulative.iter_mut() {
                acc += *c;
                *c = acc / initial_total;
            }
            if let Some(last) = out.initial_cumulative.last_mut() {
                *last = 1.0;
            }
        }
    }
}

/// The parameters of a family in slot order: the order in which a scenario names them
/// (`rate`; `shape, scale`; `shape, rate`; `meanlog, sdlog`; cuts then rates; a cure
/// fraction then its uncured distribution's).
pub fn slots_mut(f: &mut Family) -> Vec<&mut f64> {
    match f {
        Family::Exponential { rate } => vec![rate],
        Family::Weibull { shape, scale } | Family::LogLogistic { shape, scale } => {
            vec![shape, scale]
        }
        Family::Gompertz { shape, rate } | Family::Gamma { shape, rate } => vec![shape, rate],
        Family::LogNormal { meanlog, sdlog } => vec![meanlog, sdlog],
        Family::PiecewiseExponential { cuts, rates } => {
            cuts.iter_mut().chain(rates.iter_mut()).collect()
        }
        Family::MixtureCure {
            cure_fraction,
            uncured,
        } => {
            let mut v = vec![cure_fraction];
            v.extend(slots_mut(uncured));
            v
        }
    }
}

/// Sets parameter `slot` of `f` (see [`slots_mut`]) without allocating.
pub fn set_slot(f: &mut Family, slot: usize, v: f64) {
    match f {
        Family::Exponential { rate } => *rate = v,
        Family::Weibull { shape, scale } | Family::LogLogistic { shape, scale } => {
            *(if slot == 0 { shape } else { scale }) = v
        }
        Family::Gompertz { shape, rate } | Family::Gamma { shape, rate } => {
            *(if slot == 0 { shape } else { rate }) = v
        }
        Family::LogNormal { meanlog, sdlog } => *(if slot == 0 { meanlog } else { sdlog }) = v,
        Family::PiecewiseExponential { cuts, rates } => {
            if slot < cuts.len() {
                cuts[slot] = v
            } else {
                rates[slot - cuts.len()] = v
            }
        }
        Family::MixtureCure {
            cure_fraction,
            uncured,
        } => {
            if slot == 0 {
                *cure_fraction = v
            } else {
                set_slot(uncured, slot - 1, v)
            }
        }
    }
}

/// The link a transition's parameter is linear on in flexsurv (`None`: it cannot vary by
/// patient), for the parameter's path under the distribution as the scenario writes it
/// (`scale`, `rates[2]`, `uncured.shape`).
pub fn time_link(time: &TimeToEvent, path: &str) -> Option<Link> {
    if let (TimeToEvent::MixtureCure { uncured, .. }, Some(rest)) =
        (time, path.strip_prefix("uncured."))
    {
        return time_link(uncured, rest);
    }
    let param = path.split('[').next().unwrap_or(path);
    match (time, param) {
        (TimeToEvent::Gompertz { .. }, "shape") => Some(Link::Identity),
        (_, "meanlog" | "mu" | "q" | "Q" | "gamma" | "gammas") => Some(Link::Identity),
        (_, "cure_fraction") => Some(Link::Logit),
        (_, "cuts" | "knots") => None,
        _ => Some(Link::Log),
    }
}

/// The factors of a term as written: characteristics and levels joined by `:`; a level is
/// `name:level` or, as R names a factor's coefficient, `namelevel`.
pub fn parse_term(c: &Characteristics, term: &str) -> Result<Vec<Factor>, String> {
    let tokens: Vec<&str> = term.split(':').collect();
    let mut factors = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        let found = c.index(t);
        if let Some(k) = found {
            match &c.kinds[k] {
                Kind::Categorical(levels) => {
                    let Some(l) = tokens
                        .get(i + 1)
                        .and_then(|next| levels.iter().position(|x| x == next))
                    else {
                        return Err(format!(
                            "`{t}` is categorical: write one of its levels, {}",
                            levels
                                .iter()
                                .map(|l| format!("`{t}:{l}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    };
                    factors.push(Factor::Level(k, l as f64));
                    i += 2;
                }
                Kind::Continuous => {
                    factors.push(Factor::Value(k));
                    i += 1;
                }
            }
            continue;
        }
        // R's naming of a factor's level: the name, then the level.
        let r_style = c.names.iter().enumerate().find_map(|(k, name)| {
            let Kind::Categorical(levels) = &c.kinds[k] else {
                return None;
            };
            let rest = t.strip_prefix(name.as_str())?;
            levels
                .iter()
                .position(|l| l == rest)
                .map(|l| Factor::Level(k, l as f64))
        });
        match r_style {
            Some(f) => factors.push(f),
            None => return Err(unknown_term(c, term, t)),
        }
        i += 1;
    }
    Ok(factors)
}

/// Says which terms there are.
fn unknown_term(c: &Characteristics, term: &str, token: &str) -> String {
    let mut known = Vec::new();
    for (k, name) in c.names.iter().enumerate() {
        match &c.kinds[k] {
            Kind::Continuous => known.push(name.clone()),
            Kind::Categorical(levels) => known.extend(levels.iter().map(|l| format!("{name}:{l}"))),
        }
    }
    let what = if token == term {
        format!("`{term}` is not a characteristic or level")
    } else {
        format!("`{token}` (in `{term}`) is not a characteristic or level")
    };
    format!(
        "{what}; terms are characteristics and levels, joined by `:` for an interaction: {}",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_invert() {
        assert_eq!(Link::Identity.inverse(-2.5), -2.5);
        assert!((Link::Log.inverse(0.7) - 0.7f64.exp()).abs() < 1e-15);
        assert!((Link::Logit.inverse(0.3) - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-15);
        assert!((Link::Logit.inverse(-800.0)) >= 0.0);
        assert_eq!(Link::Logit.inverse(800.0), 1.0);
        for l in ["identity", "log", "logit", "mlogit"] {
            assert_eq!(Link::parse(l).unwrap().as_str(), l);
        }
    }

    #[test]
    fn predictors_sum_products_of_factors() {
        let p = Predictor {
            link: Link::Identity,
            intercept: 1.0,
            terms: vec![
                Term {
                    coefficient: 0.5,
                    factors: vec![Factor::Value(0)],
                },
                Term {
                    coefficient: 2.0,
                    factors: vec![Factor::Level(3, 1.0)],
                },
                Term {
                    coefficient: -0.1,
                    factors: vec![Factor::Value(0), Factor::Level(3, 1.0)],
                },
            ],
        };
        // age 30, level 1: 1 + 15 + 2 - 3.
        assert_eq!(p.eta(&[30.0, 0.0, 0.0, 1.0]), 15.0);
        // age 30, level 0: 1 + 15.
        assert_eq!(p.eta(&[30.0, 0.0, 0.0, 0.0]), 16.0);
    }

    #[test]
    fn slots_and_set_slot_agree_for_every_family() {
        let families = vec![
            Family::Exponential { rate: 1.0 },
            Family::Weibull {
                shape: 1.0,
                scale: 2.0,
            },
            Family::Gompertz {
                shape: 0.1,
                rate: 0.2,
            },
            Family::LogNormal {
                meanlog: 0.1,
                sdlog: 0.2,
            },
            Family::LogLogistic {
                shape: 1.0,
                scale: 2.0,
            },
            Family::Gamma {
                shape: 1.0,
                rate: 2.0,
            },
            Family::PiecewiseExponential {
                cuts: vec![1.0, 2.0],
                rates: vec![0.1, 0.2, 0.3],
            },
            Family::MixtureCure {
                cure_fraction: 0.3,
                uncured: Box::new(Family::Weibull {
                    shape: 1.0,
                    scale: 2.0,
                }),
            },
        ];
        for f in families {
            let n = slots_mut(&mut f.clone()).len();
            for k in 0..n {
                let mut a = f.clone();
                set_slot(&mut a, k, 99.0 + k as f64);
                let mut b = f.clone();
                *slots_mut(&mut b)[k] = 99.0 + k as f64;
                assert_eq!(a, b, "{f:?} slot {k}");
                assert_ne!(a, f);
            }
        }
    }
}
