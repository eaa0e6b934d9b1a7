//! The element's settings: its properties (declared, set and read back here) and the rule they
//! describe.

use std::path::PathBuf;

use gst::{glib, prelude::*};
use recognizer_core::events::{self as core, Rule};

use super::{
    rules::{self, Labels, RuleSpec},
    tls,
};

pub const DEFAULT_STREAM: &str = "cam0";
pub const DEFAULT_MAX_FILES: u32 = 5;
pub const DEFAULT_POST_MESSAGES: bool = true;
pub const DEFAULT_AUTH_HEADER: &str = "Authorization";
pub const DEFAULT_MQTT_TOPIC: &str = "recognizer/{stream}/events";
pub const DEFAULT_MQTT_KEEP_ALIVE_S: u32 = 60;
pub const DEFAULT_TIMEOUT_MS: u32 = 5000;
pub const DEFAULT_RETRY_INITIAL_MS: u32 = 1000;
pub const DEFAULT_RETRY_MAX_MS: u32 = 60_000;
pub const DEFAULT_FLUSH_TIMEOUT_MS: u32 = 5000;

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstEventSinkLabelMatch")]
pub enum LabelMatch {
    #[default]
    #[enum_value(name = "Exact: the whole label (ASCII case ignored)", nick = "exact")]
    Exact = 0,
    #[enum_value(
        name = "Contains: the rule's label as a substring (fall matches falling)",
        nick = "contains"
    )]
    Contains = 1,
}

impl From<LabelMatch> for core::LabelMatch {
    fn from(m: LabelMatch) -> Self {
        match m {
            LabelMatch::Exact => Self::Exact,
            LabelMatch::Contains => Self::Contains,
        }
    }
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstEventSinkZoneAnchor")]
pub enum ZoneAnchor {
    #[default]
    #[enum_value(
        name = "Bottom centre: middle of the box's bottom edge (the feet)",
        nick = "bottom-centre"
    )]
    BottomCentre = 0,
    #[enum_value(name = "Centre of the box", nick = "centre")]
    Centre = 1,
}

impl From<ZoneAnchor> for core::Anchor {
    fn from(a: ZoneAnchor) -> Self {
        match a {
            ZoneAnchor::BottomCentre => Self::BottomCentre,
            ZoneAnchor::Centre => Self::Centre,
        }
    }
}

/// A bad setting: an element error at start that names the problem.
pub fn settings_error(message: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{}", message))
}

fn opt_string(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .unwrap()
        .filter(|s| !s.is_empty())
}

/// The element's properties: the settings, then the read-only counters.
pub fn properties() -> Vec<glib::ParamSpec> {
    let s = |name: &'static str, nick: &'static str, blurb: &'static str| {
        glib::ParamSpecString::builder(name)
            .nick(nick)
            .blurb(blurb)
            .mutable_ready()
            .build()
    };
    let uint =
        |name: &'static str, nick: &'static str, blurb: &'static str, default: u32, min: u32| {
            glib::ParamSpecUInt::builder(name)
                .nick(nick)
                .blurb(blurb)
                .minimum(min)
                .default_value(default)
                .mutable_ready()
                .build()
        };
    let bytes = |name: &'static str, nick: &'static str, blurb: &'static str| {
        glib::ParamSpecUInt64::builder(name)
            .nick(nick)
            .blurb(blurb)
            .default_value(0)
            .mutable_ready()
            .build()
    };
    let boolean = |name: &'static str, nick: &'static str, blurb: &'static str, default: bool| {
        glib::ParamSpecBoolean::builder(name)
            .nick(nick)
            .blurb(blurb)
            .default_value(default)
            .mutable_ready()
            .build()
    };
    let counter = |name: &'static str, nick: &'static str, blurb: &'static str| {
        glib::ParamSpecUInt64::builder(name)
            .nick(nick)
            .blurb(blurb)
            .read_only()
            .build()
    };
    vec![
        glib::ParamSpecString::builder("stream")
            .nick("Stream")
            .blurb("Name of the stream (camera), written into every record")
            .default_value(Some(DEFAULT_STREAM))
            .mutable_ready()
            .build(),
        // Frame log.
        s(
            "frames-location",
            "Frames location",
            "File to write the per-frame metadata to, one JSON object per line (none: no frame log)",
        ),
        boolean(
            "frames-append",
            "Append frames",
            "Append to frames-location instead of truncating it at start",
            false,
        ),
        bytes(
            "frames-max-size-bytes",
            "Frames maximum size",
            "Rotate the frame log before it passes this many bytes (0: never)",
        ),
        uint(
            "frames-max-files",
            "Frames maximum files",
            "Rotated frame logs kept (frames-location.1 newest)",
            DEFAULT_MAX_FILES,
            1,
        ),
        // Rules.
        s(
            "rules-file",
            "Rules file",
            "Rules file (TOML, or JSON when it ends in .json): a list 'rules' of tables with the keys of the rule properties",
        ),
        s(
            "labels",
            "Labels",
            "Comma-separated action labels of the rule given by properties (none: no such rule)",
        ),
        s(
            "class",
            "Class",
            "Comma-separated class labels of the rule given by properties, instead of labels: it fires when such a class's probability reaches min-score, whether or not it is the action",
        ),
        s(
            "event-type",
            "Event type",
            "Type (name) of the events of the property rule (default: its first label)",
        ),
        glib::ParamSpecEnum::builder_with_default("label-match", LabelMatch::Exact)
            .nick("Label match")
            .blurb("How the property rule's labels match action labels")
            .mutable_ready()
            .build(),
        glib::ParamSpecDouble::builder("min-score")
            .nick("Minimum score")
            .blurb("Minimum action score (class probability, with class) of the property rule")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(rules::DEFAULT_MIN_SCORE)
            .mutable_ready()
            .build(),
        uint(
            "min-frames",
            "Minimum frames",
            "Consecutive matching frames a track needs before the property rule fires",
            rules::DEFAULT_MIN_FRAMES,
            1,
        ),
        uint(
            "min-duration-ms",
            "Minimum duration",
            "Time (PTS) from the first to the confirming matching frame before the property rule fires, ms",
            rules::DEFAULT_MIN_DURATION_MS,
            0,
        ),
        uint(
            "cooldown-ms",
            "Cooldown",
            "After an event, the rule fires again for the same track only after this long (PTS, ms) without a matching frame",
            rules::DEFAULT_COOLDOWN_MS,
            0,
        ),
        s(
            "zone",
            "Zone",
            "Polygon of the property rule in normalised coordinates, 'x,y x,y x,y ...' (none: the whole frame)",
        ),
        glib::ParamSpecEnum::builder_with_default("zone-anchor", ZoneAnchor::BottomCentre)
            .nick("Zone anchor")
            .blurb("Point of the person's box that must lie in the zone")
            .mutable_ready()
            .build(),
        s(
            "labels-file",
            "Labels file",
            "The classifier's labels (one a line, as for stgcnclassify); when set, a rule label that matches none of them is an error",
        ),
        // Local sinks.
        s(
            "location",
            "Location",
            "JSON Lines file of the events (appended, fsync after each event; none: no file)",
        ),
        bytes(
            "max-size-bytes",
            "Maximum size",
            "Rotate the events file before it passes this many bytes (0: never)",
        ),
        uint(
            "max-files",
            "Maximum files",
            "Rotated events files kept (location.1 newest)",
            DEFAULT_MAX_FILES,
            1,
        ),
        boolean(
            "stdout",
            "Stdout",
            "Print each event as one JSON line on standard output",
            false,
        ),
        boolean(
            "post-messages",
            "Post messages",
            "Post an element message 'recognizer-event' on the bus for each event",
            DEFAULT_POST_MESSAGES,
        ),
        // Network sinks.
        s(
            "webhook-url",
            "Webhook URL",
            "http:// or https:// URL to POST each event to (JSON body); no user:password@; query values are never shown (read back as ***)",
        ),
        glib::ParamSpecString::builder("webhook-auth-header-name")
            .nick("Webhook auth header name")
            .blurb("Header that carries the secret of webhook-auth-header-env / -file")
            .default_value(Some(DEFAULT_AUTH_HEADER))
            .mutable_ready()
            .build(),
        s(
            "webhook-auth-header-env",
            "Webhook auth header variable",
            "Environment variable holding the auth header's value, e.g. 'Bearer ...' (never logged)",
        ),
        s(
            "webhook-auth-header-file",
            "Webhook auth header file",
            "File whose first line is the auth header's value (never logged)",
        ),
        s(
            "mqtt-url",
            "MQTT URL",
            "mqtt://host[:1883] or mqtts://host[:8883] broker to publish each event to (QoS 1); no user:password@",
        ),
        glib::ParamSpecString::builder("mqtt-topic")
            .nick("MQTT topic")
            .blurb("Topic template; {stream} and {type} are replaced")
            .default_value(Some(DEFAULT_MQTT_TOPIC))
            .mutable_ready()
            .build(),
        s(
            "mqtt-client-id",
            "MQTT client id",
            "Client identifier (default: recognizer-STREAM-RANDOM)",
        ),
        s(
            "mqtt-username",
            "MQTT user name",
            "User name for the broker (optional)",
        ),
        s(
            "mqtt-password-env",
            "MQTT password variable",
            "Environment variable holding the broker password (never logged)",
        ),
        s(
            "mqtt-password-file",
            "MQTT password file",
            "File whose first line is the broker password (never logged)",
        ),
        uint(
            "mqtt-keep-alive-s",
            "MQTT keep-alive",
            "MQTT keep-alive interval, seconds",
            DEFAULT_MQTT_KEEP_ALIVE_S,
            5,
        ),
        s(
            "tls-ca-file",
            "TLS CA file",
            "PEM file of the CA certificates to trust for https:// and mqtts:// (default: the built-in Mozilla roots)",
        ),
        boolean(
            "tls-verify",
            "TLS verify",
            "Verify the server certificate of https:// and mqtts:// (false: for testing only)",
            true,
        ),
        // Delivery.
        s(
            "spool-dir",
            "Spool directory",
            "Directory for events not yet delivered to the webhook or MQTT (required with them; replayed at start)",
        ),
        uint(
            "spool-max-events",
            "Spool maximum events",
            "Events kept waiting per network sink; beyond, the oldest moves to SPOOL-DIR/dead-letter/ (0: no limit)",
            0,
            0,
        ),
        uint(
            "timeout-ms",
            "Timeout",
            "Network timeout of one delivery attempt (connection, request, acknowledgement), ms",
            DEFAULT_TIMEOUT_MS,
            1,
        ),
        uint(
            "retry-initial-ms",
            "Initial retry delay",
            "First delay after a failed delivery, ms (doubles)",
            DEFAULT_RETRY_INITIAL_MS,
            1,
        ),
        uint(
            "retry-max-ms",
            "Maximum retry delay",
            "Upper bound of the retry delay, ms",
            DEFAULT_RETRY_MAX_MS,
            1,
        ),
        uint(
            "flush-timeout-ms",
            "Flush timeout",
            "At EOS and when stopping, wait at most this long for undelivered events; the rest stays in the spool",
            DEFAULT_FLUSH_TIMEOUT_MS,
            0,
        ),
        counter(
            "events",
            "Events",
            "Events generated since the element started",
        ),
        counter(
            "delivered",
            "Delivered",
            "Deliveries acknowledged by the network sinks since the element started (one per event and sink)",
        ),
        counter(
            "spooled",
            "Spooled",
            "Events in the spool waiting for delivery (all network sinks)",
        ),
        counter(
            "dead-lettered",
            "Dead-lettered",
            "Events moved to SPOOL-DIR/dead-letter/ since the element started (rejected for good, unreadable, beyond spool-max-events)",
        ),
    ]
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub stream: String,
    // Frame log.
    pub frames_location: Option<PathBuf>,
    pub frames_append: bool,
    pub frames_max_size_bytes: u64,
    pub frames_max_files: u32,
    // Rules.
    pub rules_file: Option<PathBuf>,
    pub labels: Option<String>,
    pub class: Option<String>,
    pub event_type: Option<String>,
    pub label_match: LabelMatch,
    pub min_score: f64,
    pub min_frames: u32,
    pub min_duration_ms: u32,
    pub cooldown_ms: u32,
    pub zone: Option<String>,
    pub zone_anchor: ZoneAnchor,
    pub labels_file: Option<PathBuf>,
    // Local sinks.
    pub location: Option<PathBuf>,
    pub max_size_bytes: u64,
    pub max_files: u32,
    pub stdout: bool,
    pub post_messages: bool,
    // Network sinks.
    pub webhook_url: Option<String>,
    pub webhook_auth_header_name: String,
    pub webhook_auth_header_env: Option<String>,
    pub webhook_auth_header_file: Option<PathBuf>,
    pub mqtt_url: Option<String>,
    pub mqtt_topic: String,
    pub mqtt_client_id: Option<String>,
    pub mqtt_username: Option<String>,
    pub mqtt_password_env: Option<String>,
    pub mqtt_password_file: Option<PathBuf>,
    pub mqtt_keep_alive_s: u32,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_verify: bool,
    // Delivery.
    pub spool_dir: Option<PathBuf>,
    pub spool_max_events: u32,
    pub timeout_ms: u32,
    pub retry_initial_ms: u32,
    pub retry_max_ms: u32,
    pub flush_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stream: DEFAULT_STREAM.to_string(),
            frames_location: None,
            frames_append: false,
            frames_max_size_bytes: 0,
            frames_max_files: DEFAULT_MAX_FILES,
            rules_file: None,
            labels: None,
            class: None,
            event_type: None,
            label_match: LabelMatch::Exact,
            min_score: rules::DEFAULT_MIN_SCORE,
            min_frames: rules::DEFAULT_MIN_FRAMES,
            min_duration_ms: rules::DEFAULT_MIN_DURATION_MS,
            cooldown_ms: rules::DEFAULT_COOLDOWN_MS,
            zone: None,
            zone_anchor: ZoneAnchor::BottomCentre,
            labels_file: None,
            location: None,
            max_size_bytes: 0,
            max_files: DEFAULT_MAX_FILES,
            stdout: false,
            post_messages: DEFAULT_POST_MESSAGES,
            webhook_url: None,
            webhook_auth_header_name: DEFAULT_AUTH_HEADER.to_string(),
            webhook_auth_header_env: None,
            webhook_auth_header_file: None,
            mqtt_url: None,
            mqtt_topic: DEFAULT_MQTT_TOPIC.to_string(),
            mqtt_client_id: None,
            mqtt_username: None,
            mqtt_password_env: None,
            mqtt_password_file: None,
            mqtt_keep_alive_s: DEFAULT_MQTT_KEEP_ALIVE_S,
            tls_ca_file: None,
            tls_verify: true,
            spool_dir: None,
            spool_max_events: 0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retry_initial_ms: DEFAULT_RETRY_INITIAL_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            flush_timeout_ms: DEFAULT_FLUSH_TIMEOUT_MS,
        }
    }
}

impl Settings {
    /// The rule of the properties (when `labels` or `class` is set), as a rules file would give
    /// it.
    fn property_rule(&self) -> Result<Option<RuleSpec>, String> {
        // A comma-separated list; `RuleSpec::into_rule` refuses `labels` and `class` together.
        let list = |key: &str, given: &Option<String>| -> Result<Option<Vec<String>>, String> {
            let Some(given) = given else { return Ok(None) };
            let labels: Vec<String> = given
                .split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            if labels.is_empty() {
                return Err(format!("{key}: no label given"));
            }
            Ok(Some(labels))
        };
        let labels = list("labels", &self.labels)?;
        let class = list("class", &self.class)?;
        let Some(first) = labels.iter().chain(&class).next().map(|l| l[0].clone()) else {
            if self.zone.is_some() || self.event_type.is_some() {
                return Err(
                    "zone and event-type belong to the rule of the properties, which needs labels or class"
                        .into(),
                );
            }
            return Ok(None);
        };
        let zone = self
            .zone
            .as_deref()
            .map(|z| rules::parse_zone(z).map_err(|e| format!("zone '{z}': {e}")))
            .transpose()?;
        let kind = self.event_type.clone().unwrap_or(first);
        let (labels, class) = (labels.map(Labels::Many), class.map(Labels::Many));
        Ok(Some(RuleSpec {
            kind,
            labels,
            class,
            label_match: Some(self.label_match.into()),
            min_score: Some(self.min_score),
            min_frames: Some(self.min_frames),
            min_duration_ms: Some(self.min_duration_ms.into()),
            cooldown_ms: Some(self.cooldown_ms.into()),
            zone_anchor: zone.is_some().then_some(self.zone_anchor.into()),
            zone,
        }))
    }

    /// The rule of the properties followed by those of the rules file, checked against the
    /// classifier's labels when `labels-file` is set.
    pub fn rules(&self) -> Result<Vec<Rule>, String> {
        let mut out = Vec::new();
        if let Some(spec) = self.property_rule()? {
            out.push(spec.into_rule()?);
        }
        if let Some(path) = &self.rules_file {
            out.extend(rules::load_rules(path)?);
        }
        if let Some(file) = &self.labels_file {
            let known = crate::labels::read_labels_file(file, "labels-file")?;
            rules::check_labels(&out, &known, file)?;
        }
        Ok(out)
    }

    /// Sets the property `name` (one of [`properties`], not a counter).
    pub fn set(&mut self, name: &str, value: &glib::Value) {
        let s = self;
        let path = |v: &glib::Value| opt_string(v).map(PathBuf::from);
        match name {
            "stream" => s.stream = opt_string(value).unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            "frames-location" => s.frames_location = path(value),
            "frames-append" => s.frames_append = value.get().unwrap(),
            "frames-max-size-bytes" => s.frames_max_size_bytes = value.get().unwrap(),
            "frames-max-files" => s.frames_max_files = value.get().unwrap(),
            "rules-file" => s.rules_file = path(value),
            "labels" => s.labels = opt_string(value),
            "class" => s.class = opt_string(value),
            "event-type" => s.event_type = opt_string(value),
            "label-match" => s.label_match = value.get().unwrap(),
            "min-score" => s.min_score = value.get().unwrap(),
            "min-frames" => s.min_frames = value.get().unwrap(),
            "min-duration-ms" => s.min_duration_ms = value.get().unwrap(),
            "cooldown-ms" => s.cooldown_ms = value.get().unwrap(),
            "zone" => s.zone = opt_string(value),
            "zone-anchor" => s.zone_anchor = value.get().unwrap(),
            "labels-file" => s.labels_file = path(value),
            "location" => s.location = path(value),
            "max-size-bytes" => s.max_size_bytes = value.get().unwrap(),
            "max-files" => s.max_files = value.get().unwrap(),
            "stdout" => s.stdout = value.get().unwrap(),
            "post-messages" => s.post_messages = value.get().unwrap(),
            "webhook-url" => s.webhook_url = opt_string(value),
            "webhook-auth-header-name" => {
                s.webhook_auth_header_name =
                    opt_string(value).unwrap_or_else(|| DEFAULT_AUTH_HEADER.to_string())
            }
            "webhook-auth-header-env" => s.webhook_auth_header_env = opt_string(value),
            "webhook-auth-header-file" => s.webhook_auth_header_file = path(value),
            "mqtt-url" => s.mqtt_url = opt_string(value),
            "mqtt-topic" => {
                s.mqtt_topic = opt_string(value).unwrap_or_else(|| DEFAULT_MQTT_TOPIC.to_string())
            }
            "mqtt-client-id" => s.mqtt_client_id = opt_string(value),
            "mqtt-username" => s.mqtt_username = opt_string(value),
            "mqtt-password-env" => s.mqtt_password_env = opt_string(value),
            "mqtt-password-file" => s.mqtt_password_file = path(value),
            "mqtt-keep-alive-s" => s.mqtt_keep_alive_s = value.get().unwrap(),
            "tls-ca-file" => s.tls_ca_file = path(value),
            "tls-verify" => s.tls_verify = value.get().unwrap(),
            "spool-dir" => s.spool_dir = path(value),
            "spool-max-events" => s.spool_max_events = value.get().unwrap(),
            "timeout-ms" => s.timeout_ms = value.get().unwrap(),
            "retry-initial-ms" => s.retry_initial_ms = value.get().unwrap(),
            "retry-max-ms" => s.retry_max_ms = value.get().unwrap(),
            "flush-timeout-ms" => s.flush_timeout_ms = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    /// The value of the property `name` (one of [`properties`], not a counter).
    pub fn get(&self, name: &str) -> glib::Value {
        let s = self;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        // URLs are read back with their secrets redacted.
        let url = |u: &Option<String>| u.as_deref().map(tls::redact_url).to_value();
        match name {
            "stream" => s.stream.to_value(),
            "frames-location" => path(&s.frames_location),
            "frames-append" => s.frames_append.to_value(),
            "frames-max-size-bytes" => s.frames_max_size_bytes.to_value(),
            "frames-max-files" => s.frames_max_files.to_value(),
            "rules-file" => path(&s.rules_file),
            "labels" => s.labels.to_value(),
            "class" => s.class.to_value(),
            "event-type" => s.event_type.to_value(),
            "label-match" => s.label_match.to_value(),
            "min-score" => s.min_score.to_value(),
            "min-frames" => s.min_frames.to_value(),
            "min-duration-ms" => s.min_duration_ms.to_value(),
            "cooldown-ms" => s.cooldown_ms.to_value(),
            "zone" => s.zone.to_value(),
            "zone-anchor" => s.zone_anchor.to_value(),
            "labels-file" => path(&s.labels_file),
            "location" => path(&s.location),
            "max-size-bytes" => s.max_size_bytes.to_value(),
            "max-files" => s.max_files.to_value(),
            "stdout" => s.stdout.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "webhook-url" => url(&s.webhook_url),
            "webhook-auth-header-name" => s.webhook_auth_header_name.to_value(),
            // The variable's name and the file's path, never the secret.
            "webhook-auth-header-env" => s.webhook_auth_header_env.to_value(),
            "webhook-auth-header-file" => path(&s.webhook_auth_header_file),
            "mqtt-url" => url(&s.mqtt_url),
            "mqtt-topic" => s.mqtt_topic.to_value(),
            "mqtt-client-id" => s.mqtt_client_id.to_value(),
            "mqtt-username" => s.mqtt_username.to_value(),
            "mqtt-password-env" => s.mqtt_password_env.to_value(),
            "mqtt-password-file" => path(&s.mqtt_password_file),
            "mqtt-keep-alive-s" => s.mqtt_keep_alive_s.to_value(),
            "tls-ca-file" => path(&s.tls_ca_file),
            "tls-verify" => s.tls_verify.to_value(),
            "spool-dir" => path(&s.spool_dir),
            "spool-max-events" => s.spool_max_events.to_value(),
            "timeout-ms" => s.timeout_ms.to_value(),
            "retry-initial-ms" => s.retry_initial_ms.to_value(),
            "retry-max-ms" => s.retry_max_ms.to_value(),
            "flush-timeout-ms" => s.flush_timeout_ms.to_value(),
            _ => unimplemented!(),
        }
    }
}
