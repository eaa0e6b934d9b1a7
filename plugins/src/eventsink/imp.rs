use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, SystemTime},
};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::{prelude::*, subclass::prelude::*};
use recognizer_core::events::{self as rules, Observation, Rule, RuleEngine};
use recognizer_meta::{FrameRecord, PoseMeta};

use super::{
    config,
    delivery::{Backoff, Status, Transport, Worker},
    jsonl::EventsFile,
    net::{self, Mqtt, MqttSettings, TlsSettings, Webhook, WebhookSettings},
    record::{self, EventRecord},
    spool::Spool,
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "eventsink",
        gst::DebugColorFlags::empty(),
        Some("Recognizer events and frame log"),
    )
});

const DEFAULT_STREAM: &str = "cam0";
const DEFAULT_MAX_FILES: u32 = 5;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_AUTH_HEADER: &str = "Authorization";
const DEFAULT_MQTT_TOPIC: &str = "recognizer/{stream}/events";
const DEFAULT_MQTT_KEEP_ALIVE: u32 = 60;
const DEFAULT_TIMEOUT_MS: u32 = 5000;
const DEFAULT_RETRY_INITIAL_MS: u32 = 1000;
const DEFAULT_RETRY_MAX_MS: u32 = 60_000;
const DEFAULT_FLUSH_TIMEOUT_MS: u32 = 5000;
/// Frame duration assumed for buffers without a timestamp.
const FALLBACK_FRAME_NS: u64 = 33_333_333;

/// Name of the element messages posted for each event.
pub const MESSAGE_NAME: &str = "recognizer-event";

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

#[derive(Debug, Clone)]
struct Settings {
    stream: String,
    frames_location: Option<PathBuf>,
    // Rules.
    rules_location: Option<PathBuf>,
    labels: Option<String>,
    event_type: Option<String>,
    label_match: LabelMatch,
    min_score: f64,
    min_frames: u32,
    min_duration_ms: u32,
    cooldown_ms: u32,
    zone: Option<String>,
    zone_anchor: ZoneAnchor,
    label_map: Option<PathBuf>,
    // Local sinks.
    location: Option<PathBuf>,
    max_size: u64,
    max_files: u32,
    stdout: bool,
    post_messages: bool,
    // Network sinks.
    webhook_url: Option<String>,
    webhook_auth_header_name: String,
    webhook_auth_header_env: Option<String>,
    webhook_auth_header_file: Option<PathBuf>,
    mqtt_url: Option<String>,
    mqtt_topic: String,
    mqtt_client_id: Option<String>,
    mqtt_username: Option<String>,
    mqtt_password_env: Option<String>,
    mqtt_password_file: Option<PathBuf>,
    mqtt_keep_alive: u32,
    tls_ca_file: Option<PathBuf>,
    tls_verify: bool,
    // Delivery.
    spool_dir: Option<PathBuf>,
    timeout_ms: u32,
    retry_initial_ms: u32,
    retry_max_ms: u32,
    flush_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stream: DEFAULT_STREAM.to_string(),
            frames_location: None,
            rules_location: None,
            labels: None,
            event_type: None,
            label_match: LabelMatch::Exact,
            min_score: config::DEFAULT_MIN_SCORE,
            min_frames: config::DEFAULT_MIN_FRAMES,
            min_duration_ms: config::DEFAULT_MIN_DURATION_MS,
            cooldown_ms: config::DEFAULT_COOLDOWN_MS,
            zone: None,
            zone_anchor: ZoneAnchor::BottomCentre,
            label_map: None,
            location: None,
            max_size: 0,
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
            mqtt_keep_alive: DEFAULT_MQTT_KEEP_ALIVE,
            tls_ca_file: None,
            tls_verify: true,
            spool_dir: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retry_initial_ms: DEFAULT_RETRY_INITIAL_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            flush_timeout_ms: DEFAULT_FLUSH_TIMEOUT_MS,
        }
    }
}

impl Settings {
    /// The rule of the properties (when `labels` is set) followed by those of the rules file.
    fn rules(&self) -> Result<Vec<Rule>, String> {
        let mut out = Vec::new();
        if let Some(labels) = &self.labels {
            let labels: Vec<String> = labels
                .split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            if labels.is_empty() {
                return Err("labels: no label given".into());
            }
            let zone = match &self.zone {
                None => None,
                Some(z) => Some(rules::Zone {
                    polygon: config::parse_zone(z).map_err(|e| format!("zone '{z}': {e}"))?,
                    anchor: match self.zone_anchor {
                        ZoneAnchor::BottomCentre => rules::Anchor::BottomCentre,
                        ZoneAnchor::Centre => rules::Anchor::Centre,
                    },
                }),
            };
            let rule = Rule {
                name: self.event_type.clone().unwrap_or_else(|| labels[0].clone()),
                labels,
                label_match: match self.label_match {
                    LabelMatch::Exact => rules::LabelMatch::Exact,
                    LabelMatch::Contains => rules::LabelMatch::Contains,
                },
                min_score: self.min_score as f32,
                min_frames: self.min_frames,
                min_duration_ns: self.min_duration_ms as u64 * 1_000_000,
                cooldown_ns: self.cooldown_ms as u64 * 1_000_000,
                zone,
            };
            rule.validate()?;
            out.push(rule);
        } else if self.zone.is_some() || self.event_type.is_some() {
            return Err(
                "zone and event-type belong to the rule of the properties, which needs labels"
                    .into(),
            );
        }
        if let Some(path) = &self.rules_location {
            out.extend(config::load_rules(path)?);
        }
        if let Some(map) = &self.label_map {
            let known = config::load_label_map(map)?;
            config::check_labels(&out, &known, map)?;
        }
        Ok(out)
    }
}

/// A network sink: its spool and its delivery thread.
struct NetworkSink {
    spool: Spool,
    worker: Arc<Worker>,
}

struct State {
    /// Settings of this run, fixed at start.
    stream: String,
    location: Option<PathBuf>,
    stdout: bool,
    post_messages: bool,
    frames: Option<BufWriter<File>>,
    width: u32,
    height: u32,
    frame_count: u64,
    engine: RuleEngine,
    events_file: Option<EventsFile>,
    network: Vec<NetworkSink>,
    /// Exclusive lock on `spool-dir` while running.
    _spool_lock: Option<File>,
    events: u64,
    zone_size_warned: bool,
}

#[derive(Default)]
pub struct EventSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for EventSink {
    const NAME: &'static str = "GstEventSink";
    type Type = super::EventSink;
    type ParentType = gst_base::BaseSink;
}

fn opt_string(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .unwrap()
        .filter(|s| !s.is_empty())
}

impl ObjectImpl for EventSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let s = |name: &'static str, nick: &'static str, blurb: &'static str| {
                glib::ParamSpecString::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .mutable_ready()
                    .build()
            };
            let ms = |name: &'static str,
                      nick: &'static str,
                      blurb: &'static str,
                      default: u32,
                      min: u32| {
                glib::ParamSpecUInt::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .minimum(min)
                    .default_value(default)
                    .mutable_ready()
                    .build()
            };
            vec![
                glib::ParamSpecString::builder("stream")
                    .nick("Stream")
                    .blurb("Name of the stream (camera), written into every record")
                    .default_value(Some(DEFAULT_STREAM))
                    .mutable_ready()
                    .build(),
                s(
                    "frames-location",
                    "Frames location",
                    "File to write the per-frame metadata to, one JSON object per line (none: no frame log)",
                ),
                // Rules.
                s(
                    "rules-location",
                    "Rules location",
                    "Rules file (TOML, or JSON when it ends in .json): a list 'rules' of tables with the keys of the rule properties",
                ),
                s(
                    "labels",
                    "Labels",
                    "Comma-separated action labels of the rule given by properties (none: no such rule)",
                ),
                s("event-type", "Event type", "Type (name) of the events of the property rule (default: its first label)"),
                glib::ParamSpecEnum::builder_with_default("label-match", LabelMatch::Exact)
                    .nick("Label match")
                    .blurb("How the property rule's labels match action labels")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("min-score")
                    .nick("Minimum score")
                    .blurb("Minimum action score of the property rule")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(config::DEFAULT_MIN_SCORE)
                    .mutable_ready()
                    .build(),
                ms(
                    "min-frames",
                    "Minimum frames",
                    "Consecutive matching frames a track needs before the property rule fires",
                    config::DEFAULT_MIN_FRAMES,
                    1,
                ),
                ms(
                    "min-duration-ms",
                    "Minimum duration",
                    "Time (PTS) from the first to the confirming matching frame before the property rule fires, ms",
                    config::DEFAULT_MIN_DURATION_MS,
                    0,
                ),
                ms(
                    "cooldown-ms",
                    "Cooldown",
                    "After an event, the rule fires again for the same track only after this long (PTS, ms) without a matching frame",
                    config::DEFAULT_COOLDOWN_MS,
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
                    "label-map",
                    "Label map",
                    "The classifier's labels (one a line); when set, a rule label that matches none of them is an error",
                ),
                // Local sinks.
                s("location", "Location", "JSON Lines file of the events (appended, fsync after each event; none: no file)"),
                glib::ParamSpecUInt64::builder("max-size")
                    .nick("Maximum size")
                    .blurb("Rotate the events file before it passes this many bytes (0: never)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                ms("max-files", "Maximum files", "Rotated events files kept (location.1 newest)", DEFAULT_MAX_FILES, 1),
                glib::ParamSpecBoolean::builder("stdout")
                    .nick("Stdout")
                    .blurb("Print each event as one JSON line on standard output")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post an element message 'recognizer-event' on the bus for each event")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_ready()
                    .build(),
                // Network sinks.
                s("webhook-url", "Webhook URL", "http:// or https:// URL to POST each event to (JSON body)"),
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
                s("mqtt-url", "MQTT URL", "mqtt://host[:1883] or mqtts://host[:8883] broker to publish each event to (QoS 1)"),
                glib::ParamSpecString::builder("mqtt-topic")
                    .nick("MQTT topic")
                    .blurb("Topic template; {stream} and {type} are replaced")
                    .default_value(Some(DEFAULT_MQTT_TOPIC))
                    .mutable_ready()
                    .build(),
                s("mqtt-client-id", "MQTT client id", "Client identifier (default: recognizer-STREAM-RANDOM)"),
                s("mqtt-username", "MQTT user name", "User name for the broker (optional)"),
                s("mqtt-password-env", "MQTT password variable", "Environment variable holding the broker password (never logged)"),
                s("mqtt-password-file", "MQTT password file", "File whose first line is the broker password (never logged)"),
                ms("mqtt-keep-alive", "MQTT keep-alive", "MQTT keep-alive interval, seconds", DEFAULT_MQTT_KEEP_ALIVE, 5),
                s(
                    "tls-ca-file",
                    "TLS CA file",
                    "PEM file of the CA certificates to trust for https:// and mqtts:// (default: the built-in Mozilla roots)",
                ),
                glib::ParamSpecBoolean::builder("tls-verify")
                    .nick("TLS verify")
                    .blurb("Verify the server certificate of https:// and mqtts:// (false: for testing only)")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                // Delivery.
                s(
                    "spool-dir",
                    "Spool directory",
                    "Directory for events not yet delivered to the webhook or MQTT (required with them; replayed at start)",
                ),
                ms("timeout-ms", "Timeout", "Network timeout of one delivery attempt, ms", DEFAULT_TIMEOUT_MS, 1),
                ms("retry-initial-ms", "Initial retry delay", "First delay after a failed delivery, ms (doubles)", DEFAULT_RETRY_INITIAL_MS, 1),
                ms("retry-max-ms", "Maximum retry delay", "Upper bound of the retry delay, ms", DEFAULT_RETRY_MAX_MS, 1),
                ms(
                    "flush-timeout-ms",
                    "Flush timeout",
                    "At EOS and when stopping, wait this long for undelivered events; the rest stays in the spool",
                    DEFAULT_FLUSH_TIMEOUT_MS,
                    0,
                ),
                glib::ParamSpecUInt64::builder("events")
                    .nick("Events")
                    .blurb("Events generated since the element started")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("delivered")
                    .nick("Delivered")
                    .blurb("Deliveries acknowledged by the network sinks since the element started (one per event and sink)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("spooled")
                    .nick("Spooled")
                    .blurb("Events in the spool waiting for delivery (all network sinks)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let path = |v: &glib::Value| opt_string(v).map(PathBuf::from);
        match pspec.name() {
            "stream" => s.stream = opt_string(value).unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            "frames-location" => s.frames_location = path(value),
            "rules-location" => s.rules_location = path(value),
            "labels" => s.labels = opt_string(value),
            "event-type" => s.event_type = opt_string(value),
            "label-match" => s.label_match = value.get().unwrap(),
            "min-score" => s.min_score = value.get().unwrap(),
            "min-frames" => s.min_frames = value.get().unwrap(),
            "min-duration-ms" => s.min_duration_ms = value.get().unwrap(),
            "cooldown-ms" => s.cooldown_ms = value.get().unwrap(),
            "zone" => s.zone = opt_string(value),
            "zone-anchor" => s.zone_anchor = value.get().unwrap(),
            "label-map" => s.label_map = path(value),
            "location" => s.location = path(value),
            "max-size" => s.max_size = value.get().unwrap(),
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
            "mqtt-keep-alive" => s.mqtt_keep_alive = value.get().unwrap(),
            "tls-ca-file" => s.tls_ca_file = path(value),
            "tls-verify" => s.tls_verify = value.get().unwrap(),
            "spool-dir" => s.spool_dir = path(value),
            "timeout-ms" => s.timeout_ms = value.get().unwrap(),
            "retry-initial-ms" => s.retry_initial_ms = value.get().unwrap(),
            "retry-max-ms" => s.retry_max_ms = value.get().unwrap(),
            "flush-timeout-ms" => s.flush_timeout_ms = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if matches!(pspec.name(), "events" | "spooled" | "delivered") {
            let state = self.state.lock().unwrap();
            return match (pspec.name(), state.as_ref()) {
                ("events", Some(st)) => st.events.to_value(),
                ("delivered", Some(st)) => st
                    .network
                    .iter()
                    .map(|n| n.worker.delivered())
                    .sum::<u64>()
                    .to_value(),
                ("spooled", Some(st)) => (st
                    .network
                    .iter()
                    .map(|n| n.worker.pending() as u64)
                    .sum::<u64>())
                .to_value(),
                _ => 0u64.to_value(),
            };
        }
        let s = self.settings.lock().unwrap();
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        match pspec.name() {
            "stream" => s.stream.to_value(),
            "frames-location" => path(&s.frames_location),
            "rules-location" => path(&s.rules_location),
            "labels" => s.labels.to_value(),
            "event-type" => s.event_type.to_value(),
            "label-match" => s.label_match.to_value(),
            "min-score" => s.min_score.to_value(),
            "min-frames" => s.min_frames.to_value(),
            "min-duration-ms" => s.min_duration_ms.to_value(),
            "cooldown-ms" => s.cooldown_ms.to_value(),
            "zone" => s.zone.to_value(),
            "zone-anchor" => s.zone_anchor.to_value(),
            "label-map" => path(&s.label_map),
            "location" => path(&s.location),
            "max-size" => s.max_size.to_value(),
            "max-files" => s.max_files.to_value(),
            "stdout" => s.stdout.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "webhook-url" => s.webhook_url.to_value(),
            "webhook-auth-header-name" => s.webhook_auth_header_name.to_value(),
            // The variable's name and the file's path, never the secret.
            "webhook-auth-header-env" => s.webhook_auth_header_env.to_value(),
            "webhook-auth-header-file" => path(&s.webhook_auth_header_file),
            "mqtt-url" => s.mqtt_url.to_value(),
            "mqtt-topic" => s.mqtt_topic.to_value(),
            "mqtt-client-id" => s.mqtt_client_id.to_value(),
            "mqtt-username" => s.mqtt_username.to_value(),
            "mqtt-password-env" => s.mqtt_password_env.to_value(),
            "mqtt-password-file" => path(&s.mqtt_password_file),
            "mqtt-keep-alive" => s.mqtt_keep_alive.to_value(),
            "tls-ca-file" => path(&s.tls_ca_file),
            "tls-verify" => s.tls_verify.to_value(),
            "spool-dir" => path(&s.spool_dir),
            "timeout-ms" => s.timeout_ms.to_value(),
            "retry-initial-ms" => s.retry_initial_ms.to_value(),
            "retry-max-ms" => s.retry_max_ms.to_value(),
            "flush-timeout-ms" => s.flush_timeout_ms.to_value(),
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // A metadata sink consumes as fast as data arrives, like fakesink.
        self.obj().set_sync(false);
    }
}

impl GstObjectImpl for EventSink {}

impl ElementImpl for EventSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Recognizer event sink",
                "Sink/Metadata",
                "Turns action metadata into events (rules: labels, score, duration, cooldown, zone) and delivers them \
                 at least once to a JSON Lines file, stdout, bus messages, an HTTP(S) webhook and MQTT; \
                 optionally writes the per-frame metadata as JSON Lines",
                "Recognizer developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &gst::Caps::new_any(),
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

fn settings_error(message: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{}", message))
}

impl EventSink {
    /// Builds the network sinks (URLs, secrets and TLS checked first), then their spools.
    fn start_network(
        &self,
        s: &Settings,
    ) -> Result<(Vec<NetworkSink>, Option<File>), gst::ErrorMessage> {
        let tls = TlsSettings {
            ca_file: s.tls_ca_file.clone(),
            verify: s.tls_verify,
        };
        let timeout = Duration::from_millis(s.timeout_ms as u64);
        let mut transports: Vec<(&'static str, Box<dyn Transport>)> = Vec::new();
        if let Some(url) = &s.webhook_url {
            let secret = net::read_secret(
                "webhook-auth-header",
                s.webhook_auth_header_env.as_deref(),
                s.webhook_auth_header_file.as_deref(),
            )
            .map_err(settings_error)?;
            let hook = Webhook::new(WebhookSettings {
                url: url.clone(),
                timeout,
                tls: tls.clone(),
                auth: secret.map(|v| (s.webhook_auth_header_name.clone(), v)),
            })
            .map_err(settings_error)?;
            transports.push(("webhook", Box::new(hook)));
        }
        if let Some(url) = &s.mqtt_url {
            let password = net::read_secret(
                "mqtt-password",
                s.mqtt_password_env.as_deref(),
                s.mqtt_password_file.as_deref(),
            )
            .map_err(settings_error)?;
            let client_id = s.mqtt_client_id.clone().unwrap_or_else(|| {
                format!("recognizer-{}-{}", s.stream, &record::new_event_id()[..8])
            });
            let mqtt = Mqtt::new(MqttSettings {
                url: url.clone(),
                topic: s.mqtt_topic.clone(),
                client_id,
                username: s.mqtt_username.clone(),
                password,
                keep_alive: Duration::from_secs(s.mqtt_keep_alive as u64),
                timeout,
                tls: tls.clone(),
                stream: s.stream.clone(),
            })
            .map_err(settings_error)?;
            transports.push(("mqtt", Box::new(mqtt)));
        }
        if !s.tls_verify && !transports.is_empty() {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("tls-verify=false: server certificates are not verified")
            );
        }
        let Some(dir) = &s.spool_dir else {
            if transports.is_empty() {
                return Ok((Vec::new(), None));
            }
            return Err(settings_error(
                "webhook-url and mqtt-url need spool-dir: the directory where events wait until delivered".into(),
            ));
        };
        let spool_error = |e: std::io::Error| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                ("Could not use spool-dir '{}': {}", dir.display(), e)
            )
        };
        std::fs::create_dir_all(dir).map_err(spool_error)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .map_err(spool_error)?;
        if lock.try_lock().is_err() {
            return Err(gst::error_msg!(
                gst::ResourceError::Busy,
                (
                    "spool-dir '{}' is in use by another eventsink (one spool-dir per element)",
                    dir.display()
                )
            ));
        }
        let enabled: Vec<&str> = transports.iter().map(|(n, _)| *n).collect();
        for other in ["webhook", "mqtt"] {
            let n = Spool::count(&dir.join(other));
            if !enabled.contains(&other) && n > 0 {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Settings,
                    (
                        "{} undelivered events for {} remain in '{}', which is not configured now",
                        n,
                        other,
                        dir.join(other).display()
                    )
                );
            }
        }
        let backoff = Backoff {
            initial: Duration::from_millis(s.retry_initial_ms as u64),
            max: Duration::from_millis(s.retry_max_ms.max(s.retry_initial_ms) as u64),
        };
        let mut sinks = Vec::new();
        for (name, transport) in transports {
            let sub = dir.join(name);
            let (spool, existing) = Spool::open(&sub).map_err(spool_error)?;
            if !existing.is_empty() {
                gst::info!(
                    CAT,
                    imp = self,
                    "{name}: replaying {} spooled events from {}",
                    existing.len(),
                    sub.display()
                );
            }
            let weak = self.obj().downgrade();
            let spool_path = sub.display().to_string();
            let report = Box::new(move |status: Status| {
                let Some(element) = weak.upgrade() else {
                    return;
                };
                match status {
                    Status::Failing(e) => gst::element_warning!(
                        element,
                        gst::ResourceError::Write,
                        (
                            "{}: delivery failed, retrying with backoff; events are kept in '{}'",
                            name,
                            spool_path
                        ),
                        ["{}", e]
                    ),
                    Status::Recovered { failures } => {
                        gst::info!(
                            CAT,
                            obj = element,
                            "{name}: delivering again after {failures} failed attempts"
                        )
                    }
                }
            });
            let worker =
                Worker::start(name, existing, transport, backoff, report).map_err(spool_error)?;
            sinks.push(NetworkSink {
                spool,
                worker: Arc::new(worker),
            });
        }
        Ok((sinks, Some(lock)))
    }

    /// Waits for the network sinks to deliver what is queued; returns what remains per sink.
    fn flush_network(
        &self,
        workers: &[Arc<Worker>],
        timeout: Duration,
    ) -> Vec<(&'static str, usize)> {
        let deadline = std::time::Instant::now() + timeout;
        workers
            .iter()
            .map(|w| {
                (
                    w.name(),
                    w.flush(deadline.saturating_duration_since(std::time::Instant::now())),
                )
            })
            .collect()
    }

    fn workers(&self) -> Vec<Arc<Worker>> {
        self.state
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.network.iter().map(|n| n.worker.clone()).collect())
            .unwrap_or_default()
    }

    /// Runs the rules on one frame. Returns the events and whether to warn that zones cannot
    /// be evaluated (posted by the caller, outside the state lock).
    fn make_events(
        &self,
        state: &mut State,
        buffer: &gst::Buffer,
        pts_ns: u64,
    ) -> (Vec<EventRecord>, bool) {
        let Some(meta) = buffer.meta::<PoseMeta>() else {
            return (Vec::new(), false);
        };
        let persons = meta.persons();
        let observations: Vec<Observation> = persons
            .iter()
            .enumerate()
            .map(|(index, p)| Observation {
                index,
                track_id: p.track().map(|t| t.id),
                label: p.action_label(),
                score: p.action().map(|a| a.score).unwrap_or(0.0),
                bbox: p.bbox,
            })
            .collect();
        let warn_zone = state.engine.needs_frame_size()
            && (state.width == 0 || state.height == 0)
            && !state.zone_size_warned;
        state.zone_size_warned |= warn_zone;
        let onsets = state
            .engine
            .process(pts_ns, state.width, state.height, &observations);
        let wallclock = record::rfc3339(SystemTime::now());
        let events = onsets
            .into_iter()
            .map(|o| {
                let p = &persons[o.index];
                EventRecord {
                    event_id: record::new_event_id(),
                    kind: state.engine.rules()[o.rule].name.clone(),
                    stream: state.stream.clone(),
                    track_id: o.track_id,
                    class_id: p.action().map(|a| a.class_id).unwrap_or(0),
                    label: o.label,
                    score: o.score,
                    start_pts_ns: o.start_pts_ns,
                    end_pts_ns: o.end_pts_ns,
                    wallclock: wallclock.clone(),
                    bbox: p.bbox,
                    keypoints: p.keypoints.iter().map(|k| [k.x, k.y, k.score]).collect(),
                    width: state.width,
                    height: state.height,
                }
            })
            .collect();
        (events, warn_zone)
    }

    fn message(event: &EventRecord, json: &str) -> gst::Structure {
        gst::Structure::builder(MESSAGE_NAME)
            .field("event-id", &event.event_id)
            .field("type", &event.kind)
            .field("stream", &event.stream)
            .field("track-id", event.track_id)
            .field("label", &event.label)
            .field("class-id", event.class_id)
            .field("score", event.score as f64)
            .field("start-pts", event.start_pts_ns)
            .field("end-pts", event.end_pts_ns)
            .field("wallclock", &event.wallclock)
            .field(
                "bbox",
                gst::Array::new(event.bbox.iter().map(|v| *v as f64)),
            )
            .field("json", json)
            .build()
    }

    /// Writes one event to every sink except the bus; returns the bus message to post (after
    /// the state lock is released) or what went wrong.
    fn emit(
        &self,
        state: &mut State,
        event: &EventRecord,
    ) -> Result<Option<gst::Structure>, String> {
        let json = event.to_json_line();
        state.events += 1;
        // Durable first: each network sink's spool, before anything is attempted.
        for sink in &state.network {
            let path = sink.spool.write(&event.event_id, &json).map_err(|e| {
                format!(
                    "Could not write event {} to the spool '{}': {}",
                    event.event_id,
                    sink.spool.dir().display(),
                    e
                )
            })?;
            sink.worker.enqueue(path);
        }
        if let Some(file) = state.events_file.as_mut() {
            file.write_line(&json).map_err(|e| {
                let path = state.location.as_deref().unwrap_or(Path::new(""));
                format!(
                    "Could not write event {} to location '{}': {}",
                    event.event_id,
                    path.display(),
                    e
                )
            })?;
        }
        if state.stdout {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{json}").and_then(|_| out.flush());
        }
        gst::debug!(
            CAT,
            imp = self,
            "event {} {} track {}",
            event.event_id,
            event.kind,
            event.track_id
        );
        Ok(state.post_messages.then(|| Self::message(event, &json)))
    }
}

impl BaseSinkImpl for EventSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let rules = settings.rules().map_err(settings_error)?;
        let engine = RuleEngine::new(rules).map_err(settings_error)?;
        let frames = match &settings.frames_location {
            None => None,
            Some(path) => {
                let file = File::create(path).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        (
                            "Could not open frames-location '{}' for writing: {}",
                            path.display(),
                            e
                        )
                    )
                })?;
                gst::debug!(CAT, imp = self, "writing frames to {}", path.display());
                Some(BufWriter::new(file))
            }
        };
        let events_file = match &settings.location {
            None => None,
            Some(path) => Some(
                EventsFile::open(path, settings.max_size, settings.max_files).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        (
                            "Could not open location '{}' for writing events: {}",
                            path.display(),
                            e
                        )
                    )
                })?,
            ),
        };
        let (network, spool_lock) = self.start_network(&settings)?;
        let has_sink = events_file.is_some()
            || settings.stdout
            || settings.post_messages
            || !network.is_empty();
        if engine.rules().is_empty() && (events_file.is_some() || !network.is_empty()) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("Event sinks are configured but no rule: set labels or rules-location")
            );
        } else if !engine.rules().is_empty() && !has_sink {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("Event rules are set but every event sink is off")
            );
        }
        gst::debug!(
            CAT,
            imp = self,
            "{} rules, {} network sinks",
            engine.rules().len(),
            network.len()
        );
        *self.state.lock().unwrap() = Some(State {
            stream: settings.stream.clone(),
            location: settings.location.clone(),
            stdout: settings.stdout,
            post_messages: settings.post_messages,
            frames,
            width: 0,
            height: 0,
            frame_count: 0,
            engine,
            events_file,
            network,
            _spool_lock: spool_lock,
            events: 0,
            zone_size_warned: false,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let timeout = Duration::from_millis(self.settings.lock().unwrap().flush_timeout_ms as u64);
        let workers = self.workers();
        let remaining = self.flush_network(&workers, timeout);
        for w in &workers {
            w.stop();
        }
        for (name, n) in remaining {
            if n > 0 {
                gst::warning!(
                    CAT,
                    imp = self,
                    "{name}: {n} events not delivered yet, kept in the spool for the next start"
                );
            }
        }
        if let Some(mut state) = self.state.lock().unwrap().take()
            && let Some(mut frames) = state.frames.take()
        {
            frames.flush().map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::Write,
                    ("Could not write the frame log: {}", e)
                )
            })?;
        }
        Ok(())
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let mut state = self.state.lock().unwrap();
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        if let Some(s) = caps.structure(0) {
            state.width = s.get::<i32>("width").unwrap_or(0).max(0) as u32;
            state.height = s.get::<i32>("height").unwrap_or(0).max(0) as u32;
        }
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut messages = Vec::new();
        let mut warn_zone = false;
        let mut error = None;
        {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let frame = state.frame_count;
            state.frame_count += 1;
            if let Some(frames) = state.frames.as_mut() {
                let persons = buffer
                    .meta::<PoseMeta>()
                    .map(|m| m.persons().to_vec())
                    .unwrap_or_default();
                let record = FrameRecord::new(
                    &state.stream,
                    frame,
                    buffer.pts().map(|t| t.nseconds()),
                    state.width,
                    state.height,
                    &persons,
                );
                let written = frames
                    .write_all(record.to_json_line().as_bytes())
                    .and_then(|_| frames.write_all(b"\n"));
                if let Err(e) = written {
                    error = Some(format!("Could not write the frame log: {e}"));
                }
            }
            if error.is_none() && !state.engine.rules().is_empty() {
                let pts_ns = buffer
                    .pts()
                    .map(|t| t.nseconds())
                    .unwrap_or(frame * FALLBACK_FRAME_NS);
                let (events, warn) = self.make_events(state, buffer, pts_ns);
                warn_zone = warn;
                for event in &events {
                    match self.emit(state, event) {
                        Ok(msg) => messages.extend(msg),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        // Messages are posted without holding the state lock (a synchronous bus handler may
        // read this element's properties).
        if warn_zone {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("The caps give no frame size: rules with a zone cannot match")
            );
        }
        for structure in messages {
            let _ = self.obj().post_message(
                gst::message::Element::builder(structure)
                    .src(&*self.obj())
                    .build(),
            );
        }
        if let Some(e) = error {
            gst::element_imp_error!(self, gst::ResourceError::Write, ("{}", e));
            return Err(gst::FlowError::Error);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Eos(_) => {
                // The frame log is complete on disk at EOS, not only when the pipeline stops.
                if let Some(state) = self.state.lock().unwrap().as_mut()
                    && let Some(frames) = state.frames.as_mut()
                    && let Err(e) = frames.flush()
                {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::Write,
                        ("Could not write the frame log: {}", e)
                    );
                }
                // Give the network sinks a bounded time to deliver before EOS is reported.
                let timeout =
                    Duration::from_millis(self.settings.lock().unwrap().flush_timeout_ms as u64);
                for (name, n) in self.flush_network(&self.workers(), timeout) {
                    if n > 0 {
                        gst::element_imp_warning!(
                            self,
                            gst::ResourceError::Write,
                            (
                                "{}: {} events not delivered yet at EOS; they stay in the spool and are retried",
                                name,
                                n
                            )
                        );
                    }
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    state.engine.reset();
                }
            }
            _ => {}
        }
        self.parent_event(event)
    }
}
