//! Background mortality from a life table: a piecewise-constant hazard by single year of
//! attained age, per sex, sampled exactly by inverting the cumulative hazard.

use crate::scenario::LifeTableMeasure;

/// Sex of a simulated patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

impl Sex {
    /// "female" or "male".
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }
}

/// Hazards by single year of age for one sex, with their running cumulative sum.
#[derive(Clone, Debug, PartialEq)]
pub struct HazardTable {
    first_age: f64,
    hazard: Vec<f64>,
    /// cumulative[k] = sum of hazard[..k] (cumulative hazard from `first_age` to `first_age + k`).
    cumulative: Vec<f64>,
}

impl HazardTable {
    /// A table of hazards for ages `first_age, first_age + 1, ...`; the last hazard applies
    /// to every later age.
    pub fn new(first_age: f64, hazard: Vec<f64>) -> Self {
        let mut cumulative = Vec::with_capacity(hazard.len() + 1);
        let mut acc = 0.0;
        cumulative.push(0.0);
        for h in &hazard {
            acc += h;
            cumulative.push(acc);
        }
        Self {
            first_age,
            hazard,
            cumulative,
        }
    }

    /// First age covered.
    pub fn first_age(&self) -> f64 {
        self.first_age
    }

    /// Hazard at attained age `age`.
    pub fn hazard(&self, age: f64) -> f64 {
        let k = ((age - self.first_age).floor().max(0.0) as usize).min(self.hazard.len() - 1);
        self.hazard[k]
    }

    /// Cumulative hazard from `first_age` to `age`.
    pub fn cumulative(&self, age: f64) -> f64 {
        let x = (age - self.first_age).max(0.0);
        let last = self.hazard.len();
        if x >= last as f64 {
            return self.cumulative[last] + self.hazard[last - 1] * (x - last as f64);
        }
        let k = x.floor() as usize;
        self.cumulative[k] + self.hazard[k] * (x - k as f64)
    }

    /// The age at which the cumulative hazard reaches `target` (infinite if never).
    pub fn age_at_cumulative(&self, target: f64) -> f64 {
        let last = self.hazard.len();
        if target >= self.cumulative[last] {
            let h = self.hazard[last - 1];
            return if h > 0.0 {
                self.first_age + last as f64 + (target - self.cumulative[last]) / h
            } else {
                f64::INFINITY
            };
        }
        // Largest k with cumulative[k] <= target (k < last).
        let k = self.cumulative.partition_point(|&c| c <= target) - 1;
        let h = self.hazard[k];
        let within = if h > 0.0 {
            ((target - self.cumulative[k]) / h).min(1.0)
        } else {
            0.0
        };
        self.first_age + k as f64 + within
    }

    /// The age at which `smr` × (cumulative hazard since age `from`) + `excess` × (years
    /// since `from`) reaches `amount` (infinite if never): background mortality scaled by a
    /// standardised mortality ratio plus an excess hazard, inverted exactly piece by piece.
    pub fn age_at_scaled(&self, from: f64, amount: f64, smr: f64, excess: f64) -> f64 {
        if amount <= 0.0 {
            return from;
        }
        let last = self.hazard.len();
        let (mut a, mut left) = (from, amount);
        loop {
            let x = a - self.first_age;
            let (h, end) = if x < 0.0 {
                (0.0, self.first_age)
            } else {
                let k = x.floor() as usize;
                if k >= last {
                    (self.hazard[last - 1], f64::INFINITY)
                } else {
                    (self.hazard[k], self.first_age + k as f64 + 1.0)
                }
            };
            let r = smr * h + excess;
            if r > 0.0 && a + left / r <= end {
                return a + left / r;
            }
            if end.is_infinite() {
                return f64::INFINITY;
            }
            left -= r * (end - a);
            a = end;
        }
    }

    /// `smr` × (cumulative hazard from age `from` to `to`) + `excess` × (`to` − `from`).
    pub fn scaled_cumulative(&self, from: f64, to: f64, smr: f64, excess: f64) -> f64 {
        smr * (self.cumulative(to) - self.cumulative(from)) + excess * (to - from)
    }

    /// Probability of surviving from age `from` to age `to`.
    pub fn survival(&self, from: f64, to: f64) -> f64 {
        (-(self.cumulative(to) - self.cumulative(from))).exp()
    }
}

/// Background mortality for both sexes.
#[derive(Clone, Debug, PartialEq)]
pub struct LifeTable {
    /// Females.
    pub female: HazardTable,
    /// Males.
    pub male: HazardTable,
}

impl LifeTable {
    /// The table for one sex.
    pub fn for_sex(&self, sex: Sex) -> &HazardTable {
        match sex {
            Sex::Female => &self.female,
            Sex::Male => &self.male,
        }
    }

    /// Last age with its own row (both sexes).
    pub fn last_age(&self) -> f64 {
        self.female.first_age + self.female.hazard.len() as f64 - 1.0
    }

    /// Reads a CSV life table. `columns` = (age, female, male) column names.
    /// Errors are messages naming the row and column.
    pub fn from_csv(
        text: &str,
        measure: LifeTableMeasure,
        columns: (&str, &str, &str),
    ) -> Result<LifeTable, String> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("cannot read the CSV header: {e}"))?
            .clone();
        let find = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                format!(
                    "no column `{name}`; the columns are: {}",
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
        };
        let (ia, ifem, imal) = (find(columns.0)?, find(columns.1)?, find(columns.2)?);
        let mut ages = Vec::new();
        let mut female = Vec::new();
        let mut male = Vec::new();
        for (row, record) in reader.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(|e| format!("line {line}: {e}"))?;
            let num = |i: usize, name: &str| -> Result<f64, String> {
                let s = record.get(i).unwrap_or("");
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("line {line}, column `{name}`: `{s}` is not a number"))
            };
            let age = num(ia, columns.0)?;
            let to_hazard = |v: f64, name: &str| -> Result<f64, String> {
                match measure {
                    LifeTableMeasure::Rate if v >= 0.0 => Ok(v),
                    LifeTableMeasure::Rate => Err(format!(
                        "line {line}, column `{name}`: death rate {v} must be >= 0"
                    )),
                    LifeTableMeasure::Probability if (0.0..1.0).contains(&v) => Ok(-(-v).ln_1p()),
                    LifeTableMeasure::Probability if v == 1.0 => Ok(f64::INFINITY),
                    LifeTableMeasure::Probability => Err(format!(
                        "line {line}, column `{name}`: probability {v} must be in [0, 1]"
                    )),
                }
            };
            female.push(to_hazard(num(ifem, columns.1)?, columns.1)?);
            male.push(to_hazard(num(imal, columns.2)?, columns.2)?);
            if age.fract() != 0.0 {
                return Err(format!(
                    "line {line}: age {age} is not a whole number (one row per single year of age)"
                ));
            }
            if let Some(&prev) = ages.last() {
                if age != prev + 1.0 {
                    return Err(format!(
                        "line {line}: age {age} does not follow {prev} (rows must be consecutive single years)"
                    ));
                }
            }
            ages.push(age);
        }
        if ages.is_empty() {
            return Err("the life table has no rows".into());
        }
        Ok(LifeTable {
            female: HazardTable::new(ages[0], female),
            male: HazardTable::new(ages[0], male),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_hazards_invert_exactly() {
        let t = HazardTable::new(10.0, vec![0.01, 0.02, 0.05, 0.1]);
        for (smr, excess) in [(1.0, 0.0), (2.5, 0.0), (0.0, 0.3), (3.0, 0.02)] {
            for from in [5.0, 10.0, 10.4, 12.9, 15.0] {
                for amount in [1e-6, 0.01, 0.2, 1.0, 4.0] {
                    let a = t.age_at_scaled(from, amount, smr, excess);
                    let back = t.scaled_cumulative(from, a, smr, excess);
                    assert!(
                        (back - amount).abs() < 1e-12 * amount.max(1.0),
                        "{smr} {excess} {from} {amount}: {back}"
                    );
                }
            }
        }
        // An SMR of 1 without excess is the plain inversion.
        let a = t.age_at_scaled(10.5, 0.07, 1.0, 0.0);
        assert!((a - t.age_at_cumulative(t.cumulative(10.5) + 0.07)).abs() < 1e-12);
        assert_eq!(t.age_at_scaled(10.0, 1.0, 0.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn cumulative_inverts() {
        let t = HazardTable::new(0.0, vec![0.01, 0.0, 0.02, 0.5]);
        for age in [0.0, 0.3, 1.0, 1.5, 2.2, 3.9, 7.0] {
            let c = t.cumulative(age);
            let back = t.age_at_cumulative(c);
            // Ages inside a zero-hazard year map to its start.
            assert!((t.cumulative(back) - c).abs() < 1e-12, "age {age}");
        }
        assert_eq!(t.cumulative(2.5), 0.01 + 0.01);
        assert!((t.survival(0.0, 3.0) - (-0.03f64).exp()).abs() < 1e-15);
    }

    #[test]
    fn reads_probabilities_and_rates() {
        let csv = "Age,Female,Male\n0,0.1,0.2\n1,0.3,1\n";
        let p = LifeTable::from_csv(
            csv,
            LifeTableMeasure::Probability,
            ("Age", "Female", "Male"),
        )
        .unwrap();
        assert!((p.female.hazard(0.5) - -(0.9f64.ln())).abs() < 1e-15);
        assert!(p.male.hazard(1.5).is_infinite());
        let r =
            LifeTable::from_csv(csv, LifeTableMeasure::Rate, ("Age", "Female", "Male")).unwrap();
        assert_eq!(r.male.hazard(1.0), 1.0);
        let bad = LifeTable::from_csv(
            "Age,Female,Male\n0,0.1,x\n",
            LifeTableMeasure::Rate,
            ("Age", "Female", "Male"),
        );
        assert!(bad.unwrap_err().contains("line 2, column `Male`"));
    }
}
