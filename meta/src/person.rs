//! The per-person record: box, keypoints, optional track and action.

use glib::translate::{FromGlib, IntoGlib};

/// Number of keypoints of the COCO-17 layout.
pub const NUM_KEYPOINTS: usize = 17;

/// Keypoint names in COCO-17 order.
pub const KEYPOINT_NAMES: [&str; NUM_KEYPOINTS] = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
];

/// COCO skeleton edges between keypoint indices.
pub const SKELETON_EDGES: [(usize, usize); 19] = [
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
];

/// A keypoint in pixels of the buffer the metadata is attached to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    pub score: f32,
}

/// `[x, y, score]`: the layout of the pose models' outputs, the action models' inputs and the
/// JSON form.
impl From<[f32; 3]> for Keypoint {
    fn from([x, y, score]: [f32; 3]) -> Self {
        Self { x, y, score }
    }
}

impl From<Keypoint> for [f32; 3] {
    fn from(k: Keypoint) -> Self {
        [k.x, k.y, k.score]
    }
}

/// Lifecycle state of a track, as ByteTrack defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackState {
    /// First frame of the track.
    New,
    /// Matched to a detection on this frame (or predicted on a frame the detector skipped).
    Tracked,
    /// Not matched recently; kept for re-identification until the track buffer runs out.
    Lost,
}

impl TrackState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Tracked => "tracked",
            Self::Lost => "lost",
        }
    }

    fn to_raw(self) -> u32 {
        match self {
            Self::New => 1,
            Self::Tracked => 2,
            Self::Lost => 3,
        }
    }

    fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::New),
            2 => Some(Self::Tracked),
            3 => Some(Self::Lost),
            _ => None,
        }
    }
}

/// The track a person belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Track {
    /// Unique per stream (per tracker instance), never 0.
    pub id: u64,
    pub state: TrackState,
    /// Frames since the track started.
    pub age: u32,
}

/// The action recognised for a person over a window of frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub class_id: u32,
    pub label: String,
    pub score: f32,
    /// Number of frames in the classified window.
    pub window: u32,
    /// Timestamp of the window's last frame, if known.
    pub window_end_pts: Option<u64>,
}

bitflags_lite! {
    /// Per-person flags.
    PersonFlags {
        /// Box and keypoints were predicted by the tracker (the pose model did not run on this frame).
        PREDICTED = 1,
        /// The classifier has more than [`MAX_CLASS_SCORES`] classes: the scores hold the most
        /// probable ones.
        SCORES_TRUNCATED = 2,
    }
}

/// Most class probabilities a [`Person`] holds (`RECOGNIZER_MAX_CLASS_SCORES` in C).
///
/// The scores live in a fixed array inside the person rather than behind a pointer, so that a
/// person stays a plain value: the meta's copy and scale transforms, C applications and Rust
/// code (`Person` is `Copy`) copy it with its scores by a `memcpy`, and no pointer can dangle or
/// be freed twice. 32 covers the shipped models (2 and 15 classes) at 384 bytes per person; a
/// classifier with more classes keeps its 32 most probable ones and sets
/// [`PersonFlags::SCORES_TRUNCATED`].
pub const MAX_CLASS_SCORES: usize = 32;

/// The probability of one class for a person (`RecognizerClassScore` in C).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClassScore {
    /// The label's GQuark (never 0 in a filled entry).
    pub(crate) label: u32,
    /// Index of the class among the classifier's outputs.
    pub class_id: u32,
    /// Probability, 0 to 1.
    pub score: f32,
}

impl ClassScore {
    pub fn new(class_id: u32, label: &str, score: f32) -> Self {
        Self {
            label: glib::Quark::from_str(label).into_glib(),
            class_id,
            score,
        }
    }

    /// The class label.
    pub fn label(&self) -> &'static str {
        if self.label == 0 {
            return "";
        }
        unsafe { glib::Quark::from_glib(self.label) }
            .as_str()
            .as_str()
    }
}

/// One person in a frame. A plain C struct (`#[repr(C)]`), so that the metadata can be shared
/// across copies of this crate and read from C (`RecognizerPerson` in
/// `meta/include/recognizer/pose-meta.h`); see [`crate::ffi`]. Fields are only ever appended, and
/// the meta's `person_size` tells readers the stride.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Person {
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: [f32; 4],
    /// Detection score.
    pub score: f32,
    /// COCO-17 keypoints.
    pub keypoints: [Keypoint; NUM_KEYPOINTS],
    pub flags: PersonFlags,
    pub(crate) track_id: u64,
    pub(crate) track_state: u32,
    /// Frames since the track started.
    pub(crate) track_age: u32,
    /// 0 when there is no action; otherwise the label's GQuark.
    pub(crate) action_label: u32,
    pub(crate) action_class_id: u32,
    pub(crate) action_score: f32,
    /// Frames in the classified window.
    pub(crate) action_window: u32,
    /// `u64::MAX` (GST_CLOCK_TIME_NONE) when unknown.
    pub(crate) action_window_end_pts: u64,
    /// Valid entries of `scores`: 0 when the person was not classified.
    pub(crate) n_scores: u32,
    /// Keeps `scores` at an 8-byte boundary on every ABI; always 0.
    pub(crate) reserved: u32,
    /// Class probabilities of the latest classification, in class order (by probability when
    /// truncated).
    pub(crate) scores: [ClassScore; MAX_CLASS_SCORES],
}

impl Person {
    pub fn new(bbox: [f32; 4], score: f32, keypoints: [Keypoint; NUM_KEYPOINTS]) -> Self {
        Self {
            bbox,
            score,
            keypoints,
            flags: PersonFlags::empty(),
            track_id: 0,
            track_state: 0,
            track_age: 0,
            action_label: 0,
            action_class_id: 0,
            action_score: 0.0,
            action_window: 0,
            action_window_end_pts: u64::MAX,
            n_scores: 0,
            reserved: 0,
            scores: [ClassScore::default(); MAX_CLASS_SCORES],
        }
    }

    /// A person whose keypoints are given as `[x, y, score]` rows.
    pub fn from_rows(bbox: [f32; 4], score: f32, rows: &[[f32; 3]; NUM_KEYPOINTS]) -> Self {
        Self::new(bbox, score, rows.map(Keypoint::from))
    }

    /// The keypoints as `[x, y, score]` rows.
    pub fn keypoint_rows(&self) -> [[f32; 3]; NUM_KEYPOINTS] {
        self.keypoints.map(<[f32; 3]>::from)
    }

    pub fn track(&self) -> Option<Track> {
        let state = TrackState::from_raw(self.track_state)?;
        (self.track_id != 0).then_some(Track {
            id: self.track_id,
            state,
            age: self.track_age,
        })
    }

    /// Sets or clears the track. A track id of 0 clears it (0 is never a valid id).
    pub fn set_track(&mut self, track: Option<Track>) {
        match track {
            Some(t) if t.id != 0 => {
                self.track_id = t.id;
                self.track_state = t.state.to_raw();
                self.track_age = t.age;
            }
            _ => {
                self.track_id = 0;
                self.track_state = 0;
                self.track_age = 0;
            }
        }
    }

    pub fn action(&self) -> Option<Action> {
        if self.action_label == 0 {
            return None;
        }
        // SAFETY-free: a quark from another process copy is still a valid GQuark in this process.
        let quark = unsafe { glib::Quark::from_glib(self.action_label) };
        Some(Action {
            class_id: self.action_class_id,
            label: quark.as_str().to_string(),
            score: self.action_score,
            window: self.action_window,
            window_end_pts: (self.action_window_end_pts != u64::MAX)
                .then_some(self.action_window_end_pts),
        })
    }

    /// The action's label without allocating, if there is an action.
    pub fn action_label(&self) -> Option<&'static str> {
        (self.action_label != 0).then(|| {
            unsafe { glib::Quark::from_glib(self.action_label) }
                .as_str()
                .as_str()
        })
    }

    pub fn set_action(&mut self, action: Option<&Action>) {
        match action {
            Some(a) => {
                self.action_label = glib::Quark::from_str(&a.label).into_glib();
                self.action_class_id = a.class_id;
                self.action_score = a.score;
                self.action_window = a.window;
                self.action_window_end_pts = a.window_end_pts.unwrap_or(u64::MAX);
            }
            None => {
                self.action_label = 0;
                self.action_class_id = 0;
                self.action_score = 0.0;
                self.action_window = 0;
                self.action_window_end_pts = u64::MAX;
            }
        }
    }

    /// The class probabilities of the latest classification (empty when not classified).
    pub fn class_scores(&self) -> &[ClassScore] {
        &self.scores[..(self.n_scores as usize).min(MAX_CLASS_SCORES)]
    }

    /// The probability of the class `label`, if the person was classified and the class is
    /// among its scores.
    pub fn class_score(&self, label: &str) -> Option<f32> {
        let quark = glib::Quark::try_from_str(label)?.into_glib();
        self.class_scores()
            .iter()
            .find(|s| s.label == quark)
            .map(|s| s.score)
    }

    /// Sets the class probabilities (empty clears them). More than [`MAX_CLASS_SCORES`] keeps the
    /// most probable ones, in that order, and sets [`PersonFlags::SCORES_TRUNCATED`].
    pub fn set_class_scores(&mut self, scores: &[ClassScore]) {
        self.scores = [ClassScore::default(); MAX_CLASS_SCORES];
        self.flags.remove(PersonFlags::SCORES_TRUNCATED);
        if scores.len() <= MAX_CLASS_SCORES {
            self.scores[..scores.len()].copy_from_slice(scores);
            self.n_scores = scores.len() as u32;
        } else {
            let mut sorted = scores.to_vec();
            sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
            self.scores.copy_from_slice(&sorted[..MAX_CLASS_SCORES]);
            self.n_scores = MAX_CLASS_SCORES as u32;
            self.flags.insert(PersonFlags::SCORES_TRUNCATED);
        }
    }

    /// Scales all coordinates, e.g. when the frame is resized.
    pub fn scale(&mut self, sx: f32, sy: f32) {
        self.bbox[0] *= sx;
        self.bbox[1] *= sy;
        self.bbox[2] *= sx;
        self.bbox[3] *= sy;
        for kp in &mut self.keypoints {
            kp.x *= sx;
            kp.y *= sy;
        }
    }
}

/// A tiny bitflags type that stays `#[repr(transparent)]` over `u32` for the C layout.
macro_rules! bitflags_lite {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $flag:ident = $value:expr,)* }) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$fdoc])* pub const $flag: Self = Self($value);)*

            pub const fn empty() -> Self {
                Self(0)
            }

            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            pub fn insert(&mut self, other: Self) {
                self.0 |= other.0;
            }

            pub fn remove(&mut self, other: Self) {
                self.0 &= !other.0;
            }
        }
    };
}
pub(crate) use bitflags_lite;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_and_action_round_trip() {
        let mut p = Person::new(
            [1.0, 2.0, 3.0, 4.0],
            0.9,
            [Keypoint::default(); NUM_KEYPOINTS],
        );
        assert_eq!(p.track(), None);
        assert_eq!(p.action(), None);
        p.set_track(Some(Track {
            id: 7,
            state: TrackState::Lost,
            age: 12,
        }));
        assert_eq!(
            p.track(),
            Some(Track {
                id: 7,
                state: TrackState::Lost,
                age: 12
            })
        );
        let action = Action {
            class_id: 2,
            label: "falling".into(),
            score: 0.8,
            window: 48,
            window_end_pts: Some(5),
        };
        p.set_action(Some(&action));
        assert_eq!(p.action(), Some(action));
        assert_eq!(p.action_label(), Some("falling"));
        p.set_track(None);
        p.set_action(None);
        assert_eq!((p.track(), p.action()), (None, None));
    }

    #[test]
    fn class_scores_are_kept_and_truncated_to_the_most_probable() {
        let mut p = Person::new([0.0; 4], 0.9, [Keypoint::default(); NUM_KEYPOINTS]);
        assert!(p.class_scores().is_empty());
        assert_eq!(p.class_score("fall"), None);
        p.set_class_scores(&[
            ClassScore::new(0, "normal", 0.7),
            ClassScore::new(1, "fall", 0.3),
        ]);
        assert_eq!(p.class_score("fall"), Some(0.3));
        assert_eq!(p.class_scores()[0].label(), "normal");
        assert_eq!(p.class_scores()[1].class_id, 1);
        // A copy carries the scores (they live inside the person).
        let copy = p;
        assert_eq!(copy.class_scores(), p.class_scores());
        let many: Vec<ClassScore> = (0..40)
            .map(|k| ClassScore::new(k, &format!("class{k}"), k as f32 / 100.0))
            .collect();
        p.set_class_scores(&many);
        assert_eq!(p.class_scores().len(), MAX_CLASS_SCORES);
        assert!(p.flags.contains(PersonFlags::SCORES_TRUNCATED));
        assert_eq!(p.class_scores()[0].class_id, 39);
        assert_eq!(p.class_score("class8"), Some(0.08));
        assert_eq!(
            p.class_score("class7"),
            None,
            "the least probable are dropped"
        );
        p.set_class_scores(&[]);
        assert!(p.class_scores().is_empty());
        assert!(!p.flags.contains(PersonFlags::SCORES_TRUNCATED));
    }

    #[test]
    fn keypoint_rows_round_trip() {
        let mut rows = [[0.0; 3]; NUM_KEYPOINTS];
        rows[3] = [1.5, 2.5, 0.75];
        let p = Person::from_rows([0.0, 0.0, 4.0, 4.0], 0.5, &rows);
        assert_eq!(
            p.keypoints[3],
            Keypoint {
                x: 1.5,
                y: 2.5,
                score: 0.75
            }
        );
        assert_eq!(p.keypoint_rows(), rows);
    }

    #[test]
    fn scaling_moves_box_and_keypoints() {
        let mut kps = [Keypoint::default(); NUM_KEYPOINTS];
        kps[5] = Keypoint {
            x: 10.0,
            y: 20.0,
            score: 0.5,
        };
        let mut p = Person::new([10.0, 20.0, 30.0, 40.0], 0.9, kps);
        p.scale(0.5, 2.0);
        assert_eq!(p.bbox, [5.0, 40.0, 15.0, 80.0]);
        assert_eq!(
            p.keypoints[5],
            Keypoint {
                x: 5.0,
                y: 40.0,
                score: 0.5
            }
        );
    }
}
