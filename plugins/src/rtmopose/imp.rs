use std::{
    path::PathBuf,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::subclass::prelude::*;
use recognizer_core::pose::{DecodeParams, PoseDetection};
use recognizer_meta::{Keypoint, NUM_KEYPOINTS, Person, PoseMeta, PoseMetaFlags};

use crate::{
    onnx::{Device, SessionRequest},
    pose_group::{self, GroupConfig},
    pose_model::{Contract, ModelFormat, PoseModel},
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
const DEFAULT_MODEL_FORMAT: &str = "auto";
const DEFAULT_SESSION_GROUP: &str = "";
const DEFAULT_MAX_BATCH: u32 = 8;
const DEFAULT_BATCH_TIMEOUT_US: u32 = 10_000;

#[derive(Debug, Clone)]
struct Settings {
    model: Option<PathBuf>,
    /// As set; parsed (and rejected with an element error) at start.
    device: String,
    fallback_to_cpu: bool,
    score_threshold: f32,
    nms_threshold: f32,
    max_persons: u32,
    interval: u32,
    threads: u32,
    model_format: String,
    session_group: String,
    max_batch: u32,
    batch_timeout_us: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            device: crate::onnx::DEFAULT_DEVICE.to_string(),
            fallback_to_cpu: crate::onnx::DEFAULT_FALLBACK_TO_CPU,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            max_persons: DEFAULT_MAX_PERSONS,
            interval: DEFAULT_INTERVAL,
            threads: DEFAULT_THREADS,
            model_format: DEFAULT_MODEL_FORMAT.to_string(),
            session_group: DEFAULT_SESSION_GROUP.to_string(),
            max_batch: DEFAULT_MAX_BATCH,
            batch_timeout_us: DEFAULT_BATCH_TIMEOUT_US,
        }
    }
}

/// Where this element's frames run.
enum Inference {
    /// Its own session.
    Own(PoseModel),
    /// A session shared with the other elements of its `session-group`; `input` is this
    /// element's tensor, lent to the group's worker while a frame runs.
    Shared {
        member: pose_group::Member,
        input: Vec<f32>,
    },
}

impl Inference {
    fn contract(&self) -> &Contract {
        match self {
            Self::Own(model) => &model.contract,
            Self::Shared { member, .. } => member.contract(),
        }
    }

    /// Persons in the frame, and how many frames ran in the same call (1 = alone).
    fn detect(
        &mut self,
        image: &recognizer_core::pose::Image<'_>,
        params: &DecodeParams,
    ) -> Result<(Vec<PoseDetection>, usize), String> {
        match self {
            Self::Own(model) => model.detect(image, params).map(|d| (d, 1)),
            Self::Shared { member, input } => {
                let contract = member.contract();
                input.resize(contract.input_len(), 0.0);
                let letterbox = contract.preprocess(image, input)?;
                let reply = member.infer(std::mem::take(input), letterbox, *params);
                *input = reply.input;
                reply.result.map(|d| (d, reply.batch_size))
            }
        }
    }
}

/// Runtime state, created in `start()` and dropped in `stop()`.
struct State {
    model: Inference,
    info: Option<gst_video::VideoInfo>,
    /// Frames seen since start, to apply `interval`.
    frame_count: u64,
}

/// Read-only figures that outlive a run, so that applications can read them after EOS.
#[derive(Default)]
struct Stats {
    execution_provider: Option<String>,
    frame_errors: u64,
    inferences: u64,
    batched_frames: u64,
}

#[derive(Default)]
pub struct RtmoPose {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
}

#[glib::object_subclass]
impl ObjectSubclass for RtmoPose {
    const NAME: &'static str = "GstRtmoPose";
    type Type = super::RtmoPose;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for RtmoPose {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = crate::onnx::inference_properties(DEFAULT_THREADS);
            properties.extend([
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Path of the pose model (.onnx): an RTMO export or a raw YOLO-pose export")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-format")
                    .nick("Model format")
                    .blurb("Output contract of the model: auto (from its outputs), rtmo or yolo-pose")
                    .default_value(Some(DEFAULT_MODEL_FORMAT))
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
                glib::ParamSpecUInt::builder("batch-timeout")
                    .nick("Batch timeout")
                    .blurb("With session-group: microseconds a frame waits for frames of the group's other streams before its call starts (it never waits once every running stream has a frame queued)")
                    .maximum(10_000_000)
                    .default_value(DEFAULT_BATCH_TIMEOUT_US)
                    .mutable_ready()
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
            ]);
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => {
                settings.model = value
                    .get::<Option<String>>()
                    .unwrap()
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            }
            "model-format" => {
                let s = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| DEFAULT_MODEL_FORMAT.into());
                if let Err(e) = s.parse::<ModelFormat>() {
                    gst::error!(CAT, imp = self, "{e}; the element will refuse to start");
                }
                settings.model_format = s;
            }
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
            "batch-timeout" => settings.batch_timeout_us = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => settings
                .model
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
            "batch-timeout" => settings.batch_timeout_us.to_value(),
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
}

impl BaseTransformImpl for RtmoPose {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    // Metadata is added to every buffer, so the buffer must be writable even with equal caps.
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let Some(model_path) = settings.model.as_ref() else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No model set: the 'model' property must name a pose model (.onnx)")
            ));
        };
        let device: Device = settings
            .device
            .parse()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
        let format: ModelFormat = settings
            .model_format
            .parse()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
        let request = SessionRequest {
            model: model_path,
            device,
            fallback_to_cpu: settings.fallback_to_cpu,
            threads: settings.threads as usize,
        };
        let (model, execution_provider, fallback_reason) = if settings.session_group.is_empty() {
            let model = PoseModel::load(&request, format)
                .map_err(|e| crate::onnx::model_load_error(model_path, &e))?;
            let (provider, reason) = (model.execution_provider, model.fallback_reason.clone());
            (Inference::Own(model), provider, reason)
        } else {
            let config = GroupConfig {
                model: std::fs::canonicalize(model_path).unwrap_or_else(|_| model_path.clone()),
                device,
                fallback_to_cpu: settings.fallback_to_cpu,
                threads: settings.threads as usize,
                format,
                max_batch: settings.max_batch as usize,
                batch_timeout: Duration::from_micros(settings.batch_timeout_us.into()),
            };
            let member =
                pose_group::join(&settings.session_group, config).map_err(|e| match e {
                    pose_group::JoinError::Mismatch(e) => {
                        gst::error_msg!(gst::ResourceError::Settings, ("{}", e))
                    }
                    pose_group::JoinError::Load(e) => crate::onnx::model_load_error(model_path, &e),
                })?;
            gst::info!(
                CAT,
                imp = self,
                "in session-group '{}' with {} element(s)",
                member.group_name(),
                member.members()
            );
            let (provider, reason) = (
                member.execution_provider(),
                member.fallback_reason().map(str::to_string),
            );
            (
                Inference::Shared {
                    member,
                    input: Vec::new(),
                },
                provider,
                reason,
            )
        };
        if let Some(reason) = &fallback_reason {
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
        let contract = model.contract();
        gst::info!(
            CAT,
            imp = self,
            "loaded {} ({} contract, input {}x{}{}) on {}",
            model_path.display(),
            contract.format,
            contract.input_width,
            contract.input_height,
            if contract.dynamic_batch {
                ", dynamic batch"
            } else {
                ""
            },
            execution_provider
        );
        *self.stats.lock().unwrap() = Stats {
            execution_provider: Some(execution_provider.to_string()),
            frame_errors: 0,
            inferences: 0,
            batched_frames: 0,
        };
        *self.state.lock().unwrap() = Some(State {
            model,
            info: None,
            frame_count: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        // A stream at its end sends no more frames: the rest of its session-group must not wait
        // for it. Its next frame (after a flushing seek) makes it active again.
        if let gst::EventView::Eos(_) = event.view()
            && let Some(State {
                model: Inference::Shared { member, .. },
                ..
            }) = self.state.lock().unwrap().as_ref()
        {
            member.set_active(false);
        }
        self.parent_sink_event(event)
    }

    fn accept_caps(&self, direction: gst::PadDirection, caps: &gst::Caps) -> bool {
        let accepted = self.parent_accept_caps(direction, caps);
        video::explain_refused_caps(self.obj().upcast_ref(), direction, caps, accepted)
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid video caps {incaps}"))?;
        let mut state = self.state.lock().unwrap();
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        state.info = Some(info);
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (interval, params) = {
            let s = self.settings.lock().unwrap();
            (
                s.interval.max(1) as u64,
                DecodeParams {
                    score_threshold: s.score_threshold,
                    nms_threshold: s.nms_threshold,
                    max_persons: s.max_persons as usize,
                },
            )
        };
        let mut state_guard = self.state.lock().unwrap();
        let Some(state) = state_guard.as_mut() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Not started"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame_index = state.frame_count;
        state.frame_count += 1;
        if frame_index % interval != 0 {
            return Ok(gst::FlowSuccess::Ok);
        }
        let Some(info) = state.info.as_ref() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let result = {
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(&*buf, info)
                .map_err(|_| "could not map the frame for reading".to_string());
            frame.and_then(|frame| match video::image(&frame) {
                Some(image) => state.model.detect(&image, &params),
                None => Err(format!("unsupported format {:?}", info.format())),
            })
        };
        drop(state_guard);
        match result {
            Ok((detections, batch_size)) => {
                let persons: Vec<Person> = detections.iter().map(to_person).collect();
                PoseMeta::add_or_replace(buf, &persons, PoseMetaFlags::INFERRED);
                let mut stats = self.stats.lock().unwrap();
                stats.inferences += 1;
                if batch_size > 1 {
                    stats.batched_frames += 1;
                }
                drop(stats);
                gst::trace!(
                    CAT,
                    imp = self,
                    "frame {frame_index}: {} persons",
                    persons.len()
                );
            }
            Err(e) => {
                let errors = {
                    let mut stats = self.stats.lock().unwrap();
                    stats.frame_errors += 1;
                    stats.frame_errors
                };
                gst::warning!(
                    CAT,
                    imp = self,
                    "frame {frame_index} passes without pose metadata ({errors} so far): {e}"
                );
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

fn to_person(d: &PoseDetection) -> Person {
    let mut keypoints = [Keypoint::default(); NUM_KEYPOINTS];
    for (k, v) in keypoints.iter_mut().zip(&d.keypoints) {
        *k = Keypoint {
            x: v[0],
            y: v[1],
            score: v[2],
        };
    }
    Person::new(d.bbox, d.score, keypoints)
}
