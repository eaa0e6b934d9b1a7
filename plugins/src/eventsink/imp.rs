use std::{
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, Instant, SystemTime},
};

use gst::{glib, prelude::*, subclass::prelude::*};
use gst_base::{prelude::*, subclass::prelude::*};
use recognizer_core::events::{Observation, RuleEngine};
use recognizer_meta::PoseMeta;

use super::{
    delivery::{Status, Worker},
    frame_log::FrameLog,
    jsonl::{JsonLinesFile, Notice, Options},
    network::{self, Network},
    record::{self, EventRecord},
    settings::{Settings, properties, settings_error},
    stdout,
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
    network: Network,
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

impl ObjectImpl for EventSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(properties);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.settings.lock().unwrap().set(pspec.name(), value);
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
            let sum = |f: fn(&Worker) -> u64| st.network.workers.iter().map(|w| f(w)).sum::<u64>();
            return match pspec.name() {
                "events" => st.events,
                "delivered" => sum(Worker::delivered),
                "spooled" => sum(|w| w.pending() as u64),
                _ => sum(Worker::dead_lettered),
            }
            .to_value();
        }
        self.settings.lock().unwrap().get(pspec.name())
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
    fn workers(&self) -> Vec<Arc<Worker>> {
        self.state
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.network.workers.clone())
            .unwrap_or_default()
    }

    /// Gives the network sinks up to `flush-timeout-ms` to deliver what is queued (at EOS, and
    /// when `stopping`, after which their workers are stopped); warns with what is left.
    fn flush_network(&self, stopping: bool) {
        let timeout = Duration::from_millis(self.settings.lock().unwrap().flush_timeout_ms.into());
        let deadline = Instant::now() + timeout;
        let workers = self.workers();
        for w in &workers {
            w.flush(deadline);
        }
        for w in &workers {
            let left = if stopping {
                w.stop(deadline + STOP_GRACE)
            } else {
                w.pending()
            };
            if left > 0 {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "{}: {} events not delivered within flush-timeout-ms ({} ms) {}; they stay in the spool {}",
                        w.name(),
                        left,
                        timeout.as_millis(),
                        if stopping { "when stopping" } else { "at EOS" },
                        if stopping {
                            "for the next start"
                        } else {
                            "and are retried"
                        }
                    )
                );
            }
        }
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
        // Every class probability of each person, for rules on a class.
        let scores: Vec<Vec<(&str, f32)>> = persons
            .iter()
            .map(|p| {
                p.class_scores()
                    .iter()
                    .map(|s| (s.label(), s.score))
                    .collect()
            })
            .collect();
        let observations: Vec<Observation> = persons
            .iter()
            .zip(&scores)
            .enumerate()
            .map(|(index, (p, scores))| Observation {
                index,
                track_id: p.track().map(|t| t.id),
                label: p.action_label(),
                score: p.action().map(|a| a.score).unwrap_or(0.0),
                scores,
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
                let kind = state.engine.rules()[o.rule].name.clone();
                let person = &persons[o.index];
                EventRecord::new(
                    o,
                    kind,
                    &state.stream,
                    person,
                    state.width,
                    state.height,
                    &wallclock,
                )
            })
            .collect();
        (events, warn_zone)
    }

    /// Writes one event to every sink: the spools first (durable before anything is tried),
    /// then the events file and stdout; the bus message goes into `posts`.
    fn emit(state: &mut State, event: &EventRecord, posts: &mut Vec<Post>) -> Result<(), String> {
        let json = event.to_json_line();
        state.events += 1;
        for worker in &state.network.workers {
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
            state.network.workers.len()
        );
        if state.post_messages {
            posts.push(Post::Event(event.bus_message(&json)));
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
        let network = network::start(&self.obj(), &settings)?;
        let has_sink = events_file.is_some()
            || settings.stdout
            || settings.post_messages
            || !network.workers.is_empty();
        if engine.rules().is_empty() && (events_file.is_some() || !network.workers.is_empty()) {
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
                .workers
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
            events: 0,
            zone_size_warned: false,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flush_network(true);
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
                    .workers
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
                self.flush_network(false);
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
