//! The delivery worker of a network sink: a thread that sends the spooled events in order,
//! removes each one once acknowledged, retries failures with exponential backoff, and moves
//! aside (dead-letter) what can never be delivered: an event the receiver rejects for good, a
//! spool file that cannot be read, the oldest events beyond the spool limit. The streaming
//! thread only writes the spool file and enqueues it.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, LazyLock, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::spool::Spool;

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "eventsink-delivery",
        gst::DebugColorFlags::empty(),
        Some("eventsink: spool and delivery workers of the network sinks"),
    )
});

/// Why a delivery failed.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// The receiver refused this event for good (retrying cannot help).
    pub permanent: bool,
}

impl Failure {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }
}

/// A destination that acknowledges each event (or fails).
pub trait Transport: Send {
    /// Sends one event (its JSON line); `Ok` only once the receiver acknowledged it. One call
    /// ends within the sink's timeout.
    fn deliver(&mut self, json: &str) -> Result<(), Failure>;
    /// Called when the queue has been empty for a while (to close idle connections).
    fn idle(&mut self) {}
    /// A way to end a `deliver` in progress early (when the element stops), if the transport
    /// has one; otherwise stopping waits for the attempt's timeout or leaves it behind.
    fn canceller(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }
}

/// What the worker reports to the element.
pub enum Status {
    /// The first failure of a streak.
    Failing(String),
    /// Delivery works again after failures.
    Recovered { failures: u64 },
    /// An event moved to the dead-letter folder, and why.
    DeadLettered { file: PathBuf, reason: String },
}

/// Where the worker sends its [`Status`] news (from its own thread).
pub type Report = Box<dyn Fn(Status) + Send + Sync>;

#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<PathBuf>,
    /// The event being sent (taken from the front of `pending`).
    in_flight: Option<PathBuf>,
    /// The spool limit takes the event being sent if its attempt fails (and whether that is
    /// news: the first move of an overflow).
    evict_in_flight: Option<bool>,
    stop: bool,
    /// Retry now (skip the rest of the backoff), set by a flush.
    nudge: bool,
    finished: bool,
    delivered: u64,
    dead_lettered: u64,
    /// Spool limit in events (0: none) and whether the current overflow was reported.
    max_events: usize,
    overflow_reported: bool,
}

impl Queue {
    /// Events waiting, the one being sent included unless the spool limit took it.
    fn len(&self) -> usize {
        self.pending.len() + usize::from(self.in_flight.is_some() && self.evict_in_flight.is_none())
    }

    /// The event being sent is done with (delivered or moved aside).
    fn clear_in_flight(&mut self) {
        self.in_flight = None;
        self.evict_in_flight = None;
    }
}

struct Shared {
    queue: Mutex<Queue>,
    cv: Condvar,
    spool: Spool,
    report: Report,
}

impl Shared {
    /// Moves an event to the dead-letter folder and counts it. The news is for the caller to
    /// report once it holds no lock (a synchronous bus handler may read the counters).
    fn dead_letter(&self, path: &Path, reason: String) -> Status {
        match self.spool.dead_letter(path) {
            Ok(file) => {
                self.queue.lock().unwrap().dead_lettered += 1;
                gst::warning!(
                    CAT,
                    "{}: {} -> {}: {reason}",
                    self.spool.name(),
                    path.display(),
                    file.display()
                );
                Status::DeadLettered { file, reason }
            }
            Err(e) => Status::Failing(format!(
                "could not move {} to the dead-letter folder: {e}",
                path.display()
            )),
        }
    }

    /// Moves the oldest waiting events beyond the limit to the dead-letter folder. Of an
    /// overflow (until the spool is back under its limit) only the first move is news.
    fn enforce_limit(&self) -> Vec<Status> {
        let (evicted, max, first_is_news) = {
            let mut q = self.queue.lock().unwrap();
            if q.max_events == 0 {
                return Vec::new();
            }
            if q.len() <= q.max_events {
                q.overflow_reported = false;
                return Vec::new();
            }
            let mut news = !q.overflow_reported;
            q.overflow_reported = true;
            let mut evicted = Vec::new();
            while q.len() > q.max_events {
                if q.in_flight.is_some() && q.evict_in_flight.is_none() {
                    // The oldest is being sent: it goes if this attempt fails.
                    q.evict_in_flight = Some(news);
                    news = false;
                    continue;
                }
                match q.pending.pop_front() {
                    Some(oldest) => evicted.push(oldest),
                    None => break,
                }
            }
            (evicted, q.max_events, news)
        };
        let reason = limit_reason(max);
        evicted
            .iter()
            .enumerate()
            .map(|(i, path)| (i, self.dead_letter(path, reason.clone())))
            .filter(|(i, status)| {
                (*i == 0 && first_is_news) || matches!(status, Status::Failing(_))
            })
            .map(|(_, status)| status)
            .collect()
    }
}

fn limit_reason(max: usize) -> String {
    format!(
        "the spool holds more than spool-max-events={max} events; the oldest moves to the dead-letter folder"
    )
}

pub struct Worker {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<()>>>,
    cancel: Option<Box<dyn Fn() + Send + Sync>>,
}

/// How long the queue stays empty before the transport is told it is idle.
const IDLE: Duration = Duration::from_secs(20);

impl Worker {
    /// Starts the thread with the events already in the spool (delivered first).
    pub fn start(
        spool: Spool,
        existing: Vec<PathBuf>,
        max_events: usize,
        mut transport: Box<dyn Transport>,
        backoff: Backoff,
        report: Report,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: existing.into(),
                max_events,
                ..Default::default()
            }),
            cv: Condvar::new(),
            spool,
            report,
        });
        for status in shared.enforce_limit() {
            (shared.report)(status);
        }
        let cancel = transport.canceller();
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("eventsink-{}", shared.spool.name()))
            .spawn(move || {
                run(&thread_shared, transport.as_mut(), backoff);
                thread_shared.queue.lock().unwrap().finished = true;
                thread_shared.cv.notify_all();
            })?;
        Ok(Self {
            shared,
            handle: Mutex::new(Some(handle)),
            cancel,
        })
    }

    pub fn name(&self) -> &'static str {
        self.shared.spool.name()
    }

    pub fn spool(&self) -> &Spool {
        &self.shared.spool
    }

    /// Queues a spooled event and applies the spool limit; returns the news of that, for
    /// [`Worker::report`] once the caller holds no lock.
    pub fn enqueue(&self, path: PathBuf) -> Vec<Status> {
        self.shared.queue.lock().unwrap().pending.push_back(path);
        self.shared.cv.notify_all();
        self.shared.enforce_limit()
    }

    /// Reports news to the element, as the worker's thread does.
    pub fn report(&self, status: Status) {
        (self.shared.report)(status);
    }

    /// Events not yet acknowledged (including one being sent).
    pub fn pending(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }

    pub fn delivered(&self) -> u64 {
        self.shared.queue.lock().unwrap().delivered
    }

    pub fn dead_lettered(&self) -> u64 {
        self.shared.queue.lock().unwrap().dead_lettered
    }

    /// Waits until everything queued is delivered or `deadline` passed (retrying at once if the
    /// worker is backing off); returns how many events remain.
    pub fn flush(&self, deadline: Instant) -> usize {
        let mut q = self.shared.queue.lock().unwrap();
        q.nudge = true;
        self.shared.cv.notify_all();
        while q.len() > 0 && !q.finished {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self.shared.cv.wait_timeout(q, deadline - now).unwrap().0;
        }
        q.len()
    }

    /// Stops the thread and returns how many events remain in the spool for the next start.
    /// An attempt in progress is cancelled where the transport allows it; one that is still
    /// running at `deadline` is left to end on its own (within the sink's timeout), so that
    /// stopping never waits past the deadline.
    pub fn stop(&self, deadline: Instant) -> usize {
        {
            let mut q = self.shared.queue.lock().unwrap();
            q.stop = true;
            self.shared.cv.notify_all();
        }
        if let Some(cancel) = &self.cancel {
            cancel();
        }
        let mut q = self.shared.queue.lock().unwrap();
        while !q.finished {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self.shared.cv.wait_timeout(q, deadline - now).unwrap().0;
        }
        let finished = q.finished;
        let remaining = q.len();
        drop(q);
        let handle = self.handle.lock().unwrap().take();
        match (finished, handle) {
            (true, Some(handle)) => {
                let _ = handle.join();
            }
            (false, Some(_)) => gst::warning!(
                CAT,
                "{}: the delivery in progress did not end by the deadline; it ends on its own",
                self.name()
            ),
            _ => {}
        }
        remaining
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop(Instant::now());
    }
}

/// The next event to send, or `None` when stopping.
fn next(shared: &Shared, transport: &mut dyn Transport) -> Option<PathBuf> {
    let mut q = shared.queue.lock().unwrap();
    loop {
        if q.stop {
            return None;
        }
        if let Some(path) = q.pending.pop_front() {
            q.in_flight = Some(path.clone());
            return Some(path);
        }
        let (guard, timeout) = shared.cv.wait_timeout(q, IDLE).unwrap();
        q = guard;
        if timeout.timed_out() && q.pending.is_empty() && !q.stop {
            drop(q);
            transport.idle();
            q = shared.queue.lock().unwrap();
        }
    }
}

/// Reads a spooled event: `Ok(None)` when the file is gone, `Err` when it cannot be read or
/// does not hold JSON.
fn read_event(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let json = text.trim_end();
            serde_json::from_str::<serde_json::Value>(json)
                .map(|_| Some(json.to_string()))
                .map_err(|e| format!("the spool file does not hold an event: {e}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("the spool file cannot be read: {e}")),
    }
}

fn run(shared: &Shared, transport: &mut dyn Transport, backoff: Backoff) {
    let mut delay = backoff.initial;
    let mut failures = 0u64;
    while let Some(path) = next(shared, transport) {
        let json = match read_event(&path) {
            Ok(Some(json)) => json,
            Ok(None) => {
                gst::warning!(
                    CAT,
                    "{}: {} vanished from the spool",
                    shared.spool.name(),
                    path.display()
                );
                shared.queue.lock().unwrap().clear_in_flight();
                continue;
            }
            Err(reason) => {
                let news = shared.dead_letter(&path, reason);
                shared.queue.lock().unwrap().clear_in_flight();
                shared.cv.notify_all();
                (shared.report)(news);
                continue;
            }
        };
        gst::trace!(CAT, "{}: sending {}", shared.spool.name(), path.display());
        match transport.deliver(&json) {
            Ok(()) => {
                let removed = Spool::remove(&path);
                let mut q = shared.queue.lock().unwrap();
                q.clear_in_flight();
                q.delivered += 1;
                shared.cv.notify_all();
                drop(q);
                gst::debug!(CAT, "{}: delivered {}", shared.spool.name(), path.display());
                if let Err(e) = removed {
                    (shared.report)(Status::Failing(format!(
                        "delivered, but could not remove {}: {e}",
                        path.display()
                    )));
                }
                if failures > 0 {
                    (shared.report)(Status::Recovered { failures });
                    failures = 0;
                }
                delay = backoff.initial;
            }
            Err(failure) if failure.permanent => {
                let news = shared.dead_letter(&path, failure.message);
                shared.queue.lock().unwrap().clear_in_flight();
                shared.cv.notify_all();
                (shared.report)(news);
            }
            Err(failure) => {
                gst::debug!(
                    CAT,
                    "{}: attempt failed: {}",
                    shared.spool.name(),
                    failure.message
                );
                if failures == 0 {
                    (shared.report)(Status::Failing(failure.message));
                }
                failures += 1;
                let deadline = Instant::now() + delay;
                let mut q = shared.queue.lock().unwrap();
                // Back to the head of the queue (unless the spool limit took it meanwhile).
                if let Some(news) = q.evict_in_flight {
                    q.clear_in_flight();
                    let max = q.max_events;
                    drop(q);
                    let status = shared.dead_letter(&path, limit_reason(max));
                    if news || matches!(status, Status::Failing(_)) {
                        (shared.report)(status);
                    }
                    q = shared.queue.lock().unwrap();
                } else if let Some(p) = q.in_flight.take() {
                    q.pending.push_front(p);
                }
                while !q.stop && !q.nudge {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    q = shared.cv.wait_timeout(q, deadline - now).unwrap().0;
                }
                q.nudge = false;
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fails the first `fail` attempts (for good when `permanent`), then records what it
    /// receives.
    struct Flaky {
        fail: usize,
        permanent: bool,
        attempts: Arc<AtomicUsize>,
        got: Arc<Mutex<Vec<String>>>,
    }

    impl Transport for Flaky {
        fn deliver(&mut self, json: &str) -> Result<(), Failure> {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                return Err(Failure {
                    message: format!("attempt {n} refused"),
                    permanent: self.permanent,
                });
            }
            self.got.lock().unwrap().push(json.to_string());
            Ok(())
        }
    }

    fn flaky(fail: usize, permanent: bool) -> (Box<Flaky>, Arc<Mutex<Vec<String>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let transport = Flaky {
            fail,
            permanent,
            attempts: Arc::new(AtomicUsize::new(0)),
            got: got.clone(),
        };
        (Box::new(transport), got)
    }

    const FAST: Backoff = Backoff {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
    };

    fn recorder() -> (Arc<Mutex<Vec<String>>>, Report) {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let r = reports.clone();
        let report = Box::new(move |s: Status| {
            r.lock().unwrap().push(match s {
                Status::Failing(e) => e,
                Status::Recovered { failures } => format!("recovered after {failures}"),
                Status::DeadLettered { reason, .. } => format!("dead letter: {reason}"),
            })
        });
        (reports, report)
    }

    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("recognizer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn retries_in_order_until_delivered() {
        let dir = test_dir("worker-retries");
        let (spool, existing) = Spool::open(&dir, "test").unwrap();
        let old = spool.write("old", "\"old\"").unwrap();
        drop(spool);
        let (spool, existing2) = Spool::open(&dir, "test").unwrap();
        assert!(existing.is_empty());
        let (transport, got) = flaky(3, false);
        let (reports, report) = recorder();
        let writer = Spool::open(&dir, "test").unwrap().0;
        let worker = Worker::start(spool, existing2, 0, transport, FAST, report).unwrap();
        for i in 0..5 {
            let _ = worker.enqueue(
                writer
                    .write(&format!("id{i}"), &format!("\"e{i}\""))
                    .unwrap(),
            );
        }
        assert_eq!(worker.flush(Instant::now() + Duration::from_secs(30)), 0);
        assert_eq!(
            *got.lock().unwrap(),
            vec!["\"old\"", "\"e0\"", "\"e1\"", "\"e2\"", "\"e3\"", "\"e4\""]
        );
        assert_eq!(
            *reports.lock().unwrap(),
            vec![
                "attempt 0 refused".to_string(),
                "recovered after 3".to_string()
            ]
        );
        assert!(!old.exists());
        assert_eq!(Spool::count(&dir.join("test")), 0);
        assert_eq!(worker.stop(Instant::now() + Duration::from_secs(30)), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_keeps_undelivered_events() {
        let dir = test_dir("worker-stop");
        let (spool, existing) = Spool::open(&dir, "test").unwrap();
        let writer = Spool::open(&dir, "test").unwrap().0;
        let (transport, _) = flaky(usize::MAX, false);
        let worker = Worker::start(spool, existing, 0, transport, FAST, Box::new(|_| {})).unwrap();
        let _ = worker.enqueue(writer.write("a", "1").unwrap());
        let _ = worker.enqueue(writer.write("b", "2").unwrap());
        assert_eq!(worker.flush(Instant::now() + Duration::from_millis(50)), 2);
        assert_eq!(worker.stop(Instant::now() + Duration::from_secs(30)), 2);
        assert_eq!(Spool::count(&dir.join("test")), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn permanent_failures_and_the_limit_move_events_aside() {
        let dir = test_dir("worker-dead-letter");
        let (spool, existing) = Spool::open(&dir, "test").unwrap();
        let writer = Spool::open(&dir, "test").unwrap().0;
        let (transport, got) = flaky(2, true);
        let (reports, report) = recorder();
        let worker = Worker::start(spool, existing, 0, transport, FAST, report).unwrap();
        for i in 0..4 {
            let _ = worker.enqueue(writer.write(&format!("id{i}"), &i.to_string()).unwrap());
        }
        assert_eq!(worker.flush(Instant::now() + Duration::from_secs(30)), 0);
        assert_eq!(*got.lock().unwrap(), vec!["2", "3"]);
        assert_eq!(worker.dead_lettered(), 2);
        assert_eq!(Spool::count(&dir.join("dead-letter/test")), 2);
        assert!(reports.lock().unwrap()[0].starts_with("dead letter: attempt 0 refused"));
        worker.stop(Instant::now());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Fails every attempt, each one only once the test lets it.
    struct Gate(std::sync::mpsc::Receiver<()>);

    impl Transport for Gate {
        fn deliver(&mut self, _json: &str) -> Result<(), Failure> {
            let _ = self.0.recv();
            Err(Failure::retry("down"))
        }
    }

    #[test]
    fn the_limit_takes_the_oldest_even_while_it_is_being_sent() {
        let dir = test_dir("worker-limit-in-flight");
        let (spool, existing) = Spool::open(&dir, "test").unwrap();
        let writer = Spool::open(&dir, "test").unwrap().0;
        let (open_gate, gate) = std::sync::mpsc::channel();
        let (reports, report) = recorder();
        let worker = Worker::start(spool, existing, 2, Box::new(Gate(gate)), FAST, report).unwrap();
        let first = writer.write("e0", "0").unwrap();
        assert!(worker.enqueue(first.clone()).is_empty());
        // Wait until e0 is being sent (it left the queue for the transport).
        while worker.shared.queue.lock().unwrap().in_flight.is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 1..=3 {
            let news = worker.enqueue(writer.write(&format!("e{i}"), &i.to_string()).unwrap());
            // e0 is the first of the overflow: its move, not e1's, is the news.
            assert!(news.is_empty(), "e{i}");
        }
        assert_eq!(worker.pending(), 2);
        open_gate.send(()).unwrap();
        while worker.dead_lettered() < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut moved: Vec<String> = std::fs::read_dir(dir.join("dead-letter/test"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        moved.sort();
        assert_eq!(moved, vec!["0\n", "1\n"]);
        assert!(
            reports
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.contains("spool-max-events=2")),
            "{:?}",
            reports.lock().unwrap()
        );
        drop(open_gate);
        worker.stop(Instant::now());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
