//! An NVR-style application: one pipeline per camera in one process, the cameras' `rtmopose`
//! elements sharing one pose model session (`session-group`), and fall events taken from the bus
//! (`eventsink post-messages=true`), with no file written.
//!
//! ```text
//! cargo run --release --example nvr -- SOURCE [SOURCE ...] [--pose-model M.onnx]
//!     [--action-model M.onnx] [--threads N] [--max-batch N]
//! ```
//! A `SOURCE` is a file (a path, or a path relative to the data directory such as
//! `media/video/...`) or a URI (`rtsp://...`, `file:///...`). Camera `i` is stream `cam<i>`. Each
//! event is printed as it arrives (`cam0 fall: track 1, score 0.93, from 2.000 s`); at the end a
//! line per camera gives its frames, how many of them ran in a call shared with another camera,
//! and its events. The exit status is 1 if a pipeline failed.

use std::{path::PathBuf, thread};

use gst::prelude::*;

struct Args {
    sources: Vec<String>,
    pose_model: PathBuf,
    action_model: PathBuf,
    threads: u32,
    max_batch: Option<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: nvr SOURCE [SOURCE ...] [--pose-model M.onnx] [--action-model M.onnx] [--threads N] [--max-batch N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        sources: Vec::new(),
        pose_model: PathBuf::new(),
        action_model: recognizer::fall_model(),
        threads: 2,
        max_batch: None,
    };
    let mut pose_model = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--pose-model" => pose_model = Some(PathBuf::from(value())),
            "--action-model" => args.action_model = PathBuf::from(value()),
            "--threads" => args.threads = value().parse().unwrap_or_else(|_| usage()),
            "--max-batch" => args.max_batch = Some(value().parse().unwrap_or_else(|_| usage())),
            "-h" | "--help" => usage(),
            _ if arg.starts_with("--") => usage(),
            _ => args.sources.push(arg),
        }
    }
    if args.sources.is_empty() {
        usage();
    }
    args.pose_model = pose_model.unwrap_or_else(recognizer::rtmo_model);
    args
}

/// The source part of a camera's pipeline.
fn source(spec: &str) -> String {
    if spec.contains("://") {
        return format!("uridecodebin uri=\"{spec}\"");
    }
    let path = PathBuf::from(spec);
    let path = if path.is_file() {
        path
    } else {
        recognizer::data_dir().join(spec)
    };
    format!("filesrc location=\"{}\" ! decodebin", path.display())
}

/// An error message with its details (GStreamer puts the file name there, for example).
fn error_text(e: &gst::message::Error) -> String {
    match e.debug() {
        Some(debug) => format!("{} ({debug})", e.error()),
        None => e.error().to_string(),
    }
}

/// What one camera's pipeline did.
struct CameraResult {
    stream: String,
    frames: u64,
    batched: u64,
    events: usize,
    error: Option<String>,
}

/// Plays one camera to its end, printing its events as they arrive.
fn run_camera(stream: String, pipeline: gst::Pipeline) -> CameraResult {
    let bus = pipeline.bus().unwrap();
    let mut result = CameraResult {
        stream,
        frames: 0,
        batched: 0,
        events: 0,
        error: None,
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is an error message on the bus.
        let reason = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .and_then(|m| {
                if let gst::MessageView::Error(e) = m.view() {
                    Some(error_text(e))
                } else {
                    None
                }
            });
        result.error = Some(format!(
            "could not start: {}",
            reason.unwrap_or_else(|| "no reason given".into())
        ));
    }
    while result.error.is_none() {
        let Some(message) = bus.timed_pop(gst::ClockTime::NONE) else {
            break;
        };
        match message.view() {
            gst::MessageView::Element(element) => {
                let Some(event) = element
                    .structure()
                    .filter(|s| s.name() == "recognizer-event")
                else {
                    continue;
                };
                result.events += 1;
                let start_ns = event.get::<u64>("start-pts").unwrap_or(0);
                println!(
                    "{} {}: track {}, score {:.2}, from {:.3} s",
                    result.stream,
                    event.get::<String>("type").unwrap_or_default(),
                    event.get::<u64>("track-id").unwrap_or(0),
                    event.get::<f64>("score").unwrap_or(0.0),
                    start_ns as f64 / 1e9
                );
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => result.error = Some(error_text(e)),
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    let pose = pipeline.by_name("pose").unwrap();
    result.frames = pose.property::<u64>("inferences");
    result.batched = pose.property::<u64>("batched-frames");
    result
}

fn main() {
    let args = parse_args();
    recognizer::init();
    let max_batch = args.max_batch.unwrap_or(args.sources.len() as u32);
    let cameras: Vec<_> = args
        .sources
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let stream = format!("cam{i}");
            let description = format!(
                "{} ! videoconvert ! queue max-size-buffers=4 ! \
                 rtmopose name=pose model-file=\"{}\" score-threshold=0.1 threads={} session-group=nvr max-batch={max_batch} ! \
                 bytetrack ! queue max-size-buffers=4 ! stgcnclassify model-file=\"{}\" ! \
                 eventsink stream={stream} labels=fall label-match=contains event-type=fall min-frames=3 post-messages=true",
                source(spec),
                args.pose_model.display(),
                args.threads,
                args.action_model.display()
            );
            let pipeline = gst::parse::launch(&description)
                .unwrap_or_else(|e| panic!("{stream}: {e}"))
                .downcast::<gst::Pipeline>()
                .unwrap();
            thread::spawn(move || run_camera(stream, pipeline))
        })
        .collect();
    let results: Vec<CameraResult> = cameras
        .into_iter()
        .map(|c| c.join().expect("camera thread"))
        .collect();
    let mut failed = false;
    for r in &results {
        match &r.error {
            None => println!(
                "nvr: {} {} frames ({} in shared calls), {} events",
                r.stream, r.frames, r.batched, r.events
            ),
            Some(e) => {
                failed = true;
                println!("nvr: {} failed: {e}", r.stream);
            }
        }
    }
    std::process::exit(i32::from(failed));
}
