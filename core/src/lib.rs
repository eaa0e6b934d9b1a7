//! Algorithm cores of the Recognizer elements.
//!
//! Everything here is plain Rust without GStreamer types, so that it can be unit-tested and
//! benchmarked alone; the elements in `gst-plugin-recognizer` are thin adapters around it.

pub mod action;
pub mod bytetrack;
pub mod draw;
pub mod events;
pub mod pacing;
pub mod pose;
