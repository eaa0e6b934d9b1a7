//! Test support for recognizer-serve: the service binary started on a configuration written by
//! the test, its HTTP endpoints, a webhook receiver and an RTSP server on loopback.
#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet},
    io::Read,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// Hang guard of every wait (never a performance limit).
pub const GUARD: Duration = Duration::from_secs(300);

/// Waits until `cond` holds, polling; panics naming `what` when the guard is hit.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_until_within(GUARD, what, cond);
}

/// `wait_until` with a guard of its own (benchmarks' long runs on a loaded machine).
pub fn wait_until_within(guard: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < guard,
            "timed out after {} s waiting for {what}",
            guard.as_secs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The data directory (`RECOGNIZER_DATA`, else `../shared` beside the repository).
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("RECOGNIZER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    let dir = dir.canonicalize().expect("the data directory exists");
    assert!(dir.join("media").is_dir(), "no media/ in {}", dir.display());
    dir
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn media(name: &str) -> String {
    data_dir()
        .join("media/video")
        .join(name)
        .display()
        .to_string()
}

pub const FALLING: &str = "ntu_S002C002P003R002A043_rgb_falling.avi";
pub const DRINKING: &str = "ntu_S001C001P001R001A001_rgb_drink_water.avi";
pub const STREET: &str = "mmpose_demo_street_pedestrians_5frames.mp4";

/// `[service]` and `[pose-groups.main]` of a test's configuration.
pub fn common_toml(listen_port: u16, data: &Path) -> String {
    let data_dir = data_dir();
    format!(
        r#"[service]
listen = "127.0.0.1:{listen_port}"
data-dir = "{data}"
log-format = "json"
log-level = "info"
shutdown-timeout-s = 30
restart-initial-ms = 300
restart-max-ms = 2000
restart-jitter = 0.2

[pose-groups.main]
model-file = "{pose}"
threads = 2
"#,
        data = data.display(),
        pose = data_dir
            .join("models/pose/yolo11n-pose_dynamic.onnx")
            .display(),
    )
}

/// Writes `DIR/serve.toml`: `common_toml` (data in `DIR/data`) and `cameras`; returns its path.
pub fn write_config(dir: &Path, port: u16, cameras: &[String]) -> PathBuf {
    let file = dir.join("serve.toml");
    std::fs::write(
        &file,
        common_toml(port, &dir.join("data")) + &cameras.concat(),
    )
    .unwrap();
    file
}

/// A `[[cameras]]` table in pose group `main`, with `extra` lines (keys, then sections).
pub fn camera(id: &str, uri: &str, extra: &str) -> String {
    format!("\n[[cameras]]\nid = \"{id}\"\nuri = \"{uri}\"\npose-group = \"main\"\n{extra}")
}

/// The fall model and rule of the examples, as sections of the camera above them.
pub fn fall_sections() -> String {
    let repo = repo().canonicalize().unwrap();
    format!(
        r#"[cameras.action]
model-file = "{repo}/models/fall_stgcnpp.onnx"
labels-file = "{repo}/models/fall_stgcnpp.labels"
[[cameras.rules]]
type = "fall"
labels = ["fall"]
label-match = "contains"
min-frames = 3
"#,
        repo = repo.display()
    )
}

/// A fresh directory for one test, removed at the end unless the test failed.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("recognizer-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The service process.
pub struct Serve {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Serve {
    /// Starts `recognizer-serve --config CONFIG` with `env`, its log in `log`, and waits for
    /// its HTTP endpoints.
    pub fn start(config: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Serve {
        let stderr = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_recognizer-serve"))
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .env("RECOGNIZER_DATA", data_dir())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting recognizer-serve");
        let mut serve = Serve {
            child,
            port,
            log: log.to_path_buf(),
        };
        wait_until("the service's /live", || {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!(
                    "recognizer-serve exited with {status}: {}",
                    serve.log_text()
                );
            }
            serve.get("/live").is_some_and(|(code, _)| code == 200)
        });
        serve
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path`: status and body, `None` when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("http://127.0.0.1:{}{path}", self.port))
    }

    pub fn cameras(&self) -> serde_json::Value {
        let (_, body) = self
            .get("/api/v1/cameras")
            .expect("/api/v1/cameras answers");
        serde_json::from_str(&body).unwrap()
    }

    pub fn camera(&self, id: &str) -> serde_json::Value {
        self.cameras()["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn state(&self, id: &str) -> String {
        self.camera(id)["state"].as_str().unwrap_or("").to_string()
    }

    /// The samples of `/metrics` by series (`name{labels}` as written).
    pub fn metrics(&self) -> HashMap<String, f64> {
        let (_, text) = self.get("/metrics").expect("/metrics answers");
        parse_metrics(&text)
    }

    pub fn metric(&self, series: &str) -> f64 {
        self.metrics().get(series).copied().unwrap_or(0.0)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (within the guard) and returns its status.
    pub fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < GUARD, "recognizer-serve did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP client that returns every status as a response (and gives up after 30 s).
fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build(),
    )
}

pub fn http_get(url: &str) -> Option<(u16, String)> {
    let mut response = agent().get(url).call().ok()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().ok()?;
    Some((status, body))
}

/// POST with an empty body: status, `None` when nothing answers.
pub fn http_post(url: &str) -> Option<u16> {
    agent()
        .post(url)
        .send_empty()
        .ok()
        .map(|r| r.status().as_u16())
}

/// `name{labels} value` lines of the exposition format.
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// A webhook receiver on loopback: answers 200 and records every event id and auth header.
pub struct Receiver {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub ids: Arc<Mutex<Vec<String>>>,
    pub auth: Arc<Mutex<HashSet<String>>>,
}

impl Receiver {
    pub fn start(port: u16) -> Receiver {
        let server = Arc::new(
            tiny_http::Server::http(("127.0.0.1", port)).expect("listening for the webhook"),
        );
        let ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let auth: Arc<Mutex<HashSet<String>>> = Arc::default();
        let thread = {
            let (server, ids, auth) = (server.clone(), ids.clone(), auth.clone());
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    if let Some(h) = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization"))
                    {
                        auth.lock().unwrap().insert(h.value.to_string());
                    }
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
                        && let Some(id) = v["event_id"].as_str()
                    {
                        ids.lock().unwrap().push(id.to_string());
                    }
                    let _ = request.respond(tiny_http::Response::empty(200));
                }
            })
        };
        Receiver {
            server,
            thread: Some(thread),
            ids,
            auth,
        }
    }

    pub fn received(&self) -> HashSet<String> {
        self.ids.lock().unwrap().iter().cloned().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A live RTSP camera on loopback (a moving test pattern, H.264 over RTP), served by
/// `tests/python/rtsp_live.py` with Debian's PyGObject.
pub struct RtspCamera {
    child: Child,
    pub url: String,
}

impl RtspCamera {
    pub fn start(port: u16) -> RtspCamera {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/rtsp_live.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/bin/python3 with PyGObject (scripts/setup installs python3-gi)");
        let mut line = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0] as char);
        }
        let url = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the RTSP server did not start: '{line}'"))
            .to_string();
        RtspCamera { child, url }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A benchmark's `name=value` argument, or `default`.
pub fn bench_arg(name: &str, default: &str) -> String {
    std::env::args()
        .filter_map(|a| a.strip_prefix(&format!("{name}=")).map(String::from))
        .next()
        .unwrap_or_else(|| default.to_string())
}

/// Event ids in a JSON Lines events file.
pub fn event_ids(file: &Path) -> HashSet<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["event_id"].as_str().map(String::from))
        .collect()
}
