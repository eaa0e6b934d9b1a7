//! One camera's supervisor: a thread that builds, runs and watches the camera's pipeline and
//! restarts it alone, with exponential backoff, jitter and a cap, when it fails (error, stall,
//! end of a live stream). Other cameras never wait for it.
//!
//! States: `starting` (pipeline being built or started, no frame through yet), `running`,
//! `backoff` (waiting to restart after a failure; `last_error` says why), `disabled` (bad
//! configuration: retrying cannot help; fix it and reload), `finished` (a file camera that
//! ended with `at-end = "stop"`), `stopped`.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use gst::prelude::*;
use serde::Serialize;

use crate::{
    backoff::Backoff,
    config::{AtEnd, CameraConfig, ServiceSettings, SourceKind},
    logging::redact,
    metrics::Metrics,
    pipeline::{self, CameraPipeline, names},
    props,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Starting,
    Running,
    Backoff,
    Disabled,
    Finished,
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff => "backoff",
            State::Disabled => "disabled",
            State::Finished => "finished",
            State::Stopped => "stopped",
        }
    }
}

/// What `/api/v1/cameras` shows of a camera.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub id: String,
    /// The URI with any user info redacted.
    pub uri: String,
    pub state: State,
    /// Seconds in the current state.
    pub state_for_s: f64,
    pub last_error: Option<String>,
    /// Seconds until the next start, in `backoff`.
    pub retry_in_s: Option<f64>,
    pub restarts: u64,
    /// Whether the camera has passed a frame through its chain since it was configured.
    pub has_run: bool,
    pub frames_processed: u64,
    pub pose_group: Option<String>,
}

impl Status {
    /// Ready: running, or done, or waiting to restart for a reason the operator can see.
    pub fn ready(&self) -> bool {
        match self.state {
            State::Running | State::Finished | State::Stopped => true,
            State::Backoff => self.has_run || self.last_error.is_some(),
            State::Starting => self.has_run,
            State::Disabled => false,
        }
    }
}

struct Inner {
    state: State,
    since: Instant,
    last_error: Option<String>,
    retry_at: Option<Instant>,
    restarts: u64,
    has_run: bool,
}

/// The running pipeline's elements and the last values of their counters (the service's
/// counters only grow; an element's restart from 0 is not a decrease).
struct Live {
    pipeline: CameraPipeline,
    last: HashMap<String, u64>,
}

struct Shared {
    id: String,
    inner: Mutex<Inner>,
    live: Mutex<Option<Live>>,
    heartbeat_ms: AtomicU64,
    epoch: Instant,
    frames: AtomicU64,
}

enum Command {
    /// EOS, wait for the sinks to flush until the deadline, stop.
    Stop(Instant),
    /// Tear the pipeline down and start it again now (the operator asked).
    Restart,
}

/// Why `Supervisor::wait` returned.
#[derive(PartialEq)]
enum Wake {
    Stop,
    Restart,
    Timeout,
}

/// How a pipeline run ended.
enum Outcome {
    Stopped,
    Restart,
    Ended,
    Failed {
        reason: &'static str,
        message: String,
        configuration: bool,
    },
}

/// What every camera shares: metrics and the service's settings.
pub struct Context {
    pub metrics: Arc<Metrics>,
    pub settings: ServiceSettings,
}

/// A supervised camera.
pub struct Camera {
    pub config: CameraConfig,
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Camera {
    pub fn start(config: CameraConfig, context: Arc<Context>) -> Camera {
        let shared = Arc::new(Shared {
            id: config.id.clone(),
            inner: Mutex::new(Inner {
                state: State::Starting,
                since: Instant::now(),
                last_error: None,
                retry_at: None,
                restarts: 0,
                has_run: false,
            }),
            live: Mutex::new(None),
            heartbeat_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            frames: AtomicU64::new(0),
        });
        let (commands, receiver) = mpsc::channel();
        if let Some(fps) = config.expected_fps {
            context
                .metrics
                .expected_fps
                .get_or_create(&Metrics::camera(&config.id))
                .set(fps);
        }
        context.metrics.set_state(&config.id, "starting", false);
        let supervisor = Supervisor {
            config: config.clone(),
            shared: shared.clone(),
            context,
            commands: receiver,
        };
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", config.id))
            .spawn(move || supervisor.run())
            .expect("spawning a camera thread");
        Camera {
            config,
            shared,
            commands,
            thread: Some(thread),
        }
    }

    /// Restarts the camera now (from any state but stopped).
    pub fn restart(&self) {
        let _ = self.commands.send(Command::Restart);
    }

    /// Asks the camera to stop by `deadline` (EOS first, so its sinks flush).
    pub fn stop(&self, deadline: Instant) {
        let _ = self.commands.send(Command::Stop(deadline));
    }

    /// Waits for the camera's thread until `deadline`; false if it did not end in time.
    pub fn join(mut self, deadline: Instant) -> bool {
        let Some(thread) = self.thread.take() else {
            return true;
        };
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        thread.join().is_ok()
    }

    pub fn status(&self) -> Status {
        let inner = self.shared.inner.lock().unwrap();
        Status {
            id: self.config.id.clone(),
            uri: redact(&self.config.uri),
            state: inner.state,
            state_for_s: inner.since.elapsed().as_secs_f64(),
            last_error: inner.last_error.clone(),
            retry_in_s: inner
                .retry_at
                .map(|t| t.saturating_duration_since(Instant::now()).as_secs_f64()),
            restarts: inner.restarts,
            has_run: inner.has_run,
            frames_processed: self.shared.frames.load(Ordering::Relaxed),
            pose_group: self.config.pose_group.clone(),
        }
    }

    /// Time since the supervisor thread last showed it is not stuck.
    /// Finished (a file that ended) or disabled: nothing more will happen by itself.
    pub fn done(&self) -> bool {
        matches!(
            self.shared.inner.lock().unwrap().state,
            State::Finished | State::Disabled
        )
    }

    pub fn heartbeat_age(&self) -> Duration {
        let beat = Duration::from_millis(self.shared.heartbeat_ms.load(Ordering::Relaxed));
        self.shared.epoch.elapsed().saturating_sub(beat)
    }

    /// Brings the metrics read from element properties and the spool up to date.
    pub fn collect(&self, metrics: &Metrics) {
        collect(&self.shared, &self.config, metrics);
    }
}

fn collect(shared: &Shared, config: &CameraConfig, metrics: &Metrics) {
    let id = &shared.id;
    if let Some(live) = shared.live.lock().unwrap().as_mut() {
        let p = &live.pipeline;
        let mut delta = |key: &str, element: &gst::Element, prop: &str| -> u64 {
            let Some(now) = props::read_u64(element, prop) else {
                return 0;
            };
            let last = live.last.entry(key.to_string()).or_insert(0);
            let d = now.saturating_sub(*last);
            *last = now;
            d
        };
        let d = delta("pose-errors", &p.pose, props::pose::FRAME_ERRORS);
        metrics.frame_errors(id, "rtmopose", d);
        if let Some(action) = &p.action {
            let d = delta("action-errors", action, props::action::FRAME_ERRORS);
            metrics.frame_errors(id, "stgcnclassify", d);
        }
        let d = delta("delivered", &p.events, props::events::DELIVERED);
        if config.events.webhook_url.is_some() || config.events.mqtt_url.is_some() {
            metrics.deliveries(id, "all", "delivered", d);
        }
        // Per-sink counters of newer eventsinks: read-only integers named `<sink>-<result>`.
        let names: Vec<String> = p
            .events
            .list_properties()
            .iter()
            .filter(|ps| !ps.flags().contains(glib::ParamFlags::WRITABLE))
            .map(|ps| ps.name().to_string())
            .filter(|n| {
                props::events::NETWORK_SINKS
                    .iter()
                    .any(|s| n.starts_with(&format!("{s}-")))
            })
            .collect();
        for name in names {
            let d = delta(&name, &p.events, &name);
            let (sink, result) = name.split_once('-').unwrap();
            metrics.deliveries(id, sink, result, d);
        }
        let d = delta("pose-skipped", &p.pose, props::pose::FRAMES_SKIPPED);
        metrics
            .frames_skipped
            .get_or_create(&Metrics::camera(id))
            .inc_by(d);
        for (family, property) in [
            (&metrics.pose_interval, props::pose::CURRENT_INTERVAL),
            (&metrics.pose_interval_configured, props::pose::INTERVAL),
        ] {
            if let Some(interval) = props::read_u64(&p.pose, property) {
                family
                    .get_or_create(&Metrics::camera(id))
                    .set(i64::try_from(interval).unwrap_or(i64::MAX));
            }
        }
        if let Some(t) = props::read_u64(&p.tracker, props::tracker::ACTIVE_TRACKS) {
            metrics
                .active_tracks
                .get_or_create(&Metrics::camera(id))
                .set(t as i64);
        }
        for (element, name, property) in [
            (Some(&p.pose), "rtmopose", props::pose::EXECUTION_PROVIDER),
            (
                p.action.as_ref(),
                "stgcnclassify",
                props::action::EXECUTION_PROVIDER,
            ),
        ] {
            if let Some(provider) =
                element.and_then(|e| props::read_string(e, property).filter(|s| !s.is_empty()))
            {
                metrics.provider(id, name, &provider);
            }
        }
    }
    // The spool is on disk whether or not the pipeline runs.
    if let Some(spool) = &config.events.spool_dir {
        for (sink, configured) in [
            ("webhook", config.events.webhook_url.is_some()),
            ("mqtt", config.events.mqtt_url.is_some()),
        ] {
            if configured {
                metrics.spooled(id, sink, spool_count(&PathBuf::from(spool).join(sink)));
            }
        }
    }
}

/// Events waiting in one sink's spool directory (one `.json` file each).
pub fn spool_count(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count() as u64
        })
        .unwrap_or(0)
}

struct Supervisor {
    config: CameraConfig,
    shared: Arc<Shared>,
    context: Arc<Context>,
    commands: mpsc::Receiver<Command>,
}

impl Supervisor {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn beat(&self) {
        self.shared.heartbeat_ms.store(
            self.shared.epoch.elapsed().as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    fn set_state(&self, state: State, error: Option<String>, retry_at: Option<Instant>) {
        let mut inner = self.shared.inner.lock().unwrap();
        if inner.state != state {
            inner.since = Instant::now();
        }
        inner.state = state;
        if error.is_some() {
            inner.last_error = error;
        }
        inner.retry_at = retry_at;
        if state == State::Running {
            inner.has_run = true;
        }
        drop(inner);
        self.context
            .metrics
            .set_state(self.id(), state.as_str(), state == State::Running);
    }

    fn count_restart(&self, reason: &str) {
        self.shared.inner.lock().unwrap().restarts += 1;
        self.context.metrics.restart(self.id(), reason);
    }

    /// Waits up to `duration` (for ever: `None`) for a command.
    fn wait(&self, duration: Option<Duration>) -> Wake {
        let end = duration.map(|d| Instant::now() + d);
        loop {
            self.beat();
            let slice = match end {
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Wake::Timeout;
                    }
                    left.min(Duration::from_millis(500))
                }
                None => Duration::from_millis(500),
            };
            match self.commands.recv_timeout(slice) {
                Ok(Command::Stop(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Wake::Stop;
                }
                Ok(Command::Restart) => return Wake::Restart,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn run(self) {
        let settings = &self.context.settings;
        let backoff = Backoff {
            initial: settings.restart_initial,
            max: settings.restart_max,
            jitter: settings.restart_jitter,
        };
        let mut attempt: u32 = 0;
        loop {
            self.beat();
            self.set_state(State::Starting, None, None);
            let started = Instant::now();
            let outcome = match self.prepare().and_then(|rules| {
                pipeline::build(
                    &self.config,
                    rules.as_deref(),
                    Some(self.context.metrics.clone()),
                )
            }) {
                Err(e) => Outcome::Failed {
                    reason: "configuration",
                    message: e,
                    configuration: true,
                },
                Ok(p) => self.run_pipeline(p),
            };
            match outcome {
                Outcome::Stopped => break,
                Outcome::Restart => {
                    tracing::info!(camera = self.id(), "restarting on request");
                    self.count_restart("manual");
                    attempt = 0;
                }
                Outcome::Ended if self.config.at_end == AtEnd::Stop => {
                    tracing::info!(camera = self.id(), "the stream ended");
                    self.set_state(State::Finished, None, None);
                    if self.wait(None) == Wake::Stop {
                        break;
                    }
                    self.count_restart("manual");
                }
                Outcome::Ended if self.config.kind == SourceKind::File => {
                    // A looped file: start again at once, no failure.
                    self.count_restart("loop");
                    attempt = 0;
                }
                Outcome::Ended | Outcome::Failed { .. } => {
                    let (reason, message, configuration) = match outcome {
                        Outcome::Failed {
                            reason,
                            message,
                            configuration,
                        } => (reason, message, configuration),
                        _ => ("end", "the live stream ended".to_string(), false),
                    };
                    let message = redact(&message);
                    if configuration {
                        tracing::error!(
                            camera = self.id(),
                            error = %message,
                            "camera disabled: its configuration is wrong (fix it and reload)"
                        );
                        self.set_state(State::Disabled, Some(message), None);
                        if self.wait(None) == Wake::Stop {
                            break;
                        }
                        self.count_restart("manual");
                        continue;
                    }
                    if started.elapsed() >= settings.healthy_after {
                        attempt = 0;
                    }
                    attempt = attempt.saturating_add(1);
                    let delay = backoff.delay(attempt, fastrand::f64());
                    self.count_restart(reason);
                    tracing::warn!(
                        camera = self.id(),
                        reason,
                        error = %message,
                        attempt,
                        retry_in_s = delay.as_secs_f64(),
                        "camera failed; restarting after backoff"
                    );
                    self.set_state(State::Backoff, Some(message), Some(Instant::now() + delay));
                    if self.wait(Some(delay)) == Wake::Stop {
                        break;
                    }
                }
            }
        }
        self.set_state(State::Stopped, None, None);
    }

    /// Writes the camera's rules file and makes the directories its sinks write into.
    fn prepare(&self) -> Result<Option<PathBuf>, String> {
        let work = self.config.work_dir(&self.context.settings.data_dir);
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        let e = &self.config.events;
        let parents = [&e.location, &e.frames_location]
            .into_iter()
            .flatten()
            .filter_map(|p| PathBuf::from(p).parent().map(PathBuf::from));
        let dirs = parents.chain(
            [&e.spool_dir]
                .into_iter()
                .flatten()
                .map(PathBuf::from)
                .chain(
                    self.config
                        .recording
                        .iter()
                        .filter_map(|r| r.dir.as_ref().map(PathBuf::from)),
                ),
        );
        for dir in dirs {
            std::fs::create_dir_all(&dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        if self.config.rules.is_empty() {
            return Ok(None);
        }
        let tables: Vec<toml::Table> = self.config.rules.iter().map(|r| r.table.clone()).collect();
        let file = work.join("rules.toml");
        std::fs::write(&file, pipeline::rules_text(&tables))
            .map_err(|err| format!("cannot write {}: {err}", file.display()))?;
        Ok(Some(file))
    }

    fn run_pipeline(&self, p: CameraPipeline) -> Outcome {
        let bus = p.pipeline.bus().expect("a pipeline has a bus");
        let pipeline = p.pipeline.clone();
        let activity = p.activity.clone();
        *self.shared.live.lock().unwrap() = Some(Live {
            pipeline: p,
            last: HashMap::new(),
        });
        tracing::info!(camera = self.id(), uri = %redact(&self.config.uri), "starting");
        let outcome = if pipeline.set_state(gst::State::Playing).is_err() {
            // The reason is an error message on the bus.
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(2), &[gst::MessageType::Error])
                .map(|m| self.failure(&m))
                .unwrap_or(Outcome::Failed {
                    reason: "error",
                    message: "the pipeline could not start (no reason given)".into(),
                    configuration: false,
                })
        } else {
            self.watch(&pipeline, &bus, &activity)
        };
        // Final figures before the elements reset, then tear down.
        collect(&self.shared, &self.config, &self.context.metrics);
        *self.shared.live.lock().unwrap() = None;
        let _ = pipeline.set_state(gst::State::Null);
        drop(pipeline);
        release_freed_memory();
        outcome
    }

    /// An error message as an outcome: a bad setting of one of our elements cannot be fixed
    /// by retrying.
    fn failure(&self, message: &gst::Message) -> Outcome {
        let gst::MessageView::Error(e) = message.view() else {
            unreachable!("called with error messages only")
        };
        let source = message
            .src()
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let ours =
            [names::POSE, names::TRACKER, names::ACTION, names::EVENTS].contains(&source.as_str());
        let text = match e.debug() {
            Some(debug) => format!("{source}: {} ({debug})", e.error()),
            None => format!("{source}: {}", e.error()),
        };
        Outcome::Failed {
            reason: "error",
            message: text,
            configuration: ours && e.error().matches(gst::ResourceError::Settings),
        }
    }

    fn watch(
        &self,
        pipeline: &gst::Pipeline,
        bus: &gst::Bus,
        activity: &pipeline::Activity,
    ) -> Outcome {
        let mut stopping: Option<Instant> = None;
        let mut running = false;
        // Frames of this run already added to the camera's total.
        let mut counted = 0;
        loop {
            self.beat();
            if stopping.is_none() {
                let stop = match self.commands.try_recv() {
                    Ok(Command::Stop(deadline)) => Some(deadline),
                    Ok(Command::Restart) => return Outcome::Restart,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        Some(Instant::now() + Duration::from_secs(5))
                    }
                    Err(mpsc::TryRecvError::Empty) => None,
                };
                if let Some(deadline) = stop {
                    tracing::info!(camera = self.id(), "stopping: end of stream sent");
                    pipeline.send_event(gst::event::Eos::new());
                    stopping = Some(deadline);
                }
            }
            if let Some(deadline) = stopping
                && Instant::now() >= deadline
            {
                tracing::warn!(
                    camera = self.id(),
                    "the pipeline did not finish before the deadline; stopping it"
                );
                return Outcome::Stopped;
            }
            if let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
                match message.view() {
                    gst::MessageView::Error(_) if stopping.is_some() => {
                        if let Outcome::Failed { message, .. } = self.failure(&message) {
                            tracing::warn!(camera = self.id(), error = %redact(&message), "error while stopping");
                        }
                        return Outcome::Stopped;
                    }
                    gst::MessageView::Error(_) => return self.failure(&message),
                    gst::MessageView::Eos(_) => {
                        return if stopping.is_some() {
                            tracing::info!(camera = self.id(), "stopped: sinks flushed");
                            Outcome::Stopped
                        } else {
                            Outcome::Ended
                        };
                    }
                    gst::MessageView::Warning(w) => {
                        let source = message.src().map(|s| s.name().to_string());
                        tracing::warn!(
                            camera = self.id(),
                            element = source.as_deref().unwrap_or(""),
                            debug = %redact(&w.debug().map(|d| d.to_string()).unwrap_or_default()),
                            "{}",
                            redact(&w.error().to_string())
                        );
                    }
                    gst::MessageView::Element(e) => {
                        if let Some(s) = e
                            .structure()
                            .filter(|s| s.name() == props::event_message::NAME)
                        {
                            let kind = s
                                .get::<String>(props::event_message::TYPE)
                                .unwrap_or_default();
                            let event_id = s
                                .get::<String>(props::event_message::EVENT_ID)
                                .unwrap_or_default();
                            self.context.metrics.event(self.id(), &kind);
                            tracing::info!(camera = self.id(), r#type = %kind, event_id, "event");
                        }
                    }
                    _ => {}
                }
            }
            let processed = activity.processed();
            self.shared
                .frames
                .fetch_add(processed - counted, Ordering::Relaxed);
            counted = processed;
            if !running && processed > 0 {
                running = true;
                self.set_state(State::Running, None, None);
                tracing::info!(camera = self.id(), "running");
            }
            if stopping.is_none() {
                let limit = if running {
                    self.config.stall_timeout
                } else {
                    self.config.start_timeout
                };
                if activity.idle() > limit {
                    let what = if running {
                        "stalled: no frame reached the end of the chain"
                    } else {
                        "no frame reached the end of the chain after starting"
                    };
                    return Outcome::Failed {
                        reason: "stall",
                        message: format!("{what} for {} s", limit.as_secs()),
                        configuration: false,
                    };
                }
            }
        }
    }
}

/// Hands the memory a torn-down pipeline freed (decoded frames, inference buffers of its
/// sessions, freed in its streaming threads) back to the system. glibc keeps freed memory in
/// per-thread arenas, and each run of a camera frees in new threads, so without this a camera
/// restarted many times holds the peak of several runs resident (measured: benches/soak).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
