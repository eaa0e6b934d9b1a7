//! Per-frame classifier cost when 1, 5 or 20 track windows are due at once: one batched
//! inference call (what `stgcnclassify` does) versus one call per track, same model, same
//! windows, measured side by side.
//!
//! `cargo bench --bench stgcn_batching -- [model=PATH] [threads=N] [rounds=N]`
//! Default model: the NTU-60 contract export (ST-GCN++, M = 2, T = 100) of the data directory.

use std::time::Instant;

use gstrecognizer::{
    action_model::{ActionModel, OutputKind},
    onnx,
};

fn main() {
    let arg = recognizer::bench_arg;
    let model_path = arg("model")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            recognizer::data("models/contract/stgcnpp_ntu60-shape_random-weights.onnx")
        });
    let threads: usize = arg("threads")
        .map(|v| v.parse().expect("threads=N"))
        .unwrap_or(1);
    let rounds: usize = arg("rounds")
        .map(|v| v.parse().expect("rounds=N"))
        .unwrap_or(20);
    let request = onnx::SessionRequest {
        model: &model_path,
        device: onnx::Device::Cpu,
        fallback_to_cpu: false,
        threads,
    };
    let mut model = ActionModel::load(&request).unwrap();
    let (m, t) = (
        model.persons.unwrap_or(1),
        model.frames.expect("a model with a fixed T"),
    );
    assert!(
        model.dynamic_batch,
        "batching needs a model with a dynamic batch dimension"
    );
    let per = m * t * 17 * 3;
    println!(
        "model {} (M = {m}, T = {t}), {threads} ORT thread(s), {rounds} rounds",
        model_path.display()
    );
    println!(
        "{:>6} {:>14} {:>16} {:>8}",
        "tracks", "batched ms", "per-track ms", "speed-up"
    );
    for n in [1usize, 5, 20] {
        // Deterministic pseudo-random skeletons in the normalised range.
        let samples: Vec<f32> = (0..n * per)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let batched = |model: &mut ActionModel| {
            model
                .classify(&samples, n, m, t, OutputKind::Logits)
                .unwrap()
        };
        let single = |model: &mut ActionModel| {
            (0..n)
                .flat_map(|i| {
                    model
                        .classify(
                            &samples[i * per..(i + 1) * per],
                            1,
                            m,
                            t,
                            OutputKind::Logits,
                        )
                        .unwrap()
                })
                .collect::<Vec<_>>()
        };
        // Same results either way (warm-up too).
        let (a, b) = (batched(&mut model), single(&mut model));
        let diff = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "batched and single results differ by {diff}");
        let (mut tb, mut ts) = (0.0, 0.0);
        for _ in 0..rounds {
            let start = Instant::now();
            std::hint::black_box(batched(&mut model));
            tb += start.elapsed().as_secs_f64();
            let start = Instant::now();
            std::hint::black_box(single(&mut model));
            ts += start.elapsed().as_secs_f64();
        }
        let (tb, ts) = (tb * 1e3 / rounds as f64, ts * 1e3 / rounds as f64);
        println!("{n:>6} {tb:>14.2} {ts:>16.2} {:>7.2}x", ts / tb);
    }
}
