//! Parameter distributions (second-order uncertainty), sampled by inversion
//! (one uniform per parameter per draw, so draws are reproducible and independent of any
//! sampling library's algorithm).

use crate::model::special::{gamma_p_inv, norm_cdf, norm_quantile};
use crate::scenario::DistSpec;

/// A compiled parameter distribution.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Beta(α, β).
    Beta {
        /// α.
        alpha: f64,
        /// β.
        beta: f64,
    },
    /// Gamma(shape, rate).
    Gamma {
        /// Shape.
        shape: f64,
        /// Rate.
        rate: f64,
    },
    /// LogNormal(meanlog, sdlog).
    LogNormal {
        /// Mean of the log.
        meanlog: f64,
        /// SD of the log.
        sdlog: f64,
    },
    /// Normal(mean, sd) truncated to [min, max] (infinite bounds: untruncated).
    Normal {
        /// Mean.
        mean: f64,
        /// SD.
        sd: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Uniform(min, max).
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Triangular(min, mode, max).
    Triangular {
        /// Lower bound.
        min: f64,
        /// Mode.
        mode: f64,
        /// Upper bound.
        max: f64,
    },
    /// A fixed value.
    Fixed(f64),
}

fn need(v: Option<f64>, name: &str, dist: &str) -> Result<f64, String> {
    match v {
        Some(x) if x.is_finite() => Ok(x),
        Some(x) => Err(format!("{dist}: `{name}` = {x} must be a finite number")),
        None => Err(format!("{dist}: `{name}` is required")),
    }
}

impl DistSpec {
    /// Compiles the spec, checking parameters (message says what is allowed).
    pub fn compile(&self) -> Result<Dist, String> {
        let d = self.dist.as_str();
        let positive = |x: f64, name: &str| -> Result<f64, String> {
            if x > 0.0 {
                Ok(x)
            } else {
                Err(format!("{d}: `{name}` = {x} must be > 0"))
            }
        };
        let dist = match d {
            "beta" => match (self.alpha, self.beta, self.mean, self.se) {
                (Some(a), Some(b), None, None) => Dist::Beta {
                    alpha: positive(a, "alpha")?,
                    beta: positive(b, "beta")?,
                },
                (None, None, Some(m), Some(se)) => {
                    // Method of moments: α + β = m(1 − m)/se² − 1.
                    let k = m * (1.0 - m) / (se * se) - 1.0;
                    if !(m > 0.0 && m < 1.0 && se > 0.0 && k > 0.0) {
                        return Err(format!(
                            "beta: mean {m} must be in (0, 1) and se {se} in (0, sqrt(mean (1 - mean)))"
                        ));
                    }
                    Dist::Beta {
                        alpha: m * k,
                        beta: (1.0 - m) * k,
                    }
                }
                _ => return Err("beta: give `alpha` and `beta`, or `mean` and `se`".into()),
            },
            "gamma" => match (self.shape, self.rate, self.mean, self.se) {
                (Some(k), Some(r), None, None) => Dist::Gamma {
                    shape: positive(k, "shape")?,
                    rate: positive(r, "rate")?,
                },
                (None, None, Some(m), Some(se)) => {
                    positive(m, "mean")?;
                    positive(se, "se")?;
                    Dist::Gamma {
                        shape: m * m / (se * se),
                        rate: m / (se * se),
                    }
                }
                _ => return Err("gamma: give `shape` and `rate`, or `mean` and `se`".into()),
            },
            "lognormal" => match (self.meanlog, self.sdlog, self.mean, self.se) {
                (Some(ml), Some(sl), None, None) => Dist::LogNormal {
                    meanlog: need(Some(ml), "meanlog", d)?,
                    sdlog: positive(sl, "sdlog")?,
                },
                (None, None, Some(m), Some(se)) => {
                    positive(m, "mean")?;
                    positive(se, "se")?;
                    let s2 = (1.0 + se * se / (m * m)).ln();
                    Dist::LogNormal {
                        meanlog: m.ln() - s2 / 2.0,
                        sdlog: s2.sqrt(),
                    }
                }
                _ => {
                    return Err(
                        "lognormal: give `meanlog` and `sdlog`, or `mean` and `se`".into(),
                    )
                }
            },
            "normal" => {
                let min = self.min.unwrap_or(f64::NEG_INFINITY);
                let max = self.max.unwrap_or(f64::INFINITY);
                if min >= max {
                    return Err(format!("normal: min {min} must be < max {max}"));
                }
                Dist::Normal {
                    mean: need(self.mean, "mean", d)?,
                    sd: positive(need(self.sd.or(self.se), "sd", d)?, "sd")?,
                    min,
                    max,
                }
            }
            "uniform" => {
                let (min, max) = (need(self.min, "min", d)?, need(self.max, "max", d)?);
                if min >= max {
                    return Err(format!("uniform: min {min} must be < max {max}"));
                }
                Dist::Uniform { min, max }
            }
            "triangular" => {
                let (min, mode, max) = (
                    need(self.min, "min", d)?,
                    need(self.mode, "mode", d)?,
                    need(self.max, "max", d)?,
                );
                if !(min <= mode && mode <= max && min < max) {
                    return Err(format!(
                        "triangular: need min <= mode <= max and min < max (got {min}, {mode}, {max})"
                    ));
                }
                Dist::Triangular { min, mode, max }
            }
            "fixed" => Dist::Fixed(need(self.value, "value", d)?),
            other => {
                return Err(format!(
                    "unknown dist `{other}`; allowed: beta, gamma, lognormal, normal, uniform, triangular, fixed"
                ))
            }
        };
        Ok(dist)
    }
}

impl Dist {
    /// The p-quantile (0 < p < 1).
    pub fn quantile(&self, p: f64) -> f64 {
        match *self {
            Dist::Beta { alpha, beta } => statrs::function::beta::inv_beta_reg(alpha, beta, p),
            Dist::Gamma { shape, rate } => gamma_p_inv(shape, p) / rate,
            Dist::LogNormal { meanlog, sdlog } => (meanlog + sdlog * norm_quantile(p)).exp(),
            Dist::Normal { mean, sd, min, max } => {
                let lo = norm_cdf((min - mean) / sd);
                let hi = norm_cdf((max - mean) / sd);
                (mean + sd * norm_quantile(lo + p * (hi - lo))).clamp(min, max)
            }
            Dist::Uniform { min, max } => min + p * (max - min),
            Dist::Triangular { min, mode, max } => {
                let c = (mode - min) / (max - min);
                if p < c {
                    min + ((max - min) * (mode - min) * p).sqrt()
                } else {
                    max - ((max - min) * (max - mode) * (1.0 - p)).sqrt()
                }
            }
            Dist::Fixed(v) => v,
        }
    }

    /// The mean (of the truncated distribution for a truncated normal).
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Beta { alpha, beta } => alpha / (alpha + beta),
            Dist::Gamma { shape, rate } => shape / rate,
            Dist::LogNormal { meanlog, sdlog } => (meanlog + sdlog * sdlog / 2.0).exp(),
            Dist::Normal { mean, sd, min, max } => {
                let (a, b) = ((min - mean) / sd, (max - mean) / sd);
                let z = norm_cdf(b) - norm_cdf(a);
                let pdf = |x: f64| {
                    if x.is_finite() {
                        (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
                    } else {
                        0.0
                    }
                };
                mean + sd * (pdf(a) - pdf(b)) / z
            }
            Dist::Uniform { min, max } => (min + max) / 2.0,
            Dist::Triangular { min, mode, max } => (min + mode + max) / 3.0,
            Dist::Fixed(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn spec(s: &str) -> Dist {
        #[derive(Deserialize)]
        struct W {
            x: DistSpec,
        }
        toml::from_str::<W>(&format!("x = {s}"))
            .unwrap()
            .x
            .compile()
            .unwrap()
    }

    #[test]
    fn method_of_moments_recovers_mean_and_se() {
        // Beta: mean m, variance m(1-m)/(α+β+1).
        let Dist::Beta { alpha, beta } = spec("{ dist = \"beta\", mean = 0.89, se = 0.03 }") else {
            panic!()
        };
        let n = alpha + beta;
        assert!((alpha / n - 0.89).abs() < 1e-12);
        assert!(((alpha * beta / (n * n * (n + 1.0))).sqrt() - 0.03).abs() < 1e-12);
        let g = spec("{ dist = \"gamma\", mean = 40000, se = 8000 }");
        let Dist::Gamma { shape, rate } = g else {
            panic!()
        };
        assert!((shape / rate - 40000.0).abs() < 1e-6);
        assert!(((shape).sqrt() / rate - 8000.0).abs() < 1e-6);
        let l = spec("{ dist = \"lognormal\", mean = 2.0, se = 0.5 }");
        assert!((l.mean() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn quantiles_invert_known_cdfs() {
        let b = spec("{ dist = \"beta\", alpha = 2, beta = 5 }");
        // Beta(2, 5) CDF: 1 - (1 - x)^5 (1 + 5x).
        for p in [0.025, 0.5, 0.975] {
            let x = b.quantile(p);
            let cdf = 1.0 - (1.0 - x).powi(5) * (1.0 + 5.0 * x);
            assert!((cdf - p).abs() < 1e-10, "p {p}");
        }
        let g = spec("{ dist = \"gamma\", shape = 1, rate = 2 }");
        assert!((g.quantile(0.5) - 2f64.ln() / 2.0).abs() < 1e-12);
        let t = spec("{ dist = \"triangular\", min = 0, mode = 1, max = 2 }");
        assert!((t.quantile(0.5) - 1.0).abs() < 1e-12);
        let n = spec("{ dist = \"normal\", mean = 0, sd = 1, min = 0 }");
        assert!((n.quantile(0.5) - norm_quantile(0.75)).abs() < 1e-12);
        assert!((n.mean() - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn bad_specs_say_what_is_allowed() {
        #[derive(Deserialize)]
        struct W {
            x: DistSpec,
        }
        let e = |s: &str| {
            toml::from_str::<W>(&format!("x = {s}"))
                .unwrap()
                .x
                .compile()
                .unwrap_err()
        };
        assert!(e("{ dist = \"beta\", mean = 1.2, se = 0.1 }").contains("(0, 1)"));
        assert!(e("{ dist = \"poisson\", mean = 1 }").contains("allowed: beta"));
        assert!(e("{ dist = \"gamma\", mean = 1 }").contains("shape"));
    }
}
