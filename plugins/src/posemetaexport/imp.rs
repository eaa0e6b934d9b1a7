use std::sync::LazyLock;

use gst::{glib, subclass::prelude::*};
use gst_base::subclass::prelude::*;
use recognizer_meta::STRUCTURE_META_NAME;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "posemetaexport",
        gst::DebugColorFlags::empty(),
        Some("Pose metadata as a GstStructure"),
    )
});

#[derive(Default)]
pub struct PoseMetaExport;

#[glib::object_subclass]
impl ObjectSubclass for PoseMetaExport {
    const NAME: &'static str = "GstPoseMetaExport";
    type Type = super::PoseMetaExport;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for PoseMetaExport {}
impl GstObjectImpl for PoseMetaExport {}

impl ElementImpl for PoseMetaExport {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pose metadata export",
                "Filter/Video",
                "Adds a GstStructure view (custom meta RecognizerPoseStructure) of the pose metadata for C and Python applications",
                "Recognizer developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| crate::video::filter_pad_templates(&crate::video::any_raw_video()));
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for PoseMetaExport {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    // A meta is added to every buffer, so it must be writable even with equal caps.
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        gst::info!(
            CAT,
            imp = self,
            "exporting the pose metadata as {STRUCTURE_META_NAME}"
        );
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        gst::info!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        match recognizer_meta::export_structure(buf) {
            Some(n) => gst::trace!(CAT, imp = self, "exported {n} persons"),
            None => gst::trace!(CAT, imp = self, "no pose metadata to export"),
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
