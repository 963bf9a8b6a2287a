//! Parameters: the layer between the scenario format and the compiled model.
//!
//! Every number of a scenario is written plainly or comes from a parameter:
//! - a **named** parameter of `[parameters]`: a number (fixed), a distribution (drawn once
//!   per PSA draw, shared by every place that names it), or an expression over other named
//!   parameters (derived, evaluated after the draws in dependency order);
//! - an **anonymous** parameter: a distribution written in place (`utility = { dist = ... }`,
//!   a parameter of that one place), or a plain number that a `[psa]` set targets by its
//!   field path (format 1).
//!
//! `[psa]` sets (Dirichlet, multivariate normal) draw several parameters jointly; their
//! targets are named parameters or field paths.
//!
//! A run — the base case, a PSA draw, a one-way run, a sweep point — is one vector of
//! parameter values ([`Parameters::base_values`], [`Parameters::draw`],
//! [`Parameters::one_way`]); a [`Resolver`] turns each [`Num`] of the scenario into its
//! value in that run, and `model::build` compiles the model from those values: nothing is
//! parsed again. Draw d samples from the stream (seed, d, 0, [`STREAM_PSA`]) in a fixed
//! order — anonymous distributions in file order, then the sets, then named distributions —
//! so files without `[parameters]` draw exactly the numbers they always drew.

pub mod dist;
pub mod expr;

use crate::rng::{stream, uniform_open};
use crate::scenario::{
    Diagnostic, DistSpec, MvnScale, Num, NumKind, PsaSection, Scenario, ScenarioError, Source,
};
use dist::Dist;
use expr::{Expr, ExprError};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, RwLock};

/// Stream identifier of the parameter draws (patient index 0).
pub const STREAM_PSA: u64 = 3 << 32;

/// How a parameter gets its value in a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// The same in every run (a plain number).
    Fixed,
    /// Drawn on its own from a distribution.
    Drawn(Dist),
    /// Drawn jointly with the other members of set `set` (its `index`-th target).
    Member {
        /// Index into [`Parameters::sets`].
        set: usize,
        /// Position among the set's targets.
        index: usize,
    },
    /// An expression over named parameters.
    Derived(Expr),
}

/// One parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    /// Its name (named) or the field path of its one place (anonymous).
    pub name: String,
    /// Whether it is a named parameter of `[parameters]`.
    pub named: bool,
    /// The field where it is defined (`parameters.NAME` or the field path), for messages.
    pub field: String,
    /// How it gets its value.
    pub role: Role,
    /// Base-case value.
    pub base: f64,
    /// One-way low value (NaN: not varied one-way).
    pub low: f64,
    /// One-way high value.
    pub high: f64,
}

/// A jointly drawn set.
#[derive(Clone, Debug, PartialEq)]
pub enum SetKind {
    /// Dirichlet over the members (they sum to 1 in every draw).
    Dirichlet {
        /// Concentrations.
        alpha: Vec<f64>,
    },
    /// Multivariate normal: member = mean + L z (or exp of it on the log scale).
    Mvn {
        /// Mean vector.
        mean: Vec<f64>,
        /// Lower-triangular factor of the covariance (L Lᵀ = Σ; zero columns for the
        /// directions a positive semi-definite Σ does not vary in).
        factor: Vec<Vec<f64>>,
        /// Scale.
        scale: MvnScale,
    },
}

/// A `[psa]` set.
#[derive(Clone, Debug, PartialEq)]
pub struct Set {
    /// Its field (`psa.dirichlet[0]`).
    pub field: String,
    /// Its members (parameter indices), in the order of its targets.
    pub members: Vec<usize>,
    /// Its distribution.
    pub kind: SetKind,
}

/// One-way runs of the tornado: which parameter and its value set (low or high).
#[derive(Clone, Debug, PartialEq)]
pub struct OneWay {
    /// The parameter varied.
    pub param: usize,
    /// Low (false) or high (true).
    pub high: bool,
    /// The value it takes.
    pub value: f64,
}

/// Every parameter of a scenario, how each is drawn, and where the scenario uses them.
#[derive(Debug)]
pub struct Parameters {
    /// Every parameter: anonymous ones in file order, then named ones in declaration order.
    pub params: Vec<Parameter>,
    /// Jointly drawn sets, in `[psa]` order (Dirichlet sets, then multivariate normal).
    pub sets: Vec<Set>,
    /// The `[psa]` settings (defaults if absent).
    pub settings: PsaSection,
    /// Warnings about how parameters are written (e.g. the same distribution in two arms).
    pub warnings: Vec<Diagnostic>,
    by_name: HashMap<String, usize>,
    /// Span start of a number in the text → its anonymous parameter.
    by_span: HashMap<usize, usize>,
    /// Derived named parameters, in an order that evaluates dependencies first.
    derived_order: Vec<usize>,
    /// Expressions of fields, compiled once, by the span start of their number.
    exprs: RwLock<HashMap<usize, Result<Arc<Expr>, ExprError>>>,
}

impl Clone for Parameters {
    fn clone(&self) -> Self {
        Parameters {
            params: self.params.clone(),
            sets: self.sets.clone(),
            settings: self.settings.clone(),
            warnings: self.warnings.clone(),
            by_name: self.by_name.clone(),
            by_span: self.by_span.clone(),
            derived_order: self.derived_order.clone(),
            exprs: RwLock::new(self.exprs.read().map(|m| m.clone()).unwrap_or_default()),
        }
    }
}

/// Base, low and high of a distribution as written: the stated base, else the stated mean
/// (exact where the mean parameterises it), else the distribution's mean; low and high the
/// stated ones, else the 2.5% and 97.5% points.
fn base_low_high(spec: &DistSpec, dist: &Dist) -> (f64, f64, f64) {
    let stated_mean = match dist {
        Dist::Normal { min, max, .. } if min.is_finite() || max.is_finite() => None,
        _ => spec.mean,
    };
    let base = spec.base.or(stated_mean).unwrap_or_else(|| dist.mean());
    let low = spec.low.unwrap_or_else(|| dist.quantile(0.025));
    let high = spec.high.unwrap_or_else(|| dist.quantile(0.975));
    (base, low, high)
}

/// Lower factor L of a positive semi-definite matrix (L Lᵀ = a). For a positive-definite
/// matrix it is the Cholesky factor; a zero pivot (within rounding) gives a zero column,
/// which is allowed only where the rest of the column is zero too (positive semi-definite).
pub fn psd_factor(a: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, String> {
    let n = a.len();
    let scale = (0..n)
        .map(|i| a[i].get(i).copied().unwrap_or(0.0).abs())
        .fold(0.0, f64::max);
    let tol = 1e-10 * scale.max(f64::MIN_POSITIVE);
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        if a[i].len() != n {
            return Err(format!("the covariance matrix must be {n} x {n}"));
        }
        for j in 0..=i {
            if !(a[i][j].is_finite() && a[j][i].is_finite()) {
                return Err("the covariance matrix must hold finite numbers".into());
            }
            if (a[i][j] - a[j][i]).abs() > 1e-12 * (a[i][j].abs() + a[j][i].abs()).max(1e-300) {
                return Err("the covariance matrix must be symmetric".into());
            }
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if d > tol {
                    l[i][i] = d.sqrt();
                } else if d < -tol {
                    return Err(
                        "the covariance matrix must be positive semi-definite (a variance of a combination of the targets would be negative)".into(),
                    );
                }
            } else if l[j][j] > 0.0 {
                l[i][j] = (a[i][j] - s) / l[j][j];
            } else if (a[i][j] - s).abs() > tol {
                return Err(
                    "the covariance matrix must be positive semi-definite (a target with no variance left is correlated with another)".into(),
                );
            }
        }
    }
    Ok(l)
}

/// Why a linear predictor is refused where one number per run is needed.
pub const LINEAR_NOT_HERE: &str = "a linear predictor over patient characteristics is allowed only in a transition's distribution parameters, a state's cost, utility or entry cost, and an initial probability; here one number per run is needed";

/// Parses the distribution table at `span` of the text (as written in place).
fn spec_at(source: &Source, span: &Range<usize>) -> Result<DistSpec, String> {
    #[derive(serde::Deserialize)]
    struct Wrap {
        x: DistSpec,
    }
    toml::from_str::<Wrap>(&format!("x = {}", &source.text[span.clone()]))
        .map(|w| w.x)
        .map_err(|e| format!("bad distribution: {}", e.message()))
}

/// Collected while the parameters are built.
struct Builder<'a> {
    source: &'a Source,
    errors: Vec<Diagnostic>,
    params: Vec<Parameter>,
    by_name: HashMap<String, usize>,
    by_span: HashMap<usize, usize>,
    sets: Vec<Set>,
    /// What the sets draw, and which set.
    claimed: Vec<(Claim, String)>,
    /// The in-place distributions: (parameter, span, as written).
    in_place: Vec<(usize, Range<usize>, DistSpec)>,
}

/// What a set target draws: a named parameter, or the number at a span.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Claim {
    Named(usize),
    Span(Range<usize>),
}

impl Builder<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(self.source.diagnostic(field, message));
    }

    fn push(&mut self, p: Parameter) -> usize {
        self.params.push(p);
        self.params.len() - 1
    }

    /// Anonymous parameters: the distributions written in place, in file order.
    fn in_place(&mut self) -> Result<(), ScenarioError> {
        for (path, span) in self.source.distribution_tables()? {
            if path == "parameters" || path.starts_with("parameters.") {
                continue;
            }
            match spec_at(self.source, &span).and_then(|spec| Ok((spec.compile()?, spec))) {
                Ok((dist, spec)) => {
                    let (base, low, high) = base_low_high(&spec, &dist);
                    let i = self.push(Parameter {
                        name: path.clone(),
                        named: false,
                        field: path,
                        role: Role::Drawn(dist),
                        base,
                        low,
                        high,
                    });
                    self.by_span.insert(span.start, i);
                    self.in_place.push((i, span, spec));
                }
                Err(e) => self.error(&path, e),
            }
        }
        Ok(())
    }

    /// Named parameters, in declaration order (derived ones compiled later, once every name
    /// is known).
    fn named(&mut self, table: &crate::scenario::ParameterTable) {
        for (name, value) in &table.0 {
            let field = format!("parameters.{name}");
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    &field,
                    format!("`{name}` is not allowed as a parameter name: letters, digits and _, starting with a letter or _"),
                );
                continue;
            }
            if expr::function_names().contains(&name.as_str()) {
                self.error(&field, format!("`{name}` is the name of a function"));
                continue;
            }
            if self.by_name.contains_key(name) {
                self.error(&field, format!("parameter `{name}` is defined twice"));
                continue;
            }
            let (role, base, low, high) = match &value.kind {
                NumKind::Value(x) => (Role::Fixed, *x, f64::NAN, f64::NAN),
                NumKind::Expr(_) => (Role::Fixed, f64::NAN, f64::NAN, f64::NAN),
                NumKind::Linear(_) => {
                    self.error(&field, "a parameter is one number per run: write the linear predictor where the number is used (a transition parameter, a state's cost, utility or entry cost, an initial probability), with this parameter as a coefficient");
                    continue;
                }
                NumKind::Dist(spec) => match spec.compile() {
                    Ok(dist) => {
                        let (b, l, h) = base_low_high(spec, &dist);
                        let role = match dist {
                            Dist::Fixed(_) => Role::Fixed,
                            d => Role::Drawn(d),
                        };
                        (role, b, l, h)
                    }
                    Err(e) => {
                        self.error(&field, e);
                        (Role::Fixed, f64::NAN, f64::NAN, f64::NAN)
                    }
                },
            };
            let i = self.push(Parameter {
                name: name.clone(),
                named: true,
                field,
                role,
                base,
                low,
                high,
            });
            self.by_name.insert(name.clone(), i);
        }
    }

    /// Compiles the derived parameters' expressions; returns an evaluation order.
    fn derived(&mut self, table: &crate::scenario::ParameterTable) -> Vec<usize> {
        let names: Vec<String> = table.0.iter().map(|(n, _)| n.clone()).collect();
        for (name, value) in &table.0 {
            let NumKind::Expr(text) = &value.kind else {
                continue;
            };
            let Some(&i) = self.by_name.get(name) else {
                continue;
            };
            let compiled = Expr::compile(text, &|n| self.by_name.get(n).map(|&k| k as u32));
            match compiled {
                Ok(e) => self.params[i].role = Role::Derived(e),
                Err(e) => {
                    let field = format!("parameters.{name}");
                    let msg = expression_message(text, &e, &names);
                    self.errors.push(self.source.diagnostic_at(
                        &field,
                        value.span.start + 1 + e.position,
                        msg,
                    ));
                }
            }
        }
        self.evaluation_order()
    }

    /// Derived parameters ordered so that each comes after those it reads; a cycle is an
    /// error naming it.
    fn evaluation_order(&mut self) -> Vec<usize> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = self.params.len();
        let mut mark = vec![Mark::New; n];
        let mut order = Vec::new();
        let reads = |p: &Parameter| match &p.role {
            Role::Derived(e) => e.variables().into_iter().map(|v| v as usize).collect(),
            _ => Vec::new(),
        };
        for start in 0..n {
            if mark[start] != Mark::New || !matches!(self.params[start].role, Role::Derived(_)) {
                continue;
            }
            // Iterative depth-first search: (node, next child).
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = Mark::Open;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let children: Vec<usize> = reads(&self.params[node]);
                if *next < children.len() {
                    let c = children[*next];
                    *next += 1;
                    match mark[c] {
                        Mark::New => {
                            mark[c] = Mark::Open;
                            stack.push((c, 0));
                        }
                        Mark::Open => {
                            let from = stack.iter().position(|(k, _)| *k == c).unwrap_or(0);
                            let mut cycle: Vec<String> = stack[from..]
                                .iter()
                                .map(|(k, _)| self.params[*k].name.clone())
                                .collect();
                            cycle.push(self.params[c].name.clone());
                            let field = self.params[c].field.clone();
                            self.error(
                                &field,
                                format!(
                                    "the parameters depend on each other in a circle: {}",
                                    cycle.join(" → ")
                                ),
                            );
                            return order;
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    if matches!(self.params[node].role, Role::Derived(_)) {
                        order.push(node);
                    }
                    stack.pop();
                }
            }
        }
        order
    }

    /// A set's target: a named parameter declared as a plain number, or (format 1) the
    /// field path of a plain number, which becomes an anonymous parameter.
    fn target(&mut self, set: &str, target: &str) -> Option<usize> {
        let field = format!("{set}.targets");
        if let Some(&i) = self.by_name.get(target) {
            if self.params[i].role != Role::Fixed || !self.params[i].base.is_finite() {
                self.error(
                    &field,
                    format!("`{target}` is drawn by {set}, so declare it in [parameters] as a plain number (its base-case value), not as a distribution or expression"),
                );
                return None;
            }
            return self.claim(set, target, Claim::Named(i)).then_some(i);
        }
        let text = &self.source.text;
        match self.source.value_span(target) {
            Some(span) => match text[span.clone()].trim().parse::<f64>() {
                Ok(base) => {
                    if !self.claim(set, target, Claim::Span(span.clone())) {
                        return None;
                    }
                    let i = self.push(Parameter {
                        name: target.to_string(),
                        named: false,
                        field: target.to_string(),
                        role: Role::Fixed,
                        base,
                        low: f64::NAN,
                        high: f64::NAN,
                    });
                    self.by_span.insert(span.start, i);
                    Some(i)
                }
                Err(_) => {
                    self.error(
                        &field,
                        format!("`{target}` is not a number in this scenario (targets must be named parameters, or written as plain numbers, e.g. arms[0].states[1].initial)"),
                    );
                    None
                }
            },
            None => {
                let names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
                let hint = crate::scenario::suggest::closest(target, &names)
                    .map_or(String::new(), |k| {
                        format!(" (did you mean the parameter `{k}`?)")
                    });
                self.error(
                    &field,
                    format!("`{target}` is neither a parameter of [parameters] nor a field of this scenario{hint}"),
                );
                None
            }
        }
    }

    /// Records that `set` draws `what` (identified by `key`); false (with an error naming
    /// both sets) if another set, or this one, already does.
    fn claim(&mut self, set: &str, what: &str, key: Claim) -> bool {
        if let Some((_, first)) = self.claimed.iter().find(|(k, _)| *k == key) {
            let first = first.clone();
            self.error(
                &format!("{set}.targets"),
                format!("`{what}` is drawn twice, by {first} and by {set}: each number may be the target of one set, listed once"),
            );
            return false;
        }
        self.claimed.push((key, set.to_string()));
        true
    }

    /// The `[psa]` sets.
    fn sets(&mut self, settings: &PsaSection) {
        for (i, d) in settings.dirichlet.iter().enumerate() {
            let f = format!("psa.dirichlet[{i}]");
            let members: Vec<usize> = d
                .targets
                .iter()
                .filter_map(|t| self.target(&f, t))
                .collect();
            let alpha_ok = d.alpha.len() == d.targets.len()
                && d.alpha.iter().all(|a| *a > 0.0 && a.is_finite());
            if !alpha_ok {
                self.error(&format!("{f}.alpha"), "one concentration > 0 per target");
            }
            if d.targets.len() < 2 {
                self.error(
                    &format!("{f}.targets"),
                    "a Dirichlet set needs at least two targets",
                );
            } else if members.len() == d.targets.len() && alpha_ok {
                self.add_set(
                    &f,
                    members,
                    SetKind::Dirichlet {
                        alpha: d.alpha.clone(),
                    },
                );
            }
        }
        for (i, m) in settings.multivariate_normal.iter().enumerate() {
            let f = format!("psa.multivariate_normal[{i}]");
            let members: Vec<usize> = m
                .targets
                .iter()
                .filter_map(|t| self.target(&f, t))
                .collect();
            if m.mean.len() != m.targets.len() || m.cov.len() != m.targets.len() {
                self.error(&f, "give one mean and one covariance row per target");
                continue;
            }
            match psd_factor(&m.cov) {
                Ok(factor) if members.len() == m.targets.len() => self.add_set(
                    &f,
                    members,
                    SetKind::Mvn {
                        mean: m.mean.clone(),
                        factor,
                        scale: m.scale,
                    },
                ),
                Ok(_) => {}
                Err(e) => self.error(&format!("{f}.cov"), e),
            }
        }
    }

    fn add_set(&mut self, field: &str, members: Vec<usize>, kind: SetKind) {
        let set = self.sets.len();
        for (index, &p) in members.iter().enumerate() {
            self.params[p].role = Role::Member { set, index };
            let (low, high) = member_range(&kind, index, &self.params[p]);
            self.params[p].low = low;
            self.params[p].high = high;
        }
        self.sets.push(Set {
            field: field.to_string(),
            members,
            kind,
        });
    }
}

/// The one-way range of a set member: its marginal 2.5% and 97.5% points (a Dirichlet
/// member is Beta(α_i, Σα − α_i); a normal member mean ± 1.96 sd, on its scale).
fn member_range(kind: &SetKind, index: usize, _p: &Parameter) -> (f64, f64) {
    match kind {
        SetKind::Dirichlet { alpha } => {
            let total: f64 = alpha.iter().sum();
            let b = Dist::Beta {
                alpha: alpha[index],
                beta: total - alpha[index],
            };
            (b.quantile(0.025), b.quantile(0.975))
        }
        SetKind::Mvn {
            mean,
            factor,
            scale,
        } => {
            let sd = factor[index].iter().map(|x| x * x).sum::<f64>().sqrt();
            let z = crate::model::special::norm_quantile(0.975);
            let (lo, hi) = (mean[index] - z * sd, mean[index] + z * sd);
            match scale {
                MvnScale::Identity => (lo, hi),
                MvnScale::Log => (lo.exp(), hi.exp()),
            }
        }
    }
}

/// The message for an expression that does not compile: with "did you mean" for an
/// unknown name.
fn expression_message(text: &str, e: &ExprError, names: &[String]) -> String {
    let mut m = format!(
        "in the expression \"{text}\" at character {}: {}",
        e.position + 1,
        e.message
    );
    if let Some(unknown) = &e.unknown {
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        match crate::scenario::suggest::closest(unknown, &known) {
            Some(k) => m.push_str(&format!("; did you mean `{k}`?")),
            None if known.is_empty() => {
                m.push_str("; there are no named parameters: define it under [parameters]")
            }
            None => m.push_str(&format!("; the parameters are: {}", known.join(", "))),
        }
    }
    m
}

/// Warnings for one distribution written in place in several arms: each place is drawn on
/// its own, which users rarely mean.
fn identical_in_place(
    source: &Source,
    params: &[Parameter],
    in_place: &[(usize, Range<usize>, DistSpec)],
) -> Vec<Diagnostic> {
    let arm_of = |path: &str| -> Option<String> {
        path.strip_prefix("arms[")
            .and_then(|r| r.split_once(']'))
            .map(|(i, _)| i.to_string())
    };
    // Groups of equal distributions, in file order.
    let mut groups: Vec<(&DistSpec, Vec<usize>)> = Vec::new();
    for (k, (_, _, spec)) in in_place.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == spec) {
            Some((_, v)) => v.push(k),
            None => groups.push((spec, vec![k])),
        }
    }
    let mut out = Vec::new();
    for (_, members) in groups {
        let arms: std::collections::BTreeSet<String> = members
            .iter()
            .filter_map(|&k| arm_of(&params[in_place[k].0].name))
            .collect();
        if arms.len() < 2 {
            continue;
        }
        let places: Vec<String> = members
            .iter()
            .map(|&k| format!("`{}`", params[in_place[k].0].name))
            .collect();
        let (first, span, _) = &in_place[members[0]];
        let first = &params[*first].name;
        let written = &source.text[span.clone()];
        let suggestion: String = first
            .rsplit('.')
            .next()
            .unwrap_or("p")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.push(source.diagnostic(
            first,
            format!(
                "the same distribution {written} is written in place in {}: each place is drawn on its own, so the arms get different values in every PSA draw and incremental results carry that difference. To share one draw, write it once under [parameters] (e.g. `{suggestion} = {written}`) and put \"{suggestion}\" in each place",
                places.join(", ")
            ),
        ));
    }
    out
}

/// Why a number could not be given a value.
#[derive(Clone, Debug, PartialEq)]
pub struct NumError {
    /// Byte offset in the scenario text where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl Parameters {
    /// The parameters of a parsed scenario (its `[parameters]`, in-place distributions and
    /// `[psa]` sets), with every check: names, distributions, expressions, cycles, sets.
    pub fn new(source: &Source, sc: &Scenario) -> Result<Parameters, ScenarioError> {
        let (p, errors) = Self::build(source, &sc.parameters, sc.psa.clone().unwrap_or_default())?;
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(ScenarioError {
                diagnostics: errors,
            })
        }
    }

    /// [`Parameters::new`], returning the parameters even when some are wrong (those
    /// without a value are NaN) with the problems found, so that the fields using them can
    /// be checked too and every problem reported at once.
    pub fn new_with_errors(
        source: &Source,
        sc: &Scenario,
    ) -> Result<(Parameters, Vec<Diagnostic>), ScenarioError> {
        Self::build(source, &sc.parameters, sc.psa.clone().unwrap_or_default())
    }

    /// The parameters of a text that need not be a whole scenario: its `[parameters]`,
    /// `[psa]` sets and in-place distributions (for tools and tests).
    pub fn of_text(source: &Source) -> Result<Parameters, ScenarioError> {
        #[derive(serde::Deserialize)]
        struct Part {
            #[serde(default)]
            parameters: crate::scenario::ParameterTable,
            #[serde(default)]
            psa: Option<PsaSection>,
        }
        let part: Part = toml::from_str(&source.text).map_err(|e| ScenarioError {
            diagnostics: vec![source.diagnostic("", e.message().to_string())],
        })?;
        let (p, errors) = Self::build(source, &part.parameters, part.psa.unwrap_or_default())?;
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(ScenarioError {
                diagnostics: errors,
            })
        }
    }

    fn build(
        source: &Source,
        table: &crate::scenario::ParameterTable,
        settings: PsaSection,
    ) -> Result<(Parameters, Vec<Diagnostic>), ScenarioError> {
        let mut b = Builder {
            source,
            errors: Vec::new(),
            params: Vec::new(),
            by_name: HashMap::new(),
            by_span: HashMap::new(),
            sets: Vec::new(),
            claimed: Vec::new(),
            in_place: Vec::new(),
        };
        b.in_place()?;
        b.named(table);
        b.sets(&settings);
        let derived_order = b.derived(table);
        if let Some(g) = &settings.wtp_grid {
            if !(g.from >= 0.0
                && g.to > g.from
                && g.step > 0.0
                && (g.to - g.from) / g.step <= 10_000.0)
            {
                b.error(
                    "psa.wtp_grid",
                    "need 0 <= from < to and step > 0, at most 10000 steps",
                );
            }
        }
        let warnings = identical_in_place(source, &b.params, &b.in_place);
        let mut p = Parameters {
            params: b.params,
            sets: b.sets,
            settings,
            warnings,
            by_name: b.by_name,
            by_span: b.by_span,
            derived_order,
            exprs: RwLock::new(HashMap::new()),
        };
        let base = p.base_values();
        for &i in &p.derived_order.clone() {
            p.params[i].base = base[i];
        }
        Ok((p, b.errors))
    }

    /// Whether anything is uncertain (drawn).
    pub fn is_uncertain(&self) -> bool {
        self.params
            .iter()
            .any(|p| matches!(p.role, Role::Drawn(_) | Role::Member { .. }))
    }

    /// The index of named parameter `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The names of the named parameters (declaration order).
    pub fn names(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|p| p.named)
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Evaluates the derived parameters of `values` (in place).
    fn derive(&self, values: &mut [f64]) {
        for &i in &self.derived_order {
            if let Role::Derived(e) = &self.params[i].role {
                values[i] = e.eval(values);
            }
        }
    }

    /// The base-case values (one per parameter).
    pub fn base_values(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.params.iter().map(|p| p.base).collect();
        self.derive(&mut v);
        v
    }

    /// The values of PSA draw `draw` (≥ 1).
    pub fn draw(&self, seed: u64, draw: u64) -> Vec<f64> {
        let mut rng = stream(seed, draw, 0, STREAM_PSA);
        let mut v = self.base_values();
        let anonymous = self.params.iter().enumerate().filter(|(_, p)| !p.named);
        for (i, p) in anonymous {
            if let Role::Drawn(d) = &p.role {
                v[i] = d.quantile(uniform_open(&mut rng));
            }
        }
        for set in &self.sets {
            let x = match &set.kind {
                SetKind::Dirichlet { alpha } => {
                    let g: Vec<f64> = alpha
                        .iter()
                        .map(|&a| {
                            Dist::Gamma {
                                shape: a,
                                rate: 1.0,
                            }
                            .quantile(uniform_open(&mut rng))
                        })
                        .collect();
                    let s: f64 = g.iter().sum();
                    g.iter().map(|gi| gi / s).collect::<Vec<f64>>()
                }
                SetKind::Mvn {
                    mean,
                    factor,
                    scale,
                } => {
                    let z: Vec<f64> = mean
                        .iter()
                        .map(|_| crate::model::special::norm_quantile(uniform_open(&mut rng)))
                        .collect();
                    mean.iter()
                        .enumerate()
                        .map(|(i, m)| {
                            let x = m + (0..=i).map(|k| factor[i][k] * z[k]).sum::<f64>();
                            match scale {
                                MvnScale::Identity => x,
                                MvnScale::Log => x.exp(),
                            }
                        })
                        .collect()
                }
            };
            for (&p, xi) in set.members.iter().zip(x) {
                v[p] = xi;
            }
        }
        let named = self.params.iter().enumerate().filter(|(_, p)| p.named);
        for (i, p) in named {
            if let Role::Drawn(d) = &p.role {
                v[i] = d.quantile(uniform_open(&mut rng));
            }
        }
        self.derive(&mut v);
        v
    }

    /// The one-way runs of a tornado: each drawn parameter and set member at its low and
    /// high value (anonymous parameters first, in file order; then named ones).
    pub fn one_way_runs(&self) -> Vec<OneWay> {
        let mut v = Vec::new();
        for pass in [false, true] {
            for (i, p) in self.params.iter().enumerate() {
                let varied = matches!(p.role, Role::Drawn(_) | Role::Member { .. })
                    || (p.role == Role::Fixed && p.low.is_finite() && p.high.is_finite());
                if p.named != pass || !varied {
                    continue;
                }
                for (high, value) in [(false, p.low), (true, p.high)] {
                    v.push(OneWay {
                        param: i,
                        high,
                        value,
                    });
                }
            }
        }
        v
    }

    /// The values of a one-way run: the base case with one parameter moved (the other
    /// members of its Dirichlet set rescaled so that the set still sums to 1).
    pub fn one_way(&self, run: &OneWay) -> Vec<f64> {
        let mut v = self.base_values();
        v[run.param] = run.value;
        if let Role::Member { set, .. } = self.params[run.param].role {
            if let SetKind::Dirichlet { .. } = self.sets[set].kind {
                let base = self.params[run.param].base;
                let rest = 1.0 - base;
                for &m in &self.sets[set].members {
                    if m != run.param {
                        v[m] = if rest > 0.0 {
                            self.params[m].base * (1.0 - run.value) / rest
                        } else {
                            (1.0 - run.value) / (self.sets[set].members.len() - 1) as f64
                        };
                    }
                }
            }
        }
        self.derive(&mut v);
        v
    }

    /// The base case with overrides of named parameters (a sweep point): derived parameters
    /// follow.
    pub fn with_overrides(&self, overrides: &[(usize, f64)]) -> Vec<f64> {
        let mut v = self.base_values();
        for &(i, x) in overrides {
            v[i] = x;
        }
        self.derive(&mut v);
        v
    }

    /// The columns of `params.csv`: every drawn quantity of a format 1 scenario (in-place
    /// distributions, then set targets given by field path), then every named parameter.
    pub fn columns(&self) -> Vec<usize> {
        let anonymous = |p: &Parameter| !p.named;
        let in_place: Vec<usize> = (0..self.params.len())
            .filter(|&i| {
                anonymous(&self.params[i]) && matches!(self.params[i].role, Role::Drawn(_))
            })
            .collect();
        let targets: Vec<usize> = self
            .sets
            .iter()
            .flat_map(|s| s.members.iter().copied())
            .filter(|&i| anonymous(&self.params[i]))
            .collect();
        let named: Vec<usize> = (0..self.params.len())
            .filter(|&i| self.params[i].named)
            .collect();
        [in_place, targets, named].concat()
    }

    /// The value of number `n` in the run with parameter `values` and field `overrides`
    /// (span start → value, from a sweep): its override, else its parameter, else its
    /// expression, else itself.
    pub fn resolve(
        &self,
        n: &Num,
        values: &[f64],
        overrides: &[(usize, f64)],
    ) -> Result<f64, NumError> {
        if !n.span.is_empty() {
            if let Some(&(_, x)) = overrides.iter().find(|(s, _)| *s == n.span.start) {
                return Ok(x);
            }
        }
        match &n.kind {
            NumKind::Value(x) => Ok(self
                .by_span
                .get(&n.span.start)
                .filter(|_| !n.span.is_empty())
                .map_or(*x, |&i| values[i])),
            NumKind::Dist(_) => self
                .by_span
                .get(&n.span.start)
                .map(|&i| values[i])
                .ok_or_else(|| NumError {
                    offset: n.span.start,
                    message: "a distribution here is not a parameter of this scenario (internal error: please report it)".into(),
                }),
            NumKind::Expr(text) => Ok(self.expression(n, text)?.eval(values)),
            NumKind::Linear(_) => Err(NumError {
                offset: n.span.start,
                message: LINEAR_NOT_HERE.into(),
            }),
        }
    }

    /// The compiled expression of a number (compiled on first use, then kept).
    fn expression(&self, n: &Num, text: &str) -> Result<Arc<Expr>, NumError> {
        let key = n.span.start;
        if !n.span.is_empty() {
            if let Some(found) = self.exprs.read().ok().and_then(|m| m.get(&key).cloned()) {
                return found.map_err(|e| self.num_error(n, text, &e));
            }
        }
        let compiled =
            Expr::compile(text, &|name| self.by_name.get(name).map(|&i| i as u32)).map(Arc::new);
        if !n.span.is_empty() {
            if let Ok(mut m) = self.exprs.write() {
                m.insert(key, compiled.clone());
            }
        }
        compiled.map_err(|e| self.num_error(n, text, &e))
    }

    fn num_error(&self, n: &Num, text: &str, e: &ExprError) -> NumError {
        let names: Vec<String> = self.names().iter().map(|s| s.to_string()).collect();
        NumError {
            // The opening quote, then the character.
            offset: n.span.start + 1 + e.position,
            message: expression_message(text, e, &names),
        }
    }

    /// Which parameters a number takes its value from (for messages about a draw): the
    /// parameter itself, or the named parameters its expression reads.
    pub fn sources_of(&self, n: &Num) -> Vec<usize> {
        match &n.kind {
            NumKind::Value(_) | NumKind::Dist(_) => self
                .by_span
                .get(&n.span.start)
                .filter(|_| !n.span.is_empty())
                .copied()
                .into_iter()
                .collect(),
            NumKind::Expr(text) => self
                .expression(n, text)
                .map(|e| e.variables().into_iter().map(|v| v as usize).collect())
                .unwrap_or_default(),
            NumKind::Linear(l) => {
                let mut v = self.sources_of(&l.intercept);
                for (_, c) in &l.coefficients {
                    v.extend(self.sources_of(c));
                }
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psd_factor_is_cholesky_for_positive_definite_and_handles_singular() {
        let a = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let l = psd_factor(&a).unwrap();
        assert_eq!(l[0][0], 2.0);
        assert_eq!(l[1][0], 1.0);
        assert!((l[1][1] - 2f64.sqrt()).abs() < 1e-15);
        // Duplicated coordinates: singular, positive semi-definite.
        let s = vec![
            vec![1.0, 1.0, 0.5],
            vec![1.0, 1.0, 0.5],
            vec![0.5, 0.5, 2.0],
        ];
        let l = psd_factor(&s).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let x: f64 = (0..3).map(|k| l[i][k] * l[j][k]).sum();
                assert!((x - s[i][j]).abs() < 1e-12, "{i},{j}");
            }
        }
        assert!(psd_factor(&[vec![1.0, 2.0], vec![2.0, 1.0]])
            .unwrap_err()
            .contains("semi-definite"));
        assert!(psd_factor(&[vec![1.0, 0.5], vec![0.4, 1.0]])
            .unwrap_err()
            .contains("symmetric"));
    }
}
