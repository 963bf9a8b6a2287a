//! The work of one invocation: the base case, PSA draws and one-way runs, each a compiled
//! model; the fixed list of work units they split into; executing any subset of the units
//! (all of them, or one shard's); and assembling the result tables from the unit results.
//!
//! A unit is one fixed block of patients of the base case or of a one-way run, or one whole
//! PSA draw (whose compact results are kept, not its accumulators). Shard i of N executes
//! the units whose index is i modulo N. Unit results merge exactly, so a run split into
//! shards and merged gives byte-identical tables.

use crate::engine::{blocks, run_blocks_keeping, Blocks, RunError, Statistics, Tally};
use crate::model::{Model, Setup};
use crate::params::OneWay;
use crate::psa::analysis::{strategies, wtp_grid, DrawResult, PsaError, PsaResults};
use crate::results::Results;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::atomic::AtomicBool;

/// What a planned run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunKind {
    /// The base case.
    Base,
    /// PSA draw d (1-based).
    Draw(u64),
    /// One-way run of parameter `param` at its low (`high == false`) or high value.
    OneWay {
        /// Parameter index.
        param: usize,
        /// High value?
        high: bool,
    },
}

/// One run: the draw index of its random streams, its parameter values, and its model
/// (kept for the base case and one-way runs; a PSA draw's model is compiled when it runs,
/// so memory does not grow with the number of draws).
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// What it is.
    pub kind: RunKind,
    /// Draw index of the patients' streams (0 for the base case and one-way runs).
    pub stream_draw: u64,
    /// One value per parameter (see [`crate::params::Parameters`]).
    pub values: Vec<f64>,
    /// The compiled model (None for a PSA draw).
    pub model: Option<Model>,
}

/// Up to this many PSA draws, each draw's compiled model is kept between checking and
/// running it.
pub const KEEP_DRAW_MODELS: u32 = 10_000;

/// Command-line overrides applied to every model of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adjust {
    /// Seed.
    pub seed: Option<u64>,
    /// Number of patients.
    pub patients: Option<u64>,
}

impl Adjust {
    /// Applies the overrides to a model.
    pub fn apply(&self, m: &mut Model) {
        if let Some(seed) = self.seed {
            m.sim.seed = seed;
        }
        if let Some(n) = self.patients {
            m.sim.patients = n;
            if let Some(c) = m.cohort.as_mut() {
                c.fit_to_patients(n);
            }
        }
    }
}

/// The work of one run in one process: some of its fixed blocks (base case or one-way run),
/// or the whole run (a PSA draw, which is one unit). A shard's work is one of these per run
/// it touches, however many patients there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Blocks of run `run`.
    Blocks {
        /// Run index.
        run: usize,
        /// Which blocks.
        blocks: Blocks,
    },
    /// The whole of run `run` (a PSA draw).
    Whole {
        /// Run index.
        run: usize,
    },
}

/// The result of some units of one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum UnitResult {
    /// Accumulators of some blocks (merge with the run's other blocks).
    Partial {
        /// Run index.
        run: usize,
        /// Merged accumulators.
        tally: Box<Tally>,
    },
    /// A whole PSA draw's compact results (the tables the PSA outputs use).
    Draw {
        /// Run index.
        run: usize,
        /// Summary table of the draw.
        summary: Vec<crate::results::SummaryRow>,
        /// Incremental table of the draw.
        incremental: Vec<crate::results::IncrementalRow>,
    },
}

/// Everything one invocation computes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The parsed scenario, its parameters and data.
    pub setup: Setup,
    /// Overrides of every model.
    pub adjust: Adjust,
    /// The runs: base case first, then PSA draws, then one-way runs.
    pub runs: Vec<PlannedRun>,
    /// The one-way runs of the tornado, in run order.
    pub one_way: Vec<OneWay>,
    /// Number of PSA draws.
    pub draws: u32,
    /// Whether one-way runs are included.
    pub tornado: bool,
}

/// What the plan produces.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Base-case tables.
    pub base: Results,
    /// PSA results.
    pub psa: Option<PsaResults>,
    /// Tornado rows.
    pub tornado: Option<Vec<crate::psa::analysis::TornadoRow>>,
}

impl Plan {
    /// Plans the base case, `draws` PSA draws and, if `tornado`, the one-way runs of every
    /// varied parameter. Every variant is compiled (and so checked) now, before any
    /// simulation; the draws' models are not kept.
    pub fn new(setup: Setup, adjust: Adjust, draws: u32, tornado: bool) -> Result<Plan, PsaError> {
        let params = &setup.params;
        let mut base = setup.base().map_err(PsaError::Base)?;
        adjust.apply(&mut base);
        let seed = base.sim.seed;
        let mut runs = vec![PlannedRun {
            kind: RunKind::Base,
            stream_draw: 0,
            values: params.base_values(),
            model: Some(base),
        }];
        // A draw's model is kept for the run when there are few draws (a model is a few
        // kilobytes; its life table is shared); with many it is compiled again when it runs,
        // so memory stays flat.
        let keep = draws <= KEEP_DRAW_MODELS;
        let checked: Result<Vec<PlannedRun>, PsaError> = (1..=draws as u64)
            .into_par_iter()
            .map(|d| {
                let values = params.draw(seed, d);
                let mut model = setup
                    .model(&values, &[])
                    .map_err(|e| PsaError::InvalidDraw(d, e))?;
                adjust.apply(&mut model);
                Ok(PlannedRun {
                    kind: RunKind::Draw(d),
                    stream_draw: d,
                    values,
                    model: keep.then_some(model),
                })
            })
            .collect();
        runs.extend(checked?);
        let one_way = if tornado {
            params.one_way_runs()
        } else {
            Vec::new()
        };
        for (k, ow) in one_way.iter().enumerate() {
            let values = params.one_way(ow);
            let mut model = setup
                .model(&values, &[])
                .map_err(|e| PsaError::OneWay(params.params[ow.param].name.clone(), ow.value, e))?;
            adjust.apply(&mut model);
            runs.push(PlannedRun {
                kind: RunKind::OneWay {
                    param: k,
                    high: ow.high,
                },
                stream_draw: 0,
                values,
                model: Some(model),
            });
        }
        Ok(Plan {
            setup,
            adjust,
            runs,
            one_way,
            draws,
            tornado,
        })
    }

    /// The base-case model (with the overrides).
    pub fn base_model(&self) -> &Model {
        self.runs[0]
            .model
            .as_ref()
            .expect("the base case keeps its model")
    }

    /// The model of run `run`: kept, or (a PSA draw) compiled from its values now.
    pub fn model(&self, run: usize) -> Result<Cow<'_, Model>, PsaError> {
        let r = &self.runs[run];
        match &r.model {
            Some(m) => Ok(Cow::Borrowed(m)),
            None => {
                let mut m = self.setup.model(&r.values, &[]).map_err(|e| match r.kind {
                    RunKind::Draw(d) => PsaError::InvalidDraw(d, e),
                    _ => PsaError::Base(e),
                })?;
                self.adjust.apply(&mut m);
                Ok(Cow::Owned(m))
            }
        }
    }

    /// Patients per run (every run has the base case's number).
    fn patients(&self) -> u64 {
        self.base_model().sim.patients
    }

    /// Number of work units of run `run`: its blocks, or 1 for a PSA draw.
    fn units_of(&self, run: usize) -> u64 {
        match self.runs[run].kind {
            RunKind::Draw(_) => 1,
            _ => blocks(self.base_model()),
        }
    }

    /// Number of work units. Units are numbered run after run (each block of the base case
    /// and the one-way runs, each whole PSA draw): that order defines the shard partition.
    pub fn unit_count(&self) -> u64 {
        (0..self.runs.len())
            .map(|r| self.units_of(r))
            .fold(0, u64::saturating_add)
    }

    /// The work of shard `i` of `n` (0-based i): the units whose number is i modulo n.
    pub fn shard_work(&self, i: u32, n: u32) -> Vec<Work> {
        let (i, n) = (i as u64, n.max(1) as u64);
        let mut offset = 0u64;
        let mut work = Vec::new();
        for (run, r) in self.runs.iter().enumerate() {
            let len = self.units_of(run);
            // First local unit k with (offset + k) ≡ i (mod n).
            let first = (i + n - offset % n) % n;
            if first < len {
                work.push(match r.kind {
                    RunKind::Draw(_) => Work::Whole { run },
                    _ => Work::Blocks {
                        run,
                        blocks: Blocks {
                            first,
                            step: n,
                            count: (len - 1 - first) / n + 1,
                        },
                    },
                });
            }
            offset = offset.saturating_add(len);
        }
        work
    }

    /// All the work of the plan (shard 0 of 1).
    pub fn all_work(&self) -> Vec<Work> {
        self.shard_work(0, 1)
    }

    /// Number of units in `work`.
    pub fn units_in(work: &[Work]) -> u64 {
        work.iter()
            .map(|w| match w {
                Work::Whole { .. } => 1,
                Work::Blocks { blocks, .. } => blocks.count,
            })
            .fold(0, u64::saturating_add)
    }

    /// Patients simulated by `work` (for progress bars).
    pub fn patients_in(&self, work: &[Work]) -> u64 {
        work.iter()
            .map(|w| match *w {
                Work::Whole { .. } => self.patients(),
                Work::Blocks { blocks, .. } => blocks.patients(self.patients()),
            })
            .fold(0, u64::saturating_add)
    }

    /// Executes `work` (in parallel over runs and blocks); one result per run touched.
    pub fn execute(
        &self,
        work: &[Work],
        progress: &(dyn Fn(u64) + Sync),
        cancel: &AtomicBool,
    ) -> Result<Vec<UnitResult>, RunError> {
        work.par_iter()
            .map(|w| {
                let (run, block_ids, whole) = match *w {
                    Work::Whole { run } => (run, Blocks::all(self.base_model()), true),
                    Work::Blocks { run, blocks } => (run, blocks, false),
                };
                let r = &self.runs[run];
                let model = self
                    .model(run)
                    .map_err(|e| RunError::Invalid(e.to_string()))?;
                if whole {
                    // A draw reports means only: no quantile sketches.
                    let tally = run_blocks_keeping(
                        &model,
                        r.stream_draw,
                        block_ids,
                        Statistics::WithoutSketches,
                        progress,
                        cancel,
                    )?;
                    let results = Results::summary_from_tally(&model, &tally);
                    Ok(UnitResult::Draw {
                        run,
                        summary: results.summary,
                        incremental: results.incremental,
                    })
                } else {
                    // A one-way (tornado) run reports means only: no quantile sketches.
                    let statistics = match r.kind {
                        RunKind::OneWay { .. } => Statistics::WithoutSketches,
                        _ => Statistics::Full,
                    };
                    let tally = run_blocks_keeping(
                        &model,
                        r.stream_draw,
                        block_ids,
                        statistics,
                        progress,
                        cancel,
                    )?;
                    Ok(UnitResult::Partial {
                        run,
                        tally: Box::new(tally),
                    })
                }
            })
            .collect()
    }

    /// Assembles the outcome from the results of every unit (from one process or merged
    /// from shards). Errors if a run is missing.
    pub fn assemble(&self, parts: Vec<UnitResult>) -> Result<Outcome, PsaError> {
        let mut tallies: Vec<Option<Tally>> = vec![None; self.runs.len()];
        let mut draws: Vec<Option<Results>> = vec![None; self.runs.len()];
        for p in parts {
            match p {
                UnitResult::Partial { run, tally } => {
                    tallies[run] = Some(match tallies[run].take() {
                        Some(t) => t.merge(*tally),
                        None => *tally,
                    })
                }
                UnitResult::Draw {
                    run,
                    summary,
                    incremental,
                } => draws[run] = Some(Results::with_summary(summary, incremental)),
            }
        }
        let results_of = |run: usize| -> Result<Results, PsaError> {
            let r = &self.runs[run];
            let model = self.model(run)?;
            let t = tallies[run]
                .as_ref()
                .filter(|t| t.moments.count() == model.sim.patients)
                .ok_or_else(|| PsaError::Setup(format!("run {run} is incomplete")))?;
            Ok(match r.kind {
                RunKind::OneWay { .. } => Results::summary_from_tally(&model, t),
                _ => Results::from_tally(&model, t),
            })
        };
        let base = results_of(0)?;
        let base_model = self.base_model();
        let params = &self.setup.params;
        let columns = params.columns();
        let pick = |values: &[f64]| columns.iter().map(|&i| values[i]).collect::<Vec<f64>>();
        let psa = if self.draws > 0 {
            let mut v = Vec::new();
            for (run, r) in self.runs.iter().enumerate() {
                if let RunKind::Draw(d) = r.kind {
                    let results = draws[run]
                        .clone()
                        .ok_or_else(|| PsaError::Setup(format!("PSA draw {d} is missing")))?;
                    v.push(DrawResult {
                        draw: d,
                        values: pick(&r.values),
                        results,
                    });
                }
            }
            Some(PsaResults {
                names: columns
                    .iter()
                    .map(|&i| params.params[i].name.clone())
                    .collect(),
                base_values: pick(&params.base_values()),
                draws: v,
                strategies: strategies(base_model),
                wtp_grid: wtp_grid(&params.settings, base_model),
            })
        } else {
            None
        };
        let tornado = if self.tornado {
            let mut one_way = Vec::new();
            for (run, r) in self.runs.iter().enumerate() {
                if let (RunKind::OneWay { .. }, Some(model)) = (r.kind, r.model.as_ref()) {
                    one_way.push((model, results_of(run)?));
                }
            }
            Some(crate::psa::analysis::tornado_rows(
                params,
                &self.one_way,
                base_model,
                &base,
                &one_way,
            )?)
        } else {
            None
        };
        Ok(Outcome { base, psa, tornado })
    }
}
