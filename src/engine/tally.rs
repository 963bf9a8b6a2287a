//! Accounting of each simulated patient into mergeable accumulators.
//!
//! A [`Tally`] holds, for one worker, the moments and quantile sketches of every per-patient
//! metric, the per-year cash flows and the state-occupancy counts. Tallies merge exactly and
//! independently of order, so the totals do not depend on threads or shards.

use super::simulate::PatientRecord;
use crate::accounting::{
    account_arm, account_category, fold_whole_years, year_start_factors, ArmTotals, Discounter,
    YearFlows,
};
use crate::contracts::{PaidBy, PaymentKind};
use crate::model::Model;
use crate::stats::{ExactSum, MomentSet, QuantileSketch};
use serde::{Deserialize, Serialize};

/// Patients whose values wait for the sketches (a quarter of a block: the buffer stays in
/// the core's cache; the sketches do not depend on when values are flushed into them).
const PENDING_ROWS: usize = super::BLOCK_SIZE as usize / 4;

/// Per-arm metrics (one slot each per arm).
pub const ARM_METRICS: [&str; 6] = [
    "other_costs",
    "other_costs_undiscounted",
    "qalys",
    "qalys_undiscounted",
    "life_years",
    "life_years_undiscounted",
];
/// Per-contract metrics of the therapy arm. Amounts are per patient; `any_*` are 0/1
/// indicators (their mean is a probability).
pub const CONTRACT_METRICS: [&str; 13] = [
    "payer_cost",
    "drug_paid",
    "drug_paid_undiscounted",
    "manufacturer_npv",
    "share_of_price_paid",
    "refund",
    "any_refund",
    "withheld",
    "any_withheld",
    "admin_cost_payer",
    "admin_cost_manufacturer",
    "paid_by_next_payer",
    "refund_lost",
];

/// Index of a contract metric by name.
pub fn contract_metric(name: &str) -> usize {
    CONTRACT_METRICS
        .iter()
        .position(|m| *m == name)
        .expect("a known contract metric")
}
/// Per (contract, comparator) paired differences, therapy minus comparator.
pub const INCREMENTAL_METRICS: [&str; 3] = ["inc_cost", "inc_qalys", "inc_life_years"];

/// Where each metric lives in the per-patient value vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    arms: usize,
    contracts: usize,
    comparators: Vec<usize>,
    therapy: usize,
    /// Cost categories (their slots come after all the others).
    #[serde(default)]
    categories: usize,
}

impl Layout {
    /// The layout for a model.
    pub fn new(model: &Model) -> Self {
        Self {
            arms: model.arms.len(),
            contracts: model.contracts.len(),
            comparators: model.comparators(),
            therapy: model.therapy.arm,
            categories: model.cost_categories.len(),
        }
    }

    /// Slots before the cost categories'.
    fn fixed_slots(&self) -> usize {
        self.arms * ARM_METRICS.len()
            + self.contracts * CONTRACT_METRICS.len()
            + self.contracts * self.comparators.len() * INCREMENTAL_METRICS.len()
    }

    /// Total number of slots.
    pub fn slots(&self) -> usize {
        self.fixed_slots() + 2 * self.arms * self.categories
    }

    /// Slot of arm `a`'s cost in category `k` (discounted; `undiscounted`: undiscounted).
    pub fn category(&self, a: usize, k: usize, undiscounted: bool) -> usize {
        self.fixed_slots() + 2 * (a * self.categories + k) + usize::from(undiscounted)
    }

    /// Slot of arm metric `m` for arm `a`.
    pub fn arm(&self, a: usize, m: usize) -> usize {
        a * ARM_METRICS.len() + m
    }

    /// Slot of contract metric `m` for contract `c`.
    pub fn contract(&self, c: usize, m: usize) -> usize {
        self.arms * ARM_METRICS.len() + c * CONTRACT_METRICS.len() + m
    }

    /// Slot of incremental metric `m` for contract `c` against the `k`-th comparator.
    pub fn incremental(&self, c: usize, k: usize, m: usize) -> usize {
        self.arms * ARM_METRICS.len()
            + self.contracts * CONTRACT_METRICS.len()
            + (c * self.comparators.len() + k) * INCREMENTAL_METRICS.len()
            + m
    }

    /// The slot whose quantile sketch describes slot `slot`: itself, except for the
    /// incremental QALYs and life years of contracts after the first, which do not depend on
    /// the contract (therapy minus comparator health outcomes) and share the first contract's
    /// sketch.
    pub fn sketch_of(&self, slot: usize) -> usize {
        let first = self.incremental(0, 0, 0);
        if slot < first || slot >= self.fixed_slots() || self.comparators.is_empty() {
            return slot;
        }
        let per_contract = self.comparators.len() * INCREMENTAL_METRICS.len();
        let within = (slot - first) % per_contract;
        if within.is_multiple_of(INCREMENTAL_METRICS.len()) {
            slot
        } else {
            first + within
        }
    }

    /// The comparator arms, in order.
    pub fn comparators(&self) -> &[usize] {
        &self.comparators
    }

    /// Covariance pairs: (inc_cost, inc_qalys) for each (contract, comparator); then
    /// (therapy QALYs, payer cost) for each contract; then (therapy QALYs, therapy other
    /// costs) — the last two give the variance of each patient's net monetary benefit.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for c in 0..self.contracts {
            for k in 0..self.comparators.len() {
                v.push((self.incremental(c, k, 0), self.incremental(c, k, 1)));
            }
        }
        let q = self.arm(self.therapy, 2);
        for c in 0..self.contracts {
            v.push((q, self.contract(c, 0)));
        }
        v.push((q, self.arm(self.therapy, 0)));
        for c in 0..self.contracts {
            for k in 0..self.comparators.len() {
                v.push((self.incremental(c, k, 0), self.contract(c, 1)));
                v.push((self.incremental(c, k, 1), self.contract(c, 1)));
            }
        }
        v
    }

    /// Indices of the pairs (inc_cost, drug_paid) and (inc_qalys, drug_paid) of (contract,
    /// comparator), for the delta-method error of solved prices.
    pub fn pairs_paid(&self, c: usize, k: usize) -> (usize, usize) {
        let base = self.contracts * self.comparators.len() + self.contracts + 1;
        let i = base + 2 * (c * self.comparators.len() + k);
        (i, i + 1)
    }

    /// Index of the pair (therapy QALYs, payer cost under contract `c`).
    pub fn pair_qalys_cost(&self, c: usize) -> usize {
        self.contracts * self.comparators.len() + c
    }

    /// Index of the pair (therapy QALYs, therapy other costs).
    pub fn pair_qalys_other(&self) -> usize {
        self.contracts * self.comparators.len() + self.contracts
    }

    /// Index of the covariance pair of (contract, comparator).
    pub fn pair(&self, c: usize, k: usize) -> usize {
        c * self.comparators.len() + k
    }
}

/// Per-year sums: plain `f64` within a block, exact across blocks. Series come in pairs
/// (undiscounted, discounted at the payer's rate); flows over whole years are marked in a
/// difference array per pair and folded in at the end of each block (see [`YearFlows`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct YearSums {
    years: usize,
    #[serde(skip)]
    block: Vec<f64>,
    #[serde(skip)]
    whole_years: Vec<f64>,
    #[serde(skip)]
    year_start_factor: Vec<f64>,
    #[serde(skip)]
    discounter: Option<Discounter>,
    total: Vec<ExactSum>,
}

impl YearSums {
    fn new(series: usize, years: usize, discounter: Discounter) -> Self {
        Self {
            years,
            block: vec![0.0; series * years],
            whole_years: vec![0.0; series.div_ceil(2) * years],
            year_start_factor: year_start_factors(&discounter, years),
            discounter: Some(discounter),
            total: vec![ExactSum::new(); series * years],
        }
    }

    /// The per-patient view of the pair of series (`s`, `s` + 1).
    fn flows(&mut self, s: usize) -> YearFlows<'_> {
        debug_assert!(s.is_multiple_of(2));
        let y = self.years;
        let (u, d) = self.block[s * y..(s + 2) * y].split_at_mut(y);
        YearFlows {
            undiscounted: u,
            discounted: d,
            whole_years: &mut self.whole_years[s / 2 * y..(s / 2 + 1) * y],
            year_start_factor: &self.year_start_factor,
        }
    }

    fn end_block(&mut self) {
        if let Some(disc) = self.discounter {
            let y = self.years;
            for (pair, whole) in self.whole_years.chunks_mut(y).enumerate() {
                let (u, d) = self.block[2 * pair * y..(2 * pair + 2) * y].split_at_mut(y);
                fold_whole_years(whole, u, d, &self.year_start_factor, &disc);
            }
        }
        for (t, b) in self.total.iter_mut().zip(self.block.iter_mut()) {
            if *b != 0.0 {
                t.add(*b);
                *b = 0.0;
            }
        }
    }

    fn merge(&mut self, other: &YearSums) {
        for (a, b) in self.total.iter_mut().zip(&other.total) {
            a.merge(b);
        }
    }

    /// Total of series `s` in year `y`.
    pub fn total(&self, s: usize, y: usize) -> f64 {
        self.total[s * self.years + y].value()
    }
}

/// Indices of the cash-flow series: each is a pair (undiscounted, discounted at the payer's
/// rate) of per-year sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSeries {
    arms: usize,
    contracts: usize,
    categories: usize,
}

impl FlowSeries {
    /// The series of a model.
    pub fn new(model: &Model) -> Self {
        Self {
            arms: model.arms.len(),
            contracts: model.contracts.len(),
            categories: model.cost_categories.len(),
        }
    }

    /// Number of series.
    pub fn count(&self) -> usize {
        2 * self.arms + 4 * self.contracts + 2 * self.arms * self.categories
    }

    /// Arm `a`'s costs in category `k`.
    pub fn category_costs(&self, a: usize, k: usize) -> usize {
        2 * self.arms + 4 * self.contracts + 2 * (a * self.categories + k)
    }

    /// Other costs of arm `a` (undiscounted; +1 discounted).
    pub fn arm_costs(&self, a: usize) -> usize {
        2 * a
    }

    /// This payer's drug payments under contract `c` (net of refunds).
    pub fn payments(&self, c: usize) -> usize {
        2 * self.arms + 2 * c
    }

    /// This payer's administrative (assessment) costs under contract `c`.
    pub fn admin(&self, c: usize) -> usize {
        2 * self.arms + 2 * self.contracts + 2 * c
    }
}

/// Per simulated cohort (replicate r), per contract c, per calendar year Y: this payer's
/// therapy spend (payments net of refunds, plus assessment costs), undiscounted and
/// discounted to the start of calendar year 1. Exact sums, so any split of patients gives
/// the same totals.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CohortSums {
    contracts: usize,
    years: usize,
    replicates: usize,
    undiscounted: Vec<ExactSum>,
    discounted: Vec<ExactSum>,
    #[serde(skip)]
    scratch_u: Vec<f64>,
    #[serde(skip)]
    scratch_d: Vec<f64>,
}

impl CohortSums {
    fn new(c: &crate::model::CohortModel, contracts: usize) -> Self {
        let n = c.replicates as usize * contracts * c.years;
        Self {
            contracts,
            years: c.years,
            replicates: c.replicates as usize,
            undiscounted: vec![ExactSum::new(); n],
            discounted: vec![ExactSum::new(); n],
            scratch_u: vec![0.0; c.years],
            scratch_d: vec![0.0; c.years],
        }
    }

    fn index(&self, r: usize, c: usize, y: usize) -> usize {
        (r * self.contracts + c) * self.years + y
    }

    /// Replicates held.
    pub fn replicates(&self) -> usize {
        self.replicates
    }

    /// Calendar years held.
    pub fn years(&self) -> usize {
        self.years
    }

    /// Spend of replicate `r`, contract `c`, calendar year `y` (undiscounted, discounted).
    pub fn spend(&self, r: usize, c: usize, y: usize) -> (f64, f64) {
        let i = self.index(r, c, y);
        (self.undiscounted[i].value(), self.discounted[i].value())
    }

    fn merge(&mut self, other: &CohortSums) {
        for (a, b) in self.undiscounted.iter_mut().zip(&other.undiscounted) {
            a.merge(b);
        }
        for (a, b) in self.discounted.iter_mut().zip(&other.discounted) {
            a.merge(b);
        }
    }

    /// Adds patient `rec` (treated at the start of calendar year `u`) to replicate `r`.
    fn record(&mut self, model: &Model, rec: &PatientRecord, r: usize, u: usize) {
        let disc = &model.sim.costs;
        let shift = disc.factor(u as f64);
        let years = self.years;
        for c in 0..self.contracts {
            self.scratch_u.iter_mut().for_each(|x| *x = 0.0);
            self.scratch_d.iter_mut().for_each(|x| *x = 0.0);
            let (su, sd) = (&mut self.scratch_u, &mut self.scratch_d);
            let mut put = |t: f64, undiscounted: f64, discounted: f64| {
                let y = u + t.max(0.0).floor() as usize;
                if y < years {
                    su[y] += undiscounted;
                    sd[y] += discounted * shift;
                }
            };
            for p in &rec.payments[c] {
                if p.paid_by == PaidBy::ThisPayer {
                    put(p.time, p.amount, p.amount * disc.factor(p.time));
                }
            }
            admin_costs(model, rec, c, |t, amount_u, amount_d| {
                put(t, amount_u, amount_d)
            });
            for y in 0..years {
                if su[y] != 0.0 || sd[y] != 0.0 {
                    let i = (r * self.contracts + c) * years + y;
                    self.undiscounted[i].add(su[y]);
                    self.discounted[i].add(sd[y]);
                }
            }
        }
    }
}

/// Calls `sink(time, undiscounted, discounted at the payer's rate)` for each of this payer's
/// administrative costs of contract `c` (assessments done while the patient is a member, and
/// the annual cost of follow-up split by year).
fn admin_costs(model: &Model, rec: &PatientRecord, c: usize, mut sink: impl FnMut(f64, f64, f64)) {
    let Some(k) = model.contracts[c].observed_by else {
        return;
    };
    let plan = &model.plans[k];
    let disc = &model.sim.costs;
    if plan.cost_payer > 0.0 {
        for a in &rec.assessments[k] {
            if a.done && a.time < rec.churn_time {
                sink(
                    a.time,
                    plan.cost_payer,
                    plan.cost_payer * disc.factor(a.time),
                );
            }
        }
    }
    if plan.annual_cost_payer > 0.0 {
        let end = plan
            .follow_up_end(&rec.histories[model.therapy.arm])
            .min(rec.churn_time);
        crate::accounting::split_flow(
            0.0,
            end,
            plan.annual_cost_payer,
            disc,
            usize::MAX,
            |y, u, d| sink(y as f64, u, d),
        );
    }
}

/// The manufacturer's administrative costs of contract `c`, discounted at its rate.
fn admin_costs_manufacturer(model: &Model, rec: &PatientRecord, c: usize) -> f64 {
    let Some(k) = model.contracts[c].observed_by else {
        return 0.0;
    };
    let plan = &model.plans[k];
    let disc = &model.sim.manufacturer;
    let mut total = 0.0;
    if plan.cost_manufacturer > 0.0 {
        for a in &rec.assessments[k] {
            if a.done {
                total += plan.cost_manufacturer * disc.factor(a.time);
            }
        }
    }
    if plan.annual_cost_manufacturer > 0.0 {
        let end = plan.follow_up_end(&rec.histories[model.therapy.arm]);
        total += plan.annual_cost_manufacturer * disc.integral(0.0, end);
    }
    total
}

/// Everything accumulated over patients by one worker (or merged over all). Serialisable, so
/// that shards of a run can be merged exactly elsewhere.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tally {
    layout: Layout,
    #[serde(skip)]
    totals: Vec<ArmTotals>,
    /// The values of the patients not yet in the moments and sketches (patient-major, a row
    /// of [`Layout::slots`] values per patient, up to [`PENDING_ROWS`] rows), added one slot
    /// at a time: each sum stays in a register and each sketch's buckets in cache while its
    /// column goes in.
    #[serde(skip)]
    pending: Vec<f64>,
    #[serde(skip)]
    pending_patients: usize,
    /// The slots with a sketch of their own (see [`Layout::sketch_of`]).
    #[serde(skip)]
    sketched: Vec<usize>,
    /// Moments (mean, sd, covariances) of every slot.
    pub moments: MomentSet,
    /// Quantile sketch of every slot.
    pub sketches: Vec<QuantileSketch>,
    /// Cash flows by year, per series (see [`FlowSeries`]).
    pub flows: YearSums,
    /// Per simulated cohort, this payer's therapy spend by calendar year (see [`CohortSums`]).
    pub cohort: Option<CohortSums>,
    /// One tally per subgroup level (see
    /// [`crate::model::characteristics::Characteristics::subgroup_of`]), each of the patients
    /// at that level; empty without subgroups, and in a PSA draw's tally.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subgroups: Vec<Tally>,
    /// Occupancy difference counts per arm, per state, per grid point (+1 sentinel).
    occupancy_diff: Vec<Vec<Vec<i64>>>,
    occupancy_points: usize,
}

impl Tally {
    /// An empty tally; `shift` holds the reference value of each slot (patient 0's values).
    pub fn new(model: &Model, shift: Vec<f64>) -> Self {
        let layout = Layout::new(model);
        let slots = layout.slots();
        assert_eq!(shift.len(), slots);
        let points = model.sim.occupancy_points();
        let pairs = layout.pairs();
        Self {
            totals: Vec::with_capacity(model.arms.len()),
            pending: vec![0.0; slots * PENDING_ROWS.min(model.sim.patients as usize)],
            pending_patients: 0,
            sketched: (0..slots).filter(|&s| layout.sketch_of(s) == s).collect(),
            moments: MomentSet::new(shift, pairs),
            sketches: vec![QuantileSketch::new(); slots],
            flows: YearSums::new(
                FlowSeries::new(model).count(),
                model.sim.years(),
                model.sim.costs,
            ),
            cohort: model
                .cohort
                .as_ref()
                .map(|c| CohortSums::new(c, model.contracts.len())),
            occupancy_diff: model
                .arms
                .iter()
                .map(|a| vec![vec![0i64; points + 1]; a.states.len()])
                .collect(),
            occupancy_points: points,
            layout,
            subgroups: Vec::new(),
        }
    }

    /// An empty tally with one more (without a cohort) per subgroup level, if the model
    /// reports subgroups.
    pub fn with_subgroups(model: &Model, shift: Vec<f64>) -> Self {
        let levels = model.population.characteristics.subgroup_levels();
        let mut t = Self::new(model, shift.clone());
        t.subgroups = (0..levels)
            .map(|_| {
                let mut s = Self::new(model, shift.clone());
                s.cohort = None;
                s
            })
            .collect();
        t
    }

    /// An empty tally that keeps no quantile sketches (moments, cash flows and occupancy
    /// only): what a PSA draw needs, whose quantiles are never reported. Its
    /// [`Tally::sketch`]es stay empty.
    pub fn without_sketches(model: &Model, shift: Vec<f64>) -> Self {
        let mut t = Self::new(model, shift);
        t.sketched = Vec::new();
        t
    }

    /// The slot layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Accounts one patient: costs, QALYs and payments into `values`, flows and occupancy;
    /// and into the tally of each of its subgroups.
    pub fn record(&mut self, model: &Model, rec: &PatientRecord) {
        self.record_patient(model, rec);
        if !self.subgroups.is_empty() {
            let c = &model.population.characteristics;
            for k in 0..c.subgroups.len() {
                let g = c.subgroup_of(k, &rec.covariates);
                self.subgroups[g].record_patient(model, rec);
            }
        }
    }

    /// [`Tally::record`] into this tally only.
    fn record_patient(&mut self, model: &Model, rec: &PatientRecord) {
        // Patient-major: the i-th pending patient's values at i·slots.
        let slots = self.moments.slots();
        let i = self.pending_patients;
        compute_values(
            model,
            &self.layout,
            rec,
            &mut self.pending[i * slots..(i + 1) * slots],
            &mut self.flows,
            &mut self.totals,
        );
        self.row_written();
        if let (Some(cs), Some(cm)) = (self.cohort.as_mut(), model.cohort.as_ref()) {
            if let Some((r, u)) = cm.place(rec.index) {
                cs.record(model, rec, r, u);
            }
        }
        let step = model.sim.occupancy_step;
        for (a, h) in rec.histories.iter().enumerate() {
            let diff = &mut self.occupancy_diff[a];
            let last = h.segments.len() - 1;
            for (i, seg) in h.segments.iter().enumerate() {
                let j0 = first_point_at_or_after(seg.start, step);
                let j1 = if i == last {
                    self.occupancy_points
                } else {
                    first_point_at_or_after(seg.end, step).min(self.occupancy_points)
                };
                if j0 < j1 {
                    diff[seg.state][j0] += 1;
                    diff[seg.state][j1] -= 1;
                }
            }
        }
    }

    /// Adds one patient's metric values (a row in [`Layout`] order, as [`patient_values`]
    /// gives) to the moments and quantile sketches, and nothing else: no accounting, cash
    /// flows or occupancy. `obasim bench` times this as the cost of the statistics alone;
    /// the moments and sketches are those [`Tally::record`] makes of the same patients.
    pub fn record_values(&mut self, values: &[f64]) {
        let slots = self.moments.slots();
        let i = self.pending_patients;
        self.pending[i * slots..(i + 1) * slots].copy_from_slice(values);
        self.row_written();
    }

    /// Counts the pending row just written; flushes the pending rows when the buffer is full.
    fn row_written(&mut self) {
        self.pending_patients += 1;
        if self.pending.len() == self.pending_patients * self.moments.slots() {
            self.flush_pending();
        }
    }

    /// Closes a fixed block of patients (see [`MomentSet::end_block`]).
    pub fn end_block(&mut self) {
        self.flush_pending();
        self.moments.end_block();
        self.flows.end_block();
        for s in &mut self.subgroups {
            s.end_block();
        }
    }

    /// The quantile sketch of slot `slot` (shared by slots that always hold equal values).
    pub fn sketch(&self, slot: usize) -> &QuantileSketch {
        &self.sketches[self.layout.sketch_of(slot)]
    }

    /// Adds the pending values to the moments and the sketches, one slot at a time.
    fn flush_pending(&mut self) {
        let n = self.pending_patients;
        if n == 0 {
            return;
        }
        let slots = self.moments.slots();
        let rows = &self.pending[..n * slots];
        self.moments.add_rows(rows);
        // One sketch at a time (its buckets stay in cache), reading its column of the
        // pending rows; slots that always equal another slot (see [`Layout::sketch_of`]) are
        // not sketched twice.
        for &s in &self.sketched {
            self.sketches[s].add_strided(rows, s, slots);
        }
        self.pending_patients = 0;
    }

    /// Adds another tally (exact, order-independent).
    pub fn merge(mut self, mut other: Tally) -> Tally {
        let subgroups = std::mem::take(&mut self.subgroups);
        let theirs = std::mem::take(&mut other.subgroups);
        self.subgroups = if subgroups.is_empty() {
            theirs
        } else if theirs.is_empty() {
            subgroups
        } else {
            subgroups
                .into_iter()
                .zip(theirs)
                .map(|(a, b)| a.merge(b))
                .collect()
        };
        self.moments.merge(&other.moments);
        for (a, b) in self.sketches.iter_mut().zip(&other.sketches) {
            a.merge(b);
        }
        self.flows.merge(&other.flows);
        if let (Some(a), Some(b)) = (self.cohort.as_mut(), other.cohort.as_ref()) {
            a.merge(b);
        }
        for (a, b) in self.occupancy_diff.iter_mut().zip(&other.occupancy_diff) {
            for (sa, sb) in a.iter_mut().zip(b) {
                for (x, y) in sa.iter_mut().zip(sb) {
                    *x += y;
                }
            }
        }
        self
    }

    /// Patients in state `s` of arm `a` at occupancy grid point `j`.
    pub fn occupancy(&self, a: usize, s: usize, j: usize) -> i64 {
        self.occupancy_diff[a][s][..=j].iter().sum()
    }

    /// Occupancy counts of arm `a`, state `s`, over the whole grid.
    pub fn occupancy_series(&self, a: usize, s: usize) -> Vec<i64> {
        let mut acc = 0;
        self.occupancy_diff[a][s][..self.occupancy_points]
            .iter()
            .map(|d| {
                acc += d;
                acc
            })
            .collect()
    }
}

/// First grid index j with j·step >= t.
fn first_point_at_or_after(t: f64, step: f64) -> usize {
    if t <= 0.0 {
        return 0;
    }
    // ceil(t / step) by truncation (t > 0; no libm call); the loops below make it exact.
    let q = t / step;
    let mut j = q as usize;
    if (j as f64) < q {
        j += 1;
    }
    while j > 0 && (j - 1) as f64 * step >= t {
        j -= 1;
    }
    while (j as f64) * step < t {
        j += 1;
    }
    j
}

/// Computes one patient's metric values (layout order) and adds its cash flows to `flows`.
/// `totals` is scratch space (reused across patients).
pub fn compute_values(
    model: &Model,
    layout: &Layout,
    rec: &PatientRecord,
    values: &mut [f64],
    flows: &mut YearSums,
    totals: &mut Vec<ArmTotals>,
) {
    debug_assert_eq!(layout.slots(), values.len());
    let sim = &model.sim;
    let series = FlowSeries::new(model);
    totals.clear();
    for a in 0..model.arms.len() {
        let arm = rec.arm(model, a);
        let mut yf = flows.flows(series.arm_costs(a));
        let t = account_arm(
            arm,
            &rec.histories[a],
            &sim.costs,
            &sim.outcomes,
            rec.churn_time,
            &mut yf,
        );
        let base = layout.arm(a, 0);
        values[base] = t.other_costs;
        values[base + 1] = t.other_costs_undiscounted;
        values[base + 2] = t.qalys;
        values[base + 3] = t.qalys_undiscounted;
        values[base + 4] = t.life_years;
        values[base + 5] = t.life_years_undiscounted;
        totals.push(t);
        for k in 0..model.cost_categories.len() {
            let mut yf = flows.flows(series.category_costs(a, k));
            let (d, u) = account_category(
                arm,
                &rec.histories[a],
                &sim.costs,
                rec.churn_time,
                k,
                &mut yf,
            );
            values[layout.category(a, k, false)] = d;
            values[layout.category(a, k, true)] = u;
        }
    }
    let therapy = &totals[model.therapy.arm];
    let price = model.therapy.list_price;
    for (c, pays) in rec.payments.iter().enumerate() {
        let (mut paid, mut paid_u, mut revenue, mut net_all) = (0.0, 0.0, 0.0, 0.0);
        let (mut refund, mut next) = (0.0, 0.0);
        {
            let mut yf = flows.flows(series.payments(c));
            for p in pays {
                revenue += p.amount * sim.manufacturer.factor(p.time);
                net_all += p.amount;
                if p.kind == PaymentKind::Refund {
                    refund -= p.amount;
                }
                if p.paid_by == PaidBy::ThisPayer {
                    let dc = sim.costs.factor(p.time);
                    paid += p.amount * dc;
                    paid_u += p.amount;
                    yf.point(p.time, p.amount, dc);
                } else {
                    next += p.amount;
                }
            }
        }
        let mut admin_payer = 0.0;
        if model.contracts[c].observed_by.is_some() {
            let mut yf = flows.flows(series.admin(c));
            admin_costs(model, rec, c, |t, au, ad| {
                admin_payer += ad;
                yf.point_discounted(t, au, ad);
            });
        }
        let admin_mfr = admin_costs_manufacturer(model, rec, c);
        let ev = &rec.events[c];
        let v = &mut values[layout.contract(c, 0)..layout.contract(c, 0) + CONTRACT_METRICS.len()];
        v[0] = paid + therapy.other_costs + admin_payer;
        v[1] = paid;
        v[2] = paid_u;
        v[3] = revenue - model.therapy.cost_of_goods - admin_mfr;
        v[4] = if price > 0.0 { net_all / price } else { 0.0 };
        v[5] = refund;
        v[6] = f64::from(u8::from(refund > 0.0));
        v[7] = ev.withheld;
        v[8] = f64::from(u8::from(ev.withheld > 0.0));
        v[9] = admin_payer;
        v[10] = admin_mfr;
        v[11] = next;
        v[12] = ev.refund_lost;
        let payer_cost = v[0];
        for (k, &cmp) in layout.comparators.iter().enumerate() {
            let o = &totals[cmp];
            let i = layout.incremental(c, k, 0);
            values[i] = payer_cost - o.other_costs;
            values[i + 1] = therapy.qalys - o.qalys;
            values[i + 2] = therapy.life_years - o.life_years;
        }
    }
}

/// The reference (shift) values: patient 0's metric values in `draw`.
pub fn reference_values(model: &Model, draw: u64) -> Vec<f64> {
    patient_values(model, draw, 0..1)
}

/// The metric values of `patients` in `draw`: one row of [`Layout::slots`] values per
/// patient, in patient order.
pub fn patient_values(model: &Model, draw: u64, patients: std::ops::Range<u64>) -> Vec<f64> {
    let mut rec = PatientRecord::new(model);
    let layout = Layout::new(model);
    let slots = layout.slots();
    let mut values = vec![0.0; slots * (patients.end - patients.start) as usize];
    let mut flows = YearSums::new(
        FlowSeries::new(model).count(),
        model.sim.years(),
        model.sim.costs,
    );
    let mut totals = Vec::new();
    for (row, i) in values.chunks_exact_mut(slots.max(1)).zip(patients) {
        rec.simulate(model, draw, i);
        compute_values(model, &layout, &rec, row, &mut flows, &mut totals);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recording precomputed values (what `obasim bench` times as the statistics alone) makes
    /// the same moments and sketches as recording the simulated patients.
    #[test]
    fn record_values_accumulates_what_record_does() {
        let model = crate::bench::ReferenceModel::find("a")
            .unwrap()
            .model(2500)
            .unwrap();
        let n = model.sim.patients;
        let shift = reference_values(&model, 0);
        let (mut direct, mut replayed) = (
            Tally::new(&model, shift.clone()),
            Tally::new(&model, shift.clone()),
        );
        let values = patient_values(&model, 0, 0..n);
        let slots = shift.len();
        let mut rec = PatientRecord::new(&model);
        for i in 0..n {
            rec.simulate(&model, 0, i);
            direct.record(&model, &rec);
            replayed.record_values(&values[i as usize * slots..(i as usize + 1) * slots]);
            if (i + 1) % crate::engine::BLOCK_SIZE == 0 || i + 1 == n {
                direct.end_block();
                replayed.end_block();
            }
        }
        assert_eq!(replayed.moments.count(), n);
        for s in 0..slots {
            assert_eq!(
                direct.moments.mean_sd(s),
                replayed.moments.mean_sd(s),
                "slot {s}"
            );
            assert_eq!(direct.sketch(s), replayed.sketch(s), "slot {s}");
        }
        // Not a vacuous comparison: the values vary between patients.
        assert!(direct.moments.mean_sd(0).sd > 0.0);
        assert!(direct.sketch(0).count() == n);
    }

    #[test]
    fn shared_sketches_are_exactly_the_contract_independent_slots() {
        // With cost categories: their slots (after every other) are never shared.
        let layout = Layout {
            arms: 3,
            contracts: 4,
            comparators: vec![1, 2],
            therapy: 0,
            categories: 2,
        };
        for slot in 0..layout.slots() {
            let shared = layout.sketch_of(slot);
            let mut want = slot;
            for c in 1..4 {
                for k in 0..2 {
                    for m in 1..3 {
                        if slot == layout.incremental(c, k, m) {
                            want = layout.incremental(0, k, m);
                        }
                    }
                }
            }
            assert_eq!(shared, want, "slot {slot}");
        }
        let none = Layout {
            arms: 1,
            contracts: 2,
            comparators: vec![],
            therapy: 0,
            categories: 0,
        };
        assert!((0..none.slots()).all(|s| none.sketch_of(s) == s));
    }
}
