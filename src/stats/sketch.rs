//! A mergeable quantile sketch with relative accuracy (DDSketch-style logarithmic buckets).
//!
//! Each bucket also keeps the exact minimum and maximum of the values that fell into it, so a
//! quantile that lands in a bucket holding a single distinct value (a fixed price, a count of
//! installments) is reported exactly; otherwise it is within `RELATIVE_ACCURACY` of the true
//! order statistic (or within `ABSOLUTE_ACCURACY`, about 1e-9, for magnitudes below it).
//! Counts add, minima and maxima combine exactly: merging is order-independent,
//! so quantiles do not depend on threads or shards. Memory grows with the log of the value
//! range, never with the number of values.

use serde::{Deserialize, Serialize};

/// Guaranteed relative accuracy of a quantile (0.2%).
pub const RELATIVE_ACCURACY: f64 = 0.002;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Bucket {
    count: u64,
    min: f64,
    max: f64,
}

// Finite sentinels (so sketches serialise to JSON): any value replaces them.
const EMPTY: Bucket = Bucket {
    count: 0,
    min: f64::MAX,
    max: f64::MIN,
};

/// Dense store of buckets indexed by [`bucket_index`]; serialised sparsely (only
/// non-empty buckets, as [index, count, min, max]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(into = "SparseStore", from = "SparseStore")]
struct Store {
    offset: i32,
    buckets: Vec<Bucket>,
}

#[derive(Serialize, Deserialize)]
struct SparseStore(Vec<(i32, u64, f64, f64)>);

impl From<Store> for SparseStore {
    fn from(s: Store) -> Self {
        SparseStore(
            s.buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| b.count > 0)
                .map(|(k, b)| (s.offset + k as i32, b.count, b.min, b.max))
                .collect(),
        )
    }
}

impl From<SparseStore> for Store {
    fn from(s: SparseStore) -> Self {
        let mut store = Store::default();
        for (index, count, min, max) in s.0 {
            store.add(index, min, count);
            let b = &mut store.buckets[(index - store.offset) as usize];
            b.max = b.max.max(max);
        }
        store
    }
}

impl Store {
    /// The non-empty buckets with their indices (what the store holds, whatever its padding).
    fn occupied(&self) -> impl Iterator<Item = (i32, &Bucket)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.count > 0)
            .map(|(k, b)| (self.offset + k as i32, b))
    }
}

impl PartialEq for Store {
    fn eq(&self, other: &Store) -> bool {
        self.occupied().eq(other.occupied())
    }
}

impl Store {
    /// Adds `x` (of bucket `index`): the common case (an existing bucket) inline, growing
    /// out of line.
    #[inline]
    fn add(&mut self, index: i32, x: f64, n: u64) {
        let k = index.wrapping_sub(self.offset) as u32 as usize;
        match self.buckets.get_mut(k) {
            Some(b) => {
                b.count += n;
                if x < b.min {
                    b.min = x;
                }
                if x > b.max {
                    b.max = x;
                }
            }
            None => self.grow_and_add(index, x, n),
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_and_add(&mut self, index: i32, x: f64, n: u64) {
        if self.buckets.is_empty() {
            self.offset = index;
            self.buckets.push(EMPTY);
        } else if index < self.offset {
            // Grow with slack (half the current length) so that a slowly falling minimum
            // does not move the buckets at every new value.
            let grow = (self.offset - index) as usize + self.buckets.len() / 2;
            self.buckets.splice(0..0, std::iter::repeat_n(EMPTY, grow));
            self.offset -= grow as i32;
        } else if index >= self.offset + self.buckets.len() as i32 {
            let new_len = (index - self.offset + 1) as usize;
            self.buckets.resize(new_len, EMPTY);
        }
        let b = &mut self.buckets[(index - self.offset) as usize];
        b.count += n;
        b.min = b.min.min(x);
        b.max = b.max.max(x);
    }

    fn merge(&mut self, other: &Store) {
        for (k, b) in other.buckets.iter().enumerate() {
            if b.count == 0 {
                continue;
            }
            let index = other.offset + k as i32;
            // Make room, then combine.
            self.add(index, b.min, b.count);
            let mine = &mut self.buckets[(index - self.offset) as usize];
            mine.max = mine.max.max(b.max);
        }
    }
}

/// Streaming, mergeable quantile sketch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    count: u64,
    zero: u64,
    positive: Store,
    negative: Store,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets per octave (power of two). Bucket k holds the x > 0 with
/// `k - 1 < M·log2*(x) ≤ k`, where log2* interpolates log2 linearly between powers of two:
/// log2*(2^e·m) = e + (m - 1) for m in [1, 2). Its bounds L < U satisfy U/L ≤ 1 + 1/M, so
/// with M ≥ 1/(γ - 1), γ = (1 + α)/(1 - α), the estimate 2LU/(L + U) is within α of every
/// value in the bucket. The index comes from the bits of x in integer arithmetic: no
/// logarithm, and the same bucket on every machine.
const BUCKETS_PER_OCTAVE: i64 = 250;

const _: () = assert!(
    // 1/M ≤ γ - 1 = 2α/(1 - α), checked at compile time.
    (1.0 / BUCKETS_PER_OCTAVE as f64) <= 2.0 * RELATIVE_ACCURACY / (1.0 - RELATIVE_ACCURACY)
);

/// Magnitudes below this (2^-30, about 9.3e-10) share one bucket: such values are rounding
/// noise of a difference (e.g. incremental life years of a patient whose arms end alike) and
/// would otherwise spread over dozens of octaves. A quantile landing there is within this
/// absolute error (and exact if the bucket holds one value).
pub const ABSOLUTE_ACCURACY: f64 = 1.0 / (1u64 << 30) as f64;

/// Index of the bucket of the magnitudes below [`ABSOLUTE_ACCURACY`].
const LOWEST_INDEX: i32 = -30 * BUCKETS_PER_OCTAVE as i32;

/// The bucket of a positive (or infinite) value `abs`; see [`BUCKETS_PER_OCTAVE`].
#[inline]
fn bucket_index(abs: f64) -> i32 {
    if abs < ABSOLUTE_ACCURACY {
        return LOWEST_INDEX;
    }
    // Normal (or infinite) here: ABSOLUTE_ACCURACY is far above the subnormals.
    let bits = abs.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mantissa = bits & ((1u64 << 52) - 1);
    let m = BUCKETS_PER_OCTAVE as u64;
    let fraction = ((mantissa * m + ((1u64 << 52) - 1)) >> 52) as i64;
    (exponent * BUCKETS_PER_OCTAVE + fraction) as i32
}

/// The upper bound of bucket `index` (a positive value): the inverse of the bucket mapping at
/// `index`/M.
fn bucket_upper(index: i32) -> f64 {
    let e = (index as i64).div_euclid(BUCKETS_PER_OCTAVE);
    let r = (index as i64).rem_euclid(BUCKETS_PER_OCTAVE);
    // Two factors, so that 2^e stays finite and non-zero down to the subnormals.
    let (e1, e2) = (e / 2, e - e / 2);
    (1.0 + r as f64 / BUCKETS_PER_OCTAVE as f64) * 2f64.powi(e1 as i32) * 2f64.powi(e2 as i32)
}

impl QuantileSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self {
            count: 0,
            zero: 0,
            positive: Store::default(),
            negative: Store::default(),
        }
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds one finite value.
    #[inline]
    pub fn add(&mut self, x: f64) {
        self.add_copies(x, 1);
    }

    /// Adds `values[first]`, `values[first + stride]`, ... in order (a column of a row-major
    /// table). Runs of equal values (a fixed price, the zeros of a rare event) go in as one
    /// bucket update; the sketch is the same as after adding them one at a time.
    pub fn add_strided(&mut self, values: &[f64], first: usize, stride: usize) {
        debug_assert!(stride > 0);
        let Some(&x0) = values.get(first) else {
            return;
        };
        let (mut run, mut copies) = (x0, 1);
        let mut i = first + stride;
        while i < values.len() {
            let x = values[i];
            if x == run {
                copies += 1;
            } else {
                self.add_copies(run, copies);
                run = x;
                copies = 1;
            }
            i += stride;
        }
        self.add_copies(run, copies);
    }

    #[inline(always)]
    fn add_copies(&mut self, x: f64, n: u64) {
        self.count += n;
        if x == 0.0 {
            self.zero += n;
        } else if x > 0.0 {
            self.positive.add(bucket_index(x), x, n);
        } else {
            self.negative.add(bucket_index(-x), x, n);
        }
    }

    /// Adds everything in `other`.
    pub fn merge(&mut self, other: &QuantileSketch) {
        self.count += other.count;
        self.zero += other.zero;
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
    }

    /// The `p`-quantile (0 <= p <= 1): the smallest value whose empirical CDF is >= p
    /// (inverse of the ECDF), within the sketch accuracy. `None` when empty.
    pub fn quantile(&self, p: f64) -> Option<f64> {
        self.quantiles(&[p]).pop().flatten()
    }

    /// Several quantiles (each as [`QuantileSketch::quantile`]) in one pass over the buckets;
    /// `ps` in any order.
    pub fn quantiles(&self, ps: &[f64]) -> Vec<Option<f64>> {
        if self.count == 0 {
            return vec![None; ps.len()];
        }
        let mut order: Vec<(u64, usize)> = ps
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                (
                    ((p * self.count as f64).ceil() as u64).clamp(1, self.count),
                    i,
                )
            })
            .collect();
        order.sort_unstable();
        let mut out = vec![None; ps.len()];
        let estimate = |b: &Bucket, index: i32, sign: f64| -> f64 {
            if b.min == b.max {
                return b.min;
            }
            if index == LOWEST_INDEX {
                return 0.5 * (b.min + b.max);
            }
            let (lo, hi) = (bucket_upper(index - 1), bucket_upper(index));
            let mid = sign * 2.0 * lo * hi / (lo + hi);
            mid.clamp(b.min, b.max)
        };
        let mut next = 0;
        let mut seen = 0u64;
        // Hands out every pending rank now covered by `seen` the value `value()`.
        let mut settle = |seen: u64, value: &dyn Fn() -> f64, next: &mut usize| {
            while *next < order.len() && order[*next].0 <= seen {
                out[order[*next].1] = Some(value());
                *next += 1;
            }
        };
        for (k, b) in self.negative.buckets.iter().enumerate().rev() {
            if b.count == 0 {
                continue;
            }
            seen += b.count;
            let index = self.negative.offset + k as i32;
            settle(seen, &|| estimate(b, index, -1.0), &mut next);
        }
        seen += self.zero;
        settle(seen, &|| 0.0, &mut next);
        for (k, b) in self.positive.buckets.iter().enumerate() {
            if b.count == 0 {
                continue;
            }
            seen += b.count;
            let index = self.positive.offset + k as i32;
            settle(seen, &|| estimate(b, index, 1.0), &mut next);
        }
        // Unreachable when counts are consistent; give the largest value.
        let largest = self
            .positive
            .buckets
            .iter()
            .rev()
            .find(|b| b.count > 0)
            .map(|b| b.max);
        for slot in out.iter_mut().filter(|o| o.is_none()) {
            *slot = largest;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[f64], p: f64) -> f64 {
        let n = sorted.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        sorted[rank - 1]
    }

    #[test]
    fn a_strided_column_with_runs_is_the_same_sketch_as_its_values_one_by_one() {
        // Column 1 of a 3-wide table: runs of a price, of zeros, of -0.0 and single values.
        let column: Vec<f64> = (0..600)
            .map(|i| match i % 50 {
                0..=19 => 1_500_000.0,
                20..=29 => 0.0,
                30..=31 => -0.0,
                k => -(k as f64) * 0.37,
            })
            .collect();
        let table: Vec<f64> = column.iter().flat_map(|&x| [f64::NAN, x, 7.0]).collect();
        let mut one = QuantileSketch::new();
        column.iter().for_each(|&x| one.add(x));
        let mut strided = QuantileSketch::new();
        strided.add_strided(&table, 1, 3);
        assert_eq!(strided, one);
        assert_eq!(strided.count(), 600);
        let mut empty = QuantileSketch::new();
        empty.add_strided(&table, table.len(), 3);
        assert_eq!(empty.count(), 0);
    }

    #[test]
    fn matches_exact_order_statistics_within_accuracy() {
        let xs: Vec<f64> = (0..50_000)
            .map(|i| {
                let u = (i as f64 + 0.5) / 50_000.0;
                // A mix of negative, zero and positive values across decades.
                if i % 10 == 0 {
                    0.0
                } else {
                    (u - 0.3) * 10f64.powf(u * 6.0)
                }
            })
            .collect();
        let mut s = QuantileSketch::new();
        xs.iter().for_each(|&x| s.add(x));
        let mut sorted = xs.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for p in [
            0.0, 0.01, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 0.99, 1.0,
        ] {
            let want = exact_quantile(&sorted, p);
            let got = s.quantile(p).unwrap();
            assert!(
                (got - want).abs() <= RELATIVE_ACCURACY * want.abs() + ABSOLUTE_ACCURACY,
                "p={p}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn buckets_are_narrow_enough_and_cover_every_double() {
        // Every bucket's bounds are within the accuracy, and its values fall inside them.
        let gamma = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
        for k in [-7_000, -1000, -1, 0, 1, 249, 250, 251, 5_000, 255_999] {
            let (lo, hi) = (bucket_upper(k - 1), bucket_upper(k));
            assert!(hi / lo <= gamma * (1.0 + 1e-15), "bucket {k}: {lo}..{hi}");
        }
        // Magnitudes below the absolute accuracy (subnormals included) share the lowest
        // bucket; from there up, buckets are narrow.
        for tiny in [
            f64::from_bits(1),
            f64::MIN_POSITIVE,
            1e-12,
            ABSOLUTE_ACCURACY * 0.99,
        ] {
            assert_eq!(bucket_index(tiny), LOWEST_INDEX);
        }
        assert_eq!(bucket_index(ABSOLUTE_ACCURACY), LOWEST_INDEX);
        assert!(bucket_index(ABSOLUTE_ACCURACY * 1.01) > LOWEST_INDEX);
        let mut x = ABSOLUTE_ACCURACY;
        while x.is_finite() {
            for y in [x, x * 1.0001, x * 1.37, x * 1.999_999] {
                if !y.is_finite() {
                    continue;
                }
                let k = bucket_index(y);
                assert!(
                    bucket_upper(k - 1) < y * (1.0 + 1e-15) && y <= bucket_upper(k) * (1.0 + 1e-15),
                    "{y:e} not in bucket {k}: {:e}..{:e}",
                    bucket_upper(k - 1),
                    bucket_upper(k)
                );
            }
            x *= 2.0;
        }
        assert_eq!(bucket_index(1.0), 0);
        assert_eq!(bucket_index(2.0), 250);
        assert_eq!(bucket_index(f64::INFINITY), 256_000);
        // Noise-level values: quantiles within the absolute accuracy.
        let mut tiny = QuantileSketch::new();
        for v in [3e-15, -2e-13, 4e-10, 1e-12, 5.0] {
            tiny.add(v);
        }
        for (p, want) in [
            (0.2, -2e-13),
            (0.4, 3e-15),
            (0.6, 1e-12),
            (0.8, 4e-10),
            (1.0, 5.0),
        ] {
            let got = tiny.quantile(p).unwrap();
            assert!(
                (got - want).abs() <= ABSOLUTE_ACCURACY,
                "p={p}: {got} vs {want}"
            );
        }
        // Extreme values never overflow the store's index arithmetic.
        let mut s = QuantileSketch::new();
        for v in [f64::MAX, f64::from_bits(1), -f64::MAX, 1.0, f64::INFINITY] {
            s.add(v);
        }
        assert_eq!(s.count(), 5);
    }

    #[test]
    fn quantiles_in_one_pass_equal_one_at_a_time() {
        let mut s = QuantileSketch::new();
        for i in 0..5_000 {
            let u = (i as f64 + 0.5) / 5_000.0;
            s.add(if i % 7 == 0 {
                0.0
            } else {
                (u - 0.4) * 1e5 * (1.0 + u * u)
            });
        }
        let mut xs: Vec<f64> = (0..5_000)
            .map(|i| {
                let u = (i as f64 + 0.5) / 5_000.0;
                if i % 7 == 0 {
                    0.0
                } else {
                    (u - 0.4) * 1e5 * (1.0 + u * u)
                }
            })
            .collect();
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let ps = [0.975, 0.0, 0.5, 0.025, 1.0, 0.4, 0.4001, 0.99];
        for (p, q) in ps.iter().zip(s.quantiles(&ps)) {
            // Independent truth: the order statistic of rank ceil(p n), within accuracy.
            let want = xs[((p * 5_000.0f64).ceil() as usize).clamp(1, 5_000) - 1];
            let got = q.unwrap();
            assert!(
                (got - want).abs() <= RELATIVE_ACCURACY * want.abs(),
                "p={p}: {got} vs {want}"
            );
            assert_eq!(Some(got), s.quantile(*p));
        }
        assert_eq!(QuantileSketch::new().quantiles(&[0.5]), vec![None]);
    }

    #[test]
    fn a_damaged_zero_count_bucket_does_not_panic() {
        let json =
            r#"{"count":1,"zero":0,"positive":[[5,0,1.0,1.0],[250,1,2.0,2.0]],"negative":[]}"#;
        let s: QuantileSketch = serde_json::from_str(json).unwrap();
        assert_eq!(s.quantile(0.5), Some(2.0));
    }

    #[test]
    fn serialises_sparsely_and_round_trips() {
        let mut a = QuantileSketch::new();
        for x in [1.0, 1e6, -3.0, 0.0, 2.5, 1e6] {
            a.add(x);
        }
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.len() < 300, "{json}");
        let b: QuantileSketch = serde_json::from_str(&json).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn single_values_are_exact_and_merge_is_order_free() {
        let mut a = QuantileSketch::new();
        let mut b = QuantileSketch::new();
        for i in 0..1000 {
            let x = if i % 4 == 0 { 1_575_000.37 } else { 315_000.0 };
            if i % 3 == 0 {
                a.add(x)
            } else {
                b.add(x)
            }
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.quantile(0.5), Some(315_000.0));
        assert_eq!(ab.quantile(0.975), Some(1_575_000.37));
        assert_eq!(ab.count(), 1000);
    }
}
