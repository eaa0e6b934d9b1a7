//! The MQTT sink: each event published with QoS 1 through `rumqttc` (MQTT 3.1.1, rustls), one
//! at a time; the acknowledgement is the broker's PUBACK.
//!
//! Every attempt is bounded by the sink's timeout as a whole (connection, CONNACK, PUBACK): a
//! broker that keeps the link alive without acknowledging, trickles bytes, never answers or
//! announces a huge packet ends the attempt at that deadline, and an attempt in progress is
//! cancelled at once when the element stops. After any failure the session is dropped and the
//! next attempt starts a fresh one (clean session), so nothing is resent behind the spool's
//! back.

use std::{
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Outgoing,
    Packet, QoS, TlsConfiguration, Transport as MqttTransport,
};
use tokio::sync::Notify;

use super::{
    delivery::{Failure, Transport},
    tls::{SinkUrl, TlsSettings},
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "eventsink-mqtt",
        gst::DebugColorFlags::empty(),
        Some("eventsink: MQTT sink"),
    )
});

/// Largest packet accepted from the broker: the sink only expects acknowledgements.
const MAX_INCOMING_PACKET: usize = 4096;
/// Largest packet sent: an event is a few KiB.
const MAX_OUTGOING_PACKET: usize = 1 << 20;

pub struct MqttSettings {
    pub url: String,
    pub topic: String,
    pub client_id: String,
    pub username: Option<String>,
    /// Secret.
    pub password: Option<String>,
    pub keep_alive: Duration,
    pub timeout: Duration,
    pub tls: TlsSettings,
    pub stream: String,
}

const TOPIC_PLACEHOLDERS: [&str; 2] = ["{stream}", "{type}"];

/// The topic for one event: `{stream}` and `{type}` replaced.
pub fn expand_topic(template: &str, stream: &str, kind: &str) -> String {
    template.replace("{stream}", stream).replace("{type}", kind)
}

/// Set when the element stops: the attempt in progress ends, no new one starts.
#[derive(Default)]
struct Cancel {
    cancelled: AtomicBool,
    notify: Notify,
}

struct Session {
    client: AsyncClient,
    eventloop: EventLoop,
    connected: bool,
    last_used: Instant,
}

pub struct Mqtt {
    options: MqttOptions,
    url: SinkUrl,
    topic: String,
    stream: String,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
    session: Option<Session>,
    cancel: Arc<Cancel>,
}

enum Attempt {
    Done(Result<(), String>),
    TimedOut,
    Cancelled,
}

impl Mqtt {
    pub fn new(s: MqttSettings) -> Result<Self, String> {
        let url = SinkUrl::parse(
            "mqtt-url",
            &s.url,
            &["mqtt", "mqtts"],
            "mqtt-username and mqtt-password-env or mqtt-password-file",
        )?;
        if !matches!(url.uri.path(), "" | "/") {
            return Err(format!(
                "Invalid mqtt-url '{}': no path expected (the topic is set by mqtt-topic)",
                url.redacted
            ));
        }
        let secure = url.uri.scheme_str() == Some("mqtts");
        let port = url
            .uri
            .port_u16()
            .unwrap_or(if secure { 8883 } else { 1883 });
        let mut bare = s.topic.clone();
        for p in TOPIC_PLACEHOLDERS {
            bare = bare.replace(p, "x");
        }
        if bare.is_empty() || bare.contains(['+', '#', '{', '}', '\0']) {
            return Err(format!(
                "Invalid mqtt-topic '{}': a topic without wildcards; placeholders {}",
                s.topic,
                TOPIC_PLACEHOLDERS.join(", ")
            ));
        }
        if s.client_id.is_empty() || s.client_id.len() > 65535 {
            return Err("mqtt-client-id must not be empty".into());
        }
        let mut options = MqttOptions::new(s.client_id.clone(), url.host(), port);
        // The spool, not the broker's session, keeps what is undelivered.
        options
            .set_clean_session(true)
            .set_keep_alive(s.keep_alive)
            .set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET)
            .set_inflight(1);
        match (&s.username, &s.password) {
            (Some(user), password) => {
                options.set_credentials(user.clone(), password.clone().unwrap_or_default());
            }
            (None, Some(_)) => {
                return Err("an MQTT password needs mqtt-username".into());
            }
            (None, None) => {}
        }
        if secure {
            url.check_tls_name("mqtt-url")?;
            let config = s.tls.rustls_config()?;
            options.set_transport(MqttTransport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(config),
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("MQTT: could not start its runtime: {e}"))?;
        Ok(Self {
            options,
            url,
            topic: s.topic,
            stream: s.stream,
            timeout: s.timeout,
            runtime,
            session: None,
            cancel: Arc::default(),
        })
    }

    fn new_session(&self) -> Session {
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), 1);
        // Our own deadline bounds each attempt; rumqttc's (whole seconds) only backs it up.
        eventloop
            .network_options
            .set_connection_timeout(self.timeout.as_secs() + 1);
        Session {
            client,
            eventloop,
            connected: false,
            last_used: Instant::now(),
        }
    }

    /// One attempt on the current session (a new one if there is none), ending by `deadline`.
    fn attempt(
        &mut self,
        topic: &str,
        json: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(), String> {
        if self.cancel.cancelled.load(Ordering::SeqCst) {
            return Err("MQTT: cancelled, the element is stopping".to_string());
        }
        if self.session.is_none() {
            gst::debug!(CAT, "connecting to {}", self.url.redacted);
            self.session = Some(self.new_session());
        }
        let session = self.session.as_mut().expect("a session");
        let cancel = self.cancel.clone();
        let outcome = match session.client.try_publish(
            topic,
            QoS::AtLeastOnce,
            false,
            json.as_bytes().to_vec(),
        ) {
            Err(e) => Attempt::Done(Err(format!("MQTT: {e}"))),
            Ok(()) => self.runtime.block_on(async {
                tokio::select! {
                    result = wait_for_puback(session) => Attempt::Done(result),
                    _ = tokio::time::sleep_until(deadline) => Attempt::TimedOut,
                    _ = cancel.notify.notified() => Attempt::Cancelled,
                }
            }),
        };
        let ms = self.timeout.as_millis();
        let result = match outcome {
            Attempt::Done(result) => result,
            Attempt::TimedOut if session.connected => Err(format!(
                "MQTT: no PUBACK from the broker within {ms} ms (timeout-ms)"
            )),
            Attempt::TimedOut => Err(format!(
                "MQTT: no CONNACK from the broker within {ms} ms (timeout-ms)"
            )),
            Attempt::Cancelled => Err("MQTT: cancelled, the element is stopping".to_string()),
        };
        match &result {
            Ok(()) => session.last_used = Instant::now(),
            Err(_) => self.session = None,
        }
        result.map_err(|e| self.url.scrub(&e))
    }
}

/// Polls the connection until the PUBACK of the publish just queued.
async fn wait_for_puback(session: &mut Session) -> Result<(), String> {
    let mut packet_id = None;
    loop {
        match session.eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => session.connected = true,
            Ok(Event::Outgoing(Outgoing::Publish(id))) => packet_id = Some(id),
            Ok(Event::Incoming(Packet::PubAck(ack))) if Some(ack.pkid) == packet_id => {
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => return Err(describe(&e, session.connected)),
        }
    }
}

fn describe(e: &ConnectionError, connected: bool) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => format!(
            "MQTT broker refused the connection: {}",
            match code {
                ConnectReturnCode::RefusedProtocolVersion => "unacceptable protocol version",
                ConnectReturnCode::BadClientId => "client id rejected",
                ConnectReturnCode::ServiceUnavailable => "server unavailable",
                ConnectReturnCode::BadUserNamePassword => "bad user name or password",
                ConnectReturnCode::NotAuthorized => "not authorised",
                ConnectReturnCode::Success => "success (unexpected)",
            }
        ),
        ConnectionError::NetworkTimeout if !connected => {
            "MQTT: no CONNACK from the broker in time".to_string()
        }
        e if connected => format!("MQTT: {e}"),
        e => format!("MQTT connection: {e}"),
    }
}

impl Transport for Mqtt {
    fn deliver(&mut self, json: &str) -> Result<(), Failure> {
        let kind = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
            .unwrap_or_default();
        let topic = expand_topic(&self.topic, &self.stream, &kind);
        // Nobody polls the connection between events, so no PINGREQ goes out: one idle for
        // longer than the keep-alive may have been dropped by the broker.
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.last_used.elapsed() >= self.options.keep_alive())
        {
            self.session = None;
        }
        // One deadline for the whole delivery, a retry on a fresh session included.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let reused = self.session.is_some();
        let mut result = self.attempt(&topic, json, deadline);
        if result.is_err() && reused && tokio::time::Instant::now() < deadline {
            // The broker may have dropped the kept connection: one more try on a fresh one.
            result = self.attempt(&topic, json, deadline);
        }
        result.map_err(Failure::retry)
    }

    fn idle(&mut self) {
        if let Some(mut session) = self.session.take() {
            // DISCONNECT, politely and briefly.
            if session.client.try_disconnect().is_ok() {
                let _ = self.runtime.block_on(async {
                    tokio::time::timeout(Duration::from_millis(200), session.eventloop.poll()).await
                });
            }
        }
    }

    fn canceller(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let cancel = self.cancel.clone();
        Some(Box::new(move || {
            cancel.cancelled.store(true, Ordering::SeqCst);
            cancel.notify.notify_one();
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, topic: &str) -> MqttSettings {
        MqttSettings {
            url: url.into(),
            topic: topic.into(),
            client_id: "c".into(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            tls: TlsSettings {
                ca_file: None,
                verify: true,
            },
            stream: "cam0".into(),
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(
            Mqtt::new(settings(
                "mqtt://127.0.0.1:1883",
                "recognizer/{stream}/events"
            ))
            .is_ok()
        );
        assert!(Mqtt::new(settings("mqtts://broker.example", "a/{type}")).is_ok());
        let err = |url: &str, topic: &str| Mqtt::new(settings(url, topic)).err().unwrap();
        assert!(err("http://x", "t").contains("scheme must be mqtt or mqtts"));
        assert!(err("mqtt://", "t").contains("Invalid mqtt-url"));
        assert!(err("not a url", "t").contains("Invalid mqtt-url 'not a url'"));
        assert!(err("mqtt://x/topic", "t").contains("no path expected"));
        assert!(err("mqtt://x", "a/#").contains("Invalid mqtt-topic"));
        assert!(err("mqtt://x", "a/{camera}").contains("Invalid mqtt-topic"));
        assert!(err("mqtt://u:secret@x", "t").contains("mqtt-username"));
        assert_eq!(
            expand_topic("recognizer/{stream}/{type}", "cam0", "fall"),
            "recognizer/cam0/fall"
        );
    }

    #[test]
    fn a_refused_connection_is_an_error_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut mqtt = Mqtt::new(settings(&format!("mqtt://127.0.0.1:{port}"), "t")).unwrap();
        let err = mqtt.deliver("{\"type\":\"fall\"}").unwrap_err();
        assert!(
            err.message.starts_with("MQTT connection: "),
            "{}",
            err.message
        );
        assert!(!err.permanent);
    }

    #[test]
    fn stopping_cancels_an_attempt_in_progress() {
        // A broker that accepts and never answers; the attempt's own timeout is 10 minutes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = std::thread::spawn(move || listener.accept().map(|(conn, _)| conn));
        let mut s = settings(&format!("mqtt://127.0.0.1:{port}"), "t");
        s.timeout = Duration::from_secs(600);
        let mut mqtt = Mqtt::new(s).unwrap();
        let cancel = mqtt.canceller().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(mqtt.deliver("{\"type\":\"fall\"}"));
        });
        std::thread::sleep(Duration::from_millis(200));
        cancel();
        // Hang guard only: without the cancellation this would take the 10 minutes.
        let result = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("deliver returned");
        let err = result.unwrap_err();
        assert!(err.message.contains("cancelled"), "{}", err.message);
    }
}
