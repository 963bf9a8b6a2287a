//! Time and memory a run will need, estimated before anything is simulated or allocated,
//! against soft limits (`--allow-large` lifts them) and the machine's memory (nothing
//! lifts that: a request that cannot be allocated is refused, never aborted).

use super::Failure;
use crate::model::Model;
use crate::plan::Plan;

/// Patients per second per thread assumed by the estimate (a slow model on a slow core).
const ASSUMED_PATIENTS_PER_SECOND: f64 = 100_000.0;
/// Longest run accepted without --allow-large.
const MAX_SECONDS: f64 = 24.0 * 3600.0;
/// Longest run accepted even with --allow-large (at the assumed, conservative speed): a
/// request beyond it is a mistake, not a large run.
const HARD_MAX_SECONDS: f64 = 365.25 * 86400.0;
/// Most memory accepted without --allow-large.
const MAX_BYTES: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;
/// Fixed overhead of a process (binary, thread stacks, buffers).
const BASE_BYTES: f64 = 50e6;

/// The machine's physical memory in bytes (Linux: `MemTotal` of /proc/meminfo).
pub(super) fn physical_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Memory held by one compiled model (its life table, states, exits and contract
/// schedules), generously rounded up.
fn model_bytes(m: &Model) -> f64 {
    let life_table_rows = m
        .population
        .life_table
        .as_ref()
        .map_or(1.0, |t| (t.last_age() + 2.0).max(1.0));
    let arms: usize = m
        .arms
        .iter()
        .map(|a| 256 * a.states.len() + a.exits.iter().map(|e| 256 * e.len()).sum::<usize>())
        .sum();
    let contracts: usize = m
        .contracts
        .iter()
        .map(|c| 1024 + 64 * c.schedule.len())
        .sum();
    16_384.0 + 64.0 * life_table_rows + arms as f64 + contracts as f64
}

/// Memory per PSA draw: its parameter values and its summary and incremental rows (about
/// 200 bytes per slot). A draw's model is compiled when it runs, not kept.
fn draw_bytes(m: &Model, parameters: usize) -> f64 {
    let slots = crate::engine::Layout::new(m).slots() as f64;
    8.0 * parameters as f64 + 200.0 * slots
}

/// Refuses, before any draw is made, PSA draws whose results would not fit in memory.
pub(super) fn check_draws_fit(m: &Model, parameters: usize, draws: u32) -> Result<(), Failure> {
    let need = draws as f64 * draw_bytes(m, parameters) + BASE_BYTES;
    match physical_memory() {
        Some(have) if need > have => Err(Failure::BadInput(format!(
            "error: {draws} PSA draws would need about {} of memory, more than this machine has ({}): split the analysis with --shard i/N or use fewer draws",
            human_bytes(need),
            human_bytes(have)
        ))),
        _ => Ok(()),
    }
}

/// A conservative estimate of a run's time and memory, made before it starts.
pub(super) struct Estimate {
    /// Seconds on the given threads.
    pub seconds: f64,
    /// Peak bytes.
    pub bytes: f64,
}

impl Estimate {
    /// For one of `shards` equal shares of the plan's work on `threads` threads.
    pub fn of(plan: &Plan, shards: u32, threads: usize) -> Estimate {
        let m = plan.base_model();
        let total = plan.runs.len() as f64 * m.sim.patients as f64;
        let patients = total / shards.max(1) as f64;
        let m = &plan.base_model();
        let slots = crate::engine::Layout::new(m).slots() as f64;
        let states: usize = m.arms.iter().map(|a| a.states.len()).sum();
        // Per accumulator: a sketch per slot (~20 kB when values spread), occupancy counts,
        // yearly flows, cohort sums.
        let cohort = m.cohort.as_ref().map_or(0.0, |c| {
            c.replicates as f64 * (m.contracts.len() * c.years) as f64 * 2.0 * 48.0
        });
        let tally = slots * 20_000.0
            + (m.sim.occupancy_points() * states) as f64 * 8.0
            + (m.sim.years() * (2 * m.arms.len() + 4 * m.contracts.len())) as f64 * 48.0
            + cohort;
        let runs_in_flight = plan.runs.len().min(threads.max(1) * 4) as f64;
        // Models kept: the base case and one-way runs (a draw's is compiled when it runs, one
        // per worker at a time).
        let kept = plan.runs.iter().filter(|r| r.model.is_some()).count() + threads;
        let models = kept as f64 * model_bytes(m)
            + plan.runs.len() as f64 * 8.0 * plan.runs[0].values.len() as f64;
        let psa_rows = plan.draws as f64 * slots * 200.0;
        Estimate {
            seconds: patients / (ASSUMED_PATIENTS_PER_SECOND * threads.max(1) as f64),
            bytes: tally * (threads as f64 + 1.0) * runs_in_flight + models + psa_rows + BASE_BYTES,
        }
    }

    /// "about T on N thread(s), about M of memory".
    pub fn describe(&self, threads: usize) -> String {
        format!(
            "about {} on {threads} thread(s), about {} of memory",
            human_seconds(self.seconds),
            human_bytes(self.bytes)
        )
    }

    /// Refuses a run beyond the machine's memory, and (unless `allow`) beyond the soft
    /// limits of time and memory.
    pub fn check(&self, allow: bool) -> Result<(), Failure> {
        if let Some(have) = physical_memory() {
            if self.bytes > have {
                return Err(Failure::BadInput(format!(
                    "error: this run would need about {} of memory, more than this machine has ({}), --allow-large or not: reduce --patients, draws, cohort replicates or the occupancy grid, or split it with --shard i/N",
                    human_bytes(self.bytes),
                    human_bytes(have)
                )));
            }
        }
        if self.seconds > HARD_MAX_SECONDS {
            return Err(Failure::BadInput(format!(
                "error: this run would take about {} (limit {}, --allow-large or not): reduce --patients or --draws, or split it with --shard i/N",
                human_seconds(self.seconds),
                human_seconds(HARD_MAX_SECONDS)
            )));
        }
        if allow {
            return Ok(());
        }
        if self.seconds > MAX_SECONDS {
            return Err(Failure::BadInput(format!(
                "error: this run would take about {} (limit {}): reduce --patients or --draws, split it with --shard i/N, or pass --allow-large",
                human_seconds(self.seconds),
                human_seconds(MAX_SECONDS)
            )));
        }
        if self.bytes > MAX_BYTES {
            return Err(Failure::BadInput(format!(
                "error: this run would need about {} of memory (limit {}): reduce draws, cohort replicates or the occupancy grid, or pass --allow-large",
                human_bytes(self.bytes),
                human_bytes(MAX_BYTES)
            )));
        }
        Ok(())
    }
}

fn human_seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 3.0 * 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s < 3650.0 * 86400.0 {
        format!("{:.0} days", s / 86400.0)
    } else {
        format!("{:.0e} years", s / (365.25 * 86400.0))
    }
}

fn human_bytes(b: f64) -> String {
    if b < 1e9 {
        format!("{:.0} MB", b / 1e6)
    } else if b < 1e12 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.0} TB", b / 1e12)
    }
}
