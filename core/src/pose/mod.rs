//! Pose pre- and post-processing: letterbox into the model's input tensor, decoding of the
//! RTMO and raw YOLO-pose output contracts, score filtering and non-maximum suppression.

pub mod decode;
pub mod letterbox;
pub mod nms;

pub use decode::{DecodeParams, decode_rtmo, decode_yolo_pose};
pub use letterbox::{ChannelOrder, Image, Letterbox, PixelLayout, YuvMatrix, fill_input_tensor};
pub use nms::{iou, nms};

/// Number of COCO-17 keypoints every pose model here predicts.
pub const NUM_KEYPOINTS: usize = 17;

/// One detected person in source-image pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoseDetection {
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    /// COCO-17 keypoints, each `[x, y, score]`.
    pub keypoints: [[f32; 3]; NUM_KEYPOINTS],
}
