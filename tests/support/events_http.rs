//! A small HTTP(S) server for the webhook tests: it answers a status of the test's choice, or
//! nothing at all, and records every request.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// The status the server answers with an empty body; `None`: it reads the request and never
/// answers (the client times out).
pub type Answer = Option<u16>;

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
    answer: Arc<Mutex<Answer>>,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(answer: Answer) -> Self {
        Self::start_with(answer, None)
    }

    /// HTTPS with `tls` (rustls server configuration), else HTTP.
    pub fn start_with(answer: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new(answer));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, r, s) = (answer.clone(), requests.clone(), stop.clone());
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
            answer,
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

    pub fn set_answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
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
    answer: &Mutex<Answer>,
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
    let status = *answer.lock().unwrap();
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
