//! Compiles a parsed scenario into a [`Model`], checking every value and collecting all
//! errors (each located by field path, line and column).
//!
//! A model is compiled for one run: every number of the scenario takes its value in that
//! run from the parameter layer ([`Run`]: parameter values and a sweep's overrides), so a
//! PSA draw is compiled from the parsed scenario and its parameter vector, with no text
//! parsed again. Data files are read once ([`Data`]). One submodule per part of the
//! scenario: `settings` (simulation, population, therapy, payer, manufacturer, cohort),
//! `arms` (states, transitions, costs) and `contracts` (outcomes, plans, contracts).

mod arms;
mod characteristics;
mod contracts;
mod settings;

use super::characteristics::{read_table, Characteristics, RawTable};
use super::effects::{Link, Predictor};
use super::lifetable::LifeTable;
use super::Model;
use crate::params::{NumError, Parameters, LINEAR_NOT_HERE};
use crate::scenario::{
    Cost, Diagnostic, LinearSpec, Num, NumKind, Scenario, ScenarioError, Source, TimeToEvent,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Tolerance on the sum of an initial distribution.
pub const INITIAL_SUM_TOLERANCE: f64 = 1e-6;
/// Longest horizon accepted, in years.
pub const MAX_HORIZON: f64 = 200.0;
/// Most installments in one contract.
pub const MAX_PAYMENTS: u32 = 100_000;
/// Name used in outputs for the comparator arms' (absent) contract.
pub const NO_CONTRACT: &str = "none";

/// The numbers of one run: parameter values and overrides of single numbers.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// The scenario's parameters.
    pub params: &'a Parameters,
    /// One value per parameter (see [`Parameters::base_values`], [`Parameters::draw`]).
    pub values: &'a [f64],
    /// (span start of a number in the text, value): numbers set by a sweep or solve.
    pub overrides: &'a [(usize, f64)],
}

impl Run<'_> {
    /// The value of `n` in this run.
    pub fn value(&self, n: &Num) -> Result<f64, NumError> {
        self.params.resolve(n, self.values, self.overrides)
    }
}

/// The data files a scenario reads, read once for every run.
#[derive(Clone, Debug)]
pub struct Data {
    /// Background mortality (none if no life table is given).
    pub life_table: Option<Arc<LifeTable>>,
    /// The patient table as read (none if the scenario has none).
    pub patients: Option<Arc<RawTable>>,
    /// SHA-256 of the data files (see [`data_digest`]).
    pub sha256: String,
    /// The files on disk (none for embedded scenarios).
    pub files: Vec<PathBuf>,
}

/// A data file's error, located at the file (no line: the message says where).
fn file_error(shown: String, message: String) -> ScenarioError {
    ScenarioError {
        diagnostics: vec![Diagnostic {
            file: shown,
            line: None,
            column: None,
            field: String::new(),
            message,
        }],
    }
}

impl Data {
    /// Reads and checks the data files of `sc`.
    pub fn load(source: &Source, sc: &Scenario) -> Result<Data, ScenarioError> {
        let mut data = Data {
            life_table: None,
            patients: None,
            sha256: String::new(),
            files: Vec::new(),
        };
        let mut read: Vec<(String, String)> = Vec::new();
        if let Some(lt) = &sc.population.life_table {
            let (shown, text) = source.read_data(&lt.file).map_err(|e| ScenarioError {
                diagnostics: vec![source.diagnostic("population.life_table.file", e)],
            })?;
            let columns = (
                lt.age_column.as_str(),
                lt.female_column.as_str(),
                lt.male_column.as_str(),
            );
            let table = LifeTable::from_csv(&text, lt.measure, columns).map_err(|e| {
                file_error(
                    shown,
                    format!("{e} (life table referenced by population.life_table.file)"),
                )
            })?;
            data.life_table = Some(Arc::new(table));
            data.files.extend(source.data_path(&lt.file));
            read.push((lt.file.clone(), text));
        }
        if let Some(pt) = &sc.population.patients {
            let (shown, text) = source.read_data(&pt.file).map_err(|e| ScenarioError {
                diagnostics: vec![source.diagnostic("population.patients.file", e)],
            })?;
            let table = read_table(&text, pt.weight_column.as_deref()).map_err(|e| {
                file_error(
                    shown,
                    format!("{e} (patient table referenced by population.patients.file)"),
                )
            })?;
            data.patients = Some(Arc::new(table));
            data.files.extend(source.data_path(&pt.file));
            read.push((pt.file.clone(), text));
        }
        let files: Vec<(&str, &str)> = read.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
        data.sha256 = data_digest(&files);
        Ok(data)
    }
}

/// Checks values as they are compiled and collects every problem, located.
pub(crate) struct Checker<'a> {
    source: &'a Source,
    run: Run<'a>,
    errors: Vec<Diagnostic>,
    /// Fields whose numbers come from parameters: field → "name = value, ...".
    notes: HashMap<String, String>,
    /// Fields whose number has no value (already reported: no follow-on errors).
    failed: std::collections::HashSet<String>,
    /// Only numbers that cannot be given a value are errors (other checks are skipped):
    /// for checking fields when some parameters are already known to be wrong.
    lenient: bool,
    /// Where the numbers being read stand: whether a linear predictor may stand there.
    pub(crate) place: Place,
    /// Numbers read so far (see [`Checker::begin`]): a family's parameter slots.
    slot: usize,
    /// Linear predictors read since [`Checker::begin`]: (field, slot, predictor).
    found: Vec<(String, usize, Predictor)>,
    /// The population's characteristics (for the terms of linear predictors), once known.
    pub(crate) covariates: Option<Characteristics>,
}

/// Where the numbers being read stand, for linear predictors over patient characteristics.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    /// Nowhere a number may vary by patient (the message says why).
    Fixed(&'static str),
    /// A transition's distribution (fields under `prefix`).
    Family {
        /// The field of the distribution (`arms[0].transitions[1].time`).
        prefix: String,
        /// The distribution as written.
        time: TimeToEvent,
    },
    /// A state's annual or entry cost.
    Cost,
    /// A state's utility.
    Utility,
    /// A state's initial probability.
    Initial,
}

impl<'a> Checker<'a> {
    fn new(source: &'a Source, run: Run<'a>) -> Self {
        Checker {
            source,
            run,
            errors: Vec::new(),
            notes: HashMap::new(),
            failed: std::collections::HashSet::new(),
            lenient: false,
            place: Place::Fixed(LINEAR_NOT_HERE),
            slot: 0,
            found: Vec::new(),
            covariates: None,
        }
    }

    /// Starts reading numbers at `place`: slots count from 0 and linear predictors are
    /// collected until [`Checker::end`].
    pub(crate) fn begin(&mut self, place: Place) {
        self.place = place;
        self.slot = 0;
        self.found.clear();
    }

    /// Ends a [`Checker::begin`]: the linear predictors read there, as (field, slot,
    /// predictor).
    pub(crate) fn end(&mut self) -> Vec<(String, usize, Predictor)> {
        self.place = Place::Fixed(LINEAR_NOT_HERE);
        std::mem::take(&mut self.found)
    }

    /// An error at `field` (with the parameters its number came from, if any).
    pub(crate) fn error(&mut self, field: &str, message: impl Into<String>) {
        if self.lenient || self.failed.contains(field) {
            return;
        }
        let mut message = message.into();
        if let Some(note) = self.notes.get(field) {
            message.push_str(&format!(" (in this run {note})"));
        }
        self.errors.push(self.source.diagnostic(field, message));
    }

    /// The value of number `n` at `field` in this run (NaN, with an error, if it has none).
    /// A linear predictor, where one may stand, is collected (see [`Checker::end`]) and its
    /// value at covariates 0 returned.
    pub(crate) fn num(&mut self, field: &str, n: &Num) -> f64 {
        self.slot += 1;
        match &n.kind {
            NumKind::Linear(spec) => self.linear(field, n, spec),
            _ => self.value(field, n),
        }
    }

    /// A linear predictor at `field`.
    fn linear(&mut self, field: &str, n: &Num, spec: &LinearSpec) -> f64 {
        let allowed: Vec<Link> = match &self.place {
            Place::Fixed(why) => {
                let why = *why;
                self.errors
                    .push(self.source.diagnostic_at(field, n.span.start, why));
                self.failed.insert(field.to_string());
                return f64::NAN;
            }
            Place::Family { prefix, time } => {
                let param = field.strip_prefix(prefix.as_str()).unwrap_or(field);
                match crate::model::effects::time_link(time, param.trim_start_matches('.')) {
                    Some(l) => vec![l],
                    None => {
                        self.error(field, "this number is the same for every patient: a linear predictor is allowed in a distribution's parameters, not its cut points or knots");
                        self.failed.insert(field.to_string());
                        return f64::NAN;
                    }
                }
            }
            Place::Cost => vec![Link::Identity, Link::Log],
            Place::Utility => vec![Link::Identity],
            Place::Initial => vec![Link::Mlogit],
        };
        let link = match &spec.link {
            None => allowed[0],
            Some(w) => match Link::parse(w) {
                Some(l) if allowed.contains(&l) => l,
                _ => {
                    let names: Vec<&str> = allowed.iter().map(|l| l.as_str()).collect();
                    let what = match &self.place {
                        Place::Family { .. } => "flexsurv's scale for this parameter",
                        Place::Cost => "a cost",
                        Place::Utility => "a utility",
                        _ => "an initial probability (a multinomial logit over the starting states; the reference state's predictor is { link = \"mlogit\", intercept = 0 })",
                    };
                    self.error(
                        &format!("{field}.link"),
                        format!(
                            "link `{w}` is not allowed here: {what} takes link = {}",
                            names
                                .iter()
                                .map(|n| format!("\"{n}\""))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    );
                    allowed[0]
                }
            },
        };
        let intercept = self.value(&format!("{field}.intercept"), &spec.intercept);
        let mut terms = Vec::new();
        for (term, c) in &spec.coefficients {
            let f = format!("{field}.coefficients.{term}");
            let coefficient = self.value(&f, c);
            if let Some(cov) = &self.covariates {
                match crate::model::effects::parse_term(cov, term) {
                    Ok(factors) => terms.push(crate::model::effects::Term {
                        coefficient,
                        factors,
                    }),
                    Err(e) => self.error(&f, e),
                }
            }
        }
        let p = Predictor {
            link,
            intercept,
            terms,
        };
        let v = link.inverse(intercept);
        self.found.push((field.to_string(), self.slot - 1, p));
        v
    }

    /// The value of a number that is not a linear predictor.
    fn value(&mut self, field: &str, n: &Num) -> f64 {
        match self.run.value(n) {
            Ok(v) => {
                let sources = self.run.params.sources_of(n);
                if !sources.is_empty() {
                    let note: Vec<String> = sources
                        .iter()
                        .map(|&i| {
                            let p = &self.run.params.params[i];
                            format!("{} = {}", p.name, self.run.values[i])
                        })
                        .collect();
                    self.notes.insert(field.to_string(), note.join(", "));
                }
                v
            }
            Err(e) => {
                self.errors
                    .push(self.source.diagnostic_at(field, e.offset, e.message));
                self.failed.insert(field.to_string());
                f64::NAN
            }
        }
    }

    /// An optional number.
    pub(crate) fn opt(&mut self, field: &str, n: &Option<Num>) -> Option<f64> {
        n.as_ref().map(|n| self.num(field, n))
    }

    /// A list of numbers (`field[k]`).
    pub(crate) fn list(&mut self, field: &str, v: &[Num]) -> Vec<f64> {
        v.iter()
            .enumerate()
            .map(|(k, n)| self.num(&format!("{field}[{k}]"), n))
            .collect()
    }

    /// Rows of two numbers (`field[k]`).
    pub(crate) fn rows(&mut self, field: &str, v: &[[Num; 2]]) -> Vec<[f64; 2]> {
        v.iter()
            .enumerate()
            .map(|(k, [a, b])| {
                let f = format!("{field}[{k}]");
                [self.num(&f, a), self.num(&f, b)]
            })
            .collect()
    }

    /// A cost: its total and its parts by category (`field.category`).
    pub(crate) fn cost(&mut self, field: &str, c: &Cost) -> (f64, Vec<(String, f64)>) {
        let mut total = 0.0;
        let mut parts = Vec::new();
        for (category, n) in c.parts() {
            match category {
                None => total += self.num(field, &n),
                Some(k) => {
                    let v = self.num(&format!("{field}.{k}"), &n);
                    total += v;
                    parts.push((k.to_string(), v));
                }
            }
        }
        (total, parts)
    }

    /// A finite number in [lo, hi] (either bound may be infinite).
    pub(crate) fn range(&mut self, field: &str, v: f64, lo: f64, hi: f64, what: &str) {
        if !v.is_finite() || v < lo || v > hi {
            self.error(field, format!("{v} is not allowed: {what}"));
        }
    }

    pub(crate) fn positive(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.error(
                field,
                format!("{v} is not allowed: must be a finite number > 0"),
            );
        }
    }

    pub(crate) fn finite(&mut self, field: &str, v: f64) {
        if !v.is_finite() {
            self.error(
                field,
                format!("{v} is not allowed: must be a finite number"),
            );
        }
    }

    /// A warning, located like an error.
    pub(crate) fn warning(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        self.source.diagnostic(field, message)
    }
}

/// A sum of decimal shares shown as the user would write it (0.6 + 0.6 + ... = 1.8, not
/// 1.7999999999999998).
pub(crate) fn rounded(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// The compiled parts of a scenario (complete when the checker found no errors).
struct Sections {
    sim: super::SimSettings,
    population: Option<super::PopulationModel>,
    arms: arms::Arms,
    therapy: Option<super::TherapyTerms>,
    terms: contracts::Terms,
    churn: Option<super::family::Family>,
    manufacturer_default: Option<super::family::Family>,
    cohort: Option<super::CohortModel>,
}

/// Compiles every part of the scenario, collecting problems in `ck`.
fn compile_sections(ck: &mut Checker, sc: &Scenario, data: &Data) -> Sections {
    let sim = settings::simulation(ck, sc);
    let population = settings::population(ck, sc, data, sim.horizon);
    ck.covariates = population.as_ref().map(|p| p.characteristics.clone());
    let mut arms = arms::arms(ck, sc, &sim, &population);
    let therapy = settings::therapy(ck, sc, &mut arms.arms);
    let terms = contracts::all(ck, sc, sim.horizon, therapy.as_ref().map(|t| t.arm));
    let churn = settings::churn(ck, sc);
    let manufacturer_default = settings::manufacturer_default(ck, sc);
    let cohort = settings::cohort(ck, sc);
    if let Some(p) = &population {
        if p.life_table.is_none() {
            for (a, arm) in arms.arms.iter().enumerate() {
                if arm.background {
                    ck.error(
                        &format!("arms[{a}]"),
                        format!("arm `{}` has background mortality, so the population needs a `life_table` (or set `background_mortality = false` in the arm if its transitions are all-cause)", arm.name),
                    );
                }
            }
        }
    }
    Sections {
        sim,
        population,
        arms,
        therapy,
        terms,
        churn,
        manufacturer_default,
        cohort,
    }
}

/// Checks a scenario and compiles it into the model of one run, with its data read once.
pub fn compile_run(
    source: &Source,
    sc: &Scenario,
    data: &Data,
    run: Run,
) -> Result<Model, ScenarioError> {
    let mut ck = Checker::new(source, run);
    let c = compile_sections(&mut ck, sc, data);
    if !ck.errors.is_empty() {
        return Err(ScenarioError {
            diagnostics: ck.errors,
        });
    }
    let (Some(population), Some(therapy)) = (c.population, c.therapy) else {
        unreachable!("no errors means the population and therapy compiled");
    };
    let (sim, built, terms) = (c.sim, c.arms, c.terms);
    let (churn, manufacturer_default, cohort) = (c.churn, c.manufacturer_default, c.cohort);
    Ok(Model {
        data_sha256: data.sha256.clone(),
        data_files: data.files.clone(),
        name: sc.metadata.name.clone(),
        description: sc.metadata.description.clone(),
        currency: sc.metadata.currency.clone(),
        price_year: sc.metadata.price_year,
        sim,
        population,
        therapy,
        arms: built.arms,
        cost_categories: built.categories,
        contracts: terms.contracts,
        outcomes: terms.outcomes,
        plans: terms.plans,
        churn,
        manufacturer_default,
        cohort,
        warnings: built.warnings,
    })
}

/// Everything needed to compile a scenario's runs: the parsed scenario, its parameters and
/// its data, each made once.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Where the scenario came from (for messages and data files).
    pub source: Source,
    /// The parsed scenario.
    pub scenario: Scenario,
    /// Its parameters.
    pub params: Parameters,
    /// Its data files.
    pub data: Data,
}

impl Setup {
    /// Parses the scenario and builds its parameters and data (every error at once where
    /// they can be found together).
    pub fn new(source: &Source) -> Result<Setup, ScenarioError> {
        let scenario = source.parse()?;
        let (params, mut errors) = Parameters::new_with_errors(source, &scenario)?;
        let data = Data::load(source, &scenario);
        if let Err(e) = &data {
            errors.extend(e.diagnostics.iter().cloned());
        }
        if !errors.is_empty() {
            // Still check every field's expression, so that all problems come at once.
            if let Ok(d) = &data {
                let values = params.base_values();
                let run = Run {
                    params: &params,
                    values: &values,
                    overrides: &[],
                };
                let mut ck = Checker::new(source, run);
                ck.lenient = true;
                compile_sections(&mut ck, &scenario, d);
                errors.extend(ck.errors);
            }
            return Err(ScenarioError {
                diagnostics: errors,
            });
        }
        Ok(Setup {
            source: source.clone(),
            scenario,
            params,
            data: data?,
        })
    }

    /// The model of the run with parameter `values` and number `overrides`.
    pub fn model(
        &self,
        values: &[f64],
        overrides: &[(usize, f64)],
    ) -> Result<Model, ScenarioError> {
        compile_run(
            &self.source,
            &self.scenario,
            &self.data,
            Run {
                params: &self.params,
                values,
                overrides,
            },
        )
    }

    /// The base-case model.
    pub fn base(&self) -> Result<Model, ScenarioError> {
        let mut m = self.model(&self.params.base_values(), &[])?;
        m.warnings.extend(self.params.warnings.iter().cloned());
        Ok(m)
    }
}

/// Checks a parsed scenario and compiles its base case (its data read now).
pub fn compile(source: &Source, sc: &Scenario) -> Result<Model, ScenarioError> {
    let params = Parameters::new(source, sc)?;
    let data = Data::load(source, sc)?;
    compile_run(
        source,
        sc,
        &data,
        Run {
            params: &params,
            values: &params.base_values(),
            overrides: &[],
        },
    )
}

/// Reads, parses and compiles a scenario's base case in one step.
pub fn load(source: &Source) -> Result<(Scenario, Model), ScenarioError> {
    let setup = Setup::new(source)?;
    let model = setup.base()?;
    Ok((setup.scenario, model))
}

/// "`name` is not a KIND; did you mean `x`? KINDs: a, b" — the closest known name is
/// suggested when it is close (case-insensitive match, or a few edits away).
pub fn unknown_name(name: &str, kind: &str, plural: &str, known: &[&str]) -> String {
    let hint = crate::scenario::suggest::closest(name, known)
        .map_or(String::new(), |k| format!("did you mean `{k}`? "));
    let list = if known.is_empty() {
        "(none)".to_string()
    } else {
        known.join(", ")
    };
    format!("`{name}` is not {kind}; {hint}{plural}: {list}")
}

/// Names with an index, for lookups in constant time (the first of repeated names wins).
pub(crate) struct Names<'a> {
    list: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    pub(crate) fn new(list: Vec<&'a str>) -> Self {
        let mut index = HashMap::with_capacity(list.len());
        for (i, n) in list.iter().enumerate() {
            index.entry(*n).or_insert(i);
        }
        Names { list, index }
    }

    /// Position of `name`.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

impl<'a> std::ops::Deref for Names<'a> {
    type Target = [&'a str];
    fn deref(&self) -> &[&'a str] {
        &self.list
    }
}

/// SHA-256 (hex) of the data files a scenario reads, each as its name as written in the
/// scenario and its content: what shards and manifests record so that results are tied to
/// the exact data.
pub fn data_digest(files: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
