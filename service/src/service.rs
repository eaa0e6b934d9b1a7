//! The running service: the cameras of this shard, reload (only added, removed or changed
//! cameras are touched) and graceful shutdown.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    camera::{Camera, Context, State, Status},
    config::{CameraConfig, Config},
    metrics::{Metrics, ResultLabel},
    shard::Shard,
};

/// A camera thread that has not shown a heartbeat for this long is stuck (e.g. a pipeline that
/// never finishes a state change): `/live` fails and the orchestrator restarts the process.
pub const STUCK_AFTER: Duration = Duration::from_secs(60);

pub struct Service {
    shard: Shard,
    context: Arc<Context>,
    config: Mutex<Config>,
    cameras: Mutex<BTreeMap<String, Camera>>,
}

/// What `/ready` answers: ready or not, and every camera that is not running, with why.
#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub cameras: Vec<NotRunning>,
}

#[derive(Debug, Serialize)]
pub struct NotRunning {
    pub id: String,
    pub state: State,
    /// Whether this camera counts as ready (see `Status::ready`).
    pub ready: bool,
    pub reason: String,
}

impl Service {
    /// Starts every enabled camera of `shard`.
    pub fn start(config: Config, shard: Shard) -> Arc<Service> {
        let context = Arc::new(Context {
            metrics: Arc::new(Metrics::new()),
            settings: config.service.clone(),
        });
        let service = Arc::new(Service {
            shard,
            context,
            config: Mutex::new(config.clone()),
            cameras: Mutex::new(BTreeMap::new()),
        });
        let mut cameras = service.cameras.lock().unwrap();
        for camera in service.mine(&config) {
            cameras.insert(
                camera.id.clone(),
                Camera::start(camera, service.context.clone()),
            );
        }
        tracing::info!(
            shard = %shard,
            cameras = cameras.len(),
            of = config.cameras.len(),
            "service started"
        );
        drop(cameras);
        service
    }

    pub fn metrics(&self) -> &Metrics {
        &self.context.metrics
    }

    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// The enabled cameras of this shard.
    fn mine(&self, config: &Config) -> Vec<CameraConfig> {
        config
            .cameras
            .iter()
            .filter(|c| c.enabled && self.shard.owns(&c.id))
            .cloned()
            .collect()
    }

    /// Applies a new configuration: removed and changed cameras are stopped (EOS and flush),
    /// added and changed ones started; the others are not touched. Settings of `[service]`
    /// other than the cameras' take effect at the next start of the process.
    pub fn reload(&self, config: Config) {
        let mut current = self.config.lock().unwrap();
        if config.service != current.service {
            tracing::warn!(
                "[service] settings changed: they take effect when the service is restarted"
            );
        }
        let wanted: BTreeMap<String, CameraConfig> = self
            .mine(&config)
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let deadline = Instant::now() + self.context.settings.shutdown_timeout;
        // Leaving cameras are taken out under the lock and stopped without it, so that
        // /metrics and the API keep answering while their sinks flush.
        let (leaving, stopping): (Vec<String>, Vec<Camera>) = {
            let mut cameras = self.cameras.lock().unwrap();
            let ids: Vec<String> = cameras
                .iter()
                .filter(|(id, camera)| wanted.get(*id) != Some(&camera.config))
                .map(|(id, _)| id.clone())
                .collect();
            let taken = ids.iter().map(|id| cameras.remove(id).unwrap()).collect();
            (ids, taken)
        };
        for camera in &stopping {
            camera.stop(deadline);
        }
        for camera in stopping {
            let id = camera.config.id.clone();
            if !camera.join(deadline) {
                tracing::warn!(camera = %id, "did not stop before the deadline");
            }
            if !wanted.contains_key(&id) {
                self.context.metrics.remove_camera(&id);
                tracing::info!(camera = %id, "removed");
            }
        }
        let mut cameras = self.cameras.lock().unwrap();
        let (mut added, mut changed) = (0, 0);
        for (id, camera) in wanted {
            if cameras.contains_key(&id) {
                continue;
            }
            if leaving.contains(&id) {
                changed += 1;
            } else {
                added += 1;
            }
            cameras.insert(id, Camera::start(camera, self.context.clone()));
        }
        let removed = leaving.len() - changed;
        tracing::info!(added, removed, changed, "configuration reloaded");
        self.context
            .metrics
            .reloads
            .get_or_create(&ResultLabel {
                result: "ok".into(),
            })
            .inc();
        *current = config;
    }

    /// Counts a reload that failed (the running configuration stays).
    pub fn reload_failed(&self) {
        self.context
            .metrics
            .reloads
            .get_or_create(&ResultLabel {
                result: "error".into(),
            })
            .inc();
    }

    /// EOS into every camera, waits for their sinks to flush until the shutdown deadline.
    /// True when every camera stopped in time.
    pub fn shutdown(&self) -> bool {
        let deadline = Instant::now() + self.context.settings.shutdown_timeout;
        let cameras = std::mem::take(&mut *self.cameras.lock().unwrap());
        for camera in cameras.values() {
            camera.stop(deadline);
        }
        let mut all = true;
        for (id, camera) in cameras {
            if !camera.join(deadline) {
                tracing::warn!(camera = %id, "did not stop before the shutdown deadline");
                all = false;
            }
        }
        all
    }

    /// Restarts one camera now; false when this replica has no such camera.
    pub fn restart(&self, id: &str) -> bool {
        match self.cameras.lock().unwrap().get(id) {
            Some(camera) => {
                camera.restart();
                true
            }
            None => false,
        }
    }

    /// Whether every camera is finished or disabled (`--exit-when-done`), and whether all of
    /// them finished.
    pub fn done(&self) -> Option<bool> {
        let cameras = self.cameras.lock().unwrap();
        cameras.values().all(Camera::done).then(|| {
            cameras
                .values()
                .all(|c| c.status().state == State::Finished)
        })
    }

    /// Brings the metrics read from elements and spools up to date (before a scrape).
    pub fn collect(&self) {
        for camera in self.cameras.lock().unwrap().values() {
            camera.collect(&self.context.metrics);
        }
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.cameras
            .lock()
            .unwrap()
            .values()
            .map(Camera::status)
            .collect()
    }

    /// Alive unless a camera's supervisor is stuck.
    pub fn live(&self) -> Result<(), String> {
        let cameras = self.cameras.lock().unwrap();
        let stuck: Vec<&str> = cameras
            .values()
            .filter(|c| c.heartbeat_age() > STUCK_AFTER)
            .map(|c| c.config.id.as_str())
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "camera supervisors stuck for more than {} s: {}",
                STUCK_AFTER.as_secs(),
                stuck.join(", ")
            ))
        }
    }

    pub fn readiness(&self) -> Readiness {
        let cameras: Vec<NotRunning> = self
            .statuses()
            .into_iter()
            .filter(|s| s.state != State::Running)
            .map(|s| NotRunning {
                ready: s.ready(),
                reason: match (&s.state, &s.last_error) {
                    (State::Disabled, Some(e)) => format!("disabled: {e}"),
                    (State::Backoff, Some(e)) => format!(
                        "restarting in {:.1} s after: {e}",
                        s.retry_in_s.unwrap_or(0.0)
                    ),
                    (State::Starting, None) => "starting: no frame through the chain yet".into(),
                    (State::Starting, Some(e)) => format!("starting again after: {e}"),
                    (state, _) => state.as_str().into(),
                },
                id: s.id,
                state: s.state,
            })
            .collect();
        Readiness {
            ready: cameras.iter().all(|c| c.ready),
            cameras,
        }
    }
}
