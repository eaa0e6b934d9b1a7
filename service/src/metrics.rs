//! The service's Prometheus metrics (`prometheus-client`, OpenMetrics text on `/metrics`).
//!
//! Names follow Prometheus conventions: `recognizer_` prefix, base units (seconds), counters
//! end in `_total` (added by the encoder). Every per-camera series carries `camera`; the series
//! of a camera are removed when it leaves the configuration, so `up` of a removed camera does
//! not linger as 0.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::{
    encoding::{EncodeLabel, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabel {
    pub camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ElementLabel {
    pub camera: String,
    pub element: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    pub camera: String,
    #[prometheus(flatten)]
    pub kind: EventType,
}

/// `type` is a Rust keyword: a struct of its own for the label.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct EventType(pub String);

impl EncodeLabelSet for EventType {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        ("type", self.0.as_str()).encode(encoder.encode_label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    pub camera: String,
    pub sink: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    pub camera: String,
    pub sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestartLabel {
    pub camera: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub camera: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub camera: String,
    pub element: String,
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    pub version: String,
}

/// Upper bounds of the time histograms, seconds: 1 ms to 10 s.
const TIME_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn time_histogram() -> Histogram {
    Histogram::new(TIME_BUCKETS)
}

type Histograms = Family<CameraLabel, Histogram, fn() -> Histogram>;

/// Every metric family of the service.
pub struct Metrics {
    pub registry: Registry,
    pub up: Family<CameraLabel, Gauge>,
    pub state: Family<StateLabel, Gauge>,
    pub restarts: Family<RestartLabel, Counter>,
    pub frames_in: Family<CameraLabel, Counter>,
    pub frames_processed: Family<CameraLabel, Counter>,
    pub frames_dropped: Family<CameraLabel, Counter>,
    pub pose_inferences: Family<CameraLabel, Counter>,
    pub frames_skipped: Family<CameraLabel, Counter>,
    pub pose_interval: Family<CameraLabel, Gauge>,
    pub pose_interval_configured: Family<CameraLabel, Gauge>,
    pub frame_errors: Family<ElementLabel, Counter>,
    pub pose_seconds: Histograms,
    pub action_seconds: Histograms,
    pub latency_seconds: Histograms,
    pub processing_seconds: Histograms,
    pub persons: Family<CameraLabel, Gauge>,
    pub active_tracks: Family<CameraLabel, Gauge>,
    pub events: Family<EventLabel, Counter>,
    pub deliveries: Family<DeliveryLabel, Counter>,
    pub spooled: Family<SinkLabel, Gauge>,
    pub execution_provider: Family<ProviderLabel, Gauge>,
    pub expected_fps: Family<CameraLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub reloads: Family<ResultLabel, Counter>,
    /// Label sets with more than the camera label, per camera, to remove with it.
    dynamic: Mutex<HashSet<Dynamic>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Dynamic {
    State(StateLabel),
    Restart(RestartLabel),
    FrameErrors(ElementLabel),
    Event(EventLabel),
    Delivery(DeliveryLabel),
    Spooled(SinkLabel),
    Provider(ProviderLabel),
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("recognizer");
        let hist = || Histograms::new_with_constructor(time_histogram as fn() -> Histogram);
        let m = Metrics {
            registry: Registry::default(),
            up: Family::default(),
            state: Family::default(),
            restarts: Family::default(),
            frames_in: Family::default(),
            frames_processed: Family::default(),
            frames_dropped: Family::default(),
            pose_inferences: Family::default(),
            frames_skipped: Family::default(),
            pose_interval: Family::default(),
            pose_interval_configured: Family::default(),
            frame_errors: Family::default(),
            pose_seconds: hist(),
            action_seconds: hist(),
            latency_seconds: hist(),
            processing_seconds: hist(),
            persons: Family::default(),
            active_tracks: Family::default(),
            events: Family::default(),
            deliveries: Family::default(),
            spooled: Family::default(),
            execution_provider: Family::default(),
            expected_fps: Family::default(),
            reloads: Family::default(),
            dynamic: Mutex::default(),
        };
        let r = &mut registry;
        r.register(
            "camera_up",
            "1 while the camera's pipeline is running and passing frames, else 0",
            m.up.clone(),
        );
        r.register(
            "camera_state",
            "1 for the camera's current state (starting, running, backoff, disabled, finished)",
            m.state.clone(),
        );
        r.register(
            "camera_restarts",
            "Restarts of the camera's pipeline by reason (error, stall, end of a live stream, end of a looped file)",
            m.restarts.clone(),
        );
        r.register(
            "frames_in",
            "Decoded frames that entered the camera's chain",
            m.frames_in.clone(),
        );
        r.register(
            "frames_processed",
            "Frames that went through the whole chain to the event sink",
            m.frames_processed.clone(),
        );
        r.register(
            "frames_dropped",
            "Frames the leaky queue before the pose model dropped because inference fell behind a live source",
            m.frames_dropped.clone(),
        );
        r.register(
            "pose_inferences",
            "Frames the pose model ran on (rtmopose inferences)",
            m.pose_inferences.clone(),
        );
        r.register(
            "frames_skipped",
            "Frames rtmopose passed on without running the pose model (interval, adaptive interval)",
            m.frames_skipped.clone(),
        );
        r.register(
            "pose_interval",
            "The interval rtmopose runs at now: the pose model runs on every Nth frame (raised by adaptive-interval when the camera falls behind real time)",
            m.pose_interval.clone(),
        );
        r.register(
            "pose_interval_configured",
            "The camera's configured interval (rtmopose interval)",
            m.pose_interval_configured.clone(),
        );
        r.register(
            "frame_errors",
            "Frames an element passed on without its metadata because inference failed",
            m.frame_errors.clone(),
        );
        for (name, help, family) in [
            (
                "pose_inference",
                "Time a frame the pose model ran on spent in rtmopose (including waiting for a shared batch)",
                &m.pose_seconds,
            ),
            (
                "action_inference",
                "Time a frame on which stgcnclassify ran its classifier spent in that element",
                &m.action_seconds,
            ),
            (
                "latency",
                "Live cameras: pipeline clock at the event sink minus the frame's running time (capture to end of the chain)",
                &m.latency_seconds,
            ),
            (
                "processing",
                "Time from a decoded frame entering the chain to the event sink",
                &m.processing_seconds,
            ),
        ] {
            r.register_with_unit(name, help, Unit::Seconds, family.clone());
        }
        r.register(
            "persons",
            "Persons on the camera's last processed frame",
            m.persons.clone(),
        );
        r.register(
            "active_tracks",
            "Tracks bytetrack holds for the camera",
            m.active_tracks.clone(),
        );
        r.register("events", "Events generated, by type", m.events.clone());
        r.register(
            "deliveries",
            "Event deliveries by sink and result (from eventsink's counters)",
            m.deliveries.clone(),
        );
        r.register(
            "spooled_events",
            "Events waiting in the camera's spool, by network sink",
            m.spooled.clone(),
        );
        r.register(
            "execution_provider",
            "1 for the ONNX Runtime execution provider each inference element uses",
            m.execution_provider.clone(),
        );
        r.register(
            "camera_expected_fps",
            "Frames per second the configuration expects from the camera (expected-fps)",
            m.expected_fps.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads (SIGHUP) by result",
            m.reloads.clone(),
        );
        let build: Family<BuildLabel, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabel {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        r.register("build_info", "The service's version", build);
        Metrics { registry, ..m }
    }

    pub fn camera(id: &str) -> CameraLabel {
        CameraLabel { camera: id.into() }
    }

    /// The camera's state series: 1 for `state`, the others removed.
    pub fn set_state(&self, id: &str, state: &str, up: bool) {
        let mut dynamic = self.dynamic.lock().unwrap();
        dynamic.retain(|d| match d {
            Dynamic::State(l) if l.camera == id && l.state != state => {
                self.state.remove(l);
                false
            }
            _ => true,
        });
        let label = StateLabel {
            camera: id.into(),
            state: state.into(),
        };
        self.state.get_or_create(&label).set(1);
        dynamic.insert(Dynamic::State(label));
        self.up.get_or_create(&Self::camera(id)).set(i64::from(up));
    }

    pub fn restart(&self, id: &str, reason: &str) {
        let label = RestartLabel {
            camera: id.into(),
            reason: reason.into(),
        };
        self.restarts.get_or_create(&label).inc();
        self.dynamic.lock().unwrap().insert(Dynamic::Restart(label));
    }

    pub fn event(&self, id: &str, kind: &str) {
        let label = EventLabel {
            camera: id.into(),
            kind: EventType(kind.into()),
        };
        self.events.get_or_create(&label).inc();
        self.dynamic.lock().unwrap().insert(Dynamic::Event(label));
    }

    pub fn frame_errors(&self, id: &str, element: &str, delta: u64) {
        let label = ElementLabel {
            camera: id.into(),
            element: element.into(),
        };
        self.frame_errors.get_or_create(&label).inc_by(delta);
        self.dynamic
            .lock()
            .unwrap()
            .insert(Dynamic::FrameErrors(label));
    }

    pub fn deliveries(&self, id: &str, sink: &str, result: &str, delta: u64) {
        let label = DeliveryLabel {
            camera: id.into(),
            sink: sink.into(),
            result: result.into(),
        };
        self.deliveries.get_or_create(&label).inc_by(delta);
        self.dynamic
            .lock()
            .unwrap()
            .insert(Dynamic::Delivery(label));
    }

    pub fn spooled(&self, id: &str, sink: &str, count: u64) {
        let label = SinkLabel {
            camera: id.into(),
            sink: sink.into(),
        };
        self.spooled
            .get_or_create(&label)
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        self.dynamic.lock().unwrap().insert(Dynamic::Spooled(label));
    }

    pub fn provider(&self, id: &str, element: &str, provider: &str) {
        let mut dynamic = self.dynamic.lock().unwrap();
        dynamic.retain(|d| match d {
            Dynamic::Provider(l)
                if l.camera == id && l.element == element && l.provider != provider =>
            {
                self.execution_provider.remove(l);
                false
            }
            _ => true,
        });
        let label = ProviderLabel {
            camera: id.into(),
            element: element.into(),
            provider: provider.into(),
        };
        self.execution_provider.get_or_create(&label).set(1);
        dynamic.insert(Dynamic::Provider(label));
    }

    /// Removes every series of a camera that left the configuration.
    pub fn remove_camera(&self, id: &str) {
        let camera = Self::camera(id);
        self.up.remove(&camera);
        self.frames_in.remove(&camera);
        self.frames_processed.remove(&camera);
        self.frames_dropped.remove(&camera);
        self.pose_inferences.remove(&camera);
        self.frames_skipped.remove(&camera);
        self.pose_interval.remove(&camera);
        self.pose_interval_configured.remove(&camera);
        self.pose_seconds.remove(&camera);
        self.action_seconds.remove(&camera);
        self.latency_seconds.remove(&camera);
        self.processing_seconds.remove(&camera);
        self.persons.remove(&camera);
        self.active_tracks.remove(&camera);
        self.expected_fps.remove(&camera);
        self.dynamic.lock().unwrap().retain(|d| {
            let mine = match d {
                Dynamic::State(l) => l.camera == id && self.state.remove(l),
                Dynamic::Restart(l) => l.camera == id && self.restarts.remove(l),
                Dynamic::FrameErrors(l) => l.camera == id && self.frame_errors.remove(l),
                Dynamic::Event(l) => l.camera == id && self.events.remove(l),
                Dynamic::Delivery(l) => l.camera == id && self.deliveries.remove(l),
                Dynamic::Spooled(l) => l.camera == id && self.spooled.remove(l),
                Dynamic::Provider(l) => l.camera == id && self.execution_provider.remove(l),
            };
            !mine
        });
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions_and_cameras_are_removed() {
        let m = Metrics::new();
        m.set_state("cam0", "running", true);
        m.frames_processed
            .get_or_create(&Metrics::camera("cam0"))
            .inc();
        m.restart("cam0", "error");
        m.event("cam0", "fall");
        m.pose_seconds
            .get_or_create(&Metrics::camera("cam0"))
            .observe(0.04);
        m.set_state("cam1", "backoff", false);
        let text = m.encode();
        for line in [
            "recognizer_camera_up{camera=\"cam0\"} 1",
            "recognizer_frames_processed_total{camera=\"cam0\"} 1",
            "recognizer_camera_restarts_total{camera=\"cam0\",reason=\"error\"} 1",
            "recognizer_events_total{camera=\"cam0\",type=\"fall\"} 1",
            "recognizer_pose_inference_seconds_count{camera=\"cam0\"} 1",
            "recognizer_camera_state{camera=\"cam1\",state=\"backoff\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        m.set_state("cam1", "running", true);
        assert!(!m.encode().contains("state=\"backoff\""));
        m.remove_camera("cam0");
        let text = m.encode();
        assert!(!text.contains("cam0"), "{text}");
        assert!(text.contains("cam1"), "{text}");
    }
}
