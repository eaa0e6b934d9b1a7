//! `stgcnclassify`: skeleton-based action recognition per tracked person.
//!
//! Keeps, for every track of the pose metadata (from `rtmopose ! bytetrack`), a sliding window of
//! its last T skeletons, and every `stride` frames classifies the windows that are due with an
//! ST-GCN-family ONNX model (`[N, M, T, 17, 3] -> [N, K]`), all due windows of a frame in one
//! batched call. The action (label, class id, score, window length, timestamp of the window's last
//! frame) is written into the person's metadata and carried forward on the frames between.
//!
//! ```text
//! ... ! rtmopose model-file=pose.onnx ! bytetrack ! stgcnclassify model-file=fall.onnx ! eventsink ...
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

/// How keypoints are normalised before they enter the model (the `normalization` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstStgcnClassifyNormalization")]
pub enum NormalizationChoice {
    /// The model's `recognizer.normalization` metadata, else `frame`.
    #[default]
    #[enum_value(
        name = "The model's recognizer.normalization metadata, else frame",
        nick = "auto"
    )]
    Auto,
    /// pyskl `PreNormalize2D`: relative to the frame centre and half-size (pyskl and mmaction2
    /// exports).
    #[enum_value(
        name = "Relative to the frame centre and half-size (pyskl PreNormalize2D)",
        nick = "frame"
    )]
    Frame,
    /// Relative to the bounding box of the window's joints (the project's models).
    #[enum_value(
        name = "Relative to the bounding box of the window's joints",
        nick = "window"
    )]
    Window,
}

glib::wrapper! {
    pub struct StgcnClassify(ObjectSubclass<imp::StgcnClassify>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    NormalizationChoice::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "stgcnclassify",
        gst::Rank::NONE,
        StgcnClassify::static_type(),
    )
}
