//! Measures of the tests and benchmarks: pose accuracy (COCO OKS), identity stability of
//! tracks, and the statistics of benchmark figures (median, resident memory).

use recognizer_meta::{NUM_KEYPOINTS, Person};

/// COCO keypoint sigmas (COCO-17 order), from the COCO evaluation.
const COCO_SIGMAS: [f32; NUM_KEYPOINTS] = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089,
];

/// Object keypoint similarity of a prediction to a ground-truth person as in COCO's
/// `computeOks`: over the labelled ground-truth keypoints (visibility > 0), with the
/// annotation's segment area as scale.
pub fn oks(gt_keypoints: &[f32], gt_area: f32, predicted: &Person) -> f32 {
    let mut sum = 0.0;
    let mut count = 0;
    for (k, sigma) in COCO_SIGMAS.iter().enumerate() {
        let (gx, gy, visible) = (
            gt_keypoints[3 * k],
            gt_keypoints[3 * k + 1],
            gt_keypoints[3 * k + 2],
        );
        if visible <= 0.0 {
            continue;
        }
        let p = predicted.keypoints[k];
        let d2 = (p.x - gx).powi(2) + (p.y - gy).powi(2);
        let var = (2.0 * sigma).powi(2);
        sum += (-d2 / var / (gt_area + f32::EPSILON) / 2.0).exp();
        count += 1;
    }
    if count == 0 { 0.0 } else { sum / count as f32 }
}

/// Identity stability of tracks over a sequence of frames: the share of frame-to-frame
/// transitions in which a person keeps its track id and its box centre moves less than
/// `max_move` pixels. A transition is a tracked person of frame t and the person of frame t+1
/// that overlaps it most (IoU >= 0.3). Also returns the number of distinct track ids.
pub fn id_consistency(frames: &[Vec<Person>], max_move: f32) -> (f64, usize, usize) {
    let centre = |p: &Person| ((p.bbox[0] + p.bbox[2]) / 2.0, (p.bbox[1] + p.bbox[3]) / 2.0);
    let (mut transitions, mut kept) = (0usize, 0usize);
    let mut ids = std::collections::HashSet::new();
    for pair in frames.windows(2) {
        for a in &pair[0] {
            let Some(track) = a.track() else { continue };
            ids.insert(track.id);
            let best = pair[1]
                .iter()
                .map(|b| (recognizer_core::pose::iou(&a.bbox, &b.bbox), b))
                .filter(|(iou, _)| *iou >= 0.3)
                .max_by(|x, y| x.0.total_cmp(&y.0));
            if let Some((_, b)) = best {
                transitions += 1;
                let ((ax, ay), (bx, by)) = (centre(a), centre(b));
                if b.track().map(|t| t.id) == Some(track.id) && (ax - bx).hypot(ay - by) < max_move
                {
                    kept += 1;
                }
            }
        }
    }
    for p in frames.last().into_iter().flatten() {
        if let Some(t) = p.track() {
            ids.insert(t.id);
        }
    }
    let share = if transitions == 0 {
        0.0
    } else {
        kept as f64 / transitions as f64
    };
    (share, ids.len(), transitions)
}

/// The median of benchmark figures (the upper middle one for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// This process's resident memory (`VmRSS`) in KiB, 0 where /proc cannot tell.
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The value of a benchmark's `key=value` command-line argument (`cargo bench --bench NAME --
/// key=value ...`), if given.
pub fn bench_arg(key: &str) -> Option<String> {
    std::env::args().skip(1).find_map(|a| {
        a.strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))
            .map(str::to_string)
    })
}
