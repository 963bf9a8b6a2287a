//! Statistics: exact mergeable sums, streaming moments and quantile sketches.
//!
//! Every accumulator here merges exactly and independently of order, which is what makes a
//! run's results identical for any thread count or shard split.

pub mod exact_sum;
pub mod moments;
pub mod sketch;

pub use exact_sum::ExactSum;
pub use moments::{MeanSd, MomentSet};
pub use sketch::QuantileSketch;
