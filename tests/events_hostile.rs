//! eventsink against hostile receivers: MQTT brokers (a fake one written here, plain TCP on
//! loopback) that never acknowledge, trickle bytes, never answer CONNECT or announce a huge
//! packet; webhooks that reject events for good; spool files that cannot be read; a spool
//! limit; secrets inside the URLs.

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
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use feed::*;
use frames::*;
use gst::prelude::*;
use http::HttpServer;
use spool::*;
use support::*;

// ---------------------------------------------------------------------------------------------
// A hostile MQTT broker

#[derive(Clone, Copy, Debug)]
enum Hostility {
    /// CONNACK, then a PINGRESP every 100 ms (and one for each PINGREQ), never a PUBACK.
    KeepAliveWithoutPuback,
    /// CONNACK, then the start of a 16 KiB packet, one byte every 100 ms.
    Trickle,
    /// Reads CONNECT and never answers.
    NoConnack,
    /// Answers CONNECT with a packet header announcing 256 MiB, then nothing.
    HugeLength,
}

struct FakeBroker {
    port: u16,
    connections: Arc<AtomicUsize>,
    publishes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl FakeBroker {
    fn start(hostility: Hostility) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let publishes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, p, s) = (connections.clone(), publishes.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        let (p, s) = (p.clone(), s.clone());
                        std::thread::spawn(move || serve_hostile(conn, hostility, &p, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            connections,
            publishes,
            stop,
            handle: Some(handle),
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn publishes(&self) -> usize {
        self.publishes.load(Ordering::SeqCst)
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The first complete MQTT packet in `bytes`: (first header byte, whole packet length).
fn next_packet(bytes: &[u8]) -> Option<(u8, usize)> {
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        let b = *bytes.get(at)?;
        len |= ((b & 0x7f) as usize) << shift;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (bytes.len() >= at + len).then_some((bytes[0], at + len))
}

fn serve_hostile(
    mut conn: TcpStream,
    hostility: Hostility,
    publishes: &AtomicUsize,
    stop: &AtomicBool,
) {
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let mut connected = false;
    while !stop.load(Ordering::SeqCst) {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        let mut out = Vec::new();
        while let Some((header, len)) = next_packet(&pending) {
            pending.drain(..len);
            match (header >> 4, hostility) {
                (1, Hostility::NoConnack) => {}
                (1, Hostility::HugeLength) => {
                    out.extend_from_slice(&[0x20, 0xff, 0xff, 0xff, 0x7f])
                }
                (1, Hostility::Trickle) => {
                    out.extend_from_slice(&[0x20, 2, 0, 0]);
                    // A PUBLISH of 16383 bytes, of which only the header comes at once.
                    out.extend_from_slice(&[0x30, 0xff, 0x7f]);
                    connected = true;
                }
                (1, _) => {
                    out.extend_from_slice(&[0x20, 2, 0, 0]);
                    connected = true;
                }
                (3, _) => {
                    publishes.fetch_add(1, Ordering::SeqCst);
                }
                (12, Hostility::KeepAliveWithoutPuback) => out.extend_from_slice(&[0xd0, 0]),
                _ => {}
            }
        }
        if connected {
            match hostility {
                Hostility::KeepAliveWithoutPuback => out.extend_from_slice(&[0xd0, 0]),
                Hostility::Trickle => out.push(b'x'),
                _ => {}
            }
        }
        if !out.is_empty() && conn.write_all(&out).is_err() {
            return;
        }
    }
}

/// those posted while the pipeline shuts down, when nobody pops the bus any more. The handler
/// reads the sink's counters on each, as an application's synchronous handler may.
/// Every warning and error posted on the pipeline's bus from now on (`message | debug`), also
/// those posted while the pipeline shuts down, when nobody pops the bus any more. The handler
/// reads the sink's counters on each, as an application's synchronous handler may.
fn watch_problems(pipeline: &gst::Pipeline) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let sink = pipeline.by_name("sink").unwrap();
    pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
        if matches!(msg.view(), gst::MessageView::Warning(_)) {
            let _ = (
                sink.property::<u64>("spooled"),
                sink.property::<u64>("dead-lettered"),
            );
        }
        let text = match msg.view() {
            gst::MessageView::Warning(w) => Some((w.error(), w.debug())),
            gst::MessageView::Error(e) => Some((e.error(), e.debug())),
            _ => None,
        };
        if let Some((error, debug)) = text {
            s.lock().unwrap().push(format!(
                "{error} | {}",
                debug.map(|d| d.to_string()).unwrap_or_default()
            ));
        }
        gst::BusSyncReply::Pass
    });
    seen
}

/// `Feed::new(properties)`, playing, with its warnings and errors watched.
fn playing(properties: &str) -> (Feed, Arc<Mutex<Vec<String>>>) {
    let feed = Feed::new(properties);
    let problems = watch_problems(&feed.pipeline);
    feed.play().unwrap();
    (feed, problems)
}

/// Sets the pipeline to NULL in another thread; panics if that does not end within the guard.
fn shut_down(pipeline: &gst::Pipeline, what: &str) {
    let (tx, rx) = mpsc::channel();
    let p = pipeline.clone();
    std::thread::spawn(move || {
        let _ = tx.send(p.set_state(gst::State::Null).is_ok());
    });
    assert_eq!(
        rx.recv_timeout(GUARD),
        Ok(true),
        "{what}: the pipeline did not reach NULL within the hang guard"
    );
}

fn shutdown_is_bounded(hostility: Hostility) {
    let broker = FakeBroker::start(hostility);
    let dir = temp_dir(&format!("events-hostile-{hostility:?}"));
    let spool = dir.join("spool");
    // One delivery attempt may take 10 minutes, far beyond the hang guard: only
    // flush-timeout-ms can end the shutdown in time.
    let (mut feed, problems) = playing(&format!(
        "labels=falling mqtt-url={} spool-dir={} timeout-ms=600000 retry-initial-ms=50 flush-timeout-ms=300",
        broker.url(),
        spool.display()
    ));
    feed.push_falls(1..=3);
    feed.wait_events(3);
    wait_until("the element to connect", || broker.connections() >= 1);
    if matches!(hostility, Hostility::KeepAliveWithoutPuback) {
        wait_until("a PUBLISH", || broker.publishes() >= 1);
    }
    let messages = feed.finish().expect("EOS");
    assert_eq!(messages.events.len(), 3);
    shut_down(&feed.pipeline, &format!("{hostility:?}"));
    assert_eq!(
        spool_files(&spool.join("mqtt")),
        3,
        "{hostility:?}: the undelivered events stay in the spool"
    );
    let problems = problems.lock().unwrap().clone();
    println!("{hostility:?}: {problems:#?}");
    assert!(
        problems
            .iter()
            .any(|w| w.contains("not delivered") && w.contains("flush-timeout-ms")),
        "{hostility:?}: a warning says that the flush deadline cut deliveries off: {problems:?}"
    );
}

#[test]
fn shutdown_ends_with_a_broker_that_keeps_alive_without_puback() {
    shutdown_is_bounded(Hostility::KeepAliveWithoutPuback);
}

#[test]
fn shutdown_ends_with_a_broker_that_trickles_bytes() {
    shutdown_is_bounded(Hostility::Trickle);
}

#[test]
fn shutdown_ends_with_a_broker_that_never_sends_connack() {
    shutdown_is_bounded(Hostility::NoConnack);
}

#[test]
fn shutdown_ends_with_a_broker_that_announces_a_huge_packet() {
    shutdown_is_bounded(Hostility::HugeLength);
}

#[test]
fn a_missing_connack_is_reported_as_a_timeout() {
    let broker = FakeBroker::start(Hostility::NoConnack);
    let dir = temp_dir("events-hostile-connack");
    let (mut feed, problems) = playing(&format!(
        "labels=falling mqtt-url={} spool-dir={} timeout-ms=300 retry-initial-ms=50 flush-timeout-ms=0",
        broker.url(),
        dir.join("spool").display()
    ));
    feed.push(&[falling(1)]);
    wait_until("a delivery warning", || {
        problems
            .lock()
            .unwrap()
            .iter()
            .any(|w| w.contains("mqtt: delivery failed"))
    });
    feed.stop();
    let problems = problems.lock().unwrap().clone();
    let warning = problems
        .iter()
        .find(|w| w.contains("mqtt: delivery failed"))
        .unwrap();
    assert!(
        warning.contains("no CONNACK") && warning.contains("300 ms"),
        "{warning}"
    );
    assert!(!warning.contains("os error"), "{warning}");
}

// ---------------------------------------------------------------------------------------------
// Dead letters and the spool limit

fn dead_letters(spool: &Path, sink: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(spool.join("dead-letter").join(sink))
        .map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn ids_of(files: &[PathBuf]) -> HashSet<String> {
    files
        .iter()
        .flat_map(|f| ids_in_lines(&std::fs::read_to_string(f).unwrap_or_default()))
        .collect()
}

#[test]
fn rejected_events_go_to_the_dead_letter_folder() {
    let server = HttpServer::start(Some(400));
    let dir = temp_dir("events-dead-letter");
    let spool = dir.join("spool");
    let (mut feed, problems) = playing(&format!(
        "labels=falling webhook-url={} spool-dir={} retry-initial-ms=20 retry-max-ms=100",
        server.url(),
        spool.display()
    ));
    // 400: rejected for good, each one moves aside and the next is tried.
    feed.push_falls(1..=3);
    wait_until("three dead letters", || {
        dead_letters(&spool, "webhook").len() == 3
    });
    // 429 and 408 are "later", not "never": retried.
    server.set_answer(Some(429));
    feed.push(&[falling(4)]);
    wait_until("two answers 429", || {
        server
            .requests()
            .iter()
            .filter(|r| r.status == Some(429))
            .count()
            >= 2
    });
    server.set_answer(Some(408));
    wait_until("two answers 408", || {
        server
            .requests()
            .iter()
            .filter(|r| r.status == Some(408))
            .count()
            >= 2
    });
    server.set_answer(Some(200));
    feed.push_falls(5..=6);
    let messages = feed.finish().unwrap();
    wait_until("the spool to empty", || {
        feed.sink.property::<u64>("spooled") == 0
    });
    assert_eq!(feed.sink.property::<u64>("dead-lettered"), 3);
    assert_eq!(feed.sink.property::<u64>("delivered"), 3);
    feed.stop();

    let json = messages.json();
    let id = |i: usize| json[i]["event_id"].as_str().unwrap().to_string();
    let rejected: HashSet<String> = (0..3).map(id).collect();
    assert_eq!(ids_of(&dead_letters(&spool, "webhook")), rejected);
    // Each was sent once, with its id, and is kept as it was: a valid event.
    for r in server.requests().iter().filter(|r| r.status == Some(400)) {
        assert_eq!(r.header("Idempotency-Key").map(String::from), r.event_id());
    }
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.status == Some(400))
            .count(),
        3
    );
    let validator = schema();
    for file in dead_letters(&spool, "webhook") {
        let event = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_valid(&validator, &event);
    }
    let delivered: HashSet<String> = server.delivered().into_iter().collect();
    assert_eq!(delivered, (3..6).map(id).collect());
    let problems = problems.lock().unwrap().clone();
    assert!(
        problems
            .iter()
            .any(|w| w.contains("dead-letter") && w.contains("400")),
        "{problems:?}"
    );
    assert_eq!(spool_files(&spool.join("webhook")), 0);
}

#[test]
fn unreadable_spool_files_go_to_the_dead_letter_folder() {
    let server = HttpServer::start(Some(200));
    let dir = temp_dir("events-unreadable-spool");
    let spool = dir.join("spool");
    let webhook = spool.join("webhook");
    std::fs::create_dir_all(&webhook).unwrap();
    // At the head of the queue: a directory where a file should be, and a truncated event.
    let bad_dir = "00000000000000000001-9b2f6a3e-0000-4000-8000-000000000001.json";
    let bad_json = "00000000000000000002-9b2f6a3e-0000-4000-8000-000000000002.json";
    std::fs::create_dir(webhook.join(bad_dir)).unwrap();
    std::fs::write(webhook.join(bad_json), "{\"event_id\": \"9b2f6a3e-").unwrap();
    let (mut feed, problems) = playing(&format!(
        "labels=falling webhook-url={} spool-dir={} retry-initial-ms=20 retry-max-ms=100",
        server.url(),
        spool.display()
    ));
    feed.push_falls(1..=2);
    let messages = feed.finish().unwrap();
    wait_until("the spool to empty", || {
        feed.sink.property::<u64>("spooled") == 0
    });
    assert_eq!(feed.sink.property::<u64>("dead-lettered"), 2);
    feed.stop();
    assert_eq!(
        server.delivered().into_iter().collect::<HashSet<_>>(),
        messages.ids()
    );
    let names: Vec<String> = dead_letters(&spool, "webhook")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec![bad_dir.to_string(), bad_json.to_string()]);
    let problems = problems.lock().unwrap().clone();
    assert!(
        problems.iter().any(|w| w.contains("dead-letter")),
        "{problems:?}"
    );
}

#[test]
fn the_spool_limit_moves_the_oldest_events_to_the_dead_letter_folder() {
    let dir = temp_dir("events-spool-limit");
    let spool = dir.join("spool");
    let down = format!("http://127.0.0.1:{}/events", free_port());
    let (mut feed, problems) = playing(&format!(
        "labels=falling webhook-url={down} spool-dir={} spool-max-events=3 retry-initial-ms=20 \
         retry-max-ms=100 flush-timeout-ms=0",
        spool.display()
    ));
    feed.push_falls(1..=5);
    let messages = feed.finish().unwrap();
    // The oldest may be in the middle of an attempt: it moves once that attempt fails.
    wait_until("two dead letters", || {
        feed.sink.property::<u64>("dead-lettered") == 2
    });
    assert_eq!(feed.sink.property::<u64>("spooled"), 3);
    feed.stop();
    let json = messages.json();
    let id = |i: usize| json[i]["event_id"].as_str().unwrap().to_string();
    assert_eq!(
        ids_of(&dead_letters(&spool, "webhook")),
        (0..2).map(id).collect()
    );
    assert_eq!(spool_files(&spool.join("webhook")), 3);
    let problems = problems.lock().unwrap().clone();
    assert!(
        problems
            .iter()
            .any(|w| w.contains("spool-max-events") && w.contains("dead-letter")),
        "{problems:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets in URLs

/// Every GStreamer log line of the process while `f` runs, with the eventsink categories at
/// the most verbose level.
fn capture_logs(f: impl FnOnce()) -> Vec<String> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    gst::log::set_active(true);
    gst::log::remove_default_log_function();
    gst::log::set_default_threshold(gst::DebugLevel::Info);
    gst::log::set_threshold_for_name("eventsink*", gst::DebugLevel::Memdump);
    let function = gst::log::add_log_function(move |cat, level, _file, _func, _line, _obj, msg| {
        l.lock().unwrap().push(format!(
            "{} {level:?} {}",
            cat.name(),
            msg.get().map(|m| m.to_string()).unwrap_or_default()
        ));
    });
    f();
    gst::log::remove_log_function(function);
    gst::log::set_default_threshold(gst::DebugLevel::None);
    lines.lock().unwrap().clone()
}

fn start_error(properties: &str) -> String {
    let feed = Feed::new(properties);
    feed.play()
        .expect_err(&format!("'{properties}' must not start"))
}

#[test]
fn url_secrets_never_show() {
    const SECRET: &str = "Qu3ry-S3cret";
    let server = HttpServer::start(Some(500));
    let dir = temp_dir("events-url-secrets");
    let url = format!(
        "http://127.0.0.1:{}/events?token={SECRET}&camera=door",
        server.port
    );
    let mut problems = Vec::new();
    let mut read_back = None;
    let logs = capture_logs(|| {
        let mut feed = Feed::new(&format!(
            "labels=falling spool-dir={} retry-initial-ms=20 flush-timeout-ms=100",
            dir.join("spool").display()
        ));
        // Set in code: GStreamer's own GST_PIPELINE category logs a parsed pipeline
        // description at INFO level, with every property in it.
        feed.sink.set_property("webhook-url", &url);
        let seen = watch_problems(&feed.pipeline);
        feed.play().unwrap();
        feed.push(&[falling(1)]);
        wait_until("two failed attempts", || server.requests().len() >= 2);
        read_back = feed.sink.property::<Option<String>>("webhook-url");
        feed.finish().unwrap();
        feed.stop();
        problems = seen.lock().unwrap().clone();
    });
    // The secret is used: the receiver gets the URL as configured.
    assert_eq!(
        server.requests()[0].target,
        format!("/events?token={SECRET}&camera=door")
    );
    assert!(
        problems
            .iter()
            .any(|w| w.contains("webhook: delivery failed")),
        "{problems:?}"
    );
    let read_back = read_back.unwrap();
    println!("read back: {read_back}\nproblems: {problems:#?}");
    assert!(
        read_back.contains("127.0.0.1") && read_back.contains("token="),
        "{read_back}"
    );
    for text in problems.iter().chain(&logs).chain([&read_back]) {
        assert!(!text.contains(SECRET), "the secret shows in: {text}");
    }
    assert!(
        logs.iter().any(|l| l.starts_with("eventsink")),
        "the eventsink categories were captured"
    );

    // User information in a URL is refused at start, without showing it.
    let spool = format!("spool-dir={}", dir.join("spool2").display());
    for (property, url) in [
        ("webhook-url", "http://alice:Us3r-S3cret@127.0.0.1:9/events"),
        ("mqtt-url", "mqtt://alice:Us3r-S3cret@127.0.0.1:1883"),
    ] {
        let err = start_error(&format!("labels=falling {property}={url} {spool}"));
        println!("{err}");
        assert!(
            err.contains(property) && err.contains("user"),
            "{property}: {err}"
        );
        assert!(!err.contains("Us3r-S3cret"), "{property}: {err}");
    }
}
