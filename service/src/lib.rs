//! `recognizer-serve`: Recognizer's elements as a service. One pipeline per camera, each under
//! its own supervisor (restart with backoff, watchdog), Prometheus metrics and health endpoints
//! over HTTP, graceful shutdown and reload, cameras sharded over replicas.
//!
//! The plugin is linked in statically (`init`), so the one binary runs the elements.

pub mod backoff;
pub mod camera;
pub mod check;
pub mod config;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod props;
pub mod service;
pub mod shard;

/// Initialises GStreamer and registers the Recognizer elements in this process.
pub fn init() -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    gstrecognizer::plugin_register_static()
        .map_err(|e| format!("registering the Recognizer elements: {e}"))
}
