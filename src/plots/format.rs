//! Human-readable numbers for axes and tables: tick labels that stay short on very different
//! scales (`1.5M`, `320k`, `0.9`), thousands separators, and a mean rounded to the precision
//! of its Monte Carlo standard error.

/// A scale suffix for axis labels: the value is divided by `divisor` and `suffix` appended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unit {
    /// What tick values are divided by (1, 1e3, 1e6 or 1e9).
    pub divisor: f64,
    /// Appended to the scaled value ("", "k", "M", "B").
    pub suffix: &'static str,
}

impl Unit {
    /// The unit for an axis whose largest absolute value is `max_abs`: values of a million
    /// or more in millions ("M"), of ten thousand or more in thousands ("k"), else plain.
    pub fn for_max(max_abs: f64) -> Unit {
        let m = if max_abs.is_finite() { max_abs } else { 0.0 };
        if m >= 1e9 {
            Unit {
                divisor: 1e9,
                suffix: "B",
            }
        } else if m >= 1e6 {
            Unit {
                divisor: 1e6,
                suffix: "M",
            }
        } else if m >= 1e4 {
            Unit {
                divisor: 1e3,
                suffix: "k",
            }
        } else {
            Unit {
                divisor: 1.0,
                suffix: "",
            }
        }
    }
}

/// Formats axis ticks: one unit and one number of decimals for all ticks of an axis, the
/// fewest decimals that tell every tick apart exactly.
#[derive(Clone, Debug)]
pub struct TickFormat {
    unit: Unit,
    decimals: usize,
}

impl TickFormat {
    /// A tick format for the given tick values (e.g. the key points plotters will label).
    pub fn for_ticks(ticks: &[f64]) -> TickFormat {
        let max_abs = ticks
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let unit = Unit::for_max(max_abs);
        TickFormat {
            unit,
            decimals: decimals_for(ticks, unit.divisor),
        }
    }

    /// A tick format for shares in [0, 1] shown as percentages (`25%`).
    pub fn percent(ticks: &[f64]) -> TickFormat {
        TickFormat {
            unit: Unit {
                divisor: 0.01,
                suffix: "%",
            },
            decimals: decimals_for(ticks, 0.01),
        }
    }

    /// A tick format for plain integers such as calendar years: no unit, no separators.
    pub fn plain(ticks: &[f64]) -> TickFormat {
        TickFormat {
            unit: Unit {
                divisor: 1.0,
                suffix: "",
            },
            decimals: decimals_for(ticks, 1.0),
        }
    }

    /// The label of one tick.
    pub fn label(&self, v: f64) -> String {
        if !v.is_finite() {
            return String::new();
        }
        let s = format!("{:.*}", self.decimals, v / self.unit.divisor);
        if s.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            // Zero is zero on every scale: "0", not "0.0M" or "-0" (but "0%").
            return if self.unit.suffix == "%" {
                "0%".to_string()
            } else {
                "0".to_string()
            };
        }
        s + self.unit.suffix
    }
}

/// The fewest decimals (at most 6) with which every tick, divided by `divisor`, is shown
/// exactly (to 1e-6 of the tick spacing) and all ticks differ.
fn decimals_for(ticks: &[f64], divisor: f64) -> usize {
    let vals: Vec<f64> = ticks
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v / divisor)
        .collect();
    let mut spacing = f64::INFINITY;
    for w in vals.windows(2) {
        let d = (w[1] - w[0]).abs();
        if d > 0.0 {
            spacing = spacing.min(d);
        }
    }
    let tol = if spacing.is_finite() {
        spacing * 1e-6
    } else {
        1e-9
    };
    for d in 0..=6usize {
        let scale = 10f64.powi(d as i32);
        if vals
            .iter()
            .all(|v| ((v * scale).round() / scale - v).abs() <= tol)
        {
            return d;
        }
    }
    6
}

/// `x` with `decimals` decimals and comma thousands separators
/// (`1,913,786`, `-0.25`). Non-finite values give an em dash.
pub fn thousands(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "\u{2014}".to_string();
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = match s.find('.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s.as_str(), ""),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let zero = s.chars().all(|c| c == '0' || c == '.');
    let sign = if x < 0.0 && !zero { "-" } else { "" };
    format!("{sign}{grouped}{frac}")
}

/// Decimals that show a mean to the precision of its MCSE (two significant digits of the
/// MCSE), within `[min, max]`; `default` when the MCSE is zero or unknown.
pub fn decimals_for_mcse(mcse: Option<f64>, default: usize, min: usize, max: usize) -> usize {
    match mcse {
        Some(m) if m.is_finite() && m > 0.0 => {
            let d = 1 - m.log10().floor() as i64;
            d.clamp(min as i64, max as i64) as usize
        }
        _ => default.clamp(min, max),
    }
}

/// A mean and its MCSE as text, both with the decimals [`decimals_for_mcse`] chooses:
/// `("1,913,786", "1,059")`.
pub fn mean_mcse(
    mean: f64,
    mcse: Option<f64>,
    default: usize,
    min: usize,
    max: usize,
) -> (String, Option<String>) {
    let d = decimals_for_mcse(mcse, default, min, max);
    (
        thousands(mean, d),
        mcse.filter(|m| m.is_finite()).map(|m| thousands(m, d)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_on_different_scales() {
        let f = TickFormat::for_ticks(&[0.0, 500_000.0, 1_000_000.0, 1_500_000.0]);
        assert_eq!(f.label(1_500_000.0), "1.5M");
        assert_eq!(f.label(0.0), "0");
        assert_eq!(f.label(500_000.0), "0.5M");
        let f = TickFormat::for_ticks(&[0.0, 100_000.0, 200_000.0, 320_000.0]);
        assert_eq!(f.label(320_000.0), "320k");
        let f = TickFormat::for_ticks(&[0.0, 0.3, 0.6, 0.9]);
        assert_eq!(f.label(0.9), "0.9");
        let f = TickFormat::for_ticks(&[-0.2, 0.0, 0.2]);
        assert_eq!(f.label(0.0), "0");
        assert_eq!(f.label(-0.2), "-0.2");
        let f = TickFormat::percent(&[0.0, 0.25, 0.5]);
        assert_eq!(f.label(0.25), "25%");
        assert_eq!(f.label(0.0), "0%");
        let f = TickFormat::plain(&[2020.0, 2025.0, 2030.0]);
        assert_eq!(f.label(2025.0), "2025");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1_913_785.88, 0), "1,913,786");
        assert_eq!(thousands(-648_591.99, 0), "-648,592");
        assert_eq!(thousands(999.0, 0), "999");
        assert_eq!(thousands(22.666_09, 3), "22.666");
        assert_eq!(thousands(-0.0001, 2), "0.00");
        assert_eq!(thousands(f64::NAN, 2), "\u{2014}");
    }

    #[test]
    fn precision_follows_mcse() {
        assert_eq!(decimals_for_mcse(Some(1058.9), 0, 0, 4), 0);
        assert_eq!(decimals_for_mcse(Some(0.0167), 3, 0, 6), 3);
        assert_eq!(decimals_for_mcse(Some(0.0), 3, 0, 6), 3);
        assert_eq!(
            mean_mcse(22.666_09, Some(0.01674), 3, 0, 6),
            ("22.666".to_string(), Some("0.017".to_string()))
        );
    }
}
