use std::{
    fs::File,
    path::PathBuf,
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, Instant, SystemTime},
};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::{prelude::*, subclass::prelude::*};
use recognizer_core::events::{Observation, RuleEngine};
use recognizer_meta::PoseMeta;

use super::{
    delivery::{Backoff, Report, Status, Transport, Worker},
    frame_log::FrameLog,
    jsonl::{JsonLinesFile, Notice, Options},
    mqtt::{Mqtt, MqttSettings},
    record::{self, EventRecord},
    rules,
    settings::*,
    spool::{DEAD_LETTER, Spool},
    stdout,
    tls::{self, TlsSettings},
    webhook::{Webhook, WebhookSettings},
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "eventsink",
        gst::DebugColorFlags::empty(),
        Some("Recognizer events and frame log"),
    )
});

/// Frame duration assumed for buffers without a timestamp.
const FALLBACK_FRAME_NS: u64 = 33_333_333;
/// When stopping, how long a delivery worker may take past `flush-timeout-ms` to notice that
/// it is told to stop (an attempt in progress is cancelled or left behind).
const STOP_GRACE: Duration = Duration::from_millis(200);

/// Name of the element messages posted for each event.
pub const MESSAGE_NAME: &str = "recognizer-event";

struct State {
    stream: String,
    stdout: bool,
    post_messages: bool,
    frame_log: Option<FrameLog>,
    width: u32,
    height: u32,
    frame_count: u64,
    engine: RuleEngine,
    events_file: Option<JsonLinesFile>,
    network: Vec<Arc<Worker>>,
    /// Exclusive lock on `spool-dir` while running.
    _spool_lock: Option<File>,
    events: u64,
    zone_size_warned: bool,
}

/// What the streaming thread posts once the state lock is released (a synchronous bus handler
/// may read this element's properties).
enum Post {
    Warning(String),
    Event(gst::Structure),
    Worker(Arc<Worker>, Status),
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

fn settings_error(message: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{}", message))
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
            let uint = |name: &'static str,
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
            let bytes = |name: &'static str, nick: &'static str, blurb: &'static str| {
                glib::ParamSpecUInt64::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .default_value(0)
                    .mutable_ready()
                    .build()
            };
            let boolean =
                |name: &'static str, nick: &'static str, blurb: &'static str, default: bool| {
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
                    .blurb("Minimum action score of the property rule")
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
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let path = |v: &glib::Value| opt_string(v).map(PathBuf::from);
        match pspec.name() {
            "stream" => s.stream = opt_string(value).unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            "frames-location" => s.frames_location = path(value),
            "frames-append" => s.frames_append = value.get().unwrap(),
            "frames-max-size-bytes" => s.frames_max_size_bytes = value.get().unwrap(),
            "frames-max-files" => s.frames_max_files = value.get().unwrap(),
            "rules-file" => s.rules_file = path(value),
            "labels" => s.labels = opt_string(value),
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

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if matches!(
            pspec.name(),
            "events" | "spooled" | "delivered" | "dead-lettered"
        ) {
            let state = self.state.lock().unwrap();
            let Some(st) = state.as_ref() else {
                return 0u64.to_value();
            };
            let sum = |f: fn(&Worker) -> u64| st.network.iter().map(|w| f(w)).sum::<u64>();
            return match pspec.name() {
                "events" => st.events,
                "delivered" => sum(Worker::delivered),
                "spooled" => sum(|w| w.pending() as u64),
                _ => sum(Worker::dead_lettered),
            }
            .to_value();
        }
        let s = self.settings.lock().unwrap();
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        // URLs are read back with their secrets redacted.
        let url = |u: &Option<String>| u.as_deref().map(tls::redact_url).to_value();
        match pspec.name() {
            "stream" => s.stream.to_value(),
            "frames-location" => path(&s.frames_location),
            "frames-append" => s.frames_append.to_value(),
            "frames-max-size-bytes" => s.frames_max_size_bytes.to_value(),
            "frames-max-files" => s.frames_max_files.to_value(),
            "rules-file" => path(&s.rules_file),
            "labels" => s.labels.to_value(),
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

impl EventSink {
    /// Builds the network sinks (URLs, secrets and TLS checked first), then their spools and
    /// delivery workers.
    fn start_network(
        &self,
        s: &Settings,
    ) -> Result<(Vec<Arc<Worker>>, Option<File>), gst::ErrorMessage> {
        let tls = TlsSettings {
            ca_file: s.tls_ca_file.clone(),
            verify: s.tls_verify,
        };
        let timeout = Duration::from_millis(s.timeout_ms.into());
        let mut transports: Vec<(&'static str, Box<dyn Transport>)> = Vec::new();
        if let Some(url) = &s.webhook_url {
            let secret = tls::read_secret(
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
            gst::info!(CAT, imp = self, "webhook: {}", hook.redacted_url());
            transports.push(("webhook", Box::new(hook)));
        }
        if let Some(url) = &s.mqtt_url {
            let password = tls::read_secret(
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
                keep_alive: Duration::from_secs(s.mqtt_keep_alive_s.into()),
                timeout,
                tls: tls.clone(),
                stream: s.stream.clone(),
            })
            .map_err(settings_error)?;
            gst::info!(
                CAT,
                imp = self,
                "mqtt: {}, topic {}",
                tls::redact_url(url),
                s.mqtt_topic
            );
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
            initial: Duration::from_millis(s.retry_initial_ms.into()),
            max: Duration::from_millis(s.retry_max_ms.max(s.retry_initial_ms).into()),
        };
        let mut workers = Vec::new();
        for (name, transport) in transports {
            let (spool, existing) = Spool::open(dir, name).map_err(spool_error)?;
            let dead = Spool::count(spool.dead_letter_dir());
            gst::info!(
                CAT,
                imp = self,
                "{name}: spool {} holds {} events (replayed first), {dead} in {DEAD_LETTER}",
                spool.dir().display(),
                existing.len(),
            );
            let report = self.worker_report(name, spool.dir().display().to_string());
            let worker = Worker::start(
                spool,
                existing,
                s.spool_max_events as usize,
                transport,
                backoff,
                report,
            )
            .map_err(spool_error)?;
            workers.push(Arc::new(worker));
        }
        Ok((workers, Some(lock)))
    }

    /// How a delivery worker's news reaches the bus.
    fn worker_report(&self, name: &'static str, spool_path: String) -> Report {
        let weak = self.obj().downgrade();
        Box::new(move |status: Status| {
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
                Status::Recovered { failures } => gst::info!(
                    CAT,
                    obj = element,
                    "{name}: delivering again after {failures} failed attempts"
                ),
                Status::DeadLettered { file, reason } => gst::element_warning!(
                    element,
                    gst::ResourceError::Write,
                    (
                        "{}: an event cannot be delivered and was moved to the dead-letter folder: {}",
                        name,
                        file.display()
                    ),
                    ["{}", reason]
                ),
            }
        })
    }

    fn workers(&self) -> Vec<Arc<Worker>> {
        self.state
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.network.clone())
            .unwrap_or_default()
    }

    fn flush_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.lock().unwrap().flush_timeout_ms.into())
    }

    /// Runs the rules on one frame. Returns the events and whether to warn that zones cannot
    /// be evaluated.
    fn make_events(
        state: &mut State,
        buffer: &gst::BufferRef,
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

    /// Writes one event to every sink: the spools first (durable before anything is tried),
    /// then the events file and stdout; the bus message goes into `posts`.
    fn emit(state: &mut State, event: &EventRecord, posts: &mut Vec<Post>) -> Result<(), String> {
        let json = event.to_json_line();
        state.events += 1;
        for worker in &state.network {
            let path = worker.spool().write(&event.event_id, &json).map_err(|e| {
                format!(
                    "Could not write event {} to the spool '{}': {}",
                    event.event_id,
                    worker.spool().dir().display(),
                    e
                )
            })?;
            posts.extend(
                worker
                    .enqueue(path)
                    .into_iter()
                    .map(|news| Post::Worker(worker.clone(), news)),
            );
        }
        if let Some(file) = state.events_file.as_mut() {
            let written = file.write_line(&json).map_err(|e| {
                format!(
                    "Could not write event {} to location '{}': {}",
                    event.event_id,
                    file.path().display(),
                    e
                )
            })?;
            if written == Some(Notice::Reopened) {
                posts.push(Post::Warning(format!(
                    "location '{}' was removed or renamed while running: reopened a new file there",
                    file.path().display()
                )));
            }
        }
        if state.stdout
            && let Err(e) = stdout::write_line(&json)
        {
            state.stdout = false;
            posts.push(Post::Warning(format!(
                "stdout: standard output is closed or failing ({e}); events are no longer printed, the other sinks go on"
            )));
        }
        gst::debug!(
            CAT,
            "event {} {} track {} ({} network sinks)",
            event.event_id,
            event.kind,
            event.track_id,
            state.network.len()
        );
        if state.post_messages {
            posts.push(Post::Event(Self::message(event, &json)));
        }
        Ok(())
    }

    fn post(&self, posts: Vec<Post>) {
        for post in posts {
            match post {
                Post::Warning(text) => {
                    gst::element_imp_warning!(self, gst::ResourceError::Write, ("{}", text))
                }
                Post::Worker(worker, news) => worker.report(news),
                Post::Event(structure) => {
                    let _ = self.obj().post_message(
                        gst::message::Element::builder(structure)
                            .src(&*self.obj())
                            .build(),
                    );
                }
            }
        }
    }

    /// Writes the frame log's buffered lines.
    fn flush_frame_log(&self) -> Result<(), gst::ErrorMessage> {
        let mut posts = Vec::new();
        let result = match self.state.lock().unwrap().as_mut() {
            Some(State {
                frame_log: Some(log),
                ..
            }) => match log.flush() {
                Ok(notice) => {
                    if notice == Some(Notice::Reopened) {
                        posts.push(Post::Warning(format!(
                            "frames-location '{}' was removed or renamed while running: reopened a new file there",
                            log.path().display()
                        )));
                    }
                    Ok(())
                }
                Err(e) => Err(gst::error_msg!(
                    gst::ResourceError::Write,
                    (
                        "Could not write frames-location '{}': {}",
                        log.path().display(),
                        e
                    )
                )),
            },
            _ => Ok(()),
        };
        self.post(posts);
        result
    }
}

impl BaseSinkImpl for EventSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let rules = settings.rules().map_err(settings_error)?;
        let engine = RuleEngine::new(rules).map_err(settings_error)?;
        let open_error = |what: &str, path: &std::path::Path, e: std::io::Error| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                (
                    "Could not open {} '{}' for writing: {}",
                    what,
                    path.display(),
                    e
                )
            )
        };
        let mut cut_lines = Vec::new();
        let frame_log = match &settings.frames_location {
            None => None,
            Some(path) => {
                let (log, cut) = FrameLog::open(
                    path,
                    settings.frames_append,
                    settings.frames_max_size_bytes,
                    settings.frames_max_files,
                )
                .map_err(|e| open_error("frames-location", path, e))?;
                cut_lines.push(("frames-location", path.clone(), cut));
                Some(log)
            }
        };
        let events_file = match &settings.location {
            None => None,
            Some(path) => {
                let options = Options {
                    append: true,
                    max_size_bytes: settings.max_size_bytes,
                    max_files: settings.max_files,
                    durable: true,
                };
                let (file, cut) = JsonLinesFile::open(path, options)
                    .map_err(|e| open_error("location", path, e))?;
                cut_lines.push(("location", path.clone(), cut));
                Some(file)
            }
        };
        for (what, path, cut) in cut_lines.into_iter().filter(|c| c.2 > 0) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "{} '{}' ended in a partial line (a write that was interrupted); its {} bytes were cut off",
                    what,
                    path.display(),
                    cut
                )
            );
        }
        let (network, spool_lock) = self.start_network(&settings)?;
        let has_sink = events_file.is_some()
            || settings.stdout
            || settings.post_messages
            || !network.is_empty();
        if engine.rules().is_empty() && (events_file.is_some() || !network.is_empty()) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("Event sinks are configured but no rule: set labels or rules-file")
            );
        } else if !engine.rules().is_empty() && !has_sink {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("Event rules are set but every event sink is off")
            );
        }
        let mut sinks: Vec<String> = Vec::new();
        if let Some(p) = &settings.location {
            sinks.push(format!("location {}", p.display()));
        }
        if settings.stdout {
            sinks.push("stdout".into());
        }
        if settings.post_messages {
            sinks.push("bus messages".into());
        }
        sinks.extend(
            network
                .iter()
                .map(|w| format!("{} ({} spooled)", w.name(), w.pending())),
        );
        gst::info!(
            CAT,
            imp = self,
            "started: stream {}, {} rules, sinks: [{}], frame log: {}",
            settings.stream,
            engine.rules().len(),
            sinks.join(", "),
            settings
                .frames_location
                .as_ref()
                .map_or("none".to_string(), |p| p.display().to_string())
        );
        *self.state.lock().unwrap() = Some(State {
            stream: settings.stream.clone(),
            stdout: settings.stdout,
            post_messages: settings.post_messages,
            frame_log,
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
        let timeout = self.flush_timeout();
        let deadline = Instant::now() + timeout;
        let workers = self.workers();
        for w in &workers {
            w.flush(deadline);
        }
        for w in &workers {
            let remaining = w.stop(deadline + STOP_GRACE);
            if remaining > 0 {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "{}: {} events not delivered within flush-timeout-ms ({} ms) when stopping; they stay in the spool for the next start",
                        w.name(),
                        remaining,
                        timeout.as_millis()
                    )
                );
            }
        }
        let flushed = self.flush_frame_log();
        if let Some(state) = self.state.lock().unwrap().take() {
            gst::info!(
                CAT,
                imp = self,
                "stopped after {} frames: {} events; {}",
                state.frame_count,
                state.events,
                state
                    .network
                    .iter()
                    .map(|w| format!(
                        "{}: {} delivered, {} left in the spool, {} dead-lettered",
                        w.name(),
                        w.delivered(),
                        w.pending(),
                        w.dead_lettered()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        flushed
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
        gst::debug!(
            CAT,
            imp = self,
            "frame size {}x{}",
            state.width,
            state.height
        );
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut posts = Vec::new();
        let mut error = None;
        let mut warn_zone = false;
        {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let frame = state.frame_count;
            state.frame_count += 1;
            gst::trace!(CAT, imp = self, "frame {frame}, pts {:?}", buffer.pts());
            if let Some(log) = state.frame_log.as_mut() {
                match log.write(&state.stream, frame, buffer, state.width, state.height) {
                    Ok(None) => {}
                    Ok(Some(Notice::Reopened)) => posts.push(Post::Warning(format!(
                        "frames-location '{}' was removed or renamed while running: reopened a new file there",
                        log.path().display()
                    ))),
                    Err(e) => {
                        error = Some(format!(
                            "Could not write frames-location '{}': {e}",
                            log.path().display()
                        ))
                    }
                }
            }
            if error.is_none() && !state.engine.rules().is_empty() {
                let pts_ns = buffer
                    .pts()
                    .map(|t| t.nseconds())
                    .unwrap_or(frame * FALLBACK_FRAME_NS);
                let (events, warn) = Self::make_events(state, buffer, pts_ns);
                warn_zone = warn;
                for event in &events {
                    if let Err(e) = Self::emit(state, event, &mut posts) {
                        error = Some(e);
                        break;
                    }
                }
            }
        }
        if warn_zone {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("The caps give no frame size: rules with a zone cannot match")
            );
        }
        self.post(posts);
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
                if let Err(e) = self.flush_frame_log() {
                    self.post_error_message(e);
                }
                // Give the network sinks a bounded time to deliver before EOS is reported.
                let timeout = self.flush_timeout();
                let deadline = Instant::now() + timeout;
                for w in self.workers() {
                    let n = w.flush(deadline);
                    if n > 0 {
                        gst::element_imp_warning!(
                            self,
                            gst::ResourceError::Write,
                            (
                                "{}: {} events not delivered within flush-timeout-ms ({} ms) at EOS; they stay in the spool and are retried",
                                w.name(),
                                n,
                                timeout.as_millis()
                            )
                        );
                    }
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    gst::debug!(CAT, imp = self, "flush: rule states reset");
                    state.engine.reset();
                }
            }
            _ => {}
        }
        self.parent_event(event)
    }
}
