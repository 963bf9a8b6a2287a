//! The work of one invocation: the base case, PSA draws and one-way runs, each a compiled
//! model; the fixed list of work units they split into; executing any subset of the units
//! (all of them, or one shard's); and assembling the result tables from the unit results.
//!
//! A unit is one fixed block of patients of the base case or of a one-way run, or one whole
//! PSA draw (whose compact results are kept, not its accumulators). Shard i of N executes
//! the units whose index is i modulo N. Unit results merge exactly, so a run split into
//! shards and merged gives byte-identical tables.

use crate::engine::{blocks, run_blocks_keeping, Blocks, RunError, Statistics, Tally};
use crate::model::Model;
use crate::psa::analysis::{model_for, strategies, wtp_grid, DrawResult, PsaError, PsaResults};
use crate::psa::Uncertainty;
use crate::results::Results;
use crate::scenario::Source;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
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

/// One run: its model, the draw index of its random streams, and its parameter values.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// What it is.
    pub kind: RunKind,
    /// Draw index of the patients' streams (0 for the base case and one-way runs).
    pub stream_draw: u64,
    /// The compiled model.
    pub model: Model,
    /// Values of the uncertain parameters (order of `Uncertainty::names`).
    pub values: Vec<f64>,
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
    /// The runs: base case first, then PSA draws, then one-way runs.
    pub runs: Vec<PlannedRun>,
    /// The scenario's uncertain parameters.
    pub uncertainty: Uncertainty,
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
    /// Plans the base case (`base`, already adjusted), `draws` PSA draws and, if `tornado`,
    /// two one-way runs per parameter written in place. Every variant is compiled (and so
    /// checked) now, before any simulation.
    pub fn new(
        source: &Source,
        base: &Model,
        uncertainty: Uncertainty,
        draws: u32,
        tornado: bool,
        adjust: &(dyn Fn(&mut Model) + Sync),
    ) -> Result<Plan, PsaError> {
        let base_values = uncertainty.base_values();
        let mut runs = vec![PlannedRun {
            kind: RunKind::Base,
            stream_draw: 0,
            model: base.clone(),
            values: base_values.clone(),
        }];
        let seed = base.sim.seed;
        let variants: Result<Vec<PlannedRun>, PsaError> = (1..=draws as u64)
            .into_par_iter()
            .map(|d| {
                let values = uncertainty.draw(seed, d);
                let model = model_for(source, &uncertainty.text_with(&values), adjust)
                    .map_err(|e| PsaError::InvalidDraw(d, e))?;
                Ok(PlannedRun {
                    kind: RunKind::Draw(d),
                    stream_draw: d,
                    model,
                    values,
                })
            })
            .collect();
        runs.extend(variants?);
        if tornado {
            for (i, p) in uncertainty.params.iter().enumerate() {
                for (high, x) in [(false, p.low), (true, p.high)] {
                    let mut values = base_values.clone();
                    values[i] = x;
                    let model = model_for(source, &uncertainty.text_with(&values), adjust)
                        .map_err(|e| PsaError::OneWay(p.path.clone(), x, e))?;
                    runs.push(PlannedRun {
                        kind: RunKind::OneWay { param: i, high },
                        stream_draw: 0,
                        model,
                        values,
                    });
                }
            }
        }
        Ok(Plan {
            runs,
            uncertainty,
            draws,
            tornado,
        })
    }

    /// Number of work units of run `run`: its blocks, or 1 for a PSA draw.
    fn units_of(&self, run: usize) -> u64 {
        match self.runs[run].kind {
            RunKind::Draw(_) => 1,
            _ => blocks(&self.runs[run].model),
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
                Work::Whole { run } => self.runs[run].model.sim.patients,
                Work::Blocks { run, blocks } => blocks.patients(self.runs[run].model.sim.patients),
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
                    Work::Whole { run } => (run, Blocks::all(&self.runs[run].model), true),
                    Work::Blocks { run, blocks } => (run, blocks, false),
                };
                let r = &self.runs[run];
                if whole {
                    // A draw reports means only: no quantile sketches.
                    let tally = run_blocks_keeping(
                        &r.model,
                        r.stream_draw,
                        block_ids,
                        Statistics::WithoutSketches,
                        progress,
                        cancel,
                    )?;
                    let results = Results::summary_from_tally(&r.model, &tally);
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
                        &r.model,
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
            let t = tallies[run]
                .as_ref()
                .filter(|t| t.moments.count() == r.model.sim.patients)
                .ok_or_else(|| PsaError::Setup(format!("run {run} is incomplete")))?;
            Ok(match r.kind {
                RunKind::OneWay { .. } => Results::summary_from_tally(&r.model, t),
                _ => Results::from_tally(&r.model, t),
            })
        };
        let base = results_of(0)?;
        let base_model = &self.runs[0].model;
        let psa = if self.draws > 0 {
            let mut v = Vec::new();
            for (run, r) in self.runs.iter().enumerate() {
                if let RunKind::Draw(d) = r.kind {
                    let results = draws[run]
                        .clone()
                        .ok_or_else(|| PsaError::Setup(format!("PSA draw {d} is missing")))?;
                    v.push(DrawResult {
                        draw: d,
                        values: r.values.clone(),
                        results,
                    });
                }
            }
            Some(PsaResults {
                names: self.uncertainty.names(),
                base_values: self.uncertainty.base_values(),
                draws: v,
                strategies: strategies(base_model),
                wtp_grid: wtp_grid(&self.uncertainty, base_model),
            })
        } else {
            None
        };
        let tornado = if self.tornado {
            let mut one_way = Vec::new();
            for (run, r) in self.runs.iter().enumerate() {
                if let RunKind::OneWay { param, high } = r.kind {
                    one_way.push((param, high, &r.model, results_of(run)?));
                }
            }
            Some(crate::psa::analysis::tornado_rows(
                &self.uncertainty,
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
