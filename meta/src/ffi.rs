//! The C layout of the meta, for C applications that read it without linking Rust.
//!
//! The public header `meta/include/recognizer/pose-meta.h` (installed as
//! `recognizer/pose-meta.h`) declares the same structs, version macros, accessors and
//! `recognizer_pose_meta_api_get_type()`, which finds or registers the meta API type by name
//! without loading the plugin. The crate's test `c_header` compiles a C file of `static_assert`s
//! on every size and offset listed by [`c_layout`] against the header, and reads a meta written
//! here through the header's accessors.
//!
//! Compatibility rule: [`VERSION`] changes whenever the layout changes; fields are only appended
//! to `RecognizerPerson`, and `person_size` is the stride of the `persons` array, so a reader
//! built against version N reads any meta with `version >= N` and
//! `person_size >= sizeof (RecognizerPerson)`.

use crate::Person;

/// Layout version written into every meta (`RECOGNIZER_POSE_META_VERSION` in C).
/// 1: the first layout (no version field). 2: `version`, `person_size`, and the class scores.
pub const VERSION: u32 = 2;

/// The GstMeta struct. `persons` is allocated with `g_malloc` so that whichever copy of this
/// crate registered the meta can free it.
#[repr(C)]
pub struct RecognizerPoseMeta {
    pub parent: gst::ffi::GstMeta,
    /// [`VERSION`] of the writer.
    pub version: u32,
    /// `size_of::<Person>()` of the writer: the stride of `persons`.
    pub person_size: u32,
    /// [`crate::PoseMetaFlags`].
    pub flags: u32,
    pub n_persons: u32,
    pub persons: *mut Person,
}

/// GType name of the meta API.
pub const API_NAME: &str = "RecognizerPoseMetaAPI";
/// Name of the meta implementation.
pub const IMPL_NAME: &str = "RecognizerPoseMeta";
/// Tags of the meta API, in registration order (C: the same in `recognizer_pose_meta_api_get_type`).
pub const API_TAGS: [&str; 2] = ["video", "size"];

/// One entry of the C layout: `(C type, field, offset)`, or `(C type, "sizeof", size)`.
pub type LayoutEntry = (&'static str, &'static str, usize);

macro_rules! layout {
    ($($cty:literal : $ty:ty { $($field:ident),* $(,)? }),* $(,)?) => {
        vec![$(
            ($cty, "sizeof", std::mem::size_of::<$ty>()),
            $(($cty, stringify!($field), std::mem::offset_of!($ty, $field)),)*
        )*]
    };
}

/// Sizes and offsets of the C structs as Rust lays them out, for the header's layout test and
/// for bindings in other languages.
pub fn c_layout() -> Vec<LayoutEntry> {
    use crate::{ClassScore, Keypoint};
    layout! {
        "RecognizerKeypoint": Keypoint { x, y, score },
        "RecognizerClassScore": ClassScore { label, class_id, score },
        "RecognizerPerson": Person {
            bbox, score, keypoints, flags, track_id, track_state, track_age, action_label,
            action_class_id, action_score, action_window, action_window_end_pts, n_scores,
            reserved, scores,
        },
        "RecognizerPoseMeta": RecognizerPoseMeta { parent, version, person_size, flags, n_persons, persons },
    }
}
