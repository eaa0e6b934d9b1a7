//! Dumps the persons `rtmopose` finds in a video as a ByteTrack sequence file (the input format
//! of `tools/bytetrack_reference/run_reference.py`, see `tools/bytetrack_reference/README.md`).
//!
//! ```text
//! cargo run --release --example dump_detections -- VIDEO OUT.json [--fps F] [--name NAME]
//!     [--model MODEL.onnx] [--max-frames N]
//! python3 tools/bytetrack_reference/run_reference.py OUT.json -o tests/fixtures/bytetrack/NAME.json
//! ```
//! `VIDEO` is a path, or a path relative to the data directory (`media/video/...`). The pipeline
//! is `filesrc ! decodebin ! videoconvert ! rtmopose score-threshold=0.1 ! appsink` (the default
//! model is `recognizer::rtmo_model()`); every frame becomes a list of `[x1, y1, x2, y2, score]`
//! (pixels of the decoded frame, rounded to 4 decimals), in the order the element attached them.
//! A frame without pose metadata (cannot happen with `interval=1`) is written as `null`. The
//! frame rate is the decoded caps' `framerate` unless `--fps` is given; the tracker `config` is
//! left at the reference's defaults.

use std::path::PathBuf;

use gst::prelude::*;
use serde_json::{Value, json};

/// The first `score-threshold` the tracker cares about is its low band (`score > 0.1`).
const SCORE_THRESHOLD: f64 = 0.1;
const DECIMALS: f64 = 1e4;

struct Args {
    video: PathBuf,
    out: PathBuf,
    fps: Option<f64>,
    name: Option<String>,
    model: Option<PathBuf>,
    max_frames: Option<usize>,
}

fn usage() -> ! {
    eprintln!(
        "usage: dump_detections VIDEO OUT.json [--fps F] [--name NAME] [--model MODEL.onnx] [--max-frames N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut positional = Vec::new();
    let (mut fps, mut name, mut model, mut max_frames) = (None, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--fps" => fps = Some(value().parse::<f64>().unwrap_or_else(|_| usage())),
            "--name" => name = Some(value()),
            "--model" => model = Some(PathBuf::from(value())),
            "--max-frames" => {
                max_frames = Some(value().parse::<usize>().unwrap_or_else(|_| usage()))
            }
            "-h" | "--help" => usage(),
            _ if a.starts_with("--") => usage(),
            _ => positional.push(a),
        }
    }
    if positional.len() != 2 {
        usage();
    }
    let video = PathBuf::from(&positional[0]);
    let video = if video.is_file() {
        video
    } else {
        recognizer::data(&positional[0])
    };
    Args {
        video,
        out: PathBuf::from(&positional[1]),
        fps,
        name,
        model,
        max_frames,
    }
}

/// The decoded stream's frame rate from its caps (prerolls a decode-only pipeline).
fn caps_frame_rate(video: &str) -> Option<f64> {
    let pipeline = recognizer::launch(&format!(
        "filesrc location=\"{video}\" ! decodebin ! videoconvert ! appsink name=sink sync=false"
    ));
    let sink = pipeline.by_name("sink").unwrap();
    pipeline.set_state(gst::State::Paused).ok()?;
    let (res, _, _) = pipeline.state(gst::ClockTime::from_seconds(60));
    let rate = res.ok().and_then(|_| {
        let caps = sink.static_pad("sink")?.current_caps()?;
        let f = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
        (f.numer() > 0 && f.denom() > 0).then(|| f.numer() as f64 / f.denom() as f64)
    });
    let _ = pipeline.set_state(gst::State::Null);
    rate
}

fn round4(v: f32) -> f64 {
    (v as f64 * DECIMALS).round() / DECIMALS
}

fn main() {
    let args = parse_args();
    recognizer::init();
    let video = args.video.display().to_string();
    let model = args.model.clone().unwrap_or_else(recognizer::rtmo_model);
    let frame_rate = match args.fps {
        Some(f) => f,
        None => caps_frame_rate(&video).unwrap_or_else(|| {
            eprintln!("{video}: no frame rate in the decoded caps; give --fps");
            std::process::exit(1);
        }),
    };
    let description = format!(
        "filesrc location=\"{video}\" ! decodebin ! videoconvert ! rtmopose model-file=\"{}\" score-threshold={SCORE_THRESHOLD} ! appsink name=sink",
        model.display()
    );
    let started = std::time::Instant::now();
    let collected = recognizer::collect_frames(&description).unwrap_or_else(|e| {
        eprintln!("pipeline failed: {e}");
        std::process::exit(1);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let take = args.max_frames.unwrap_or(usize::MAX).min(collected.len());
    let (mut dets, mut without_meta, mut max_dets) = (0usize, 0usize, 0usize);
    let frames: Vec<Value> = collected[..take]
        .iter()
        .map(|f| match &f.persons {
            None => {
                without_meta += 1;
                Value::Null
            }
            Some(persons) => {
                dets += persons.len();
                max_dets = max_dets.max(persons.len());
                Value::Array(
                    persons
                        .iter()
                        .map(|p| {
                            let [x1, y1, x2, y2] = p.bbox;
                            json!([
                                round4(x1),
                                round4(y1),
                                round4(x2),
                                round4(y2),
                                round4(p.score)
                            ])
                        })
                        .collect(),
                )
            }
        })
        .collect();
    let file_name = args
        .video
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let name = args.name.unwrap_or_else(|| {
        args.video
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    });
    let (width, height) = collected
        .first()
        .map(|f| (f.width, f.height))
        .unwrap_or((0, 0));
    let seq = json!({
        "name": name,
        "description": format!(
            "rtmopose ({}, score-threshold {SCORE_THRESHOLD}, other properties at their defaults) on media/video/{file_name}, {width}x{height}, {take} frames; dumped by examples/dump_detections.rs",
            model.file_name().unwrap().to_string_lossy()
        ),
        "frame_rate": frame_rate,
        "frames": frames,
    });
    std::fs::write(&args.out, serde_json::to_string(&seq).unwrap() + "\n").unwrap_or_else(|e| {
        eprintln!("cannot write {}: {e}", args.out.display());
        std::process::exit(1);
    });
    println!(
        "{name}: {take} frames at {frame_rate} fps, {dets} detections ({:.1}/frame, max {max_dets}), {without_meta} frames without metadata, pipeline {elapsed:.1} s -> {}",
        dets as f64 / take.max(1) as f64,
        args.out.display()
    );
}
