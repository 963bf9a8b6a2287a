//! obasim: Monte Carlo simulation of outcome-based and installment payment agreements for
//! one-off gene and cell therapies.
//!
//! Data flow (see ARCHITECTURE.md):
//! scenario file ([`scenario`]) → compiled model ([`model`]) → patients simulated in parallel
//! ([`engine`], one random stream per patient from [`rng`]) → each patient's [`history`] is
//! accounted ([`accounting`]) and every contract ([`contracts`]) evaluated on it → mergeable
//! accumulators ([`stats`]) → result tables ([`results`]) → files ([`output`]).

pub mod accounting;
pub mod bench;
pub mod cli;
pub mod contracts;
pub mod design;
pub mod engine;
pub mod history;
pub mod markov;
pub mod model;
pub mod outdir;
pub mod output;
pub mod params;
pub mod plan;
pub mod plots;
pub mod psa;
pub mod report;
pub mod results;
pub mod rng;
pub mod scenario;
pub mod shard;
pub mod slurm;
pub mod stats;

use std::sync::atomic::AtomicBool;

/// Simulates a compiled model on `threads` worker threads (all cores if `None`) and returns
/// the result tables and the raw tally. Results are bit-identical for any thread count.
pub fn simulate(
    model: &model::Model,
    threads: Option<usize>,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<(results::Results, engine::Tally), engine::RunError> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n);
    }
    let pool = builder
        .build()
        .expect("a rayon thread pool with a valid thread count");
    let tally = pool.install(|| engine::run_draw(model, 0, progress, cancel))?;
    let results = results::Results::from_tally(model, &tally);
    Ok((results, tally))
}
