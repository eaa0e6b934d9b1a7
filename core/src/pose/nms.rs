//! Greedy non-maximum suppression over axis-aligned boxes.

use super::PoseDetection;

/// Intersection over union of two `[x1, y1, x2, y2]` boxes; 0 when both are empty.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area_a = (a[2] - a[0]).max(0.0) * (a[3] - a[1]).max(0.0);
    let area_b = (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0);
    let union = area_a + area_b - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Keeps the highest-scoring detections, dropping any whose IoU with an already kept one is
/// above `iou_threshold`, and stops after `max_keep`. The result is sorted by score, descending.
/// Ties keep the input order (stable sort), as numpy's `argsort(kind="stable")` would.
pub fn nms(
    mut dets: Vec<PoseDetection>,
    iou_threshold: f32,
    max_keep: usize,
) -> Vec<PoseDetection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<PoseDetection> = Vec::with_capacity(max_keep.min(dets.len()));
    for det in dets {
        if kept.len() >= max_keep {
            break;
        }
        if kept
            .iter()
            .all(|k| iou(&k.bbox, &det.bbox) <= iou_threshold)
        {
            kept.push(det);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4], score: f32) -> PoseDetection {
        PoseDetection {
            bbox,
            score,
            keypoints: [[0.0; 3]; 17],
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[20.0, 20.0, 30.0, 30.0]), 0.0);
        // 5x10 overlap of two 10x10 boxes: 50 / 150.
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn suppresses_overlaps_and_keeps_order() {
        let dets = vec![
            det([0.0, 0.0, 10.0, 10.0], 0.5),
            det([1.0, 0.0, 11.0, 10.0], 0.9), // overlaps the first at IoU 0.82
            det([50.0, 50.0, 60.0, 60.0], 0.7),
        ];
        let kept = nms(dets, 0.65, 10);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.7]);
        // A looser threshold keeps the overlapping pair.
        let kept = nms(
            kept.into_iter()
                .chain([det([0.0, 0.0, 10.0, 10.0], 0.5)])
                .collect(),
            0.9,
            10,
        );
        assert_eq!(kept.len(), 3);
    }

    #[test]
    fn caps_the_number_kept() {
        let dets = (0..10)
            .map(|i| {
                det(
                    [i as f32 * 20.0, 0.0, i as f32 * 20.0 + 10.0, 10.0],
                    0.1 * i as f32,
                )
            })
            .collect();
        let kept = nms(dets, 0.5, 3);
        assert_eq!(kept.len(), 3);
        assert!((kept[0].score - 0.9).abs() < 1e-6);
    }
}
