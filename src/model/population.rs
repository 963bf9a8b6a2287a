//! Patient characteristics: sex and age at treatment, and the background death time.

use super::characteristics::{AGE, FEMALE, SEX};
use super::lifetable::Sex;
use super::special::{norm_cdf, norm_quantile};
use super::PopulationModel;
use crate::rng::{exp1, uniform_open, PatientRng};

/// Age at treatment.
#[derive(Clone, Debug, PartialEq)]
pub enum AgeModel {
    /// Everyone the same age.
    Fixed(f64),
    /// Normal(mean, sd) truncated to [min, max], sampled by inversion.
    Normal {
        /// Mean.
        mean: f64,
        /// SD.
        sd: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Φ((min - mean)/sd) and Φ((max - mean)/sd), computed once (see [`AgeModel::normal`]).
        cdf_bounds: (f64, f64),
    },
    /// Uniform on [min, max].
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

impl AgeModel {
    /// Normal(mean, sd) truncated to [min, max].
    pub fn normal(mean: f64, sd: f64, min: f64, max: f64) -> AgeModel {
        AgeModel::Normal {
            mean,
            sd,
            min,
            max,
            cdf_bounds: (norm_cdf((min - mean) / sd), norm_cdf((max - mean) / sd)),
        }
    }

    /// The oldest possible age.
    pub fn max(&self) -> f64 {
        match *self {
            AgeModel::Fixed(a) => a,
            AgeModel::Normal { max, .. } | AgeModel::Uniform { max, .. } => max,
        }
    }

    /// The youngest possible age.
    pub fn min(&self) -> f64 {
        match *self {
            AgeModel::Fixed(a) => a,
            AgeModel::Normal { min, .. } | AgeModel::Uniform { min, .. } => min,
        }
    }

    /// Age for a uniform `u` in (0, 1) (inversion, so one uniform per patient).
    pub fn from_uniform(&self, u: f64) -> f64 {
        match *self {
            AgeModel::Fixed(a) => a,
            AgeModel::Uniform { min, max } => min + u * (max - min),
            AgeModel::Normal {
                mean,
                sd,
                min,
                max,
                cdf_bounds: (lo, hi),
            } => (mean + sd * norm_quantile(lo + u * (hi - lo))).clamp(min, max),
        }
    }
}

/// One patient's characteristics, shared by every arm (common random numbers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Patient {
    /// Sex.
    pub sex: Sex,
    /// Age at treatment.
    pub age: f64,
    /// Time from treatment to background death (years; may exceed the horizon).
    pub background_death: f64,
    /// The Exp(1) draw behind it: the background cumulative hazard at which the patient
    /// dies (arms whose states scale the background hazard invert it piece by piece).
    pub background_hazard: f64,
}

impl PopulationModel {
    /// The youngest and oldest ages at treatment (a patient table's, when it gives them).
    pub fn ages(&self) -> (f64, f64) {
        match self
            .characteristics
            .table
            .as_ref()
            .and_then(|t| t.age_range())
        {
            Some(r) => r,
            None => (self.age.min(), self.age.max()),
        }
    }

    /// Draws patient `index` from the population stream: sex, age, background death (3
    /// draws), then its further characteristics into `x` (the covariate vector, see
    /// [`crate::model::characteristics`]).
    pub fn sample(&self, index: u64, rng: &mut PatientRng, x: &mut Vec<f64>) -> Patient {
        let mut sex = if uniform_open(rng) < self.share_female {
            Sex::Female
        } else {
            Sex::Male
        };
        let mut age = self.age.from_uniform(uniform_open(rng));
        let e = exp1(rng);
        let c = &self.characteristics;
        x.resize(c.names.len(), 0.0);
        x[AGE] = age;
        x[FEMALE] = (sex == Sex::Female) as u8 as f64;
        x[SEX] = 1.0 - x[FEMALE];
        if !c.is_empty() {
            let age_z = match self.age {
                AgeModel::Normal { mean, sd, .. } => (age - mean) / sd,
                _ => f64::NAN,
            };
            c.draw(index, age_z, rng, x);
            age = x[AGE];
            sex = if x[FEMALE] == 1.0 {
                Sex::Female
            } else {
                Sex::Male
            };
        }
        let death_age = match &self.life_table {
            Some(t) => {
                let table = t.for_sex(sex);
                table.age_at_cumulative(table.cumulative(age) + e)
            }
            None => f64::INFINITY,
        }
        .min(self.max_age);
        Patient {
            sex,
            age,
            background_death: (death_age - age).max(0.0),
            background_hazard: e,
        }
    }

    /// The time since treatment at which `patient`'s background death falls when, from time
    /// `t`, a further `amount` of cumulative hazard must accrue at `smr` × the life table's
    /// hazard plus `excess` per year (capped at `max_age`).
    pub fn background_after(
        &self,
        patient: &Patient,
        t: f64,
        amount: f64,
        smr: f64,
        excess: f64,
    ) -> f64 {
        let age = patient.age + t;
        let death_age = match &self.life_table {
            Some(lt) => lt
                .for_sex(patient.sex)
                .age_at_scaled(age, amount, smr, excess),
            None if excess > 0.0 => age + amount / excess,
            None => f64::INFINITY,
        };
        (death_age.min(self.max_age) - patient.age).max(t)
    }

    /// The scaled background hazard (see [`PopulationModel::background_after`]) accrued
    /// between times `t0` and `t1` since treatment.
    pub fn background_accrued(
        &self,
        patient: &Patient,
        t0: f64,
        t1: f64,
        smr: f64,
        excess: f64,
    ) -> f64 {
        let (a0, a1) = (patient.age + t0, patient.age + t1);
        match &self.life_table {
            Some(lt) => lt
                .for_sex(patient.sex)
                .scaled_cumulative(a0, a1, smr, excess),
            None => excess * (t1 - t0),
        }
    }

    /// Probability that a patient of this sex and age is alive (background mortality only)
    /// `t` years after treatment.
    pub fn background_survival(&self, sex: Sex, age: f64, t: f64) -> f64 {
        if age + t >= self.max_age {
            return 0.0;
        }
        match &self.life_table {
            Some(table) => table.for_sex(sex).survival(age, age + t),
            None => 1.0,
        }
    }
}
