//! Probabilistic sensitivity analysis (PSA) and one-way sensitivity analysis, over the
//! parameter layer ([`crate::params`]): a draw is one vector of parameter values, shared by
//! every place that uses a parameter, from which the model is compiled without parsing the
//! scenario again. Draw d samples its parameters from the stream (seed, d, 0,
//! [`STREAM_PSA`]) and simulates its patients from (seed, d, patient, ...): results are
//! identical for any thread count.

pub mod analysis;

pub use crate::params::dist;
pub use crate::params::STREAM_PSA;
