//! The engine: simulates patients in parallel and streams them into mergeable tallies.
//!
//! Patients are split into fixed blocks of [`BLOCK_SIZE`]; each block is simulated by one
//! worker, in order, and closed into exact sums. Because every patient has its own random
//! streams and every accumulator merges exactly, the result is bit-identical for any number
//! of threads. Memory does not grow with the number of patients.

pub mod simulate;
pub mod tally;

use crate::model::Model;
use rayon::prelude::*;
pub use simulate::PatientRecord;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
pub use tally::{Layout, Tally};

/// Patients per fixed block (the unit of work and of exact reduction).
pub const BLOCK_SIZE: u64 = 1024;

/// Why a run did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The cancel flag was raised (e.g. by SIGINT).
    Cancelled,
    /// A run's model could not be compiled (the message says why).
    Invalid(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Cancelled => write!(f, "the run was interrupted"),
            RunError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Number of fixed blocks of a model's patients.
pub fn blocks(model: &Model) -> u64 {
    model.sim.patients.div_ceil(BLOCK_SIZE)
}

/// A set of fixed blocks, `first`, `first + step`, ... (`count` of them): all blocks of a
/// run, or a shard's share of them. Nothing is allocated per block, however many there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocks {
    /// First block index.
    pub first: u64,
    /// Distance between consecutive blocks (at least 1).
    pub step: u64,
    /// Number of blocks.
    pub count: u64,
}

impl Blocks {
    /// Every block of `model`.
    pub fn all(model: &Model) -> Blocks {
        Blocks {
            first: 0,
            step: 1,
            count: blocks(model),
        }
    }

    /// The `k`-th block index.
    pub fn get(&self, k: u64) -> u64 {
        self.first + k * self.step
    }

    /// Patients in these blocks of a run of `patients` patients.
    pub fn patients(&self, patients: u64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let full = self.count.saturating_mul(BLOCK_SIZE);
        let last = self.get(self.count - 1);
        if last + 1 == patients.div_ceil(BLOCK_SIZE) {
            // The last block of the run may be short.
            full - (BLOCK_SIZE - (patients - last * BLOCK_SIZE))
        } else {
            full
        }
    }
}

/// Simulates every patient of PSA draw `draw` on the current rayon pool.
/// `progress` is called with the number of patients just finished (from any thread);
/// `cancel` is checked between blocks.
pub fn run_draw(
    model: &Model,
    draw: u64,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<Tally, RunError> {
    run_blocks(model, draw, Blocks::all(model), progress, cancel)
}

/// What a run's tallies keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistics {
    /// Everything: moments, quantile sketches, cash flows, occupancy.
    Full,
    /// No quantile sketches (a PSA draw: only means and their errors are reported).
    WithoutSketches,
}

/// Simulates the given fixed blocks of draw `draw` (a shard's share of the work). Merging
/// the tallies of disjoint block sets that cover all blocks gives exactly [`run_draw`]'s tally.
pub fn run_blocks(
    model: &Model,
    draw: u64,
    block_ids: Blocks,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<Tally, RunError> {
    run_blocks_keeping(model, draw, block_ids, Statistics::Full, progress, cancel)
}

/// [`run_blocks`], keeping `statistics`.
pub fn run_blocks_keeping(
    model: &Model,
    draw: u64,
    block_ids: Blocks,
    statistics: Statistics,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<Tally, RunError> {
    let empty = |shift: Vec<f64>| match statistics {
        Statistics::Full => Tally::with_subgroups(model, shift),
        Statistics::WithoutSketches => Tally::without_sketches(model, shift),
    };
    let n = model.sim.patients;
    let shift = tally::reference_values(model, draw);
    let expected = block_ids.patients(n);
    let states = per_worker(
        block_ids,
        || (empty(shift.clone()), PatientRecord::new(model)),
        |(tally, rec), b| {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            let start = b * BLOCK_SIZE;
            let end = (start + BLOCK_SIZE).min(n);
            for i in start..end {
                rec.simulate(model, draw, i);
                tally.record(model, rec);
            }
            tally.end_block();
            progress(end - start);
        },
    );
    let result = states
        .into_iter()
        .map(|(tally, _)| tally)
        .reduce(Tally::merge)
        .unwrap_or_else(|| empty(shift));
    if cancel.load(Ordering::Relaxed) || result.moments.count() != expected {
        return Err(RunError::Cancelled);
    }
    Ok(result)
}

/// Runs `body` on every block of `block_ids`, on the current rayon pool, with one state per
/// worker thread (made by `init` when the worker takes its first block), and returns the
/// states made. One accumulator per worker, not per rayon split: a fresh tally's sketches
/// grow from nothing and every extra tally costs a merge. A worker holds its state's lock
/// only while `body` runs (which must not call into rayon), so the locks are never
/// contended. Which worker ran which block varies; merging tallies is exact and
/// order-independent, so results do not.
pub fn per_worker<S: Send>(
    block_ids: Blocks,
    init: impl Fn() -> S + Sync,
    body: impl Fn(&mut S, u64) + Sync,
) -> Vec<S> {
    let workers = rayon::current_num_threads().max(1);
    let slots: Vec<Mutex<Option<S>>> = (0..workers).map(|_| Mutex::new(None)).collect();
    (0..block_ids.count).into_par_iter().for_each(|k| {
        let b = block_ids.get(k);
        let worker = rayon::current_thread_index().unwrap_or(0) % workers;
        let mut slot = slots[worker].lock().unwrap_or_else(|e| e.into_inner());
        body(slot.get_or_insert_with(&init), b);
    });
    slots
        .into_iter()
        .filter_map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::ReferenceModel;

    /// A tally without sketches holds exactly the same moments, flows and occupancy as a full
    /// one, and empty sketches.
    #[test]
    fn block_sets_count_their_patients() {
        // 5 blocks of a 4500-patient run: 1024 x 4 + 404.
        let n = 4500;
        let all = Blocks {
            first: 0,
            step: 1,
            count: 5,
        };
        assert_eq!(all.patients(n), n);
        let odd = Blocks {
            first: 1,
            step: 2,
            count: 2,
        };
        assert_eq!(odd.patients(n), 2 * BLOCK_SIZE);
        let even = Blocks {
            first: 0,
            step: 2,
            count: 3,
        };
        assert_eq!(even.patients(n), 2 * BLOCK_SIZE + 404);
        assert_eq!(
            Blocks {
                first: 3,
                step: 4,
                count: 0
            }
            .patients(n),
            0
        );
    }

    #[test]
    fn tallies_without_sketches_keep_everything_else() {
        let model = ReferenceModel::find("a").unwrap().model(3_000).unwrap();
        let cancel = AtomicBool::new(false);
        let run =
            |s| run_blocks_keeping(&model, 0, Blocks::all(&model), s, &|_| {}, &cancel).unwrap();
        let full = run(Statistics::Full);
        let lean = run(Statistics::WithoutSketches);
        assert_eq!(
            serde_json::to_value(&full.moments).unwrap(),
            serde_json::to_value(&lean.moments).unwrap()
        );
        assert_eq!(
            serde_json::to_value(&full.flows).unwrap(),
            serde_json::to_value(&lean.flows).unwrap()
        );
        for a in 0..model.arms.len() {
            for s in 0..model.arms[a].states.len() {
                assert_eq!(full.occupancy_series(a, s), lean.occupancy_series(a, s));
            }
        }
        assert!(lean.sketches.iter().all(|k| k.count() == 0));
        assert!(full.sketch(0).count() == 3_000);
    }
}
