//! eventsink delivery, at least once, against real components started here: an HTTP server that
//! answers, fails (500) and hangs; a mosquitto broker that is down at the start, stopped and
//! restarted; a pipeline process killed with SIGKILL whose spool the next run replays; MQTT over
//! TLS with a CA of the test's own.

#[path = "support/events_feed.rs"]
mod feed;
#[path = "support/events_frames.rs"]
mod frames;
#[path = "support/events_http.rs"]
mod http;
#[path = "support/events_spool.rs"]
mod spool;
#[path = "support/events.rs"]
mod support;

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use feed::*;
use gst::prelude::*;
use http::HttpServer;
use spool::*;
use support::*;

/// Events waiting in the element's spool.
fn spooled(feed: &Feed) -> u64 {
    feed.sink.property::<u64>("spooled")
}

#[test]
fn webhook_delivers_each_event_with_the_auth_header() {
    let server = HttpServer::start(Some(200));
    let dir = temp_dir("events-webhook");
    let token = dir.join("token");
    std::fs::write(&token, "Bearer s3cr3t-t0ken\n").unwrap();
    let mut feed = Feed::new(&format!(
        "labels=falling webhook-url={} webhook-auth-header-file={} spool-dir={}",
        server.url(),
        token.display(),
        dir.join("spool").display()
    ));
    feed.play().unwrap();
    feed.push_falls(1..=10);
    let messages = feed.finish().unwrap();
    wait_until("the spool to empty", || spooled(&feed) == 0);
    assert_eq!(feed.sink.property::<u64>("delivered"), 10);
    // The property shows the file, never the secret.
    assert_eq!(
        feed.sink
            .property::<Option<String>>("webhook-auth-header-file"),
        Some(token.display().to_string())
    );
    feed.stop();

    let validator = schema();
    let requests = server.requests();
    assert_eq!(requests.len(), 10);
    let by_id = |mut events: Vec<serde_json::Value>| {
        events.sort_by_key(|e| e["event_id"].as_str().unwrap().to_string());
        events
    };
    let bodies = requests
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(
        by_id(bodies),
        by_id(messages.json()),
        "the bodies are the events"
    );
    for r in &requests {
        assert_eq!(r.target, "/events");
        assert_eq!(r.header("Authorization"), Some("Bearer s3cr3t-t0ken"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("Idempotency-Key").map(String::from), r.event_id());
        assert_valid(&validator, &serde_json::from_str(&r.body).unwrap());
    }
    assert_eq!(
        server.delivered().into_iter().collect::<HashSet<_>>(),
        messages.ids()
    );
    assert_eq!(spool_files(&dir.join("spool/webhook")), 0);
    assert!(!messages.warnings.iter().any(|w| w.contains("s3cr3t")));
}

#[test]
fn webhook_survives_errors_and_timeouts() {
    let server = HttpServer::start(Some(500));
    let dir = temp_dir("events-webhook-outage");
    let mut feed = Feed::new(&format!(
        "labels=falling webhook-url={} spool-dir={} timeout-ms=1000 retry-initial-ms=20 retry-max-ms=300 flush-timeout-ms=200",
        server.url(),
        dir.join("spool").display()
    ));
    feed.play().unwrap();
    // The server answers 500: every event waits in the spool, and the stream goes on.
    feed.push_falls(1..=10);
    feed.wait_events(10);
    wait_until("three failed attempts", || server.requests().len() >= 3);
    assert_eq!(spooled(&feed), 10);
    // Then it stops answering (the client times out), while more events come.
    server.set_answer(None);
    feed.push_falls(11..=20);
    feed.wait_events(20);
    wait_until("two unanswered attempts", || {
        server
            .requests()
            .iter()
            .filter(|r| r.status.is_none())
            .count()
            >= 2
    });
    assert_eq!(spooled(&feed), 20);
    // Back to normal: everything arrives.
    server.set_answer(Some(200));
    let messages = feed.finish().unwrap();
    wait_until("the spool to empty", || spooled(&feed) == 0);
    feed.stop();

    let generated = messages.ids();
    assert_eq!(generated.len(), 20);
    let delivered: HashSet<String> = server.delivered().into_iter().collect();
    assert_eq!(delivered, generated, "every event arrives at least once");
    let requests = server.requests();
    let (failed, hung) = (
        requests.iter().filter(|r| r.status == Some(500)).count(),
        requests.iter().filter(|r| r.status.is_none()).count(),
    );
    println!(
        "{} requests: {failed} answered 500, {hung} unanswered, {} delivered",
        requests.len(),
        server.delivered().len()
    );
    assert!(failed >= 3 && hung >= 2);
    assert!(
        messages
            .warnings
            .iter()
            .any(|w| w.contains("webhook: delivery failed")),
        "the outage is reported: {:?}",
        messages.warnings
    );
    assert_eq!(spool_files(&dir.join("spool/webhook")), 0);
}

/// Child process of `spool_replay_after_sigkill`: generates events for a webhook that is down,
/// reports their ids once they are spooled, then waits to be killed.
#[test]
fn child_process() {
    if std::env::var("EVENTSINK_TEST_CHILD").as_deref() != Ok("spool") {
        return;
    }
    let spool = std::env::var("CHILD_SPOOL_DIR").unwrap();
    let url = std::env::var("CHILD_URL").unwrap();
    let mut feed = Feed::new(&format!(
        "labels=falling webhook-url={url} webhook-auth-header-env=CHILD_TOKEN spool-dir={spool} retry-initial-ms=50"
    ));
    feed.play().unwrap();
    feed.push_falls(1..=8);
    let bus = feed.pipeline.bus().unwrap();
    let mut ids = Vec::new();
    while ids.len() < 8 {
        let msg = bus
            .timed_pop(gst::ClockTime::from_seconds(GUARD.as_secs()))
            .expect("events");
        if let gst::MessageView::Element(e) = msg.view()
            && let Some(s) = e.structure().filter(|s| s.name() == "recognizer-event")
        {
            ids.push(s.get::<String>("event-id").unwrap());
        }
    }
    println!("\nSPOOLED {}", ids.join(","));
    std::thread::sleep(GUARD);
    panic!("the child was not killed");
}

#[test]
fn spool_replay_after_sigkill() {
    let dir = temp_dir("events-sigkill");
    let spool = dir.join("spool");
    let down = format!("http://127.0.0.1:{}/events", free_port());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EVENTSINK_TEST_CHILD", "spool")
        .env("CHILD_SPOOL_DIR", &spool)
        .env("CHILD_URL", &down)
        .env("CHILD_TOKEN", "Bearer child-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut spooled_ids = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(ids) = line.strip_prefix("SPOOLED ") {
            spooled_ids = Some(ids.split(',').map(String::from).collect::<Vec<_>>());
            break;
        }
    }
    let spooled_ids = spooled_ids.expect("the child reports its events");
    child.kill().unwrap(); // SIGKILL: no flush, no clean stop
    child.wait().unwrap();
    assert_eq!(spooled_ids.len(), 8);
    assert_eq!(
        spool_files(&spool.join("webhook")),
        8,
        "every event is on disk"
    );

    // A new run with the same spool-dir: the old events go out first, then the new ones.
    let server = HttpServer::start(Some(200));
    let mut feed = Feed::new(&format!(
        "labels=falling webhook-url={} spool-dir={}",
        server.url(),
        spool.display()
    ));
    feed.play().unwrap();
    feed.push_falls(101..=103);
    let messages = feed.finish().unwrap();
    wait_until("the spool to empty", || spooled(&feed) == 0);
    feed.stop();
    let delivered = server.delivered();
    let mut first_seen: Vec<String> = Vec::new();
    for id in &delivered {
        if !first_seen.contains(id) {
            first_seen.push(id.clone());
        }
    }
    assert_eq!(first_seen.len(), 11);
    assert_eq!(
        first_seen[..8].iter().collect::<HashSet<_>>(),
        spooled_ids.iter().collect::<HashSet<_>>(),
        "replayed first"
    );
    assert_eq!(
        first_seen[8..].iter().cloned().collect::<HashSet<_>>(),
        messages.ids()
    );
    assert_eq!(spool_files(&spool.join("webhook")), 0);
    let validator = schema();
    for r in server.requests() {
        assert_valid(&validator, &serde_json::from_str(&r.body).unwrap());
    }
}

const TOPIC: &str = "recognizer/cam0/events";

fn mqtt_feed(broker: &Broker, dir: &Path, extra: &str) -> Feed {
    Feed::new(&format!(
        "labels=falling mqtt-url={} spool-dir={} timeout-ms=2000 retry-initial-ms=50 retry-max-ms=500 {extra}",
        broker.url(),
        dir.join("spool").display()
    ))
}

fn check_received(sub: &Subscriber, generated: &HashSet<String>) {
    wait_until("the subscriber to receive every event", || {
        sub.ids().is_superset(generated)
    });
    let text = sub.text();
    let received = ids_in_lines(&text);
    let distinct: HashSet<String> = received.iter().cloned().collect();
    println!(
        "{} events generated, {} messages received, {} distinct",
        generated.len(),
        received.len(),
        distinct.len()
    );
    assert_eq!(
        &distinct, generated,
        "the distinct event ids received are those generated"
    );
    let validator = schema();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        assert_valid(&validator, &serde_json::from_str(line).unwrap());
    }
}

#[test]
fn mqtt_broker_started_midway() {
    let dir = temp_dir("events-mqtt-midway");
    let mut broker = Broker::new(&dir.join("broker"));
    // The subscriber's persistent session is made first, then the broker goes down.
    broker.start();
    let sub = Subscriber::start(&broker, TOPIC, "midway-sub", &dir.join("received.txt"));
    broker.stop();

    let mut feed = mqtt_feed(&broker, &dir, "");
    feed.play().unwrap();
    feed.push_falls(1..=10);
    feed.wait_events(10);
    assert_eq!(
        spooled(&feed),
        10,
        "the broker is down: all events wait in the spool"
    );
    broker.start();
    feed.push_falls(11..=20);
    let messages = feed.finish().unwrap();
    wait_until("the spool to empty", || spooled(&feed) == 0);
    feed.stop();
    assert_eq!(messages.events.len(), 20);
    check_received(&sub, &messages.ids());
    assert_eq!(spool_files(&dir.join("spool/mqtt")), 0);
}

#[test]
fn mqtt_broker_stopped_and_restarted_during_the_run() {
    let dir = temp_dir("events-mqtt-restart");
    let mut broker = Broker::new(&dir.join("broker"));
    broker.start();
    let sub = Subscriber::start(&broker, TOPIC, "restart-sub", &dir.join("received.txt"));

    let mut feed = mqtt_feed(&broker, &dir, "mqtt-topic=recognizer/{stream}/events");
    feed.play().unwrap();
    feed.push_falls(1..=10);
    wait_until("the first events to be delivered", || {
        feed.sink.property::<u64>("delivered") >= 10
    });
    broker.stop();
    feed.push_falls(11..=20);
    feed.wait_events(20);
    assert_eq!(
        spooled(&feed),
        10,
        "the broker is down: the new events wait in the spool"
    );
    broker.start();
    feed.push_falls(21..=30);
    let messages = feed.finish().unwrap();
    wait_until("the spool to empty", || spooled(&feed) == 0);
    feed.stop();
    assert_eq!(messages.events.len(), 30);
    check_received(&sub, &messages.ids());
}

#[test]
fn webhook_over_https_verifies_the_server() {
    let dir = temp_dir("events-webhook-tls");
    make_certificates(&dir);
    let server = https_server(&dir);
    assert!(server.url().starts_with("https://"));
    let props = |extra: &str| {
        format!(
            "labels=falling webhook-url={} spool-dir={} retry-initial-ms=50 retry-max-ms=200 flush-timeout-ms=500 {extra}",
            server.url(),
            dir.join("spool").display()
        )
    };
    // Verification is on by default: the test CA is unknown, nothing is delivered.
    let mut untrusted = Feed::new(&props(""));
    untrusted.play().unwrap();
    untrusted.push_falls(1..=3);
    let first = untrusted.finish().unwrap();
    untrusted.stop();
    assert_eq!(untrusted.sink.property::<u64>("delivered"), 0);
    assert!(server.delivered().is_empty());
    assert_eq!(spool_files(&dir.join("spool/webhook")), 3);
    println!("warnings without the CA: {:?}", first.warnings);
    drop(untrusted);
    // With tls-ca-file the spooled events and the new ones arrive.
    let mut trusted = Feed::new(&props(&format!("tls-ca-file={}/ca.pem", dir.display())));
    trusted.play().unwrap();
    trusted.push_falls(4..=6);
    let second = trusted.finish().unwrap();
    wait_until("the spool to empty", || spooled(&trusted) == 0);
    trusted.stop();
    let generated: HashSet<String> = first.ids().union(&second.ids()).cloned().collect();
    assert_eq!(
        server.delivered().into_iter().collect::<HashSet<_>>(),
        generated
    );
    assert_eq!(generated.len(), 6);
}

#[test]
fn mqtt_credentials() {
    let dir = temp_dir("events-mqtt-auth");
    let mut broker = Broker::new(&dir.join("broker"));
    // The subscriber's listener stays anonymous; the element's needs a user and password.
    let auth_port = free_port();
    let passwords = dir.join("passwords");
    let out = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&passwords)
        .args(["alice", "pa55 word"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf_path = dir.join("broker/mosquitto.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    std::fs::write(
        &conf_path,
        format!(
            "per_listener_settings true\n{conf}listener {auth_port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            passwords.display()
        ),
    )
    .unwrap();
    broker.start();
    let sub = Subscriber::start(&broker, TOPIC, "auth-sub", &dir.join("received.txt"));
    let props = |password_file: &Path| {
        format!(
            "labels=falling mqtt-url=mqtt://127.0.0.1:{auth_port} mqtt-username=alice mqtt-password-file={} spool-dir={} \
             timeout-ms=2000 retry-initial-ms=50 retry-max-ms=200 flush-timeout-ms=500",
            password_file.display(),
            dir.join("spool").display()
        )
    };
    let (wrong, right) = (dir.join("wrong"), dir.join("right"));
    std::fs::write(&wrong, "not the password\n").unwrap();
    std::fs::write(&right, "pa55 word\n").unwrap();
    // A wrong password: refused, the events wait in the spool.
    let mut refused = Feed::new(&props(&wrong));
    refused.play().unwrap();
    refused.push_falls(1..=2);
    let first = refused.finish().unwrap();
    refused.stop();
    assert_eq!(refused.sink.property::<u64>("delivered"), 0);
    assert_eq!(spool_files(&dir.join("spool/mqtt")), 2);
    println!("warnings with a wrong password: {:?}", first.warnings);
    assert!(
        !first
            .warnings
            .iter()
            .any(|w| w.contains("not the password") || w.contains("pa55"))
    );
    drop(refused);
    // The right one: everything arrives.
    let mut accepted = Feed::new(&props(&right));
    accepted.play().unwrap();
    accepted.push_falls(3..=4);
    let second = accepted.finish().unwrap();
    wait_until("the spool to empty", || spooled(&accepted) == 0);
    accepted.stop();
    assert!(!second.warnings.iter().any(|w| w.contains("pa55")));
    let generated: HashSet<String> = first.ids().union(&second.ids()).cloned().collect();
    assert_eq!(generated.len(), 4);
    check_received(&sub, &generated);
}

/// An HTTPS server answering 200 with the certificate of `make_certificates`.
fn https_server(dir: &Path) -> HttpServer {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    HttpServer::start_with(Some(200), Some(std::sync::Arc::new(config)))
}

/// A CA and a server certificate for localhost / 127.0.0.1, made with the openssl command.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=recognizer test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[test]
fn mqtt_over_tls_verifies_the_broker() {
    let dir = temp_dir("events-mqtt-tls");
    make_certificates(&dir);
    let mut broker = Broker::new(&dir.join("broker"));
    // A TLS listener for the element beside the plain one of the subscriber.
    let tls_port = free_port();
    let conf_path = dir.join("broker/mosquitto.conf");
    let mut conf = std::fs::read_to_string(&conf_path).unwrap();
    conf.push_str(&format!(
        "listener {tls_port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
        dir.display()
    ));
    std::fs::write(&conf_path, conf).unwrap();
    broker.start();
    let sub = Subscriber::start(&broker, TOPIC, "tls-sub", &dir.join("received.txt"));
    let props = |extra: &str| {
        format!(
            "labels=falling mqtt-url=mqtts://localhost:{tls_port} spool-dir={} timeout-ms=2000 retry-initial-ms=50 \
             retry-max-ms=200 flush-timeout-ms=500 {extra}",
            dir.join("spool").display()
        )
    };
    // Without the test CA the broker's certificate is not trusted: nothing is delivered.
    let mut untrusted = Feed::new(&props(""));
    untrusted.play().unwrap();
    untrusted.push_falls(1..=3);
    let first = untrusted.finish().unwrap();
    untrusted.stop();
    assert_eq!(untrusted.sink.property::<u64>("delivered"), 0);
    assert_eq!(spool_files(&dir.join("spool/mqtt")), 3);
    println!("warnings without the CA: {:?}", first.warnings);
    if let Some(w) = first
        .warnings
        .iter()
        .find(|w| w.contains("mqtt: delivery failed"))
    {
        assert!(
            w.contains("certificate") || w.contains("Certificate"),
            "{w}"
        );
    }
    drop(untrusted);
    // With tls-ca-file: the spooled events and the new ones arrive.
    let mut trusted = Feed::new(&props(&format!("tls-ca-file={}/ca.pem", dir.display())));
    trusted.play().unwrap();
    trusted.push_falls(4..=6);
    let second = trusted.finish().unwrap();
    wait_until("the spool to empty", || spooled(&trusted) == 0);
    trusted.stop();
    let generated: HashSet<String> = first.ids().union(&second.ids()).cloned().collect();
    assert_eq!(generated.len(), 6);
    check_received(&sub, &generated);
}

// ---------------------------------------------------------------------------------------------
// mosquitto

/// A mosquitto broker on a loopback port with persistence in its own directory, so that a
/// subscriber's persistent session (and its queued QoS 1 messages) survives a restart.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    pub fn new(dir: &Path) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nlog_dest stderr\n",
            dir.display()
        );
        // As root, mosquitto would switch to the 'mosquitto' user, which cannot write here.
        if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0 {
            conf.push_str("user root\n");
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        Self {
            port,
            dir: dir.to_path_buf(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto (Debian package mosquitto, installed by scripts/setup)");
        self.child = Some(child);
        let port = self.port;
        wait_until("mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Stops the broker the normal way (SIGTERM: it saves its sessions and queued messages).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The shell's built-in kill (no procps needed).
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -TERM {}", child.id()))
                .status();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `mosquitto_sub` with a persistent session (QoS 1, clean session off), printing payloads to a
/// file. It reconnects by itself when the broker comes back.
pub struct Subscriber {
    child: Child,
    out: PathBuf,
}

/// A mosquitto client command for `topic` on the broker, QoS 1.
fn mosquitto_client(program: &str, broker: &Broker, topic: &str) -> Command {
    let mut command = Command::new(program);
    command.args([
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port.to_string(),
        "-t",
        topic,
        "-q",
        "1",
    ]);
    command
}

impl Subscriber {
    pub fn start(broker: &Broker, topic: &str, client_id: &str, out: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .unwrap();
        let child = mosquitto_client("mosquitto_sub", broker, topic)
            .args(["-c", "-i", client_id])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (Debian package mosquitto-clients)");
        let sub = Self {
            child,
            out: out.to_path_buf(),
        };
        // Subscribed once a probe published after the start comes through.
        let probe = format!("probe-{client_id}-{}", std::process::id());
        wait_until("the subscriber to receive a probe", || {
            let _ = mosquitto_client("mosquitto_pub", broker, topic)
                .args(["-m", &probe])
                .status();
            std::thread::sleep(Duration::from_millis(100));
            sub.text().contains(&probe)
        });
        sub
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn ids(&self) -> HashSet<String> {
        ids_in_lines(&self.text()).into_iter().collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
