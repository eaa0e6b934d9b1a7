//! The pose inference engine behind `rtmopose`: one loaded model, its input memory and a worker
//! thread that runs the frames its members submit.
//!
//! Every `rtmopose` element runs its frames through an engine. Alone, it has a private one. With a
//! `session-group`, the elements of one process that name the same group share one engine: the
//! model is loaded once, and when its batch dimension is dynamic the frames that arrive together
//! run in one call (up to `max_batch`, waiting at most `batch_timeout` after the first). On a GPU
//! one call of B frames costs far less than B calls.
//!
//! Frames are letterboxed by the members, in their own streaming threads, straight into the
//! engine's input memory (pinned host memory on CUDA): there is no gather copy, and the one copy
//! per call is ONNX Runtime's host-to-device transfer. The memory is two arenas of `max_batch`
//! frame slots: while the worker runs the frames of one arena, members fill the other, so the
//! pre-processing of the next frames overlaps the inference of the current ones.
//!
//! A member [`claim`](Member::claim)s a slot (waiting while both arenas are busy), fills it,
//! [`submit`](Slot::submit)s it and later [`wait`](Pending::wait)s for its persons. The worker
//! starts a call once every claimed slot of the filling arena is submitted and either the arena is
//! full, every active member has a frame in it, or `batch_timeout` has passed since the first
//! frame (or since the worker became free, whichever is later). A member at end-of-stream is
//! inactive, so the others do not wait for it.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Condvar, LazyLock, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use recognizer_core::pose::{DecodeParams, Letterbox, PoseDetection};

use crate::{
    onnx::{Device, SessionRequest},
    pose_model::{Contract, FrameArena, ModelFormat, PoseModel},
};

/// What an engine runs and how it batches: every member of a group must ask for the same.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    pub model: PathBuf,
    pub device: Device,
    pub fallback_to_cpu: bool,
    pub threads: usize,
    pub format: ModelFormat,
    pub max_batch: usize,
    pub batch_timeout: Duration,
}

impl EngineConfig {
    fn describe(&self) -> String {
        format!(
            "model={} device={} fallback-to-cpu={} threads={} model-format={} max-batch={} batch-timeout-us={}",
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
    /// Frames in the call this one ran in (1 = alone).
    pub batch_size: usize,
    /// Whether frames of other members ran in the same call.
    pub shared: bool,
    /// How long that call took (inference and decoding of all its frames).
    pub call_time: Duration,
}

/// A submitted frame, waiting in an arena.
struct Request {
    member: u64,
    letterbox: Letterbox,
    params: DecodeParams,
    reply: mpsc::SyncSender<Reply>,
}

enum SlotState {
    /// This member is filling it.
    Claimed(u64),
    Submitted(Request),
    /// Claimed and given up (its element stopped or the frame could not be read); it runs with
    /// the call, as the slots are contiguous, and its result goes nowhere.
    Abandoned,
}

#[derive(Default)]
struct ArenaQueue {
    slots: Vec<SlotState>,
    /// The worker is running it: no claims until it is emptied.
    running: bool,
    first_submitted: Option<Instant>,
}

impl ArenaQueue {
    /// Members with a frame submitted.
    fn members(&self) -> usize {
        let mut members: Vec<u64> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                SlotState::Submitted(r) => Some(r.member),
                _ => None,
            })
            .collect();
        members.sort_unstable();
        members.dedup();
        members.len()
    }

    fn all_settled(&self) -> bool {
        !self
            .slots
            .iter()
            .any(|s| matches!(s, SlotState::Claimed(_)))
    }

    /// Whether `member` has a slot here (claimed or submitted).
    fn holds(&self, member: u64) -> bool {
        self.slots.iter().any(|s| match s {
            SlotState::Claimed(m) => *m == member,
            SlotState::Submitted(r) => r.member == member,
            SlotState::Abandoned => false,
        })
    }
}

#[derive(Default)]
struct Queue {
    arenas: [ArenaQueue; 2],
    /// The arena that takes claims.
    filling: usize,
    /// Members and whether they are active (not at end-of-stream).
    members: HashMap<u64, bool>,
    next_member: u64,
    shutdown: bool,
}

impl Queue {
    fn active_members(&self) -> usize {
        self.members.values().filter(|active| **active).count()
    }

    /// Whether the filling arena should run now: every claimed slot is submitted, and the arena
    /// is full, or holds a frame of every active member (of `max_batch` members when there are
    /// more), or its first frame has waited `timeout`
    /// since it arrived or since the worker became free (`free_since`), whichever is later.
    /// Counting from when the worker is free matters: a frame that queued during the previous
    /// call would otherwise always leave alone, and two streams would settle into taking turns
    /// instead of sharing calls. Otherwise, when to look again (`None`: when woken).
    fn ready(
        &self,
        max_batch: usize,
        timeout: Duration,
        free_since: Instant,
        now: Instant,
    ) -> Result<(), Option<Instant>> {
        let arena = &self.arenas[self.filling];
        if arena.slots.is_empty() || !arena.all_settled() {
            return Err(None);
        }
        let Some(first) = arena.first_submitted else {
            // Only abandoned slots: the worker clears them.
            return Ok(());
        };
        let enough = arena.slots.len() >= max_batch
            || arena.members() >= max_batch.min(self.active_members().max(1));
        let deadline = first.max(free_since) + timeout;
        if enough || now >= deadline {
            Ok(())
        } else {
            Err(Some(deadline))
        }
    }
}

/// Figures of an engine since it was started.
#[derive(Default)]
pub struct EngineStats {
    /// Inference calls.
    pub calls: AtomicU64,
    /// Frames run (abandoned slots not counted).
    pub frames: AtomicU64,
    /// Time spent in calls (inference and decoding), in nanoseconds.
    pub call_ns: AtomicU64,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the worker: a slot was submitted or abandoned, or shutdown.
    work: Condvar,
    /// Wakes members waiting for a slot: an arena was sealed or emptied.
    space: Condvar,
    arenas: [FrameArena; 2],
    max_batch: usize,
    stats: EngineStats,
}

/// One loaded model, its arenas and the worker that runs them. Dropped with its last member.
pub struct Engine {
    group: Option<String>,
    config: EngineConfig,
    contract: Contract,
    execution_provider: &'static str,
    fallback_reason: Option<String>,
    /// Why the inputs are not in pinned memory (CUDA only).
    unpinned_reason: Option<String>,
    /// Why ONNX Runtime's IO binding is not used, if it is not.
    binding_error: Option<String>,
    /// The model's warm-up call at load.
    first_call: Duration,
    shared: Arc<Shared>,
    worker: Option<thread::JoinHandle<()>>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.queue.lock().unwrap().shutdown = true;
        self.shared.work.notify_all();
        self.shared.space.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Why an element could not get an engine.
#[derive(Debug)]
pub enum JoinError {
    /// The group exists with other settings.
    Mismatch(String),
    /// The model could not be loaded or its thread started.
    Load(String),
}

/// Groups by name. Weak: a group lives as long as one of its members.
static GROUPS: LazyLock<Mutex<HashMap<String, Weak<Engine>>>> = LazyLock::new(Default::default);

/// An engine of its own for one element (frames run one at a time, the next one prepared while
/// the current one runs).
pub fn start_private(mut config: EngineConfig) -> Result<Member, JoinError> {
    config.max_batch = 1;
    let engine = Arc::new(Engine::start(None, config).map_err(JoinError::Load)?);
    Ok(Member::new(engine))
}

/// Joins the group `name`, loading its model if this is the first member. A group that exists
/// with other settings is an error naming both, since its members could not share one session.
pub fn join(name: &str, config: EngineConfig) -> Result<Member, JoinError> {
    let mut groups = GROUPS.lock().unwrap();
    groups.retain(|_, engine| engine.strong_count() > 0);
    let engine = match groups.get(name).and_then(Weak::upgrade) {
        Some(engine) => {
            if engine.config != config {
                return Err(JoinError::Mismatch(format!(
                    "session-group '{name}' already runs {}; this element asks for {}: elements sharing a session must set the same model, device, threads and batching",
                    engine.config.describe(),
                    config.describe()
                )));
            }
            engine
        }
        None => {
            let engine = Arc::new(Engine::start(Some(name), config).map_err(JoinError::Load)?);
            groups.insert(name.to_string(), Arc::downgrade(&engine));
            engine
        }
    };
    Ok(Member::new(engine))
}

impl Engine {
    fn start(group: Option<&str>, config: EngineConfig) -> Result<Self, String> {
        let request = SessionRequest {
            model: &config.model,
            device: config.device,
            fallback_to_cpu: config.fallback_to_cpu,
            threads: config.threads,
        };
        let mut model = PoseModel::load(&request, config.format)?;
        let contract = model.contract.clone();
        // A model with a fixed batch of 1 still shares its session; it just never batches.
        let max_batch = if contract.dynamic_batch {
            config.max_batch.max(1)
        } else {
            1
        };
        let mut arenas = [
            model.allocate_frames(max_batch)?,
            model.allocate_frames(max_batch)?,
        ];
        if model.execution_provider == crate::onnx::CUDA_EXECUTION_PROVIDER {
            warm_up_batch_sizes(&mut model, &mut arenas[0])?;
        }
        let unpinned_reason = arenas[0].unpinned_reason.clone();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            space: Condvar::new(),
            arenas,
            max_batch,
            stats: EngineStats::default(),
        });
        let execution_provider = model.execution_provider;
        let fallback_reason = model.fallback_reason.clone();
        let binding_error = model.binding_error.clone();
        let first_call = model.first_call;
        let worker = {
            let (shared, timeout) = (shared.clone(), config.batch_timeout);
            thread::Builder::new()
                .name(match group {
                    Some(name) => format!("pose-group-{name}"),
                    None => "pose-engine".to_string(),
                })
                .spawn(move || run_worker(model, &shared, timeout))
                .map_err(|e| format!("could not start the pose inference thread: {e}"))?
        };
        Ok(Self {
            group: group.map(str::to_string),
            config,
            contract,
            execution_provider,
            fallback_reason,
            unpinned_reason,
            binding_error,
            first_call,
            shared,
            worker: Some(worker),
        })
    }
}

/// Decoding settings for a frame whose persons nobody reads (warm-up, abandoned slots).
const IGNORED: (Letterbox, DecodeParams) = (
    Letterbox {
        src_width: 1,
        src_height: 1,
        dst_width: 1,
        dst_height: 1,
        scale: 1.0,
        resized_width: 1,
        resized_height: 1,
    },
    DecodeParams {
        score_threshold: 1.0,
        nms_threshold: 1.0,
        max_persons: 0,
    },
);

/// Runs every batch size once. On CUDA the first call of each input shape chooses its cuDNN
/// algorithms and grows ONNX Runtime's memory arena: tens to hundreds of milliseconds that the
/// first frames of a session group would otherwise wait, stalling every stream of it.
fn warm_up_batch_sizes(model: &mut PoseModel, arena: &mut FrameArena) -> Result<(), String> {
    for frame in 0..arena.frames() {
        arena.frame_mut(frame).fill(0.0);
    }
    for frames in 2..=arena.frames() {
        model.run_frames(arena, &vec![IGNORED; frames])?;
    }
    Ok(())
}

/// Waits until the filling arena is ready ([`Queue::ready`]), seals it and switches the
/// filling arena; returns the sealed arena's index and its requests by slot (`None` for
/// abandoned slots), or `None` at shutdown.
#[allow(clippy::type_complexity)]
fn next_call(
    shared: &Shared,
    timeout: Duration,
    free_since: Instant,
) -> Option<(usize, Vec<Option<Request>>)> {
    let mut queue = shared.queue.lock().unwrap();
    loop {
        if queue.shutdown {
            return None;
        }
        let now = Instant::now();
        match queue.ready(shared.max_batch, timeout, free_since, now) {
            Ok(()) => break,
            Err(Some(deadline)) => {
                queue = shared.work.wait_timeout(queue, deadline - now).unwrap().0
            }
            Err(None) => queue = shared.work.wait(queue).unwrap(),
        }
    }
    let index = queue.filling;
    let arena = &mut queue.arenas[index];
    arena.running = true;
    let requests = arena
        .slots
        .iter_mut()
        .map(|slot| match std::mem::replace(slot, SlotState::Abandoned) {
            SlotState::Submitted(request) => Some(request),
            _ => None,
        })
        .collect();
    // The other arena is empty: the worker emptied it after its last call.
    queue.filling = 1 - index;
    drop(queue);
    shared.space.notify_all();
    Some((index, requests))
}

fn run_worker(mut model: PoseModel, shared: &Shared, timeout: Duration) {
    let mut free_since = Instant::now();
    while let Some((index, requests)) = next_call(shared, timeout, free_since) {
        let started = Instant::now();
        let frames = requests.iter().flatten().count();
        if frames > 0 {
            // Abandoned slots run too (the input is contiguous) with any settings; their
            // results are dropped.
            let items: Vec<(Letterbox, DecodeParams)> = requests
                .iter()
                .map(|r| match r {
                    Some(r) => (r.letterbox, r.params),
                    None => IGNORED,
                })
                .collect();
            let results = match model.run_frames(&shared.arenas[index], &items) {
                Ok(results) => results,
                Err(e) => vec![Err(e); items.len()],
            };
            let call_time = started.elapsed();
            let stats = &shared.stats;
            stats.calls.fetch_add(1, Ordering::Relaxed);
            stats.frames.fetch_add(frames as u64, Ordering::Relaxed);
            stats
                .call_ns
                .fetch_add(call_time.as_nanos() as u64, Ordering::Relaxed);
            let members: Vec<u64> = requests.iter().flatten().map(|r| r.member).collect();
            for (request, result) in requests.into_iter().zip(results) {
                if let Some(request) = request {
                    let shared = members.iter().any(|m| *m != request.member);
                    // A member that went away (its element stopped) no longer listens.
                    let _ = request.reply.send(Reply {
                        result,
                        batch_size: frames,
                        shared,
                        call_time,
                    });
                }
            }
        }
        {
            let mut queue = shared.queue.lock().unwrap();
            queue.arenas[index] = ArenaQueue::default();
        }
        shared.space.notify_all();
        free_since = Instant::now();
    }
}

/// One element's place in an engine.
pub struct Member {
    engine: Arc<Engine>,
    id: u64,
}

impl Member {
    fn new(engine: Arc<Engine>) -> Self {
        let id = {
            let mut queue = engine.shared.queue.lock().unwrap();
            let id = queue.next_member;
            queue.next_member += 1;
            queue.members.insert(id, true);
            id
        };
        Self { engine, id }
    }

    pub fn contract(&self) -> &Contract {
        &self.engine.contract
    }

    pub fn execution_provider(&self) -> &'static str {
        self.engine.execution_provider
    }

    pub fn fallback_reason(&self) -> Option<&str> {
        self.engine.fallback_reason.as_deref()
    }

    /// Why the input memory is not pinned, on CUDA.
    pub fn unpinned_reason(&self) -> Option<&str> {
        self.engine.unpinned_reason.as_deref()
    }

    /// Why ONNX Runtime's IO binding is not used, if it is not.
    pub fn binding_error(&self) -> Option<&str> {
        self.engine.binding_error.as_deref()
    }

    /// How long the model's first call (one frame, at load) took.
    pub fn first_call(&self) -> Duration {
        self.engine.first_call
    }

    /// The group's name; `None` for a private engine.
    pub fn group_name(&self) -> Option<&str> {
        self.engine.group.as_deref()
    }

    /// Frames per call at most.
    pub fn max_batch(&self) -> usize {
        self.engine.shared.max_batch
    }

    /// Elements using the engine now, this one included.
    pub fn members(&self) -> usize {
        self.engine.shared.queue.lock().unwrap().members.len()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.engine.shared.stats
    }

    /// A slot for one frame's input tensor; waits while both arenas are busy, and while the
    /// filling arena already holds a frame of this member (a stream running ahead of the others
    /// would otherwise fill a call with its own frames and leave theirs for the next). Marks this
    /// member active again after end-of-stream. Fails only when the engine is shutting down.
    pub fn claim(&self) -> Result<Slot<'_>, String> {
        let shared = &self.engine.shared;
        let mut queue = shared.queue.lock().unwrap();
        queue.members.insert(self.id, true);
        loop {
            if queue.shutdown {
                return Err("the pose inference thread stopped".to_string());
            }
            let filling = queue.filling;
            let arena = &mut queue.arenas[filling];
            if !arena.running && arena.slots.len() < shared.max_batch && !arena.holds(self.id) {
                arena.slots.push(SlotState::Claimed(self.id));
                let index = arena.slots.len() - 1;
                return Ok(Slot {
                    member: self,
                    arena: filling,
                    index,
                    submitted: false,
                });
            }
            queue = shared.space.wait(queue).unwrap();
        }
    }

    /// An inactive member (at end-of-stream) is not waited for when a call is gathered.
    pub fn set_active(&self, active: bool) {
        self.engine
            .shared
            .queue
            .lock()
            .unwrap()
            .members
            .insert(self.id, active);
        self.engine.shared.work.notify_all();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.engine
            .shared
            .queue
            .lock()
            .unwrap()
            .members
            .remove(&self.id);
        self.engine.shared.work.notify_all();
    }
}

/// A claimed slot: fill [`Slot::tensor`], then [`Slot::submit`]. Dropped unsubmitted, it is
/// abandoned (the call runs without waiting for it).
pub struct Slot<'m> {
    member: &'m Member,
    arena: usize,
    index: usize,
    submitted: bool,
}

impl Slot<'_> {
    /// The slot's input tensor (`contract().input_len()` values).
    pub fn tensor(&mut self) -> &mut [f32] {
        // SAFETY: the slot was claimed by this member alone, and its arena does not run until
        // every claimed slot is submitted or abandoned, which consumes `self`.
        unsafe { self.member.engine.shared.arenas[self.arena].frame_unchecked(self.index) }
    }

    /// Hands the filled tensor to the worker; [`Pending::wait`] gives its persons.
    pub fn submit(mut self, letterbox: Letterbox, params: DecodeParams) -> Pending {
        let (reply, answer) = mpsc::sync_channel(1);
        let shared = &self.member.engine.shared;
        {
            let mut queue = shared.queue.lock().unwrap();
            let arena = &mut queue.arenas[self.arena];
            arena.slots[self.index] = SlotState::Submitted(Request {
                member: self.member.id,
                letterbox,
                params,
                reply,
            });
            arena.first_submitted.get_or_insert_with(Instant::now);
        }
        self.submitted = true;
        shared.work.notify_all();
        Pending { answer }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.submitted {
            return;
        }
        let shared = &self.member.engine.shared;
        shared.queue.lock().unwrap().arenas[self.arena].slots[self.index] = SlotState::Abandoned;
        shared.work.notify_all();
    }
}

/// A submitted frame's answer to come.
pub struct Pending {
    answer: mpsc::Receiver<Reply>,
}

impl Pending {
    /// Waits for the frame's call to finish.
    pub fn wait(self) -> Reply {
        self.answer.recv().unwrap_or_else(|_| Reply {
            result: Err("the pose inference thread stopped before running the frame".to_string()),
            batch_size: 0,
            shared: false,
            call_time: Duration::ZERO,
        })
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
        let arena = &mut queue.arenas[queue.filling];
        arena.slots.push(SlotState::Submitted(Request {
            member,
            letterbox,
            params: PARAMS,
            reply,
        }));
        arena.first_submitted.get_or_insert(arrived);
    }

    #[test]
    fn waits_for_every_active_member_then_goes_at_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let timeout = Duration::from_millis(10);
        let mut q = queue(&[true, true, true]);
        assert_eq!(q.ready(8, timeout, t0, ms(0)), Err(None), "nothing queued");
        submit(&mut q, 0, ms(1));
        submit(&mut q, 1, ms(2));
        // Two of three: wait until 10 ms after the first.
        assert_eq!(q.ready(8, timeout, t0, ms(5)), Err(Some(ms(11))));
        submit(&mut q, 2, ms(6));
        assert_eq!(q.ready(8, timeout, t0, ms(6)), Ok(()));
    }

    #[test]
    fn the_timeout_sends_what_is_there() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut q = queue(&[true, true]);
        submit(&mut q, 1, ms(0));
        assert_eq!(
            q.ready(8, Duration::from_millis(10), t0, ms(9)),
            Err(Some(ms(10)))
        );
        assert_eq!(q.ready(8, Duration::from_millis(10), t0, ms(10)), Ok(()));
    }

    #[test]
    fn members_at_end_of_stream_are_not_waited_for() {
        let t0 = Instant::now();
        let mut q = queue(&[true, false]);
        submit(&mut q, 0, t0);
        assert_eq!(q.ready(8, Duration::from_secs(3600), t0, t0), Ok(()));
    }

    #[test]
    fn a_full_arena_goes_without_waiting() {
        let t0 = Instant::now();
        let mut q = queue(&[true; 5]);
        submit(&mut q, 3, t0);
        assert!(q.ready(2, Duration::from_secs(3600), t0, t0).is_err());
        submit(&mut q, 0, t0);
        assert_eq!(q.ready(2, Duration::from_secs(3600), t0, t0), Ok(()));
    }

    #[test]
    fn two_frames_of_one_member_wait_for_the_other_member() {
        let t0 = Instant::now();
        let mut q = queue(&[true, true]);
        submit(&mut q, 0, t0);
        submit(&mut q, 0, t0);
        assert!(q.ready(8, Duration::from_secs(3600), t0, t0).is_err());
        submit(&mut q, 1, t0);
        assert_eq!(q.ready(8, Duration::from_secs(3600), t0, t0), Ok(()));
    }

    #[test]
    fn a_slot_being_filled_holds_the_call() {
        let t0 = Instant::now();
        let mut q = queue(&[true]);
        submit(&mut q, 0, t0);
        q.arenas[0].slots.push(SlotState::Claimed(0));
        assert_eq!(q.ready(8, Duration::ZERO, t0, t0), Err(None));
        q.arenas[0].slots[1] = SlotState::Abandoned;
        assert_eq!(q.ready(8, Duration::ZERO, t0, t0), Ok(()));
    }

    #[test]
    fn a_frame_queued_during_a_call_waits_for_company_after_it() {
        // Member 1's frame arrived at 0 ms while a call ran until 50 ms: it must not leave alone
        // at once (the timeout counts from 50 ms), so member 0's next frame can join it.
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut q = queue(&[true, true]);
        submit(&mut q, 1, ms(0));
        assert_eq!(
            q.ready(8, Duration::from_millis(10), ms(50), ms(52)),
            Err(Some(ms(60)))
        );
        submit(&mut q, 0, ms(53));
        assert_eq!(
            q.ready(8, Duration::from_millis(10), ms(50), ms(53)),
            Ok(())
        );
    }
}
