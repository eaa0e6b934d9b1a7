//! The network sinks of one element: their transports (URLs, secrets and TLS checked first),
//! the spool directory (locked for this element), a spool and a delivery worker per sink, and
//! how the workers' news reaches the bus.

use std::{fs::File, sync::Arc, time::Duration};

use gst::prelude::*;

use super::{
    delivery::{Backoff, CAT, Report, Status, Transport, Worker},
    mqtt::{Mqtt, MqttSettings},
    record,
    settings::{Settings, settings_error},
    spool::{DEAD_LETTER, Spool},
    tls::{self, TlsSettings},
    webhook::{Webhook, WebhookSettings},
};

/// The running network sinks.
#[derive(Default)]
pub struct Network {
    pub workers: Vec<Arc<Worker>>,
    /// Exclusive lock on `spool-dir` while running.
    _lock: Option<File>,
}

/// Builds the network sinks (URLs, secrets and TLS checked first), then their spools and
/// delivery workers.
pub fn start(element: &super::EventSink, s: &Settings) -> Result<Network, gst::ErrorMessage> {
    let tls = TlsSettings {
        ca_file: s.tls_ca_file.clone(),
        verify: s.tls_verify,
    };
    let timeout = Duration::from_millis(s.timeout_ms.into());
    let mut transports: Vec<(&'static str, Box<dyn Transport>)> = Vec::new();
    if let Some(url) = &s.webhook_url {
        let secret = tls::read_secret(
            "webhook-auth-header",
            s.webhook_auth_header_env.as_deref(),
            s.webhook_auth_header_file.as_deref(),
        )
        .map_err(settings_error)?;
        let hook = Webhook::new(WebhookSettings {
            url: url.clone(),
            timeout,
            tls: tls.clone(),
            auth: secret.map(|v| (s.webhook_auth_header_name.clone(), v)),
        })
        .map_err(settings_error)?;
        gst::info!(CAT, obj = element, "webhook: {}", hook.redacted_url());
        transports.push(("webhook", Box::new(hook)));
    }
    if let Some(url) = &s.mqtt_url {
        let password = tls::read_secret(
            "mqtt-password",
            s.mqtt_password_env.as_deref(),
            s.mqtt_password_file.as_deref(),
        )
        .map_err(settings_error)?;
        let client_id = s
            .mqtt_client_id
            .clone()
            .unwrap_or_else(|| format!("recognizer-{}-{}", s.stream, &record::new_event_id()[..8]));
        let mqtt = Mqtt::new(MqttSettings {
            url: url.clone(),
            topic: s.mqtt_topic.clone(),
            client_id,
            username: s.mqtt_username.clone(),
            password,
            keep_alive: Duration::from_secs(s.mqtt_keep_alive_s.into()),
            timeout,
            tls: tls.clone(),
            stream: s.stream.clone(),
        })
        .map_err(settings_error)?;
        gst::info!(
            CAT,
            obj = element,
            "mqtt: {}, topic {}",
            tls::redact_url(url),
            s.mqtt_topic
        );
        transports.push(("mqtt", Box::new(mqtt)));
    }
    if !s.tls_verify && !transports.is_empty() {
        gst::element_warning!(
            element,
            gst::ResourceError::Settings,
            ("tls-verify=false: server certificates are not verified")
        );
    }
    let Some(dir) = &s.spool_dir else {
        if transports.is_empty() {
            return Ok(Network::default());
        }
        return Err(settings_error(
            "webhook-url and mqtt-url need spool-dir: the directory where events wait until delivered".into(),
        ));
    };
    let spool_error = |e: std::io::Error| {
        gst::error_msg!(
            gst::ResourceError::OpenWrite,
            ("Could not use spool-dir '{}': {}", dir.display(), e)
        )
    };
    std::fs::create_dir_all(dir).map_err(spool_error)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(spool_error)?;
    if lock.try_lock().is_err() {
        return Err(gst::error_msg!(
            gst::ResourceError::Busy,
            (
                "spool-dir '{}' is in use by another eventsink (one spool-dir per element)",
                dir.display()
            )
        ));
    }
    let enabled: Vec<&str> = transports.iter().map(|(n, _)| *n).collect();
    for other in ["webhook", "mqtt"] {
        let n = Spool::count(&dir.join(other));
        if !enabled.contains(&other) && n > 0 {
            gst::element_warning!(
                element,
                gst::ResourceError::Settings,
                (
                    "{} undelivered events for {} remain in '{}', which is not configured now",
                    n,
                    other,
                    dir.join(other).display()
                )
            );
        }
    }
    let backoff = Backoff {
        initial: Duration::from_millis(s.retry_initial_ms.into()),
        max: Duration::from_millis(s.retry_max_ms.max(s.retry_initial_ms).into()),
    };
    let mut workers = Vec::new();
    for (name, transport) in transports {
        let (spool, existing) = Spool::open(dir, name).map_err(spool_error)?;
        let dead = Spool::count(spool.dead_letter_dir());
        gst::info!(
            CAT,
            obj = element,
            "{name}: spool {} holds {} events (replayed first), {dead} in {DEAD_LETTER}",
            spool.dir().display(),
            existing.len(),
        );
        let report = worker_report(element, name, spool.dir().display().to_string());
        let worker = Worker::start(
            spool,
            existing,
            s.spool_max_events as usize,
            transport,
            backoff,
            report,
        )
        .map_err(spool_error)?;
        workers.push(Arc::new(worker));
    }
    Ok(Network {
        workers,
        _lock: Some(lock),
    })
}

/// How a delivery worker's news reaches the bus.
fn worker_report(element: &super::EventSink, name: &'static str, spool_path: String) -> Report {
    let weak = element.downgrade();
    Box::new(move |status: Status| {
        let Some(element) = weak.upgrade() else {
            return;
        };
        match status {
            Status::Failing(e) => gst::element_warning!(
                element,
                gst::ResourceError::Write,
                (
                    "{}: delivery failed, retrying with backoff; events are kept in '{}'",
                    name,
                    spool_path
                ),
                ["{}", e]
            ),
            Status::Recovered { failures } => gst::info!(
                CAT,
                obj = element,
                "{name}: delivering again after {failures} failed attempts"
            ),
            Status::DeadLettered { file, reason } => gst::element_warning!(
                element,
                gst::ResourceError::Write,
                (
                    "{}: an event cannot be delivered and was moved to the dead-letter folder: {}",
                    name,
                    file.display()
                ),
                ["{}", reason]
            ),
        }
    })
}
