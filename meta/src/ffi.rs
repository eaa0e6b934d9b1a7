//! The C layout of the meta, for C applications that read it without linking Rust.
//!
//! ```c
//! typedef struct { float x, y, score; } RecognizerKeypoint;
//! typedef struct {
//!   float bbox[4]; float score; RecognizerKeypoint keypoints[17]; guint32 flags;
//!   guint64 track_id;            /* 0: no track */
//!   guint32 track_state;         /* 0 none, 1 new, 2 tracked, 3 lost */
//!   guint32 track_age;
//!   GQuark  action_label;        /* 0: no action */
//!   guint32 action_class_id; float action_score; guint32 action_window;
//!   guint64 action_window_end_pts; /* GST_CLOCK_TIME_NONE when unknown */
//! } RecognizerPerson;
//! typedef struct {
//!   GstMeta meta; guint32 flags; guint32 n_persons; RecognizerPerson *persons;
//! } RecognizerPoseMeta;
//!
//! GType api = g_type_from_name ("RecognizerPoseMetaAPI");
//! RecognizerPoseMeta *m = (RecognizerPoseMeta *) gst_buffer_get_meta (buffer, api);
//! ```
//! (`RecognizerPerson` has natural C alignment: 4 bytes of padding after `flags`.)

use crate::Person;

/// The GstMeta struct. `persons` is allocated with `g_malloc` so that whichever copy of this
/// crate registered the meta can free it.
#[repr(C)]
pub struct RecognizerPoseMeta {
    pub parent: gst::ffi::GstMeta,
    pub flags: u32,
    pub n_persons: u32,
    pub persons: *mut Person,
}

/// GType name of the meta API.
pub const API_NAME: &str = "RecognizerPoseMetaAPI";
/// Name of the meta implementation.
pub const IMPL_NAME: &str = "RecognizerPoseMeta";
