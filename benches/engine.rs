//! Criterion benches of the engine: the reference models of `obasim bench` (scenarios/bench/)
//! and the shipped example, each against its floor (the loop that draws exactly the random
//! numbers the model consumes) and the metric statistics alone (recorded metric values fed to
//! the moments and quantile sketches, as `obasim bench` times them). Single thread, fixed seed.
//! Run with `cargo bench --bench engine`; compare the engine and floor lines of one run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use obasim::bench::{RandomUse, RecordedValues, REFERENCE_MODELS};
use obasim::model::build::load;
use obasim::model::Model;
use obasim::scenario::Source;
use std::sync::atomic::AtomicBool;

const PATIENTS: u64 = 20_000;

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool")
}

fn bench_model(c: &mut Criterion, label: &str, model: &Model) {
    let pool = one_thread();
    let cancel = AtomicBool::new(false);
    let random = pool.install(|| RandomUse::record(model));
    let values = RecordedValues::record(model);
    let mut group = c.benchmark_group(label);
    group.sample_size(10);
    group.throughput(Throughput::Elements(model.sim.patients));
    group.bench_function("engine, 1 thread", |b| {
        b.iter(|| {
            pool.install(|| obasim::engine::run_draw(model, 0, &|_| {}, &cancel))
                .expect("run")
        })
    });
    group.bench_function("floor, 1 thread", |b| {
        b.iter(|| pool.install(|| random.replay()))
    });
    group.bench_function("metric statistics alone, 1 thread", |b| {
        b.iter(|| pool.install(|| values.statistics_only(model)))
    });
    group.finish();
}

fn reference_models(c: &mut Criterion) {
    for m in REFERENCE_MODELS {
        let model = m.model(PATIENTS).expect("the reference model compiles");
        bench_model(c, &format!("model ({})", m.key), &model);
    }
}

fn example(c: &mut Criterion) {
    let (_, mut model) = load(&Source::example()).expect("the embedded example compiles");
    model.sim.patients = PATIENTS;
    bench_model(c, "beti-cel example", &model);
}

criterion_group!(benches, reference_models, example);
criterion_main!(benches);
