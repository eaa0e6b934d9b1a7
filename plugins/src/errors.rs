//! What the elements share about errors: the element error for bad settings, and the counter
//! behind the read-only `frame-errors` properties.

use std::sync::atomic::{AtomicU64, Ordering};

use gst::prelude::*;

/// The element error for settings that cannot work (`message` names the property and why), as
/// returned from `start()`.
pub fn settings_error(message: impl AsRef<str>) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{}", message.as_ref()))
}

/// Frames that passed on without the element's result because processing them failed: a
/// streaming thread that stops at every bad frame would end a live stream, so the frame goes
/// on, the failure is counted (read-only `frame-errors`) and logged as a warning.
#[derive(Debug, Default)]
pub struct FrameErrors(AtomicU64);

impl FrameErrors {
    /// The `frame-errors` property of an element that counts with this type.
    pub fn property(blurb: &str) -> glib::ParamSpec {
        glib::ParamSpecUInt64::builder("frame-errors")
            .nick("Frame errors")
            .blurb(blurb)
            .read_only()
            .build()
    }

    /// Counts one failed frame and logs `what` (the frame and what it lacks) with the running
    /// count and the cause.
    pub fn record(
        &self,
        cat: gst::DebugCategory,
        element: &impl IsA<gst::Object>,
        what: &str,
        cause: &str,
    ) {
        let count = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        gst::warning!(cat, obj = element, "{what} ({count} so far): {cause}");
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Back to 0 (at start).
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}
