//! `posemetaexport`: adds a GstStructure view of the pose metadata to each buffer (a
//! `GstCustomMeta` named `RecognizerPoseStructure`, see `recognizer_meta::export_structure`), so
//! that C and Python (PyGObject) applications read persons, tracks and actions without linking
//! Rust code:
//!
//! ```python
//! meta = buffer.get_custom_meta("RecognizerPoseStructure")
//! persons = json.loads(meta.get_structure().get_string("json"))
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct PoseMetaExport(ObjectSubclass<imp::PoseMetaExport>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "posemetaexport",
        gst::Rank::NONE,
        PoseMetaExport::static_type(),
    )
}
