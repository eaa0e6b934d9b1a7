//! `poseoverlay`: draws the pose metadata onto the video, in place: person boxes, COCO skeleton
//! edges, keypoints above a score threshold, track ids (a stable colour per track) and action
//! labels with their scores.
//!
//! ```text
//! ... ! rtmopose ! bytetrack ! stgcnclassify ! poseoverlay ! videoconvert ! x264enc ! mp4mux ! filesink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct PoseOverlay(ObjectSubclass<imp::PoseOverlay>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "poseoverlay",
        gst::Rank::NONE,
        PoseOverlay::static_type(),
    )
}
