//! Every element property name the service sets or reads, in one place: the final names (a
//! path the element reads ends in `-file`, units in the name).
//!
//! The elements are renamed to these names one by one; `OLD_NAMES` lists the earlier name of
//! each renamed property, used only when the linked element does not have the final one yet,
//! so the service runs against either. Once every element has its final names, `OLD_NAMES` can
//! go. Read-only counters that newer elements add are looked up by name and skipped when absent
//! (`read_u64`).

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
    pub const SESSION_GROUP: &str = "session-group";
    pub const MAX_BATCH: &str = "max-batch";
    pub const BATCH_TIMEOUT_US: &str = "batch-timeout-us";
    // Read-only.
    pub const EXECUTION_PROVIDER: &str = "execution-provider";
    pub const INFERENCES: &str = "inferences";
    pub const FRAME_ERRORS: &str = "frame-errors";
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

/// (element factory, final name, earlier name) of the renamed properties.
const OLD_NAMES: [(&str, &str, &str); 8] = [
    ("rtmopose", "model-file", "model"),
    ("rtmopose", "batch-timeout-us", "batch-timeout"),
    ("stgcnclassify", "model-file", "model"),
    ("stgcnclassify", "labels-file", "labels"),
    ("eventsink", "rules-file", "rules-location"),
    ("eventsink", "labels-file", "label-map"),
    ("eventsink", "max-size-bytes", "max-size"),
    ("eventsink", "mqtt-keep-alive-s", "mqtt-keep-alive"),
];

use gst::prelude::*;

/// The name `element` has for the property `name` (a final name): `name` itself, or its earlier
/// name on an element not renamed yet.
pub fn resolve<'a>(element: &gst::Element, name: &'a str) -> &'a str {
    if element.find_property(name).is_some() {
        return name;
    }
    let factory = element.factory().map(|f| f.name().to_string());
    OLD_NAMES
        .iter()
        .find(|(f, new, _)| Some(*f) == factory.as_deref() && *new == name)
        .map_or(name, |(_, _, old)| old)
}

/// A read-only counter of `element`, or `None` when the element has no such property (an older
/// or newer plugin) or it is not an unsigned integer.
pub fn read_u64(element: &gst::Element, name: &str) -> Option<u64> {
    let name = resolve(element, name);
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
    let name = resolve(element, name);
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

    #[test]
    fn every_renamed_property_resolves_to_one_the_element_has() {
        crate::init().unwrap();
        for (factory, new, _) in OLD_NAMES {
            let element = gst::ElementFactory::make(factory).build().unwrap();
            let name = resolve(&element, new);
            assert!(
                element.find_property(name).is_some(),
                "{factory} has neither {new} nor its earlier name"
            );
        }
        let sink = gst::ElementFactory::make("eventsink").build().unwrap();
        assert_eq!(resolve(&sink, events::STREAM), "stream");
    }
}
