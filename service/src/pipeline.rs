//! One camera's pipeline, built element by element from its configuration (never by pasting
//! user values into a launch string), with the pad probes that feed the metrics and the
//! watchdog.
//!
//! ```text
//! uridecodebin (rtspsrc over TCP, timeouts) ! videoconvert ! queue (leaky for live sources) !
//! rtmopose ! bytetrack [! queue ! stgcnclassify] [! tee ! queue ! ... ! splitmuxsink] ! eventsink
//! ```

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use gst::prelude::*;
use recognizer_meta::{PoseMeta, PoseMetaFlags};

use crate::{
    config::{CameraConfig, RtspTransport, SourceKind},
    logging,
    metrics::{CameraLabel, Metrics},
    props,
};

/// Names of the elements the service reads back.
pub mod names {
    pub const POSE: &str = "pose";
    pub const TRACKER: &str = "tracker";
    pub const ACTION: &str = "action";
    pub const EVENTS: &str = "events";
    pub const POSE_QUEUE: &str = "pose-queue";
}

/// What the probes saw, for the watchdog. Times are milliseconds since `epoch`.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    last_processed_ms: AtomicU64,
    processed: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            epoch: Instant::now(),
            last_processed_ms: AtomicU64::new(0),
            processed: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        self.last_processed_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.processed.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames that reached the event sink in this pipeline.
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    /// Time since the last frame reached the event sink (or since the pipeline was built).
    pub fn idle(&self) -> std::time::Duration {
        let last = self.last_processed_ms.load(Ordering::Relaxed);
        self.epoch
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(last))
    }
}

/// A built (not yet started) camera pipeline.
pub struct CameraPipeline {
    pub pipeline: gst::Pipeline,
    pub pose: gst::Element,
    pub tracker: gst::Element,
    pub action: Option<gst::Element>,
    pub events: gst::Element,
    pub activity: Arc<Activity>,
}

/// Sets a property from its text form, checked against the property's type and range (so a
/// value out of range is an error naming the key, not a panic).
pub fn set(element: &gst::Element, name: &str, value: impl ToString) -> Result<(), String> {
    let text = value.to_string();
    let pspec = element.find_property(name).ok_or_else(|| {
        format!(
            "element {} has no property '{name}'",
            element
                .factory()
                .map_or("?".into(), |f| f.name().to_string())
        )
    })?;
    let parsed = glib::Value::deserialize_with_pspec(&text, &pspec)
        .map_err(|_| format!("'{text}' is not a valid value for {name}"))?;
    // g_param_value_validate clamps an invalid value in place and says whether it did (the
    // GLib 2.74 g_param_value_is_valid would need a newer glib crate feature).
    let mut probe = parsed.clone();
    let clamped = unsafe {
        use glib::translate::{ToGlibPtr, ToGlibPtrMut};
        glib::gobject_ffi::g_param_value_validate(
            pspec.to_glib_none().0,
            probe.to_glib_none_mut().0,
        )
    };
    if clamped != glib::ffi::GFALSE {
        return Err(format!("{text} is out of range for {name}"));
    }
    element.set_property_from_value(name, &parsed);
    Ok(())
}

/// Sets each `(property, value)` whose value is `Some`; errors carry `section.property` (the
/// configuration's keys are the properties' final names).
macro_rules! set_some {
    ($element:expr, $section:expr, [$(($prop:expr, $value:expr)),* $(,)?]) => {{
        let mut result: Result<(), String> = Ok(());
        $(
            if result.is_ok() {
                if let Some(v) = &$value {
                    result = set($element, $prop, v)
                        .map_err(|e| format!("{}.{}: {e}", $section, $prop));
                }
            }
        )*
        result
    }};
}

fn make(factory: &str, name: Option<&str>) -> Result<gst::Element, String> {
    let mut builder = gst::ElementFactory::make(factory);
    if let Some(name) = name {
        builder = builder.name(name);
    }
    builder.build().map_err(|_| {
        format!("GStreamer element '{factory}' is missing (install the package that provides it)")
    })
}

/// A secret read from an environment variable or the first line of a file, registered for
/// redaction.
pub fn read_secret(env: Option<&String>, file: Option<&String>) -> Result<Option<String>, String> {
    let value = match (env, file) {
        (Some(name), _) => Some(
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?,
        ),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {path}: {e}"))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        (None, None) => None,
    };
    if let Some(v) = &value {
        logging::add_secret(v);
    }
    Ok(value)
}

/// The rules file `eventsink` reads, written from the configuration's rule tables.
pub fn rules_text(rules: &[toml::Table]) -> String {
    let mut doc = toml::Table::new();
    doc.insert(
        "rules".into(),
        toml::Value::Array(rules.iter().cloned().map(toml::Value::Table).collect()),
    );
    toml::to_string(&doc).expect("a TOML table serialises")
}

/// Builds the camera's pipeline. `rules_file` is where its rules were written (when it has
/// any); `metrics` is `None` when only checking the configuration.
pub fn build(
    camera: &CameraConfig,
    rules_file: Option<&Path>,
    metrics: Option<Arc<Metrics>>,
) -> Result<CameraPipeline, String> {
    let pipeline = gst::Pipeline::with_name(&camera.id);
    let source = make("uridecodebin", Some("source"))?;
    set(&source, "uri", &camera.uri).map_err(|e| format!("uri: {e}"))?;
    // Only video is decoded; other streams are not exposed. (ANY: decoders' raw output with
    // any memory features; plain video/x-raw would make decodebin find no decoder at all.)
    source.set_property(
        "caps",
        "video/x-raw(ANY)".parse::<gst::Caps>().expect("valid caps"),
    );
    source.set_property("expose-all-streams", false);
    configure_network_source(&source, camera)?;

    let convert = make("videoconvert", Some("convert"))?;
    let pose_queue = make("queue", Some(names::POSE_QUEUE))?;
    pose_queue.set_property("max-size-buffers", 4u32);
    pose_queue.set_property("max-size-bytes", 0u32);
    pose_queue.set_property("max-size-time", 0u64);
    if camera.leaky() {
        // A live source does not wait for us: drop the oldest frame rather than fall behind.
        pose_queue.set_property_from_str("leaky", "downstream");
    }

    let pose = make("rtmopose", Some(names::POSE))?;
    let p = &camera.pose;
    set_some!(
        &pose,
        "pose",
        [
            (props::pose::MODEL_FILE, p.model_file),
            (props::pose::MODEL_FORMAT, p.model_format),
            (props::pose::DEVICE, p.device),
            (props::pose::FALLBACK_TO_CPU, p.fallback_to_cpu),
            (props::pose::THREADS, p.threads),
            (props::pose::MAX_BATCH, p.max_batch),
            (props::pose::BATCH_TIMEOUT_US, p.batch_timeout_us),
            (props::pose::SCORE_THRESHOLD, p.score_threshold),
            (props::pose::NMS_THRESHOLD, p.nms_threshold),
            (props::pose::MAX_PERSONS, p.max_persons),
        ]
    )?;

    // Camera-level keys of rtmopose.
    if let Some(interval) = camera.interval {
        set(&pose, props::pose::INTERVAL, interval).map_err(|e| format!("interval: {e}"))?;
    }
    if let Some(max) = camera.adaptive_interval {
        set(&pose, props::pose::ADAPTIVE_INTERVAL, max)
            .map_err(|e| format!("adaptive-interval: {e}"))?;
    }
    if let Some(group) = &camera.pose_group {
        set(&pose, props::pose::SESSION_GROUP, group).map_err(|e| format!("pose-group: {e}"))?;
    }

    let tracker = make("bytetrack", Some(names::TRACKER))?;
    let t = &camera.tracker;
    set_some!(
        &tracker,
        "tracker",
        [
            (props::tracker::TRACK_THRESH, t.track_thresh),
            (props::tracker::LOW_THRESH, t.low_thresh),
            (props::tracker::MATCH_THRESH, t.match_thresh),
            (props::tracker::TRACK_BUFFER, t.track_buffer),
            (props::tracker::MIN_BOX_AREA, t.min_box_area),
        ]
    )?;

    let mut chain = vec![
        convert.clone(),
        pose_queue.clone(),
        pose.clone(),
        tracker.clone(),
    ];
    let action = match &camera.action {
        None => None,
        Some(a) => {
            // The classifier in its own streaming thread, beside pose inference.
            let queue = make("queue", Some("action-queue"))?;
            queue.set_property("max-size-buffers", 4u32);
            let action = make("stgcnclassify", Some(names::ACTION))?;
            set_some!(
                &action,
                "action",
                [
                    (props::action::MODEL_FILE, a.model_file),
                    (props::action::LABELS_FILE, a.labels_file),
                    (props::action::WINDOW, a.window),
                    (props::action::STRIDE, a.stride),
                    (props::action::MIN_FRAMES, a.min_frames),
                    (props::action::SCORE_THRESHOLD, a.score_threshold),
                    (props::action::DEVICE, a.device),
                    (props::action::FALLBACK_TO_CPU, a.fallback_to_cpu),
                    (props::action::THREADS, a.threads),
                ]
            )?;
            chain.push(queue);
            chain.push(action.clone());
            Some(action)
        }
    };

    let events = make("eventsink", Some(names::EVENTS))?;
    events.set_property(props::events::STREAM, &camera.id);
    // The service counts events by type from these messages.
    events.set_property(props::events::POST_MESSAGES, true);
    if let Some(file) = rules_file {
        set(&events, props::events::RULES_FILE, file.display())
            .map_err(|e| format!("rules: {e}"))?;
    }
    if let Some(labels) = camera.action.as_ref().and_then(|a| a.labels_file.as_ref()) {
        set(&events, props::events::LABELS_FILE, labels)
            .map_err(|e| format!("action.labels-file: {e}"))?;
    }
    let e = &camera.events;
    set_some!(
        &events,
        "events",
        [
            (props::events::LOCATION, e.location),
            (props::events::MAX_SIZE_BYTES, e.max_size_bytes),
            (props::events::MAX_FILES, e.max_files),
            (props::events::FRAMES_LOCATION, e.frames_location),
            (props::events::WEBHOOK_URL, e.webhook_url),
            (
                props::events::WEBHOOK_AUTH_HEADER_NAME,
                e.webhook_auth_header_name
            ),
            (
                props::events::WEBHOOK_AUTH_HEADER_ENV,
                e.webhook_auth_header_env
            ),
            (
                props::events::WEBHOOK_AUTH_HEADER_FILE,
                e.webhook_auth_header_file
            ),
            (props::events::MQTT_URL, e.mqtt_url),
            (props::events::MQTT_TOPIC, e.mqtt_topic),
            (props::events::MQTT_CLIENT_ID, e.mqtt_client_id),
            (props::events::MQTT_USERNAME, e.mqtt_username),
            (props::events::MQTT_PASSWORD_ENV, e.mqtt_password_env),
            (props::events::MQTT_PASSWORD_FILE, e.mqtt_password_file),
            (props::events::MQTT_KEEP_ALIVE_S, e.mqtt_keep_alive_s),
            (props::events::TLS_CA_FILE, e.tls_ca_file),
            (props::events::TLS_VERIFY, e.tls_verify),
            (props::events::SPOOL_DIR, e.spool_dir),
            (props::events::TIMEOUT_MS, e.timeout_ms),
            (props::events::RETRY_INITIAL_MS, e.retry_initial_ms),
            (props::events::RETRY_MAX_MS, e.retry_max_ms),
            (props::events::FLUSH_TIMEOUT_MS, e.flush_timeout_ms),
        ]
    )?;
    // Never logged, but redacted should anything print them.
    read_secret(
        e.webhook_auth_header_env.as_ref(),
        e.webhook_auth_header_file.as_ref(),
    )
    .map_err(|err| format!("events: {err}"))?;
    read_secret(e.mqtt_password_env.as_ref(), e.mqtt_password_file.as_ref())
        .map_err(|err| format!("events: {err}"))?;

    let mut all = vec![source.clone()];
    all.extend(chain.iter().cloned());
    let recording = match &camera.recording {
        None => None,
        Some(r) => Some(recording_branch(camera, r)?),
    };
    if let Some((tee, branch)) = &recording {
        all.push(tee.clone());
        all.extend(branch.iter().cloned());
    }
    all.push(events.clone());
    pipeline
        .add_many(&all)
        .map_err(|e| format!("assembling the pipeline: {e}"))?;
    gst::Element::link_many(&chain).map_err(|e| format!("linking the chain: {e}"))?;
    let last = chain.last().unwrap();
    match &recording {
        None => last.link(&events),
        Some((tee, branch)) => {
            let queue = make("queue", Some("events-queue"))?;
            pipeline.add(&queue).map_err(|e| e.to_string())?;
            last.link(tee)
                .and_then(|_| gst::Element::link_many([tee, &queue, &events]))
                .and_then(|_| {
                    let mut rec = vec![tee];
                    rec.extend(branch.iter());
                    gst::Element::link_many(rec)
                })
        }
    }
    .map_err(|e| format!("linking the sinks: {e}"))?;

    // Decoded video pads of uridecodebin go to videoconvert; anything else stays unlinked.
    let convert_weak = convert.downgrade();
    source.connect_pad_added(move |_, pad| {
        let Some(convert) = convert_weak.upgrade() else {
            return;
        };
        let sink = convert.static_pad("sink").unwrap();
        let is_video = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if is_video && !sink.is_linked() {
            let _ = pad.link(&sink);
        }
    });

    let activity = Activity::new();
    install_probes(
        camera,
        &convert,
        &pose_queue,
        &pose,
        action.as_ref(),
        &events,
        metrics,
        &activity,
    );
    Ok(CameraPipeline {
        pipeline,
        pose,
        tracker,
        action,
        events,
        activity,
    })
}

/// RTSP over TCP by default (no frame lost to a full UDP buffer), with timeouts, and
/// credentials from the environment or a file; HTTP with a timeout.
fn configure_network_source(source: &gst::Element, camera: &CameraConfig) -> Result<(), String> {
    if camera.kind == SourceKind::File {
        return Ok(());
    }
    let s = camera.source.clone();
    let password = read_secret(s.password_env.as_ref(), s.password_file.as_ref())
        .map_err(|e| format!("source: {e}"))?;
    source.connect("source-setup", false, move |args| {
        let element = args[1].get::<gst::Element>().unwrap();
        let factory = element.factory().map(|f| f.name().to_string());
        let timeout_us = u64::from(s.timeout_s.unwrap_or(10)) * 1_000_000;
        match factory.as_deref() {
            Some("rtspsrc") => {
                let transport = match s.rtsp_transport.unwrap_or(RtspTransport::Tcp) {
                    RtspTransport::Tcp => "tcp",
                    RtspTransport::Udp => "udp",
                };
                element.set_property_from_str("protocols", transport);
                element.set_property("latency", s.latency_ms.unwrap_or(200));
                element.set_property("tcp-timeout", timeout_us);
                element.set_property("timeout", timeout_us);
                if let Some(user) = &s.username {
                    element.set_property("user-id", user);
                }
                if let Some(pw) = &password {
                    element.set_property("user-pw", pw);
                }
            }
            Some("souphttpsrc") => {
                element.set_property("timeout", s.timeout_s.unwrap_or(10));
                if let Some(user) = &s.username {
                    element.set_property("user-id", user);
                }
                if let Some(pw) = &password {
                    element.set_property("user-pw", pw);
                }
            }
            _ => {}
        }
        None
    });
    Ok(())
}

/// `tee` and the recording branch: optional overlay, H.264, Matroska segments (a Matroska file
/// cut short by a crash stays readable up to its last cluster, unlike an MP4 without its index).
fn recording_branch(
    camera: &CameraConfig,
    r: &crate::config::RecordingSection,
) -> Result<(gst::Element, Vec<gst::Element>), String> {
    let tee = make("tee", Some("tee"))?;
    let queue = make("queue", Some("recording-queue"))?;
    let mut branch = vec![queue];
    if r.overlay.unwrap_or(true) {
        branch.push(make("poseoverlay", Some("overlay"))?);
    }
    branch.push(make("videoconvert", None)?);
    let encoder = make("x264enc", Some("encoder"))?;
    encoder.set_property_from_str("speed-preset", "veryfast");
    encoder.set_property_from_str("tune", "zerolatency");
    if let Some(kbps) = r.bitrate_kbps {
        set(&encoder, "bitrate", kbps).map_err(|e| format!("recording.bitrate-kbps: {e}"))?;
    }
    branch.push(encoder);
    branch.push(make("h264parse", None)?);
    let sink = make("splitmuxsink", Some("recording"))?;
    let dir = Path::new(r.dir.as_deref().unwrap_or("."));
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    sink.set_property(
        "location",
        dir.join(format!("{}-{started}-%05d.mkv", camera.id))
            .display()
            .to_string(),
    );
    sink.set_property(
        "max-size-time",
        u64::from(r.segment_s.unwrap_or(300)) * 1_000_000_000,
    );
    sink.set_property("muxer", make("matroskamux", None)?);
    branch.push(sink);
    Ok((tee, branch))
}

/// Per-element timing: a buffer's entry into an in-place element and its exit happen in the
/// same streaming thread, one buffer at a time, so one slot per element suffices.
#[derive(Default)]
struct Entry(Mutex<Option<Instant>>);

impl Entry {
    fn enter(&self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
    fn leave(&self) -> Option<f64> {
        self.0
            .lock()
            .unwrap()
            .take()
            .map(|t| t.elapsed().as_secs_f64())
    }
}

/// When each frame (by PTS) entered the chain.
type Entries = std::collections::VecDeque<(Option<gst::ClockTime>, Instant)>;

#[allow(clippy::too_many_arguments)]
fn install_probes(
    camera: &CameraConfig,
    convert: &gst::Element,
    pose_queue: &gst::Element,
    pose: &gst::Element,
    action: Option<&gst::Element>,
    events: &gst::Element,
    metrics: Option<Arc<Metrics>>,
    activity: &Arc<Activity>,
) {
    let activity_sink = activity.clone();
    let Some(metrics) = metrics else {
        // Only checking: the watchdog still needs its figure.
        events
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                activity_sink.touch();
                gst::PadProbeReturn::Ok
            });
        return;
    };
    let label = CameraLabel {
        camera: camera.id.clone(),
    };
    // Entry of each frame into the chain, to time the whole chain per frame (buffers keep their
    // order; the leaky queue may drop some, whose entries are skipped by PTS).
    let entries: Arc<Mutex<Entries>> = Arc::default();
    {
        let frames_in = metrics.frames_in.get_or_create_owned(&label);
        let entries = entries.clone();
        convert
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                frames_in.inc();
                if let Some(buffer) = info.buffer() {
                    let mut e = entries.lock().unwrap();
                    if e.len() > 256 {
                        e.pop_front();
                    }
                    e.push_back((buffer.pts(), Instant::now()));
                }
                gst::PadProbeReturn::Ok
            });
    }
    if camera.leaky() {
        // The leaky queue drops one frame per overrun (its byte and time limits are off).
        let dropped = metrics.frames_dropped.get_or_create_owned(&label);
        pose_queue.connect("overrun", false, move |_| {
            dropped.inc();
            None
        });
    }
    {
        let entry = Arc::new(Entry::default());
        let enter = entry.clone();
        pose.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                enter.enter();
                gst::PadProbeReturn::Ok
            });
        let histogram = metrics.pose_seconds.get_or_create_owned(&label);
        let inferences = metrics.pose_inferences.get_or_create_owned(&label);
        pose.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let seconds = entry.leave();
                let inferred = info
                    .buffer()
                    .and_then(|b| b.meta::<PoseMeta>())
                    .is_some_and(|m| m.frame_flags().contains(PoseMetaFlags::INFERRED));
                if inferred {
                    inferences.inc();
                    if let Some(s) = seconds {
                        histogram.observe(s);
                    }
                }
                gst::PadProbeReturn::Ok
            });
    }
    if let Some(action) = action {
        let entry = Arc::new(Entry::default());
        let enter = entry.clone();
        action
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                enter.enter();
                gst::PadProbeReturn::Ok
            });
        let histogram = metrics.action_seconds.get_or_create_owned(&label);
        let element = action.downgrade();
        let last_batches = AtomicU64::new(0);
        action
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                let seconds = entry.leave();
                // Only frames on which the classifier ran a batch count as inference.
                let batches = element
                    .upgrade()
                    .and_then(|e| props::read_u64(&e, props::action::BATCHES))
                    .unwrap_or(0);
                if batches > last_batches.swap(batches, Ordering::Relaxed)
                    && let Some(s) = seconds
                {
                    histogram.observe(s);
                }
                gst::PadProbeReturn::Ok
            });
    }
    {
        let processed = metrics.frames_processed.get_or_create_owned(&label);
        let persons = metrics.persons.get_or_create_owned(&label);
        let latency = metrics.latency_seconds.get_or_create_owned(&label);
        let processing = metrics.processing_seconds.get_or_create_owned(&label);
        let live = camera.kind.is_live();
        let activity = activity.clone();
        events.static_pad("sink").unwrap().add_probe(
            gst::PadProbeType::BUFFER,
            move |pad, info| {
                activity.touch();
                processed.inc();
                let Some(buffer) = info.buffer() else {
                    return gst::PadProbeReturn::Ok;
                };
                if let Some(meta) = buffer.meta::<PoseMeta>() {
                    persons.set(meta.persons().len() as i64);
                }
                let pts = buffer.pts();
                {
                    let mut e = entries.lock().unwrap();
                    while let Some(&(entry_pts, at)) = e.front() {
                        e.pop_front();
                        if entry_pts == pts {
                            processing.observe(at.elapsed().as_secs_f64());
                            break;
                        }
                    }
                }
                if live && let Some(l) = capture_latency(pad, pts) {
                    latency.observe(l);
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
}

/// The pipeline clock now minus the buffer's running time: how long ago (on the pipeline's
/// clock) the frame was captured.
fn capture_latency(pad: &gst::Pad, pts: Option<gst::ClockTime>) -> Option<f64> {
    let element = pad.parent_element()?;
    let clock = element.clock()?;
    let base = element.base_time()?;
    let segment = pad.sticky_event::<gst::event::Segment>(0)?;
    let segment = segment.segment().downcast_ref::<gst::ClockTime>()?.clone();
    let running = segment.to_running_time(pts?)?;
    let now = clock.time().checked_sub(base)?;
    Some(now.saturating_sub(running).nseconds() as f64 / 1e9)
}
