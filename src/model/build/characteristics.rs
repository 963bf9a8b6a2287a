//! `[population]`'s characteristics beyond sex and age: the patient table, declared
//! characteristics (continuous, categorical, by age band, bands of another), their
//! multivariate normal with age, and the subgroups reported.

use super::{unknown_name, Checker, Data};
use crate::model::characteristics::{
    cumulative_shares, Characteristics, Continuous, Correlation, Draw, Kind, PatientTable,
    RawColumn, RawTable, AGE, BUILT_IN, FEMALE, MAX_CORRELATED, SEX,
};
use crate::model::population::AgeModel;
use crate::scenario::{Characteristic, Num, PatientSampling, Scenario};
use std::collections::HashMap;
use std::sync::Arc;

/// Whether `name` may name a characteristic (it appears in terms and column names).
fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every characteristic of the population, checked.
pub(super) fn characteristics(
    ck: &mut Checker,
    sc: &Scenario,
    data: &Data,
    age: &AgeModel,
) -> Characteristics {
    let mut c = Characteristics::default();
    if let (Some(spec), Some(raw)) = (&sc.population.patients, &data.patients) {
        let table = patient_table(ck, &mut c, raw, spec.sampling);
        c.table = table.map(Arc::new);
    }
    let mut correlated: Vec<String> = Vec::new();
    if let Some(cor) = &sc.population.correlation {
        correlated = cor.names.clone();
    }
    let mut joint = HashMap::new();
    for (i, ch) in sc.population.characteristics.iter().enumerate() {
        let f = format!("population.characteristics[{i}]");
        let into = correlated.contains(&ch.name).then_some(&mut joint);
        declared(ck, &mut c, ch, &f, into);
    }
    if let Some(cor) = &sc.population.correlation {
        c.correlation = correlation(ck, &c, sc, cor, age, &joint);
    }
    subgroups(ck, &mut c, &sc.population.subgroups);
    c
}

/// Registers a new covariate (checking its name), returning its index.
fn register(
    ck: &mut Checker,
    c: &mut Characteristics,
    field: &str,
    name: &str,
    kind: Kind,
) -> Option<usize> {
    if !valid_name(name) {
        ck.error(
            field,
            format!("`{name}` is not allowed as a characteristic's name: letters, digits and _, starting with a letter or _"),
        );
        return None;
    }
    if BUILT_IN.contains(&name) {
        ck.error(
            field,
            format!("`{name}` is built in (age at treatment, female = 1 or 0, sex = female or male): give it with `age`/`age_distribution` and `share_female`, or as a patient table column"),
        );
        return None;
    }
    if c.index(name).is_some() {
        ck.error(field, format!("characteristic `{name}` is defined twice (a patient table column and a [[population.characteristics]] entry, or two entries)"));
        return None;
    }
    c.names.push(name.to_string());
    c.kinds.push(kind);
    Some(c.names.len() - 1)
}

/// The patient table's columns as covariates.
fn patient_table(
    ck: &mut Checker,
    c: &mut Characteristics,
    raw: &RawTable,
    sampling: PatientSampling,
) -> Option<PatientTable> {
    let f = "population.patients.file";
    let mut columns = Vec::new();
    let mut values: Vec<Vec<f64>> = Vec::new();
    let (mut has_age, mut has_sex) = (false, false);
    for (name, col) in &raw.columns {
        match (name.as_str(), col) {
            ("age", RawColumn::Numbers(v)) => {
                if let Some(a) = v.iter().find(|a| !(0.0..=150.0).contains(*a)) {
                    ck.error(f, format!("column `age`: {a} is not an age in [0, 150]"));
                }
                has_age = true;
                columns.push(AGE);
                values.push(v.clone());
            }
            ("female", RawColumn::Numbers(v)) | ("sex", RawColumn::Numbers(v)) => {
                if let Some(x) = v.iter().find(|x| **x != 0.0 && **x != 1.0) {
                    ck.error(f, format!("column `{name}`: {x} is not allowed: `female` is 1 (female) or 0 (male)"));
                }
                let female: Vec<f64> = if name == "female" {
                    v.clone()
                } else {
                    v.iter().map(|x| 1.0 - x).collect()
                };
                if name == "sex" {
                    ck.error(f, "column `sex` holds numbers: write female/male, or name the column `female` (1 = female, 0 = male)");
                }
                push_sex(&mut columns, &mut values, &female, &mut has_sex, ck, f);
            }
            ("sex", RawColumn::Text(v)) => {
                let mut female = Vec::with_capacity(v.len());
                for (r, s) in v.iter().enumerate() {
                    match s.to_ascii_lowercase().as_str() {
                        "female" | "f" => female.push(1.0),
                        "male" | "m" => female.push(0.0),
                        _ => {
                            ck.error(
                                f,
                                format!(
                                    "row {}, column `sex`: `{s}` is not allowed: female or male",
                                    r + 2
                                ),
                            );
                            female.push(0.0);
                        }
                    }
                }
                push_sex(&mut columns, &mut values, &female, &mut has_sex, ck, f);
            }
            ("age" | "female", RawColumn::Text(v)) => {
                let bad = v
                    .iter()
                    .find(|x| x.parse::<f64>().is_err())
                    .cloned()
                    .unwrap_or_default();
                ck.error(f, format!("column `{name}`: `{bad}` is not a number"));
            }
            (_, RawColumn::Numbers(v)) => {
                if let Some(k) = register(ck, c, f, name, Kind::Continuous) {
                    columns.push(k);
                    values.push(v.clone());
                }
            }
            (_, RawColumn::Text(v)) => {
                let mut levels: Vec<String> = v.clone();
                levels.sort();
                levels.dedup();
                let codes = v
                    .iter()
                    .map(|x| levels.binary_search(x).unwrap_or(0) as f64)
                    .collect();
                if let Some(k) = register(ck, c, f, name, Kind::Categorical(levels)) {
                    columns.push(k);
                    values.push(codes);
                }
            }
        }
    }
    let cumulative = match (sampling, &raw.weights) {
        (PatientSampling::Weighted, Some(w)) => cumulative_shares(w),
        (PatientSampling::Weighted, None) => cumulative_shares(&vec![1.0; raw.rows]),
        (PatientSampling::Each, None) => Vec::new(),
        (PatientSampling::Each, Some(_)) => {
            ck.error(
                "population.patients.weight_column",
                "with sampling = \"each\" every profile is taken in turn, so weights do not apply: use sampling = \"weighted\", or repeat rows",
            );
            Vec::new()
        }
    };
    let w = columns.len();
    let mut flat = vec![0.0; raw.rows * w];
    for (k, col) in values.iter().enumerate() {
        for (r, v) in col.iter().enumerate() {
            flat[r * w + k] = *v;
        }
    }
    Some(PatientTable {
        rows: raw.rows,
        columns,
        values: flat,
        cumulative,
        has_age,
        has_sex,
    })
}

/// The `female` and `sex` covariates of a table.
fn push_sex(
    columns: &mut Vec<usize>,
    values: &mut Vec<Vec<f64>>,
    female: &[f64],
    has_sex: &mut bool,
    ck: &mut Checker,
    f: &str,
) {
    if *has_sex {
        ck.error(
            f,
            "the table gives the sex twice (columns `sex` and `female`): keep one",
        );
        return;
    }
    *has_sex = true;
    columns.push(FEMALE);
    values.push(female.to_vec());
    columns.push(SEX);
    values.push(female.iter().map(|x| 1.0 - x).collect());
}

/// The fields of a characteristic that are given, by name.
fn given(ch: &Characteristic) -> Vec<&'static str> {
    let mut v = Vec::new();
    let opt = [
        ("mean", ch.mean.is_some()),
        ("sd", ch.sd.is_some()),
        ("meanlog", ch.meanlog.is_some()),
        ("sdlog", ch.sdlog.is_some()),
        ("shape", ch.shape.is_some()),
        ("rate", ch.rate.is_some()),
        ("min", ch.min.is_some()),
        ("max", ch.max.is_some()),
        ("levels", !ch.levels.is_empty()),
        ("shares", !ch.shares.is_empty()),
        ("shares_by_age", ch.shares_by_age.is_some()),
        ("cut", ch.cut.is_some()),
        ("breaks", !ch.breaks.is_empty()),
    ];
    for (k, g) in opt {
        if g {
            v.push(k);
        }
    }
    v
}

/// Refuses fields that do not apply to this kind of characteristic.
fn only(ck: &mut Checker, ch: &Characteristic, f: &str, what: &str, allowed: &[&str]) {
    for k in given(ch) {
        if !allowed.contains(&k) {
            ck.error(
                &format!("{f}.{k}"),
                format!(
                    "`{k}` does not apply to {what}; its fields: {}",
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// A required number of a characteristic.
fn need(ck: &mut Checker, f: &str, key: &str, n: &Option<Num>, what: &str) -> f64 {
    match n {
        Some(n) => ck.num(&format!("{f}.{key}"), n),
        None => {
            ck.error(f, format!("{what} needs `{key}`"));
            f64::NAN
        }
    }
}

/// One declared characteristic.
/// A characteristic in `population.correlation` is not drawn alone: its distribution goes
/// into `joint`.
fn declared(
    ck: &mut Checker,
    c: &mut Characteristics,
    ch: &Characteristic,
    f: &str,
    joint: Option<&mut HashMap<String, Continuous>>,
) {
    let kinds = [
        ch.family.is_some(),
        !ch.levels.is_empty() && ch.cut.is_none(),
        ch.cut.is_some(),
    ];
    if kinds.iter().filter(|&&k| k).count() != 1 {
        ck.error(
            f,
            format!("characteristic `{}`: give a continuous distribution (`family`), categorical `levels` with `shares` or `shares_by_age`, or bands of another characteristic (`cut`, `breaks`, `levels`)", ch.name),
        );
        return;
    }
    if let Some(d) = &ch.family {
        let Some((dist, min, max)) = continuous(ck, ch, f, d) else {
            return;
        };
        let Some(k) = register(ck, c, &format!("{f}.name"), &ch.name, Kind::Continuous) else {
            return;
        };
        if let Some(joint) = joint {
            if ch.min.is_some() || ch.max.is_some() {
                ck.error(f, format!("`{}` is in population.correlation, so it cannot be truncated (only the age at treatment can: the multivariate normal is then conditioned on it); use a patient table for other truncated joint distributions", ch.name));
            }
            joint.insert(ch.name.clone(), dist);
            c.draws.push((k, Draw::Correlated));
            return;
        }
        let bounds = match dist {
            Continuous::Uniform => (0.0, 1.0),
            ref d => (d.cdf(min), d.cdf(max)),
        };
        if bounds.1 <= bounds.0 || bounds.0.is_nan() || bounds.1.is_nan() {
            ck.error(
                f,
                format!(
                    "characteristic `{}` has no probability between min = {min} and max = {max}",
                    ch.name
                ),
            );
        }
        c.draws.push((
            k,
            Draw::Continuous {
                dist,
                min,
                max,
                bounds,
            },
        ));
    } else if let Some(of) = &ch.cut {
        cut(ck, c, ch, f, of);
    } else {
        categorical(ck, c, ch, f);
    }
}

/// A continuous distribution and its bounds.
fn continuous(
    ck: &mut Checker,
    ch: &Characteristic,
    f: &str,
    d: &str,
) -> Option<(Continuous, f64, f64)> {
    let what = format!("a {d} characteristic");
    let lo = ck.opt(&format!("{f}.min"), &ch.min);
    let hi = ck.opt(&format!("{f}.max"), &ch.max);
    let dist = match d {
        "normal" => {
            only(ck, ch, f, &what, &["mean", "sd", "min", "max"]);
            let mean = need(ck, f, "mean", &ch.mean, &what);
            let sd = need(ck, f, "sd", &ch.sd, &what);
            ck.finite(&format!("{f}.mean"), mean);
            ck.positive(&format!("{f}.sd"), sd);
            Continuous::Normal { mean, sd }
        }
        "lognormal" => {
            only(
                ck,
                ch,
                f,
                &what,
                &["meanlog", "sdlog", "mean", "sd", "min", "max"],
            );
            let (meanlog, sdlog) = if ch.mean.is_some() || ch.sd.is_some() {
                let m = need(ck, f, "mean", &ch.mean, &what);
                let s = need(ck, f, "sd", &ch.sd, &what);
                ck.positive(&format!("{f}.mean"), m);
                ck.positive(&format!("{f}.sd"), s);
                let v = (1.0 + (s / m).powi(2)).ln();
                (m.ln() - v / 2.0, v.sqrt())
            } else {
                let ml = need(ck, f, "meanlog", &ch.meanlog, &what);
                let sl = need(ck, f, "sdlog", &ch.sdlog, &what);
                ck.finite(&format!("{f}.meanlog"), ml);
                ck.positive(&format!("{f}.sdlog"), sl);
                (ml, sl)
            };
            Continuous::LogNormal { meanlog, sdlog }
        }
        "gamma" => {
            only(
                ck,
                ch,
                f,
                &what,
                &["shape", "rate", "mean", "sd", "min", "max"],
            );
            let (shape, rate) = if ch.mean.is_some() || ch.sd.is_some() {
                let m = need(ck, f, "mean", &ch.mean, &what);
                let s = need(ck, f, "sd", &ch.sd, &what);
                ck.positive(&format!("{f}.mean"), m);
                ck.positive(&format!("{f}.sd"), s);
                ((m / s).powi(2), m / (s * s))
            } else {
                let a = need(ck, f, "shape", &ch.shape, &what);
                let r = need(ck, f, "rate", &ch.rate, &what);
                ck.positive(&format!("{f}.shape"), a);
                ck.positive(&format!("{f}.rate"), r);
                (a, r)
            };
            Continuous::Gamma { shape, rate }
        }
        "uniform" => {
            only(ck, ch, f, &what, &["min", "max"]);
            if lo.is_none() || hi.is_none() {
                ck.error(f, "a uniform characteristic needs `min` and `max`");
                return None;
            }
            Continuous::Uniform
        }
        other => {
            ck.error(
                &format!("{f}.family"),
                format!("`{other}` is not a characteristic's distribution: normal, lognormal, gamma, uniform"),
            );
            return None;
        }
    };
    let floor = match dist {
        Continuous::Normal { .. } | Continuous::Uniform => f64::NEG_INFINITY,
        _ => 0.0,
    };
    let (min, max) = (lo.unwrap_or(floor), hi.unwrap_or(f64::INFINITY));
    if let Some(m) = lo {
        ck.finite(&format!("{f}.min"), m);
    }
    if let Some(m) = hi {
        ck.finite(&format!("{f}.max"), m);
    }
    if min >= max {
        ck.error(&format!("{f}.max"), format!("{max} must be > min ({min})"));
    }
    Some((dist, min, max))
}

/// Shares over levels, checked to be >= 0 and to sum to 1.
fn shares(ck: &mut Checker, f: &str, v: &[Num], levels: usize) -> Vec<f64> {
    let s = ck.list(f, v);
    if s.len() != levels {
        ck.error(
            f,
            format!(
                "{} shares for {levels} levels: give one share per level",
                s.len()
            ),
        );
    }
    for (k, x) in s.iter().enumerate() {
        ck.range(&format!("{f}[{k}]"), *x, 0.0, 1.0, "a share in [0, 1]");
    }
    let total: f64 = s.iter().sum();
    if (total - 1.0).abs() > super::INITIAL_SUM_TOLERANCE {
        ck.error(
            f,
            format!(
                "the shares sum to {}; they must sum to 1",
                super::rounded(total)
            ),
        );
    }
    s
}

/// Levels, checked to be distinct names.
fn levels(ck: &mut Checker, ch: &Characteristic, f: &str, at_least: usize) -> bool {
    if ch.levels.len() < at_least {
        ck.error(
            &format!("{f}.levels"),
            format!(
                "characteristic `{}` needs at least {at_least} levels",
                ch.name
            ),
        );
        return false;
    }
    for (k, l) in ch.levels.iter().enumerate() {
        if ch.levels[..k].contains(l) {
            ck.error(
                &format!("{f}.levels[{k}]"),
                format!("level `{l}` is given twice"),
            );
            return false;
        }
        if l.is_empty() || l.contains(':') {
            ck.error(
                &format!("{f}.levels[{k}]"),
                format!("level `{l}` is not allowed: not empty, without `:` (it joins terms)"),
            );
            return false;
        }
    }
    true
}

/// A categorical characteristic: shares, or shares by age band.
fn categorical(ck: &mut Checker, c: &mut Characteristics, ch: &Characteristic, f: &str) {
    only(
        ck,
        ch,
        f,
        "a categorical characteristic",
        &["levels", "shares", "shares_by_age"],
    );
    if !levels(ck, ch, f, 1) {
        return;
    }
    let n = ch.levels.len();
    let draw = match (&ch.shares[..], &ch.shares_by_age) {
        (s, None) if !s.is_empty() => Draw::Categorical {
            cumulative: cumulative_shares(&shares(ck, &format!("{f}.shares"), s, n)),
        },
        ([], Some(by)) => {
            let bf = format!("{f}.shares_by_age");
            let ages = ck.list(&format!("{bf}.ages"), &by.ages);
            if ages.windows(2).any(|w| w[1] <= w[0]) {
                ck.error(
                    &format!("{bf}.ages"),
                    "the ages must be strictly increasing",
                );
            }
            if by.shares.len() != ages.len() + 1 {
                ck.error(&format!("{bf}.shares"), format!("{} rows of shares for {} age bands (one more than the {} ages): give one row per band", by.shares.len(), ages.len() + 1, ages.len()));
            }
            let cumulative = by
                .shares
                .iter()
                .enumerate()
                .map(|(k, row)| {
                    cumulative_shares(&shares(ck, &format!("{bf}.shares[{k}]"), row, n))
                })
                .collect();
            Draw::ByAge { ages, cumulative }
        }
        _ => {
            ck.error(f, format!("characteristic `{}`: give `shares` (one per level) or `shares_by_age`, one of them", ch.name));
            return;
        }
    };
    if let Some(k) = register(
        ck,
        c,
        &format!("{f}.name"),
        &ch.name,
        Kind::Categorical(ch.levels.clone()),
    ) {
        c.draws.push((k, draw));
    }
}

/// Bands of another characteristic.
fn cut(ck: &mut Checker, c: &mut Characteristics, ch: &Characteristic, f: &str, of: &str) {
    only(
        ck,
        ch,
        f,
        "bands of a characteristic",
        &["cut", "breaks", "levels"],
    );
    let known: Vec<&str> = c
        .names
        .iter()
        .zip(&c.kinds)
        .filter(|(_, k)| **k == Kind::Continuous)
        .map(|(n, _)| n.as_str())
        .collect();
    let Some(from) = c.index(of).filter(|&k| c.kinds[k] == Kind::Continuous) else {
        ck.error(
            &format!("{f}.cut"),
            unknown_name(
                of,
                "a continuous characteristic defined before this one",
                "they are",
                &known,
            ),
        );
        return;
    };
    let breaks = ck.list(&format!("{f}.breaks"), &ch.breaks);
    if breaks.is_empty() || breaks.windows(2).any(|w| w[1] <= w[0]) {
        ck.error(
            &format!("{f}.breaks"),
            "give one or more break points, strictly increasing",
        );
    }
    if !levels(ck, ch, f, 2) {
        return;
    }
    if ch.levels.len() != breaks.len() + 1 {
        ck.error(&format!("{f}.levels"), format!("{} levels for {} breaks: give one more level than breaks (level k covers [breaks[k-1], breaks[k]))", ch.levels.len(), breaks.len()));
    }
    if let Some(k) = register(
        ck,
        c,
        &format!("{f}.name"),
        &ch.name,
        Kind::Categorical(ch.levels.clone()),
    ) {
        c.draws.push((k, Draw::Cut { of: from, breaks }));
    }
}

/// The multivariate normal of `population.correlation`.
fn correlation(
    ck: &mut Checker,
    c: &Characteristics,
    sc: &Scenario,
    cor: &crate::scenario::Correlation,
    age: &AgeModel,
    joint: &HashMap<String, Continuous>,
) -> Option<Correlation> {
    let f = "population.correlation";
    let n = cor.names.len();
    if !(2..=MAX_CORRELATED).contains(&n) {
        ck.error(
            &format!("{f}.names"),
            format!("between 2 and {MAX_CORRELATED} names"),
        );
        return None;
    }
    let mut members = Vec::new();
    let mut dists = Vec::new();
    for (k, name) in cor.names.iter().enumerate() {
        let nf = format!("{f}.names[{k}]");
        if cor.names[..k].contains(name) {
            ck.error(&nf, format!("`{name}` is given twice"));
            return None;
        }
        if name == "age" {
            let AgeModel::Normal { mean, sd, .. } = *age else {
                ck.error(&nf, "age is in the correlation, so the age at treatment must be normal: age_distribution = { family = \"normal\", .. }");
                return None;
            };
            if sc.population.patients.is_some() && c.table.as_ref().is_some_and(|t| t.has_age) {
                ck.error(
                    &nf,
                    "the patient table gives the age, so it cannot be drawn in a correlation",
                );
                return None;
            }
            members.push(AGE);
            dists.push(Continuous::Normal { mean, sd });
            continue;
        }
        let declared = sc
            .population
            .characteristics
            .iter()
            .find(|ch| &ch.name == name);
        let normal =
            declared.is_some_and(|ch| matches!(ch.family.as_deref(), Some("normal" | "lognormal")));
        if !normal {
            ck.error(&nf, format!("`{name}` is not a normal or lognormal characteristic of [[population.characteristics]] (or `age`): only those can be correlated"));
            return None;
        }
        // Otherwise its own error is reported already.
        let (Some(d), Some(k_cov)) = (joint.get(name), c.index(name)) else {
            return None;
        };
        members.push(k_cov);
        dists.push(d.clone());
    }
    let m = &cor.matrix;
    if m.len() != n || m.iter().any(|r| r.len() != n) {
        ck.error(
            &format!("{f}.matrix"),
            format!("the matrix must be {n} x {n} (one row and column per name)"),
        );
        return None;
    }
    for (i, row) in m.iter().enumerate() {
        if (row[i] - 1.0).abs() > 1e-12 {
            ck.error(
                &format!("{f}.matrix[{i}]"),
                format!(
                    "{} on the diagonal: a correlation matrix has ones there",
                    row[i]
                ),
            );
            return None;
        }
        if let Some(x) = row.iter().find(|x| !(-1.0..=1.0).contains(*x)) {
            ck.error(
                &format!("{f}.matrix[{i}]"),
                format!("{x} is not a correlation in [-1, 1]"),
            );
            return None;
        }
    }
    // Age first: then its deviate is the first of the factor, and truncating the age
    // conditions the others on it exactly.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&k| members[k] != AGE);
    let reordered: Vec<Vec<f64>> = order
        .iter()
        .map(|&i| order.iter().map(|&j| m[i][j]).collect())
        .collect();
    let factor = match crate::params::psd_factor(&reordered) {
        Ok(l) => l,
        Err(e) => {
            ck.error(
                &format!("{f}.matrix"),
                e.replace("covariance", "correlation"),
            );
            return None;
        }
    };
    Some(Correlation {
        members: order.iter().map(|&k| members[k]).collect(),
        factor,
        dists: order.iter().map(|&k| dists[k].clone()).collect(),
    })
}

/// The subgroups: categorical characteristics (or `sex`), each once.
fn subgroups(ck: &mut Checker, c: &mut Characteristics, names: &[String]) {
    for (k, name) in names.iter().enumerate() {
        let f = format!("population.subgroups[{k}]");
        let categorical: Vec<&str> = c
            .names
            .iter()
            .zip(&c.kinds)
            .filter(|(_, k)| matches!(k, Kind::Categorical(_)))
            .map(|(n, _)| n.as_str())
            .collect();
        match c
            .index(name)
            .filter(|&i| matches!(c.kinds[i], Kind::Categorical(_)))
        {
            Some(i) if c.subgroups.contains(&i) => {
                ck.error(&f, format!("subgroup `{name}` is given twice"))
            }
            Some(i) => c.subgroups.push(i),
            None => ck.error(
                &f,
                unknown_name(
                    name,
                    "a categorical characteristic",
                    "categorical characteristics",
                    &categorical,
                ),
            ),
        }
    }
}
