//! The service's TOML configuration: parsing, `[defaults]` merged into every camera, paths
//! resolved, and errors that name the file, line, column and key.
//!
//! Element settings are kept as the user wrote them (`Option`s): the service sets only the
//! properties a user set, so the elements' own defaults apply otherwise and are not repeated
//! here. Values are range-checked by the elements themselves when the pipelines are built
//! (`--check` builds them too).

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    ops::Range,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

/// One configuration error: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, 0 when the error has no place in the file (e.g. unreadable).
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `cameras[1].pose.model-file`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All errors of one configuration file, one per line when printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

// ---------------------------------------------------------------------------------------------
// The file's shape (what serde reads). Unknown keys are errors everywhere.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    #[serde(default)]
    service: ServiceSection,
    #[serde(default)]
    pose_groups: BTreeMap<String, PoseSession>,
    /// Checked like a camera, then merged key by key into every camera (before parsing).
    #[serde(default)]
    defaults: Option<CameraSection>,
    #[serde(default)]
    cameras: Vec<CameraSection>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    #[default]
    Auto,
    Json,
    Text,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
struct ServiceSection {
    listen: String,
    data_dir: String,
    log_format: LogFormat,
    log_level: String,
    shutdown_timeout_s: u32,
    restart_initial_ms: u32,
    restart_max_ms: u32,
    restart_jitter: f64,
    healthy_after_s: u32,
}

impl Default for ServiceSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            data_dir: "/var/lib/recognizer".into(),
            log_format: LogFormat::Auto,
            log_level: "info".into(),
            shutdown_timeout_s: 20,
            restart_initial_ms: 1000,
            restart_max_ms: 60_000,
            restart_jitter: 0.2,
            healthy_after_s: 30,
        }
    }
}

/// Settings of one pose model session (`rtmopose`), shared by the cameras of a pose group.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PoseSession {
    pub model_file: Option<String>,
    pub model_format: Option<String>,
    pub device: Option<String>,
    pub fallback_to_cpu: Option<bool>,
    pub threads: Option<u32>,
    pub max_batch: Option<u32>,
    pub batch_timeout_us: Option<u32>,
}

/// A camera's `rtmopose` settings: its own session's (without a pose group), and the decoding
/// of its frames. (serde's `flatten` cannot be combined with `deny_unknown_fields`, hence the
/// session keys repeated here.)
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PoseSection {
    pub model_file: Option<String>,
    pub model_format: Option<String>,
    pub device: Option<String>,
    pub fallback_to_cpu: Option<bool>,
    pub threads: Option<u32>,
    pub max_batch: Option<u32>,
    pub batch_timeout_us: Option<u32>,
    pub score_threshold: Option<f64>,
    pub nms_threshold: Option<f64>,
    pub max_persons: Option<u32>,
}

impl PoseSession {
    /// Whether `key` is a session key (set on the pose group, not the camera).
    pub fn has_key(key: &str) -> bool {
        matches!(
            key,
            "model-file"
                | "model-format"
                | "device"
                | "fallback-to-cpu"
                | "threads"
                | "max-batch"
                | "batch-timeout-us"
        )
    }
}

impl PoseSection {
    pub fn session(&self) -> PoseSession {
        PoseSession {
            model_file: self.model_file.clone(),
            model_format: self.model_format.clone(),
            device: self.device.clone(),
            fallback_to_cpu: self.fallback_to_cpu,
            threads: self.threads,
            max_batch: self.max_batch,
            batch_timeout_us: self.batch_timeout_us,
        }
    }

    fn set_session(&mut self, s: PoseSession) {
        self.model_file = s.model_file;
        self.model_format = s.model_format;
        self.device = s.device;
        self.fallback_to_cpu = s.fallback_to_cpu;
        self.threads = s.threads;
        self.max_batch = s.max_batch;
        self.batch_timeout_us = s.batch_timeout_us;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrackerSection {
    pub track_thresh: Option<f64>,
    pub low_thresh: Option<f64>,
    pub match_thresh: Option<f64>,
    pub track_buffer: Option<u32>,
    pub min_box_area: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ActionSection {
    pub model_file: Option<String>,
    pub labels_file: Option<String>,
    pub window: Option<u32>,
    pub stride: Option<u32>,
    pub min_frames: Option<u32>,
    pub score_threshold: Option<f64>,
    pub device: Option<String>,
    pub fallback_to_cpu: Option<bool>,
    pub threads: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventsSection {
    pub location: Option<String>,
    pub max_size_bytes: Option<u64>,
    pub max_files: Option<u32>,
    pub frames_location: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_auth_header_name: Option<String>,
    pub webhook_auth_header_env: Option<String>,
    pub webhook_auth_header_file: Option<String>,
    pub mqtt_url: Option<String>,
    pub mqtt_topic: Option<String>,
    pub mqtt_client_id: Option<String>,
    pub mqtt_username: Option<String>,
    pub mqtt_password_env: Option<String>,
    pub mqtt_password_file: Option<String>,
    pub mqtt_keep_alive_s: Option<u32>,
    pub tls_ca_file: Option<String>,
    pub tls_verify: Option<bool>,
    pub spool_dir: Option<String>,
    pub timeout_ms: Option<u32>,
    pub retry_initial_ms: Option<u32>,
    pub retry_max_ms: Option<u32>,
    pub flush_timeout_ms: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecordingSection {
    pub dir: Option<String>,
    pub segment_s: Option<u32>,
    pub overlay: Option<bool>,
    pub bitrate_kbps: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RtspTransport {
    Tcp,
    Udp,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceSection {
    pub rtsp_transport: Option<RtspTransport>,
    pub latency_ms: Option<u32>,
    pub timeout_s: Option<u32>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    /// Drop the oldest frames when the pose model falls behind (default: on for live sources).
    pub leaky: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AtEnd {
    /// Start the camera again (immediately for a file, after the backoff for a live source).
    Restart,
    /// The camera is done (`finished`).
    Stop,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CameraSection {
    id: Option<String>,
    uri: Option<String>,
    enabled: Option<bool>,
    at_end: Option<AtEnd>,
    expected_fps: Option<f64>,
    stall_timeout_s: Option<u32>,
    start_timeout_s: Option<u32>,
    interval: Option<u32>,
    adaptive_interval: Option<u32>,
    pose_group: Option<String>,
    pose: Option<PoseSection>,
    tracker: Option<TrackerSection>,
    action: Option<ActionSection>,
    rules: Option<Vec<toml::Table>>,
    events: Option<EventsSection>,
    recording: Option<RecordingSection>,
    source: Option<SourceSection>,
}

// ---------------------------------------------------------------------------------------------
// The resolved configuration the service runs.

/// Global settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSettings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: tracing::Level,
    pub shutdown_timeout: Duration,
    pub restart_initial: Duration,
    pub restart_max: Duration,
    pub restart_jitter: f64,
    /// A camera that ran this long since its last start has its backoff reset.
    pub healthy_after: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    File,
    Rtsp,
    Http,
}

impl SourceKind {
    pub fn is_live(self) -> bool {
        !matches!(self, SourceKind::File)
    }
}

/// One rule table as written, with the line it starts on (for errors found by `eventsink`).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTable {
    pub table: toml::Table,
    pub line: usize,
    pub key: String,
}

/// Everything about one camera.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraConfig {
    pub id: String,
    pub uri: String,
    pub kind: SourceKind,
    pub enabled: bool,
    pub at_end: AtEnd,
    pub expected_fps: Option<f64>,
    pub stall_timeout: Duration,
    pub start_timeout: Duration,
    pub interval: Option<u32>,
    /// `rtmopose adaptive-interval`: the largest interval a live camera may fall back to.
    pub adaptive_interval: Option<u32>,
    /// The `session-group` shared with the other cameras of the group, if any.
    pub pose_group: Option<String>,
    pub pose: PoseSection,
    pub tracker: TrackerSection,
    pub action: Option<ActionSection>,
    pub rules: Vec<RuleTable>,
    pub events: EventsSection,
    pub recording: Option<RecordingSection>,
    pub source: SourceSection,
    /// Where the camera is in the file (`cameras[i]`, its line).
    pub key: String,
    pub line: usize,
}

impl CameraConfig {
    /// Drop the oldest frames when the pose model falls behind: on by default for live sources,
    /// which do not wait.
    pub fn leaky(&self) -> bool {
        self.source.leaky.unwrap_or(self.kind.is_live())
    }

    /// The camera's working directory under the data directory (rules file, default spool).
    pub fn work_dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join("cameras").join(&self.id)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub file: PathBuf,
    /// The file's text, to place errors found later (`--check` building the pipelines).
    pub text: String,
    pub service: ServiceSettings,
    pub cameras: Vec<CameraConfig>,
}

// ---------------------------------------------------------------------------------------------

/// The file's text and its parsed tree, for errors pointing into it.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    root: &'a Spanned<DeTable<'a>>,
}

impl Source<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn error_at(&self, span: Option<Range<usize>>, key: &str, message: String) -> ConfigError {
        let (line, column) = span.map_or((0, 0), |s| self.position(s.start));
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message,
        }
    }

    /// An error about `path` (e.g. `["cameras", "1", "pose", "model-file"]`), placed at the
    /// value when the file has it, else at the closest table that does.
    fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        let mut span = Some(self.root.span());
        let mut value: Option<&DeValue> = None;
        let mut table: Option<&DeTable> = Some(self.root.get_ref());
        for part in path {
            let next = match (table, value) {
                (Some(t), _) => t.get(*part),
                (None, Some(DeValue::Array(a))) => {
                    part.parse::<usize>().ok().and_then(|i| a.get(i))
                }
                _ => None,
            };
            let Some(next) = next else { break };
            span = Some(next.span());
            value = Some(next.get_ref());
            table = next.get_ref().as_table();
        }
        self.error_at(span, &key_path(path), message.into())
    }
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

/// `["cameras", "1", "pose"]` -> `cameras[1].pose`.
fn key_path(path: &[&str]) -> String {
    let mut out = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// `[defaults]` merged into one camera's table: keys the camera lacks are taken from the
/// defaults, tables are merged key by key, anything else (values, arrays such as `rules`) that
/// the camera sets replaces the default. Values keep their spans, so an error in a default
/// points at the `[defaults]` line.
fn merge_defaults<'a>(camera: &mut DeTable<'a>, defaults: &DeTable<'a>) {
    for (key, value) in defaults.iter() {
        match camera.get_mut(key.get_ref().as_ref()) {
            None => {
                camera.insert(key.clone(), value.clone());
            }
            Some(mine) => {
                if let (DeValue::Table(mine), DeValue::Table(theirs)) =
                    (mine.get_mut(), value.get_ref())
                {
                    merge_defaults(mine, theirs);
                }
            }
        }
    }
}

/// Expands `${NAME}` and `${NAME:-default}` from the environment.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed '${{' in '{text}'"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("'${{{inner}}}' is not a variable name"));
        }
        match (std::env::var(name).ok().filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-default}} for a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A camera id: used in metric labels, directory names and log fields.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 63 {
        return Err(format!("'{id}' must be 1 to 63 characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || id.starts_with('.')
    {
        return Err(format!(
            "'{id}' may hold only ASCII letters, digits, '-', '_' and '.' (not first)"
        ));
    }
    Ok(())
}

/// Reads and checks a configuration file.
pub fn load(file: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the configuration: {e}"),
        }])
    })?;
    parse(file, &text)
}

/// The parsed file with `[defaults]` merged into every camera (before serde sees them).
fn merged_tree(text: &str) -> Result<Spanned<DeTable<'_>>, toml::de::Error> {
    let mut root = DeTable::parse(text)?;
    let defaults = root
        .get_ref()
        .get("defaults")
        .and_then(|d| d.get_ref().as_table().cloned());
    if let (Some(defaults), Some(cameras)) = (defaults, root.get_mut().get_mut("cameras"))
        && let DeValue::Array(cameras) = cameras.get_mut()
    {
        for camera in cameras.iter_mut() {
            if let DeValue::Table(camera) = camera.get_mut() {
                merge_defaults(camera, &defaults);
            }
        }
    }
    Ok(root)
}

impl Config {
    /// The line of the value at `path` (e.g. `["cameras", "0", "pose", "threads"]`), or of the
    /// closest table holding it.
    pub fn line_of(&self, path: &[String]) -> Option<usize> {
        let root = merged_tree(&self.text).ok()?;
        let source = Source {
            file: &self.file,
            text: &self.text,
            root: &root,
        };
        Some(source.error(&refs(path), "").line).filter(|&l| l > 0)
    }
}

/// `cameras[1].pose` from its parts.
pub fn key_path_of(path: &[String]) -> String {
    key_path(&refs(path))
}

/// Checks a configuration given as text; `file` names it in errors and anchors relative paths.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let position_error = |span: Option<Range<usize>>, key: String, message: String| {
        let (line, column) = span.map_or((0, 0), |s| {
            let before = &text[..s.start.min(text.len())];
            (
                before.matches('\n').count() + 1,
                before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            )
        });
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key,
            message,
        }])
    };
    let root = merged_tree(text)
        .map_err(|e| position_error(e.span(), String::new(), e.message().to_string()))?;
    let raw: RawFile = serde_path_to_error::deserialize(toml::de::Deserializer::from(root.clone()))
        .map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let key = if key == "." { String::new() } else { key };
            position_error(inner.span(), key, inner.message().to_string())
        })?;
    let source = Source {
        file,
        text,
        root: &root,
    };
    resolve(&source, raw).map_err(ConfigErrors)
}

/// Paths the element reads, relative to the configuration file's directory.
fn input_path(base: &Path, value: &mut Option<String>) -> Result<(), String> {
    if let Some(v) = value.as_mut() {
        let expanded = expand_env(v)?;
        let path = base.join(&expanded);
        if !path.is_file() {
            return Err(format!("'{}' is not a readable file", path.display()));
        }
        *v = path.display().to_string();
    }
    Ok(())
}

/// Paths the element writes, relative to the data directory.
fn output_path(data_dir: &Path, value: &mut Option<String>) -> Result<(), String> {
    if let Some(v) = value.as_mut() {
        *v = data_dir.join(expand_env(v)?).display().to_string();
    }
    Ok(())
}

/// A camera's URI: a URI with a scheme, or a file path (relative to the configuration file).
fn camera_uri(base: &Path, value: &str) -> Result<(String, SourceKind), String> {
    let value = expand_env(value)?;
    let scheme = value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let kind = match scheme.as_deref() {
        Some("file") => SourceKind::File,
        Some("rtsp" | "rtsps" | "rtspt") => SourceKind::Rtsp,
        Some("http" | "https") => SourceKind::Http,
        Some(other) => {
            return Err(format!(
                "scheme '{other}://' is not supported (file://, rtsp://, rtsps://, http://, https://, or a file path)"
            ));
        }
        None => {
            let path = base.join(&value);
            if !path.is_file() {
                return Err(format!("'{}' is not a readable file", path.display()));
            }
            let path = path.canonicalize().map_err(|e| e.to_string())?;
            let uri = glib::filename_to_uri(&path, None)
                .map_err(|e| format!("'{}': {e}", path.display()))?;
            return Ok((uri.to_string(), SourceKind::File));
        }
    };
    if kind == SourceKind::File {
        let path = glib::filename_from_uri(&value)
            .map_err(|e| format!("'{value}' is not a file URI: {e}"))?
            .0;
        if !path.is_file() {
            return Err(format!("'{}' is not a readable file", path.display()));
        }
    }
    Ok((value, kind))
}

fn resolve(source: &Source, raw: RawFile) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let base = source
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let s = &raw.service;
    let data_dir = match expand_env(&s.data_dir) {
        Ok(d) => base.join(d),
        Err(e) => {
            errors.push(source.error(&["service", "data-dir"], e));
            PathBuf::new()
        }
    };
    let log_level = match s.log_level.parse::<tracing::Level>() {
        Ok(l) => l,
        Err(_) => {
            errors.push(source.error(
                &["service", "log-level"],
                format!(
                    "'{}' is not one of error, warn, info, debug, trace",
                    s.log_level
                ),
            ));
            tracing::Level::INFO
        }
    };
    if s.listen.parse::<std::net::SocketAddr>().is_err() {
        errors.push(source.error(
            &["service", "listen"],
            format!("'{}' is not an address:port (e.g. 0.0.0.0:9464)", s.listen),
        ));
    }
    if !(0.0..=1.0).contains(&s.restart_jitter) {
        errors.push(source.error(
            &["service", "restart-jitter"],
            "must be between 0 and 1 (a fraction of the delay)",
        ));
    }
    if s.restart_initial_ms == 0 || s.restart_max_ms < s.restart_initial_ms {
        errors.push(source.error(
            &["service", "restart-max-ms"],
            "restart-initial-ms must be > 0 and restart-max-ms >= restart-initial-ms",
        ));
    }
    let service = ServiceSettings {
        listen: s.listen.clone(),
        data_dir: data_dir.clone(),
        log_format: s.log_format,
        log_level,
        shutdown_timeout: Duration::from_secs(s.shutdown_timeout_s.into()),
        restart_initial: Duration::from_millis(s.restart_initial_ms.into()),
        restart_max: Duration::from_millis(s.restart_max_ms.into()),
        restart_jitter: s.restart_jitter,
        healthy_after: Duration::from_secs(s.healthy_after_s.into()),
    };

    let mut groups = raw.pose_groups.clone();
    for (name, group) in groups.iter_mut() {
        if let Err(e) = check_id(name) {
            errors.push(source.error(&["pose-groups", name], format!("group name {e}")));
        }
        if group.model_file.is_none() {
            errors.push(source.error(&["pose-groups", name], "missing key `model-file`"));
        }
        if let Err(e) = input_path(&base, &mut group.model_file) {
            errors.push(source.error(&["pose-groups", name, "model-file"], e));
        }
    }
    if let Some(defaults) = &raw.defaults {
        for key in ["id", "uri"] {
            let set = if key == "id" {
                defaults.id.is_some()
            } else {
                defaults.uri.is_some()
            };
            if set {
                errors.push(source.error(
                    &["defaults", key],
                    format!("`{key}` belongs to each camera, not to [defaults]"),
                ));
            }
        }
    }

    let mut cameras = Vec::new();
    let mut ids = HashSet::new();
    for (i, camera) in raw.cameras.into_iter().enumerate() {
        let index = i.to_string();
        let at = |key: &[&'static str]| -> Vec<String> {
            ["cameras", index.as_str()]
                .iter()
                .chain(key)
                .map(|s| s.to_string())
                .collect()
        };
        let mut err = |key: &[&'static str], message: String| {
            errors.push(source.error(&refs(&at(key)), message))
        };
        let camera_key = key_path(&refs(&at(&[])));
        let line = source.error(&refs(&at(&[])), "").line;
        let Some(id) = camera.id.clone() else {
            err(&[], "missing key `id`".into());
            continue;
        };
        if let Err(e) = check_id(&id) {
            err(&["id"], format!("camera id {e}"));
        }
        if !ids.insert(id.clone()) {
            err(&["id"], format!("camera id '{id}' is used twice"));
        }
        let (uri, kind) = match camera.uri.as_deref().map(|u| camera_uri(&base, u)) {
            None => {
                err(&[], "missing key `uri`".into());
                continue;
            }
            Some(Err(e)) => {
                err(&["uri"], e);
                (String::new(), SourceKind::File)
            }
            Some(Ok(v)) => v,
        };
        let mut pose = camera.pose.clone().unwrap_or_default();
        if let Some(group) = &camera.pose_group {
            match groups.get(group) {
                None => err(
                    &["pose-group"],
                    format!(
                        "no [pose-groups.{group}] (groups: {})",
                        groups.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(settings) => {
                    if pose.session() != PoseSession::default() {
                        err(
                            &["pose"],
                            format!(
                                "model and session keys (model-file, model-format, device, fallback-to-cpu, threads, max-batch, batch-timeout-us) belong to [pose-groups.{group}] for a camera of that group"
                            ),
                        );
                    }
                    pose.set_session(settings.clone());
                }
            }
        } else {
            if pose.model_file.is_none() {
                err(
                    &["pose"],
                    "missing key `model-file` (or set `pose-group`)".into(),
                );
            }
            if let Err(e) = input_path(&base, &mut pose.model_file) {
                err(&["pose", "model-file"], e);
            }
        }
        let mut action = camera.action.clone();
        if let Some(a) = action.as_mut() {
            if a.model_file.is_none() {
                err(&["action"], "missing key `model-file`".into());
            }
            if let Err(e) = input_path(&base, &mut a.model_file) {
                err(&["action", "model-file"], e);
            }
            if let Err(e) = input_path(&base, &mut a.labels_file) {
                err(&["action", "labels-file"], e);
            }
        }
        let rules: Vec<RuleTable> = camera
            .rules
            .clone()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(r, table)| {
                let mut path = at(&["rules"]);
                path.push(r.to_string());
                let e = source.error(&refs(&path), "");
                RuleTable {
                    table,
                    line: e.line,
                    key: e.key,
                }
            })
            .collect();
        if !rules.is_empty() && action.is_none() {
            err(
                &["rules"],
                "rules need an [action] model whose labels they match".into(),
            );
        }
        let mut events = camera.events.clone().unwrap_or_default();
        for (key, value) in [
            (
                "webhook-auth-header-file",
                &mut events.webhook_auth_header_file,
            ),
            ("mqtt-password-file", &mut events.mqtt_password_file),
            ("tls-ca-file", &mut events.tls_ca_file),
        ] {
            if let Err(e) = input_path(&base, value) {
                err(&["events", key], e);
            }
        }
        for (key, value) in [
            ("location", &mut events.location),
            ("frames-location", &mut events.frames_location),
            ("spool-dir", &mut events.spool_dir),
        ] {
            if let Err(e) = output_path(&data_dir, value) {
                err(&["events", key], e);
            }
        }
        if (events.webhook_url.is_some() || events.mqtt_url.is_some()) && events.spool_dir.is_none()
        {
            // Undelivered events must survive a restart: each camera gets its own spool.
            events.spool_dir = Some(data_dir.join("spool").join(&id).display().to_string());
        }
        for (key, value) in [
            ("webhook-auth-header-env", &events.webhook_auth_header_env),
            ("mqtt-password-env", &events.mqtt_password_env),
        ] {
            if let Some(name) = value
                && std::env::var_os(name).is_none()
            {
                err(
                    &["events", key],
                    format!("environment variable {name} is not set"),
                );
            }
        }
        // eventsink waits flush-timeout-ms at EOS and again when stopping: both must fit in the
        // shutdown deadline, or SIGTERM would cut the flush short.
        let flush = Duration::from_millis(events.flush_timeout_ms.unwrap_or(5000).into());
        if flush * 2 >= service.shutdown_timeout {
            err(
                &["events", "flush-timeout-ms"],
                format!(
                    "twice the flush timeout ({} ms) must be below service.shutdown-timeout-s ({} s)",
                    flush.as_millis(),
                    service.shutdown_timeout.as_secs()
                ),
            );
        }
        let mut recording = camera.recording.clone();
        if let Some(r) = recording.as_mut() {
            if r.dir.is_none() {
                err(&["recording"], "missing key `dir`".into());
            }
            if let Err(e) = output_path(&data_dir, &mut r.dir) {
                err(&["recording", "dir"], e);
            }
        }
        let mut src = camera.source.clone().unwrap_or_default();
        if let Err(e) = input_path(&base, &mut src.password_file) {
            err(&["source", "password-file"], e);
        }
        if let Some(name) = &src.password_env
            && std::env::var_os(name).is_none()
        {
            err(
                &["source", "password-env"],
                format!("environment variable {name} is not set"),
            );
        }
        if let Some(fps) = camera.expected_fps
            && fps.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        {
            err(&["expected-fps"], "must be > 0".into());
        }
        let stall = camera.stall_timeout_s.unwrap_or(10);
        if stall == 0 {
            err(&["stall-timeout-s"], "must be at least 1".into());
        }
        cameras.push(CameraConfig {
            id,
            uri,
            kind,
            enabled: camera.enabled.unwrap_or(true),
            at_end: camera.at_end.unwrap_or(if kind.is_live() {
                AtEnd::Restart
            } else {
                AtEnd::Stop
            }),
            expected_fps: camera.expected_fps,
            stall_timeout: Duration::from_secs(stall.into()),
            start_timeout: Duration::from_secs(camera.start_timeout_s.unwrap_or(30).into()),
            interval: camera.interval,
            adaptive_interval: camera.adaptive_interval,
            pose_group: camera.pose_group.clone(),
            pose,
            tracker: camera.tracker.clone().unwrap_or_default(),
            action,
            rules,
            events,
            recording,
            source: src,
            key: camera_key,
            line,
        });
    }
    if cameras.is_empty() && errors.is_empty() {
        errors.push(source.error(&[], "no cameras (expected at least one [[cameras]] table)"));
    }
    if errors.is_empty() {
        Ok(Config {
            file: source.file.to_path_buf(),
            text: source.text.to_string(),
            service,
            cameras,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigErrors {
        parse(Path::new("/nonexistent/serve.toml"), text).unwrap_err()
    }

    /// The first error of `text`, which must be at `line` and `key`.
    fn first_error_at(text: &str, line: usize, key: &str) -> ConfigError {
        let e = err(text).0.remove(0);
        assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
        e
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = err("[service]\nlisten = \n");
        assert_eq!(e.0[0].line, 2, "{e}");
        assert!(
            e.to_string().starts_with("/nonexistent/serve.toml:2:"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_name_their_path_and_line() {
        let e = first_error_at(
            "[service]\nlisten = \"0.0.0.0:1\"\n\n[[cameras]]\nid = \"a\"\nuri = \"rtsp://x/\"\n[cameras.pose]\nthreds = 2\n",
            8,
            "cameras[0].pose.threds",
        );
        assert!(e.message.contains("unknown field `threds`"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        first_error_at(
            "[[cameras]]\nid = \"a\"\nuri = \"rtsp://x/\"\ninterval = \"two\"\n",
            4,
            "cameras[0].interval",
        );
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let e = err(
            "[[cameras]]\nid = \"a\"\nuri = \"rtsp://x/\"\n\n[[cameras]]\nid = \"a\"\nuri = \"gopher://x\"\npose-group = \"nope\"\n",
        );
        let text = e.to_string();
        let keys: Vec<_> = e.0.iter().map(|e| (e.line, e.key.clone())).collect();
        assert!(keys.contains(&(6, "cameras[1].id".into())), "{text}");
        assert!(keys.contains(&(7, "cameras[1].uri".into())), "{text}");
        assert!(
            keys.contains(&(8, "cameras[1].pose-group".into())),
            "{text}"
        );
        assert!(keys.contains(&(1, "cameras[0].pose".into())), "{text}");
    }

    #[test]
    fn defaults_are_merged_and_their_errors_point_at_them() {
        let e = first_error_at(
            "[defaults]\ninterval = 3\n[defaults.pose]\nmodel-file = \"missing.onnx\"\n\n[[cameras]]\nid = \"a\"\nuri = \"rtsp://x/\"\n",
            4,
            "cameras[0].pose.model-file",
        );
        assert!(e.message.contains("missing.onnx"), "{e}");
    }

    #[test]
    fn service_keys_left_out_take_their_defaults() {
        let e = err("[service]\nlisten = \"0.0.0.0:1\"\n");
        // Only the missing cameras are wrong, not the missing service keys.
        assert_eq!(e.0.len(), 1, "{e}");
        assert!(e.0[0].message.contains("no cameras"), "{e}");
    }

    #[test]
    fn env_expansion() {
        // SAFETY: tests of this module do not read this variable concurrently.
        unsafe { std::env::set_var("RECOGNIZER_TEST_EXPAND", "/x") };
        assert_eq!(expand_env("${RECOGNIZER_TEST_EXPAND}/a").unwrap(), "/x/a");
        assert_eq!(
            expand_env("${RECOGNIZER_TEST_UNSET_1:-d}/a").unwrap(),
            "d/a"
        );
        assert!(expand_env("${RECOGNIZER_TEST_UNSET_1}").is_err());
        assert!(expand_env("${bad name}").is_err());
    }

    #[test]
    fn ids() {
        assert!(check_id("cam-0_a.b").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("a/b").is_err());
        assert!(check_id(".a").is_err());
    }
}
