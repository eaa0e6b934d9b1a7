use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::subclass::prelude::*;
use recognizer_core::bytetrack::{self, ByteTrackConfig, ByteTracker, Detection, TrackOutput};
use recognizer_meta::{
    Keypoint, NUM_KEYPOINTS, Person, PersonFlags, PoseMeta, PoseMetaFlags, Track, TrackState,
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "bytetrack",
        gst::DebugColorFlags::empty(),
        Some("ByteTrack tracking"),
    )
});

const DEFAULT_TRACK_THRESH: f64 = 0.5;
const DEFAULT_LOW_THRESH: f64 = 0.1;
const DEFAULT_MATCH_THRESH: f64 = 0.8;
const DEFAULT_TRACK_BUFFER: u32 = 30;
const DEFAULT_FRAME_RATE: f64 = 0.0;
const DEFAULT_MIN_BOX_AREA: f64 = 10.0;
const DEFAULT_KEEP_UNTRACKED: bool = false;
/// Frame rate assumed when neither the property nor the caps give one.
const FALLBACK_FRAME_RATE: f64 = 30.0;

#[derive(Debug, Clone)]
struct Settings {
    track_thresh: f64,
    low_thresh: f64,
    match_thresh: f64,
    track_buffer: u32,
    /// 0: from the caps.
    frame_rate: f64,
    min_box_area: f64,
    keep_untracked: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            track_thresh: DEFAULT_TRACK_THRESH,
            low_thresh: DEFAULT_LOW_THRESH,
            match_thresh: DEFAULT_MATCH_THRESH,
            track_buffer: DEFAULT_TRACK_BUFFER,
            frame_rate: DEFAULT_FRAME_RATE,
            min_box_area: DEFAULT_MIN_BOX_AREA,
            keep_untracked: DEFAULT_KEEP_UNTRACKED,
        }
    }
}

impl Settings {
    fn config(&self, caps_frame_rate: Option<f64>) -> ByteTrackConfig {
        let frame_rate = if self.frame_rate > 0.0 {
            self.frame_rate
        } else {
            caps_frame_rate.unwrap_or(FALLBACK_FRAME_RATE)
        };
        ByteTrackConfig {
            track_thresh: self.track_thresh,
            low_thresh: self.low_thresh,
            match_thresh: self.match_thresh,
            track_buffer: self.track_buffer,
            frame_rate,
            ..ByteTrackConfig::default()
        }
    }
}

/// The last box and keypoints of a track, to move the keypoints with predicted boxes.
#[derive(Clone, Copy)]
struct LastPose {
    bbox: [f32; 4],
    keypoints: [Keypoint; NUM_KEYPOINTS],
}

struct State {
    /// Created at the first buffer, once the frame rate is known from the caps.
    tracker: Option<ByteTracker>,
    caps_frame_rate: Option<f64>,
    last_pose: HashMap<u64, LastPose>,
    /// Frames since start, for the logs.
    frames: u64,
}

impl State {
    fn new() -> Self {
        Self {
            tracker: None,
            caps_frame_rate: None,
            last_pose: HashMap::new(),
            frames: 0,
        }
    }

    /// Forgets every track (ids start at 1 again), keeping the configuration and the caps.
    fn forget_tracks(&mut self) {
        if let Some(tracker) = self.tracker.as_mut() {
            tracker.reset();
        }
        self.last_pose.clear();
    }
}

#[derive(Default)]
pub struct ByteTrack {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for ByteTrack {
    const NAME: &'static str = "GstByteTrack";
    type Type = super::ByteTrack;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for ByteTrack {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecDouble::builder("track-thresh")
                    .nick("Track threshold")
                    .blurb("Detections scoring above this take part in the first association; new tracks need this + 0.1")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_TRACK_THRESH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("low-thresh")
                    .nick("Low threshold")
                    .blurb("Detections scoring between this and track-thresh take part in the second association")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_LOW_THRESH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("match-thresh")
                    .nick("Match threshold")
                    .blurb("Cost limit (1 - IoU, fused with the score) of the first association")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MATCH_THRESH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("track-buffer")
                    .nick("Track buffer")
                    .blurb("Frames (at 30 fps; scaled by the frame rate) a lost track is kept for re-identification")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(DEFAULT_TRACK_BUFFER)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("frame-rate")
                    .nick("Frame rate")
                    .blurb("Frames per second of the stream (0: from the caps, else 30)")
                    .minimum(0.0)
                    .maximum(1000.0)
                    .default_value(DEFAULT_FRAME_RATE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("min-box-area")
                    .nick("Minimum box area")
                    .blurb("Tracks whose box is smaller (square pixels) are not reported, as in the official demo")
                    .minimum(0.0)
                    .default_value(DEFAULT_MIN_BOX_AREA)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("keep-untracked")
                    .nick("Keep untracked")
                    .blurb("Keep persons that belong to no confirmed track (low-score or first sightings) in the metadata")
                    .default_value(DEFAULT_KEEP_UNTRACKED)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("active-tracks")
                    .nick("Active tracks")
                    .blurb("Tracks currently held (tracked, unconfirmed and lost)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "track-thresh" => s.track_thresh = value.get().unwrap(),
            "low-thresh" => s.low_thresh = value.get().unwrap(),
            "match-thresh" => s.match_thresh = value.get().unwrap(),
            "track-buffer" => s.track_buffer = value.get().unwrap(),
            "frame-rate" => s.frame_rate = value.get().unwrap(),
            "min-box-area" => s.min_box_area = value.get().unwrap(),
            "keep-untracked" => s.keep_untracked = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "track-thresh" => s.track_thresh.to_value(),
            "low-thresh" => s.low_thresh.to_value(),
            "match-thresh" => s.match_thresh.to_value(),
            "track-buffer" => s.track_buffer.to_value(),
            "frame-rate" => s.frame_rate.to_value(),
            "min-box-area" => s.min_box_area.to_value(),
            "keep-untracked" => s.keep_untracked.to_value(),
            "active-tracks" => {
                let state = self.state.lock().unwrap();
                let n = state
                    .as_ref()
                    .and_then(|s| s.tracker.as_ref())
                    .map_or(0, |t| t.num_tracks());
                (n as u32).to_value()
            }
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for ByteTrack {}

impl ElementImpl for ByteTrack {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "ByteTrack person tracker",
                "Filter/Analyzer/Video",
                "Tracks the people of the pose metadata with ByteTrack and writes stable per-stream track ids",
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

impl BaseTransformImpl for ByteTrack {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    // Metadata is written on every buffer, so the buffer must be writable even with equal caps.
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        settings.config(None).validate().map_err(|e| {
            // The core names its parameters as the properties are named, with '_' for '-'.
            crate::errors::settings_error(format!(
                "Invalid bytetrack settings: {}",
                e.replace('_', "-")
            ))
        })?;
        gst::info!(CAT, imp = self, "starting with {settings:?}");
        *self.state.lock().unwrap() = Some(State::new());
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(state) = self.state.lock().unwrap().take() {
            gst::info!(CAT, imp = self, "stopped after {} frames", state.frames);
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        // The tracks, their Kalman state and the id counter start over.
        crate::reset_on_flush_stop(&event, &self.state, |state| {
            gst::debug!(
                CAT,
                imp = self,
                "flushed: tracks forgotten, ids start at 1 again"
            );
            state.forget_tracks();
        });
        self.parent_sink_event(event)
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let rate = incaps
            .structure(0)
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map(|f| f.numer() as f64 / f.denom() as f64);
        gst::debug!(CAT, imp = self, "frame rate from the caps: {rate:?}");
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.caps_frame_rate = rate;
        }
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.lock().unwrap().clone();
        let mut guard = self.state.lock().unwrap();
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        state.frames += 1;
        let tracker = state.tracker.get_or_insert_with(|| {
            let config = settings.config(state.caps_frame_rate);
            gst::info!(
                CAT,
                imp = self,
                "tracking at {} fps, {} frames lost-track buffer",
                config.frame_rate,
                config.max_time_lost()
            );
            ByteTracker::new(config)
        });

        let detections = buf
            .meta::<PoseMeta>()
            .filter(|m| m.frame_flags().contains(PoseMetaFlags::INFERRED))
            .map(|m| m.persons().to_vec());
        let inferred = detections.is_some();
        let persons = match detections {
            Some(persons) => {
                let dets: Vec<Detection> = persons
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Detection::from_f32(p.bbox, p.score, i))
                    .collect();
                let outputs = tracker.update(&dets);
                for started in outputs.iter().filter(|t| t.age == 0) {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "track {} started at {:?}",
                        started.id,
                        started.tlbr
                    );
                }
                let mut tracked: Vec<Option<&TrackOutput>> = vec![None; persons.len()];
                for out in &outputs {
                    if let Some(i) = out.det_index {
                        tracked[i] = Some(out);
                    }
                }
                let mut result = Vec::with_capacity(persons.len());
                for (person, track) in persons.iter().zip(tracked) {
                    let mut person = *person;
                    match track {
                        Some(t) if area(&t.tlbr) > settings.min_box_area => {
                            person.set_track(Some(to_track(t)));
                            state.last_pose.insert(
                                t.id,
                                LastPose {
                                    bbox: person.bbox,
                                    keypoints: person.keypoints,
                                },
                            );
                            result.push(person);
                        }
                        _ if settings.keep_untracked => {
                            person.set_track(None);
                            result.push(person);
                        }
                        _ => {}
                    }
                }
                result
            }
            None => {
                // The pose model skipped this frame: report every live track where the Kalman
                // filter expects it, with its last keypoints moved along with the box.
                // Before the first detections there is nothing to predict, and a prediction
                // would use up the tracker's first frame, on which it confirms new tracks at once.
                let outputs = if tracker.frame_id() == 0 {
                    Vec::new()
                } else {
                    tracker.predict_only()
                };
                outputs
                    .iter()
                    .filter(|t| area(&t.tlbr) > settings.min_box_area)
                    .filter_map(|t| {
                        let last = state.last_pose.get(&t.id)?;
                        Some(predicted_person(t, last))
                    })
                    .collect()
            }
        };
        // Forget the poses of tracks the tracker no longer holds.
        if state.last_pose.len() > tracker.num_tracks() {
            let live: std::collections::HashSet<u64> = tracker
                .tracked_tracks()
                .iter()
                .chain(tracker.lost_tracks().iter())
                .map(|t| t.id)
                .collect();
            state.last_pose.retain(|id, _| {
                let keep = live.contains(id);
                if !keep {
                    gst::debug!(CAT, imp = self, "track {id} removed");
                }
                keep
            });
        }
        let frame = state.frames;
        drop(guard);
        gst::trace!(
            CAT,
            imp = self,
            "frame {frame}: {} persons ({})",
            persons.len(),
            if inferred { "tracked" } else { "predicted" }
        );
        let flags = buf
            .meta::<PoseMeta>()
            .map(|m| m.frame_flags())
            .unwrap_or_default();
        PoseMeta::add_or_replace(buf, &persons, flags);
        Ok(gst::FlowSuccess::Ok)
    }
}

fn area(tlbr: &[f64; 4]) -> f64 {
    (tlbr[2] - tlbr[0]) * (tlbr[3] - tlbr[1])
}

fn to_track(t: &TrackOutput) -> Track {
    let state = match t.state {
        _ if t.age == 0 => TrackState::New,
        bytetrack::TrackState::Lost | bytetrack::TrackState::Removed => TrackState::Lost,
        _ => TrackState::Tracked,
    };
    Track {
        id: t.id,
        state,
        age: t.age.min(u32::MAX as u64) as u32,
    }
}

/// A person at the track's predicted box, its last keypoints moved and scaled with the box.
fn predicted_person(t: &TrackOutput, last: &LastPose) -> Person {
    let bbox = [
        t.tlbr[0] as f32,
        t.tlbr[1] as f32,
        t.tlbr[2] as f32,
        t.tlbr[3] as f32,
    ];
    let (ow, oh) = (
        (last.bbox[2] - last.bbox[0]).max(1e-3),
        (last.bbox[3] - last.bbox[1]).max(1e-3),
    );
    let (sx, sy) = ((bbox[2] - bbox[0]) / ow, (bbox[3] - bbox[1]) / oh);
    let mut keypoints = last.keypoints;
    for k in &mut keypoints {
        k.x = bbox[0] + (k.x - last.bbox[0]) * sx;
        k.y = bbox[1] + (k.y - last.bbox[1]) * sy;
    }
    let mut person = Person::new(bbox, t.score as f32, keypoints);
    person.flags.insert(PersonFlags::PREDICTED);
    person.set_track(Some(to_track(t)));
    person
}
