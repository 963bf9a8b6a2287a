//! Statistical and numerical tests of the parametric time-to-event families.
//!
//! Independent truths: `statrs` distributions and closed forms written out here (never the
//! crate's own `survival`), a self-contained SplitMix64 generator with fixed seeds (so the
//! Kolmogorov–Smirnov tests are deterministic), and brute-force Simpson integration.

mod common;

use obasim::model::family::Family;
use obasim::model::special;
use proptest::prelude::*;
use statrs::distribution::{ContinuousCDF, Exp, Gamma, LogNormal, Normal, Weibull};
use statrs::function::gamma::{gamma as gamma_fn, gamma_lr, gamma_ur};

const N: usize = 20_000;

/// SplitMix64 (Steele, Lea & Flood 2014).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform on the open interval (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard exponential.
    fn exp1(&mut self) -> f64 {
        -self.uniform().ln()
    }
}

/// A family together with an independently computed survival function.
struct Case {
    label: &'static str,
    family: Family,
    /// Independent `S(t)` (from statrs or a closed form written out here).
    surv: Box<dyn Fn(f64) -> f64>,
    /// `S(inf)`, the defective mass.
    s_inf: f64,
    /// Whether the variance is finite (so the sample mean can be checked).
    finite_var: bool,
}

fn weibull_sf(shape: f64, scale: f64) -> impl Fn(f64) -> f64 {
    let d = Weibull::new(shape, scale).unwrap();
    move |t| if t <= 0.0 { 1.0 } else { d.sf(t) }
}

fn cases() -> Vec<Case> {
    let exp = Exp::new(0.3).unwrap();
    let wei_up = weibull_sf(1.7, 4.0);
    let wei_down = weibull_sf(0.6, 2.0);
    let lnorm = LogNormal::new(1.2, 0.8).unwrap();
    let gam_small = Gamma::new(0.5, 0.7).unwrap();
    let gam_big = Gamma::new(4.5, 1.5).unwrap();
    let cure_wei = weibull_sf(1.5, 3.0);
    let cure_ln = LogNormal::new(0.5, 1.0).unwrap();
    vec![
        Case {
            label: "exponential",
            family: Family::Exponential { rate: 0.3 },
            surv: Box::new(move |t| if t <= 0.0 { 1.0 } else { exp.sf(t) }),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "weibull increasing hazard",
            family: Family::Weibull {
                shape: 1.7,
                scale: 4.0,
            },
            surv: Box::new(wei_up),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "weibull decreasing hazard",
            family: Family::Weibull {
                shape: 0.6,
                scale: 2.0,
            },
            surv: Box::new(wei_down),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "gompertz positive shape",
            family: Family::Gompertz {
                shape: 0.15,
                rate: 0.02,
            },
            surv: Box::new(|t: f64| (-(0.02 / 0.15) * ((0.15 * t).exp() - 1.0)).exp()),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "gompertz negative shape (defective)",
            family: Family::Gompertz {
                shape: -0.3,
                rate: 0.4,
            },
            surv: Box::new(|t: f64| (-(0.4 / -0.3) * ((-0.3 * t).exp() - 1.0)).exp()),
            s_inf: (0.4_f64 / -0.3).exp(),
            finite_var: false,
        },
        Case {
            label: "lognormal",
            family: Family::LogNormal {
                meanlog: 1.2,
                sdlog: 0.8,
            },
            surv: Box::new(move |t| if t <= 0.0 { 1.0 } else { lnorm.sf(t) }),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "loglogistic shape 3",
            family: Family::LogLogistic {
                shape: 3.0,
                scale: 2.5,
            },
            surv: Box::new(|t: f64| 1.0 / (1.0 + (t / 2.5).powi(3))),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "loglogistic shape 0.9 (infinite mean)",
            family: Family::LogLogistic {
                shape: 0.9,
                scale: 1.0,
            },
            surv: Box::new(|t: f64| 1.0 / (1.0 + t.powf(0.9))),
            s_inf: 0.0,
            finite_var: false,
        },
        Case {
            label: "gamma shape < 1",
            family: Family::Gamma {
                shape: 0.5,
                rate: 0.7,
            },
            surv: Box::new(move |t| if t <= 0.0 { 1.0 } else { gam_small.sf(t) }),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "gamma shape > 1",
            family: Family::Gamma {
                shape: 4.5,
                rate: 1.5,
            },
            surv: Box::new(move |t| if t <= 0.0 { 1.0 } else { gam_big.sf(t) }),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "piecewise exponential, 3 pieces",
            family: Family::PiecewiseExponential {
                cuts: vec![1.0, 3.0],
                rates: vec![0.5, 0.1, 0.3],
            },
            surv: Box::new(|t: f64| {
                let h = if t < 1.0 {
                    0.5 * t
                } else if t < 3.0 {
                    0.5 + 0.1 * (t - 1.0)
                } else {
                    0.5 + 0.2 + 0.3 * (t - 3.0)
                };
                (-h).exp()
            }),
            s_inf: 0.0,
            finite_var: true,
        },
        Case {
            label: "piecewise exponential, zero middle and last rate (defective)",
            family: Family::PiecewiseExponential {
                cuts: vec![0.5, 1.5, 2.5],
                rates: vec![0.8, 0.0, 0.6, 0.0],
            },
            surv: Box::new(|t: f64| {
                let h = if t < 0.5 {
                    0.8 * t
                } else if t < 1.5 {
                    0.4
                } else if t < 2.5 {
                    0.4 + 0.6 * (t - 1.5)
                } else {
                    1.0
                };
                (-h).exp()
            }),
            s_inf: (-1.0_f64).exp(),
            finite_var: false,
        },
        Case {
            label: "mixture cure over weibull",
            family: Family::MixtureCure {
                cure_fraction: 0.3,
                uncured: Box::new(Family::Weibull {
                    shape: 1.5,
                    scale: 3.0,
                }),
            },
            surv: Box::new(move |t| 0.3 + 0.7 * cure_wei(t)),
            s_inf: 0.3,
            finite_var: false,
        },
        Case {
            label: "mixture cure over lognormal",
            family: Family::MixtureCure {
                cure_fraction: 0.2,
                uncured: Box::new(Family::LogNormal {
                    meanlog: 0.5,
                    sdlog: 1.0,
                }),
            },
            surv: Box::new(move |t| {
                if t <= 0.0 {
                    1.0
                } else {
                    0.2 + 0.8 * cure_ln.sf(t)
                }
            }),
            s_inf: 0.2,
            finite_var: false,
        },
    ]
}

/// Kolmogorov–Smirnov distance between the sample (which may contain `+inf`, counted above
/// every finite `t`) and the CDF `cdf`, whose limit at infinity is `cdf_inf`.
fn ks_distance(mut xs: Vec<f64>, cdf: impl Fn(f64) -> f64, cdf_inf: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len() as f64;
    let mut d: f64 = 0.0;
    let mut m = 0usize;
    for (i, &x) in xs.iter().enumerate() {
        if !x.is_finite() {
            break;
        }
        let f = cdf(x);
        d = d.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n);
        m = i + 1;
    }
    d.max((m as f64 / n - cdf_inf).abs())
}

fn ks_critical() -> f64 {
    1.63 / (N as f64).sqrt()
}

#[test]
fn ks_unconditional_sampling() {
    for (k, case) in cases().into_iter().enumerate() {
        let mut rng = SplitMix64(0x5EED_0000 + k as u64);
        let es: Vec<f64> = (0..N).map(|_| rng.exp1()).collect();
        let xs: Vec<f64> = es
            .iter()
            .map(|&e| case.family.sample_after(0.0, e))
            .collect();
        // Inversion is exact, so beyond the KS statistic (which is invariant under the
        // monotone map E -> t) each draw must satisfy S(t) = e^{-E} with the independent S.
        for (&e, &t) in es.iter().zip(&xs) {
            assert!(t >= 0.0, "{}", case.label);
            if t.is_finite() {
                let s = (case.surv)(t);
                assert!(
                    (s - (-e).exp()).abs() < 1e-9,
                    "{}: S({t}) = {s} but e^-E = {}",
                    case.label,
                    (-e).exp()
                );
            } else {
                assert!((-e).exp() <= case.s_inf * (1.0 + 1e-12), "{}", case.label);
            }
        }
        let d = ks_distance(xs, |t| 1.0 - (case.surv)(t), 1.0 - case.s_inf);
        assert!(
            d < ks_critical(),
            "{}: KS D = {d} >= {}",
            case.label,
            ks_critical()
        );
    }
}

#[test]
fn ks_conditional_sampling() {
    for (k, case) in cases().into_iter().enumerate() {
        let fam = &case.family;
        // A conditioning time near the median (or halfway up H for defective families).
        let h_s = std::f64::consts::LN_2.min(0.5 * fam.cumulative_hazard(f64::INFINITY));
        let s = fam.inverse_cumulative_hazard(h_s);
        assert!(s.is_finite() && s > 0.0, "{}", case.label);
        let ss = (case.surv)(s);
        let mut rng = SplitMix64(0xC0DE_0000 + k as u64);
        let es: Vec<f64> = (0..N).map(|_| rng.exp1()).collect();
        let xs: Vec<f64> = es.iter().map(|&e| fam.sample_after(s, e)).collect();
        for (&e, &t) in es.iter().zip(&xs) {
            assert!(t >= s, "{}: sample before s", case.label);
            if t.is_finite() {
                let cond = (case.surv)(t) / ss;
                assert!(
                    (cond - (-e).exp()).abs() < 1e-9,
                    "{}: S({t})/S(s) = {cond} but e^-E = {}",
                    case.label,
                    (-e).exp()
                );
            }
        }
        let d = ks_distance(xs, |t| (ss - (case.surv)(t)) / ss, (ss - case.s_inf) / ss);
        assert!(
            d < ks_critical(),
            "{} (s = {s}): KS D = {d} >= {}",
            case.label,
            ks_critical()
        );
    }
}

#[test]
fn sample_mean_matches_mean() {
    for (k, case) in cases().into_iter().enumerate() {
        let m = case.family.mean();
        if !case.finite_var {
            if case.s_inf > 0.0 {
                assert_eq!(m, f64::INFINITY, "{}", case.label);
            }
            continue;
        }
        let mut rng = SplitMix64(0xAEA0_0000 + k as u64);
        let xs: Vec<f64> = (0..N)
            .map(|_| case.family.sample_after(0.0, rng.exp1()))
            .collect();
        let n = N as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let se = (var / n).sqrt();
        assert!(
            (mean - m).abs() < 4.0 * se,
            "{}: sample mean {mean} vs mean() {m} (se {se})",
            case.label
        );
    }
}

#[test]
fn mean_matches_restricted_mean_at_large_horizon() {
    for case in cases() {
        let m = case.family.mean();
        if !m.is_finite() {
            continue;
        }
        let rm = case.family.restricted_mean(1e7);
        assert!(
            ((rm - m) / m).abs() < 1e-9,
            "{}: mean {m} vs restricted_mean {rm}",
            case.label
        );
    }
    // Infinite means.
    assert_eq!(
        Family::LogLogistic {
            shape: 0.9,
            scale: 1.0
        }
        .mean(),
        f64::INFINITY
    );
    assert_eq!(
        Family::Gompertz {
            shape: -0.1,
            rate: 0.1
        }
        .mean(),
        f64::INFINITY
    );
}

/// Composite Simpson rule with `n` (even) panels: a brute-force independent integral.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        s += w * f(a + i as f64 * h);
    }
    s * h / 3.0
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        ((a - b) / b).abs()
    }
}

#[test]
fn restricted_mean_against_closed_forms() {
    for &horizon in &[0.01_f64, 0.7, 3.0, 12.0, 60.0] {
        // Exponential: (1 - e^{-rate H}) / rate.
        let r = 0.3_f64;
        let want = -(-r * horizon).exp_m1() / r;
        let got = Family::Exponential { rate: r }.restricted_mean(horizon);
        assert!(rel(got, want) < 1e-10, "exponential H={horizon}");

        // Weibull: scale Γ(1 + 1/k) P(1/k, (H/scale)^k).
        for &(k, lam) in &[(1.7, 4.0), (0.6, 2.0), (0.3, 1.0)] {
            let want = lam * gamma_fn(1.0 + 1.0 / k) * gamma_lr(1.0 / k, (horizon / lam).powf(k));
            let got = Family::Weibull {
                shape: k,
                scale: lam,
            }
            .restricted_mean(horizon);
            assert!(rel(got, want) < 1e-9, "weibull {k} {lam} H={horizon}");
        }

        // Lognormal: H S(H) + e^{mu + s²/2} Φ((ln H - mu - s²)/s).
        let (mu, sd) = (1.2, 0.8);
        let nd = Normal::standard();
        let z = (horizon.ln() - mu) / sd;
        let want = horizon * nd.sf(z) + (mu + 0.5 * sd * sd).exp() * nd.cdf(z - sd);
        let got = Family::LogNormal {
            meanlog: mu,
            sdlog: sd,
        }
        .restricted_mean(horizon);
        assert!(rel(got, want) < 1e-9, "lognormal H={horizon}");

        // Gamma: H Q(a, rH) + (a/r) P(a+1, rH).
        for &(a, rate) in &[(0.5, 0.7), (4.5, 1.5)] {
            let x = rate * horizon;
            let want = horizon * gamma_ur(a, x) + a / rate * gamma_lr(a + 1.0, x);
            let got = Family::Gamma { shape: a, rate }.restricted_mean(horizon);
            assert!(
                rel(got, want) < 1e-9,
                "gamma {a} H={horizon}: {got} vs {want}"
            );
        }

        // Piecewise exponential: sum of exponential pieces.
        let (cuts, rates) = ([1.0, 3.0], [0.5, 0.1, 0.3]);
        let mut want = 0.0;
        let mut acc = 0.0_f64;
        let mut start = 0.0;
        for (i, &rt) in rates.iter().enumerate() {
            let end = if i < cuts.len() {
                cuts[i]
            } else {
                f64::INFINITY
            };
            let e = end.min(horizon);
            if e > start {
                want += (-acc).exp() * (1.0 - (-rt * (e - start)).exp()) / rt;
                acc += rt * (e - start);
            }
            start = end;
        }
        let got = Family::PiecewiseExponential {
            cuts: cuts.to_vec(),
            rates: rates.to_vec(),
        }
        .restricted_mean(horizon);
        assert!(rel(got, want) < 1e-10, "piecewise H={horizon}");

        // Mixture cure over Weibull: pi H + (1 - pi) RMST_weibull (closed form).
        let want = 0.3 * horizon
            + 0.7
                * 3.0
                * gamma_fn(1.0 + 1.0 / 1.5)
                * gamma_lr(1.0 / 1.5, (horizon / 3.0).powf(1.5));
        let got = Family::MixtureCure {
            cure_fraction: 0.3,
            uncured: Box::new(Family::Weibull {
                shape: 1.5,
                scale: 3.0,
            }),
        }
        .restricted_mean(horizon);
        assert!(rel(got, want) < 1e-9, "cure H={horizon}");

        // Gompertz (both signs) and loglogistic: brute-force Simpson.
        for &(b, a) in &[(0.15, 0.02), (-0.3, 0.4), (1.5, 0.1)] {
            let f = |t: f64| (-(a / b) * ((b * t).exp() - 1.0)).exp();
            let want = simpson(f, 0.0, horizon, 200_000);
            let got = Family::Gompertz { shape: b, rate: a }.restricted_mean(horizon);
            assert!(rel(got, want) < 1e-9, "gompertz {b} H={horizon}");
        }
        let f = |t: f64| 1.0 / (1.0 + (t / 2.5).powi(3));
        let want = simpson(f, 0.0, horizon, 200_000);
        let got = Family::LogLogistic {
            shape: 3.0,
            scale: 2.5,
        }
        .restricted_mean(horizon);
        assert!(rel(got, want) < 1e-9, "loglogistic H={horizon}");
    }
    assert_eq!(Family::Exponential { rate: 1.0 }.restricted_mean(0.0), 0.0);
}

#[test]
fn gompertz_mean_via_exponential_integral() {
    // Against brute-force Simpson to a horizon where S is negligible.
    for &(b, a) in &[(0.15, 0.02), (1.0, 1.0), (0.01, 0.5), (3.0, 1e-3)] {
        let fam = Family::Gompertz { shape: b, rate: a };
        let f = |t: f64| (-(a / b) * ((b * t).exp() - 1.0)).exp();
        let end = fam.inverse_cumulative_hazard(50.0);
        let want = simpson(f, 0.0, end, 400_000);
        assert!(rel(fam.mean(), want) < 1e-9, "gompertz {b} {a}");
    }
    assert_eq!(
        Family::Gompertz {
            shape: 0.0,
            rate: 0.25
        }
        .mean(),
        4.0
    );
}

/// Log-spaced grid from 1e-6 to 100.
fn grid(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 1e-6 * 10f64.powf(8.0 * i as f64 / (n - 1) as f64))
        .collect()
}

/// Round-trip check `H⁻¹(H(t)) ≈ t`. The tolerance is 1e-9 relative, widened only by the
/// conditioning `κ = H / (t h)` of the inversion (large where `H` saturates, e.g. near the
/// plateau of a cure model), at 1e-13 κ.
fn check_round_trip(fam: &Family, t: f64) -> Result<(), String> {
    let h = fam.cumulative_hazard(t);
    if !(h > 1e-300 && h.is_finite()) {
        return Ok(()); // H under- or overflows: nothing to invert
    }
    let back = fam.inverse_cumulative_hazard(h);
    let kappa = h / (t * fam.hazard(t));
    let tol = 1e-9 + 1e-13 * kappa;
    if tol >= 1.0 {
        return Ok(()); // H has saturated in double precision (e.g. at a cure plateau)
    }
    let err = ((back - t) / t).abs();
    if err <= tol {
        Ok(())
    } else {
        Err(format!(
            "{fam:?}: t={t:e} H={h:e} back={back:e} rel err {err:e} > tol {tol:e} (kappa {kappa:e})"
        ))
    }
}

#[test]
fn round_trip_and_monotone_cumulative_hazard() {
    for case in cases() {
        let fam = &case.family;
        for &t in &grid(200) {
            check_round_trip(fam, t).unwrap();
        }
        let mut prev = 0.0;
        for &t in &grid(2000) {
            let h = fam.cumulative_hazard(t);
            assert!(h >= prev, "{}: H not monotone at {t}", case.label);
            prev = h;
        }
        assert_eq!(fam.cumulative_hazard(0.0), 0.0);
        assert_eq!(fam.inverse_cumulative_hazard(0.0), 0.0);
        let h_inf = fam.cumulative_hazard(f64::INFINITY);
        if case.s_inf > 0.0 {
            assert!(rel(h_inf, -case.s_inf.ln()) < 1e-14, "{}", case.label);
            assert_eq!(fam.inverse_cumulative_hazard(h_inf), f64::INFINITY);
            assert_eq!(fam.inverse_cumulative_hazard(h_inf * 1.01), f64::INFINITY);
            assert!(fam.inverse_cumulative_hazard(h_inf * 0.99).is_finite());
            assert!(rel(fam.survival(f64::INFINITY), case.s_inf) < 1e-14);
        } else {
            assert_eq!(h_inf, f64::INFINITY, "{}", case.label);
            assert_eq!(fam.survival(f64::INFINITY), 0.0);
        }
        assert_eq!(fam.inverse_cumulative_hazard(f64::INFINITY), f64::INFINITY);
    }
}

#[test]
fn survival_and_cumulative_hazard_agree_with_independent_formulas() {
    for case in cases() {
        for &t in &grid(60) {
            let want = (case.surv)(t);
            let s = case.family.survival(t);
            // statrs' erfc is only good to a few 1e-11 (our norm_sf is checked against
            // 50-digit references in the unit tests of `special`).
            assert!(rel(s, want) < 1e-9, "{} S({t}) {s} vs {want}", case.label);
            let h = case.family.cumulative_hazard(t);
            // exp(-H) vs S: accurate to |H| ε relative.
            assert!(
                rel((-h).exp(), want) < 1e-9 * (1.0 + h),
                "{} H({t})",
                case.label
            );
        }
    }
}

#[test]
fn hazard_is_derivative_of_cumulative_hazard() {
    for case in cases() {
        let fam = &case.family;
        // (The piecewise cuts are at 0.5, 1, 1.5, 2.5 and 3: away from these points.)
        for &t in &[0.05, 0.4, 1.3, 2.2, 4.0, 9.0] {
            let d = 1e-5 * t;
            let num = (fam.cumulative_hazard(t + d) - fam.cumulative_hazard(t - d)) / (2.0 * d);
            let h = fam.hazard(t);
            assert!(
                (num - h).abs() <= 1e-6 * h.abs() + 1e-12,
                "{} h({t}) = {h} vs numerical {num}",
                case.label
            );
        }
    }
}

#[test]
fn far_tail_conditional_sampling() {
    // Survival already underflows but H is finite: a clock that has survived to s must fire
    // shortly after s, never at +inf and never before s.
    let fams = [
        Family::LogNormal {
            meanlog: 2.0,
            sdlog: 0.05,
        },
        Family::Gamma {
            shape: 3.0,
            rate: 40.0,
        },
        Family::Weibull {
            shape: 4.0,
            scale: 1.0,
        },
        Family::Gompertz {
            shape: 2.0,
            rate: 0.5,
        },
        Family::LogLogistic {
            shape: 400.0,
            scale: 2.0,
        },
    ];
    for fam in fams.iter() {
        let s = fam.inverse_cumulative_hazard(900.0);
        assert!(s.is_finite(), "{fam:?}");
        assert_eq!(fam.survival(s), 0.0, "{fam:?}: survival should underflow");
        let hs = fam.cumulative_hazard(s);
        assert!(rel(hs, 900.0) < 1e-12, "{fam:?}: H(s) = {hs}");
        let mut rng = SplitMix64(7);
        for _ in 0..100 {
            let e = rng.exp1();
            let t = fam.sample_after(s, e);
            assert!(t >= s && t.is_finite(), "{fam:?}");
            let got = fam.cumulative_hazard(t) - hs;
            assert!(
                (got - e).abs() < 1e-9 * hs,
                "{fam:?}: dH = {got} vs e = {e}"
            );
        }
    }
}

#[test]
fn tiny_cumulative_hazards_are_inverted_accurately() {
    // S close to 1: H = 1e-12 must map to the 1e-12 quantile, not to 0.
    let fams = [
        Family::LogNormal {
            meanlog: 0.0,
            sdlog: 1.0,
        },
        Family::Gamma {
            shape: 2.0,
            rate: 1.0,
        },
        Family::LogLogistic {
            shape: 2.0,
            scale: 1.0,
        },
        Family::MixtureCure {
            cure_fraction: 0.4,
            uncured: Box::new(Family::Gamma {
                shape: 0.5,
                rate: 1.0,
            }),
        },
    ];
    for fam in fams.iter() {
        // (Not 1e-300: the gamma(0.5) quantile of 1e-300 underflows to 0.)
        for &h in &[1e-150, 1e-100, 1e-12, 1e-6] {
            let t = fam.inverse_cumulative_hazard(h);
            assert!(t > 0.0, "{fam:?} h={h}");
            let back = fam.cumulative_hazard(t);
            assert!(rel(back, h) < 1e-12, "{fam:?} h={h}: back {back}");
        }
    }
    // Lognormal: H = -ln(1 - Φ(z)), so Φ(z) = -expm1(-H) and t = exp(Φ⁻¹(-expm1(-H))).
    let ln = Family::LogNormal {
        meanlog: 0.0,
        sdlog: 1.0,
    };
    for &h in &[1e-200, 1e-12, 0.01] {
        let t = ln.inverse_cumulative_hazard(h);
        let want = special::norm_quantile(-(-h).exp_m1()).exp();
        assert!(rel(t, want) < 1e-14, "h={h}: {t} vs {want}");
    }
    // Loglogistic: H = ln(1 + (t/scale)^shape), t = scale (e^H - 1)^(1/shape).
    let ll = Family::LogLogistic {
        shape: 2.0,
        scale: 3.0,
    };
    for &h in &[1e-300, 1e-12, 0.5, 30.0, 800.0] {
        let t = ll.inverse_cumulative_hazard(h);
        let want = if h < 700.0 {
            3.0 * h.exp_m1().sqrt()
        } else {
            3.0 * (0.5 * h).exp()
        };
        assert!(rel(t, want) < 1e-15, "h={h}: {t} vs {want}");
    }
}

#[test]
fn sample_after_is_never_before_s() {
    let fams = cases();
    let mut rng = SplitMix64(99);
    for case in fams.iter() {
        for &s in &[0.0, 1e-9, 0.3, 2.0, 7.5, 40.0] {
            for &e in &[0.0, 1e-300, 1e-17, 1e-3, rng.exp1()] {
                let t = case.family.sample_after(s, e);
                assert!(t >= s, "{}: sample_after({s}, {e}) = {t}", case.label);
            }
        }
    }
    // A zero-rate piece: H is flat on [0.5, 1.5); with e = 0 the answer is s itself.
    let pw = Family::PiecewiseExponential {
        cuts: vec![0.5, 1.5],
        rates: vec![1.0, 0.0, 2.0],
    };
    assert_eq!(pw.sample_after(1.0, 0.0), 1.0);
    assert_eq!(pw.sample_after(1.0, 0.2), 1.6);
    assert_eq!(pw.inverse_cumulative_hazard(0.5), 0.5);
}

#[test]
fn validate_rejects_bad_parameters() {
    let bad: Vec<(Family, &str)> = vec![
        (Family::Exponential { rate: 0.0 }, "rate"),
        (Family::Exponential { rate: f64::NAN }, "rate"),
        (
            Family::Weibull {
                shape: -1.0,
                scale: 1.0,
            },
            "shape",
        ),
        (
            Family::Weibull {
                shape: 1.0,
                scale: f64::INFINITY,
            },
            "scale",
        ),
        (
            Family::Gompertz {
                shape: f64::NAN,
                rate: 1.0,
            },
            "shape",
        ),
        (
            Family::Gompertz {
                shape: -1.0,
                rate: -1.0,
            },
            "rate",
        ),
        (
            Family::LogNormal {
                meanlog: f64::INFINITY,
                sdlog: 1.0,
            },
            "meanlog",
        ),
        (
            Family::LogNormal {
                meanlog: 0.0,
                sdlog: 0.0,
            },
            "sdlog",
        ),
        (
            Family::LogLogistic {
                shape: 0.0,
                scale: 1.0,
            },
            "shape",
        ),
        (
            Family::LogLogistic {
                shape: 1.0,
                scale: -2.0,
            },
            "scale",
        ),
        (
            Family::Gamma {
                shape: -0.5,
                rate: 1.0,
            },
            "shape",
        ),
        (
            Family::Gamma {
                shape: 0.5,
                rate: 0.0,
            },
            "rate",
        ),
        (
            Family::PiecewiseExponential {
                cuts: vec![1.0],
                rates: vec![1.0],
            },
            "rates",
        ),
        (
            Family::PiecewiseExponential {
                cuts: vec![2.0, 1.0],
                rates: vec![1.0, 1.0, 1.0],
            },
            "cuts",
        ),
        (
            Family::PiecewiseExponential {
                cuts: vec![0.0],
                rates: vec![1.0, 1.0],
            },
            "cuts",
        ),
        (
            Family::PiecewiseExponential {
                cuts: vec![1.0],
                rates: vec![1.0, -1.0],
            },
            "rates",
        ),
        (
            Family::MixtureCure {
                cure_fraction: 1.5,
                uncured: Box::new(Family::Exponential { rate: 1.0 }),
            },
            "cure_fraction",
        ),
        (
            Family::MixtureCure {
                cure_fraction: 0.5,
                uncured: Box::new(Family::MixtureCure {
                    cure_fraction: 0.5,
                    uncured: Box::new(Family::Exponential { rate: 1.0 }),
                }),
            },
            "nested",
        ),
        (
            Family::MixtureCure {
                cure_fraction: 0.5,
                uncured: Box::new(Family::Weibull {
                    shape: 0.0,
                    scale: 1.0,
                }),
            },
            "shape",
        ),
    ];
    for (fam, word) in bad {
        let err = fam
            .validate()
            .expect_err(&format!("{fam:?} should be invalid"));
        assert!(
            err.contains(word),
            "{fam:?}: message {err:?} lacks {word:?}"
        );
        assert!(
            err.contains(fam.name()),
            "{fam:?}: message {err:?} lacks family name"
        );
    }
    for case in cases() {
        case.family.validate().unwrap();
    }
    Family::Gompertz {
        shape: 0.0,
        rate: 1.0,
    }
    .validate()
    .unwrap();
}

#[test]
fn hazard_at_zero_and_infinity() {
    let w = |shape| Family::Weibull { shape, scale: 2.0 };
    let ll = |shape| Family::LogLogistic { shape, scale: 2.0 };
    let g = |shape| Family::Gamma { shape, rate: 2.0 };
    assert_eq!(w(1.0).hazard(0.0), 0.5);
    assert_eq!(w(0.5).hazard(0.0), f64::INFINITY);
    assert_eq!(w(1.5).hazard(0.0), 0.0);
    assert_eq!(ll(1.0).hazard(0.0), 0.5);
    assert_eq!(ll(0.5).hazard(0.0), f64::INFINITY);
    assert_eq!(ll(2.5).hazard(0.0), 0.0);
    assert_eq!(g(1.0).hazard(0.0), 2.0);
    assert_eq!(g(0.5).hazard(0.0), f64::INFINITY);
    assert_eq!(g(2.5).hazard(0.0), 0.0);
    let ln = Family::LogNormal {
        meanlog: 0.0,
        sdlog: 1.0,
    };
    assert_eq!(ln.hazard(0.0), 0.0);
    // Far in the lognormal tail the hazard is ≈ z / (sdlog t), not 0/0.
    let t = (40.0_f64).exp();
    assert!(rel(ln.hazard(t) * t, 40.0) < 0.01);
    for f in [w(1.0), ll(1.0), g(2.0), ln] {
        assert!(!f.hazard(1e300).is_nan(), "{f:?}");
        assert_eq!(f.cumulative_hazard(f64::INFINITY), f64::INFINITY);
        assert_eq!(f.survival(f64::INFINITY), 0.0);
        assert_eq!(f.survival(-1.0), 1.0);
        assert_eq!(f.cumulative_hazard(-1.0), 0.0);
        assert!(f.survival(f64::NAN).is_nan());
        assert!(f.inverse_cumulative_hazard(f64::NAN).is_nan());
    }
}

#[test]
fn names() {
    let want = [
        "exponential",
        "weibull",
        "weibull",
        "gompertz",
        "gompertz",
        "lognormal",
        "loglogistic",
        "loglogistic",
        "gamma",
        "gamma",
        "piecewise_exponential",
        "piecewise_exponential",
        "mixture_cure",
        "mixture_cure",
    ];
    for (case, name) in cases().iter().zip(want) {
        assert_eq!(case.family.name(), name);
    }
}

fn arb_family() -> impl Strategy<Value = Family> {
    let pos = |lo: f64, hi: f64| (lo.ln()..hi.ln()).prop_map(f64::exp);
    let base = prop_oneof![
        pos(1e-3, 1e2).prop_map(|rate| Family::Exponential { rate }),
        (pos(0.1, 10.0), pos(0.01, 100.0))
            .prop_map(|(shape, scale)| Family::Weibull { shape, scale }),
        (-2.0..2.0f64, pos(1e-3, 10.0)).prop_map(|(shape, rate)| Family::Gompertz { shape, rate }),
        (-3.0..5.0f64, pos(0.05, 3.0))
            .prop_map(|(meanlog, sdlog)| Family::LogNormal { meanlog, sdlog }),
        (pos(0.2, 20.0), pos(0.01, 100.0))
            .prop_map(|(shape, scale)| Family::LogLogistic { shape, scale }),
        (pos(0.05, 50.0), pos(0.01, 100.0)).prop_map(|(shape, rate)| Family::Gamma { shape, rate }),
        (
            prop::collection::vec(pos(0.01, 10.0), 1..5),
            prop::collection::vec(0.0..3.0f64, 5)
        )
            .prop_map(|(gaps, rs)| {
                let mut cuts = Vec::new();
                let mut c = 0.0;
                for g in gaps {
                    c += g;
                    cuts.push(c);
                }
                let mut rates: Vec<f64> = rs[..cuts.len() + 1].to_vec();
                rates[0] = rates[0].max(0.01);
                Family::PiecewiseExponential { cuts, rates }
            }),
    ];
    prop_oneof![
        3 => base.clone(),
        1 => (0.0..0.95f64, base).prop_map(|(pi, u)| Family::MixtureCure {
            cure_fraction: pi,
            uncured: Box::new(u),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::proptest_cases(128), ..ProptestConfig::default() })]

    #[test]
    fn prop_round_trip(fam in arb_family(), u in 0.0..1.0f64) {
        prop_assert!(fam.validate().is_ok());
        let t = 1e-6 * 10f64.powf(8.0 * u);
        if let Err(msg) = check_round_trip(&fam, t) {
            return Err(TestCaseError::fail(msg));
        }
    }

    #[test]
    fn prop_mean_matches_restricted_mean(fam in arb_family()) {
        // Families whose tail beyond 1e13 is negligible at the 1e-9 level.
        let light_tail = match &fam {
            Family::LogLogistic { shape, .. } => *shape > 2.5,
            Family::Weibull { shape, .. } => *shape > 0.2,
            // E[T; T > 1e13] / E[T] = Φ̄((ln 1e13 - meanlog)/sdlog - sdlog).
            Family::LogNormal { meanlog, sdlog } => (1e13f64.ln() - meanlog) / sdlog - sdlog > 9.0,
            _ => true,
        };
        let m = fam.mean();
        if light_tail && m.is_finite() {
            let rm = fam.restricted_mean(1e13);
            prop_assert!(rel(rm, m) < 1e-9, "{:?}: mean {} vs restricted_mean {}", fam, m, rm);
        }
    }

    #[test]
    fn prop_restricted_mean_closed_forms(
        k in 0.1..20.0f64,
        lam in 0.001..1000.0f64,
        a in 0.02..200.0f64,
        r in 0.001..100.0f64,
        log_h in -3.0..4.0f64,
    ) {
        let horizon = 10f64.powf(log_h);
        // Weibull: scale Γ(1 + 1/k) P(1/k, (H/scale)^k).
        let want = lam * gamma_fn(1.0 + 1.0 / k) * gamma_lr(1.0 / k, (horizon / lam).powf(k));
        let got = Family::Weibull { shape: k, scale: lam }.restricted_mean(horizon);
        prop_assert!(rel(got, want) < 1e-9, "weibull {} {} H={}: {} vs {}", k, lam, horizon, got, want);
        // Gamma: H Q(a, rH) + (a/r) P(a+1, rH).
        let x = r * horizon;
        let want = horizon * gamma_ur(a, x) + a / r * gamma_lr(a + 1.0, x);
        let got = Family::Gamma { shape: a, rate: r }.restricted_mean(horizon);
        prop_assert!(rel(got, want) < 1e-9, "gamma {} {} H={}: {} vs {}", a, r, horizon, got, want);
    }

    #[test]
    fn prop_sample_after(fam in arb_family(), u in 0.0..1.0f64, e in 0.0..20.0f64) {
        let s = 1e-4 * 10f64.powf(5.0 * u);
        let t = fam.sample_after(s, e);
        prop_assert!(t >= s);
        let hs = fam.cumulative_hazard(s);
        if t.is_finite() && hs.is_finite() && t > s {
            // H(t) - H(s) = e, up to the rounding of H at the scale of H(t).
            let ht = fam.cumulative_hazard(t);
            let kappa = ht / (t * fam.hazard(t));
            prop_assert!(
                ((ht - hs) - e).abs() <= 1e-9 * ht.max(1.0) * (1.0 + kappa * 1e-4),
                "{:?}: H(t) - H(s) = {} vs e = {}", fam, ht - hs, e
            );
        } else if !t.is_finite() {
            // Only defective families may never fire (or the quantile overflows f64).
            prop_assert!(
                hs + e >= fam.cumulative_hazard(f64::INFINITY) * (1.0 - 1e-12)
                    || hs + e > fam.cumulative_hazard(f64::MAX)
            );
        }
    }
}
