//! Every check of the CUDA path in one run, for the GPU machine (`scripts/device-kit` packs it
//! with what it needs there); with `device=cpu` it runs the same checks on the CPU.
//!
//! ```text
//! cargo bench --bench device_check -- kit=DIR [device=cuda] [out=FILE.json] [streams=1,8,16,32,64]
//!     [frames=300] [paced-seconds=8] [warmup-seconds=2] [rounds=3] [raw-batches=1,8,16,32]
//!     [classifier-device=cpu|cuda] [stream-modes=flat,paced]
//!     [checks=accuracy,fall,raw,single,streams]
//! ```
//! `kit` holds `models/` (`yolo11n-pose_dynamic.onnx`, `fall_stgcnpp.onnx`, optionally
//! `yolo11n-pose_dynamic_fp16.onnx`), `images/*.jpg` and `frames/NNN.jpg` (the NTU falling clip).
//!
//! - accuracy: persons of every image with the device against the CPU (boxes and keypoints, px);
//! - fall: the clip through `rtmopose ! bytetrack ! stgcnclassify ! eventsink` on the device and
//!   on the CPU: fall events on each;
//! - raw: ONNX Runtime alone on letterboxed tensors at batch 1, 8, 16 and 32, from plain host
//!   memory (`Session::run`) and through IO binding from pinned memory (as the element runs);
//! - single: one stream of pre-decoded frames through the full chain (`appsrc ! queue ! rtmopose !
//!   bytetrack ! queue ! stgcnclassify ! fakesink`) against raw batch-1 inference, side by side in
//!   interleaved rounds (medians);
//! - streams: N such streams, one pipeline each, sharing one `session-group`: flat out (aggregate
//!   frames/s, mean frames per call) and paced at 30 frames/s (per-frame latency p50/p99 from
//!   `appsrc` to the sink, whether every stream keeps up), with the process's CPU use, the
//!   element's pre-processing and call times, and the GPU memory in use (`nvidia-smi`).
//!
//! Decoding is not part of any figure: frames are decoded once, before.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use gst::prelude::*;
use gstrecognizer::{
    onnx::{self, Device},
    pose_model::PoseModel,
    video,
};
use ort::value::TensorRef;
use serde_json::{Value, json};

const FPS: u64 = 30;
const GUARD: gst::ClockTime = gst::ClockTime::from_seconds(600);

struct Options {
    kit: PathBuf,
    device: Device,
    streams: Vec<usize>,
    frames: usize,
    paced_seconds: u64,
    rounds: usize,
    raw_batches: Vec<usize>,
    /// Where stgcnclassify runs in the chains (`cpu` with one thread, or `cuda`).
    classifier_device: Device,
    /// Seconds at the start of a paced run left out of its latency and frame-rate figures.
    warmup_seconds: u64,
    /// Which runs `streams` makes per stream count: `flat` (flat out), `paced` (30 fps).
    stream_modes: Vec<String>,
    checks: Vec<String>,
    out: Option<PathBuf>,
}

fn options() -> Options {
    let arg = recognizer::bench_arg;
    Options {
        kit: arg("kit").map(PathBuf::from).expect("kit=DIR"),
        device: arg("device")
            .unwrap_or_else(|| "cuda".into())
            .parse()
            .expect("device=cpu|cuda|cuda:N"),
        streams: arg("streams")
            .unwrap_or_else(|| "1,8,16,32,64".into())
            .split(',')
            .map(|s| s.parse().expect("streams=N,N,..."))
            .collect(),
        frames: arg("frames").map_or(300, |s| s.parse().expect("frames=N")),
        paced_seconds: arg("paced-seconds").map_or(8, |s| s.parse().expect("paced-seconds=N")),
        rounds: arg("rounds").map_or(3, |s| s.parse().expect("rounds=N")),
        raw_batches: arg("raw-batches")
            .unwrap_or_else(|| "1,8,16,32".into())
            .split(',')
            .map(|s| s.parse().expect("raw-batches=N,N,..."))
            .collect(),
        classifier_device: arg("classifier-device")
            .unwrap_or_else(|| "cpu".into())
            .parse()
            .expect("classifier-device=cpu|cuda"),
        warmup_seconds: arg("warmup-seconds").map_or(2, |s| s.parse().expect("warmup-seconds=N")),
        stream_modes: arg("stream-modes")
            .unwrap_or_else(|| "flat,paced".into())
            .split(',')
            .map(str::to_string)
            .collect(),
        checks: arg("checks")
            .unwrap_or_else(|| "accuracy,fall,raw,single,streams".into())
            .split(',')
            .map(str::to_string)
            .collect(),
        out: arg("out").map(PathBuf::from),
    }
}

fn pose_model(kit: &Path) -> PathBuf {
    kit.join("models/yolo11n-pose_dynamic.onnx")
}

fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

/// Frames decoded once (I420, as cameras deliver them after decoding).
struct Frames {
    caps: gst::Caps,
    buffers: Vec<gst::Buffer>,
}

fn decode_frames(dir: &Path) -> Frames {
    let count = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        })
        .count();
    let pipeline = recognizer::launch(&format!(
        "multifilesrc location=\"{}/%03d.jpg\" index=0 stop-index={} caps=image/jpeg,framerate={FPS}/1 ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink sync=false",
        dir.display(),
        count - 1
    ));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut buffers = Vec::new();
    let mut caps = None;
    while let Ok(sample) = sink.pull_sample() {
        caps.get_or_insert_with(|| sample.caps().unwrap().to_owned());
        buffers.push(sample.buffer().unwrap().to_owned());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(buffers.len(), count, "decoded frames of {}", dir.display());
    Frames {
        caps: caps.unwrap(),
        buffers,
    }
}

/// Processor time of this process so far (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Clock ticks are 1/100 s on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// GPU memory in use (MiB) as nvidia-smi reports it, `None` without nvidia-smi.
fn gpu_memory_mib() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Samples GPU memory while a run lasts; gives the largest figure.
struct GpuMemorySampler {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Option<u64>>,
}

impl GpuMemorySampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut peak = None;
            while !flag.load(Ordering::Relaxed) {
                if let Some(m) = gpu_memory_mib() {
                    peak = Some(peak.unwrap_or(0).max(m));
                } else {
                    return None;
                }
                thread::sleep(Duration::from_millis(250));
            }
            peak
        });
        Self { stop, thread }
    }

    fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------------
// accuracy and fall event: the device against the CPU

fn persons_of_image(image: &Path, model: &Path, device: Device) -> Vec<recognizer_meta::Person> {
    let frames = recognizer::collect_frames(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! rtmopose model-file={} device={device} fallback-to-cpu=false threads=2 ! appsink name=sink",
        quoted(image),
        quoted(model)
    ))
    .unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    frames[0].persons.clone().expect("pose metadata")
}

fn accuracy(options: &Options) -> Value {
    let model = pose_model(&options.kit);
    let mut images: Vec<PathBuf> = std::fs::read_dir(options.kit.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    images.sort();
    let mut per_image = Vec::new();
    let mut worst = 0.0f32;
    let mut same_counts = true;
    for image in &images {
        let cpu = persons_of_image(image, &model, Device::Cpu);
        let dev = persons_of_image(image, &model, options.device);
        let mut diff = 0.0f32;
        if cpu.len() == dev.len() {
            for (a, b) in cpu.iter().zip(&dev) {
                for (u, v) in a.bbox.iter().zip(&b.bbox) {
                    diff = diff.max((u - v).abs());
                }
                for (u, v) in a.keypoints.iter().zip(&b.keypoints) {
                    diff = diff.max((u.x - v.x).abs()).max((u.y - v.y).abs());
                }
            }
        } else {
            same_counts = false;
        }
        worst = worst.max(diff);
        per_image.push(json!({
            "image": image.file_name().unwrap().to_string_lossy(),
            "persons_cpu": cpu.len(),
            "persons_device": dev.len(),
            "largest_difference_px": diff,
        }));
    }
    json!({
        "images": per_image,
        "same_person_counts": same_counts,
        "largest_difference_px": worst,
        "within_1px": same_counts && worst <= 1.0,
    })
}

fn push_frames(src: &gst_app::AppSrc, frames: &Frames, count: usize, paced: bool) {
    let period = Duration::from_nanos(1_000_000_000 / FPS);
    let start = Instant::now();
    for i in 0..count {
        if paced {
            let due = start + period * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let mut buffer = frames.buffers[i % frames.buffers.len()].copy();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(
                i as u64 * period.as_nanos() as u64,
            ));
            b.set_duration(gst::ClockTime::from_nseconds(period.as_nanos() as u64));
        }
        if src.push_buffer(buffer).is_err() {
            return;
        }
    }
    let _ = src.end_of_stream();
}

fn fall_events(options: &Options, frames: &Frames, device: Device) -> Value {
    let description = format!(
        "appsrc name=src format=time block=true max-buffers=4 ! queue ! rtmopose model-file={} device={device} fallback-to-cpu=false threads=2 score-threshold=0.1 ! bytetrack ! queue ! stgcnclassify model={} device={device} fallback-to-cpu=false threads=1 ! eventsink stream=cam0 labels=fall label-match=contains event-type=fall min-frames=3",
        quoted(&pose_model(&options.kit)),
        quoted(&options.kit.join("models/fall_stgcnpp.onnx"))
    );
    let pipeline = recognizer::launch(&description);
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.set_caps(Some(&frames.caps));
    let events = Arc::new(Mutex::new(Vec::new()));
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let pusher = {
        let src = src.clone();
        let frames = Frames {
            caps: frames.caps.clone(),
            buffers: frames.buffers.clone(),
        };
        thread::spawn(move || push_frames(&src, &frames, frames.buffers.len(), false))
    };
    let mut error = None;
    while let Some(msg) = bus.timed_pop(GUARD) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                error = Some(e.error().to_string());
                break;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "recognizer-event") {
                    events.lock().unwrap().push(json!({
                        "type": s.get::<String>("type").unwrap_or_default(),
                        "start_pts_ns": s.get::<u64>("start-pts").unwrap_or(0),
                    }));
                }
            }
            _ => {}
        }
    }
    pusher.join().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    let events = events.lock().unwrap().clone();
    let falls = events.iter().filter(|e| e["type"] == "fall").count();
    json!({ "device": device.to_string(), "fall_events": falls, "events": events, "error": error })
}

// ---------------------------------------------------------------------------------------------
// raw ONNX Runtime

fn letterboxed(model: &PoseModel, frames: &Frames) -> Vec<Vec<f32>> {
    let info = gst_video::VideoInfo::from_caps(&frames.caps).unwrap();
    frames
        .buffers
        .iter()
        .map(|buffer| {
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
            let mut tensor = vec![0.0; model.contract.input_len()];
            model
                .contract
                .preprocess(&video::image(&frame).unwrap(), &mut tensor)
                .unwrap();
            tensor
        })
        .collect()
}

/// Frames/s of `Session::run` on batches of `batch` tensors from plain host memory; cuDNN's
/// convolution algorithms chosen by heuristics (as the element does) or by `exhaustive` search.
fn raw_plain_fps(
    model: &Path,
    device: Device,
    tensors: &[Vec<f32>],
    batch: usize,
    seconds: f64,
    exhaustive: bool,
) -> f64 {
    let request = onnx::SessionRequest {
        model,
        device,
        fallback_to_cpu: false,
        threads: 2,
    };
    let search = if exhaustive {
        ort::ep::cuda::ConvAlgorithmSearch::Exhaustive
    } else {
        ort::ep::cuda::ConvAlgorithmSearch::Heuristic
    };
    let mut session = onnx::load_session_with(&request, search).unwrap().session;
    let input = session.inputs()[0].name().to_string();
    let frame_len = tensors[0].len();
    let side = ((frame_len / 3) as f64).sqrt() as usize;
    let data: Vec<f32> = (0..batch)
        .flat_map(|i| tensors[i % tensors.len()].iter().copied())
        .collect();
    let shape = [batch, 3, side, side];
    let mut run = || {
        let t = TensorRef::from_array_view((shape, &data[..])).unwrap();
        let outputs = session.run(ort::inputs![input.as_str() => t]).unwrap();
        std::hint::black_box(&outputs);
    };
    // Warm-up: the first calls of a shape pay for the provider's set-up.
    for _ in 0..3 {
        run();
    }
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed().as_secs_f64() < seconds {
        run();
        calls += 1;
    }
    (calls * batch) as f64 / start.elapsed().as_secs_f64()
}

/// Frames/s of the element's own path: IO binding from pinned memory, outputs decoded.
fn raw_binding_fps(model: &mut PoseModel, tensors: &[Vec<f32>], batch: usize, seconds: f64) -> f64 {
    let mut arena = model.allocate_frames(batch).unwrap();
    for i in 0..batch {
        arena
            .frame_mut(i)
            .copy_from_slice(&tensors[i % tensors.len()]);
    }
    let letterbox = model.contract.letterbox(1920, 1080);
    let params = recognizer_core::pose::DecodeParams {
        score_threshold: 0.3,
        nms_threshold: 0.65,
        max_persons: 20,
    };
    let items = vec![(letterbox, params); batch];
    for _ in 0..3 {
        model.run_frames(&arena, &items).unwrap();
    }
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed().as_secs_f64() < seconds {
        std::hint::black_box(model.run_frames(&arena, &items).unwrap());
        calls += 1;
    }
    (calls * batch) as f64 / start.elapsed().as_secs_f64()
}

fn load_model(model: &Path, device: Device) -> PoseModel {
    PoseModel::load(
        &onnx::SessionRequest {
            model,
            device,
            fallback_to_cpu: false,
            threads: 2,
        },
        gstrecognizer::pose_model::ModelFormat::Auto,
    )
    .unwrap()
}

fn raw(options: &Options, tensors: &[Vec<f32>], model_path: &Path) -> Value {
    let mut model = load_model(model_path, options.device);
    let mut rows = Vec::new();
    for &batch in &options.raw_batches {
        let plain = raw_plain_fps(model_path, options.device, tensors, batch, 2.0, false);
        let exhaustive = raw_plain_fps(model_path, options.device, tensors, batch, 2.0, true);
        let binding = raw_binding_fps(&mut model, tensors, batch, 2.0);
        println!(
            "raw batch {batch:>2}: plain {plain:8.1} fps (exhaustive cuDNN search {exhaustive:8.1}), IO binding (pinned) {binding:8.1} fps"
        );
        rows.push(json!({
            "batch": batch,
            "plain_fps": round3(plain),
            "plain_exhaustive_search_fps": round3(exhaustive),
            "io_binding_fps": round3(binding),
        }));
    }
    json!({
        "model": model_path.file_name().unwrap().to_string_lossy(),
        "io_binding": model.io_binding(),
        "rows": rows,
    })
}

// ---------------------------------------------------------------------------------------------
// streams through the chain

struct StreamRun {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// Push instant of each frame (by index) and completion instant at the sink.
    pushed: Arc<Mutex<Vec<Option<Instant>>>>,
    done: Arc<Mutex<Vec<(usize, Instant)>>>,
}

fn stream_pipeline(
    options: &Options,
    model: &Path,
    index: usize,
    group: Option<(&str, usize)>,
    count: usize,
) -> StreamRun {
    let grouping = match group {
        Some((name, max_batch)) => format!("session-group={name} max-batch={max_batch}"),
        None => String::new(),
    };
    let pipeline = recognizer::launch(&format!(
        "appsrc name=src format=time block=true max-buffers=2 ! queue max-size-buffers=2 ! rtmopose name=pose model-file={} device={} fallback-to-cpu=false threads=2 {grouping} ! bytetrack ! queue max-size-buffers=4 ! stgcnclassify model={} device={} fallback-to-cpu=false threads=1 ! fakesink name=sink sync=false",
        quoted(model),
        options.device,
        quoted(&options.kit.join("models/fall_stgcnpp.onnx")),
        options.classifier_device
    ));
    pipeline.set_property("name", format!("stream{index}"));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let pushed = Arc::new(Mutex::new(vec![None; count]));
    let done = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let period = 1_000_000_000 / FPS;
    {
        let pushed = pushed.clone();
        src.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let index = info
                    .buffer()
                    .and_then(|b| b.pts())
                    .map(|p| (p.nseconds() / period) as usize);
                let mut pushed = pushed.lock().unwrap();
                if let Some(slot) = index.and_then(|i| pushed.get_mut(i)) {
                    *slot = Some(Instant::now());
                }
                gst::PadProbeReturn::Ok
            });
    }
    {
        let done = done.clone();
        let sink = pipeline.by_name("sink").unwrap();
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(i) = info
                    .buffer()
                    .and_then(|b| b.pts())
                    .map(|p| (p.nseconds() / period) as usize)
                {
                    done.lock().unwrap().push((i, Instant::now()));
                }
                gst::PadProbeReturn::Ok
            });
    }
    StreamRun {
        pipeline,
        src,
        pushed,
        done,
    }
}

struct RunFigures {
    fps: f64,
    per_stream_fps: Vec<f64>,
    latencies_ms: Vec<f64>,
    cpu_cores: f64,
    frames_per_call: f64,
    preprocess_ms: f64,
    slot_wait_ms: f64,
    call_ms_per_frame: f64,
    gpu_memory_mib: Option<u64>,
    wall_s: f64,
}

/// Runs `streams` streams of `count` frames each; `paced`: at 30 frames/s each.
fn run_streams(
    options: &Options,
    model: &Path,
    streams: usize,
    count: usize,
    paced: bool,
    group: bool,
) -> RunFigures {
    let frames = Arc::new(decode_cached(options));
    let max_batch = streams.clamp(1, 32);
    let runs: Vec<StreamRun> = (0..streams)
        .map(|i| {
            stream_pipeline(
                options,
                model,
                i,
                group.then_some(("bench", max_batch)),
                count,
            )
        })
        .collect();
    for run in &runs {
        run.src.set_caps(Some(&frames.caps));
        run.pipeline.set_state(gst::State::Playing).unwrap();
    }
    let sampler = GpuMemorySampler::start();
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let pushers: Vec<_> = runs
        .iter()
        .map(|run| {
            let (src, frames) = (run.src.clone(), frames.clone());
            thread::spawn(move || push_frames(&src, &frames, count, paced))
        })
        .collect();
    for run in &runs {
        let bus = run.pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(GUARD, &[gst::MessageType::Eos, gst::MessageType::Error])
            .expect("a stream did not end within the guard time");
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("stream failed: {} ({:?})", e.error(), e.debug());
        }
    }
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let gpu_memory_mib = sampler.finish();
    for pusher in pushers {
        pusher.join().unwrap();
    }
    // Aggregate frames/s over the middle 80 % of completions (start-up and drain excluded).
    let mut completions: Vec<Instant> = runs
        .iter()
        .flat_map(|r| {
            r.done
                .lock()
                .unwrap()
                .iter()
                .map(|(_, t)| *t)
                .collect::<Vec<_>>()
        })
        .collect();
    completions.sort();
    let (a, b) = (completions.len() / 10, completions.len() * 9 / 10);
    let fps = (b - a) as f64
        / (completions[b - 1] - completions[a])
            .as_secs_f64()
            .max(1e-9);
    let mut latencies_ms = Vec::new();
    let mut per_stream_fps = Vec::new();
    let (mut preprocess_ns, mut slot_wait_ns, mut inferences) = (0u64, 0u64, 0u64);
    let (mut engine_calls, mut engine_frames, mut engine_call_ns) = (0u64, 0u64, 0u64);
    // Paced runs leave their first seconds out (start-up: the first frames of every stream
    // arrive at once); flat-out runs are queues full by design, their latency is no figure.
    let skip = if paced {
        (options.warmup_seconds * FPS) as usize
    } else {
        0
    };
    for run in &runs {
        let pushed = run.pushed.lock().unwrap();
        let done = run.done.lock().unwrap();
        assert_eq!(done.len(), count, "every frame leaves the pipeline");
        let measured: Vec<&(usize, Instant)> = done.iter().filter(|(i, _)| *i >= skip).collect();
        for (i, t) in &measured {
            if let Some(p) = pushed[*i] {
                latencies_ms.push((*t - p).as_secs_f64() * 1000.0);
            }
        }
        let (first, last) = (measured.first().unwrap().1, measured.last().unwrap().1);
        per_stream_fps.push((measured.len() - 1) as f64 / (last - first).as_secs_f64().max(1e-9));
        let stats = run
            .pipeline
            .by_name("pose")
            .unwrap()
            .property::<gst::Structure>("stats");
        preprocess_ns += stats.get::<u64>("preprocess-ns").unwrap_or(0);
        slot_wait_ns += stats.get::<u64>("slot-wait-ns").unwrap_or(0);
        inferences += stats.get::<u64>("inferences").unwrap_or(0);
        // Every member of a group reads the same engine figures; a private engine its own.
        let calls = stats.get::<u64>("engine-calls").unwrap_or(0);
        if !group || engine_calls == 0 {
            engine_calls += calls;
            engine_frames += stats.get::<u64>("engine-frames").unwrap_or(0);
            engine_call_ns += stats.get::<u64>("engine-call-ns").unwrap_or(0);
        }
    }
    for run in &runs {
        run.pipeline.set_state(gst::State::Null).unwrap();
    }
    latencies_ms.sort_by(f64::total_cmp);
    RunFigures {
        fps,
        per_stream_fps,
        latencies_ms,
        cpu_cores: cpu.as_secs_f64() / wall.as_secs_f64(),
        frames_per_call: engine_frames as f64 / engine_calls.max(1) as f64,
        preprocess_ms: preprocess_ns as f64 / inferences.max(1) as f64 / 1e6,
        slot_wait_ms: slot_wait_ns as f64 / inferences.max(1) as f64 / 1e6,
        call_ms_per_frame: engine_call_ns as f64 / engine_frames.max(1) as f64 / 1e6,
        gpu_memory_mib,
        wall_s: wall.as_secs_f64(),
    }
}

fn decode_cached(options: &Options) -> Frames {
    static FRAMES: std::sync::OnceLock<(gst::Caps, Vec<gst::Buffer>)> = std::sync::OnceLock::new();
    let (caps, buffers) = FRAMES.get_or_init(|| {
        let f = decode_frames(&options.kit.join("frames"));
        (f.caps, f.buffers)
    });
    Frames {
        caps: caps.clone(),
        buffers: buffers.clone(),
    }
}

fn figures_json(f: &RunFigures) -> Value {
    let min_stream = f
        .per_stream_fps
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    json!({
        "aggregate_fps": round3(f.fps),
        "slowest_stream_fps": round3(min_stream),
        "latency_ms_p50": round3(percentile(&f.latencies_ms, 0.5)),
        "latency_ms_p99": round3(percentile(&f.latencies_ms, 0.99)),
        "cpu_cores_used": round3(f.cpu_cores),
        "frames_per_call": round3(f.frames_per_call),
        "preprocess_ms_per_frame": round3(f.preprocess_ms),
        "slot_wait_ms_per_frame": round3(f.slot_wait_ms),
        "engine_call_ms_per_frame": round3(f.call_ms_per_frame),
        "gpu_memory_mib": f.gpu_memory_mib,
        "wall_s": round3(f.wall_s),
    })
}

fn single(options: &Options, tensors: &[Vec<f32>], model_path: &Path, rounds: usize) -> Value {
    let mut model = load_model(model_path, options.device);
    let (mut plains, mut bindings, mut chains) = (Vec::new(), Vec::new(), Vec::new());
    let count = options.frames.max(90) * 2;
    for round in 0..rounds {
        let plain = raw_plain_fps(model_path, options.device, tensors, 1, 3.0, false);
        let binding = raw_binding_fps(&mut model, tensors, 1, 3.0);
        let chain = run_streams(options, model_path, 1, count, false, false).fps;
        println!(
            "single stream, round {round}: raw plain {plain:.1} fps, raw IO binding {binding:.1} fps, chain {chain:.1} fps ({:.3} of the better raw)",
            chain / plain.max(binding)
        );
        plains.push(plain);
        bindings.push(binding);
        chains.push(chain);
    }
    let (plain, binding, chain) = (
        recognizer::median(plains),
        recognizer::median(bindings),
        recognizer::median(chains),
    );
    json!({
        "model": model_path.file_name().unwrap().to_string_lossy(),
        "rounds": rounds,
        "frames_per_chain_run": count,
        "raw_plain_fps": round3(plain),
        "raw_io_binding_fps": round3(binding),
        "chain_fps": round3(chain),
        "chain_over_raw_plain": round3(chain / plain),
        "chain_over_raw_io_binding": round3(chain / binding),
    })
}

fn streams(options: &Options, model_path: &Path) -> Value {
    let mut rows = Vec::new();
    let mode = |m: &str| options.stream_modes.iter().any(|x| x == m);
    for &n in &options.streams {
        let mut row = json!({ "streams": n });
        if mode("flat") {
            let flat = run_streams(options, model_path, n, options.frames, false, true);
            println!("{n:>3} streams flat out: {}", figures_json(&flat));
            row["flat_out"] = figures_json(&flat);
        }
        if mode("paced") {
            let paced_frames = ((options.paced_seconds + options.warmup_seconds) * FPS) as usize;
            let paced = run_streams(options, model_path, n, paced_frames, true, true);
            // Real time: every stream delivered its 30 frames/s and latency stayed bounded.
            let slowest = paced
                .per_stream_fps
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let p99 = percentile(&paced.latencies_ms, 0.99);
            let real_time = slowest >= FPS as f64 * 0.97 && p99 < 1000.0;
            println!(
                "{n:>3} streams at 30 fps: {} real time: {real_time}",
                figures_json(&paced)
            );
            row["paced_30fps"] = figures_json(&paced);
            row["paced_real_time"] = json!(real_time);
        }
        rows.push(row);
    }
    json!({ "model": model_path.file_name().unwrap().to_string_lossy(), "rows": rows })
}

fn main() {
    recognizer::init();
    let options = options();
    let mut result = BTreeMap::<String, Value>::new();
    result.insert("device".into(), json!(options.device.to_string()));
    result.insert(
        "classifier_device".into(),
        json!(options.classifier_device.to_string()),
    );
    let model_path = pose_model(&options.kit);
    let probe = load_model(&model_path, options.device);
    result.insert(
        "session".into(),
        json!({"execution_provider": probe.execution_provider, "io_binding": probe.io_binding(), "binding_error": probe.binding_error}),
    );
    drop(probe);
    let save = |result: &BTreeMap<String, Value>| {
        let text = serde_json::to_string_pretty(result).unwrap();
        if let Some(out) = &options.out {
            std::fs::write(out, &text).unwrap();
        }
    };
    let want = |check: &str| options.checks.iter().any(|c| c == check);
    if want("accuracy") {
        let value = accuracy(&options);
        println!("accuracy: {value}");
        result.insert("accuracy".into(), value);
        save(&result);
    }
    let frames = decode_cached(&options);
    if want("fall") {
        let value = json!([
            fall_events(&options, &frames, options.device),
            fall_events(&options, &frames, Device::Cpu)
        ]);
        println!("fall: {value}");
        result.insert("fall".into(), value);
        save(&result);
    }
    let tensors = letterboxed(&load_model(&model_path, Device::Cpu), &frames);
    let mut models = vec![model_path.clone()];
    let fp16 = options.kit.join("models/yolo11n-pose_dynamic_fp16.onnx");
    if fp16.is_file() {
        models.push(fp16);
    }
    if want("raw") {
        let value: Vec<Value> = models.iter().map(|m| raw(&options, &tensors, m)).collect();
        result.insert("raw".into(), json!(value));
        save(&result);
    }
    if want("single") {
        // The float16 model once: the comparison of interest is float32's.
        let value: Vec<Value> = models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                single(
                    &options,
                    &tensors,
                    m,
                    if i == 0 { options.rounds } else { 1 },
                )
            })
            .collect();
        println!("single: {}", json!(value));
        result.insert("single".into(), json!(value));
        save(&result);
    }
    if want("streams") {
        let value = streams(&options, &model_path);
        result.insert("streams".into(), value);
        save(&result);
    }
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
}
