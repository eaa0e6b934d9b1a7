//! `bytetrack`: ByteTrack multi-object tracking of the people found by `rtmopose`.
//!
//! Reads the persons of each buffer's [`recognizer_meta::PoseMeta`], runs the official ByteTrack
//! association (see `recognizer_core::bytetrack`) and writes each tracked person's track id, state
//! and age back; keypoints stay with their person. On frames where the pose model did not run
//! (`rtmopose interval=N`), it attaches the Kalman-predicted boxes of the live tracks, with the
//! keypoints moved along with their box and the persons flagged as predicted, so that downstream
//! elements see every track on every frame. Track ids start at 1 for each element instance.
//!
//! ```text
//! ... ! rtmopose model-file=pose.onnx score-threshold=0.1 ! bytetrack ! eventsink ...
//! ```
//! (`score-threshold=0.1` lets ByteTrack's second association see low-score detections.)

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct ByteTrack(ObjectSubclass<imp::ByteTrack>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "bytetrack",
        gst::Rank::NONE,
        ByteTrack::static_type(),
    )
}
