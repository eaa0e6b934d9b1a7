//! Recognizer's per-frame metadata: the people in a video frame with their bounding box,
//! COCO-17 keypoints, track and action, attached to each `GstBuffer` as a [`PoseMeta`].
//!
//! Every Recognizer element reads and writes this one model; applications depend on this crate
//! to read it:
//!
//! ```no_run
//! use recognizer_meta::PoseMeta;
//! # fn on_buffer(buffer: &gst::BufferRef) {
//! if let Some(meta) = buffer.meta::<PoseMeta>() {
//!     for person in meta.persons() {
//!         println!("{:?} score {:.2} track {:?}", person.bbox, person.score, person.track());
//!     }
//! }
//! # }
//! ```
//!
//! The meta is a plain C struct (see [`ffi`] and the C header
//! `meta/include/recognizer/pose-meta.h`) registered under the GType name
//! `RecognizerPoseMetaAPI`, so that C code can read it without linking Rust, and several copies of
//! this crate in one process (an application and the plugin) share one registration.

pub mod ffi;
mod frame;
mod meta;
mod person;
mod structure;

pub use frame::{ActionRecord, FrameRecord, PersonRecord, ScoresRecord};
pub use meta::{PoseMeta, PoseMetaFlags, register};
pub use person::{
    Action, ClassScore, KEYPOINT_NAMES, Keypoint, MAX_CLASS_SCORES, NUM_KEYPOINTS, Person,
    PersonFlags, SKELETON_EDGES, Track, TrackState,
};
pub use structure::{STRUCTURE_META_NAME, STRUCTURE_NAME, export_structure};
