//! Several streams in one process: `rtmopose` with a session each versus one shared session
//! (`session-group`), unbatched (`max-batch=1`) and batched (`max-batch=N`), side by side.
//!
//! ```text
//! cargo bench --bench shared_session -- [streams=1,2,4] [threads=2] [rounds=3] [model=PATH] [video=PATH] [device=cpu|cuda]
//! ```
//! N branches `filesrc ! decodebin ! videoconvert ! queue ! rtmopose ! fakesink` over the same clip
//! run in one pipeline, timed from PLAYING to EOS (model load and preroll excluded). Each
//! configuration runs in a child process of its own, so that its memory figure is its own: the
//! resident set after preroll (sessions loaded, one frame per stream run) minus before. The model
//! must have a dynamic batch dimension to batch (default: the dynamic YOLO11n-pose export).
//! The configurations run in interleaved rounds, so that machine noise hits all alike; the table
//! gives each one's median frames/s (all streams together) and median memory.

use std::{process::Command, time::Instant};

use gst::prelude::*;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Separate,
    SharedUnbatched,
    SharedBatched,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Separate, Mode::SharedUnbatched, Mode::SharedBatched];

    fn name(self) -> &'static str {
        match self {
            Mode::Separate => "separate",
            Mode::SharedUnbatched => "shared-batch1",
            Mode::SharedBatched => "shared-batchN",
        }
    }

    fn from_name(name: &str) -> Mode {
        *Mode::ALL
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("unknown mode {name}"))
    }
}

struct Options {
    streams: Vec<usize>,
    rounds: usize,
    threads: u32,
    model: String,
    video: String,
    device: String,
}

/// Runs one configuration in this process; prints `timed_frames seconds loaded_kib batched_frames all_frames`.
fn child(options: &Options, mode: Mode, streams: usize) {
    recognizer::init();
    let before = recognizer::resident_kib();
    let group = match mode {
        Mode::Separate => String::new(),
        Mode::SharedUnbatched => "session-group=bench max-batch=1".into(),
        Mode::SharedBatched => format!("session-group=bench max-batch={streams}"),
    };
    let branches: Vec<String> = (0..streams)
        .map(|i| {
            format!(
                "filesrc location=\"{}\" ! decodebin ! videoconvert ! queue ! rtmopose name=pose{i} model-file=\"{}\" device={} fallback-to-cpu=false threads={} {group} ! fakesink",
                options.video, options.model, options.device, options.threads
            )
        })
        .collect();
    let pipeline = recognizer::launch(&branches.join(" "));
    pipeline.set_state(gst::State::Paused).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(300));
    let loaded = recognizer::resident_kib();
    let start = Instant::now();
    recognizer::run_to_eos(&pipeline).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let count = |property: &str| -> u64 {
        (0..streams)
            .map(|i| {
                pipeline
                    .by_name(&format!("pose{i}"))
                    .unwrap()
                    .property::<u64>(property)
            })
            .sum()
    };
    let inferences = count("inferences");
    // The preroll frames ran before the clock started.
    let timed = inferences - streams as u64;
    println!(
        "{timed} {seconds} {} {} {inferences}",
        loaded.saturating_sub(before),
        count("batched-frames")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = recognizer::bench_arg;
    let options = Options {
        streams: arg("streams")
            .unwrap_or_else(|| "1,2,4".into())
            .split(',')
            .map(|n| n.parse().expect("streams=N,N,..."))
            .collect(),
        threads: arg("threads")
            .map(|t| t.parse().expect("threads=N"))
            .unwrap_or(2),
        rounds: arg("rounds")
            .map(|t| t.parse().expect("rounds=N"))
            .unwrap_or(3),
        model: arg("model")
            .unwrap_or_else(|| recognizer::yolo_dynamic_model().display().to_string()),
        video: arg("video").unwrap_or_else(|| {
            recognizer::data("media/video/ntu_S002C002P003R002A043_rgb_falling.avi")
                .display()
                .to_string()
        }),
        device: arg("device").unwrap_or_else(|| "cpu".into()),
    };
    if let Some(spec) = arg("child") {
        let (mode, streams) = spec.split_once(':').expect("child=MODE:N");
        child(&options, Mode::from_name(mode), streams.parse().unwrap());
        return;
    }

    println!(
        "video {}; model {}; device {}; {} ORT threads per session; medians of {} rounds",
        options.video, options.model, options.device, options.threads, options.rounds
    );
    println!(
        "{:>7} {:>14} {:>12} {:>9} {:>14} {:>15}",
        "streams", "mode", "frames/s", "vs sep.", "loaded MiB", "batched frames"
    );
    let exe = std::env::current_exe().unwrap();
    let run = |mode: Mode, streams: usize| -> [f64; 5] {
        let output = Command::new(&exe)
            .args(&args)
            .arg(format!("child={}:{streams}", mode.name()))
            .output()
            .expect("running a configuration");
        assert!(
            output.status.success(),
            "{} x{streams} failed: {}",
            mode.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<f64> = text
            .lines()
            .last()
            .unwrap()
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        fields
            .try_into()
            .unwrap_or_else(|_| panic!("unexpected child output {text}"))
    };
    for &streams in &options.streams {
        let mut results: Vec<Vec<[f64; 5]>> = vec![Vec::new(); Mode::ALL.len()];
        for _ in 0..options.rounds {
            for (m, mode) in Mode::ALL.into_iter().enumerate() {
                results[m].push(run(mode, streams));
            }
        }
        let fps = |r: &[[f64; 5]]| {
            recognizer::median(
                r.iter()
                    .map(|[timed, seconds, ..]| timed / seconds)
                    .collect(),
            )
        };
        let separate = fps(&results[0]);
        for (mode, r) in Mode::ALL.into_iter().zip(&results) {
            let kib = recognizer::median(r.iter().map(|f| f[2]).collect());
            let [.., batched, all] = r[r.len() - 1];
            println!(
                "{streams:>7} {:>14} {:>12.2} {:>9.3} {:>14.1} {:>15}",
                mode.name(),
                fps(r),
                fps(r) / separate,
                kib / 1024.0,
                format!("{batched} of {all}")
            );
        }
    }
}
