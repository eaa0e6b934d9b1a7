//! The HTTP endpoints, on one port: `/metrics` (OpenMetrics text), `/live`, `/ready`,
//! `/api/v1/cameras` (JSON) and `POST /api/v1/cameras/ID/restart`.
//!
//! `tiny_http`: a small synchronous server with no async runtime. Four endpoints polled every
//! few seconds need nothing more, and it keeps the service's build time small next to the
//! GStreamer and ONNX Runtime stack (an async stack would cost minutes per build on 2 cores).
//! Two worker threads, so a slow scrape never delays a probe.

use std::{io::Cursor, net::SocketAddr, sync::Arc, thread::JoinHandle};

use tiny_http::{Header, Method, Request, Response, Server};

use crate::service::Service;

const WORKERS: usize = 2;

pub struct HttpServer {
    server: Arc<Server>,
    workers: Vec<JoinHandle<()>>,
    pub address: SocketAddr,
}

impl HttpServer {
    /// Listens on `listen` (`address:port`; port 0 picks a free one).
    pub fn start(listen: &str, service: Arc<Service>) -> Result<HttpServer, String> {
        let server = Server::http(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("{listen} is not an IP address"))?;
        let server = Arc::new(server);
        let workers = (0..WORKERS)
            .map(|i| {
                let server = server.clone();
                let service = service.clone();
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        for request in server.incoming_requests() {
                            handle(&service, request);
                        }
                    })
                    .expect("spawning an HTTP worker")
            })
            .collect();
        tracing::info!(%address, "HTTP endpoints listening");
        Ok(HttpServer {
            server,
            workers,
            address,
        })
    }

    pub fn stop(self) {
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn json(status: u16, body: &impl serde::Serialize) -> Response<Cursor<Vec<u8>>> {
    let text = serde_json::to_string_pretty(body).expect("serialisable");
    Response::from_string(text)
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

/// `ID` of `/api/v1/cameras/ID/restart`.
fn restart_id(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1/cameras/")?
        .strip_suffix("/restart")
        .filter(|id| !id.is_empty())
}

fn handle(service: &Service, request: Request) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let response = match (request.method(), path.as_str()) {
        (Method::Get, "/metrics") => {
            service.collect();
            Response::from_string(service.metrics().encode()).with_header(header(
                "Content-Type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ))
        }
        (Method::Get, "/live") => match service.live() {
            Ok(()) => Response::from_string("ok\n"),
            Err(e) => Response::from_string(format!("{e}\n")).with_status_code(503),
        },
        (Method::Get, "/ready") => {
            let readiness = service.readiness();
            json(if readiness.ready { 200 } else { 503 }, &readiness)
        }
        (Method::Get, "/api/v1/cameras") => json(
            200,
            &serde_json::json!({
                "shard": service.shard().to_string(),
                "cameras": service.statuses(),
            }),
        ),
        (Method::Post, p) if restart_id(p).is_some() => {
            let id = restart_id(p).unwrap();
            if service.restart(id) {
                tracing::info!(camera = id, "restart requested over HTTP");
                json(202, &serde_json::json!({ "restarting": id }))
            } else {
                json(404, &serde_json::json!({ "error": format!("no camera '{id}' here") }))
            }
        }
        (Method::Get, _) => Response::from_string(
            "not found: /metrics, /live, /ready, /api/v1/cameras, POST /api/v1/cameras/ID/restart\n",
        )
        .with_status_code(404),
        _ => Response::from_string("only GET, and POST to restart a camera\n")
            .with_status_code(405),
    };
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "HTTP client went away");
    }
}
