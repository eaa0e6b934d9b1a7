//! `BYTETracker.update` of the official ByteTrack (`yolox/tracker/byte_tracker.py`), step by
//! step, with per-instance track ids and a `predict_only` step for frames without detections.

use super::assignment::{fuse_score, iou_distance, linear_assignment};
use super::kalman::{
    Covariance, KalmanFilter, Mean, mean_to_tlbr, tlbr_to_tlwh, tlwh_to_tlbr, tlwh_to_xyah,
};

/// Tracker parameters. The defaults are the official demo's (`track_thresh` 0.5,
/// `track_buffer` 30, `match_thresh` 0.8, `mot20` false, 30 fps) and the constants hard-coded in
/// the official `update` (0.1, 0.5, 0.7, +0.1, 0.15).
#[derive(Debug, Clone, PartialEq)]
pub struct ByteTrackConfig {
    /// High/low split: detections with `score > track_thresh` are "high" (first association),
    /// those with `low_thresh < score < track_thresh` are "low" (second association). A score
    /// exactly equal to `track_thresh` is in neither (as in the official code).
    pub track_thresh: f64,
    /// Lower bound of the low-score band (official: 0.1, hard-coded).
    pub low_thresh: f64,
    /// Cost limit of the first association (tracked + lost tracks vs high detections).
    pub match_thresh: f64,
    /// Cost limit of the second association (remaining tracked tracks vs low detections;
    /// official: 0.5).
    pub second_match_thresh: f64,
    /// Cost limit for unconfirmed tracks vs the remaining high detections (official: 0.7).
    pub unconfirmed_match_thresh: f64,
    /// Minimum score of an unmatched high detection to start a track; `None` means
    /// `track_thresh + 0.1` (official `det_thresh`).
    pub new_track_thresh: Option<f64>,
    /// Frames a lost track is kept, at 30 fps; scaled: `max_time_lost =
    /// int(frame_rate / 30 * track_buffer)`.
    pub track_buffer: u32,
    /// Frame rate of the sequence (frames per second of the calls to `update`/`predict_only`).
    pub frame_rate: f64,
    /// MOT20 mode: no score fusion of the IoU costs (official `args.mot20`).
    pub mot20: bool,
    /// Tracked/lost pairs closer than this IoU distance are duplicates (official: 0.15).
    pub duplicate_iou_distance: f64,
}

impl Default for ByteTrackConfig {
    fn default() -> Self {
        ByteTrackConfig {
            track_thresh: 0.5,
            low_thresh: 0.1,
            match_thresh: 0.8,
            second_match_thresh: 0.5,
            unconfirmed_match_thresh: 0.7,
            new_track_thresh: None,
            track_buffer: 30,
            frame_rate: 30.0,
            mot20: false,
            duplicate_iou_distance: 0.15,
        }
    }
}

impl ByteTrackConfig {
    /// Score an unmatched high detection needs to start a track (`det_thresh`).
    pub fn det_thresh(&self) -> f64 {
        self.new_track_thresh.unwrap_or(self.track_thresh + 0.1)
    }

    /// `int(frame_rate / 30.0 * track_buffer)`.
    pub fn max_time_lost(&self) -> u64 {
        let v = self.frame_rate / 30.0 * self.track_buffer as f64;
        if v.is_finite() && v > 0.0 {
            v as u64
        } else {
            0
        }
    }

    /// Checks the values; the message names the offending parameter.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be within [0, 1], got {v}"))
            }
        };
        unit("track_thresh", self.track_thresh)?;
        unit("low_thresh", self.low_thresh)?;
        if self.low_thresh > self.track_thresh {
            return Err(format!(
                "low_thresh ({}) must not exceed track_thresh ({})",
                self.low_thresh, self.track_thresh
            ));
        }
        for (name, v) in [
            ("match_thresh", self.match_thresh),
            ("second_match_thresh", self.second_match_thresh),
            ("unconfirmed_match_thresh", self.unconfirmed_match_thresh),
            ("duplicate_iou_distance", self.duplicate_iou_distance),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if let Some(t) = self.new_track_thresh
            && !t.is_finite()
        {
            return Err(format!("new_track_thresh must be finite, got {t}"));
        }
        if !(self.frame_rate.is_finite() && self.frame_rate > 0.0) {
            return Err(format!("frame_rate must be > 0, got {}", self.frame_rate));
        }
        Ok(())
    }
}

/// One detection given to [`ByteTracker::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `(x1, y1, x2, y2)` in image pixels.
    pub tlbr: [f64; 4],
    pub score: f64,
    /// Opaque caller value (e.g. the person's index in the frame's metadata), reported back in
    /// [`TrackOutput::det_index`] for the track this detection updated or started.
    pub index: usize,
}

impl Detection {
    pub fn new(tlbr: [f64; 4], score: f64, index: usize) -> Self {
        Detection { tlbr, score, index }
    }

    /// From `f32` values (converted exactly to `f64`).
    pub fn from_f32(tlbr: [f32; 4], score: f32, index: usize) -> Self {
        Detection {
            tlbr: tlbr.map(f64::from),
            score: f64::from(score),
            index,
        }
    }

    /// Finite values and a box with positive width and height (the official code divides by the
    /// height; such detections are skipped, see [`ByteTracker::update`]).
    pub fn is_valid(&self) -> bool {
        self.tlbr.iter().all(|v| v.is_finite())
            && self.score.is_finite()
            && self.tlbr[2] > self.tlbr[0]
            && self.tlbr[3] > self.tlbr[1]
    }
}

/// Track state (`basetrack.TrackState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackState {
    /// Not used for live tracks (the official code starts tracks directly as `Tracked`; a
    /// not yet confirmed track is `Tracked` with `is_activated == false`).
    New,
    Tracked,
    Lost,
    /// Removed: reported only for a track the official code keeps in its lost list for one more
    /// frame after marking it removed (see the module docs of [`super`]).
    Removed,
}

/// A track as reported by the tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackOutput {
    /// Track id, starting at 1 for each tracker instance.
    pub id: u64,
    /// `(x1, y1, x2, y2)` from the Kalman mean: after the update on frames where the track was
    /// matched, the prediction otherwise (lost tracks, `predict_only` frames).
    pub tlbr: [f64; 4],
    /// Score of the detection the track was last updated with.
    pub score: f64,
    pub state: TrackState,
    /// Frames since the track started: `frame_id - start_frame` (tracker frame counter).
    pub age: u64,
    /// Frames since the track was last matched to a detection (0: updated on this frame).
    pub frames_since_update: u64,
    pub is_activated: bool,
    /// [`Detection::index`] of the detection that updated or started this track on this frame;
    /// `None` when it was not updated on this frame.
    pub det_index: Option<usize>,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    mean: Mean,
    cov: Covariance,
    score: f64,
    state: TrackState,
    is_activated: bool,
    /// Last frame on which the track was updated (`STrack.frame_id`, `end_frame`).
    frame_id: u64,
    start_frame: u64,
    tracklet_len: u64,
    det_index: usize,
    /// The track was appended to the official `removed_stracks` at some point: from the next
    /// frame on, `sub_stracks(lost, removed_stracks)` drops it from the lost list.
    in_removed_list: bool,
}

impl Track {
    fn tlbr(&self) -> [f64; 4] {
        mean_to_tlbr(&self.mean)
    }
}

/// A detection inside `update` (an un-activated `STrack`).
#[derive(Debug, Clone, Copy)]
struct Det {
    tlwh: [f64; 4],
    /// `STrack.tlbr` of a detection: `tlwh` turned back into corners (`x2 = w + x1`).
    tlbr: [f64; 4],
    score: f64,
    index: usize,
}

/// ByteTrack multi-object tracker (one per stream).
///
/// See the [module documentation](super) for the algorithm and its faithfulness to the
/// official code.
#[derive(Debug, Clone)]
pub struct ByteTracker {
    config: ByteTrackConfig,
    kf: KalmanFilter,
    frame_id: u64,
    next_id: u64,
    det_thresh: f64,
    max_time_lost: u64,
    /// `self.tracked_stracks` (activated and unconfirmed), in the official order.
    tracked: Vec<Track>,
    /// `self.lost_stracks`, in the official order.
    lost: Vec<Track>,
}

impl ByteTracker {
    pub fn new(config: ByteTrackConfig) -> Self {
        let det_thresh = config.det_thresh();
        let max_time_lost = config.max_time_lost();
        ByteTracker {
            config,
            kf: KalmanFilter::new(),
            frame_id: 0,
            next_id: 0,
            det_thresh,
            max_time_lost,
            tracked: Vec::new(),
            lost: Vec::new(),
        }
    }

    pub fn config(&self) -> &ByteTrackConfig {
        &self.config
    }

    /// Frames seen so far (`update` and `predict_only` calls).
    pub fn frame_id(&self) -> u64 {
        self.frame_id
    }

    /// `int(frame_rate / 30 * track_buffer)`.
    pub fn max_time_lost(&self) -> u64 {
        self.max_time_lost
    }

    /// Forgets all tracks; ids start again at 1.
    pub fn reset(&mut self) {
        *self = ByteTracker::new(self.config.clone());
    }

    /// Number of tracks held (tracked, unconfirmed and lost).
    pub fn num_tracks(&self) -> usize {
        self.tracked.len() + self.lost.len()
    }

    fn output(&self, t: &Track) -> TrackOutput {
        TrackOutput {
            id: t.id,
            tlbr: t.tlbr(),
            score: t.score,
            state: t.state,
            age: self.frame_id.saturating_sub(t.start_frame),
            frames_since_update: self.frame_id.saturating_sub(t.frame_id),
            is_activated: t.is_activated,
            det_index: if t.frame_id == self.frame_id {
                Some(t.det_index)
            } else {
                None
            },
        }
    }

    /// The activated tracked tracks (what `update` returned), with their current boxes.
    pub fn tracked_tracks(&self) -> Vec<TrackOutput> {
        self.tracked
            .iter()
            .filter(|t| t.is_activated)
            .map(|t| self.output(t))
            .collect()
    }

    /// Tracks not yet confirmed (started on the last frame, not in the output).
    pub fn unconfirmed_tracks(&self) -> Vec<TrackOutput> {
        self.tracked
            .iter()
            .filter(|t| !t.is_activated)
            .map(|t| self.output(t))
            .collect()
    }

    /// The lost tracks, in the tracker's order, with their Kalman-predicted boxes (as of the last
    /// `update`/`predict_only`). Their state is `Lost` (or `Removed` for a track in its last
    /// frame in the list).
    pub fn lost_tracks(&self) -> Vec<TrackOutput> {
        self.lost.iter().map(|t| self.output(t)).collect()
    }

    fn multi_predict(kf: &KalmanFilter, t: &mut Track) {
        let mut mean = t.mean;
        if t.state != TrackState::Tracked {
            mean[7] = 0.0;
        }
        let (m, c) = kf.predict(&mean, &t.cov);
        t.mean = m;
        t.cov = c;
    }

    /// A frame on which no detector ran: advances the frame counter and the Kalman filters by
    /// one step, and returns the activated tracked tracks with their predicted boxes.
    ///
    /// Exactly what is predicted is the pool the next `update` would predict: activated tracked
    /// tracks and lost tracks (with `vh` zeroed for non-tracked ones, as `multi_predict` does).
    /// Unconfirmed tracks are not predicted (the official `update` never predicts them either).
    /// Nothing else changes: no matching, no track is started, lost or removed, states, scores,
    /// `is_activated` and the lists stay as they are. The advanced counter counts toward
    /// `max_time_lost` (checked at the next `update`) and toward the tracks' ages, so
    /// `track_buffer`/`frame_rate` stay in video frames when the detector runs on every n-th frame.
    /// The next `update` predicts once more, so every frame gets exactly one prediction step.
    /// The returned tracks have `det_index == None` and `frames_since_update >= 1`. Lost tracks'
    /// predicted boxes are available from [`Self::lost_tracks`]. Note that a `predict_only` before
    /// the first `update` uses up frame 1, so the first detections then start unconfirmed tracks
    /// (the official code confirms new tracks at once only on frame 1).
    pub fn predict_only(&mut self) -> Vec<TrackOutput> {
        self.frame_id += 1;
        let kf = self.kf;
        for t in self.tracked.iter_mut().filter(|t| t.is_activated) {
            Self::multi_predict(&kf, t);
        }
        for t in self.lost.iter_mut() {
            Self::multi_predict(&kf, t);
        }
        self.tracked_tracks()
    }

    /// One frame of detections (any order). Returns the activated tracked tracks in the
    /// tracker's order (official `output_stracks`), with `det_index` set to the
    /// [`Detection::index`] each was updated with on this frame.
    ///
    /// Detections with non-finite values or an empty box are skipped (the official code would
    /// divide by a zero height); all others are used exactly as given.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<TrackOutput> {
        self.frame_id += 1;
        let frame_id = self.frame_id;
        let cfg = &self.config;
        let kf = self.kf;

        // --- Split detections (scores > track_thresh; low_thresh < score < track_thresh) ---
        let mut high: Vec<Det> = Vec::new();
        let mut low: Vec<Det> = Vec::new();
        for d in detections.iter().filter(|d| d.is_valid()) {
            let tlwh = tlbr_to_tlwh(&d.tlbr);
            let det = Det {
                tlwh,
                tlbr: tlwh_to_tlbr(&tlwh),
                score: d.score,
                index: d.index,
            };
            if d.score > cfg.track_thresh {
                high.push(det);
            } else if d.score > cfg.low_thresh && d.score < cfg.track_thresh {
                low.push(det);
            }
        }

        // Arena: old tracked list, then old lost list, then tracks started on this frame.
        let n_tracked = self.tracked.len();
        let n_lost = self.lost.len();
        let mut arena: Vec<Track> = Vec::with_capacity(n_tracked + n_lost + high.len());
        arena.append(&mut self.tracked);
        arena.append(&mut self.lost);

        let mut activated: Vec<usize> = Vec::new();
        let mut refind: Vec<usize> = Vec::new();
        let mut lost_new: Vec<usize> = Vec::new();
        let mut removed_new: Vec<usize> = Vec::new();

        let update_track = |t: &mut Track, d: &Det| {
            t.frame_id = frame_id;
            t.tracklet_len += 1;
            let (m, c) = kf.update(&t.mean, &t.cov, &tlwh_to_xyah(&d.tlwh));
            t.mean = m;
            t.cov = c;
            t.state = TrackState::Tracked;
            t.is_activated = true;
            t.score = d.score;
            t.det_index = d.index;
        };
        let re_activate = |t: &mut Track, d: &Det| {
            let (m, c) = kf.update(&t.mean, &t.cov, &tlwh_to_xyah(&d.tlwh));
            t.mean = m;
            t.cov = c;
            t.tracklet_len = 0;
            t.state = TrackState::Tracked;
            t.is_activated = true;
            t.frame_id = frame_id;
            t.score = d.score;
            t.det_index = d.index;
        };

        // --- Unconfirmed vs tracked ---
        let unconfirmed: Vec<usize> = (0..n_tracked).filter(|&i| !arena[i].is_activated).collect();
        let tracked_act: Vec<usize> = (0..n_tracked).filter(|&i| arena[i].is_activated).collect();

        // --- Step 2: first association, high detections vs tracked + lost ---
        let pool = joint(
            &arena,
            &tracked_act,
            &(n_tracked..n_tracked + n_lost).collect::<Vec<_>>(),
        );
        for &i in &pool {
            Self::multi_predict(&kf, &mut arena[i]);
        }
        let pool_boxes: Vec<[f64; 4]> = pool.iter().map(|&i| arena[i].tlbr()).collect();
        let high_boxes: Vec<[f64; 4]> = high.iter().map(|d| d.tlbr).collect();
        let mut dists = iou_distance(&pool_boxes, &high_boxes);
        if !cfg.mot20 {
            let scores: Vec<f64> = high.iter().map(|d| d.score).collect();
            fuse_score(&mut dists, high.len(), &scores);
        }
        let first = linear_assignment(pool.len(), high.len(), &dists, cfg.match_thresh);
        for &(it, id) in &first.matches {
            let ti = pool[it];
            let t = &mut arena[ti];
            if t.state == TrackState::Tracked {
                update_track(t, &high[id]);
                activated.push(ti);
            } else {
                re_activate(t, &high[id]);
                refind.push(ti);
            }
        }

        // --- Step 3: second association, low detections vs remaining tracked ---
        let r_tracked: Vec<usize> = first
            .unmatched_rows
            .iter()
            .map(|&i| pool[i])
            .filter(|&ti| arena[ti].state == TrackState::Tracked)
            .collect();
        let r_boxes: Vec<[f64; 4]> = r_tracked.iter().map(|&i| arena[i].tlbr()).collect();
        let low_boxes: Vec<[f64; 4]> = low.iter().map(|d| d.tlbr).collect();
        let dists = iou_distance(&r_boxes, &low_boxes);
        let second = linear_assignment(r_tracked.len(), low.len(), &dists, cfg.second_match_thresh);
        for &(it, id) in &second.matches {
            let ti = r_tracked[it];
            let t = &mut arena[ti];
            if t.state == TrackState::Tracked {
                update_track(t, &low[id]);
                activated.push(ti);
            } else {
                re_activate(t, &low[id]);
                refind.push(ti);
            }
        }
        for &it in &second.unmatched_rows {
            let ti = r_tracked[it];
            if arena[ti].state != TrackState::Lost {
                arena[ti].state = TrackState::Lost;
                lost_new.push(ti);
            }
        }

        // --- Unconfirmed tracks vs the remaining high detections ---
        let rest: Vec<Det> = first.unmatched_cols.iter().map(|&i| high[i]).collect();
        let u_boxes: Vec<[f64; 4]> = unconfirmed.iter().map(|&i| arena[i].tlbr()).collect();
        let rest_boxes: Vec<[f64; 4]> = rest.iter().map(|d| d.tlbr).collect();
        let mut dists = iou_distance(&u_boxes, &rest_boxes);
        if !cfg.mot20 {
            let scores: Vec<f64> = rest.iter().map(|d| d.score).collect();
            fuse_score(&mut dists, rest.len(), &scores);
        }
        let third = linear_assignment(
            unconfirmed.len(),
            rest.len(),
            &dists,
            cfg.unconfirmed_match_thresh,
        );
        for &(it, id) in &third.matches {
            let ti = unconfirmed[it];
            update_track(&mut arena[ti], &rest[id]);
            activated.push(ti);
        }
        for &it in &third.unmatched_rows {
            let ti = unconfirmed[it];
            arena[ti].state = TrackState::Removed;
            removed_new.push(ti);
        }

        // --- Step 4: start new tracks ---
        for &inew in &third.unmatched_cols {
            let d = &rest[inew];
            if d.score < self.det_thresh {
                continue;
            }
            self.next_id += 1;
            let (mean, cov) = kf.initiate(&tlwh_to_xyah(&d.tlwh));
            arena.push(Track {
                id: self.next_id,
                mean,
                cov,
                score: d.score,
                state: TrackState::Tracked,
                is_activated: frame_id == 1,
                frame_id,
                start_frame: frame_id,
                tracklet_len: 0,
                det_index: d.index,
                in_removed_list: false,
            });
            activated.push(arena.len() - 1);
        }

        // --- Step 5: expire lost tracks (the old lost list, as the official loop) ---
        for (ti, t) in arena.iter_mut().enumerate().skip(n_tracked).take(n_lost) {
            if frame_id - t.frame_id > self.max_time_lost {
                t.state = TrackState::Removed;
                removed_new.push(ti);
            }
        }

        // --- List bookkeeping, in the official order ---
        let old_tracked: Vec<usize> = (0..n_tracked)
            .filter(|&i| arena[i].state == TrackState::Tracked)
            .collect();
        let tracked_list = joint(&arena, &old_tracked, &activated);
        let tracked_list = joint(&arena, &tracked_list, &refind);
        let mut in_tracked = vec![false; arena.len()];
        for &i in &tracked_list {
            in_tracked[i] = true;
        }
        // sub_stracks(lost, tracked) -> extend(lost_new) -> sub_stracks(lost, removed_stracks),
        // where removed_stracks does not yet contain this frame's removals.
        let lost_list: Vec<usize> = (n_tracked..n_tracked + n_lost)
            .filter(|&i| !in_tracked[i])
            .chain(lost_new.iter().copied())
            .filter(|&i| !arena[i].in_removed_list)
            .collect();
        for &i in &removed_new {
            arena[i].in_removed_list = true;
        }
        let (tracked_list, lost_list) = self.remove_duplicates(&arena, tracked_list, lost_list);

        // Rebuild the lists; everything else (removed, unconfirmed dropped) is freed here.
        let mut slots: Vec<Option<Track>> = arena.into_iter().map(Some).collect();
        self.tracked = tracked_list
            .iter()
            .map(|&i| slots[i].take().expect("track listed twice"))
            .collect();
        self.lost = lost_list
            .iter()
            .map(|&i| slots[i].take().expect("track listed twice"))
            .collect();

        self.tracked_tracks()
    }

    /// `remove_duplicate_stracks`: tracked/lost pairs with IoU distance below the limit; the
    /// younger of each pair (`frame_id - start_frame`) is dropped from its list.
    fn remove_duplicates(
        &self,
        arena: &[Track],
        tracked: Vec<usize>,
        lost: Vec<usize>,
    ) -> (Vec<usize>, Vec<usize>) {
        if tracked.is_empty() || lost.is_empty() {
            return (tracked, lost);
        }
        let a_boxes: Vec<[f64; 4]> = tracked.iter().map(|&i| arena[i].tlbr()).collect();
        let b_boxes: Vec<[f64; 4]> = lost.iter().map(|&i| arena[i].tlbr()).collect();
        let pdist = iou_distance(&a_boxes, &b_boxes);
        let mut drop_a = vec![false; tracked.len()];
        let mut drop_b = vec![false; lost.len()];
        let nb = lost.len();
        for p in 0..tracked.len() {
            for q in 0..nb {
                if pdist[p * nb + q] < self.config.duplicate_iou_distance {
                    let tp = &arena[tracked[p]];
                    let tq = &arena[lost[q]];
                    let timep = tp.frame_id as i64 - tp.start_frame as i64;
                    let timeq = tq.frame_id as i64 - tq.start_frame as i64;
                    if timep > timeq {
                        drop_b[q] = true;
                    } else {
                        drop_a[p] = true;
                    }
                }
            }
        }
        let tracked = tracked
            .into_iter()
            .enumerate()
            .filter(|(k, _)| !drop_a[*k])
            .map(|(_, i)| i)
            .collect();
        let lost = lost
            .into_iter()
            .enumerate()
            .filter(|(k, _)| !drop_b[*k])
            .map(|(_, i)| i)
            .collect();
        (tracked, lost)
    }
}

/// `joint_stracks`: `a`, then the tracks of `b` whose id is not yet in the result. Track ids
/// and arena slots correspond one to one, so the id check is done on slots.
fn joint(arena: &[Track], a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut seen = vec![false; arena.len()];
    let mut out = Vec::with_capacity(a.len() + b.len());
    for &i in a {
        seen[i] = true;
        out.push(i);
    }
    for &i in b {
        if !seen[i] {
            seen[i] = true;
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f64, y: f64, score: f64, index: usize) -> Detection {
        Detection::new([x, y, x + 50.0, y + 120.0], score, index)
    }

    fn ids(out: &[TrackOutput]) -> Vec<u64> {
        out.iter().map(|t| t.id).collect()
    }

    #[test]
    fn ids_start_at_one_per_instance() {
        let mut a = ByteTracker::new(ByteTrackConfig::default());
        let mut b = ByteTracker::new(ByteTrackConfig::default());
        assert_eq!(
            ids(&a.update(&[det(0.0, 0.0, 0.9, 0), det(300.0, 0.0, 0.9, 1)])),
            vec![1, 2]
        );
        assert_eq!(ids(&b.update(&[det(500.0, 0.0, 0.9, 0)])), vec![1]);
        a.reset();
        assert_eq!(ids(&a.update(&[det(0.0, 0.0, 0.9, 0)])), vec![1]);
    }

    #[test]
    fn moving_person_keeps_id_and_reports_detection_index() {
        let mut t = ByteTracker::new(ByteTrackConfig::default());
        for f in 0..20 {
            // a clutter detection first, so the person's index is 1
            let out = t.update(&[
                det(900.0, 500.0, 0.05, 0),
                det(5.0 * f as f64, 10.0, 0.9, 1),
            ]);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].id, 1);
            assert_eq!(out[0].det_index, Some(1));
            assert_eq!(out[0].age, f);
            assert_eq!(out[0].frames_since_update, 0);
            assert!(out[0].is_activated);
            assert_eq!(out[0].state, TrackState::Tracked);
        }
        let out = t.tracked_tracks();
        assert!((out[0].tlbr[0] - 95.0).abs() < 2.0, "{:?}", out[0].tlbr);
    }

    #[test]
    fn new_track_after_frame_one_needs_a_second_frame() {
        let mut t = ByteTracker::new(ByteTrackConfig::default());
        t.update(&[det(0.0, 0.0, 0.9, 0)]);
        let out = t.update(&[det(0.0, 0.0, 0.9, 0), det(400.0, 0.0, 0.9, 1)]);
        assert_eq!(ids(&out), vec![1]);
        assert_eq!(ids(&t.unconfirmed_tracks()), vec![2]);
        let out = t.update(&[det(0.0, 0.0, 0.9, 0), det(401.0, 0.0, 0.9, 1)]);
        assert_eq!(ids(&out), vec![1, 2]);
        // An unconfirmed track that is not matched is removed (its id is not reused).
        t.update(&[
            det(0.0, 0.0, 0.9, 0),
            det(401.0, 0.0, 0.9, 1),
            det(800.0, 0.0, 0.9, 2),
        ]);
        assert_eq!(ids(&t.unconfirmed_tracks()), vec![3]);
        t.update(&[det(0.0, 0.0, 0.9, 0), det(401.0, 0.0, 0.9, 1)]);
        assert!(t.unconfirmed_tracks().is_empty());
        let out = t.update(&[
            det(0.0, 0.0, 0.9, 0),
            det(401.0, 0.0, 0.9, 1),
            det(800.0, 0.0, 0.9, 2),
        ]);
        assert_eq!(ids(&out), vec![1, 2]);
        assert_eq!(ids(&t.unconfirmed_tracks()), vec![4]);
    }

    #[test]
    fn score_bands() {
        let mut t = ByteTracker::new(ByteTrackConfig::default());
        // Exactly track_thresh: neither high nor low. 0.55 < det_thresh 0.6: no new track.
        let out = t.update(&[
            det(0.0, 0.0, 0.5, 0),
            det(200.0, 0.0, 0.55, 1),
            det(400.0, 0.0, 0.6, 2),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].det_index, Some(2));
        // A low-score detection keeps the tracked track (second association, no score fusion).
        let out = t.update(&[det(401.0, 0.0, 0.2, 0)]);
        assert_eq!(ids(&out), vec![1]);
        assert_eq!(out[0].score, 0.2);
        // At or under 0.1 it is ignored: the track is lost.
        let out = t.update(&[det(402.0, 0.0, 0.1, 0)]);
        assert!(out.is_empty());
        assert_eq!(ids(&t.lost_tracks()), vec![1]);
        // Low-score detections do not re-find lost tracks (second stage: tracked only) ...
        let out = t.update(&[det(402.0, 0.0, 0.4, 0)]);
        assert!(out.is_empty());
        // ... high ones do, with the same id.
        let out = t.update(&[det(402.0, 0.0, 0.7, 0)]);
        assert_eq!(ids(&out), vec![1]);
        assert_eq!(out[0].frames_since_update, 0);
    }

    #[test]
    fn lost_tracks_expire_after_buffer() {
        let cfg = ByteTrackConfig {
            track_buffer: 10,
            ..Default::default()
        };
        let mut t = ByteTracker::new(cfg);
        assert_eq!(t.max_time_lost(), 10);
        t.update(&[det(0.0, 0.0, 0.9, 0)]); // frame 1
        // Frames 2..=11: lost, kept.
        for _ in 0..10 {
            assert!(t.update(&[]).is_empty());
            assert_eq!(t.lost_tracks().len(), 1);
            assert_eq!(t.lost_tracks()[0].state, TrackState::Lost);
        }
        // Frame 12: 12 - 1 > 10, marked removed but (official quirk) still listed this frame.
        t.update(&[]);
        let lost = t.lost_tracks();
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].state, TrackState::Removed);
        assert_eq!(lost[0].frames_since_update, 11);
        t.update(&[]);
        assert!(t.lost_tracks().is_empty());
        assert_eq!(t.num_tracks(), 0);
        // The person comes back: new id.
        let out = t.update(&[det(0.0, 0.0, 0.9, 0)]);
        assert!(out.is_empty()); // unconfirmed first
        let out = t.update(&[det(0.0, 0.0, 0.9, 0)]);
        assert_eq!(ids(&out), vec![2]);
    }

    #[test]
    fn frame_rate_scales_the_buffer() {
        let cfg = ByteTrackConfig {
            frame_rate: 59.94,
            track_buffer: 30,
            ..Default::default()
        };
        assert_eq!(ByteTracker::new(cfg).max_time_lost(), 59);
        let cfg = ByteTrackConfig {
            frame_rate: 15.0,
            track_buffer: 30,
            ..Default::default()
        };
        assert_eq!(ByteTracker::new(cfg).max_time_lost(), 15);
    }

    #[test]
    fn predict_only_moves_boxes_and_changes_nothing_else() {
        let mut t = ByteTracker::new(ByteTrackConfig::default());
        for f in 0..15 {
            t.update(&[det(10.0 * f as f64, 0.0, 0.9, 0), det(600.0, 300.0, 0.9, 1)]);
        }
        // Lose the second person.
        t.update(&[det(150.0, 0.0, 0.9, 0)]);
        let before = t.tracked_tracks();
        let lost_before = t.lost_tracks();
        assert_eq!(ids(&lost_before), vec![2]);
        let p1 = t.predict_only();
        assert_eq!(ids(&p1), ids(&before));
        assert_eq!(p1[0].det_index, None);
        assert_eq!(p1[0].frames_since_update, 1);
        assert_eq!(p1[0].score, before[0].score);
        let dx = p1[0].tlbr[0] - before[0].tlbr[0];
        assert!(dx > 5.0 && dx < 15.0, "moved {dx}");
        let p2 = t.predict_only();
        assert!(p2[0].tlbr[0] - p1[0].tlbr[0] > 5.0);
        assert_eq!(ids(&t.lost_tracks()), vec![2]);
        assert_eq!(t.lost_tracks()[0].state, TrackState::Lost);
        assert_eq!(t.frame_id(), 18);
        // The next update matches where the person really is after three frames.
        let out = t.update(&[det(180.0, 0.0, 0.9, 0)]);
        assert_eq!(ids(&out), vec![1]);
        assert_eq!(out[0].det_index, Some(0));
    }

    #[test]
    fn predict_only_before_any_update() {
        let mut t = ByteTracker::new(ByteTrackConfig::default());
        assert!(t.predict_only().is_empty());
        assert_eq!(t.frame_id(), 1);
        // Frame 2: the new track is unconfirmed, confirmed on frame 3.
        assert!(t.update(&[det(0.0, 0.0, 0.9, 0)]).is_empty());
        assert_eq!(ids(&t.update(&[det(1.0, 0.0, 0.9, 0)])), vec![1]);
    }

    #[test]
    fn predict_only_counts_toward_expiry() {
        let cfg = ByteTrackConfig {
            track_buffer: 5,
            ..Default::default()
        };
        let mut t = ByteTracker::new(cfg);
        t.update(&[det(0.0, 0.0, 0.9, 0)]);
        t.update(&[]); // frame 2: lost
        for _ in 0..5 {
            t.predict_only(); // frames 3..=7
        }
        assert_eq!(t.lost_tracks().len(), 1);
        t.update(&[]); // frame 8: 8 - 1 > 5 -> removed (listed one more frame)
        t.update(&[]);
        assert!(t.lost_tracks().is_empty());
    }

    #[test]
    fn invalid_detections_are_skipped() {
        let mut t = ByteTracker::new(ByteTrackConfig::default());
        let out = t.update(&[
            Detection::new([0.0, 0.0, f64::NAN, 10.0], 0.9, 0),
            Detection::new([0.0, 0.0, 10.0, 0.0], 0.9, 1),
            Detection::new([0.0, 0.0, 10.0, 10.0], f64::NAN, 2),
            Detection::from_f32([20.0, 20.0, 60.0, 140.0], 0.9, 3),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].det_index, Some(3));
        assert_eq!(out[0].tlbr, [20.0, 20.0, 60.0, 140.0]);
    }

    #[test]
    fn config_validation() {
        assert!(ByteTrackConfig::default().validate().is_ok());
        let bad = ByteTrackConfig {
            track_thresh: 1.5,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("track_thresh"));
        let bad = ByteTrackConfig {
            low_thresh: 0.6,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("low_thresh"));
        let bad = ByteTrackConfig {
            frame_rate: 0.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("frame_rate"));
        let cfg = ByteTrackConfig::default();
        assert_eq!(cfg.det_thresh(), 0.5 + 0.1);
        assert_eq!(cfg.max_time_lost(), 30);
    }

    #[test]
    fn crossing_people_keep_ids() {
        let mut t = ByteTracker::new(ByteTrackConfig::default());
        let mut last = Vec::new();
        for f in 0..80 {
            let xa = 100.0 + 8.0 * f as f64;
            let xb = 740.0 - 8.0 * f as f64;
            let overlap = (xa - xb).abs() < 50.0;
            // The one behind gets a low score while they overlap.
            let sb = if overlap { 0.3 } else { 0.9 };
            let out = t.update(&[
                Detection::new([xa, 100.0, xa + 50.0, 220.0], 0.9, 0),
                Detection::new([xb, 104.0, xb + 50.0, 224.0], sb, 1),
            ]);
            let mut by_det: Vec<(usize, u64)> =
                out.iter().map(|o| (o.det_index.unwrap(), o.id)).collect();
            by_det.sort();
            last = by_det;
        }
        assert_eq!(last, vec![(0, 1), (1, 2)]);
    }
}
