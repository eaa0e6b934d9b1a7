//! Test support for the eventsink tests: frames with pose metadata pushed through `appsrc`, the
//! event schema, a small HTTP server, and a mosquitto broker and subscriber on loopback.
#![allow(dead_code)]

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use gst::prelude::*;
use recognizer_meta::{
    Action, Keypoint, NUM_KEYPOINTS, Person, PoseMeta, PoseMetaFlags, Track, TrackState,
};

/// Hang guard of every wait in these tests (never a performance limit).
pub const GUARD: Duration = Duration::from_secs(120);
pub const FRAME_NS: u64 = 40_000_000;
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;

/// Waits until `cond` holds; panics naming `what` after the hang guard.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < GUARD, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh temporary directory for one test, removed at the end unless the test failed.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("recognizer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A tracked person with an action.
pub fn person(track: u64, label: &str, score: f32, bbox: [f32; 4]) -> Person {
    let kps = [Keypoint {
        x: (bbox[0] + bbox[2]) / 2.0,
        y: (bbox[1] + bbox[3]) / 2.0,
        score: 0.9,
    }; NUM_KEYPOINTS];
    let mut p = Person::new(bbox, 0.9, kps);
    p.set_track(Some(Track {
        id: track,
        state: TrackState::Tracked,
        age: 1,
    }));
    let class_id = if label == "falling" { 42 } else { 7 };
    p.set_action(Some(&Action {
        class_id,
        label: label.into(),
        score,
        window: 48,
        window_end_pts: None,
    }));
    p
}

/// A person standing in the middle of the frame.
pub fn falling(track: u64) -> Person {
    person(track, "falling", 0.9, [200.0, 100.0, 300.0, 400.0])
}

/// `appsrc ! eventsink` with frames pushed by the test.
pub struct Feed {
    pub pipeline: gst::Pipeline,
    pub src: gst_app::AppSrc,
    pub sink: gst::Element,
    frame: u64,
}

impl Feed {
    pub fn new(properties: &str) -> Self {
        let description = format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=25/1 \
             ! eventsink name=sink {properties}"
        );
        let pipeline = recognizer::launch(&description);
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let sink = pipeline.by_name("sink").unwrap();
        Self {
            pipeline,
            src,
            sink,
            frame: 0,
        }
    }

    /// Starts the pipeline; `Err` with the error message when the element refuses to start.
    pub fn play(&self) -> Result<(), String> {
        match self.pipeline.set_state(gst::State::Playing) {
            Ok(_) => Ok(()),
            Err(_) => Err(self
                .error()
                .unwrap_or_else(|| "state change failed without an error message".into())),
        }
    }

    fn error(&self) -> Option<String> {
        let bus = self.pipeline.bus().unwrap();
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Error(e) = msg.view() {
                return Some(format!(
                    "{} | {}",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
        }
        None
    }

    /// Pushes one frame (PTS = frame number x 40 ms) carrying `persons`.
    pub fn push(&mut self, persons: &[Person]) {
        let mut buffer = gst::Buffer::with_size(1).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(self.frame * FRAME_NS));
            b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
            PoseMeta::add(b, persons, PoseMetaFlags::default());
        }
        self.frame += 1;
        self.src.push_buffer(buffer).expect("pushing a buffer");
    }

    pub fn events(&self) -> u64 {
        self.sink.property::<u64>("events")
    }

    pub fn spooled(&self) -> u64 {
        self.sink.property::<u64>("spooled")
    }

    /// Waits until the element has generated `n` events (the pushed frames are processed).
    pub fn wait_events(&self, n: u64) {
        wait_until(&format!("{n} events generated"), || self.events() >= n);
    }

    /// Ends the stream, waits for EOS and returns the bus messages seen (events and warnings).
    pub fn finish(&self) -> Result<Messages, String> {
        self.src.end_of_stream().unwrap();
        let bus = self.pipeline.bus().unwrap();
        let mut out = Messages::default();
        loop {
            let msg = bus
                .timed_pop(gst::ClockTime::from_seconds(GUARD.as_secs()))
                .expect("EOS within the guard");
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(out),
                gst::MessageView::Error(e) => return Err(e.error().to_string()),
                gst::MessageView::Warning(w) => out.warnings.push(format!(
                    "{} | {}",
                    w.error(),
                    w.debug().map(|d| d.to_string()).unwrap_or_default()
                )),
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure().filter(|s| s.name() == "recognizer-event") {
                        out.events.push(s.to_owned());
                    }
                }
                _ => {}
            }
        }
    }

    pub fn stop(&self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[derive(Default, Debug)]
pub struct Messages {
    pub events: Vec<gst::Structure>,
    pub warnings: Vec<String>,
}

impl Messages {
    /// The `json` field of every event message, parsed.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.events
            .iter()
            .map(|s| serde_json::from_str(s.get::<&str>("json").unwrap()).unwrap())
            .collect()
    }

    pub fn ids(&self) -> HashSet<String> {
        self.events
            .iter()
            .map(|s| s.get::<String>("event-id").unwrap())
            .collect()
    }
}

/// Runs `frames` through an eventsink with `properties` and returns the events posted on the bus.
pub fn run_frames(properties: &str, frames: &[Vec<Person>]) -> Messages {
    let mut feed = Feed::new(properties);
    feed.play().unwrap();
    for f in frames {
        feed.push(f);
    }
    let messages = feed.finish().unwrap();
    feed.stop();
    messages
}

/// The published event schema.
pub fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/event.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

pub fn assert_valid(validator: &jsonschema::Validator, event: &serde_json::Value) {
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "event {event} does not match the schema: {errors:?}"
    );
}

/// Event ids of the JSON lines in `text` (lines that are not events are skipped).
pub fn ids_in_lines(text: &str) -> Vec<String> {
    text.lines()
        // A line may follow other output (e.g. the test harness's "test name ... ").
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l[l.find('{')?..]).ok())
        .filter_map(|v| v.get("event_id").and_then(|i| i.as_str()).map(String::from))
        .collect()
}

/// Spooled events (`*.json` files) in a directory of the spool.
pub fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// Every warning and error posted on the pipeline's bus from now on (`message | debug`), also
/// those posted while the pipeline shuts down, when nobody pops the bus any more. The handler
/// reads the sink's counters on each, as an application's synchronous handler may.
pub fn watch_problems(pipeline: &gst::Pipeline) -> Arc<Mutex<Vec<String>>> {
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

/// A free loopback port (the listener is closed again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// HTTP server

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200 OK.
    Ok,
    /// 500 Internal Server Error.
    Fail,
    /// Reads the request and never answers (the client times out).
    Hang,
    /// Answers with this status and an empty body.
    Status(u16),
}

#[derive(Clone, Debug)]
pub struct Request {
    /// Path and query of the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status answered, `None` when the server did not answer.
    pub status: Option<u16>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn event_id(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()?
            .get("event_id")?
            .as_str()
            .map(String::from)
    }
}

pub struct HttpServer {
    pub port: u16,
    tls: bool,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(mode: Mode) -> Self {
        Self::start_with(mode, None)
    }

    /// HTTPS with the certificate chain and key of the given PEM files.
    pub fn start_tls(mode: Mode, cert: &Path, key: &Path) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let certs = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Self::start_with(mode, Some(Arc::new(config)))
    }

    fn start_with(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, r, s) = (mode.clone(), requests.clone(), stop.clone());
        let tls_enabled = tls.is_some();
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (m, r, s, tls) = (m.clone(), r.clone(), s.clone(), tls.clone());
                        std::thread::spawn(move || {
                            conn.set_nonblocking(false).unwrap();
                            conn.set_read_timeout(Some(Duration::from_secs(10)))
                                .unwrap();
                            match tls {
                                None => serve(conn, &m, &r, &s),
                                Some(config) => {
                                    let session = rustls::ServerConnection::new(config).unwrap();
                                    serve(rustls::StreamOwned::new(session, conn), &m, &r, &s)
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            tls: tls_enabled,
            mode,
            requests,
            stop,
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/events",
            if self.tls { "https" } else { "http" },
            self.port
        )
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Event ids answered with 200, in order of arrival.
    pub fn delivered(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.status == Some(200))
            .filter_map(|r| r.event_id())
            .collect()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    conn: impl Read + Write,
    mode: &Mutex<Mode>,
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).to_string();
    let mode = *mode.lock().unwrap();
    let status = match mode {
        Mode::Ok => Some(200),
        Mode::Fail => Some(500),
        Mode::Hang => None,
        Mode::Status(code) => Some(code),
    };
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    requests.lock().unwrap().push(Request {
        target,
        headers,
        body,
        status,
    });
    match status {
        Some(code) => {
            let reason = match code {
                200 => "OK",
                400 => "Bad Request",
                408 => "Request Timeout",
                429 => "Too Many Requests",
                _ => "Internal Server Error",
            };
            let conn = reader.get_mut();
            let _ = write!(
                conn,
                "HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.flush();
        }
        None => {
            // Hold the connection without answering until the client gives up (or the test ends).
            let mut sink = [0u8; 256];
            while !stop.load(Ordering::SeqCst) {
                match reader.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        }
    }
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

impl Subscriber {
    pub fn start(broker: &Broker, topic: &str, client_id: &str, out: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .unwrap();
        let child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-t",
                topic,
                "-q",
                "1",
                "-c",
                "-i",
                client_id,
            ])
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
            let _ = Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &broker.port.to_string(),
                    "-t",
                    topic,
                    "-q",
                    "1",
                    "-m",
                    &probe,
                ])
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
