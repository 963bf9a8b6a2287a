//! Numbers as a scenario writes them: a number (`0.89`), a parameter name or an expression
//! over parameters (`"u_sick"`, `"c_drug + c_med_sick"`), or an in-place distribution (an
//! anonymous uncertain parameter: `{ dist = "beta", mean = 0.8, se = 0.05 }`).
//!
//! A [`Num`] keeps where it was written (its byte span in the scenario text), by which the
//! parameter layer ties it to its parameter, its compiled expression or a sweep's override.
//! Costs may also be split into named categories ([`Cost`]).

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// A distribution as written in a scenario: `{ dist = "beta", mean = 0.89, se = 0.03 }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistSpec {
    /// beta | gamma | lognormal | normal | uniform | triangular | fixed.
    pub dist: String,
    /// Mean (beta, gamma, lognormal with `se`; normal).
    pub mean: Option<f64>,
    /// Standard error (beta, gamma, lognormal: method of moments).
    pub se: Option<f64>,
    /// Standard deviation (normal).
    pub sd: Option<f64>,
    /// Beta α.
    pub alpha: Option<f64>,
    /// Beta β.
    pub beta: Option<f64>,
    /// Gamma shape.
    pub shape: Option<f64>,
    /// Gamma rate.
    pub rate: Option<f64>,
    /// Lognormal mean of the log.
    pub meanlog: Option<f64>,
    /// Lognormal SD of the log.
    pub sdlog: Option<f64>,
    /// Lower bound (uniform, triangular; truncation for normal).
    pub min: Option<f64>,
    /// Upper bound.
    pub max: Option<f64>,
    /// Mode (triangular).
    pub mode: Option<f64>,
    /// Value (fixed).
    pub value: Option<f64>,
    /// Base-case value (default: the distribution's mean).
    pub base: Option<f64>,
    /// One-way sensitivity low value (default: the 2.5% point).
    pub low: Option<f64>,
    /// One-way sensitivity high value (default: the 97.5% point).
    pub high: Option<f64>,
}

/// What a number is.
#[derive(Clone, Debug, PartialEq)]
pub enum NumKind {
    /// A plain number.
    Value(f64),
    /// A parameter name or an expression over parameters.
    Expr(String),
    /// An in-place distribution: an anonymous uncertain parameter of this one place.
    Dist(Box<DistSpec>),
    /// A linear predictor over patient characteristics (a per-patient number, allowed only
    /// where the scenario says so: transition parameters, state costs, utilities, entry
    /// costs and initial distributions).
    Linear(Box<LinearSpec>),
}

/// A linear predictor as written: `{ link = "log", intercept = "b0", coefficients = { age =
/// "b_age", "genotype:b0_b0" = 0.3 } }`. The number is `inverse_link(intercept + sum of
/// coefficient x term)` for each patient; a term is a characteristic, a level of a categorical
/// one (`genotype:b0_b0`, or R's `genotypeb0_b0`), or a product of those joined by `:`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSpec {
    /// The link as written (`log`, `identity`, `logit`, `mlogit`), if given; each place has
    /// its default (flexsurv's scale for a distribution's parameter).
    pub link: Option<String>,
    /// Intercept (a number, expression or distribution); 0 if not written.
    pub intercept: Num,
    /// (term, coefficient), in the order written.
    pub coefficients: Vec<(String, Num)>,
}

/// A number of a scenario and where it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Num {
    /// Byte range of the value in the scenario text (empty for numbers made in code).
    pub span: Range<usize>,
    /// What it is.
    pub kind: NumKind,
}

impl Num {
    /// A plain number (not written in any file).
    pub fn value(x: f64) -> Num {
        Num {
            span: 0..0,
            kind: NumKind::Value(x),
        }
    }

    /// The number, if it is written as a plain number.
    pub fn plain(&self) -> Option<f64> {
        match self.kind {
            NumKind::Value(x) => Some(x),
            _ => None,
        }
    }
}

impl Default for Num {
    fn default() -> Self {
        Num::value(0.0)
    }
}

impl From<f64> for Num {
    fn from(x: f64) -> Self {
        Num::value(x)
    }
}

/// Builds a [`DistSpec`] from the entries of a table (a `dist` key and numbers).
fn dist_from_entries<E: de::Error>(entries: Vec<(String, Num)>) -> Result<DistSpec, E> {
    let mut map = serde_json::Map::new();
    for (k, v) in entries {
        let value = match v.kind {
            NumKind::Value(x) => serde_json::json!(x),
            NumKind::Expr(s) if k == "dist" => serde_json::json!(s),
            NumKind::Expr(s) => {
                return Err(E::custom(format!(
                    "`{k}` = \"{s}\": the numbers of a distribution must be written as numbers"
                )))
            }
            NumKind::Dist(_) | NumKind::Linear(_) => {
                return Err(E::custom(format!(
                    "`{k}`: a distribution cannot be nested in a distribution"
                )))
            }
        };
        map.insert(k, value);
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| E::custom(e.to_string()))
}

/// A value inside a table written in place of a number: a number, or a table (a linear
/// predictor's `coefficients`, a distribution of its `intercept`, a cost category's table).
enum Entry {
    Num(Num),
    Table(Vec<(String, Entry)>, Range<usize>),
}

enum EntryKind {
    Num(NumKind),
    Table(Vec<(String, Entry)>),
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = EntryKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, a string, or a table of numbers")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<EntryKind, E> {
        Ok(EntryKind::Num(NumKind::Value(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<EntryKind, E> {
        Ok(EntryKind::Num(NumKind::Value(v as f64)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<EntryKind, E> {
        Ok(EntryKind::Num(NumKind::Value(v as f64)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<EntryKind, E> {
        Ok(EntryKind::Num(NumKind::Expr(v.to_string())))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EntryKind, A::Error> {
        Ok(EntryKind::Table(table_entries(map)?))
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct K(EntryKind);
        impl<'de> Deserialize<'de> for K {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(EntryVisitor).map(K)
            }
        }
        let s = toml::Spanned::<K>::deserialize(d)?;
        let span = s.span();
        Ok(match s.into_inner().0 {
            EntryKind::Num(kind) => Entry::Num(Num { span, kind }),
            EntryKind::Table(t) => Entry::Table(t, span),
        })
    }
}

/// Reads the entries of a table written in place of a number.
fn table_entries<'de, A: MapAccess<'de>>(mut map: A) -> Result<Vec<(String, Entry)>, A::Error> {
    let mut v = Vec::new();
    while let Some(k) = map.next_key::<String>()? {
        let e: Entry = map.next_value()?;
        v.push((k, e));
    }
    Ok(v)
}

/// The keys that make a table a linear predictor.
pub const LINEAR_KEYS: [&str; 3] = ["link", "intercept", "coefficients"];

/// Whether a table's keys make it a distribution or a linear predictor.
fn is_number_table(e: &[(String, Entry)]) -> bool {
    e.iter()
        .any(|(k, _)| k == "dist" || LINEAR_KEYS.contains(&k.as_str()))
}

/// A table written in place of a number: a distribution (a `dist` key), a linear predictor
/// (`link`, `intercept`, `coefficients`), or None (neither).
fn kind_from_table<E: de::Error>(e: Vec<(String, Entry)>) -> Result<Option<NumKind>, E> {
    if e.iter().any(|(k, _)| k == "dist") {
        let mut flat = Vec::new();
        for (k, v) in e {
            match v {
                Entry::Num(n) => flat.push((k, n)),
                Entry::Table(..) => {
                    return Err(E::custom(format!(
                        "`{k}`: a distribution cannot be nested in a distribution"
                    )))
                }
            }
        }
        return Ok(Some(NumKind::Dist(Box::new(dist_from_entries(flat)?))));
    }
    if !is_number_table(&e) {
        return Ok(None);
    }
    linear_from_entries(e).map(|l| Some(NumKind::Linear(Box::new(l))))
}

/// A value of a table as a number (`what` names it in messages).
fn entry_to_num<E: de::Error>(what: &str, v: Entry) -> Result<Num, E> {
    match v {
        Entry::Num(n) => Ok(n),
        Entry::Table(t, span) => match kind_from_table::<E>(t)? {
            Some(kind) => Ok(Num { span, kind }),
            None => Err(E::custom(format!("{what}: {EXPECTING}"))),
        },
    }
}

/// A number that is not itself a linear predictor (an intercept or coefficient).
fn plain_entry<E: de::Error>(what: &str, v: Entry) -> Result<Num, E> {
    let n = entry_to_num::<E>(what, v)?;
    if matches!(n.kind, NumKind::Linear(_)) {
        return Err(E::custom(format!(
            "{what}: a number, a parameter name or expression, or a distribution (not a linear predictor)"
        )));
    }
    Ok(n)
}

/// Builds a [`LinearSpec`] from the entries of a table.
fn linear_from_entries<E: de::Error>(e: Vec<(String, Entry)>) -> Result<LinearSpec, E> {
    let mut spec = LinearSpec {
        link: None,
        intercept: Num::value(0.0),
        coefficients: Vec::new(),
    };
    for (k, v) in e {
        match (k.as_str(), v) {
            (
                "link",
                Entry::Num(Num {
                    kind: NumKind::Expr(s),
                    ..
                }),
            ) => spec.link = Some(s),
            ("link", _) => {
                return Err(E::custom(
                    "`link` is a name in quotes: \"log\", \"identity\", \"logit\" or \"mlogit\"",
                ))
            }
            ("intercept", v) => spec.intercept = plain_entry("`intercept`", v)?,
            ("coefficients", Entry::Table(t, _)) => {
                for (term, n) in t {
                    let n = plain_entry(&format!("coefficient `{term}`"), n)?;
                    spec.coefficients.push((term, n));
                }
            }
            ("coefficients", Entry::Num(_)) => {
                return Err(E::custom(
                    "`coefficients` is a table of terms, e.g. { age = \"b_age\", \"genotype:b0_b0\" = 0.3 }",
                ))
            }
            (other, _) => {
                return Err(E::custom(format!(
                    "`{other}` is not a field of a linear predictor: link, intercept, coefficients"
                )))
            }
        }
    }
    Ok(spec)
}

const EXPECTING: &str = "a number, a parameter name or expression in quotes (e.g. \"c_drug * 2\"), or a distribution { dist = \"beta\", mean = .., se = .. }";

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NumKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumKind, E> {
        Ok(NumKind::Value(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumKind, E> {
        Ok(NumKind::Value(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumKind, E> {
        Ok(NumKind::Value(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NumKind, E> {
        Ok(NumKind::Expr(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NumKind, A::Error> {
        kind_from_table(table_entries(map)?)?.ok_or_else(|| {
            de::Error::custom(
                "a table in place of a number must be a distribution with a `dist` key, e.g. { dist = \"beta\", mean = 0.8, se = 0.05 }, or a linear predictor { link = .., intercept = .., coefficients = { .. } }",
            )
        })
    }
}

impl<'de> Deserialize<'de> for NumKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = toml::Spanned::<NumKind>::deserialize(d)?;
        Ok(Num {
            span: s.span(),
            kind: s.into_inner(),
        })
    }
}

impl Serialize for NumKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NumKind::Value(x) => s.serialize_f64(*x),
            NumKind::Expr(e) => s.serialize_str(e),
            NumKind::Dist(d) => d.serialize(s),
            NumKind::Linear(l) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                if let Some(link) = &l.link {
                    m.serialize_entry("link", link)?;
                }
                m.serialize_entry("intercept", &l.intercept)?;
                let terms: serde_json::Map<String, serde_json::Value> = l
                    .coefficients
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                    .collect();
                m.serialize_entry("coefficients", &terms)?;
                m.end()
            }
        }
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.kind.serialize(s)
    }
}

impl JsonSchema for Num {
    fn schema_name() -> Cow<'static, str> {
        "Number".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let dist = generator.subschema_for::<DistSpec>();
        json_schema!({
            "description": "A number, a parameter name or expression over [parameters] in quotes (\"c_drug + c_med\"), an in-place distribution { dist = ... }, or (in transition parameters, state costs, utilities, entry costs and initial probabilities) a linear predictor over patient characteristics { link = .., intercept = .., coefficients = { age = .., \"genotype:b0_b0\" = .. } }.",
            "anyOf": [
                { "type": "number" },
                { "type": "string" },
                dist,
                {
                    "type": "object",
                    "properties": {
                        "link": { "enum": ["identity", "log", "logit", "mlogit"] },
                        "intercept": { "anyOf": [{ "type": "number" }, { "type": "string" }, { "type": "object" }] },
                        "coefficients": {
                            "type": "object",
                            "additionalProperties": { "anyOf": [{ "type": "number" }, { "type": "string" }, { "type": "object" }] }
                        }
                    },
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A cost: one number, or named categories of numbers (`{ drug = 5000, medical = "c_med" }`)
/// reported apart as well as in total.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// Byte range of the value in the scenario text.
    pub span: Range<usize>,
    /// What it is.
    pub kind: CostKind,
}

/// A cost's form.
#[derive(Clone, Debug, PartialEq)]
pub enum CostKind {
    /// One number.
    Single(NumKind),
    /// Named categories, in the order written.
    Categories(Vec<(String, Num)>),
}

impl Cost {
    /// A plain cost (not written in any file).
    pub fn value(x: f64) -> Cost {
        Cost {
            span: 0..0,
            kind: CostKind::Single(NumKind::Value(x)),
        }
    }

    /// The parts of the cost: (category, number); one part with category `None` for a
    /// single number.
    pub fn parts(&self) -> Vec<(Option<&str>, Num)> {
        match &self.kind {
            CostKind::Single(k) => vec![(
                None,
                Num {
                    span: self.span.clone(),
                    kind: k.clone(),
                },
            )],
            CostKind::Categories(c) => c
                .iter()
                .map(|(k, n)| (Some(k.as_str()), n.clone()))
                .collect(),
        }
    }

    /// The number, if the cost is written as one plain number.
    pub fn plain(&self) -> Option<f64> {
        match self.kind {
            CostKind::Single(NumKind::Value(x)) => Some(x),
            _ => None,
        }
    }
}

impl Default for Cost {
    fn default() -> Self {
        Cost::value(0.0)
    }
}

struct CostVisitor;

impl<'de> Visitor<'de> for CostVisitor {
    type Value = CostKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{EXPECTING}, or a table of categories, e.g. {{ drug = 5000, medical = \"c_med\" }}"
        )
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<CostKind, E> {
        Ok(CostKind::Single(NumKind::Value(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<CostKind, E> {
        Ok(CostKind::Single(NumKind::Value(v as f64)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<CostKind, E> {
        Ok(CostKind::Single(NumKind::Value(v as f64)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<CostKind, E> {
        Ok(CostKind::Single(NumKind::Expr(v.to_string())))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CostKind, A::Error> {
        let e = table_entries(map)?;
        if is_number_table(&e) {
            return Ok(CostKind::Single(
                kind_from_table(e)?.expect("a number table is a number"),
            ));
        }
        let e: Vec<(String, Num)> = e
            .into_iter()
            .map(|(k, v)| entry_to_num(&format!("cost category `{k}`"), v).map(|n| (k, n)))
            .collect::<Result<_, _>>()?;
        if e.is_empty() {
            return Err(de::Error::custom(
                "an empty table: give a cost, or categories such as { drug = 5000, medical = 1200 }",
            ));
        }
        for (k, _) in &e {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(de::Error::custom(format!(
                    "cost category `{k}`: use letters, digits and _ (it becomes the metric cost_{k})"
                )));
            }
        }
        Ok(CostKind::Categories(e))
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct K(CostKind);
        impl<'de> Deserialize<'de> for K {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(CostVisitor).map(K)
            }
        }
        let s = toml::Spanned::<K>::deserialize(d)?;
        Ok(Cost {
            span: s.span(),
            kind: s.into_inner().0,
        })
    }
}

impl Serialize for Cost {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match &self.kind {
            CostKind::Single(k) => k.serialize(s),
            CostKind::Categories(c) => {
                let mut m = s.serialize_map(Some(c.len()))?;
                for (k, v) in c {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl JsonSchema for Cost {
    fn schema_name() -> Cow<'static, str> {
        "Cost".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let num = generator.subschema_for::<Num>();
        json_schema!({
            "description": "A cost (a number, expression or distribution), or named categories of costs reported apart: { drug = 5000, medical = \"c_med\" }.",
            "anyOf": [
                num,
                { "type": "object", "additionalProperties": num }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct W {
        x: Num,
        #[serde(default)]
        c: Option<Cost>,
    }

    fn parse(t: &str) -> Result<W, String> {
        toml::from_str::<W>(t).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_expressions_and_distributions_with_their_spans() {
        let w = parse("x = 3").unwrap();
        assert_eq!(w.x.kind, NumKind::Value(3.0));
        assert_eq!(w.x.span, 4..5);
        let w = parse("x = 0.25").unwrap();
        assert_eq!(w.x.plain(), Some(0.25));
        let w = parse("x = \"exp(b0)\"").unwrap();
        assert_eq!(w.x.kind, NumKind::Expr("exp(b0)".into()));
        assert_eq!(w.x.span, 4..13);
        let w = parse("x = { dist = \"beta\", mean = 0.8, se = 0.05 }").unwrap();
        let NumKind::Dist(d) = &w.x.kind else {
            panic!("{:?}", w.x)
        };
        assert_eq!(
            (d.dist.as_str(), d.mean, d.se),
            ("beta", Some(0.8), Some(0.05))
        );
        assert_eq!(w.x.span.start, 4);
    }

    #[test]
    fn bad_tables_say_what_is_allowed() {
        assert!(parse("x = { mean = 1 }")
            .unwrap_err()
            .contains("`dist` key"));
        let e = parse("x = { dist = \"beta\", mean = 0.8, sd = 0.1, bogus = 1 }").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = parse("x = { dist = \"beta\", mean = \"m\", se = 0.1 }").unwrap_err();
        assert!(e.contains("written as numbers"), "{e}");
        assert!(parse("x = [1]")
            .unwrap_err()
            .contains("a number, a parameter name"));
    }

    #[test]
    fn costs_are_single_or_categories() {
        let w = parse("x = 1\nc = 5000").unwrap();
        assert_eq!(w.c.unwrap().plain(), Some(5000.0));
        let w = parse("x = 1\nc = { drug = 5000, medical = \"c_med\" }").unwrap();
        let c = w.c.unwrap();
        let parts = c.parts();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, Some("drug"));
        assert_eq!(parts[0].1.kind, NumKind::Value(5000.0));
        assert_eq!(parts[1].1.kind, NumKind::Expr("c_med".into()));
        let w = parse("x = 1\nc = { dist = \"gamma\", mean = 10, se = 2 }").unwrap();
        assert!(matches!(
            w.c.unwrap().kind,
            CostKind::Single(NumKind::Dist(_))
        ));
        let e = parse("x = 1\nc = { \"drug cost\" = 1 }").unwrap_err();
        assert!(e.contains("letters, digits and _"), "{e}");
    }
}
