//! Reference model (a) of `obasim bench`, hand-specialised: one loop that simulates only this
//! model, with its numbers written into the code, and keeps only the 21 means (and their
//! sums of squares) that the NumPy peer of `benches/peers/` compares. No quantile sketches, no
//! cash flows by year, no occupancy, no general contract terms, no dispatch.
//!
//! It answers one question for issue #6: how close to the random-number floor can a program
//! for this model come at all? It draws from the same streams as the engine, in the same
//! order, so it simulates the same patients, and it checks that its 21 means equal the
//! engine's (to rounding: the engine sums exactly, this loop in plain f64).
//!
//! Run: `cargo run --release --example specialised_model_a [PATIENTS]` (default 1,000,000).
//! Prints the floor, this loop and the engine (`obasim run`'s simulation), one thread each,
//! best of three, in ns per patient and as ratios to the floor; exits 1 if a mean disagrees.

use obasim::accounting::Discounter;
use obasim::bench::{RandomUse, ReferenceModel};
use obasim::engine::tally::{ARM_METRICS, CONTRACT_METRICS};
use obasim::engine::{run_draw, Tally};
use obasim::model::Model;
use obasim::rng::{exp1, uniform_open, PatientStreams, STREAM_ARM0, STREAM_POPULATION};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The model's numbers (scenarios/bench/a-three-state.toml, uncertain parameters at their
/// means). The agreement check below fails if they drift from the scenario.
const HORIZON: f64 = 50.0;
const RESPONSE_SHARE: f64 = 0.85;
const WANING: f64 = 0.05;
const FAILURE_DEATH: f64 = 0.02;
const UTILITY_RESPONSE: f64 = 0.90;
const UTILITY_FAILURE: f64 = 0.65;
const COST_RESPONSE: f64 = 2_000.0;
const COST_FAILURE: f64 = 30_000.0;
const ADMINISTRATION: f64 = 50_000.0;
const PRICE: f64 = 2_000_000.0;
const COST_OF_GOODS: f64 = 400_000.0;

/// The compared means, in this order: per arm (therapy, standard care) qalys, life_years,
/// other_costs; per contract payer_cost, drug_paid, manufacturer_npv.
const ARM_COMPARED: [&str; 3] = ["qalys", "life_years", "other_costs"];
const CONTRACT_COMPARED: [&str; 3] = ["payer_cost", "drug_paid", "manufacturer_npv"];
const CONTRACTS: usize = 5;
const COMPARED: usize = 2 * ARM_COMPARED.len() + CONTRACTS * CONTRACT_COMPARED.len();

/// Sums and sums of squares of the compared values over all patients.
struct Sums {
    n: u64,
    sum: [f64; COMPARED],
    squares: [f64; COMPARED],
}

/// Simulates every patient of `model` (draw 0) on the calling thread.
fn specialised(model: &Model) -> Sums {
    let (costs, manufacturer) = (Discounter::new(0.03), Discounter::new(0.08));
    let outcomes = &costs; // the same 3%
    let mut s = Sums {
        n: model.sim.patients,
        sum: [0.0; COMPARED],
        squares: [0.0; COMPARED],
    };
    let mut covariates = Vec::new();
    for i in 0..model.sim.patients {
        let streams = PatientStreams::new(model.sim.seed, 0, i);
        let patient =
            model
                .population
                .sample(i, &mut streams.stream(STREAM_POPULATION), &mut covariates);
        let background = patient.background_death;

        // Therapy arm: response -> failure -> death, background death from every state.
        let mut rng = streams.stream(STREAM_ARM0);
        let (failure, death) = if uniform_open(&mut rng) <= RESPONSE_SHARE {
            let fails = exp1(&mut rng) / WANING;
            if background <= fails {
                (f64::INFINITY, background)
            } else {
                (
                    fails,
                    (fails + exp1(&mut rng) / FAILURE_DEATH).min(background),
                )
            }
        } else {
            (0.0, (exp1(&mut rng) / FAILURE_DEATH).min(background))
        };
        let end = death.min(HORIZON);
        let response_end = failure.min(end);
        let in_response = outcomes.integral_given_start(0.0, response_end, 1.0);
        let in_failure = if response_end < end {
            outcomes.integral_given_start(response_end, end, outcomes.factor(response_end))
        } else {
            0.0
        };
        let therapy_costs =
            ADMINISTRATION + COST_RESPONSE * in_response + COST_FAILURE * in_failure;
        let therapy = [
            UTILITY_RESPONSE * in_response + UTILITY_FAILURE * in_failure,
            in_response + in_failure,
            therapy_costs,
        ];

        // Standard care: failure -> death (one initial-state draw, as the engine makes).
        let mut rng = streams.stream(STREAM_ARM0 + 1);
        uniform_open(&mut rng);
        let end = (exp1(&mut rng) / FAILURE_DEATH)
            .min(background)
            .min(HORIZON);
        let alive = outcomes.integral_given_start(0.0, end, 1.0);
        let standard = [UTILITY_FAILURE * alive, alive, COST_FAILURE * alive];

        // The five contracts' payments: (time, amount) in time order.
        let responding = |t: f64| t < failure && t < death;
        let mut values = [0.0; COMPARED];
        values[..3].copy_from_slice(&therapy);
        values[3..6].copy_from_slice(&standard);
        let mut book = |c: usize, payments: &[(f64, f64)]| {
            let (mut paid, mut npv) = (0.0, -COST_OF_GOODS);
            for &(t, amount) in payments {
                paid += amount * costs.factor(t);
                npv += amount * manufacturer.factor(t);
            }
            values[6 + 3 * c..9 + 3 * c].copy_from_slice(&[paid + therapy_costs, paid, npv]);
        };
        let mut buffer = [(0.0, 0.0); 5];
        book(0, &[(0.0, PRICE)]);
        // 5 annual installments, stopping at death.
        let n = (0..5).take_while(|&y| (y as f64) < death).count();
        for (y, p) in buffer.iter_mut().enumerate().take(n) {
            *p = (y as f64, PRICE / 5.0);
        }
        book(1, &buffer[..n]);
        // Pay while responding: the first at 0, then only while alive and in response.
        let n = 1 + (1..5).take_while(|&y| responding(y as f64)).count();
        for (y, p) in buffer.iter_mut().enumerate().take(n) {
            *p = (y as f64, PRICE / 5.0);
        }
        book(2, &buffer[..n]);
        // Payment at result: half at 0, half at 2 if in response then.
        if responding(2.0) {
            book(3, &[(0.0, PRICE / 2.0), (2.0, PRICE / 2.0)]);
        } else {
            book(3, &[(0.0, PRICE / 2.0)]);
        }
        // 5-year warranty: refund (1 - t/5) of the price on entering failure at t <= 5.
        if failure <= 5.0 && failure < death {
            book(
                4,
                &[(0.0, PRICE), (failure, -PRICE * (1.0 - failure / 5.0))],
            );
        } else {
            book(4, &[(0.0, PRICE)]);
        }

        for ((sum, square), v) in s.sum.iter_mut().zip(&mut s.squares).zip(values) {
            *sum += v;
            *square += v * v;
        }
    }
    s
}

/// The engine's means of the compared values, in [`specialised`]'s order.
fn engine_means(model: &Model, tally: &Tally) -> Vec<f64> {
    let layout = tally.layout();
    let arm = |m: &str| ARM_METRICS.iter().position(|x| *x == m).unwrap();
    let contract = |m: &str| CONTRACT_METRICS.iter().position(|x| *x == m).unwrap();
    let mut slots = Vec::new();
    for a in [model.therapy.arm, 1 - model.therapy.arm] {
        slots.extend(ARM_COMPARED.iter().map(|m| layout.arm(a, arm(m))));
    }
    for c in 0..CONTRACTS {
        slots.extend(
            CONTRACT_COMPARED
                .iter()
                .map(|m| layout.contract(c, contract(m))),
        );
    }
    slots
        .into_iter()
        .map(|s| tally.moments.mean_sd(s).mean)
        .collect()
}

fn best_of_three<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = (f64::INFINITY, None);
    for _ in 0..3 {
        let start = Instant::now();
        let out = f();
        let t = start.elapsed().as_secs_f64();
        if t < best.0 {
            best = (t, Some(out));
        }
    }
    (best.0, best.1.expect("three runs"))
}

fn main() {
    let patients: u64 = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(s) => match s.replace('_', "").parse::<f64>() {
            Ok(x) if x >= 1.0 => x as u64,
            _ => {
                eprintln!("usage: specialised_model_a [PATIENTS]  (a positive number)");
                std::process::exit(2);
            }
        },
    };
    let model = ReferenceModel::find("a")
        .expect("model (a)")
        .model(patients)
        .expect("the reference model compiles");
    assert_eq!(model.contracts.len(), CONTRACTS);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let random = RandomUse::record(&model);
    let cancel = AtomicBool::new(false);
    let (floor, _) = best_of_three(|| one.install(|| random.replay()));
    let (loop_time, sums) = best_of_three(|| specialised(&model));
    let (engine_time, tally) = best_of_three(|| {
        one.install(|| run_draw(&model, 0, &|_| {}, &cancel).expect("the engine runs"))
    });

    let ns = |t: f64| t * 1e9 / patients as f64;
    println!("model (a), {patients} patients, one thread, best of three; ns per patient:");
    println!("  floor (random numbers)        {:>8.1}", ns(floor));
    println!(
        "  hand-specialised loop         {:>8.1}  ({:.1}x the floor; 21 means and SDs only)",
        ns(loop_time),
        loop_time / floor
    );
    println!(
        "  engine (as `obasim run`)      {:>8.1}  ({:.1}x the floor; every metric, quantiles, flows)",
        ns(engine_time),
        engine_time / floor
    );

    let engine = engine_means(&model, &tally);
    let mut names: Vec<String> = Vec::new();
    for arm in ["therapy", "standard_care"] {
        names.extend(ARM_COMPARED.iter().map(|m| format!("{arm} {m}")));
    }
    for c in &model.contracts {
        names.extend(CONTRACT_COMPARED.iter().map(|m| format!("{}: {m}", c.name)));
    }
    let mut worst: f64 = 0.0;
    println!(
        "\n  {:<40} {:>18} {:>18} {:>10}",
        "mean", "specialised", "engine", "sd"
    );
    for (k, name) in names.iter().enumerate() {
        let n = sums.n as f64;
        let mean = sums.sum[k] / n;
        let sd = (sums.squares[k] / n - mean * mean).max(0.0).sqrt();
        let relative = (mean - engine[k]).abs() / engine[k].abs().max(1.0);
        worst = worst.max(relative);
        println!("  {name:<40} {mean:>18.6} {:>18.6} {sd:>10.3}", engine[k]);
    }
    println!("  largest relative difference of the means: {worst:.1e}");
    if worst > 1e-9 {
        eprintln!("the specialised loop and the engine disagree: the model and this loop drifted");
        std::process::exit(1);
    }
}
