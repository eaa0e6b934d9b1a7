//! Decoding pose model outputs into person detections in source-frame pixels.

use super::{Letterbox, NUM_KEYPOINTS, PoseDetection, nms};

/// Post-processing settings shared by the output contracts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeParams {
    /// Detections scoring below this are dropped.
    pub score_threshold: f32,
    /// IoU above which the lower-scoring of two detections is suppressed.
    pub nms_threshold: f32,
    /// At most this many persons are kept, best first.
    pub max_persons: usize,
}

/// Output tensors whose sizes do not fit the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Values per anchor in a raw YOLO-pose output: cx, cy, w, h, score, then 17 x (x, y, conf).
pub const YOLO_POSE_CHANNELS: usize = 5 + 3 * NUM_KEYPOINTS;

/// RTMO contract (mmpose/mmdeploy end-to-end export): `dets [N, 5]` (x1, y1, x2, y2, score) and
/// `keypoints [N, 17, 3]` (x, y, score), in model-input pixels, NMS already applied in the graph.
/// Rows may be padding or low-score, so the score threshold and a final NMS still apply here.
pub fn decode_rtmo(
    dets: &[f32],
    keypoints: &[f32],
    letterbox: &Letterbox,
    params: &DecodeParams,
) -> Result<Vec<PoseDetection>, DecodeError> {
    if !dets.len().is_multiple_of(5) {
        return Err(DecodeError(format!(
            "`dets` holds {} values, not a multiple of 5 (x1, y1, x2, y2, score)",
            dets.len()
        )));
    }
    let n = dets.len() / 5;
    if keypoints.len() != n * NUM_KEYPOINTS * 3 {
        return Err(DecodeError(format!(
            "`keypoints` holds {} values, expected {n} x 17 x 3 for the {n} rows of `dets`",
            keypoints.len()
        )));
    }
    let mut candidates = Vec::new();
    for i in 0..n {
        let row = &dets[i * 5..i * 5 + 5];
        let score = row[4];
        // NaN scores are dropped with the low ones.
        if score.is_nan() || score < params.score_threshold {
            continue;
        }
        let mut kps = [[0.0f32; 3]; NUM_KEYPOINTS];
        let base = i * NUM_KEYPOINTS * 3;
        for (k, kp) in kps.iter_mut().enumerate() {
            let at = base + k * 3;
            let (x, y) = letterbox.to_source(keypoints[at], keypoints[at + 1]);
            *kp = [x, y, keypoints[at + 2]];
        }
        candidates.push(PoseDetection {
            bbox: letterbox.box_to_source([row[0], row[1], row[2], row[3]]),
            score,
            keypoints: kps,
        });
    }
    Ok(nms(candidates, params.nms_threshold, params.max_persons))
}

/// Raw Ultralytics YOLO-pose export (v8/v11): `output0 [56, A]` channel-major, per anchor
/// cx, cy, w, h, score, then 17 x (x, y, conf) in model-input pixels, confidences already
/// sigmoid-activated; no NMS in the graph.
pub fn decode_yolo_pose(
    output: &[f32],
    anchors: usize,
    letterbox: &Letterbox,
    params: &DecodeParams,
) -> Result<Vec<PoseDetection>, DecodeError> {
    if output.len() != YOLO_POSE_CHANNELS * anchors {
        return Err(DecodeError(format!(
            "`output0` holds {} values, expected {YOLO_POSE_CHANNELS} x {anchors} (cx, cy, w, h, score, 17 x (x, y, conf) per anchor)",
            output.len()
        )));
    }
    let at = |channel: usize, anchor: usize| output[channel * anchors + anchor];
    let mut candidates = Vec::new();
    for a in 0..anchors {
        let score = at(4, a);
        if score.is_nan() || score < params.score_threshold {
            continue;
        }
        let (cx, cy, w, h) = (at(0, a), at(1, a), at(2, a), at(3, a));
        let mut kps = [[0.0f32; 3]; NUM_KEYPOINTS];
        for (k, kp) in kps.iter_mut().enumerate() {
            let c = 5 + k * 3;
            let (x, y) = letterbox.to_source(at(c, a), at(c + 1, a));
            *kp = [x, y, at(c + 2, a)];
        }
        candidates.push(PoseDetection {
            bbox: letterbox.box_to_source([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]),
            score,
            keypoints: kps,
        });
    }
    Ok(nms(candidates, params.nms_threshold, params.max_persons))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: DecodeParams = DecodeParams {
        score_threshold: 0.3,
        nms_threshold: 0.65,
        max_persons: 20,
    };

    #[test]
    fn rtmo_rows_are_filtered_suppressed_and_mapped_back() {
        // 1280x720 source: scale 0.5, model pixels double when mapped back.
        let lb = Letterbox::new(1280, 720, 640, 640);
        let dets = [
            10.0, 20.0, 110.0, 220.0, 0.9, // kept
            12.0, 20.0, 112.0, 220.0, 0.8, // duplicate of the first, suppressed
            300.0, 100.0, 400.0, 300.0, 0.2, // below the score threshold
            0.0, 0.0, 0.0, 0.0, 0.0, // padding row
        ];
        let mut kps = vec![0.0f32; 4 * 17 * 3];
        for k in 0..17 {
            kps[k * 3] = 50.0 + k as f32;
            kps[k * 3 + 1] = 60.0;
            kps[k * 3 + 2] = 0.7;
        }
        let out = decode_rtmo(&dets, &kps, &lb, &PARAMS).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, [20.0, 40.0, 220.0, 440.0]);
        assert_eq!(out[0].keypoints[3], [106.0, 120.0, 0.7]);
    }

    #[test]
    fn rtmo_shape_mismatch_is_reported() {
        let lb = Letterbox::new(640, 640, 640, 640);
        let err = decode_rtmo(&[0.0; 10], &[0.0; 51], &lb, &PARAMS).unwrap_err();
        assert!(err.0.contains("expected 2 x 17 x 3"), "{err}");
        assert!(decode_rtmo(&[0.0; 7], &[], &lb, &PARAMS).is_err());
    }

    #[test]
    fn yolo_anchors_are_decoded_from_centre_size() {
        let lb = Letterbox::new(640, 640, 640, 640);
        let anchors = 3;
        let mut out = vec![0.0f32; YOLO_POSE_CHANNELS * anchors];
        let mut set = |c: usize, a: usize, v: f32| out[c * anchors + a] = v;
        // Anchor 1: a person at centre (100, 200), 40x80, score 0.8; anchors 0 and 2 score 0.
        set(0, 1, 100.0);
        set(1, 1, 200.0);
        set(2, 1, 40.0);
        set(3, 1, 80.0);
        set(4, 1, 0.8);
        set(5 + 3 * 16, 1, 90.0);
        set(5 + 3 * 16 + 1, 1, 230.0);
        set(5 + 3 * 16 + 2, 1, 0.95);
        let dets = decode_yolo_pose(&out, anchors, &lb, &PARAMS).unwrap();
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].bbox, [80.0, 160.0, 120.0, 240.0]);
        assert_eq!(dets[0].keypoints[16], [90.0, 230.0, 0.95]);
        assert!(decode_yolo_pose(&out[1..], anchors, &lb, &PARAMS).is_err());
    }
}
