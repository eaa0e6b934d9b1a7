//! Synthetic frames for eventsink: persons with tracks and actions, the frame format.

use recognizer_meta::{Action, Keypoint, NUM_KEYPOINTS, Person, Track, TrackState};

/// Frames are 40 ms apart (25 fps).
pub const FRAME_NS: u64 = 40_000_000;
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;

/// A tracked person with an action.
pub fn person(track: u64, label: &str, score: f32, bbox: [f32; 4]) -> Person {
    let kps = [Keypoint {
        x: (bbox[0] + bbox[2]) / 2.0,
        y: (bbox[1] + bbox[3]) / 2.0,
        score: 0.9,
    }; NUM_KEYPOINTS];
    let mut p = Person::new(bbox, 0.9, kps);
    p.set_track(Some(Track {
        id: track,
        state: TrackState::Tracked,
        age: 1,
    }));
    let class_id = if label == "falling" { 42 } else { 7 };
    p.set_action(Some(&Action {
        class_id,
        label: label.into(),
        score,
        window: 48,
        window_end_pts: None,
    }));
    p
}

/// A person standing in the middle of the frame.
pub fn falling(track: u64) -> Person {
    person(track, "falling", 0.9, [200.0, 100.0, 300.0, 400.0])
}
