//! Exact, order-independent floating-point summation (Shewchuk's algorithm, as in Python's
//! `math.fsum`). The state is a list of non-overlapping partials whose exact sum is the sum
//! of everything added; merging two states is exact. The rounded total therefore does not
//! depend on the order of additions, on threads, or on how the work was split.

use serde::{Deserialize, Serialize};

/// An exact running sum of `f64` values. Infinities and NaNs (a damaged scenario's
/// overflow) are summed apart, and make the total non-finite, so that the results' own
/// finiteness check reports them instead of the sum going wrong silently.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactSum {
    partials: Vec<f64>,
    /// Sum of the non-finite values added, and of partial sums that overflowed (0 if none).
    #[serde(default, skip_serializing_if = "is_zero")]
    non_finite: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl ExactSum {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `x` exactly (a non-finite `x`, or a total beyond the `f64` range, makes the
    /// total non-finite).
    pub fn add(&mut self, mut x: f64) {
        if !x.is_finite() {
            self.non_finite += x;
            return;
        }
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            if !hi.is_finite() {
                // The exact total is beyond the f64 range: it can only be reported as such.
                self.non_finite += hi;
                self.partials.clear();
                return;
            }
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        self.partials.push(x);
    }

    /// Adds every partial of `other` (exact).
    pub fn merge(&mut self, other: &ExactSum) {
        self.non_finite += other.non_finite;
        for &p in &other.partials {
            self.add(p);
        }
    }

    /// The exact sum, correctly rounded to the nearest `f64`.
    pub fn value(&self) -> f64 {
        if self.non_finite != 0.0 || self.non_finite.is_nan() {
            return self.non_finite;
        }
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Half-way case: make the rounding correct, as CPython does.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_where_naive_fails() {
        let mut s = ExactSum::new();
        for x in [1e100, 1.0, -1e100, 1e-3] {
            s.add(x);
        }
        assert_eq!(s.value(), 1.001);
        let mut t = ExactSum::new();
        for _ in 0..10 {
            t.add(0.1);
        }
        assert_eq!(t.value(), 1.0);
    }

    #[test]
    fn non_finite_values_and_overflow_give_a_non_finite_total() {
        let mut s = ExactSum::new();
        s.add(1.0);
        s.add(f64::INFINITY);
        assert_eq!(s.value(), f64::INFINITY);
        s.add(f64::NEG_INFINITY);
        assert!(s.value().is_nan());
        let mut big = ExactSum::new();
        big.add(1e308);
        big.add(1e308);
        assert_eq!(big.value(), f64::INFINITY);
        let mut merged = ExactSum::new();
        merged.add(2.0);
        merged.merge(&big);
        assert_eq!(merged.value(), f64::INFINITY);
        let mut nan = ExactSum::new();
        nan.add(f64::NAN);
        assert!(nan.value().is_nan());
        // A finite sum keeps its serialised form (no extra field).
        let mut finite = ExactSum::new();
        finite.add(0.5);
        assert_eq!(
            serde_json::to_string(&finite).unwrap(),
            r#"{"partials":[0.5]}"#
        );
    }

    #[test]
    fn order_and_partition_independent() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i as f64) * 0.7133).sin() * 10f64.powi((i % 17) - 8))
            .collect();
        let mut a = ExactSum::new();
        xs.iter().for_each(|&x| a.add(x));
        let mut b = ExactSum::new();
        xs.iter().rev().for_each(|&x| b.add(x));
        let (mut c1, mut c2) = (ExactSum::new(), ExactSum::new());
        xs[..333].iter().for_each(|&x| c1.add(x));
        xs[333..].iter().for_each(|&x| c2.add(x));
        c2.merge(&c1);
        assert_eq!(a.value().to_bits(), b.value().to_bits());
        assert_eq!(a.value().to_bits(), c2.value().to_bits());
    }
}
