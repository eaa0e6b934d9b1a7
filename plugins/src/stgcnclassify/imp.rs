use std::{
    path::PathBuf,
    sync::{LazyLock, Mutex},
    time::Instant,
};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::subclass::prelude::*;
use recognizer_core::action::{
    Normalization, Schedule, TrackAction, TrackFrame, TrackWindows, WindowSpec, argmax,
};
use recognizer_meta::{Action, ClassScore, Person, PoseMeta, TrackState};

use super::NormalizationChoice;
use crate::{
    action_model::{self, ActionModel, OutputKind},
    errors::{FrameErrors, settings_error},
    latency::ProcessingLatency,
    onnx::{Device, SessionRequest},
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "stgcnclassify",
        gst::DebugColorFlags::empty(),
        Some("Skeleton action classification"),
    )
});

const DEFAULT_WINDOW: u32 = 0;
const DEFAULT_STRIDE: u32 = 4;
const DEFAULT_MIN_FRAMES: u32 = 0;
const DEFAULT_THREADS: u32 = 1;
const DEFAULT_SCORE_THRESHOLD: f32 = 0.0;
const DEFAULT_PERSONS_PER_SAMPLE: u32 = 0;
const DEFAULT_NORMALIZATION: NormalizationChoice = NormalizationChoice::Auto;
const DEFAULT_MIN_JOINT_SCORE: f32 = 0.01;

#[derive(Debug, Clone)]
struct Settings {
    model: Option<PathBuf>,
    labels: Option<PathBuf>,
    window: u32,
    stride: u32,
    min_frames: u32,
    device: String,
    fallback_to_cpu: bool,
    threads: u32,
    score_threshold: f32,
    persons_per_sample: u32,
    normalization: NormalizationChoice,
    min_joint_score: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            labels: None,
            window: DEFAULT_WINDOW,
            stride: DEFAULT_STRIDE,
            min_frames: DEFAULT_MIN_FRAMES,
            device: crate::onnx::DEFAULT_DEVICE.into(),
            fallback_to_cpu: crate::onnx::DEFAULT_FALLBACK_TO_CPU,
            threads: DEFAULT_THREADS,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            persons_per_sample: DEFAULT_PERSONS_PER_SAMPLE,
            normalization: DEFAULT_NORMALIZATION,
            min_joint_score: DEFAULT_MIN_JOINT_SCORE,
        }
    }
}

struct State {
    model: ActionModel,
    spec: WindowSpec,
    output: OutputKind,
    labels: Vec<String>,
    /// One score entry per class (label quark and class id; the score is filled per person).
    classes: Vec<ClassScore>,
    windows: TrackWindows,
    width: f32,
    height: f32,
    /// Reused input buffer of the batch.
    batch: Vec<f32>,
    /// A person with a track id has arrived since start.
    tracks_seen: bool,
    /// The warning about persons without track ids was posted.
    untracked_warned: bool,
}

/// Read-only figures that outlive a run, so that applications can read them after EOS.
#[derive(Default)]
struct Stats {
    execution_provider: Option<String>,
    classifications: u64,
    batches: u64,
}

#[derive(Default)]
pub struct StgcnClassify {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
    frame_errors: FrameErrors,
    /// The processing latency this element adds in live pipelines (latency query): classifying
    /// holds a frame back for as long as the model call takes.
    latency: ProcessingLatency,
}

#[glib::object_subclass]
impl ObjectSubclass for StgcnClassify {
    const NAME: &'static str = "GstStgcnClassify";
    type Type = super::StgcnClassify;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for StgcnClassify {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = crate::onnx::inference_properties(DEFAULT_THREADS);
            properties.extend([
                glib::ParamSpecString::builder("model-file")
                    .nick("Model file")
                    .blurb("Path of the classifier (.onnx): input [N,M,T,17,3] -> output [N,K]")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("labels-file")
                    .nick("Labels file")
                    .blurb("File with one class label per line (default: the model's recognizer.labels metadata)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("window")
                    .nick("Window")
                    .blurb("Frames per window, T (0: from the model)")
                    .maximum(10_000)
                    .default_value(DEFAULT_WINDOW)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stride")
                    .nick("Stride")
                    .blurb("Classify each track every N frames")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_STRIDE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-frames")
                    .nick("Minimum frames")
                    .blurb("Classify a track once it has this many frames, padding the window (0: the model's recognizer.min_frames, else the full window)")
                    .maximum(10_000)
                    .default_value(DEFAULT_MIN_FRAMES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("score-threshold")
                    .nick("Score threshold")
                    .blurb("Actions whose top class scores lower are not written")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SCORE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("persons-per-sample")
                    .nick("Persons per sample")
                    .blurb("M: 1 = each track alone, 2 = the track and the nearest other person (0: from the model)")
                    .maximum(2)
                    .default_value(DEFAULT_PERSONS_PER_SAMPLE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("normalization", DEFAULT_NORMALIZATION)
                    .nick("Normalization")
                    .blurb("Keypoint normalisation: auto (model metadata, else frame), frame (pyskl PreNormalize2D) or window")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("min-joint-score")
                    .nick("Minimum joint score")
                    .blurb("Joints scoring this or lower are zeroed")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MIN_JOINT_SCORE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("execution-provider")
                    .nick("Execution provider")
                    .blurb("The ONNX Runtime execution provider in use; empty before start")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("classifications")
                    .nick("Classifications")
                    .blurb("Windows classified since start")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("batches")
                    .nick("Batches")
                    .blurb("Frames on which windows were classified (one batched call each when the model allows)")
                    .read_only()
                    .build(),
                FrameErrors::property(
                    "Frames that passed without new actions because classifying failed",
                ),
            ]);
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let path = |v: &glib::Value| {
            v.get::<Option<String>>()
                .unwrap()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        match pspec.name() {
            "model-file" => s.model = path(value),
            "labels-file" => s.labels = path(value),
            "window" => s.window = value.get().unwrap(),
            "stride" => s.stride = value.get().unwrap(),
            "min-frames" => s.min_frames = value.get().unwrap(),
            "device" => {
                s.device = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| crate::onnx::DEFAULT_DEVICE.into())
            }
            "fallback-to-cpu" => s.fallback_to_cpu = value.get().unwrap(),
            "threads" => s.threads = value.get().unwrap(),
            "score-threshold" => s.score_threshold = value.get().unwrap(),
            "persons-per-sample" => s.persons_per_sample = value.get().unwrap(),
            "normalization" => s.normalization = value.get().unwrap(),
            "min-joint-score" => s.min_joint_score = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        match pspec.name() {
            "model-file" => path(&s.model),
            "labels-file" => path(&s.labels),
            "window" => s.window.to_value(),
            "stride" => s.stride.to_value(),
            "min-frames" => s.min_frames.to_value(),
            "device" => s.device.to_value(),
            "fallback-to-cpu" => s.fallback_to_cpu.to_value(),
            "threads" => s.threads.to_value(),
            "score-threshold" => s.score_threshold.to_value(),
            "persons-per-sample" => s.persons_per_sample.to_value(),
            "normalization" => s.normalization.to_value(),
            "min-joint-score" => s.min_joint_score.to_value(),
            "execution-provider" => self
                .stats
                .lock()
                .unwrap()
                .execution_provider
                .clone()
                .unwrap_or_default()
                .to_value(),
            "classifications" => self.stats.lock().unwrap().classifications.to_value(),
            "batches" => self.stats.lock().unwrap().batches.to_value(),
            "frame-errors" => self.frame_errors.get().to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for StgcnClassify {}

impl ElementImpl for StgcnClassify {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "ST-GCN action classifier",
                "Filter/Analyzer/Video",
                "Classifies the action of each tracked person from a sliding window of skeletons",
                "Recognizer developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| crate::video::filter_pad_templates(&crate::video::any_raw_video()));
        PAD_TEMPLATES.as_ref()
    }
}

/// Loads the model and reconciles it with the settings into the runtime state.
fn build_state(settings: &Settings) -> Result<State, gst::ErrorMessage> {
    let Some(model_path) = settings.model.as_ref() else {
        return Err(gst::error_msg!(
            gst::ResourceError::NotFound,
            ("No model set: the 'model-file' property must name an action model (.onnx)")
        ));
    };
    let device: Device = settings.device.parse().map_err(settings_error)?;
    let request = SessionRequest {
        model: model_path,
        device,
        fallback_to_cpu: settings.fallback_to_cpu,
        threads: settings.threads as usize,
    };
    let model =
        ActionModel::load(&request).map_err(|e| crate::onnx::model_load_error(model_path, &e))?;
    let name = model_path.display();

    let frames = match (settings.window as usize, model.frames) {
        (0, Some(t)) => t,
        (0, None) => {
            return Err(settings_error(format!(
                "{name} has a dynamic window length: set the 'window' property"
            )));
        }
        (w, Some(t)) if w != t => {
            return Err(settings_error(format!(
                "window={w} does not fit {name}, whose input takes T = {t} frames"
            )));
        }
        (w, _) => w,
    };
    let persons = match (settings.persons_per_sample as usize, model.persons) {
        (0, Some(m)) => m,
        (0, None) => 1,
        (m, Some(fixed)) if m != fixed => {
            return Err(settings_error(format!(
                "persons-per-sample={m} does not fit {name}, whose input takes M = {fixed}"
            )));
        }
        (m, _) => m,
    };
    let min_frames = match settings.min_frames as usize {
        0 => model.min_frames.unwrap_or(frames).clamp(1, frames),
        m if m > frames => {
            return Err(settings_error(format!(
                "min-frames={m} exceeds the window of {frames} frames"
            )));
        }
        m => m,
    };
    let normalization = match settings.normalization {
        NormalizationChoice::Auto => model.normalization.unwrap_or(Normalization::Frame),
        NormalizationChoice::Frame => Normalization::Frame,
        NormalizationChoice::Window => Normalization::Window,
    };
    let labels: Vec<String> = match &settings.labels {
        Some(path) => action_model::read_labels_file(path)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)))?,
        None => model.labels.clone().ok_or_else(|| {
            settings_error(format!("{name} carries no labels (recognizer.labels metadata): set the 'labels-file' property to a file with one label per line"))
        })?,
    };
    if let Some(k) = model.classes
        && k != labels.len()
    {
        let source = settings
            .labels
            .as_ref()
            .map_or("the model's metadata".to_string(), |p| {
                format!("labels file '{}'", p.display())
            });
        return Err(settings_error(format!(
            "{source} has {} labels but {name} outputs {k} classes",
            labels.len()
        )));
    }
    let spec = WindowSpec {
        frames,
        persons,
        normalization,
        min_joint_score: settings.min_joint_score,
    };
    let windows = TrackWindows::new(Schedule {
        window: frames,
        stride: settings.stride.max(1) as usize,
        min_frames,
    });
    let output = model.output_kind.unwrap_or(OutputKind::Logits);
    let classes = (0..model.classes.unwrap_or(labels.len()))
        .map(|k| ClassScore::new(k as u32, &label_of(&labels, k), 0.0))
        .collect();
    Ok(State {
        model,
        spec,
        output,
        labels,
        classes,
        windows,
        width: 0.0,
        height: 0.0,
        batch: Vec::new(),
        tracks_seen: false,
        untracked_warned: false,
    })
}

/// The label of a class, `class_K` for a class beyond the labels.
fn label_of(labels: &[String], class_id: usize) -> String {
    labels
        .get(class_id)
        .cloned()
        .unwrap_or_else(|| format!("class_{class_id}"))
}

fn centre(p: &Person) -> (f32, f32) {
    ((p.bbox[0] + p.bbox[2]) / 2.0, (p.bbox[1] + p.bbox[3]) / 2.0)
}

impl BaseTransformImpl for StgcnClassify {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    // Actions are written into the metadata, so the buffer must be writable even with equal caps.
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let mut state = build_state(&settings)?;
        // One call on an empty window (its first-call costs included) bounds the processing
        // latency until frames are timed.
        let warm_up = Instant::now();
        let zeros = vec![0.0; state.spec.sample_len()];
        let (persons_m, frames_t, output) = (state.spec.persons, state.spec.frames, state.output);
        if let Err(e) = state.model.classify(&zeros, 1, persons_m, frames_t, output) {
            return Err(gst::error_msg!(
                gst::ResourceError::Failed,
                ("The action model fails on an empty window: {}", e)
            ));
        }
        self.latency.start_from_warm_up(warm_up.elapsed());
        if let Some(reason) = &state.model.fallback_reason {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("Falling back to the CPU: {}", reason)
            );
        }
        gst::info!(
            CAT,
            imp = self,
            "loaded {}: {} classes, T = {}, M = {}, {:?} normalisation, min {} frames, stride {}, on {}",
            settings
                .model
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display(),
            state.labels.len(),
            state.spec.frames,
            state.spec.persons,
            state.spec.normalization,
            state.windows.schedule().min_frames,
            state.windows.schedule().stride,
            state.model.execution_provider
        );
        *self.stats.lock().unwrap() = Stats {
            execution_provider: Some(state.model.execution_provider.to_string()),
            ..Default::default()
        };
        self.frame_errors.reset();
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        let stats = self.stats.lock().unwrap();
        gst::info!(
            CAT,
            imp = self,
            "stopped: {} windows classified in {} calls, {} frame errors",
            stats.classifications,
            stats.batches,
            self.frame_errors.get()
        );
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let is_latency = matches!(query.view(), gst::QueryView::Latency(_));
        if direction != gst::PadDirection::Src || !is_latency {
            return BaseTransformImplExt::parent_query(self, direction, query);
        }
        // Upstream's latency, plus the time a classification may hold a frame.
        if !BaseTransformImplExt::parent_query(self, direction, query) {
            return false;
        }
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let upstream = q.result();
            self.latency
                .answer(self.obj().upcast_ref(), *CAT, q, upstream);
        }
        true
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        // Every window and the actions carried forward start over.
        crate::reset_on_flush_stop(&event, &self.state, |state| {
            gst::debug!(
                CAT,
                imp = self,
                "flushed: {} windows dropped",
                state.windows.len()
            );
            state.windows = TrackWindows::new(state.windows.schedule());
        });
        self.parent_sink_event(event)
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let s = incaps
            .structure(0)
            .ok_or_else(|| gst::loggable_error!(CAT, "empty caps"))?;
        let mut state = self.state.lock().unwrap();
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        state.width = s.get::<i32>("width").unwrap_or(0) as f32;
        state.height = s.get::<i32>("height").unwrap_or(0) as f32;
        // Frame normalisation divides by the frame size the keypoints are in.
        gst::debug!(
            CAT,
            imp = self,
            "frames of {}x{}",
            state.width,
            state.height
        );
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let score_threshold = self.settings.lock().unwrap().score_threshold;
        let pts = buf.pts().map(|t| t.nseconds());
        let Some(mut meta) = buf.meta_mut::<PoseMeta>() else {
            gst::trace!(CAT, imp = self, "no pose metadata");
            return Ok(gst::FlowSuccess::Ok);
        };
        let mut guard = self.state.lock().unwrap();
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let persons = meta.persons_mut();
        let tracked = persons.iter().any(|p| p.track().is_some());
        state.tracks_seen |= tracked;
        if !persons.is_empty() && !state.tracks_seen && !state.untracked_warned {
            // Windows are kept per track: without `bytetrack` upstream nothing is classified.
            state.untracked_warned = true;
            gst::warning!(
                CAT,
                imp = self,
                "persons without track ids: nothing classified"
            );
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("Persons arrive without track ids, so no action is classified: put bytetrack before stgcnclassify")
            );
        }
        // Tracks seen on this frame (lost tracks reported by the tracker do not count: their
        // window starts over when they come back).
        let present: Vec<(u64, TrackFrame)> = persons
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let track = p.track().filter(|t| t.state != TrackState::Lost)?;
                let other = (state.spec.persons > 1)
                    .then(|| {
                        let (cx, cy) = centre(p);
                        persons
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .min_by(|(_, a), (_, b)| {
                                let da = (centre(a).0 - cx).hypot(centre(a).1 - cy);
                                let db = (centre(b).0 - cx).hypot(centre(b).1 - cy);
                                da.total_cmp(&db)
                            })
                            .map(|(_, o)| o.keypoint_rows())
                    })
                    .flatten();
                Some((
                    track.id,
                    TrackFrame {
                        pose: p.keypoint_rows(),
                        other,
                        width: state.width,
                        height: state.height,
                    },
                ))
            })
            .collect();
        let due = state.windows.push_frame(&present);
        if !due.is_empty() {
            let per = state.spec.sample_len();
            state.batch.resize(due.len() * per, 0.0);
            for (n, id) in due.iter().enumerate() {
                let frames = state.windows.frames(*id).expect("due tracks hold a window");
                state
                    .spec
                    .fill_sample(frames.iter(), &mut state.batch[n * per..(n + 1) * per]);
            }
            let (persons_m, frames_t, output) =
                (state.spec.persons, state.spec.frames, state.output);
            let started = Instant::now();
            let result = state
                .model
                .classify(&state.batch, due.len(), persons_m, frames_t, output);
            self.latency
                .raise(self.obj().upcast_ref(), *CAT, started.elapsed());
            match result {
                Ok(rows) => {
                    for (id, row) in due.iter().zip(&rows) {
                        let window = state.windows.frames(*id).map_or(0, |f| f.len());
                        if let Some((class_id, score)) = argmax(row) {
                            gst::debug!(
                                CAT,
                                imp = self,
                                "track {id}: {} {score:.3} over {window} frames",
                                label_of(&state.labels, class_id)
                            );
                            state.windows.set_action(
                                *id,
                                TrackAction {
                                    class_id,
                                    score,
                                    window,
                                    window_end: pts,
                                    scores: row.clone(),
                                },
                            );
                        }
                    }
                    let mut stats = self.stats.lock().unwrap();
                    stats.classifications += due.len() as u64;
                    stats.batches += 1;
                }
                Err(e) => self.frame_errors.record(
                    *CAT,
                    &*self.obj(),
                    "frame passes without new actions",
                    &e,
                ),
            }
        }
        gst::trace!(
            CAT,
            imp = self,
            "{} tracks present, {} classified",
            present.len(),
            due.len()
        );
        let mut scores: Vec<ClassScore> = Vec::with_capacity(state.classes.len());
        for p in persons.iter_mut() {
            let latest = p.track().and_then(|t| state.windows.action(t.id));
            // Every class probability of the latest classification, kept whatever the
            // score-threshold (rules on a class probability read them).
            scores.clear();
            if let Some(a) = latest {
                scores.extend(a.scores.iter().enumerate().map(|(k, &score)| {
                    let mut entry = state.classes.get(k).copied().unwrap_or_else(|| {
                        ClassScore::new(k as u32, &label_of(&state.labels, k), 0.0)
                    });
                    entry.score = score;
                    entry
                }));
            }
            p.set_class_scores(&scores);
            let action = latest
                .filter(|a| a.score >= score_threshold)
                .map(|a| Action {
                    class_id: a.class_id as u32,
                    label: label_of(&state.labels, a.class_id),
                    score: a.score,
                    window: a.window as u32,
                    window_end_pts: a.window_end,
                });
            p.set_action(action.as_ref());
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
