//! Running pipelines in the tests, benchmarks and examples: the plugin registered statically,
//! descriptions parsed (also those of `pipelines/`), run to EOS under a hang guard with every
//! frame's metadata collected at appsinks, and the JSON Lines files `eventsink` writes read back.

use std::{
    path::Path,
    sync::Once,
    time::{Duration, Instant},
};

use gst::prelude::*;
use recognizer_meta::{Person, PoseMeta, PoseMetaFlags};

use crate::data::project_path;

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
const PIPELINE_GUARD: gst::ClockTime = gst::ClockTime::from_seconds(900);

/// Upper bound on taking a pipeline down to NULL: a hang guard, not a performance limit.
const SHUTDOWN_GUARD: Duration = Duration::from_secs(120);

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

/// The first `limit` frames (all with `None`) of the video file `path`, decoded and converted to
/// `caps` (e.g. `video/x-raw,format=RGB,width=640,height=360`), for tests that push frames
/// themselves (live `appsrc` cameras). Each wait for a frame is bounded.
pub fn decoded_frames(path: &Path, caps: &str, limit: Option<usize>) -> Vec<gst::Buffer> {
    let pipeline = launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! {caps} ! appsink name=sink sync=false",
        path.display()
    ));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while limit.is_none_or(|n| frames.len() < n) {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) else {
            break;
        };
        frames.push(sample.buffer_owned().unwrap());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}

/// Plays `pipeline` until EOS or an error; always leaves it in NULL. Returns the warning
/// messages posted on the way.
pub fn run_to_eos(pipeline: &gst::Pipeline) -> Result<Vec<String>, PipelineError> {
    run_to_eos_within(pipeline, PIPELINE_GUARD)
}

/// [`run_to_eos`] with another hang guard (live sources): `guard` bounds the whole run, however
/// many messages arrive on the way.
pub fn run_to_eos_within(
    pipeline: &gst::Pipeline,
    guard: gst::ClockTime,
) -> Result<Vec<String>, PipelineError> {
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + Duration::from_nanos(guard.nseconds());
    let started = pipeline.set_state(gst::State::Playing);
    let mut warnings = Vec::new();
    let mut result = Err(PipelineError {
        message: format!("pipeline did not finish within the guard time ({guard})"),
        debug: None,
        source: None,
    });
    if started.is_ok() || bus.have_pending() {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
            else {
                break;
            };
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
    let stopped = shut_down(pipeline);
    // The first problem is the one to report.
    result.and(stopped).map(|_| warnings)
}

/// Takes `pipeline` to NULL one state at a time, as gst-launch-1.0 does (rtspsrc can deadlock
/// when a pipeline goes from PLAYING straight to NULL right after EOS), in a thread of its own:
/// an element that never finishes its state change (rtspsrc stopping its RTP session under
/// heavy load was seen to) fails the test after [`SHUTDOWN_GUARD`] instead of hanging it.
fn shut_down(pipeline: &gst::Pipeline) -> Result<(), PipelineError> {
    let (done, finished) = std::sync::mpsc::channel();
    let stopping = pipeline.clone();
    std::thread::spawn(move || {
        for state in [gst::State::Paused, gst::State::Ready, gst::State::Null] {
            let _ = stopping.set_state(state);
            let _ = stopping.state(gst::ClockTime::from_seconds(10));
        }
        let _ = done.send(());
    });
    finished
        .recv_timeout(SHUTDOWN_GUARD)
        .map_err(|_| PipelineError {
            message: format!(
                "pipeline did not reach NULL within {} s (left running)",
                SHUTDOWN_GUARD.as_secs()
            ),
            debug: None,
            source: None,
        })
}

/// A `pipelines/*.pipeline` description with its `${VARIABLES}` filled in (comments dropped,
/// lines joined), as `scripts/pipeline` does for gst-launch-1.0: an empty value leaves out the
/// properties whose whole value is that variable (`name="${VAR}"`: the element's default).
pub fn pipeline_description(name: &str, variables: &[(&str, &str)]) -> String {
    let path = project_path("pipelines").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut description: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    for (key, value) in variables {
        if value.is_empty() {
            description = without_property_of(&description, key);
        }
        description = description.replace(&format!("${{{key}}}"), value);
    }
    assert!(
        !description.contains("${"),
        "{name}: unfilled variables in {description}"
    );
    description
}

/// `description` without its `name="${key}"` properties.
fn without_property_of(description: &str, key: &str) -> String {
    let value = format!("=\"${{{key}}}\"");
    description
        .split(' ')
        .filter(|word| !(word.ends_with(&value) && word.len() > value.len()))
        .collect::<Vec<_>>()
        .join(" ")
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

#[cfg(test)]
mod tests {
    use super::pipeline_description;

    #[test]
    fn an_empty_variable_leaves_its_property_to_the_default() {
        let vars = |labels| {
            [
                ("VIDEO", "/v.mp4"),
                ("POSE_MODEL", "/p.onnx"),
                ("ACTION_MODEL", "/a.onnx"),
                ("ACTION_LABELS", labels),
                ("OUTDIR", "/o"),
                ("STREAM", "cam0"),
            ]
        };
        let with = pipeline_description("file-to-events.pipeline", &vars("/l.txt"));
        assert!(
            with.contains(r#"model-file="/a.onnx" labels-file="/l.txt" !"#),
            "{with}"
        );
        let without = pipeline_description("file-to-events.pipeline", &vars(""));
        assert!(!without.contains("labels-file"), "{without}");
        assert!(without.contains(r#"model-file="/a.onnx" !"#), "{without}");
    }
}
