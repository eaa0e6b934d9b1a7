//! Support code for Recognizer's end-to-end tests, benchmarks and examples: where the shared
//! data lives, running pipelines with the statically registered plugin, and pose accuracy
//! measures (COCO OKS).

use std::{
    path::{Path, PathBuf},
    sync::Once,
};

use gst::prelude::*;
use recognizer_meta::{Person, PoseMeta, PoseMetaFlags};

/// The data directory with `models/` and `media/`: `RECOGNIZER_DATA`, else `../shared` beside
/// the repository.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("RECOGNIZER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("models").is_dir() && dir.join("media").is_dir(),
        "data directory {} has no models/ and media/: set RECOGNIZER_DATA",
        dir.display()
    );
    dir
}

/// A file under the data directory, which must exist.
pub fn data(relative: &str) -> PathBuf {
    let path = data_dir().join(relative);
    assert!(path.is_file(), "missing data file {}", path.display());
    path
}

/// A file of this repository (models, pipelines, fixtures).
pub fn project_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The project's fall model (`models/fall_stgcnpp.onnx`).
pub fn fall_model() -> PathBuf {
    project_path("models/fall_stgcnpp.onnx")
}

/// The RTMO-contract pose model used by the tests.
pub fn rtmo_model() -> PathBuf {
    data("models/pose/yolo11n-pose_rtmo-contract.onnx")
}

/// The raw YOLO-pose export of the same weights.
pub fn yolo_model() -> PathBuf {
    data("models/pose/yolo11n-pose.onnx")
}

/// The raw YOLO-pose export with dynamic batch and input size (several frames per call).
pub fn yolo_dynamic_model() -> PathBuf {
    data("models/pose/yolo11n-pose_dynamic.onnx")
}

/// The median of benchmark figures (the upper middle one for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// This process's resident memory (`VmRSS`) in KiB, 0 where /proc cannot tell.
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Initialises GStreamer and registers the plugin statically (no `GST_PLUGIN_PATH` needed).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstrecognizer::plugin_register_static().expect("registering the recognizer plugin");
    });
}

/// Parses a pipeline description (with the plugin registered).
pub fn launch(description: &str) -> gst::Pipeline {
    init();
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("could not parse '{description}': {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline description")
}

/// The metadata of one frame as it reached the appsink.
#[derive(Clone, Debug)]
pub struct Frame {
    pub pts: Option<gst::ClockTime>,
    pub width: u32,
    pub height: u32,
    /// `None` when the frame carried no pose metadata.
    pub persons: Option<Vec<Person>>,
    pub flags: PoseMetaFlags,
}

/// How a pipeline ended, when it did not reach EOS.
#[derive(Clone, Debug)]
pub struct PipelineError {
    pub message: String,
    pub debug: Option<String>,
    pub source: Option<String>,
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:?}) from {:?}",
            self.message, self.debug, self.source
        )
    }
}

/// Upper bound on a test pipeline's run: a hang guard, not a performance limit.
pub const PIPELINE_GUARD: gst::ClockTime = gst::ClockTime::from_seconds(900);

/// Runs `description` (which must hold an `appsink name=sink`) to EOS and returns every frame's
/// metadata, or the first error posted on the bus.
pub fn collect_frames(description: &str) -> Result<Vec<Frame>, PipelineError> {
    init();
    let pipeline = gst::parse::launch(description)
        .map_err(|e| PipelineError {
            message: e.to_string(),
            debug: None,
            source: None,
        })?
        .downcast::<gst::Pipeline>()
        .expect("a pipeline description");
    collect_frames_in(&pipeline, &["sink"]).map(|mut frames| frames.remove(0))
}

/// Runs `pipeline` to EOS and returns every frame's metadata at each of the appsinks named in
/// `sinks`, or the first error posted on the bus. The pipeline (and its elements' read-only
/// figures) stay for the caller to inspect.
pub fn collect_frames_in(
    pipeline: &gst::Pipeline,
    sinks: &[&str],
) -> Result<Vec<Vec<Frame>>, PipelineError> {
    let collected: Vec<_> = sinks
        .iter()
        .map(|name| collect_at(pipeline, name))
        .collect();
    let result = run_to_eos(pipeline);
    let frames = collected
        .iter()
        .map(|frames| std::mem::take(&mut *frames.lock().unwrap()))
        .collect();
    result.map(|_| frames)
}

/// Stores the metadata of every frame reaching the appsink `name`.
fn collect_at(
    pipeline: &gst::Pipeline,
    name: &str,
) -> std::sync::Arc<std::sync::Mutex<Vec<Frame>>> {
    let sink = pipeline
        .by_name(name)
        .unwrap_or_else(|| panic!("the pipeline needs an appsink named {name}"));
    let sink = sink
        .downcast::<gst_app::AppSink>()
        .unwrap_or_else(|_| panic!("{name} must be an appsink"));
    sink.set_property("sync", false);
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let collected = frames.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let (width, height) = sample
                    .caps()
                    .and_then(|c| c.structure(0))
                    .map(|s| {
                        (
                            s.get::<i32>("width").unwrap_or(0) as u32,
                            s.get::<i32>("height").unwrap_or(0) as u32,
                        )
                    })
                    .unwrap_or((0, 0));
                let meta = buffer.meta::<PoseMeta>();
                collected.lock().unwrap().push(Frame {
                    pts: buffer.pts(),
                    width,
                    height,
                    persons: meta.as_ref().map(|m| m.persons().to_vec()),
                    flags: meta.map(|m| m.frame_flags()).unwrap_or_default(),
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    frames
}

/// Plays `pipeline` until EOS or an error; always leaves it in NULL. Returns the warning
/// messages posted on the way.
pub fn run_to_eos(pipeline: &gst::Pipeline) -> Result<Vec<String>, PipelineError> {
    run_to_eos_within(pipeline, PIPELINE_GUARD)
}

/// [`run_to_eos`] with another hang guard (live sources).
pub fn run_to_eos_within(
    pipeline: &gst::Pipeline,
    guard: gst::ClockTime,
) -> Result<Vec<String>, PipelineError> {
    let bus = pipeline.bus().unwrap();
    let started = pipeline.set_state(gst::State::Playing);
    let mut warnings = Vec::new();
    let mut result = Err(PipelineError {
        message: "pipeline did not finish within the guard time".into(),
        debug: None,
        source: None,
    });
    if started.is_ok() || bus.have_pending() {
        while let Some(msg) = bus.timed_pop(guard) {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    result = Ok(());
                    break;
                }
                gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
                gst::MessageView::Error(err) => {
                    result = Err(PipelineError {
                        message: err.error().to_string(),
                        debug: err.debug().map(|d| d.to_string()),
                        source: msg.src().map(|s| s.path_string().to_string()),
                    });
                    break;
                }
                _ => {}
            }
        }
    }
    // Down one state at a time, as gst-launch-1.0 does: rtspsrc can deadlock when a pipeline
    // goes from PLAYING straight to NULL right after EOS.
    for state in [gst::State::Paused, gst::State::Ready, gst::State::Null] {
        let _ = pipeline.set_state(state);
        let _ = pipeline.state(gst::ClockTime::from_seconds(10));
    }
    result.map(|_| warnings)
}

/// COCO keypoint sigmas (COCO-17 order), from the COCO evaluation.
pub const COCO_SIGMAS: [f32; 17] = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089,
];

/// Object keypoint similarity of a prediction to a ground-truth person as in COCO's
/// `computeOks`: over the labelled ground-truth keypoints (visibility > 0), with the
/// annotation's segment area as scale.
pub fn oks(gt_keypoints: &[f32], gt_area: f32, predicted: &Person) -> f32 {
    let mut sum = 0.0;
    let mut count = 0;
    for (k, sigma) in COCO_SIGMAS.iter().enumerate() {
        let (gx, gy, visible) = (
            gt_keypoints[3 * k],
            gt_keypoints[3 * k + 1],
            gt_keypoints[3 * k + 2],
        );
        if visible <= 0.0 {
            continue;
        }
        let p = predicted.keypoints[k];
        let d2 = (p.x - gx).powi(2) + (p.y - gy).powi(2);
        let var = (2.0 * sigma).powi(2);
        sum += (-d2 / var / (gt_area + f32::EPSILON) / 2.0).exp();
        count += 1;
    }
    if count == 0 { 0.0 } else { sum / count as f32 }
}

/// A `pipelines/*.pipeline` description with its `${VARIABLES}` filled in (comments dropped,
/// lines joined), as `scripts/pipeline` does for gst-launch-1.0.
pub fn pipeline_description(name: &str, variables: &[(&str, &str)]) -> String {
    let path = project_path("pipelines").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut description: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    for (key, value) in variables {
        description = description.replace(&format!("${{{key}}}"), value);
    }
    assert!(
        !description.contains("${"),
        "{name}: unfilled variables in {description}"
    );
    description
}

/// The records of a JSON Lines file (eventsink's events and frame logs), one per line; panics
/// naming the file and the line that does not parse.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Identity stability of tracks over a sequence of frames: the share of frame-to-frame
/// transitions in which a person keeps its track id and its box centre moves less than
/// `max_move` pixels. A transition is a tracked person of frame t and the person of frame t+1
/// that overlaps it most (IoU >= 0.3). Also returns the number of distinct track ids.
pub fn id_consistency(frames: &[Vec<Person>], max_move: f32) -> (f64, usize, usize) {
    let centre = |p: &Person| ((p.bbox[0] + p.bbox[2]) / 2.0, (p.bbox[1] + p.bbox[3]) / 2.0);
    let (mut transitions, mut kept) = (0usize, 0usize);
    let mut ids = std::collections::HashSet::new();
    for pair in frames.windows(2) {
        for a in &pair[0] {
            let Some(track) = a.track() else { continue };
            ids.insert(track.id);
            let best = pair[1]
                .iter()
                .map(|b| (recognizer_core::pose::iou(&a.bbox, &b.bbox), b))
                .filter(|(iou, _)| *iou >= 0.3)
                .max_by(|x, y| x.0.total_cmp(&y.0));
            if let Some((_, b)) = best {
                transitions += 1;
                let ((ax, ay), (bx, by)) = (centre(a), centre(b));
                if b.track().map(|t| t.id) == Some(track.id) && (ax - bx).hypot(ay - by) < max_move
                {
                    kept += 1;
                }
            }
        }
    }
    for p in frames.last().into_iter().flatten() {
        if let Some(t) = p.track() {
            ids.insert(t.id);
        }
    }
    let share = if transitions == 0 {
        0.0
    } else {
        kept as f64 / transitions as f64
    };
    (share, ids.len(), transitions)
}
