//! `obasim bench`: throughput of the engine on the reference models shipped in
//! `scenarios/bench/`, against the **floor**: a minimal loop that draws exactly the random
//! numbers the model consumed (same generator, same streams, same counts per patient) and
//! nothing else.
//!
//! For each model the bench first simulates the patients once, untimed, to record how many
//! generator outputs each patient drew from each of its streams. It then times, on one
//! thread and on all cores, interleaved and repeated (best of `repeats`):
//! - the floor (seed each stream, draw its count of `u64`s);
//! - the trajectories and contracts alone (the sampler and the contract terms, no accounting);
//! - the metric statistics alone: one block of patients' metric values, recorded untimed, fed
//!   again and again into the moments and quantile sketches that `summary.csv` reports (no
//!   sampling, no accounting). A lower bound on what the engine's statistics cost, as the
//!   replayed values touch fewer sketch buckets than fresh patients do;
//! - the whole engine (the same work as `obasim run`'s simulation: accounting, moments,
//!   quantile sketches, cash flows and occupancy, merged over workers).
//!
//! Speed targets live in this output, never in timed tests.

use crate::engine::tally::{patient_values, reference_values, Tally};
use crate::engine::{self, PatientRecord, BLOCK_SIZE};
use crate::model::build::load;
use crate::model::Model;
use crate::rng::{Generator, PatientStreams};
use crate::scenario::{ScenarioError, Source};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// A reference model shipped in `scenarios/bench/` and embedded in the binary.
#[derive(Clone, Copy, Debug)]
pub struct ReferenceModel {
    /// Short key used on the command line (`--model a`).
    pub key: &'static str,
    /// File name under `scenarios/bench/`.
    pub file: &'static str,
    /// The scenario text.
    pub text: &'static str,
}

/// The reference models: (a) 3-state response/failure/death with life-table mortality and 5
/// contracts; (b) 6-state semi-Markov with Weibull transitions and competing risks; (c)
/// hesim's reversible illness-death model (Weibull fits with a strategy effect, named
/// parameters, cost categories, no background mortality), to compare with hesim; (d) (c)
/// with covariates (hesim's three patients as a patient table, age and sex on every
/// transition and utility): what patient heterogeneity costs.
pub const REFERENCE_MODELS: [ReferenceModel; 4] = [
    ReferenceModel {
        key: "a",
        file: "a-three-state.toml",
        text: include_str!("../scenarios/bench/a-three-state.toml"),
    },
    ReferenceModel {
        key: "b",
        file: "b-six-state.toml",
        text: include_str!("../scenarios/bench/b-six-state.toml"),
    },
    ReferenceModel {
        key: "c",
        file: "c-hesim-illness-death.toml",
        text: include_str!("../scenarios/bench/c-hesim-illness-death.toml"),
    },
    ReferenceModel {
        key: "d",
        file: "d-hesim-covariates.toml",
        text: include_str!("../scenarios/bench/d-hesim-covariates.toml"),
    },
];

impl ReferenceModel {
    /// The reference model with this key (`a`, `b`, `c` or `d`).
    pub fn find(key: &str) -> Option<ReferenceModel> {
        REFERENCE_MODELS.iter().copied().find(|m| m.key == key)
    }

    /// The embedded scenario.
    pub fn source(&self) -> Source {
        Source::embedded("bench/", self.file, self.text)
    }

    /// The compiled model (base case) with `patients` patients.
    pub fn model(&self, patients: u64) -> Result<Model, ScenarioError> {
        let (_, mut model) = load(&self.source())?;
        model.sim.patients = patients;
        Ok(model)
    }
}

/// Settings of one bench.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Patients per timed run.
    pub patients: u64,
    /// Timed repetitions of each measurement (the best is reported).
    pub repeats: u32,
    /// Threads of the parallel measurement (all cores by default).
    pub threads: usize,
}

/// Times of one measurement on one thread and on `threads` threads.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Timing {
    /// Best wall time on one thread, seconds.
    pub seconds_1_thread: f64,
    /// Best wall time on all threads, seconds.
    pub seconds_parallel: f64,
    /// Nanoseconds per patient on one thread.
    pub ns_per_patient_1_thread: f64,
    /// Nanoseconds per patient on all threads (wall time / patients).
    pub ns_per_patient_parallel: f64,
    /// Patients per second on one thread.
    pub patients_per_second_1_thread: f64,
    /// Patients per second on all threads.
    pub patients_per_second_parallel: f64,
    /// Speed-up over one thread divided by the number of threads.
    pub parallel_efficiency: f64,
}

impl Timing {
    fn new(one: f64, parallel: f64, patients: u64, threads: usize) -> Self {
        let n = patients as f64;
        Self {
            seconds_1_thread: one,
            seconds_parallel: parallel,
            ns_per_patient_1_thread: one * 1e9 / n,
            ns_per_patient_parallel: parallel * 1e9 / n,
            patients_per_second_1_thread: n / one,
            patients_per_second_parallel: n / parallel,
            parallel_efficiency: one / parallel / threads as f64,
        }
    }
}

/// What `obasim bench` measured on one reference model.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Model key (`a`, `b`).
    pub model: String,
    /// The scenario's name.
    pub name: String,
    /// Patients per timed run.
    pub patients: u64,
    /// Threads of the parallel measurement.
    pub threads: usize,
    /// Repetitions (best reported).
    pub repeats: u32,
    /// Random streams seeded per patient.
    pub streams_per_patient: f64,
    /// Generator outputs (64-bit words) drawn per patient, on average.
    pub random_numbers_per_patient: f64,
    /// The floor: seeding the streams and drawing the same numbers, nothing else.
    pub floor: Timing,
    /// Trajectories and contract terms only (no accounting or statistics).
    pub trajectories: Timing,
    /// The moments and quantile sketches of the per-patient metrics alone, on recorded
    /// values (no sampling, no accounting).
    pub statistics: Timing,
    /// Per-patient metrics (slots with moments), each with a quantile sketch unless it
    /// always equals another slot.
    pub metrics_per_patient: usize,
    /// The whole engine, as `obasim run` simulates.
    pub engine: Timing,
    /// Engine time over floor time, one thread.
    pub engine_over_floor_1_thread: f64,
    /// Engine time over floor time, all threads.
    pub engine_over_floor_parallel: f64,
    /// Trajectories-and-contracts time over floor time, one thread.
    pub trajectories_over_floor_1_thread: f64,
    /// Statistics-alone time over floor time, one thread.
    pub statistics_over_floor_1_thread: f64,
    /// Per-draw overhead of a PSA on one thread, in microseconds: the time a draw takes
    /// besides simulating its patients (drawing its parameters, compiling and checking its
    /// model, its accumulators and summary tables), from [`PSA_BENCH_DRAWS`] draws of one
    /// patient each.
    pub psa_draw_overhead_us: f64,
}

/// Draws timed for the PSA per-draw overhead.
pub const PSA_BENCH_DRAWS: u32 = 400;

/// Seconds for a PSA of `draws` draws of one patient each on the current pool: the plan
/// (every draw's model compiled and checked), the draws' execution and their assembly into
/// the PSA tables (not the files).
fn psa_seconds(reference: &ReferenceModel, draws: u32) -> Result<f64, String> {
    let setup = crate::model::Setup::new(&reference.source()).map_err(|e| e.to_string())?;
    let cancel = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let adjust = crate::plan::Adjust {
        seed: None,
        patients: Some(1),
    };
    let plan = crate::plan::Plan::new(setup, adjust, draws, false).map_err(|e| e.to_string())?;
    let parts = plan
        .execute(&plan.all_work(), &|_| {}, &cancel)
        .map_err(|e| e.to_string())?;
    let outcome = plan.assemble(parts).map_err(|e| e.to_string())?;
    std::hint::black_box(outcome);
    Ok(started.elapsed().as_secs_f64())
}

/// The random numbers each patient of a model consumed: the stream identifiers (the same
/// for every patient) and, per patient, the count drawn from each.
#[derive(Clone, Debug)]
pub struct RandomUse {
    seed: u64,
    streams: Vec<u64>,
    counts: Vec<u32>,
}

impl RandomUse {
    /// Simulates every patient of draw 0 once (in parallel, untimed) and records its use of
    /// random numbers.
    pub fn record(model: &Model) -> RandomUse {
        let n = model.sim.patients;
        let mut first = PatientRecord::new(model);
        first.simulate(model, 0, 0);
        let streams: Vec<u64> = first.random_numbers.iter().map(|&(s, _)| s).collect();
        let k = streams.len();
        let mut counts = vec![0u32; n as usize * k];
        counts
            .par_chunks_mut(BLOCK_SIZE as usize * k)
            .enumerate()
            .for_each_init(
                || PatientRecord::new(model),
                |rec, (b, chunk)| {
                    for (j, row) in chunk.chunks_mut(k).enumerate() {
                        rec.simulate(model, 0, b as u64 * BLOCK_SIZE + j as u64);
                        debug_assert!(rec
                            .random_numbers
                            .iter()
                            .map(|p| p.0)
                            .eq(streams.iter().copied()));
                        for (c, &(_, used)) in row.iter_mut().zip(&rec.random_numbers) {
                            *c = used;
                        }
                    }
                },
            );
        RandomUse {
            seed: model.sim.seed,
            streams,
            counts,
        }
    }

    /// Number of patients recorded.
    pub fn patients(&self) -> u64 {
        (self.counts.len() / self.streams.len().max(1)) as u64
    }

    /// Streams per patient.
    pub fn streams_per_patient(&self) -> usize {
        self.streams.len()
    }

    /// Total generator outputs drawn.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| c as u64).sum()
    }

    /// The floor loop: for every patient, seeds each of its streams exactly as the engine does
    /// and draws the recorded number of `u64`s; in fixed blocks on the current rayon pool.
    /// Returns a checksum of everything drawn (so that nothing is optimised away).
    pub fn replay(&self) -> u64 {
        let k = self.streams.len();
        self.counts
            .par_chunks(BLOCK_SIZE as usize * k)
            .enumerate()
            .map(|(b, chunk)| {
                let mut acc = 0u64;
                for (j, row) in chunk.chunks(k).enumerate() {
                    let patient = b as u64 * BLOCK_SIZE + j as u64;
                    let streams = PatientStreams::new(self.seed, 0, patient);
                    for (&id, &count) in self.streams.iter().zip(row) {
                        let mut g = Generator::seed_from_u64(streams.seed(id));
                        for _ in 0..count {
                            acc = acc.wrapping_add(g.next_u64());
                        }
                    }
                }
                acc
            })
            .reduce(|| 0, u64::wrapping_add)
    }
}

/// Simulates trajectories and contracts of every patient (no accounting), in fixed blocks on
/// the current rayon pool; returns a checksum.
fn trajectories_only(model: &Model) -> f64 {
    let blocks = engine::blocks(model);
    let n = model.sim.patients;
    (0..blocks)
        .into_par_iter()
        .fold(
            || (PatientRecord::new(model), 0.0),
            |(mut rec, mut acc), b| {
                for i in b * BLOCK_SIZE..((b + 1) * BLOCK_SIZE).min(n) {
                    rec.simulate(model, 0, i);
                    acc += rec.histories[0].segments.len() as f64
                        + rec.payments.iter().map(Vec::len).sum::<usize>() as f64;
                }
                (rec, acc)
            },
        )
        .map(|(_, acc)| acc)
        .sum()
}

/// One block of a model's per-patient metric values, recorded untimed, to time the metric
/// statistics alone ([`RecordedValues::statistics_only`]).
pub struct RecordedValues {
    shift: Vec<f64>,
    rows: Vec<f64>,
}

impl RecordedValues {
    /// Simulates and accounts the first block of patients of draw 0 (untimed).
    pub fn record(model: &Model) -> Self {
        Self {
            rows: patient_values(model, 0, 0..BLOCK_SIZE.min(model.sim.patients)),
            shift: reference_values(model, 0),
        }
    }

    /// Feeds every patient of the model, in fixed blocks on the current rayon pool, the
    /// recorded values (patient i gets row i mod the recorded patients) into tallies: the
    /// moments and quantile sketches only. Returns the number of patients recorded.
    pub fn statistics_only(&self, model: &Model) -> u64 {
        let n = model.sim.patients;
        let slots = self.shift.len();
        let recorded = (self.rows.len() / slots.max(1)).max(1) as u64;
        engine::per_worker(
            engine::Blocks::all(model),
            || Tally::new(model, self.shift.clone()),
            |tally, b| {
                for i in b * BLOCK_SIZE..((b + 1) * BLOCK_SIZE).min(n) {
                    let r = (i % recorded) as usize * slots;
                    tally.record_values(&self.rows[r..r + slots]);
                }
                tally.end_block();
            },
        )
        .into_iter()
        .reduce(Tally::merge)
        .map_or(0, |t| t.moments.count())
    }
}

fn time<T>(f: impl FnOnce() -> T) -> f64 {
    let start = Instant::now();
    black_box(f());
    start.elapsed().as_secs_f64()
}

/// Benchmarks one reference model.
pub fn bench_model(
    reference: &ReferenceModel,
    options: &BenchOptions,
) -> Result<BenchReport, String> {
    let model = reference
        .model(options.patients)
        .map_err(|e| e.to_string())?;
    let pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| format!("cannot start {threads} threads: {e}"))
    };
    let one = pool(1)?;
    let all = pool(options.threads)?;
    let random = all.install(|| RandomUse::record(&model));
    let values = RecordedValues::record(&model);
    let cancel = AtomicBool::new(false);
    let engine_run = |p: &rayon::ThreadPool| {
        time(|| {
            p.install(|| engine::run_draw(&model, 0, &|_| {}, &cancel))
                .map(|t| t.moments.count())
        })
    };
    // Warm up (page in code and data, grow the allocator's arenas).
    all.install(|| random.replay());
    all.install(|| values.statistics_only(&model));
    engine_run(&all);
    let mut best = [f64::INFINITY; 8];
    let mut psa = f64::INFINITY;
    for _ in 0..options.repeats.max(1) {
        // Without the base case and with one patient per draw: what a draw costs besides
        // its patients (the base case's patient is negligible beside 400 draws).
        psa = psa.min(one.install(|| psa_seconds(reference, PSA_BENCH_DRAWS))?);
        let t = [
            time(|| one.install(|| random.replay())),
            time(|| all.install(|| random.replay())),
            time(|| one.install(|| trajectories_only(&model))),
            time(|| all.install(|| trajectories_only(&model))),
            time(|| one.install(|| values.statistics_only(&model))),
            time(|| all.install(|| values.statistics_only(&model))),
            engine_run(&one),
            engine_run(&all),
        ];
        for (b, t) in best.iter_mut().zip(t) {
            *b = b.min(t);
        }
    }
    let n = options.patients;
    let floor = Timing::new(best[0], best[1], n, options.threads);
    let trajectories = Timing::new(best[2], best[3], n, options.threads);
    let statistics = Timing::new(best[4], best[5], n, options.threads);
    let engine = Timing::new(best[6], best[7], n, options.threads);
    Ok(BenchReport {
        model: reference.key.to_string(),
        name: model.name.clone(),
        patients: n,
        threads: options.threads,
        repeats: options.repeats.max(1),
        streams_per_patient: random.streams_per_patient() as f64,
        random_numbers_per_patient: random.total() as f64 / random.patients() as f64,
        engine_over_floor_1_thread: engine.seconds_1_thread / floor.seconds_1_thread,
        engine_over_floor_parallel: engine.seconds_parallel / floor.seconds_parallel,
        trajectories_over_floor_1_thread: trajectories.seconds_1_thread / floor.seconds_1_thread,
        statistics_over_floor_1_thread: statistics.seconds_1_thread / floor.seconds_1_thread,
        metrics_per_patient: values.shift.len(),
        psa_draw_overhead_us: psa / PSA_BENCH_DRAWS as f64 * 1e6,
        floor,
        trajectories,
        statistics,
        engine,
    })
}

/// The human-readable table of one report.
pub fn render(r: &BenchReport) -> String {
    let threads = if r.threads == 1 {
        "1 thread".to_string()
    } else {
        format!("{} threads", r.threads)
    };
    let mut s = String::new();
    s.push_str(&format!(
        "model ({}) {}\n  {} patients, {:.0} streams and {:.1} random numbers per patient, best of {}\n",
        r.model, r.name, r.patients, r.streams_per_patient, r.random_numbers_per_patient, r.repeats
    ));
    s.push_str(&format!(
        "  {:<26} {:>12} {:>14} {:>12} {:>14} {:>11}\n",
        "", "ns/patient", "patients/s", "ns/patient", "patients/s", "parallel"
    ));
    s.push_str(&format!(
        "  {:<26} {:>27} {:>27} {:>11}\n",
        "", "1 thread", threads, "efficiency"
    ));
    for (label, t) in [
        ("floor (random numbers)", &r.floor),
        ("trajectories + contracts", &r.trajectories),
        ("metric statistics alone", &r.statistics),
        ("engine (as `obasim run`)", &r.engine),
    ] {
        s.push_str(&format!(
            "  {:<26} {:>12.1} {:>14.0} {:>12.1} {:>14.0} {:>10.0}%\n",
            label,
            t.ns_per_patient_1_thread,
            t.patients_per_second_1_thread,
            t.ns_per_patient_parallel,
            t.patients_per_second_parallel,
            100.0 * t.parallel_efficiency
        ));
    }
    s.push_str(&format!(
        "  engine / floor: {:.2}x on 1 thread, {:.2}x on {}; trajectories + contracts / floor: {:.2}x\n",
        r.engine_over_floor_1_thread,
        r.engine_over_floor_parallel,
        threads,
        r.trajectories_over_floor_1_thread
    ));
    s.push_str(&format!(
        "  metric statistics alone / floor: {:.2}x (moments and quantile sketches of {} metrics per patient,\n  \
         the summary.csv columns, fed one block of recorded values: no sampling, no accounting)\n",
        r.statistics_over_floor_1_thread, r.metrics_per_patient
    ));
    s.push_str(&format!(
        "  PSA: {:.0} µs per draw besides its patients on 1 thread (parameters drawn, model compiled\n  \
         and checked, accumulators and summary; {PSA_BENCH_DRAWS} draws of one patient)\n",
        r.psa_draw_overhead_us
    ));
    s
}
