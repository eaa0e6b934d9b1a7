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
    }
}

/// One person in a frame. A plain C struct (`#[repr(C)]`), so that the metadata can be shared
/// across copies of this crate and read from C; see [`crate::ffi`].
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
    track_id: u64,
    track_state: u32,
    track_age: u32,
    /// 0 when there is no action; otherwise the label's GQuark.
    action_label: u32,
    action_class_id: u32,
    action_score: f32,
    action_window: u32,
    /// `u64::MAX` (GST_CLOCK_TIME_NONE) when unknown.
    action_window_end_pts: u64,
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
