//! `stgcnclassify`: skeleton-based action recognition per tracked person.
//!
//! Keeps, for every track of the pose metadata (from `rtmopose ! bytetrack`), a sliding window of
//! its last T skeletons, and every `stride` frames classifies the windows that are due with an
//! ST-GCN-family ONNX model (`[N, M, T, 17, 3] -> [N, K]`), all due windows of a frame in one
//! batched call. The action (label, class id, score, window length, timestamp of the window's last
//! frame) is written into the person's metadata and carried forward on the frames between.
//!
//! ```text
//! ... ! rtmopose model-file=pose.onnx ! bytetrack ! stgcnclassify model=fall.onnx ! eventsink ...
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct StgcnClassify(ObjectSubclass<imp::StgcnClassify>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "stgcnclassify",
        gst::Rank::NONE,
        StgcnClassify::static_type(),
    )
}
