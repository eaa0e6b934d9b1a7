use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Condvar, LazyLock, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use gst::{glib, prelude::*, subclass::prelude::*};
use recognizer_core::pose::{DecodeParams, PoseDetection};
use recognizer_meta::{Person, PoseMeta, PoseMetaFlags};

use recognizer_core::pacing::IntervalController;

use crate::{
    latency::ProcessingLatency,
    onnx::Device,
    pose_engine::{self, EngineConfig, Member, Pending},
    pose_model::ModelFormat,
    video,
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rtmopose",
        gst::DebugColorFlags::empty(),
        Some("Multi-person pose estimation"),
    )
});

const DEFAULT_SCORE_THRESHOLD: f32 = 0.3;
const DEFAULT_NMS_THRESHOLD: f32 = 0.65;
const DEFAULT_MAX_PERSONS: u32 = 20;
const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_THREADS: u32 = 0;
const DEFAULT_MODEL_FORMAT: ModelFormat = ModelFormat::Auto;
const DEFAULT_SESSION_GROUP: &str = "";
const DEFAULT_MAX_BATCH: u32 = 8;
const DEFAULT_BATCH_TIMEOUT_US: u32 = 10_000;
const DEFAULT_ADAPTIVE_INTERVAL: u32 = 0;
/// Frame period assumed when neither the caps nor the timestamps tell it.
const FALLBACK_FRAME_PERIOD: gst::ClockTime = gst::ClockTime::from_nseconds(33_333_333);

/// Frames between the streaming thread and the output thread: one being inferred, one prepared
/// while it runs, one more so that neither thread waits on the other's jitter.
const MAX_IN_FLIGHT: usize = 3;

#[derive(Debug, Clone)]
struct Settings {
    model_file: Option<PathBuf>,
    /// As set; parsed (and rejected with an element error) at start.
    device: String,
    fallback_to_cpu: bool,
    score_threshold: f32,
    nms_threshold: f32,
    max_persons: u32,
    interval: u32,
    threads: u32,
    model_format: ModelFormat,
    session_group: String,
    max_batch: u32,
    batch_timeout_us: u32,
    adaptive_interval: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model_file: None,
            device: crate::onnx::DEFAULT_DEVICE.to_string(),
            fallback_to_cpu: crate::onnx::DEFAULT_FALLBACK_TO_CPU,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            max_persons: DEFAULT_MAX_PERSONS,
            interval: DEFAULT_INTERVAL,
            threads: DEFAULT_THREADS,
            model_format: DEFAULT_MODEL_FORMAT,
            session_group: DEFAULT_SESSION_GROUP.to_string(),
            max_batch: DEFAULT_MAX_BATCH,
            batch_timeout_us: DEFAULT_BATCH_TIMEOUT_US,
            adaptive_interval: DEFAULT_ADAPTIVE_INTERVAL,
        }
    }
}

/// State of the streaming (input) side, created at start and dropped at stop.
struct State {
    member: Member,
    info: Option<gst_video::VideoInfo>,
    /// Frames seen since start or the last flush.
    frame_count: u64,
    /// Frames to pass before the next inference (`interval`, adapted when behind).
    countdown: u32,
    pacing: IntervalController,
    last_pts: Option<gst::ClockTime>,
    /// Whether the stream is live (asked upstream at its first frame).
    live: Option<bool>,
    /// An overload warning was posted and the stream has not caught up since.
    warned: bool,
}

impl State {
    fn new(member: Member, settings: &Settings) -> Self {
        Self {
            member,
            info: None,
            frame_count: 0,
            countdown: 0,
            pacing: IntervalController::new(settings.interval, settings.adaptive_interval),
            last_pts: None,
            live: None,
            warned: false,
        }
    }

    /// A new sequence of frames (start, flush).
    fn restart(&mut self) {
        self.frame_count = 0;
        self.countdown = 0;
        self.pacing.reset();
        self.last_pts = None;
        self.live = None;
        self.warned = false;
    }

    fn frame_period(&self) -> gst::ClockTime {
        self.info
            .as_ref()
            .map(|info| info.fps())
            .filter(|fps| fps.numer() > 0 && fps.denom() > 0)
            .and_then(|fps| {
                gst::ClockTime::SECOND.mul_div_round(fps.denom() as u64, fps.numer() as u64)
            })
            .unwrap_or(FALLBACK_FRAME_PERIOD)
    }
}

/// How long a frame's preparation took.
#[derive(Clone, Copy)]
struct Prepared {
    slot_wait: Duration,
    preprocess: Duration,
}

/// What the output thread does with a frame.
enum Work {
    /// Not to be inferred (`interval`).
    Skipped,
    /// Submitted to the engine; with the time spent waiting for a slot and letterboxing.
    Pending(Pending, Prepared),
    /// It could not be prepared: passes without pose metadata.
    Failed(String),
}

enum Item {
    Frame {
        buffer: gst::Buffer,
        index: u64,
        work: Work,
        /// When it entered the element, for the latency it reports.
        arrived: Instant,
    },
    /// A serialized event, kept in order with the frames.
    Event(gst::Event),
}

/// The frames and events between the streaming thread and the output task.
struct Pipe {
    items: VecDeque<Item>,
    /// The output task holds an item it took and has not pushed yet.
    busy: bool,
    flushing: bool,
    /// The last result of pushing downstream, returned upstream by the next chain call.
    flow: Result<gst::FlowSuccess, gst::FlowError>,
}

impl Default for Pipe {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            busy: false,
            flushing: true,
            flow: Ok(gst::FlowSuccess::Ok),
        }
    }
}

impl Pipe {
    fn frames(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Frame { .. }))
            .count()
    }
}

/// Read-only figures that outlive a run, so that applications can read them after EOS.
#[derive(Default)]
struct Stats {
    execution_provider: Option<String>,
    io_binding: bool,
    pinned_memory: bool,
    frame_errors: u64,
    inferences: u64,
    batched_frames: u64,
    frames_skipped: u64,
    /// Frames missing from the incoming timestamps (dropped upstream, e.g. by a leaky queue).
    frames_dropped_upstream: u64,
    current_interval: u32,
    /// Letterboxing and colour conversion into the engine's input memory.
    preprocess_ns: u64,
    /// Waiting for a free slot in the engine's input memory (both arenas busy: inference is the
    /// bottleneck).
    slot_wait_ns: u64,
    /// From a frame's submission to its answer (queueing and the call).
    inference_wait_ns: u64,
}

pub struct RtmoPose {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    /// The processing latency this element reports to live pipelines (latency query).
    latency: ProcessingLatency,
    state: Mutex<Option<State>>,
    pipe: Mutex<Pipe>,
    pipe_changed: Condvar,
    stats: Mutex<Stats>,
}

#[glib::object_subclass]
impl ObjectSubclass for RtmoPose {
    const NAME: &'static str = "GstRtmoPose";
    type Type = super::RtmoPose;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|pad, parent, buffer| {
                RtmoPose::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                RtmoPose::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                RtmoPose::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .activatemode_function(|_pad, parent, _mode, active| {
                RtmoPose::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "panic in sink pad activation")),
                    |imp| {
                        if !active {
                            imp.set_flushing();
                        }
                        Ok(())
                    },
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
            .query_function(|pad, parent, query| {
                RtmoPose::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .activatemode_function(|pad, parent, mode, active| {
                RtmoPose::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "panic in src pad activation")),
                    |imp| imp.src_activatemode(pad, mode, active),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        Self {
            sinkpad,
            srcpad,
            settings: Mutex::new(Settings::default()),
            latency: ProcessingLatency::default(),
            state: Mutex::new(None),
            pipe: Mutex::new(Pipe::default()),
            pipe_changed: Condvar::new(),
            stats: Mutex::new(Stats::default()),
        }
    }
}

impl ObjectImpl for RtmoPose {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = crate::onnx::inference_properties(DEFAULT_THREADS);
            properties.extend([
                glib::ParamSpecString::builder("model-file")
                    .nick("Model file")
                    .blurb("Path of the pose model (.onnx): an RTMO export or a raw YOLO-pose export")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("model-format", DEFAULT_MODEL_FORMAT)
                    .nick("Model format")
                    .blurb("Output contract of the model")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("score-threshold")
                    .nick("Score threshold")
                    .blurb("Persons detected with a lower score are dropped")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SCORE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("nms-threshold")
                    .nick("NMS threshold")
                    .blurb("IoU above which the lower-scoring of two overlapping persons is dropped")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-persons")
                    .nick("Maximum persons")
                    .blurb("At most this many persons per frame, highest scores first")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_MAX_PERSONS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Run the model on every Nth frame; frames between get no new pose metadata (bytetrack downstream predicts them)")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("session-group")
                    .nick("Session group")
                    .blurb("Share one model session with the other rtmopose elements of this process that name the same group (and the same model, device, threads and batching); frames arriving together run in one batched call when the model's batch dimension is dynamic. Empty: a session of its own. Put a queue before each element of a group")
                    .default_value(Some(DEFAULT_SESSION_GROUP))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-batch")
                    .nick("Maximum batch")
                    .blurb("With session-group: at most this many frames per call (models with a fixed batch of 1 run one frame per call)")
                    .minimum(1)
                    .maximum(256)
                    .default_value(DEFAULT_MAX_BATCH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-timeout-us")
                    .nick("Batch timeout (µs)")
                    .blurb("With session-group: microseconds a frame waits for frames of the group's other streams before its call starts (it never waits once every running stream has a frame queued)")
                    .maximum(10_000_000)
                    .default_value(DEFAULT_BATCH_TIMEOUT_US)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("adaptive-interval")
                    .nick("Adaptive interval")
                    .blurb("Live streams: when frames queue up before the element (or are dropped upstream) it runs the model on fewer frames, up to every Nth, and back to 'interval' once it has caught up; frames not inferred pass marked so (bytetrack predicts them). Each change is posted on the bus (recognizer-interval). 0: off")
                    .maximum(1000)
                    .default_value(DEFAULT_ADAPTIVE_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("current-interval")
                    .nick("Current interval")
                    .blurb("The interval in use (differs from 'interval' while adaptive-interval has raised it)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("frames-skipped")
                    .nick("Frames skipped")
                    .blurb("Frames passed without inference because of interval or adaptive-interval, since start")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("frames-dropped-upstream")
                    .nick("Frames dropped upstream")
                    .blurb("Frames missing from the incoming timestamps (dropped before the element, e.g. by a leaky queue), since start")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder("execution-provider")
                    .nick("Execution provider")
                    .blurb("The ONNX Runtime execution provider in use (CPUExecutionProvider or CUDAExecutionProvider); empty before start")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("frame-errors")
                    .nick("Frame errors")
                    .blurb("Frames that passed without pose metadata because processing them failed")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("inferences")
                    .nick("Inferences")
                    .blurb("Frames the model ran on since start")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("batched-frames")
                    .nick("Batched frames")
                    .blurb("Frames that ran in one call together with frames of other streams of the session-group, since start")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("recognizer/rtmopose-stats: frames, inferences, frames-skipped, frames-dropped-upstream, current-interval, frame-errors, batched-frames, preprocess-ns, slot-wait-ns and inference-wait-ns (totals since start), execution-provider, io-binding, pinned-memory; and of the element's engine (shared by its session-group): engine-calls, engine-frames, engine-call-ns")
                    .read_only()
                    .build(),
            ]);
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model-file" => {
                settings.model_file = value
                    .get::<Option<String>>()
                    .unwrap()
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            }
            "model-format" => settings.model_format = value.get().unwrap(),
            "device" => {
                let s = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| crate::onnx::DEFAULT_DEVICE.into());
                if let Err(e) = s.parse::<Device>() {
                    gst::error!(CAT, imp = self, "{e}; the element will refuse to start");
                }
                settings.device = s;
            }
            "fallback-to-cpu" => settings.fallback_to_cpu = value.get().unwrap(),
            "score-threshold" => settings.score_threshold = value.get().unwrap(),
            "nms-threshold" => settings.nms_threshold = value.get().unwrap(),
            "max-persons" => settings.max_persons = value.get().unwrap(),
            "interval" => settings.interval = value.get().unwrap(),
            "threads" => settings.threads = value.get().unwrap(),
            "session-group" => {
                settings.session_group = value.get::<Option<String>>().unwrap().unwrap_or_default()
            }
            "max-batch" => settings.max_batch = value.get().unwrap(),
            "batch-timeout-us" => settings.batch_timeout_us = value.get().unwrap(),
            "adaptive-interval" => settings.adaptive_interval = value.get().unwrap(),
            _ => unimplemented!(),
        }
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model-file" => settings
                .model_file
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "model-format" => settings.model_format.to_value(),
            "device" => settings.device.to_value(),
            "fallback-to-cpu" => settings.fallback_to_cpu.to_value(),
            "score-threshold" => settings.score_threshold.to_value(),
            "nms-threshold" => settings.nms_threshold.to_value(),
            "max-persons" => settings.max_persons.to_value(),
            "interval" => settings.interval.to_value(),
            "threads" => settings.threads.to_value(),
            "session-group" => settings.session_group.to_value(),
            "max-batch" => settings.max_batch.to_value(),
            "batch-timeout-us" => settings.batch_timeout_us.to_value(),
            "adaptive-interval" => settings.adaptive_interval.to_value(),
            "current-interval" => self.stats.lock().unwrap().current_interval.to_value(),
            "frames-skipped" => self.stats.lock().unwrap().frames_skipped.to_value(),
            "frames-dropped-upstream" => self
                .stats
                .lock()
                .unwrap()
                .frames_dropped_upstream
                .to_value(),
            "execution-provider" => self
                .stats
                .lock()
                .unwrap()
                .execution_provider
                .clone()
                .unwrap_or_default()
                .to_value(),
            "frame-errors" => self.stats.lock().unwrap().frame_errors.to_value(),
            "inferences" => self.stats.lock().unwrap().inferences.to_value(),
            "batched-frames" => self.stats.lock().unwrap().batched_frames.to_value(),
            "stats" => self.stats_structure().to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for RtmoPose {}

impl ElementImpl for RtmoPose {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pose estimation (RTMO / YOLO-pose)",
                "Filter/Analyzer/Video",
                "Detects people and their COCO-17 keypoints with an ONNX pose model and attaches them as metadata",
                "Recognizer developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(video::INPUT_FORMATS.iter().copied())
                .build();
            video::filter_pad_templates(&caps)
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            self.start().map_err(|e| {
                self.post_error_message(e);
                gst::StateChangeError
            })?;
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToReady || result.is_err() {
            self.stop();
        }
        result
    }
}

impl RtmoPose {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let Some(model_path) = settings.model_file.as_ref() else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No model set: the 'model-file' property must name a pose model (.onnx)")
            ));
        };
        let device: Device = settings
            .device
            .parse()
            .map_err(crate::errors::settings_error)?;
        let config = EngineConfig {
            model: std::fs::canonicalize(model_path).unwrap_or_else(|_| model_path.clone()),
            device,
            fallback_to_cpu: settings.fallback_to_cpu,
            threads: settings.threads as usize,
            format: settings.model_format,
            max_batch: settings.max_batch as usize,
            batch_timeout: Duration::from_micros(settings.batch_timeout_us.into()),
        };
        let member = if settings.session_group.is_empty() {
            pose_engine::start_private(config)
        } else {
            pose_engine::join(&settings.session_group, config)
        }
        .map_err(|e| match e {
            pose_engine::JoinError::Mismatch(e) => crate::errors::settings_error(e),
            pose_engine::JoinError::Load(e) => crate::onnx::model_load_error(model_path, &e),
        })?;
        if let Some(reason) = member.fallback_reason() {
            gst::warning!(
                CAT,
                imp = self,
                "running on the CPU instead of {device}: {reason}"
            );
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("Falling back to the CPU: {}", reason)
            );
        }
        if let Some(reason) = member.binding_error() {
            gst::info!(
                CAT,
                imp = self,
                "not using ONNX Runtime's IO binding: {reason}"
            );
        }
        if let Some(reason) = member.unpinned_reason() {
            gst::info!(CAT, imp = self, "inputs in plain host memory: {reason}");
        }
        let contract = member.contract();
        gst::info!(
            CAT,
            imp = self,
            "loaded {} ({} contract, input {}x{}{}) on {}{}, up to {} frame(s) per call",
            model_path.display(),
            contract.format,
            contract.input_width,
            contract.input_height,
            if contract.dynamic_batch {
                ", dynamic batch"
            } else {
                ""
            },
            member.execution_provider(),
            match member.group_name() {
                Some(group) => format!(
                    " in session-group '{group}' with {} element(s)",
                    member.members()
                ),
                None => String::new(),
            },
            member.max_batch()
        );
        // Until a frame has been timed, the model's warm-up call (set-up costs included) bounds
        // the processing latency.
        self.latency.start_from_warm_up(member.first_call());
        *self.stats.lock().unwrap() = Stats {
            current_interval: settings.interval.max(1),
            execution_provider: Some(member.execution_provider().to_string()),
            io_binding: member.binding_error().is_none(),
            pinned_memory: member.execution_provider() == crate::onnx::CUDA_EXECUTION_PROVIDER
                && member.unpinned_reason().is_none(),
            ..Stats::default()
        };
        *self.state.lock().unwrap() = Some(State::new(member, &settings));
        Ok(())
    }

    fn stop(&self) {
        self.set_flushing();
        *self.pipe.lock().unwrap() = Pipe::default();
        if self.state.lock().unwrap().take().is_some() {
            gst::info!(CAT, imp = self, "stopped");
        }
    }

    fn set_flushing(&self) {
        self.pipe.lock().unwrap().flushing = true;
        self.pipe_changed.notify_all();
    }

    fn stats_structure(&self) -> gst::Structure {
        let stats = self.stats.lock().unwrap();
        let mut s = gst::Structure::builder("recognizer/rtmopose-stats")
            .field(
                "execution-provider",
                stats.execution_provider.clone().unwrap_or_default(),
            )
            .field("io-binding", stats.io_binding)
            .field("pinned-memory", stats.pinned_memory)
            .field(
                "frames",
                stats.inferences + stats.frames_skipped + stats.frame_errors,
            )
            .field("inferences", stats.inferences)
            .field("frames-skipped", stats.frames_skipped)
            .field("frames-dropped-upstream", stats.frames_dropped_upstream)
            .field("current-interval", stats.current_interval)
            .field("frame-errors", stats.frame_errors)
            .field("batched-frames", stats.batched_frames)
            .field("preprocess-ns", stats.preprocess_ns)
            .field("slot-wait-ns", stats.slot_wait_ns)
            .field("inference-wait-ns", stats.inference_wait_ns)
            .build();
        drop(stats);
        if let Some(state) = self.state.lock().unwrap().as_ref() {
            let engine = state.member.stats();
            s.set("engine-calls", engine.calls.load(Ordering::Relaxed));
            s.set("engine-frames", engine.frames.load(Ordering::Relaxed));
            s.set("engine-call-ns", engine.call_ns.load(Ordering::Relaxed));
        }
        s
    }

    /// Letterboxes the frame into a slot of the engine and submits it.
    fn prepare(
        state: &State,
        buffer: &gst::BufferRef,
        params: DecodeParams,
    ) -> Result<(Pending, Prepared), String> {
        let info = state
            .info
            .as_ref()
            .ok_or_else(|| "a buffer arrived before caps".to_string())?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
            .map_err(|_| "could not map the frame for reading".to_string())?;
        let image = video::image(&frame)
            .ok_or_else(|| format!("unsupported format {:?}", info.format()))?;
        let waiting = Instant::now();
        let mut slot = state.member.claim()?;
        let claimed = Instant::now();
        let letterbox = state.member.contract().preprocess(&image, slot.tensor())?;
        let prepared = Prepared {
            slot_wait: claimed - waiting,
            preprocess: claimed.elapsed(),
        };
        Ok((slot.submit(letterbox, params), prepared))
    }

    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.pipe.lock().unwrap().flow?;
        let arrived = Instant::now();
        let (settings_interval, adaptive, params) = {
            let s = self.settings.lock().unwrap();
            (
                s.interval.max(1),
                s.adaptive_interval,
                DecodeParams {
                    score_threshold: s.score_threshold,
                    nms_threshold: s.nms_threshold,
                    max_persons: s.max_persons as usize,
                },
            )
        };
        let (index, work) = {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Not started"));
                return Err(gst::FlowError::Error);
            };
            let index = state.frame_count;
            state.frame_count += 1;
            state.pacing.set_limits(settings_interval, adaptive);
            self.pace(state, buffer.pts());
            let work = if state.countdown > 0 {
                state.countdown -= 1;
                Work::Skipped
            } else {
                state.countdown = state.pacing.interval() - 1;
                match Self::prepare(state, &buffer, params) {
                    Ok((pending, prepared)) => Work::Pending(pending, prepared),
                    Err(e) => Work::Failed(e),
                }
            };
            (index, work)
        };
        gst::trace!(CAT, imp = self, "frame {index} queued");
        let mut pipe = self.pipe.lock().unwrap();
        while !pipe.flushing && pipe.frames() >= MAX_IN_FLIGHT {
            pipe = self.pipe_changed.wait(pipe).unwrap();
        }
        if pipe.flushing {
            return Err(gst::FlowError::Flushing);
        }
        pipe.items.push_back(Item::Frame {
            buffer,
            index,
            work,
            arrived,
        });
        self.pipe_changed.notify_all();
        pipe.flow
    }

    /// Queues a serialized event behind the frames before it.
    fn queue_event(&self, event: gst::Event) -> bool {
        let mut pipe = self.pipe.lock().unwrap();
        if pipe.flushing {
            return false;
        }
        pipe.items.push_back(Item::Event(event));
        self.pipe_changed.notify_all();
        true
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        gst::log!(CAT, obj = pad, "event {:?}", event.type_());
        match event.view() {
            gst::EventView::FlushStart(_) => {
                self.set_flushing();
                let forwarded = self.srcpad.push_event(event);
                let _ = self.srcpad.pause_task();
                forwarded
            }
            gst::EventView::FlushStop(_) => {
                {
                    let mut pipe = self.pipe.lock().unwrap();
                    pipe.items.clear();
                    pipe.flushing = false;
                    pipe.flow = Ok(gst::FlowSuccess::Ok);
                }
                // Frames after a flush are a new sequence: `interval` counts from its first.
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    state.restart();
                }
                let forwarded = self.srcpad.push_event(event);
                self.start_task();
                forwarded
            }
            gst::EventView::Caps(caps) => {
                let caps = caps.caps();
                let info = match gst_video::VideoInfo::from_caps(caps) {
                    Ok(info) => info,
                    Err(_) => {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            ("Invalid video caps {}", caps)
                        );
                        return false;
                    }
                };
                gst::debug!(CAT, imp = self, "caps {caps}");
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    state.info = Some(info);
                    state.live = None;
                }
                self.queue_event(event)
            }
            gst::EventView::Eos(_) => {
                // A stream at its end sends no more frames: the rest of its session-group must
                // not wait for it. Its next frame (after a flushing seek) makes it active again.
                if let Some(state) = self.state.lock().unwrap().as_ref() {
                    state.member.set_active(false);
                }
                self.queue_event(event)
            }
            _ if event.is_serialized() => self.queue_event(event),
            _ => self.srcpad.push_event(event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::AcceptCaps(q) = query.view_mut() {
            // Name the element and the formats when a producer offers something else, rather than
            // leaving it to an anonymous not-negotiated further up.
            let caps = q.caps_owned();
            if !caps.can_intersect(&pad.pad_template_caps()) {
                video::explain_refused_caps(self.obj().upcast_ref(), pad.direction(), &caps, false);
                q.set_result(false);
                return true;
            }
        }
        if query.is_serialized() {
            // Answered once everything before it has gone downstream, as a queue would.
            let mut pipe = self.pipe.lock().unwrap();
            while !pipe.flushing && (!pipe.items.is_empty() || pipe.busy) {
                pipe = self.pipe_changed.wait(pipe).unwrap();
            }
            if pipe.flushing {
                return false;
            }
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn start_task(&self) {
        let element = self.obj().clone();
        if let Err(e) = self.srcpad.start_task(move || element.imp().output_loop()) {
            gst::element_imp_error!(
                self,
                gst::CoreError::Thread,
                ("Could not start the output thread: {}", e)
            );
        }
    }

    fn src_activatemode(
        &self,
        pad: &gst::Pad,
        mode: gst::PadMode,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        if mode != gst::PadMode::Push {
            return Err(gst::loggable_error!(CAT, "only push mode is supported"));
        }
        if active {
            {
                let mut pipe = self.pipe.lock().unwrap();
                pipe.flushing = false;
                pipe.flow = Ok(gst::FlowSuccess::Ok);
            }
            self.start_task();
        } else {
            self.set_flushing();
            pad.stop_task()
                .map_err(|e| gst::loggable_error!(CAT, "could not stop the output thread: {e}"))?;
        }
        Ok(())
    }

    /// The output task: takes the next frame or event, waits for the frame's persons, attaches
    /// them and pushes it downstream.
    fn output_loop(&self) {
        let item = {
            let mut pipe = self.pipe.lock().unwrap();
            loop {
                if pipe.flushing {
                    drop(pipe);
                    let _ = self.srcpad.pause_task();
                    return;
                }
                if let Some(item) = pipe.items.pop_front() {
                    pipe.busy = true;
                    break item;
                }
                pipe = self.pipe_changed.wait(pipe).unwrap();
            }
        };
        self.pipe_changed.notify_all();
        let flow = match item {
            Item::Frame {
                mut buffer,
                index,
                work,
                arrived,
            } => {
                let inferred = self.finish_frame(buffer.make_mut(), index, work);
                if inferred {
                    self.latency
                        .raise(self.obj().upcast_ref(), *CAT, arrived.elapsed());
                }
                self.srcpad.push(buffer)
            }
            Item::Event(event) => {
                let type_ = event.type_();
                if !self.srcpad.push_event(event) {
                    // A refused event is no reason to stop streaming (queue does the same).
                    gst::debug!(CAT, imp = self, "downstream refused {type_:?}");
                }
                Ok(gst::FlowSuccess::Ok)
            }
        };
        let mut pipe = self.pipe.lock().unwrap();
        pipe.busy = false;
        if let Err(err) = flow {
            pipe.flow = Err(err);
            drop(pipe);
            self.pipe_changed.notify_all();
            gst::debug!(CAT, imp = self, "pausing the output thread: {err:?}");
            if err != gst::FlowError::Flushing && err != gst::FlowError::Eos {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Internal data stream error."),
                    ["streaming stopped, reason {err:?}"]
                );
            }
            let _ = self.srcpad.pause_task();
            return;
        }
        drop(pipe);
        self.pipe_changed.notify_all();
    }

    /// Attaches the frame's persons; whether the model ran on it.
    fn finish_frame(&self, buffer: &mut gst::BufferRef, index: u64, work: Work) -> bool {
        let (pending, prepared) = match work {
            Work::Skipped => {
                self.stats.lock().unwrap().frames_skipped += 1;
                // Marked as looked at by no model (no INFERRED flag): downstream tells "nobody
                // there" from "not looked", and bytetrack predicts the tracks on it.
                if buffer.meta::<PoseMeta>().is_none() {
                    PoseMeta::add(buffer, &[], PoseMetaFlags::empty());
                }
                gst::trace!(CAT, imp = self, "frame {index}: skipped (interval)");
                return false;
            }
            Work::Failed(e) => {
                self.count_error(index, &e);
                return false;
            }
            Work::Pending(pending, prepared) => (pending, prepared),
        };
        let waited = Instant::now();
        let reply = pending.wait();
        let waited = waited.elapsed();
        match reply.result {
            Ok(detections) => {
                let persons: Vec<Person> = detections.iter().map(to_person).collect();
                PoseMeta::add_or_replace(buffer, &persons, PoseMetaFlags::INFERRED);
                let mut stats = self.stats.lock().unwrap();
                stats.inferences += 1;
                stats.preprocess_ns += prepared.preprocess.as_nanos() as u64;
                stats.slot_wait_ns += prepared.slot_wait.as_nanos() as u64;
                stats.inference_wait_ns += waited.as_nanos() as u64;
                if reply.shared {
                    stats.batched_frames += 1;
                }
                drop(stats);
                gst::trace!(
                    CAT,
                    imp = self,
                    "frame {index}: {} persons (call of {} frame(s), {:?})",
                    persons.len(),
                    reply.batch_size,
                    reply.call_time
                );
                true
            }
            Err(e) => {
                self.count_error(index, &e);
                false
            }
        }
    }

    /// Counts frames missing upstream, and on live streams feeds the adaptive interval with the
    /// frame's lateness; posts what changes.
    fn pace(&self, state: &mut State, pts: Option<gst::ClockTime>) {
        let period = state.frame_period();
        let dropped = match (state.last_pts, pts) {
            (Some(last), Some(pts)) if pts > last => {
                // Half a period of jitter is not a missing frame.
                ((pts - last).nseconds() + period.nseconds() / 2) / period.nseconds().max(1) - 1
            }
            _ => 0,
        };
        state.last_pts = pts.or(state.last_pts);
        if dropped > 0 {
            self.stats.lock().unwrap().frames_dropped_upstream += dropped;
            gst::debug!(CAT, imp = self, "{dropped} frame(s) missing before {pts:?}");
        }
        let live = *state.live.get_or_insert_with(|| {
            let mut query = gst::query::Latency::new();
            self.sinkpad.peer_query(&mut query) && query.result().0
        });
        let Some((now, lateness)) = live.then(|| self.lateness(pts)).flatten() else {
            return;
        };
        let previous_behind = state.pacing.behind();
        let change = state
            .pacing
            .observe(now.nseconds(), lateness, period.nseconds(), dropped);
        if let Some(change) = change {
            self.stats.lock().unwrap().current_interval = change.interval;
            gst::info!(
                CAT,
                imp = self,
                "interval {} -> {} ({} ms of frames queued before the element)",
                change.previous,
                change.interval,
                change.queueing_ns / 1_000_000
            );
            let structure = gst::Structure::builder("recognizer-interval")
                .field("interval", change.interval)
                .field("previous", change.previous)
                .field("queueing-ns", change.queueing_ns)
                .build();
            let _ = self.obj().post_message(
                gst::message::Element::builder(structure)
                    .src(&*self.obj())
                    .build(),
            );
        }
        let behind = state.pacing.behind();
        let at_limit = state.pacing.interval() >= state.pacing.max();
        if behind && at_limit && !state.warned {
            state.warned = true;
            let stats = self.stats.lock().unwrap();
            let (skipped, dropped) = (stats.frames_skipped, stats.frames_dropped_upstream);
            drop(stats);
            gst::element_imp_warning!(
                self,
                gst::StreamError::Failed,
                ("Pose estimation is behind real time"),
                [
                    "frames are queueing or being dropped before rtmopose at interval {}: {} frame(s) dropped upstream and {} not inferred so far; raise interval or adaptive-interval, share a session-group, or give it more hardware",
                    state.pacing.interval(),
                    dropped,
                    skipped
                ]
            );
        } else if !behind && previous_behind {
            state.warned = false;
        }
    }

    /// The pipeline clock's time and how late a frame with `pts` is against it, while playing.
    fn lateness(&self, pts: Option<gst::ClockTime>) -> Option<(gst::ClockTime, i64)> {
        let element = self.obj();
        if element.current_state() != gst::State::Playing {
            return None;
        }
        let (clock, base) = (element.clock()?, element.base_time()?);
        let event = self.sinkpad.sticky_event::<gst::event::Segment>(0)?;
        let segment = event.segment().downcast_ref::<gst::ClockTime>()?;
        let running = segment.to_running_time(pts?)?;
        let now = clock.time().checked_sub(base)?;
        Some((now, now.nseconds() as i64 - running.nseconds() as i64))
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let mut upstream = gst::query::Latency::new();
            if !self.sinkpad.peer_query(&mut upstream) {
                return false;
            }
            self.latency
                .answer(self.obj().upcast_ref(), *CAT, q, upstream.result());
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn count_error(&self, index: u64, error: &str) {
        let errors = {
            let mut stats = self.stats.lock().unwrap();
            stats.frame_errors += 1;
            stats.frame_errors
        };
        gst::warning!(
            CAT,
            imp = self,
            "frame {index} passes without pose metadata ({errors} so far): {error}"
        );
    }
}

fn to_person(d: &PoseDetection) -> Person {
    Person::from_rows(d.bbox, d.score, &d.keypoints)
}
