//! Per-track skeleton windows for ST-GCN-family action classifiers.
//!
//! The classifier contract (pyskl / mmaction2 exports and the project's own models) takes
//! `[N, M, T, V = 17, C = 3]` float32: N samples, M persons per sample, T frames, COCO-17 joints,
//! (x, y, score). This module keeps, for each track, the last T frames of its skeleton (and, for
//! M = 2, of the nearest other person), decides which tracks are due for classification on a
//! frame, and writes a window into the input layout with the model's normalisation.
//!
//! Window semantics (shared with `tools/stgcn/preprocess.py`):
//! - real frames fill `t = 0..L-1` (oldest first), `t = L..T-1` are zeros;
//! - joints with score <= `min_joint_score` (0.01) are invalid and written as (0, 0, 0);
//! - [`Normalization::Frame`] (pyskl `PreNormalize2D`): `x' = (x - w/2) / (w/2)`,
//!   `y' = (y - h/2) / (h/2)` with the frame size;
//! - [`Normalization::Window`]: over all valid joints of the window (all persons, real frames),
//!   centre `c` = middle of their bounding box, scale `s` = half its longer side (1 if < 1e-6),
//!   `x' = (x - cx) / s`, `y' = (y - cy) / s`.

use std::collections::{HashMap, VecDeque};

use crate::pose::NUM_KEYPOINTS;

/// One skeleton: the COCO-17 joints as (x, y, score) in frame pixels.
pub type Pose = [[f32; 3]; NUM_KEYPOINTS];

/// How keypoints are normalised before they enter the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalization {
    /// pyskl `PreNormalize2D`: relative to the frame centre and half-size.
    Frame,
    /// Relative to the bounding box of all valid joints of the window (translation and scale
    /// invariant); the project's own models.
    Window,
}

impl std::str::FromStr for Normalization {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "frame" => Ok(Self::Frame),
            "window" => Ok(Self::Window),
            _ => Err(format!(
                "invalid normalisation '{s}': expected 'frame' or 'window'"
            )),
        }
    }
}

/// What a track contributes on one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackFrame {
    /// The track's own skeleton (person slot 0).
    pub pose: Pose,
    /// The nearest other person on the frame (person slot 1, for M = 2 models).
    pub other: Option<Pose>,
    pub width: f32,
    pub height: f32,
}

/// Window geometry and preprocessing of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowSpec {
    /// Frames per window (T).
    pub frames: usize,
    /// Persons per sample (M): 1 or 2.
    pub persons: usize,
    pub normalization: Normalization,
    pub min_joint_score: f32,
}

impl WindowSpec {
    /// Floats of one sample: M x T x 17 x 3.
    pub fn sample_len(&self) -> usize {
        self.persons * self.frames * NUM_KEYPOINTS * 3
    }

    /// Writes the window made of `frames` (oldest first; the last T are used) into `out`
    /// (`[M, T, V, C]`, `sample_len()` floats).
    pub fn fill_sample<'a>(
        &self,
        frames: impl ExactSizeIterator<Item = &'a TrackFrame> + Clone,
        out: &mut [f32],
    ) {
        assert_eq!(out.len(), self.sample_len());
        out.fill(0.0);
        let skip = frames.len().saturating_sub(self.frames);
        let frames = frames.skip(skip);
        let slot = |f: &'a TrackFrame, m: usize| {
            if m == 0 {
                Some(&f.pose)
            } else {
                f.other.as_ref()
            }
        };
        let valid =
            |j: &[f32; 3]| j[2] > self.min_joint_score && j[0].is_finite() && j[1].is_finite();
        // Window normalisation: bounding box of every valid joint in the window.
        let (mut x0, mut y0, mut x1, mut y1) = (
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        );
        if self.normalization == Normalization::Window {
            for f in frames.clone() {
                for m in 0..self.persons {
                    for j in slot(f, m).into_iter().flatten().filter(|j| valid(j)) {
                        x0 = x0.min(j[0]);
                        x1 = x1.max(j[0]);
                        y0 = y0.min(j[1]);
                        y1 = y1.max(j[1]);
                    }
                }
            }
        }
        let window_scale = {
            let s = (x1 - x0).max(y1 - y0) / 2.0;
            if s.is_finite() && s >= 1e-6 { s } else { 1.0 }
        };
        let (wcx, wcy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        for (t, f) in frames.enumerate() {
            let (cx, cy, sx, sy) = match self.normalization {
                Normalization::Frame => {
                    (f.width / 2.0, f.height / 2.0, f.width / 2.0, f.height / 2.0)
                }
                Normalization::Window => (wcx, wcy, window_scale, window_scale),
            };
            for m in 0..self.persons {
                let Some(pose) = slot(f, m) else { continue };
                for (v, j) in pose.iter().enumerate() {
                    if !valid(j) {
                        continue;
                    }
                    let at = ((m * self.frames + t) * NUM_KEYPOINTS + v) * 3;
                    out[at] = (j[0] - cx) / sx;
                    out[at + 1] = (j[1] - cy) / sy;
                    out[at + 2] = j[2];
                }
            }
        }
    }
}

/// When tracks are classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Frames kept per track (the model's T).
    pub window: usize,
    /// Classify every `stride` frames...
    pub stride: usize,
    /// ...once the track has at least this many frames (<= window; shorter windows are padded).
    pub min_frames: usize,
}

/// The latest classification of a track.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackAction {
    pub class_id: usize,
    pub score: f32,
    /// Frames in the window that was classified.
    pub window: usize,
    /// Caller's timestamp of the window's last frame.
    pub window_end: Option<u64>,
    /// Probability of every class (the classifier's output row), in class order.
    pub scores: Vec<f32>,
}

#[derive(Debug, Default)]
struct TrackWindow {
    frames: VecDeque<TrackFrame>,
    /// Frames added since the last classification; `None` before the first.
    since_classified: Option<usize>,
    action: Option<TrackAction>,
}

/// The windows of all live tracks of one stream.
#[derive(Debug)]
pub struct TrackWindows {
    schedule: Schedule,
    tracks: HashMap<u64, TrackWindow>,
}

impl TrackWindows {
    pub fn new(schedule: Schedule) -> Self {
        assert!(schedule.window > 0 && schedule.stride > 0 && schedule.min_frames > 0);
        assert!(schedule.min_frames <= schedule.window);
        Self {
            schedule,
            tracks: HashMap::new(),
        }
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Adds one frame: `present` holds every track seen on it. Tracks absent from the frame are
    /// dropped with their window and action (a lost track starts over when it comes back).
    /// Returns the ids due for classification on this frame, in the order given.
    pub fn push_frame(&mut self, present: &[(u64, TrackFrame)]) -> Vec<u64> {
        self.tracks
            .retain(|id, _| present.iter().any(|(p, _)| p == id));
        let Schedule {
            window,
            stride,
            min_frames,
        } = self.schedule;
        let mut due = Vec::new();
        for (id, frame) in present {
            let track = self.tracks.entry(*id).or_default();
            if track.frames.len() == window {
                track.frames.pop_front();
            }
            track.frames.push_back(*frame);
            if let Some(n) = track.since_classified.as_mut() {
                *n += 1;
            }
            let ready = track.frames.len() >= min_frames
                && track.since_classified.is_none_or(|n| n >= stride);
            if ready {
                due.push(*id);
            }
        }
        due
    }

    /// The frames of a track's window, oldest first.
    pub fn frames(&self, id: u64) -> Option<&VecDeque<TrackFrame>> {
        self.tracks.get(&id).map(|t| &t.frames)
    }

    /// Records a classification of `id` (resets its stride counter).
    pub fn set_action(&mut self, id: u64, action: TrackAction) {
        if let Some(track) = self.tracks.get_mut(&id) {
            track.since_classified = Some(0);
            track.action = Some(action);
        }
    }

    /// The latest classification of `id`, carried forward between classifications.
    pub fn action(&self, id: u64) -> Option<&TrackAction> {
        self.tracks.get(&id).and_then(|t| t.action.as_ref())
    }

    /// Tracks holding state.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

/// Softmax of one row of logits, in place (numerically stable).
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Index and value of the largest score.
pub fn argmax(row: &[f32]) -> Option<(usize, f32)> {
    row.iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pose(x: f32, y: f32, score: f32) -> Pose {
        let mut p = [[0.0; 3]; NUM_KEYPOINTS];
        for (v, j) in p.iter_mut().enumerate() {
            *j = [x + v as f32, y + 2.0 * v as f32, score];
        }
        p
    }

    fn frame(x: f32) -> TrackFrame {
        TrackFrame {
            pose: pose(x, 100.0, 0.9),
            other: None,
            width: 640.0,
            height: 480.0,
        }
    }

    #[test]
    fn frame_normalisation_is_pyskl() {
        let spec = WindowSpec {
            frames: 4,
            persons: 1,
            normalization: Normalization::Frame,
            min_joint_score: 0.01,
        };
        let mut out = vec![1.0; spec.sample_len()];
        let mut f = frame(320.0);
        f.pose[3][2] = 0.01; // invalid: zeroed
        spec.fill_sample([f, f].iter(), &mut out);
        assert_eq!(&out[0..3], &[0.0, (100.0 - 240.0) / 240.0, 0.9]);
        assert_eq!(&out[9..12], &[0.0, 0.0, 0.0]);
        // Frames 2 and 3 are padding.
        assert!(out[2 * NUM_KEYPOINTS * 3..].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn window_normalisation_uses_the_joint_box_and_keeps_the_last_t_frames() {
        let spec = WindowSpec {
            frames: 2,
            persons: 1,
            normalization: Normalization::Window,
            min_joint_score: 0.01,
        };
        let mut out = vec![0.0; spec.sample_len()];
        // Three frames, only the last two count: x spans 10..36 (26 wide), y spans 100..132.
        let frames = [frame(1000.0), frame(10.0), frame(20.0)];
        spec.fill_sample(frames.iter(), &mut out);
        let (cx, cy, s) = ((10.0 + 36.0) / 2.0, (100.0 + 132.0) / 2.0, 32.0 / 2.0);
        assert_eq!(out[0], (10.0 - cx) / s);
        assert_eq!(out[1], (100.0 - cy) / s);
        let last = NUM_KEYPOINTS * 3 + 16 * 3;
        assert_eq!(out[last], (36.0 - cx) / s);
        // Invariant to translation and uniform scale.
        let moved: Vec<TrackFrame> = frames
            .iter()
            .map(|f| {
                let mut g = *f;
                for j in &mut g.pose {
                    j[0] = j[0] * 3.0 + 50.0;
                    j[1] = j[1] * 3.0 - 7.0;
                }
                g
            })
            .collect();
        let mut out2 = vec![0.0; spec.sample_len()];
        spec.fill_sample(moved.iter(), &mut out2);
        for (a, b) in out.iter().zip(&out2) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn second_person_fills_slot_one() {
        let spec = WindowSpec {
            frames: 2,
            persons: 2,
            normalization: Normalization::Frame,
            min_joint_score: 0.01,
        };
        let mut out = vec![0.0; spec.sample_len()];
        let mut f = frame(0.0);
        f.other = Some(pose(640.0, 480.0, 0.5));
        spec.fill_sample([f].iter(), &mut out);
        let slot1 = 2 * NUM_KEYPOINTS * 3;
        assert_eq!(&out[slot1..slot1 + 3], &[1.0, 1.0, 0.5]);
    }

    #[test]
    fn schedule_stride_min_frames_and_reset() {
        let mut w = TrackWindows::new(Schedule {
            window: 4,
            stride: 2,
            min_frames: 3,
        });
        let due: Vec<Vec<u64>> = (0..7)
            .map(|i| {
                let due = w.push_frame(&[(1, frame(i as f32))]);
                for id in &due {
                    w.set_action(
                        *id,
                        TrackAction {
                            class_id: 0,
                            score: 1.0,
                            window: 0,
                            window_end: None,
                            scores: vec![1.0],
                        },
                    );
                }
                due
            })
            .collect();
        // Due at the 3rd frame (min_frames), then every 2nd frame.
        assert_eq!(
            due,
            vec![vec![], vec![], vec![1], vec![], vec![1], vec![], vec![1]]
        );
        assert_eq!(w.frames(1).unwrap().len(), 4);
        assert!(w.action(1).is_some());
        // Track 1 absent: its state is freed; when it returns it starts over.
        assert!(w.push_frame(&[(2, frame(0.0))]).is_empty());
        assert_eq!(w.len(), 1);
        assert!(w.action(1).is_none());
        w.push_frame(&[(1, frame(0.0)), (2, frame(0.0))]);
        assert_eq!(w.frames(1).unwrap().len(), 1);
    }

    #[test]
    fn softmax_and_argmax() {
        let mut row = [1.0, 2.0, 3.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&row).unwrap().0, 2);
        assert!((row[2] - 0.66524096).abs() < 1e-6);
    }
}
