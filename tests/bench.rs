//! `obasim bench`: the reference models, the count of random numbers each patient draws, the
//! floor loop that replays them, and the command's output. No timing is asserted here (speed
//! targets live in the bench's output, never in tests).

use obasim::bench::{bench_model, BenchOptions, RandomUse, ReferenceModel, REFERENCE_MODELS};
use obasim::engine::PatientRecord;
use obasim::rng::{stream, STREAM_ARM0, STREAM_POPULATION};
use rand::Rng;
use std::process::Command;

#[test]
fn reference_models_load_from_the_binary_and_match_the_shipped_files() {
    for m in REFERENCE_MODELS {
        let shipped = std::fs::read_to_string(format!(
            "{}/scenarios/bench/{}",
            env!("CARGO_MANIFEST_DIR"),
            m.file
        ))
        .unwrap();
        assert_eq!(shipped, m.text, "{} is embedded as shipped", m.file);
        let model = m.model(10).unwrap();
        assert_eq!(model.sim.patients, 10);
    }
    let a = ReferenceModel::find("a").unwrap().model(1).unwrap();
    assert_eq!(a.contracts.len(), 5);
    assert_eq!(a.arms[0].states.len(), 3);
    let b = ReferenceModel::find("b").unwrap().model(1).unwrap();
    assert_eq!(b.arms[0].states.len(), 6);
    let c = ReferenceModel::find("c").unwrap().model(1).unwrap();
    assert_eq!((c.arms.len(), c.arms[0].states.len()), (2, 3));
    assert!(!c.arms[0].background && c.population.life_table.is_none());
    let d = ReferenceModel::find("d").unwrap().model(1).unwrap();
    assert!(d.arms.iter().all(|a| a.effects.is_some()));
    assert_eq!(d.population.characteristics.table.as_ref().unwrap().rows, 3);
    assert!(ReferenceModel::find("e").is_none());
}

/// The recorded counts are the numbers of draws the sampler must make: three for the
/// patient (sex, age, background death; a fourth for model (d)'s patient-table row), and in
/// each arm one for the initial state plus one
/// per competing exit of every state left or held at the end (the sampler draws every exit's
/// time in each state it visits, except the death state).
#[test]
fn recorded_counts_are_the_draws_the_trajectories_imply() {
    for m in REFERENCE_MODELS {
        let model = m.model(300).unwrap();
        let mut rec = PatientRecord::new(&model);
        for i in 0..300 {
            rec.simulate(&model, 0, i);
            let population = if m.key == "d" { 4 } else { 3 };
            assert_eq!(rec.random_numbers[0], (STREAM_POPULATION, population));
            for (a, arm) in model.arms.iter().enumerate() {
                let want: usize = 1 + rec.histories[a]
                    .segments
                    .iter()
                    .filter(|s| s.state != arm.death)
                    .map(|s| arm.exits[s.state].len())
                    .sum::<usize>();
                assert_eq!(
                    rec.random_numbers[1 + a],
                    (STREAM_ARM0 + a as u64, want as u32),
                    "model {} patient {i} arm {a}",
                    m.key
                );
            }
        }
    }
}

/// The floor draws exactly the engine's random numbers: its checksum equals the sum of every
/// output of every stream, drawn independently here, and it does not depend on threads.
#[test]
fn floor_replays_exactly_the_consumed_numbers() {
    let m = ReferenceModel::find("b").unwrap();
    let model = m.model(2_500).unwrap();
    let random = RandomUse::record(&model);
    assert_eq!(random.patients(), 2_500);
    let mut rec = PatientRecord::new(&model);
    let mut want = 0u64;
    let mut total = 0u64;
    for i in 0..2_500 {
        rec.simulate(&model, 0, i);
        for &(id, count) in &rec.random_numbers {
            let mut g = stream(model.sim.seed, 0, i, id);
            for _ in 0..count {
                want = want.wrapping_add(g.next_u64());
            }
            total += count as u64;
        }
    }
    assert_eq!(random.total(), total);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        assert_eq!(
            pool.install(|| random.replay()),
            want,
            "{threads} thread(s)"
        );
    }
}

#[test]
fn bench_reports_consistent_figures() {
    let m = ReferenceModel::find("a").unwrap();
    let r = bench_model(
        &m,
        &BenchOptions {
            patients: 3_000,
            repeats: 1,
            threads: 2,
        },
    )
    .unwrap();
    assert_eq!(r.patients, 3_000);
    assert_eq!(r.streams_per_patient, 3.0);
    assert!(r.random_numbers_per_patient >= 5.0);
    assert_eq!(r.metrics_per_patient, 92);
    for t in [&r.floor, &r.trajectories, &r.statistics, &r.engine] {
        assert!(t.seconds_1_thread > 0.0 && t.seconds_parallel > 0.0);
        let ns = t.seconds_1_thread * 1e9 / 3_000.0;
        assert!((t.ns_per_patient_1_thread - ns).abs() <= 1e-9 * ns);
        let eff = t.seconds_1_thread / t.seconds_parallel / 2.0;
        assert!((t.parallel_efficiency - eff).abs() <= 1e-12);
    }
    let ratio = r.engine.seconds_1_thread / r.floor.seconds_1_thread;
    assert!((r.engine_over_floor_1_thread - ratio).abs() <= 1e-12 * ratio);
    let ratio = r.statistics.seconds_1_thread / r.floor.seconds_1_thread;
    assert!((r.statistics_over_floor_1_thread - ratio).abs() <= 1e-12 * ratio);
}

#[test]
fn bench_command_prints_json_and_refuses_bad_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args([
            "bench",
            "--model",
            "b",
            "--patients",
            "2000",
            "--repeats",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["model"], "b");
    for key in ["floor", "trajectories", "statistics", "engine"] {
        assert!(reports[0][key]["ns_per_patient_1_thread"].as_f64().unwrap() > 0.0);
        assert!(reports[0][key]["parallel_efficiency"].as_f64().unwrap() > 0.0);
    }
    assert!(reports[0]["engine_over_floor_1_thread"].as_f64().unwrap() > 1.0);

    let table = Command::new(env!("CARGO_BIN_EXE_obasim"))
        .args([
            "bench",
            "--model",
            "a",
            "--patients",
            "1000",
            "--repeats",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("engine / floor"), "{text}");
    assert!(text.contains("floor (random numbers)"), "{text}");
    assert!(text.contains("metric statistics alone / floor"), "{text}");

    for bad in [
        vec!["bench", "--model", "z"],
        vec!["bench", "--patients", "0"],
        vec!["bench", "--threads", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_obasim"))
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
