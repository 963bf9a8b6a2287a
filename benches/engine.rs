//! Throughput of the engine on the shipped example (single thread, fixed seed).
//! Run with `cargo bench --bench engine`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use obasim::model::build::load;
use obasim::scenario::Source;
use std::sync::atomic::AtomicBool;

fn example_throughput(c: &mut Criterion) {
    let (_, mut model) = load(&Source::example()).expect("the embedded example compiles");
    model.sim.patients = 20_000;
    let cancel = AtomicBool::new(false);
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(model.sim.patients));
    group.bench_function("beti-cel example, 1 thread, 20k patients", |b| {
        b.iter(|| obasim::simulate(&model, Some(1), &|_| {}, &cancel).expect("run"))
    });
    group.finish();
}

criterion_group!(benches, example_throughput);
criterion_main!(benches);
