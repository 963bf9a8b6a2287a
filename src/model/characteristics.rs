//! Patient characteristics beyond sex and age (covariates): continuous and categorical
//! distributions, a multivariate normal with age, bands of another characteristic, and
//! patient tables.
//!
//! Every patient has a covariate vector `x` (one `f64` per characteristic, in the order of
//! [`Characteristics::names`]): `x[AGE]` is the age at treatment, `x[FEMALE]` is 1 for a
//! woman, `x[SEX]` is the level of `sex` (0 female, 1 male), then the patient table's columns
//! and the declared characteristics. A categorical characteristic holds its level's index.
//!
//! Draws (stream 0, after sex, age and the background-death exponential, so that scenarios
//! without characteristics keep their streams): one uniform to pick a patient table row,
//! then one uniform per declared characteristic in the order written (bands draw none).
//! Every draw is by inversion, so each characteristic takes exactly one uniform.

use super::special::{gamma_p, gamma_p_inv, norm_cdf, norm_quantile};
use crate::rng::{uniform_open, PatientRng};

/// Index of the age at treatment in a covariate vector.
pub const AGE: usize = 0;
/// Index of the indicator of a woman (1) or man (0).
pub const FEMALE: usize = 1;
/// Index of `sex` as a categorical characteristic (levels female, male).
pub const SEX: usize = 2;
/// Most members of a multivariate normal.
pub const MAX_CORRELATED: usize = 16;
/// The built-in characteristics.
pub const BUILT_IN: [&str; 3] = ["age", "female", "sex"];

/// What a characteristic's values are.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A number.
    Continuous,
    /// One of these levels (the value is the level's index).
    Categorical(Vec<String>),
}

/// A continuous distribution, truncated to `[min, max]`, sampled by inversion.
#[derive(Clone, Debug, PartialEq)]
pub enum Continuous {
    /// Normal(mean, sd).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        sd: f64,
    },
    /// exp of Normal(meanlog, sdlog).
    LogNormal {
        /// Mean of the log.
        meanlog: f64,
        /// SD of the log.
        sdlog: f64,
    },
    /// Gamma(shape, rate).
    Gamma {
        /// Shape.
        shape: f64,
        /// Rate.
        rate: f64,
    },
    /// Uniform on [min, max].
    Uniform,
}

impl Continuous {
    /// The distribution function.
    pub fn cdf(&self, x: f64) -> f64 {
        match *self {
            Continuous::Normal { mean, sd } => norm_cdf((x - mean) / sd),
            Continuous::LogNormal { meanlog, sdlog } => {
                if x <= 0.0 {
                    0.0
                } else {
                    norm_cdf((x.ln() - meanlog) / sdlog)
                }
            }
            Continuous::Gamma { shape, rate } => {
                if x <= 0.0 {
                    0.0
                } else if x.is_infinite() {
                    1.0
                } else {
                    gamma_p(shape, rate * x)
                }
            }
            Continuous::Uniform => f64::NAN,
        }
    }

    /// The quantile function.
    pub fn quantile(&self, p: f64) -> f64 {
        match *self {
            Continuous::Normal { mean, sd } => mean + sd * norm_quantile(p),
            Continuous::LogNormal { meanlog, sdlog } => (meanlog + sdlog * norm_quantile(p)).exp(),
            Continuous::Gamma { shape, rate } => gamma_p_inv(shape, p) / rate,
            Continuous::Uniform => f64::NAN,
        }
    }

    /// The value for the standard normal deviate `z` (normal and lognormal only).
    pub fn from_z(&self, z: f64) -> f64 {
        match *self {
            Continuous::Normal { mean, sd } => mean + sd * z,
            Continuous::LogNormal { meanlog, sdlog } => (meanlog + sdlog * z).exp(),
            _ => f64::NAN,
        }
    }
}

/// How one declared characteristic gets its value.
#[derive(Clone, Debug, PartialEq)]
pub enum Draw {
    /// Independently, by inversion within `[F(min), F(max)]`.
    Continuous {
        /// Its distribution.
        dist: Continuous,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// F(min) and F(max).
        bounds: (f64, f64),
    },
    /// As a member of the multivariate normal ([`Characteristics::correlation`]): its
    /// standard normal deviate is drawn here, its value set once all are drawn.
    Correlated,
    /// A level, by cumulative shares.
    Categorical {
        /// Cumulative shares (the last is 1).
        cumulative: Vec<f64>,
    },
    /// A level by cumulative shares in the patient's band of age at treatment.
    ByAge {
        /// Ages where a band starts (after the first).
        ages: Vec<f64>,
        /// Cumulative shares per band.
        cumulative: Vec<Vec<f64>>,
    },
    /// The band of another characteristic (no draw).
    Cut {
        /// Covariate index of the characteristic cut.
        of: usize,
        /// Break points.
        breaks: Vec<f64>,
    },
}

/// A multivariate normal over standard normal deviates: `z = L w`, `w` independent.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlation {
    /// Covariate indices, age first when it is a member.
    pub members: Vec<usize>,
    /// Lower-triangular factor of the correlation matrix (rows in `members` order).
    pub factor: Vec<Vec<f64>>,
    /// Each member's distribution (normal or lognormal; for age, its normal).
    pub dists: Vec<Continuous>,
}

/// A table of patient profiles.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientTable {
    /// Number of profiles.
    pub rows: usize,
    /// Covariate index of each column held (age, female and sex included when given).
    pub columns: Vec<usize>,
    /// Values, row-major (`rows × columns.len()`).
    pub values: Vec<f64>,
    /// Cumulative weights, normalised (the last is 1); empty when profiles are taken in turn.
    pub cumulative: Vec<f64>,
    /// Whether the table gives the age at treatment.
    pub has_age: bool,
    /// Whether the table gives the sex.
    pub has_sex: bool,
}

impl PatientTable {
    /// The profile of patient `index` (with uniform `u`): by weight, or in turn.
    pub fn row(&self, index: u64, u: f64) -> usize {
        if self.cumulative.is_empty() {
            (index % self.rows as u64) as usize
        } else {
            self.cumulative
                .partition_point(|&c| c < u)
                .min(self.rows - 1)
        }
    }

    /// The youngest and oldest ages of the table.
    pub fn age_range(&self) -> Option<(f64, f64)> {
        let k = self.columns.iter().position(|&c| c == AGE)?;
        let w = self.columns.len();
        let ages = (0..self.rows).map(|r| self.values[r * w + k]);
        Some(
            ages.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), a| {
                (lo.min(a), hi.max(a))
            }),
        )
    }
}

/// The population's characteristics beyond the three built-in ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Characteristics {
    /// Name of each covariate (the built-in ones first).
    pub names: Vec<String>,
    /// What each covariate's values are.
    pub kinds: Vec<Kind>,
    /// The declared characteristics: (covariate index, how it is drawn), in draw order.
    pub draws: Vec<(usize, Draw)>,
    /// The multivariate normal, if any.
    pub correlation: Option<Correlation>,
    /// The patient table, if any.
    pub table: Option<std::sync::Arc<PatientTable>>,
    /// Categorical covariates reported apart (subgroups).
    pub subgroups: Vec<usize>,
}

impl Default for Characteristics {
    fn default() -> Self {
        Characteristics {
            names: BUILT_IN.iter().map(|s| s.to_string()).collect(),
            kinds: vec![
                Kind::Continuous,
                Kind::Continuous,
                Kind::Categorical(vec!["female".into(), "male".into()]),
            ],
            draws: Vec::new(),
            correlation: None,
            table: None,
            subgroups: Vec::new(),
        }
    }
}

/// Cumulative sums of shares, normalised so that the last is exactly 1.
pub fn cumulative_shares(shares: &[f64]) -> Vec<f64> {
    let total: f64 = shares.iter().sum();
    let mut acc = 0.0;
    let mut c: Vec<f64> = shares
        .iter()
        .map(|s| {
            acc += s;
            acc / total
        })
        .collect();
    if let Some(last) = c.last_mut() {
        *last = 1.0;
    }
    c
}

/// The level of uniform `u` under cumulative shares.
fn level(cumulative: &[f64], u: f64) -> f64 {
    cumulative
        .partition_point(|&c| c < u)
        .min(cumulative.len() - 1) as f64
}

/// The band of `v` under `breaks` (band k: `[breaks[k-1], breaks[k])`).
fn band(breaks: &[f64], v: f64) -> usize {
    breaks.partition_point(|&b| b <= v)
}

impl Characteristics {
    /// Whether there is anything beyond sex and age (otherwise nothing is drawn).
    pub fn is_empty(&self) -> bool {
        self.draws.is_empty() && self.table.is_none()
    }

    /// The levels of categorical covariate `k` (none for a continuous one).
    pub fn levels(&self, k: usize) -> &[String] {
        match &self.kinds[k] {
            Kind::Categorical(l) => l,
            Kind::Continuous => &[],
        }
    }

    /// Number of subgroup levels over all subgroups (one tally each).
    pub fn subgroup_levels(&self) -> usize {
        self.subgroups.iter().map(|&c| self.levels(c).len()).sum()
    }

    /// The subgroup level (of all, numbered subgroup by subgroup) of covariates `x` for the
    /// `k`-th subgroup.
    pub fn subgroup_of(&self, k: usize, x: &[f64]) -> usize {
        let offset: usize = self.subgroups[..k]
            .iter()
            .map(|&c| self.levels(c).len())
            .sum();
        offset + x[self.subgroups[k]] as usize
    }

    /// The label of each subgroup level, `name=level`, in tally order.
    pub fn subgroup_labels(&self) -> Vec<String> {
        self.subgroups
            .iter()
            .flat_map(|&c| {
                self.levels(c)
                    .iter()
                    .map(move |l| format!("{}={l}", self.names[c]))
            })
            .collect()
    }

    /// Index of a covariate by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Draws patient `index`'s characteristics into `x` (sized to [`Self::names`]), given
    /// the built-in ones already in `x` and `age_z`, the standard normal deviate of a normal
    /// age (NaN otherwise). A patient table's age and sex replace the built-in ones.
    pub fn draw(&self, index: u64, age_z: f64, rng: &mut PatientRng, x: &mut [f64]) {
        if let Some(t) = &self.table {
            let r = t.row(index, uniform_open(rng));
            let w = t.columns.len();
            for (k, &c) in t.columns.iter().enumerate() {
                x[c] = t.values[r * w + k];
            }
        }
        let mut z = [0.0f64; MAX_CORRELATED];
        for (c, draw) in &self.draws {
            match draw {
                Draw::Continuous {
                    dist,
                    min,
                    max,
                    bounds: (lo, hi),
                } => {
                    let u = uniform_open(rng);
                    x[*c] = match dist {
                        Continuous::Uniform => min + u * (max - min),
                        d => d.quantile(lo + u * (hi - lo)).clamp(*min, *max),
                    };
                }
                Draw::Correlated => x[*c] = norm_quantile(uniform_open(rng)),
                Draw::Categorical { cumulative } => x[*c] = level(cumulative, uniform_open(rng)),
                Draw::ByAge { ages, cumulative } => {
                    let u = uniform_open(rng);
                    x[*c] = level(&cumulative[band(ages, x[AGE])], u);
                }
                Draw::Cut { of, breaks } => x[*c] = band(breaks, x[*of]) as f64,
            }
        }
        if let Some(cor) = &self.correlation {
            for (k, &c) in cor.members.iter().enumerate() {
                z[k] = if c == AGE { age_z } else { x[c] };
            }
            for (k, &c) in cor.members.iter().enumerate().rev() {
                if c == AGE {
                    continue;
                }
                let zk: f64 = (0..=k).map(|j| cor.factor[k][j] * z[j]).sum();
                x[c] = cor.dists[k].from_z(zk);
            }
            // Bands of correlated characteristics are cut after their values are known.
            for (c, draw) in &self.draws {
                if let Draw::Cut { of, breaks } = draw {
                    x[*c] = band(breaks, x[*of]) as f64;
                }
            }
        }
    }
}

/// A patient table as read from its CSV file, before it is tied to a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTable {
    /// Columns in file order (the weight column excluded): name and values.
    pub columns: Vec<(String, RawColumn)>,
    /// The weight column's values, if one was named.
    pub weights: Option<Vec<f64>>,
    /// Number of rows.
    pub rows: usize,
}

/// A column of a patient table.
#[derive(Clone, Debug, PartialEq)]
pub enum RawColumn {
    /// Every value a number.
    Numbers(Vec<f64>),
    /// Text values (a categorical characteristic).
    Text(Vec<String>),
}

/// Most rows of a patient table.
pub const MAX_TABLE_ROWS: usize = 10_000_000;

/// Reads a patient table: a header, then one row per profile. `weight` names the weight
/// column, if any (finite, >= 0, not all 0). Errors name the row and column.
pub fn read_table(text: &str, weight: Option<&str>) -> Result<RawTable, String> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .iter()
        .map(|s| s.to_string())
        .collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err("the file has no header row".into());
    }
    for (k, h) in header.iter().enumerate() {
        if header[..k].contains(h) {
            return Err(format!("column `{h}` appears twice"));
        }
    }
    let weight_at = match weight {
        Some(w) => Some(header.iter().position(|h| h == w).ok_or_else(|| {
            format!(
                "no column `{w}` (the weight_column); columns: {}",
                header.join(", ")
            )
        })?),
        None => None,
    };
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", i + 2))?;
        if cells[0].len() >= MAX_TABLE_ROWS {
            return Err(format!("more than {MAX_TABLE_ROWS} rows"));
        }
        for (k, v) in rec.iter().enumerate() {
            cells[k].push(v.to_string());
        }
    }
    let rows = cells[0].len();
    if rows == 0 {
        return Err("the table has no rows".into());
    }
    let mut out = RawTable {
        columns: Vec::new(),
        weights: None,
        rows,
    };
    for (k, (name, values)) in header.into_iter().zip(cells).enumerate() {
        if let Some((i, _)) = values.iter().enumerate().find(|(_, v)| v.is_empty()) {
            return Err(format!("row {}, column `{name}`: empty value", i + 2));
        }
        let numbers: Option<Vec<f64>> = values
            .iter()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect();
        if Some(k) == weight_at {
            let w = numbers.ok_or_else(|| {
                let i = values
                    .iter()
                    .position(|v| v.parse::<f64>().map_or(true, |x| !x.is_finite()))
                    .unwrap_or(0);
                format!(
                    "row {}, column `{name}` (the weights): `{}` is not a finite number",
                    i + 2,
                    values[i]
                )
            })?;
            if let Some(i) = w.iter().position(|&x| x < 0.0) {
                return Err(format!(
                    "row {}, column `{name}` (the weights): {} is negative",
                    i + 2,
                    w[i]
                ));
            }
            if w.iter().all(|&x| x == 0.0) {
                return Err(format!("column `{name}` (the weights): every weight is 0"));
            }
            out.weights = Some(w);
            continue;
        }
        out.columns.push((
            name,
            match numbers {
                Some(n) => RawColumn::Numbers(n),
                None => RawColumn::Text(values),
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_bands_and_levels() {
        let c = cumulative_shares(&[0.2, 0.3, 0.5]);
        assert_eq!(c.len(), 3);
        assert!((c[0] - 0.2).abs() < 1e-15 && (c[1] - 0.5).abs() < 1e-15);
        assert_eq!(c[2], 1.0);
        assert_eq!(level(&c, 0.1), 0.0);
        assert_eq!(level(&c, 0.2), 0.0);
        assert_eq!(level(&c, 0.2000001), 1.0);
        assert_eq!(level(&c, 0.99), 2.0);
        assert_eq!(band(&[18.0, 40.0], 17.9), 0);
        assert_eq!(band(&[18.0, 40.0], 18.0), 1);
        assert_eq!(band(&[18.0, 40.0], 40.0), 2);
    }

    #[test]
    fn tables_read_numbers_text_and_weights() {
        let t = read_table("id,age,genotype,w\n1,20,b0,1\n2,31.5,non_b0,3\n", Some("w")).unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(t.weights, Some(vec![1.0, 3.0]));
        assert_eq!(
            t.columns[1],
            ("age".into(), RawColumn::Numbers(vec![20.0, 31.5]))
        );
        assert_eq!(
            t.columns[2],
            (
                "genotype".into(),
                RawColumn::Text(vec!["b0".into(), "non_b0".into()])
            )
        );
        let e = read_table("age,w\n20,1\n30,-1\n", Some("w")).unwrap_err();
        assert!(e.contains("row 3") && e.contains("negative"), "{e}");
        let e = read_table("age\n20\n\n", Some("w")).unwrap_err();
        assert!(e.contains("no column `w`"), "{e}");
        let e = read_table("age,g\n20,\n", None).unwrap_err();
        assert!(e.contains("row 2, column `g`: empty"), "{e}");
        assert!(read_table("age\n", None).unwrap_err().contains("no rows"));
    }

    #[test]
    fn truncated_inversion_stays_within_bounds() {
        for dist in [
            Continuous::Normal { mean: 1.0, sd: 2.0 },
            Continuous::LogNormal {
                meanlog: 0.5,
                sdlog: 0.7,
            },
            Continuous::Gamma {
                shape: 2.5,
                rate: 0.5,
            },
        ] {
            for p in [1e-12, 0.01, 0.3, 0.5, 0.9, 1.0 - 1e-9] {
                let q = dist.quantile(p);
                assert!((dist.cdf(q) - p).abs() < 1e-9 * p.max(1e-3), "{dist:?} {p}");
            }
        }
    }
}
