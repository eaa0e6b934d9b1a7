//! Pose model sessions shared by several `rtmopose` elements of one process (`session-group`).
//!
//! An NVR runs one pipeline (or one branch) per camera. With a session each, N cameras load the
//! model N times and run N small inference calls per frame period. A group loads it once; a worker
//! thread runs the frames its members submit, and when the model's batch dimension is dynamic it
//! gathers the frames that arrive together into one call (up to `max_batch`, waiting at most
//! `batch_timeout` after the first). On a GPU one call of B frames costs far less than B calls.
//!
//! A member blocks in [`Member::infer`] until its frame has run. The worker stops waiting for more
//! frames as soon as every active member has one queued, so streams that run in lock-step (files,
//! synchronised cameras) never wait for the timeout. A member at end-of-stream is inactive, so the
//! others do not wait for it.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::{Arc, Condvar, LazyLock, Mutex, Weak, mpsc},
    thread,
    time::{Duration, Instant},
};

use recognizer_core::pose::{DecodeParams, Letterbox, PoseDetection};

use crate::{
    onnx::{Device, SessionRequest},
    pose_model::{BatchItem, Contract, ModelFormat, PoseModel},
};

/// What a group runs and how it batches: every member must ask for the same.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupConfig {
    pub model: PathBuf,
    pub device: Device,
    pub fallback_to_cpu: bool,
    pub threads: usize,
    pub format: ModelFormat,
    pub max_batch: usize,
    pub batch_timeout: Duration,
}

impl GroupConfig {
    fn describe(&self) -> String {
        format!(
            "model={} device={} fallback-to-cpu={} threads={} model-format={} max-batch={} batch-timeout={}",
            self.model.display(),
            self.device,
            self.fallback_to_cpu,
            self.threads,
            self.format,
            self.max_batch,
            self.batch_timeout.as_micros()
        )
    }
}

/// The answer to one submitted frame.
pub struct Reply {
    pub result: Result<Vec<PoseDetection>, String>,
    /// The submitted input tensor, handed back for the next frame.
    pub input: Vec<f32>,
    /// Frames in the call this one ran in (1 = alone).
    pub batch_size: usize,
}

struct Request {
    member: u64,
    input: Vec<f32>,
    letterbox: Letterbox,
    params: DecodeParams,
    arrived: Instant,
    reply: mpsc::SyncSender<Reply>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Request>,
    /// Members and whether they are active (not at end-of-stream).
    members: HashMap<u64, bool>,
    next_member: u64,
    shutdown: bool,
}

impl Queue {
    fn active_members(&self) -> usize {
        self.members.values().filter(|active| **active).count()
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// One loaded model and the worker that runs it. Dropped with its last member.
pub struct Group {
    name: String,
    config: GroupConfig,
    contract: Contract,
    execution_provider: &'static str,
    fallback_reason: Option<String>,
    shared: Arc<Shared>,
    worker: Option<thread::JoinHandle<()>>,
}

impl Drop for Group {
    fn drop(&mut self) {
        self.shared.queue.lock().unwrap().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Why an element could not join its group.
#[derive(Debug)]
pub enum JoinError {
    /// The group exists with other settings.
    Mismatch(String),
    /// The group's model could not be loaded or its thread started.
    Load(String),
}

/// Groups by name. Weak: a group lives as long as one of its members.
static GROUPS: LazyLock<Mutex<HashMap<String, Weak<Group>>>> = LazyLock::new(Default::default);

/// Joins the group `name`, loading its model if this is the first member. A group that exists
/// with other settings is an error naming both, since its members could not share one session.
pub fn join(name: &str, config: GroupConfig) -> Result<Member, JoinError> {
    let mut groups = GROUPS.lock().unwrap();
    groups.retain(|_, group| group.strong_count() > 0);
    let group = match groups.get(name).and_then(Weak::upgrade) {
        Some(group) => {
            if group.config != config {
                return Err(JoinError::Mismatch(format!(
                    "session-group '{name}' already runs {}; this element asks for {}: elements sharing a session must set the same model, device, threads and batching",
                    group.config.describe(),
                    config.describe()
                )));
            }
            group
        }
        None => {
            let group = Arc::new(Group::start(name, config).map_err(JoinError::Load)?);
            groups.insert(name.to_string(), Arc::downgrade(&group));
            group
        }
    };
    let id = {
        let mut queue = group.shared.queue.lock().unwrap();
        let id = queue.next_member;
        queue.next_member += 1;
        queue.members.insert(id, true);
        id
    };
    Ok(Member { group, id })
}

impl Group {
    fn start(name: &str, config: GroupConfig) -> Result<Self, String> {
        let request = SessionRequest {
            model: &config.model,
            device: config.device,
            fallback_to_cpu: config.fallback_to_cpu,
            threads: config.threads,
        };
        let model = PoseModel::load(&request, config.format)?;
        let contract = model.contract.clone();
        let execution_provider = model.execution_provider;
        let fallback_reason = model.fallback_reason.clone();
        // A model with a fixed batch of 1 still shares its session; it just never batches.
        let max_batch = if contract.dynamic_batch {
            config.max_batch.max(1)
        } else {
            1
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let worker = {
            let (shared, timeout) = (shared.clone(), config.batch_timeout);
            thread::Builder::new()
                .name(format!("pose-group-{name}"))
                .spawn(move || run_worker(model, &shared, max_batch, timeout))
                .map_err(|e| {
                    format!("could not start the inference thread of session-group '{name}': {e}")
                })?
        };
        Ok(Self {
            name: name.to_string(),
            config,
            contract,
            execution_provider,
            fallback_reason,
            shared,
            worker: Some(worker),
        })
    }
}

impl Queue {
    /// The next batch if it is ready at `now`: `max_batch` frames, one from every active member,
    /// or the first frame has waited `timeout` since it arrived or since the worker became free
    /// (`free_since`), whichever is later. Counting from when the worker is free matters: a frame
    /// that queued during the previous call would otherwise always leave alone, and two streams
    /// would settle into taking turns instead of sharing calls. Otherwise, when to look again.
    fn take_ready(
        &mut self,
        max_batch: usize,
        timeout: Duration,
        free_since: Instant,
        now: Instant,
    ) -> Result<Vec<Request>, Option<Instant>> {
        let Some(first) = self.pending.front() else {
            return Err(None);
        };
        let deadline = first.arrived.max(free_since) + timeout;
        let enough = self.pending.len() >= max_batch.min(self.active_members().max(1));
        if enough || now >= deadline {
            let n = self.pending.len().min(max_batch);
            Ok(self.pending.drain(..n).collect())
        } else {
            Err(Some(deadline))
        }
    }
}

/// Waits for the next batch ([`Queue::take_ready`]); `None` at shutdown.
fn next_batch(
    shared: &Shared,
    max_batch: usize,
    timeout: Duration,
    free_since: Instant,
) -> Option<Vec<Request>> {
    let mut queue = shared.queue.lock().unwrap();
    loop {
        if queue.shutdown {
            return None;
        }
        let now = Instant::now();
        queue = match queue.take_ready(max_batch, timeout, free_since, now) {
            Ok(batch) => return Some(batch),
            Err(Some(deadline)) => shared.wake.wait_timeout(queue, deadline - now).unwrap().0,
            Err(None) => shared.wake.wait(queue).unwrap(),
        };
    }
}

fn run_worker(mut model: PoseModel, shared: &Shared, max_batch: usize, timeout: Duration) {
    let mut free_since = Instant::now();
    while let Some(batch) = next_batch(shared, max_batch, timeout, free_since) {
        let items: Vec<BatchItem<'_>> = batch
            .iter()
            .map(|r| BatchItem {
                input: &r.input,
                letterbox: r.letterbox,
                params: r.params,
            })
            .collect();
        let results = match model.run_batch(&items) {
            Ok(results) => results,
            Err(e) => vec![Err(e); batch.len()],
        };
        let batch_size = batch.len();
        for (request, result) in batch.into_iter().zip(results) {
            // A member that went away (its element stopped) no longer listens: nothing to do.
            let _ = request.reply.send(Reply {
                result,
                input: request.input,
                batch_size,
            });
        }
        free_since = Instant::now();
    }
}

/// One element's place in a group.
pub struct Member {
    group: Arc<Group>,
    id: u64,
}

impl Member {
    pub fn contract(&self) -> &Contract {
        &self.group.contract
    }

    pub fn execution_provider(&self) -> &'static str {
        self.group.execution_provider
    }

    pub fn fallback_reason(&self) -> Option<&str> {
        self.group.fallback_reason.as_deref()
    }

    pub fn group_name(&self) -> &str {
        &self.group.name
    }

    /// Elements in the group now, this one included.
    pub fn members(&self) -> usize {
        self.group.shared.queue.lock().unwrap().members.len()
    }

    /// Runs one letterboxed frame (a tensor of `contract().input_len()` values) and waits for its
    /// persons. Marks this member active again after end-of-stream.
    pub fn infer(&self, input: Vec<f32>, letterbox: Letterbox, params: DecodeParams) -> Reply {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut queue = self.group.shared.queue.lock().unwrap();
            queue.members.insert(self.id, true);
            queue.pending.push_back(Request {
                member: self.id,
                input,
                letterbox,
                params,
                arrived: Instant::now(),
                reply,
            });
        }
        self.group.shared.wake.notify_all();
        answer.recv().unwrap_or_else(|_| Reply {
            result: Err(format!(
                "the inference thread of session-group '{}' stopped",
                self.group.name
            )),
            input: Vec::new(),
            batch_size: 0,
        })
    }

    /// An inactive member (at end-of-stream) is not waited for when a batch is gathered.
    pub fn set_active(&self, active: bool) {
        self.group
            .shared
            .queue
            .lock()
            .unwrap()
            .members
            .insert(self.id, active);
        self.group.shared.wake.notify_all();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        {
            let mut queue = self.group.shared.queue.lock().unwrap();
            queue.members.remove(&self.id);
            // Frames it left queued would answer nobody.
            queue.pending.retain(|r| r.member != self.id);
        }
        self.group.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: DecodeParams = DecodeParams {
        score_threshold: 0.3,
        nms_threshold: 0.65,
        max_persons: 20,
    };

    fn queue(members: &[bool]) -> Queue {
        Queue {
            members: members
                .iter()
                .copied()
                .enumerate()
                .map(|(i, a)| (i as u64, a))
                .collect(),
            ..Default::default()
        }
    }

    fn submit(queue: &mut Queue, member: u64, arrived: Instant) {
        let (reply, _) = mpsc::sync_channel(1);
        let letterbox = Letterbox::new(640, 480, 640, 640);
        queue.pending.push_back(Request {
            member,
            input: Vec::new(),
            letterbox,
            params: PARAMS,
            arrived,
            reply,
        });
    }

    fn members(batch: &[Request]) -> Vec<u64> {
        batch.iter().map(|r| r.member).collect()
    }

    #[test]
    fn waits_for_every_active_member_then_goes_at_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let timeout = Duration::from_millis(10);
        let mut q = queue(&[true, true, true]);
        assert_eq!(
            q.take_ready(8, timeout, t0, ms(0)).err(),
            Some(None),
            "nothing queued"
        );
        submit(&mut q, 0, ms(1));
        submit(&mut q, 1, ms(2));
        // Two of three: wait until 10 ms after the first.
        assert_eq!(
            q.take_ready(8, timeout, t0, ms(5)).err(),
            Some(Some(ms(11)))
        );
        submit(&mut q, 2, ms(6));
        assert_eq!(
            members(&q.take_ready(8, timeout, t0, ms(6)).unwrap()),
            [0, 1, 2]
        );
        assert!(q.pending.is_empty());
    }

    #[test]
    fn the_timeout_sends_what_is_there() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut q = queue(&[true, true]);
        submit(&mut q, 1, ms(0));
        assert_eq!(
            members(
                &q.take_ready(8, Duration::from_millis(10), t0, ms(10))
                    .unwrap()
            ),
            [1]
        );
    }

    #[test]
    fn members_at_end_of_stream_are_not_waited_for() {
        let t0 = Instant::now();
        let mut q = queue(&[true, false]);
        submit(&mut q, 0, t0);
        assert_eq!(
            members(&q.take_ready(8, Duration::from_secs(3600), t0, t0).unwrap()),
            [0]
        );
    }

    #[test]
    fn batches_hold_at_most_max_batch_frames_in_arrival_order() {
        let t0 = Instant::now();
        let mut q = queue(&[true; 5]);
        for m in [3, 0, 4, 1, 2] {
            submit(&mut q, m, t0);
        }
        assert_eq!(
            members(&q.take_ready(2, Duration::from_secs(3600), t0, t0).unwrap()),
            [3, 0]
        );
        // Two more are a full batch again; the last one waits for the timeout or for company.
        assert_eq!(
            members(&q.take_ready(2, Duration::from_secs(3600), t0, t0).unwrap()),
            [4, 1]
        );
        assert!(q.take_ready(2, Duration::from_secs(3600), t0, t0).is_err());
    }

    #[test]
    fn a_frame_queued_during_a_call_waits_for_company_after_it() {
        // Frame of member 1 arrived at 0 ms while a call ran until 50 ms: it must not leave alone
        // at once (the timeout counts from 50 ms), so member 0's next frame can join it.
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut q = queue(&[true, true]);
        submit(&mut q, 1, ms(0));
        assert_eq!(
            q.take_ready(8, Duration::from_millis(10), ms(50), ms(52))
                .err(),
            Some(Some(ms(60)))
        );
        submit(&mut q, 0, ms(53));
        assert_eq!(
            members(
                &q.take_ready(8, Duration::from_millis(10), ms(50), ms(53))
                    .unwrap()
            ),
            [1, 0]
        );
    }
}
