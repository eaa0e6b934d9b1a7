//! Recognizer: GStreamer elements for real-time, skeleton-based human action recognition.
//!
//! Elements: `rtmopose` (multi-person pose estimation), `bytetrack` (tracking), `stgcnclassify`
//! (action classification), `poseoverlay` (drawing) and `eventsink` (frame log, events). They share
//! the per-frame metadata of the `recognizer-meta` crate.

pub mod action_model;
mod bytetrack;
pub mod errors;
mod eventsink;
pub mod labels;
mod latency;
pub mod onnx;
pub mod pose_engine;
pub mod pose_model;
mod posemetaexport;
mod poseoverlay;
mod rtmopose;
mod stgcnclassify;
pub mod video;

/// For the stateful elements' `sink_event`: applies `reset` to the running state when `event` is
/// a FLUSH_STOP. After a flush (a flushing seek) the frames that follow do not continue the ones
/// before, so what was learnt from those (tracks, windows) must not carry over.
fn reset_on_flush_stop<S>(
    event: &gst::Event,
    state: &std::sync::Mutex<Option<S>>,
    reset: impl FnOnce(&mut S),
) {
    if let gst::EventView::FlushStop(_) = event.view()
        && let Some(state) = state.lock().unwrap().as_mut()
    {
        reset(state);
    }
}

// The metadata and the algorithm cores describe the same COCO-17 skeleton.
const _: () = assert!(recognizer_meta::NUM_KEYPOINTS == recognizer_core::pose::NUM_KEYPOINTS);

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    recognizer_meta::register();
    rtmopose::register(plugin)?;
    bytetrack::register(plugin)?;
    stgcnclassify::register(plugin)?;
    poseoverlay::register(plugin)?;
    posemetaexport::register(plugin)?;
    eventsink::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    recognizer,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // Where the build came from: RECOGNIZER_PACKAGE_ORIGIN at build time (meson option
    // package_origin), else "Unknown package origin" as GStreamer's own builds say (build.rs).
    env!("RECOGNIZER_PACKAGE_ORIGIN"),
    env!("BUILD_REL_DATE")
);
