//! Streaming means, variances and covariances that are bit-reproducible for any split of
//! the patients into threads or shards.
//!
//! Each value `x` of slot `i` is shifted by a fixed reference `K_i` (the value for patient 0,
//! known to every worker), accumulated in plain `f64` within a *fixed block* of patients, and
//! each block's sums are then added to exact, order-independent sums ([`ExactSum`]). The block
//! boundaries depend only on the block size, so the result is the same whichever worker or
//! shard handled which block. Shifting keeps the variance accurate (a constant gives exactly 0).

use super::exact_sum::ExactSum;
use serde::{Deserialize, Serialize};

/// Running first and second moments of a set of slots and of chosen pairs of slots.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MomentSet {
    n: u64,
    shift: Vec<f64>,
    pairs: Vec<(usize, usize)>,
    #[serde(skip)]
    block: Block,
    s1: Vec<ExactSum>,
    s2: Vec<ExactSum>,
    cross: Vec<ExactSum>,
}

#[derive(Clone, Debug, Default)]
struct Block {
    n: u64,
    s1: Vec<f64>,
    s2: Vec<f64>,
    cross: Vec<f64>,
}

/// Mean, standard deviation and Monte Carlo standard error of one slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanSd {
    /// Number of values.
    pub n: u64,
    /// Sample mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator; 0 when n < 2).
    pub sd: f64,
    /// Monte Carlo standard error of the mean, sd / sqrt(n).
    pub mcse: f64,
}

impl MomentSet {
    /// A set of `shift.len()` slots with the given reference values, and the slot pairs whose
    /// covariance is wanted.
    pub fn new(shift: Vec<f64>, pairs: Vec<(usize, usize)>) -> Self {
        let k = shift.len();
        let p = pairs.len();
        Self {
            n: 0,
            block: Block {
                n: 0,
                s1: vec![0.0; k],
                s2: vec![0.0; k],
                cross: vec![0.0; p],
            },
            s1: vec![ExactSum::new(); k],
            s2: vec![ExactSum::new(); k],
            cross: vec![ExactSum::new(); p],
            shift,
            pairs,
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.shift.len()
    }

    /// Adds one patient's values (one per slot) to the current block.
    #[inline]
    pub fn add(&mut self, values: &[f64]) {
        debug_assert_eq!(values.len(), self.shift.len());
        self.add_rows(values);
    }

    /// Adds several patients' values at once: `rows` holds one row of [`MomentSet::slots`]
    /// values per patient, patient after patient. Each sum takes the patients in row order,
    /// so the result does not depend on how the rows are batched (the slots of a row are
    /// independent sums, which the compiler may add in vector lanes).
    pub fn add_rows(&mut self, rows: &[f64]) {
        let k = self.shift.len();
        if k == 0 {
            return;
        }
        debug_assert_eq!(rows.len() % k, 0);
        let b = &mut self.block;
        b.n += (rows.len() / k) as u64;
        let shift = &self.shift[..k];
        let (s1, s2) = (&mut b.s1[..k], &mut b.s2[..k]);
        for row in rows.chunks_exact(k) {
            for i in 0..k {
                let d = row[i] - shift[i];
                s1[i] += d;
                s2[i] += d * d;
            }
        }
        for (c, &(i, j)) in b.cross.iter_mut().zip(&self.pairs) {
            let (ki, kj) = (shift[i], shift[j]);
            let mut sum = *c;
            for row in rows.chunks_exact(k) {
                sum += (row[i] - ki) * (row[j] - kj);
            }
            *c = sum;
        }
    }

    /// Closes the current block: its sums go into the exact totals. Call at every fixed block
    /// boundary (and before merging or reading).
    pub fn end_block(&mut self) {
        let b = &mut self.block;
        if b.n == 0 {
            return;
        }
        self.n += b.n;
        b.n = 0;
        for (tot, v) in self.s1.iter_mut().zip(b.s1.iter_mut()) {
            tot.add(*v);
            *v = 0.0;
        }
        for (tot, v) in self.s2.iter_mut().zip(b.s2.iter_mut()) {
            tot.add(*v);
            *v = 0.0;
        }
        for (tot, v) in self.cross.iter_mut().zip(b.cross.iter_mut()) {
            tot.add(*v);
            *v = 0.0;
        }
    }

    /// Adds another set's closed blocks (exact, order-independent).
    pub fn merge(&mut self, other: &MomentSet) {
        debug_assert!(other.block.n == 0, "merge with an open block");
        debug_assert_eq!(self.shift, other.shift);
        self.n += other.n;
        for (a, b) in self.s1.iter_mut().zip(&other.s1) {
            a.merge(b);
        }
        for (a, b) in self.s2.iter_mut().zip(&other.s2) {
            a.merge(b);
        }
        for (a, b) in self.cross.iter_mut().zip(&other.cross) {
            a.merge(b);
        }
    }

    /// Number of patients in closed blocks.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean, sd and MCSE of slot `i`.
    pub fn mean_sd(&self, i: usize) -> MeanSd {
        let n = self.n as f64;
        if self.n == 0 {
            return MeanSd {
                n: 0,
                mean: f64::NAN,
                sd: f64::NAN,
                mcse: f64::NAN,
            };
        }
        let s1 = self.s1[i].value();
        let s2 = self.s2[i].value();
        let mean = self.shift[i] + s1 / n;
        // One value has no spread to estimate: sd and MCSE are undefined (NaN, written
        // empty), never a 0 that would read as exact.
        let var = if self.n > 1 {
            ((s2 - s1 * s1 / n) / (n - 1.0)).max(0.0)
        } else {
            f64::NAN
        };
        let sd = var.sqrt();
        MeanSd {
            n: self.n,
            mean,
            sd,
            mcse: sd / n.sqrt(),
        }
    }

    /// Sample covariance of pair `p` (as given to [`MomentSet::new`]).
    pub fn covariance(&self, p: usize) -> f64 {
        if self.n < 2 {
            return f64::NAN;
        }
        let n = self.n as f64;
        let (i, j) = self.pairs[p];
        let si = self.s1[i].value();
        let sj = self.s1[j].value();
        (self.cross[p].value() - si * sj / n) / (n - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sd_cov_match_two_pass_and_any_blocking() {
        let xs: Vec<[f64; 2]> = (0..10_000)
            .map(|i| {
                let a = 1.0e6 + ((i as f64) * 0.37).sin() * 1000.0;
                [a, 0.5 * a + ((i as f64) * 1.3).cos()]
            })
            .collect();
        let run = |block: usize| {
            let mut m = MomentSet::new(xs[0].to_vec(), vec![(0, 1)]);
            for (k, x) in xs.iter().enumerate() {
                m.add(x);
                if (k + 1) % block == 0 {
                    m.end_block();
                }
            }
            m.end_block();
            m
        };
        let n = xs.len() as f64;
        let mean0 = xs.iter().map(|x| x[0]).sum::<f64>() / n;
        let mean1 = xs.iter().map(|x| x[1]).sum::<f64>() / n;
        let var0 = xs.iter().map(|x| (x[0] - mean0).powi(2)).sum::<f64>() / (n - 1.0);
        let cov = xs
            .iter()
            .map(|x| (x[0] - mean0) * (x[1] - mean1))
            .sum::<f64>()
            / (n - 1.0);
        let m = run(256);
        let s = m.mean_sd(0);
        assert!((s.mean - mean0).abs() < 1e-9 * mean0);
        assert!((s.sd * s.sd - var0).abs() < 1e-9 * var0);
        assert!((m.covariance(0) - cov).abs() < 1e-9 * cov.abs());
        // Split into two workers that each took every other block: identical bits.
        let mut w1 = MomentSet::new(xs[0].to_vec(), vec![(0, 1)]);
        let mut w2 = MomentSet::new(xs[0].to_vec(), vec![(0, 1)]);
        for (b, chunk) in xs.chunks(256).enumerate() {
            let w = if b % 2 == 0 { &mut w1 } else { &mut w2 };
            for x in chunk {
                w.add(x);
            }
            w.end_block();
        }
        w2.merge(&w1);
        assert_eq!(w2.mean_sd(0), s);
        assert_eq!(w2.covariance(0).to_bits(), m.covariance(0).to_bits());
    }

    #[test]
    fn rows_at_once_are_bit_identical_to_one_at_a_time() {
        // 3 slots: varying, constant, mostly zero; rows added in uneven batches.
        let rows: Vec<f64> = (0..1000)
            .flat_map(|i| {
                let x = i as f64;
                [
                    1.0e5 + (x * 0.7).sin() * 321.0,
                    42.5,
                    if i % 7 == 0 { x } else { 0.0 },
                ]
            })
            .collect();
        let pairs = vec![(0, 2), (2, 1)];
        let mut one = MomentSet::new(rows[..3].to_vec(), pairs.clone());
        for row in rows.chunks(3) {
            one.add(row);
        }
        one.end_block();
        let mut batched = MomentSet::new(rows[..3].to_vec(), pairs);
        for batch in rows.chunks(3 * 37) {
            batched.add_rows(batch);
        }
        batched.end_block();
        assert_eq!(batched.count(), 1000);
        for s in 0..3 {
            assert_eq!(batched.mean_sd(s), one.mean_sd(s), "slot {s}");
        }
        for p in 0..2 {
            assert_eq!(batched.covariance(p).to_bits(), one.covariance(p).to_bits());
        }
    }

    #[test]
    fn constant_has_zero_sd() {
        let mut m = MomentSet::new(vec![1_575_000.37], vec![]);
        for _ in 0..1000 {
            m.add(&[1_575_000.37]);
        }
        m.end_block();
        let s = m.mean_sd(0);
        assert_eq!(s.mean, 1_575_000.37);
        assert_eq!(s.sd, 0.0);
    }
}
