//! `rtmopose`: multi-person 2D pose estimation with an ONNX model through ONNX Runtime.
//!
//! The element passes video through unchanged and attaches a [`recognizer_meta::PoseMeta`]
//! with every person found (box, score, COCO-17 keypoints) in the pixel coordinates of the
//! input frame. It runs RTMO exports (mmpose/mmdeploy end-to-end, as used by rtmlib) and raw
//! Ultralytics YOLO-pose exports, telling them apart from the model's outputs.
//!
//! ```text
//! gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! \
//!     rtmopose model-file=rtmo-s.onnx ! fakesink
//! ```
//!
//! Elements of one process that name the same `session-group` share one model session (see
//! `crate::pose_engine`): the model is loaded once, and with a dynamic batch dimension the frames
//! that several streams submit together run in one call (`max-batch`, `batch-timeout`).

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct RtmoPose(ObjectSubclass<imp::RtmoPose>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rtmopose",
        gst::Rank::NONE,
        RtmoPose::static_type(),
    )
}
