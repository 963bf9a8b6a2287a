//! Probabilistic sensitivity analysis (PSA) and one-way sensitivity analysis.
//!
//! Any number in a scenario may be written as a distribution, `{ dist = "beta", mean = 0.89,
//! se = 0.03 }`; sets of parameters may be Dirichlet or multivariate normal (`[psa]`). The
//! scenario text is the single store of parameter values: for each draw the sampled numbers
//! are written into the text at the parameters' places and the result goes through the same
//! parser and checks as the base case, so every draw is a complete, validated scenario.
//! Draw d samples its parameters from the stream (seed, d, 0, `STREAM_PSA`) and simulates its
//! patients from (seed, d, patient, ...): results are identical for any thread count.

pub mod analysis;
pub mod dist;

use crate::rng::{stream, uniform_open};
use crate::scenario::{Diagnostic, MvnScale, PsaSection, ScenarioError, Source};
use dist::{Dist, DistSpec};
use serde::Deserialize;
use std::ops::Range;

/// Stream identifier of the parameter draws (patient index 0).
pub const STREAM_PSA: u64 = 3 << 32;

/// One uncertain parameter written in place.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Field path, e.g. `arms[0].states[0].initial`.
    pub path: String,
    /// Byte range of the distribution table in the scenario text.
    pub span: Range<usize>,
    /// The distribution.
    pub dist: Dist,
    /// Base-case value.
    pub base: f64,
    /// One-way low value.
    pub low: f64,
    /// One-way high value.
    pub high: f64,
}

/// A set of parameters drawn jointly.
#[derive(Clone, Debug, PartialEq)]
pub enum Group {
    /// Dirichlet over the targets.
    Dirichlet {
        /// Target paths and spans.
        targets: Vec<(String, Range<usize>)>,
        /// Concentrations.
        alpha: Vec<f64>,
    },
    /// Multivariate normal.
    Mvn {
        /// Target paths and spans.
        targets: Vec<(String, Range<usize>)>,
        /// Mean vector.
        mean: Vec<f64>,
        /// Lower Cholesky factor of the covariance.
        chol: Vec<Vec<f64>>,
        /// Scale.
        scale: MvnScale,
    },
}

/// Every uncertain parameter of a scenario and how to write values back into its text.
#[derive(Clone, Debug)]
pub struct Uncertainty {
    text: String,
    /// Parameters written in place, in file order.
    pub params: Vec<Param>,
    /// Jointly drawn sets.
    pub groups: Vec<Group>,
    /// The `[psa]` settings (defaults if absent).
    pub settings: PsaSection,
}

#[derive(Deserialize)]
struct Wrap {
    x: DistSpec,
}

#[derive(Deserialize)]
struct PsaOnly {
    #[serde(default)]
    psa: Option<PsaSection>,
}

/// Lower Cholesky factor of a symmetric positive-definite matrix.
fn cholesky(a: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, String> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        if a[i].len() != n {
            return Err(format!("the covariance matrix must be {n} x {n}"));
        }
        for j in 0..=i {
            if (a[i][j] - a[j][i]).abs() > 1e-12 * (a[i][j].abs() + a[j][i].abs()).max(1e-300) {
                return Err("the covariance matrix must be symmetric".into());
            }
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return Err("the covariance matrix must be positive definite".into());
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    Ok(l)
}

/// Formats a value as a TOML float.
fn toml_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else if v.is_nan() {
        "nan".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// Writes numbers into a scenario text at the given byte ranges (non-overlapping), keeping
/// the line structure so that messages about the result point to the original lines.
pub fn substitute(text: &str, mut edits: Vec<(Range<usize>, f64)>) -> String {
    edits.sort_by_key(|(s, _)| s.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (span, v) in edits {
        out.push_str(&text[at..span.start]);
        out.push_str(&toml_number(v));
        // A multi-line inline table becomes a number and the same number of newlines.
        for _ in text[span.clone()].matches('\n') {
            out.push('\n');
        }
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

impl Uncertainty {
    /// Finds the uncertain parameters and `[psa]` sets of a scenario.
    pub fn extract(source: &Source) -> Result<Uncertainty, ScenarioError> {
        let text = &source.text;
        let mut errors: Vec<Diagnostic> = Vec::new();
        let mut params = Vec::new();
        for (path, span) in source.distribution_tables()? {
            let parsed: Result<Wrap, _> = toml::from_str(&format!("x = {}", &text[span.clone()]));
            let spec = match parsed {
                Ok(w) => w.x,
                Err(e) => {
                    errors.push(
                        source.diagnostic(&path, format!("bad distribution: {}", e.message())),
                    );
                    continue;
                }
            };
            match spec.compile() {
                Ok(dist) => {
                    // The base case is the stated base, else the stated mean (exact, where
                    // the mean parameterises the distribution), else the distribution's mean.
                    let stated_mean = match dist {
                        Dist::Normal { min, max, .. } if min.is_finite() || max.is_finite() => None,
                        _ => spec.mean,
                    };
                    let base = spec.base.or(stated_mean).unwrap_or_else(|| dist.mean());
                    params.push(Param {
                        path,
                        span,
                        low: spec.low.unwrap_or_else(|| dist.quantile(0.025)),
                        high: spec.high.unwrap_or_else(|| dist.quantile(0.975)),
                        dist,
                        base,
                    });
                }
                Err(e) => errors.push(source.diagnostic(&path, e)),
            }
        }
        let mut u = Uncertainty {
            text: text.clone(),
            params,
            groups: Vec::new(),
            settings: PsaSection::default(),
        };
        // The [psa] section itself, read from the base text (its numbers are plain).
        let settings = toml::from_str::<PsaOnly>(&u.base_text())
            .ok()
            .and_then(|p| p.psa)
            .unwrap_or_default();
        let target = |errors: &mut Vec<Diagnostic>, field: &str, path: &str| match source
            .value_span(path)
        {
            Some(span) if text[span.clone()].trim().parse::<f64>().is_ok() => {
                Some((path.to_string(), span))
            }
            _ => {
                errors.push(source.diagnostic(
                        field,
                        format!("`{path}` is not a number in this scenario (targets must be written as plain numbers, e.g. arms[0].states[1].initial)"),
                    ));
                None
            }
        };
        // Every target is drawn by one set only: (span, the set that claimed it).
        let mut claimed: Vec<(Range<usize>, String)> = Vec::new();
        let mut claim = |errors: &mut Vec<Diagnostic>,
                         set: &str,
                         found: Vec<(String, Range<usize>)>| {
            let mut kept = Vec::new();
            for (path, span) in found {
                match claimed.iter().find(|(s, _)| s.start < span.end && span.start < s.end) {
                    Some((_, first)) => errors.push(source.diagnostic(
                        &format!("{set}.targets"),
                        format!(
                            "`{path}` is drawn twice, by {first} and by {set}: each number may be the target of one set, listed once"
                        ),
                    )),
                    None => {
                        claimed.push((span.clone(), set.to_string()));
                        kept.push((path, span));
                    }
                }
            }
            kept
        };
        for (i, d) in settings.dirichlet.iter().enumerate() {
            let f = format!("psa.dirichlet[{i}]");
            let found: Vec<_> = d
                .targets
                .iter()
                .filter_map(|p| target(&mut errors, &format!("{f}.targets"), p))
                .collect();
            let n_found = found.len();
            let targets = claim(&mut errors, &f, found);
            if targets.len() != n_found {
                continue;
            }
            if d.alpha.len() != d.targets.len()
                || d.alpha.iter().any(|a| !(*a > 0.0 && a.is_finite()))
            {
                errors.push(
                    source.diagnostic(&format!("{f}.alpha"), "one concentration > 0 per target"),
                );
            }
            if targets.len() == d.targets.len() && d.targets.len() >= 2 {
                u.groups.push(Group::Dirichlet {
                    targets,
                    alpha: d.alpha.clone(),
                });
            } else if d.targets.len() < 2 {
                errors.push(source.diagnostic(
                    &format!("{f}.targets"),
                    "a Dirichlet set needs at least two targets",
                ));
            }
        }
        for (i, m) in settings.multivariate_normal.iter().enumerate() {
            let f = format!("psa.multivariate_normal[{i}]");
            let found: Vec<_> = m
                .targets
                .iter()
                .filter_map(|p| target(&mut errors, &format!("{f}.targets"), p))
                .collect();
            let n_found = found.len();
            let targets = claim(&mut errors, &f, found);
            if targets.len() != n_found {
                continue;
            }
            if m.mean.len() != m.targets.len() || m.cov.len() != m.targets.len() {
                errors
                    .push(source.diagnostic(&f, "give one mean and one covariance row per target"));
                continue;
            }
            match cholesky(&m.cov) {
                Ok(chol) if targets.len() == m.targets.len() => u.groups.push(Group::Mvn {
                    targets,
                    mean: m.mean.clone(),
                    chol,
                    scale: m.scale,
                }),
                Ok(_) => {}
                Err(e) => errors.push(source.diagnostic(&format!("{f}.cov"), e)),
            }
        }
        if let Some(g) = &settings.wtp_grid {
            if !(g.from >= 0.0
                && g.to > g.from
                && g.step > 0.0
                && (g.to - g.from) / g.step <= 10_000.0)
            {
                errors.push(source.diagnostic(
                    "psa.wtp_grid",
                    "need 0 <= from < to and step > 0, at most 10000 steps",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ScenarioError {
                diagnostics: errors,
            });
        }
        u.settings = settings;
        Ok(u)
    }

    /// Whether the scenario has anything uncertain.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty() && self.groups.is_empty()
    }

    /// Names of every sampled quantity, in the order of [`Uncertainty::draw`].
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.params.iter().map(|p| p.path.clone()).collect();
        for g in &self.groups {
            match g {
                Group::Dirichlet { targets, .. } | Group::Mvn { targets, .. } => {
                    v.extend(targets.iter().map(|(p, _)| p.clone()))
                }
            }
        }
        v
    }

    /// The text with the given values written at the parameters' places (`values` in the
    /// order of [`Uncertainty::names`]); line structure is kept so messages point right.
    pub fn text_with(&self, values: &[f64]) -> String {
        let mut edits: Vec<(Range<usize>, f64)> = Vec::new();
        let mut k = 0;
        for p in &self.params {
            edits.push((p.span.clone(), values[k]));
            k += 1;
        }
        for g in &self.groups {
            let (Group::Dirichlet { targets, .. } | Group::Mvn { targets, .. }) = g;
            for (_, span) in targets {
                edits.push((span.clone(), values[k]));
                k += 1;
            }
        }
        substitute(&self.text, edits)
    }

    /// Base-case values (in the order of [`Uncertainty::names`]).
    pub fn base_values(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.params.iter().map(|p| p.base).collect();
        for g in &self.groups {
            let (Group::Dirichlet { targets, .. } | Group::Mvn { targets, .. }) = g;
            for (_, span) in targets {
                v.push(self.text[span.clone()].trim().parse().unwrap_or(f64::NAN));
            }
        }
        v
    }

    /// The scenario text of the base case.
    pub fn base_text(&self) -> String {
        self.text_with(&self.base_values())
    }

    /// The base-case text with some values overridden: `overrides` are (byte range in the
    /// original text, value); an override replaces any uncertain parameter it overlaps.
    pub fn text_with_overrides(&self, overrides: &[(Range<usize>, f64)]) -> String {
        let overlaps = |a: &Range<usize>| {
            overrides
                .iter()
                .any(|(b, _)| a.start < b.end && b.start < a.end)
        };
        let mut edits: Vec<(Range<usize>, f64)> = self
            .params
            .iter()
            .filter(|p| !overlaps(&p.span))
            .map(|p| (p.span.clone(), p.base))
            .collect();
        edits.extend(overrides.iter().cloned());
        substitute(&self.text, edits)
    }

    /// The sampled values of draw `draw` (≥ 1), in the order of [`Uncertainty::names`].
    pub fn draw(&self, seed: u64, draw: u64) -> Vec<f64> {
        let mut rng = stream(seed, draw, 0, STREAM_PSA);
        let mut v: Vec<f64> = self
            .params
            .iter()
            .map(|p| p.dist.quantile(uniform_open(&mut rng)))
            .collect();
        for g in &self.groups {
            match g {
                Group::Dirichlet { alpha, .. } => {
                    let x: Vec<f64> = alpha
                        .iter()
                        .map(|&a| {
                            Dist::Gamma {
                                shape: a,
                                rate: 1.0,
                            }
                            .quantile(uniform_open(&mut rng))
                        })
                        .collect();
                    let s: f64 = x.iter().sum();
                    v.extend(x.iter().map(|xi| xi / s));
                }
                Group::Mvn {
                    mean, chol, scale, ..
                } => {
                    let z: Vec<f64> = mean
                        .iter()
                        .map(|_| crate::model::special::norm_quantile(uniform_open(&mut rng)))
                        .collect();
                    for (i, m) in mean.iter().enumerate() {
                        let x = m + (0..=i).map(|k| chol[i][k] * z[k]).sum::<f64>();
                        v.push(match scale {
                            MvnScale::Identity => x,
                            MvnScale::Log => x.exp(),
                        });
                    }
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs() {
        let a = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let l = cholesky(&a).unwrap();
        for i in 0..2 {
            for j in 0..2 {
                let s: f64 = (0..2).map(|k| l[i][k] * l[j][k]).sum();
                assert!((s - a[i][j]).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_err());
    }

    #[test]
    fn text_substitution_keeps_lines() {
        let text = "a = { dist = \"uniform\", min = 0, max = 2 }\nb = 3.0\n[c]\nd = { dist = \"fixed\", value = 7 }\n";
        let s = Source::from_text("t.toml", text, None);
        let u = Uncertainty::extract(&s).unwrap();
        assert_eq!(u.names(), vec!["a", "c.d"]);
        assert_eq!(u.base_text(), "a = 1.0\nb = 3.0\n[c]\nd = 7.0\n");
        assert_eq!(
            u.text_with(&[0.5, 1e-7]),
            "a = 0.5\nb = 3.0\n[c]\nd = 1e-7\n"
        );
    }
}
