//! Network sinks: HTTP(S) webhook (ureq + rustls) and MQTT 3.1.1 publish with QoS 1 (a small
//! synchronous client over TCP or rustls), plus their TLS settings and secrets.

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

use super::delivery::Transport;

/// TLS settings shared by both network sinks.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// PEM file of trusted CA certificates; replaces the built-in Mozilla roots when set.
    pub ca_file: Option<PathBuf>,
    /// `false` disables certificate verification (testing only).
    pub verify: bool,
}

impl TlsSettings {
    fn ca_certs(&self) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("Could not read tls-ca-file '{}': {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "tls-ca-file '{}' holds no PEM certificate",
                path.display()
            ));
        }
        Ok(Some(certs))
    }
}

/// A secret from an environment variable or a file (first line, trimmed). The value is never
/// logged nor put into an error message.
pub fn read_secret(
    what: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(format!("{what}: environment variable '{var}' is not set")),
        };
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{what}: could not read '{}': {e}", path.display()))?;
        let value = text.lines().next().unwrap_or("").trim().to_string();
        if value.is_empty() {
            return Err(format!("{what}: '{}' is empty", path.display()));
        }
        return Ok(Some(value));
    }
    Ok(None)
}

fn parse_uri(what: &str, url: &str, schemes: &[&str]) -> Result<ureq::http::Uri, String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("Invalid {what} '{url}': {e}"))?;
    let scheme = uri.scheme_str().unwrap_or("");
    if !schemes.contains(&scheme) {
        return Err(format!(
            "Invalid {what} '{url}': the scheme must be {}",
            schemes.join(" or ")
        ));
    }
    if uri.host().is_none_or(|h| h.is_empty()) {
        return Err(format!("Invalid {what} '{url}': no host"));
    }
    Ok(uri)
}

// ---------------------------------------------------------------------------------------------
// Webhook

pub struct WebhookSettings {
    pub url: String,
    pub timeout: Duration,
    pub tls: TlsSettings,
    /// Header name and value (the value is secret).
    pub auth: Option<(String, String)>,
}

pub struct Webhook {
    agent: ureq::Agent,
    url: String,
    auth: Option<(String, String)>,
}

impl Webhook {
    /// Checks the settings (URL, CA file, header name) and builds the client.
    pub fn new(s: WebhookSettings) -> Result<Self, String> {
        parse_uri("webhook-url", &s.url, &["http", "https"])?;
        if let Some((name, _)) = &s.auth {
            ureq::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!("webhook-auth-header-name '{name}' is not a valid header name")
            })?;
        }
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(!s.tls.verify);
        if let Some(certs) = s.tls.ca_certs()? {
            let certs = certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(s.timeout))
            .tls_config(tls.build())
            .user_agent(concat!("recognizer-eventsink/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Self {
            agent,
            url: s.url,
            auth: s.auth,
        })
    }
}

impl Transport for Webhook {
    fn deliver(&mut self, json: &str) -> Result<(), String> {
        let event_id = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("event_id").and_then(|i| i.as_str()).map(String::from))
            .unwrap_or_default();
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &event_id)
            .header("X-Recognizer-Event-Id", &event_id);
        if let Some((name, value)) = &self.auth {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send(json) {
            Ok(mut response) => {
                let status = response.status();
                // Read the body so that the connection can be reused; its content does not matter.
                let _ = response.body_mut().read_to_vec();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP status {status}"))
                }
            }
            Err(e) => Err(format!("{}: {e}", self.url)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MQTT

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

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Connection {
    io: Box<dyn Stream>,
    last_io: Instant,
}

pub struct Mqtt {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    s: MqttSettings,
    conn: Option<Connection>,
    packet_id: u16,
}

const TOPIC_PLACEHOLDERS: [&str; 2] = ["{stream}", "{type}"];

/// The topic for one event: `{stream}` and `{type}` replaced.
pub fn expand_topic(template: &str, stream: &str, kind: &str) -> String {
    template.replace("{stream}", stream).replace("{type}", kind)
}

impl Mqtt {
    pub fn new(s: MqttSettings) -> Result<Self, String> {
        let uri = parse_uri("mqtt-url", &s.url, &["mqtt", "mqtts"])?;
        if !matches!(uri.path(), "" | "/") {
            return Err(format!(
                "Invalid mqtt-url '{}': no path expected (the topic is set by mqtt-topic)",
                s.url
            ));
        }
        let secure = uri.scheme_str() == Some("mqtts");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if secure { 8883 } else { 1883 });
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
        let tls = if secure {
            Some(Arc::new(rustls_config(&s.tls)?))
        } else {
            None
        };
        if secure {
            ServerName::try_from(host.clone())
                .map_err(|e| format!("Invalid mqtt-url '{}': {e}", s.url))?;
        }
        Ok(Self {
            host,
            port,
            tls,
            s,
            conn: None,
            packet_id: 0,
        })
    }

    fn connect(&mut self) -> Result<Connection, String> {
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("{}:{}: {e}", self.host, self.port))?
            .collect();
        let mut last_err = format!("{}:{}: no address", self.host, self.port);
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.s.timeout) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last_err = format!("{addr}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last_err)?;
        tcp.set_read_timeout(Some(self.s.timeout))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(self.s.timeout))
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| e.to_string())?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS: {e}"))?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
        };
        let mut conn = Connection {
            io,
            last_io: Instant::now(),
        };
        let connect = connect_packet(&self.s);
        conn.io
            .write_all(&connect)
            .and_then(|_| conn.io.flush())
            .map_err(|e| format!("MQTT CONNECT: {e}"))?;
        let (kind, body) = read_packet(&mut conn.io).map_err(|e| format!("MQTT CONNACK: {e}"))?;
        if kind >> 4 != 2 || body.len() != 2 {
            return Err(format!(
                "MQTT: expected CONNACK, got packet type {}",
                kind >> 4
            ));
        }
        match body[1] {
            0 => Ok(conn),
            1 => Err("MQTT broker refused the connection: unacceptable protocol version".into()),
            2 => Err("MQTT broker refused the connection: client id rejected".into()),
            3 => Err("MQTT broker refused the connection: server unavailable".into()),
            4 => Err("MQTT broker refused the connection: bad user name or password".into()),
            5 => Err("MQTT broker refused the connection: not authorised".into()),
            rc => Err(format!(
                "MQTT broker refused the connection (return code {rc})"
            )),
        }
    }

    fn publish(
        &mut self,
        conn: &mut Connection,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), String> {
        self.packet_id = self.packet_id.wrapping_add(1).max(1);
        let id = self.packet_id;
        let mut body = Vec::with_capacity(topic.len() + payload.len() + 4);
        put_str(&mut body, topic);
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(payload);
        let packet = packet(0x32, &body); // PUBLISH, QoS 1
        conn.io
            .write_all(&packet)
            .and_then(|_| conn.io.flush())
            .map_err(|e| format!("MQTT PUBLISH: {e}"))?;
        loop {
            let (kind, body) =
                read_packet(&mut conn.io).map_err(|e| format!("MQTT PUBACK: {e}"))?;
            conn.last_io = Instant::now();
            if kind >> 4 == 4 && body.len() >= 2 && u16::from_be_bytes([body[0], body[1]]) == id {
                return Ok(());
            }
            // Anything else (a PINGRESP, a stale PUBACK): keep waiting, within the read timeout.
        }
    }
}

impl Transport for Mqtt {
    fn deliver(&mut self, json: &str) -> Result<(), String> {
        let kind = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
            .unwrap_or_default();
        let topic = expand_topic(&self.s.topic, &self.s.stream, &kind);
        // A connection idle for longer than the keep-alive may have been dropped by the broker.
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.last_io.elapsed() >= self.s.keep_alive)
        {
            self.idle();
        }
        let reused = self.conn.is_some();
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        let mut result = self.publish(&mut conn, &topic, json.as_bytes());
        if result.is_err() && reused {
            // The broker may have dropped the kept connection: one more try on a fresh one.
            conn = self.connect()?;
            result = self.publish(&mut conn, &topic, json.as_bytes());
        }
        if result.is_ok() {
            self.conn = Some(conn);
        }
        result
    }

    fn idle(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = conn
                .io
                .write_all(&[0xE0, 0x00])
                .and_then(|_| conn.io.flush()); // DISCONNECT
        }
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn connect_packet(s: &MqttSettings) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, "MQTT");
    body.push(4); // protocol level 3.1.1
    let mut flags = 0x02; // clean session: the spool, not the broker session, keeps what is undelivered
    if s.username.is_some() {
        flags |= 0x80;
    }
    if s.password.is_some() {
        flags |= 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&(s.keep_alive.as_secs().min(u16::MAX as u64) as u16).to_be_bytes());
    put_str(&mut body, &s.client_id);
    if let Some(u) = &s.username {
        put_str(&mut body, u);
    }
    if let Some(p) = &s.password {
        put_str(&mut body, p);
    }
    packet(0x10, &body)
}

fn read_packet(io: &mut dyn Stream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut byte = [0u8; 1];
    io.read_exact(&mut byte)?;
    let kind = byte[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        io.read_exact(&mut byte)?;
        len |= ((byte[0] & 0x7f) as usize) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad remaining length",
            ));
        }
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body)?;
    Ok((kind, body))
}

fn rustls_config(tls: &TlsSettings) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    if !tls.verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match tls.ca_certs()? {
        Some(certs) => {
            for cert in certs {
                roots.add(cert).map_err(|e| format!("tls-ca-file: {e}"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `tls-verify=false`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_encoding() {
        assert_eq!(packet(0x30, &[]), vec![0x30, 0]);
        assert_eq!(&packet(0x30, &[0; 127])[..2], &[0x30, 127]);
        assert_eq!(&packet(0x30, &[0; 128])[..3], &[0x30, 0x80, 0x01]);
        assert_eq!(&packet(0x30, &[0; 16_383])[..3], &[0x30, 0xff, 0x7f]);
        assert_eq!(&packet(0x30, &[0; 16_384])[..4], &[0x30, 0x80, 0x80, 0x01]);
        let p = packet(0x30, &[7; 300]);
        let (kind, body) = read_packet(&mut std::io::Cursor::new(p)).unwrap();
        assert_eq!((kind, body.len()), (0x30, 300));
    }

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
    fn mqtt_settings_are_checked() {
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
        assert_eq!(
            expand_topic("recognizer/{stream}/{type}", "cam0", "fall"),
            "recognizer/cam0/fall"
        );
    }

    #[test]
    fn webhook_settings_are_checked() {
        let make = |url: &str| {
            Webhook::new(WebhookSettings {
                url: url.into(),
                timeout: Duration::from_secs(1),
                tls: TlsSettings {
                    ca_file: None,
                    verify: true,
                },
                auth: None,
            })
        };
        assert!(make("https://hooks.example/path?x=1").is_ok());
        assert!(
            make("ftp://x/")
                .err()
                .unwrap()
                .contains("scheme must be http or https")
        );
        assert!(
            make("http//x")
                .err()
                .unwrap()
                .contains("Invalid webhook-url")
        );
    }

    #[test]
    fn secrets() {
        // SAFETY: this test alone uses this variable.
        unsafe { std::env::set_var("RECOGNIZER_TEST_SECRET_X", "Bearer s3cret") };
        assert_eq!(
            read_secret("a", Some("RECOGNIZER_TEST_SECRET_X"), None)
                .unwrap()
                .as_deref(),
            Some("Bearer s3cret")
        );
        let err = read_secret(
            "webhook-auth-header-env",
            Some("RECOGNIZER_TEST_UNSET_Y"),
            None,
        )
        .unwrap_err();
        assert!(err.contains("RECOGNIZER_TEST_UNSET_Y") && err.contains("not set"));
        assert!(
            read_secret("a", None, Some(Path::new("/nonexistent/secret")))
                .unwrap_err()
                .contains("/nonexistent/secret")
        );
        assert_eq!(read_secret("a", None, None).unwrap(), None);
    }
}
