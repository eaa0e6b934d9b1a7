//! ByteTrack multi-object tracker (Zhang et al., "ByteTrack: Multi-Object Tracking by
//! Associating Every Detection Box", ECCV 2022), faithful to the official implementation
//! (`yolox/tracker/byte_tracker.py`, `kalman_filter.py`, `matching.py`, `basetrack.py`).
//!
//! Written from the paper and the official algorithm; checked against the Python reference in
//! `tools/bytetrack_reference/` by `core/tests/bytetrack_reference.rs` (same ids, boxes within
//! 1e-3 px, on the fixtures in `tests/fixtures/bytetrack/`).
//!
//! # Algorithm (one [`ByteTracker::update`])
//! 1. Split the detections: high `score > track_thresh` (0.5), low
//!    `0.1 < score < track_thresh`.
//! 2. Predict (Kalman, [`kalman`]) the pool = activated tracked tracks + lost tracks, and match it
//!    to the high detections with cost `1 - IoU * score` (`fuse_score`; plain `1 - IoU` in MOT20
//!    mode) and cost limit `match_thresh` (0.8). Matched tracked tracks are updated, matched lost
//!    tracks re-activated.
//! 3. Match the pool's unmatched tracks that are *tracked* to the low detections, cost `1 - IoU`,
//!    limit 0.5. Tracked tracks still unmatched become lost.
//! 4. Match unconfirmed tracks (started on the previous frame) to the remaining high detections
//!    (fused cost, limit 0.7); unmatched unconfirmed tracks are removed.
//! 5. Start a track from each remaining high detection with `score >= track_thresh + 0.1`. It is
//!    confirmed (`is_activated`) at once on frame 1 only, otherwise when matched on the next frame.
//! 6. Remove lost tracks not updated for more than `int(frame_rate / 30 * track_buffer)` frames.
//! 7. Drop duplicates: a tracked and a lost track with IoU distance < 0.15; the younger one
//!    (`last update frame - start frame`) goes.
//! 8. Output the activated tracked tracks.
//!
//! Assignments are optimal with `lap.lapjv`'s cost-limit padding ([`assignment`]). IoU uses the
//! "+1" pixel convention of `cython_bbox`. List orders (which decide id order and the
//! assignment's rows) follow the official `joint_stracks` / `sub_stracks`.
//!
//! # Official quirks kept on purpose
//! - A lost track that expires is marked removed but stays in the lost list (and so in the
//!   next frame's matching pool) for one more frame, because the official code filters the lost
//!   list against `removed_stracks` before appending that frame's removals. If it is found again
//!   there, it lives on, but the next time it is lost it disappears at once (it is in
//!   `removed_stracks`). [`ByteTracker::lost_tracks`] reports it with state
//!   [`TrackState::Removed`] during that frame.
//! - Duplicate removal may drop the *tracked* track when the lost one lived longer.
//!
//! # Deliberate differences from the official code
//! - Track ids count from 1 per [`ByteTracker`] instance (the official counter is global to the
//!   process); the reference resets its counter per sequence so ids compare equal.
//! - Detections with non-finite values or a box without positive width and height are skipped
//!   (the official code divides by the height).
//! - [`ByteTracker::predict_only`] (frames where the detector did not run) does not exist in the
//!   official code; the reference implements the same step (see its docs).
//! - Each output reports which input detection updated it ([`TrackOutput::det_index`]).

pub mod assignment;
pub mod kalman;
mod tracker;

pub use tracker::{ByteTrackConfig, ByteTracker, Detection, TrackOutput, TrackState};
