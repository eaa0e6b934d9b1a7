//! The delivery worker of a network sink: a thread that sends the spooled events in order,
//! removes each one once acknowledged, and retries failures with exponential backoff. The
//! streaming thread only writes the spool file and enqueues its name.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Arc, Condvar, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::spool::Spool;

/// A destination that acknowledges each event (or fails).
pub trait Transport: Send {
    /// Sends one event (its JSON line); `Ok` only once the receiver acknowledged it.
    fn deliver(&mut self, json: &str) -> Result<(), String>;
    /// Called when the queue has been empty for a while (to close idle connections).
    fn idle(&mut self) {}
}

/// What the worker reports to the element.
pub enum Status {
    /// The first failure of a streak.
    Failing(String),
    /// Delivery works again after failures.
    Recovered { failures: u64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<PathBuf>,
    stop: bool,
    /// Retry now (skip the rest of the backoff), set by a flush.
    nudge: bool,
    delivered: u64,
}

type Shared = Arc<(Mutex<Queue>, Condvar)>;

pub struct Worker {
    name: &'static str,
    shared: Shared,
    handle: Mutex<Option<JoinHandle<()>>>,
}

/// How long the queue stays empty before the transport is told it is idle.
const IDLE: Duration = Duration::from_secs(20);

impl Worker {
    /// Starts the thread with the events already in the spool (delivered first).
    pub fn start(
        name: &'static str,
        existing: Vec<PathBuf>,
        mut transport: Box<dyn Transport>,
        backoff: Backoff,
        report: Box<dyn Fn(Status) + Send>,
    ) -> std::io::Result<Self> {
        let shared: Shared = Arc::new((
            Mutex::new(Queue {
                pending: existing.into(),
                ..Default::default()
            }),
            Condvar::new(),
        ));
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("eventsink-{name}"))
            .spawn(move || run(&thread_shared, transport.as_mut(), backoff, report.as_ref()))?;
        Ok(Self {
            name,
            shared,
            handle: Mutex::new(Some(handle)),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Queues a spooled event.
    pub fn enqueue(&self, path: PathBuf) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap().pending.push_back(path);
        cv.notify_all();
    }

    /// Events not yet acknowledged (including one being sent).
    pub fn pending(&self) -> usize {
        self.shared.0.lock().unwrap().pending.len()
    }

    pub fn delivered(&self) -> u64 {
        self.shared.0.lock().unwrap().delivered
    }

    /// Waits until everything queued is delivered or `timeout` passed (retrying at once if the
    /// worker is backing off); returns how many events remain.
    pub fn flush(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.shared;
        let mut q = lock.lock().unwrap();
        q.nudge = true;
        cv.notify_all();
        while !q.pending.is_empty() && !q.stop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = cv.wait_timeout(q, deadline - now).unwrap().0;
        }
        q.pending.len()
    }

    /// Stops the thread (after the event being sent, if any) and returns how many events remain
    /// in the spool for the next start.
    pub fn stop(&self) -> usize {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap().stop = true;
            cv.notify_all();
        }
        if let Some(handle) = self.handle.lock().unwrap().take() {
            let _ = handle.join();
        }
        self.pending()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, transport: &mut dyn Transport, backoff: Backoff, report: &dyn Fn(Status)) {
    let (lock, cv) = &**shared;
    let mut delay = backoff.initial;
    let mut failures = 0u64;
    loop {
        let path = {
            let mut q = lock.lock().unwrap();
            loop {
                if q.stop {
                    return;
                }
                if let Some(p) = q.pending.front() {
                    break p.clone();
                }
                let (guard, timeout) = cv.wait_timeout(q, IDLE).unwrap();
                q = guard;
                if timeout.timed_out() && q.pending.is_empty() && !q.stop {
                    drop(q);
                    transport.idle();
                    q = lock.lock().unwrap();
                }
            }
        };
        let result = match std::fs::read_to_string(&path) {
            Ok(json) => transport.deliver(json.trim_end()),
            // Gone (removed by hand): nothing to deliver.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("could not read spool file {}: {e}", path.display())),
        };
        match result {
            Ok(()) => {
                let removed = Spool::remove(&path);
                let mut q = lock.lock().unwrap();
                q.pending.pop_front();
                q.delivered += 1;
                cv.notify_all();
                drop(q);
                if let Err(e) = removed {
                    report(Status::Failing(format!(
                        "delivered, but could not remove {}: {e}",
                        path.display()
                    )));
                }
                if failures > 0 {
                    report(Status::Recovered { failures });
                    failures = 0;
                }
                delay = backoff.initial;
            }
            Err(e) => {
                if failures == 0 {
                    report(Status::Failing(e));
                }
                failures += 1;
                let deadline = Instant::now() + delay;
                let mut q = lock.lock().unwrap();
                while !q.stop && !q.nudge {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    q = cv.wait_timeout(q, deadline - now).unwrap().0;
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

    /// Fails the first `fail` attempts, then records what it receives.
    struct Flaky {
        fail: usize,
        attempts: Arc<AtomicUsize>,
        got: Arc<Mutex<Vec<String>>>,
    }

    impl Transport for Flaky {
        fn deliver(&mut self, json: &str) -> Result<(), String> {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                return Err(format!("attempt {n} refused"));
            }
            self.got.lock().unwrap().push(json.to_string());
            Ok(())
        }
    }

    #[test]
    fn retries_in_order_until_delivered() {
        let dir =
            std::env::temp_dir().join(format!("recognizer-worker-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (spool, existing) = Spool::open(&dir).unwrap();
        let old = spool.write("old", "old").unwrap();
        drop(spool);
        let (spool, existing2) = Spool::open(&dir).unwrap();
        assert!(existing.is_empty());
        let attempts = Arc::new(AtomicUsize::new(0));
        let got = Arc::new(Mutex::new(Vec::new()));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let r = reports.clone();
        let worker = Worker::start(
            "test",
            existing2,
            Box::new(Flaky {
                fail: 3,
                attempts: attempts.clone(),
                got: got.clone(),
            }),
            Backoff {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(20),
            },
            Box::new(move |s| {
                r.lock().unwrap().push(match s {
                    Status::Failing(e) => e,
                    Status::Recovered { failures } => format!("recovered after {failures}"),
                })
            }),
        )
        .unwrap();
        for i in 0..5 {
            worker.enqueue(spool.write(&format!("id{i}"), &format!("e{i}")).unwrap());
        }
        assert_eq!(worker.flush(Duration::from_secs(30)), 0);
        assert_eq!(
            *got.lock().unwrap(),
            vec!["old", "e0", "e1", "e2", "e3", "e4"]
        );
        assert_eq!(
            *reports.lock().unwrap(),
            vec![
                "attempt 0 refused".to_string(),
                "recovered after 3".to_string()
            ]
        );
        assert!(!old.exists());
        assert_eq!(Spool::count(&dir), 0);
        assert_eq!(worker.stop(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_keeps_undelivered_events() {
        let dir =
            std::env::temp_dir().join(format!("recognizer-worker-stop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (spool, existing) = Spool::open(&dir).unwrap();
        let worker = Worker::start(
            "test",
            existing,
            Box::new(Flaky {
                fail: usize::MAX,
                attempts: Arc::new(AtomicUsize::new(0)),
                got: Default::default(),
            }),
            Backoff {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(10),
            },
            Box::new(|_| {}),
        )
        .unwrap();
        worker.enqueue(spool.write("a", "a").unwrap());
        worker.enqueue(spool.write("b", "b").unwrap());
        assert_eq!(worker.flush(Duration::from_millis(50)), 2);
        assert_eq!(worker.stop(), 2);
        assert_eq!(Spool::count(&dir), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
