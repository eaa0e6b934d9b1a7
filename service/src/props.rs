//! Every element property name the service sets or reads, in one place (a path the element
//! reads ends in `-file`, units in the name). The elements are linked into the binary, so the
//! names are checked against them by a test; read-only counters are still looked up by name and
//! skipped when absent (`read_u64`), so a metric is missing rather than the camera failing.

/// `rtmopose`.
pub mod pose {
    pub const MODEL_FILE: &str = "model-file";
    pub const MODEL_FORMAT: &str = "model-format";
    pub const DEVICE: &str = "device";
    pub const FALLBACK_TO_CPU: &str = "fallback-to-cpu";
    pub const THREADS: &str = "threads";
    pub const SCORE_THRESHOLD: &str = "score-threshold";
    pub const NMS_THRESHOLD: &str = "nms-threshold";
    pub const MAX_PERSONS: &str = "max-persons";
    pub const INTERVAL: &str = "interval";
    pub const ADAPTIVE_INTERVAL: &str = "adaptive-interval";
    pub const SESSION_GROUP: &str = "session-group";
    pub const MAX_BATCH: &str = "max-batch";
    pub const BATCH_TIMEOUT_US: &str = "batch-timeout-us";
    // Read-only.
    pub const EXECUTION_PROVIDER: &str = "execution-provider";
    pub const INFERENCES: &str = "inferences";
    pub const FRAME_ERRORS: &str = "frame-errors";
    pub const CURRENT_INTERVAL: &str = "current-interval";
    pub const FRAMES_SKIPPED: &str = "frames-skipped";
}

/// `bytetrack`.
pub mod tracker {
    pub const TRACK_THRESH: &str = "track-thresh";
    pub const LOW_THRESH: &str = "low-thresh";
    pub const MATCH_THRESH: &str = "match-thresh";
    pub const TRACK_BUFFER: &str = "track-buffer";
    pub const MIN_BOX_AREA: &str = "min-box-area";
    // Read-only.
    pub const ACTIVE_TRACKS: &str = "active-tracks";
}

/// `stgcnclassify`.
pub mod action {
    pub const MODEL_FILE: &str = "model-file";
    pub const LABELS_FILE: &str = "labels-file";
    pub const WINDOW: &str = "window";
    pub const STRIDE: &str = "stride";
    pub const MIN_FRAMES: &str = "min-frames";
    pub const SCORE_THRESHOLD: &str = "score-threshold";
    pub const DEVICE: &str = "device";
    pub const FALLBACK_TO_CPU: &str = "fallback-to-cpu";
    pub const THREADS: &str = "threads";
    // Read-only.
    pub const EXECUTION_PROVIDER: &str = "execution-provider";
    pub const BATCHES: &str = "batches";
    pub const FRAME_ERRORS: &str = "frame-errors";
}

/// `eventsink`.
pub mod events {
    pub const STREAM: &str = "stream";
    pub const POST_MESSAGES: &str = "post-messages";
    pub const RULES_FILE: &str = "rules-file";
    pub const LABELS_FILE: &str = "labels-file";
    pub const LOCATION: &str = "location";
    pub const MAX_SIZE_BYTES: &str = "max-size-bytes";
    pub const MAX_FILES: &str = "max-files";
    pub const FRAMES_LOCATION: &str = "frames-location";
    pub const WEBHOOK_URL: &str = "webhook-url";
    pub const WEBHOOK_AUTH_HEADER_NAME: &str = "webhook-auth-header-name";
    pub const WEBHOOK_AUTH_HEADER_ENV: &str = "webhook-auth-header-env";
    pub const WEBHOOK_AUTH_HEADER_FILE: &str = "webhook-auth-header-file";
    pub const MQTT_URL: &str = "mqtt-url";
    pub const MQTT_TOPIC: &str = "mqtt-topic";
    pub const MQTT_CLIENT_ID: &str = "mqtt-client-id";
    pub const MQTT_USERNAME: &str = "mqtt-username";
    pub const MQTT_PASSWORD_ENV: &str = "mqtt-password-env";
    pub const MQTT_PASSWORD_FILE: &str = "mqtt-password-file";
    pub const MQTT_KEEP_ALIVE_S: &str = "mqtt-keep-alive-s";
    pub const TLS_CA_FILE: &str = "tls-ca-file";
    pub const TLS_VERIFY: &str = "tls-verify";
    pub const SPOOL_DIR: &str = "spool-dir";
    pub const TIMEOUT_MS: &str = "timeout-ms";
    pub const RETRY_INITIAL_MS: &str = "retry-initial-ms";
    pub const RETRY_MAX_MS: &str = "retry-max-ms";
    pub const FLUSH_TIMEOUT_MS: &str = "flush-timeout-ms";
    // Read-only.
    pub const EVENTS: &str = "events";
    pub const DELIVERED: &str = "delivered";
    pub const SPOOLED: &str = "spooled";
    /// The network sinks whose per-sink read-only counters (`<sink>-<result>`, e.g.
    /// `webhook-delivered`) are exported when the element has them.
    pub const NETWORK_SINKS: [&str; 2] = ["webhook", "mqtt"];
}

/// Structure name of `eventsink`'s bus message per event, and its field names.
pub mod event_message {
    pub const NAME: &str = "recognizer-event";
    pub const TYPE: &str = "type";
    pub const EVENT_ID: &str = "event-id";
}

use gst::prelude::*;

/// A read-only counter of `element`, or `None` when the element has no such property (an older
/// or newer plugin) or it is not an unsigned integer.
pub fn read_u64(element: &gst::Element, name: &str) -> Option<u64> {
    let pspec = element.find_property(name)?;
    let value = element.property_value(name);
    match pspec.value_type() {
        t if t == u64::static_type() => value.get::<u64>().ok(),
        t if t == u32::static_type() => value.get::<u32>().ok().map(u64::from),
        _ => None,
    }
}

/// A string property of `element`, `None` when absent or unset.
pub fn read_string(element: &gst::Element, name: &str) -> Option<String> {
    element.find_property(name)?;
    element
        .property_value(name)
        .get::<Option<String>>()
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name above is a property of its element (a renamed property fails here, not at a
    /// camera's start).
    #[test]
    fn every_name_is_a_property_of_its_element() {
        crate::init().unwrap();
        let names: [(&str, &[&str]); 4] = [
            (
                "rtmopose",
                &[
                    pose::MODEL_FILE,
                    pose::MODEL_FORMAT,
                    pose::DEVICE,
                    pose::FALLBACK_TO_CPU,
                    pose::THREADS,
                    pose::SCORE_THRESHOLD,
                    pose::NMS_THRESHOLD,
                    pose::MAX_PERSONS,
                    pose::INTERVAL,
                    pose::ADAPTIVE_INTERVAL,
                    pose::SESSION_GROUP,
                    pose::MAX_BATCH,
                    pose::BATCH_TIMEOUT_US,
                    pose::EXECUTION_PROVIDER,
                    pose::INFERENCES,
                    pose::FRAME_ERRORS,
                    pose::CURRENT_INTERVAL,
                    pose::FRAMES_SKIPPED,
                ],
            ),
            (
                "bytetrack",
                &[
                    tracker::TRACK_THRESH,
                    tracker::LOW_THRESH,
                    tracker::MATCH_THRESH,
                    tracker::TRACK_BUFFER,
                    tracker::MIN_BOX_AREA,
                    tracker::ACTIVE_TRACKS,
                ],
            ),
            (
                "stgcnclassify",
                &[
                    action::MODEL_FILE,
                    action::LABELS_FILE,
                    action::WINDOW,
                    action::STRIDE,
                    action::MIN_FRAMES,
                    action::SCORE_THRESHOLD,
                    action::DEVICE,
                    action::FALLBACK_TO_CPU,
                    action::THREADS,
                    action::EXECUTION_PROVIDER,
                    action::BATCHES,
                    action::FRAME_ERRORS,
                ],
            ),
            (
                "eventsink",
                &[
                    events::STREAM,
                    events::POST_MESSAGES,
                    events::RULES_FILE,
                    events::LABELS_FILE,
                    events::LOCATION,
                    events::MAX_SIZE_BYTES,
                    events::MAX_FILES,
                    events::FRAMES_LOCATION,
                    events::WEBHOOK_URL,
                    events::WEBHOOK_AUTH_HEADER_NAME,
                    events::WEBHOOK_AUTH_HEADER_ENV,
                    events::WEBHOOK_AUTH_HEADER_FILE,
                    events::MQTT_URL,
                    events::MQTT_TOPIC,
                    events::MQTT_CLIENT_ID,
                    events::MQTT_USERNAME,
                    events::MQTT_PASSWORD_ENV,
                    events::MQTT_PASSWORD_FILE,
                    events::MQTT_KEEP_ALIVE_S,
                    events::TLS_CA_FILE,
                    events::TLS_VERIFY,
                    events::SPOOL_DIR,
                    events::TIMEOUT_MS,
                    events::RETRY_INITIAL_MS,
                    events::RETRY_MAX_MS,
                    events::FLUSH_TIMEOUT_MS,
                    events::EVENTS,
                    events::DELIVERED,
                    events::SPOOLED,
                ],
            ),
        ];
        for (factory, names) in names {
            let element = gst::ElementFactory::make(factory).build().unwrap();
            for name in names {
                assert!(
                    element.find_property(name).is_some(),
                    "{factory} has no property {name}"
                );
            }
        }
    }
}
