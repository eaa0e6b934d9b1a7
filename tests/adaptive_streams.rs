//! Overload that degrades gracefully (issue 14, item 5): four live 30 fps cameras in one process,
//! each `appsrc ! queue leaky=downstream ! rtmopose adaptive-interval ! bytetrack ! stgcnclassify
//! ! eventsink`, one pose session shared by the four (`session-group`), on a machine that cannot
//! run the pose model on 120 frames a second.
//!
//! The camera: a live `appsrc` per stream pushes the decoded falling clip (looped [`LOOPS`]
//! times, scaled to an analytics sub-stream of 640x360) at 30 frames a second, each frame stamped
//! with its capture time (`n / 30 s` of running time) and pushed when the pipeline clock reaches
//! that time. That is what a camera does: its frames are taken on the sensor's schedule whether
//! or not the analysis keeps up, carry their capture time, and a late push (this process starved
//! of CPU) delivers a late frame, not a re-stamped one. A clock-synchronised `identity
//! sync=true` after a file's decoder would pace the frames too, but the pipeline would not be
//! live (a file source answers latency queries as not live) and `rtmopose` never adapts on a
//! file, by design.
//!
//! `four_live_streams_pass_every_frame_with_tracks` (four streams) shows:
//! - every frame that enters `rtmopose` leaves the pipeline: the frame log at `eventsink` holds
//!   exactly the frames the leaky queue let through (counted by pad probes on the queue), and the
//!   frames the queue dropped are exactly the gaps `rtmopose` counts in
//!   `frames-dropped-upstream` (plus any dropped before the first frame it saw, which leave no
//!   gap); `inferences + frames-skipped` is every frame it saw;
//! - the frames carry tracks: every frame `rtmopose` did not infer, after an inferred frame with
//!   a tracked person, carries `bytetrack`'s predicted tracked persons;
//! - the `recognizer-interval` bus messages, each stream's final `current-interval` and the
//!   engine's figures are printed.
//!
//! `four_live_streams_raise_every_fall_as_one_alone` (ignored, see below) runs one stream alone
//! and then the four (the same code and clock schedule), asserts the above for all of them, no
//! fall event before the first fall, and that each of the four raises the fall of every loop as
//! the stream alone does. A loop's fall is the event confirmed from 1.5 s into the loop (before
//! it the person stands) to 1.5 s into the next.
//!
//! The rule is the fall model card's *high recall* operating point (`class=fall min-score=0.10`,
//! models/fall_stgcnpp.md, "Operating points"), chosen by the card's reasoning, not by trying
//! values: under overload the classifier sees skeletons that the tracker predicted between
//! inferences, which the validation windows behind the points never held, and the card says that
//! away from its validation data an installer who must not miss falls takes high recall and
//! absorbs single-window false alarms with `min-frames` (3 here).
//!
//! Why the fall test is ignored (measured 2026-12-06, release build, this 2-core machine, the
//! 640x360 frames of the clip):
//! - Files at a fixed `interval` (the same chain and frame size, not paced): the highest fall
//!   probability of the clip is 0.745 at interval 1 (31 frames >= 0.10), 0.566 at 2 (31 frames),
//!   0.083 at 3, 0.033 at 4 and 0.018-0.031 at 5, 6, 8, 10 and 15 (no frame >= 0.10). So no
//!   documented point (0.10, 0.50, 0.80) sees the fall at interval 3 or more.
//! - One live stream alone, load average about 2: the interval moved 1-3 (messages 1->2->3,
//!   3->2->1, 1->2->3), 270 of 270 frames at the sink, 119 inferred; the fall probability per
//!   loop 0.083, 0.670, 0.704; events in loops 2 and 3 (confirmed at 5.00 s and 8.00 s, p 0.23
//!   and 0.25), none in loop 1 (the interval was 3 while the model warmed up). Beside other
//!   work (load 6-10; another process using a core): the interval rose to 7-9 within 4 s and
//!   stayed, 231-247 frames of 270 at the sink (23-39 dropped by the queue), 37-43 inferred,
//!   fall probability at most 0.038, no event; beside the four-stream test and two busy loops:
//!   interval 13, 103 frames at the sink, no event.
//! - Four streams (3 loops, five runs): the intervals rise one step per 500 ms at most, so they
//!   reach 11-15 by the end of the 9 s; 59-192 frames of 270 per stream at the sink (78-211
//!   dropped by the queues, every one counted by `frames-dropped-upstream`), 14-30 inferred per
//!   stream; fall probability at most 0.10 (one loop of one stream, 0.103, not 3 frames in a
//!   row); no event on any stream; `rtmopose` warned "Pose estimation is behind real time" at 15.
//!   Beside the fall_video tests or the test above and two busy loops: 14-38 frames of 270 at
//!   the sink, intervals 5-11, queueing up to 7.8 s (the camera threads themselves starved).
//!   Eight loops (24 s, load about 2): all four at 15 from about 7 s on, still 246-347 of 720
//!   frames dropped by the queues: the shared session made 158 calls in 28 s (153 ms each, 5.6
//!   frames a second for all four), fewer than the 8 a second that four streams at interval 15
//!   ask for, and each stream's thread waited 10-12.5 s for the engine's input memory
//!   (`slot-wait-ns`); one fall event in 32 loop falls (p 0.21).
//! - So every frame that is not dropped leaves the pipeline with the tracker's predictions, but
//!   the falls are lost: the classifier does not recognise a fall from the Kalman-predicted
//!   skeletons between inferences at interval 3 or more even with no frame dropped (the file
//!   runs), which issue 14 item 3 (a model trained with skipped frames and predicted skeletons)
//!   is to fix; at interval 15 the pose model is still too slow for four streams here.
//!
//! No wall-clock limit: the streams last `LOOPS * 3 s`; every wait is bounded by a hang guard that
//! the test asserts was not hit.

#[path = "support/events.rs"]
#[allow(dead_code)]
mod support;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use gst::prelude::*;
use recognizer::{data, decoded_frames, fall_model, launch, read_jsonl, rtmo_model};
use recognizer_meta::FrameRecord;
use support::temp_dir;

const FALLING: &str = "media/video/ntu_S002C002P003R002A043_rgb_falling.avi";
/// An analytics sub-stream of the camera (the pose model letterboxes to 640x640 anyway).
const CAPS: &str = "video/x-raw,format=RGB,width=640,height=360,pixel-aspect-ratio=1/1";
const FPS: u64 = 30;
/// Frames of the falling clip; the person stands until about frame 48 and lies on the floor
/// from about frame 56 to the end.
const CLIP_FRAMES: usize = 90;
/// Times the clip is played back to back on every stream: one fall each.
const LOOPS: usize = 3;
/// Streams of the loaded run.
const STREAMS: usize = 4;
/// `queue max-size-buffers` before `rtmopose`: a third of a second of frames.
const QUEUE_FRAMES: u32 = 10;
/// `rtmopose adaptive-interval`: at most every 15th frame inferred (two a second).
const MAX_INTERVAL: u32 = 15;
/// The card's high-recall operating point (models/fall_stgcnpp.md, "Operating points").
const HIGH_RECALL: f32 = 0.10;
/// Consecutive matching frames before an event, absorbing single-window false alarms.
const MIN_FRAMES: u32 = 3;
/// Longer than the time a fall lasts, shorter than the standing part of the next loop.
const COOLDOWN_MS: u64 = 1000;
/// A fall belongs to the loop in which its event is confirmed from this time into the loop
/// (before it the person of that loop stands) up to the same time into the next.
const FALL_FROM_NS: u64 = 1_500_000_000;
/// Hang guard of a run: its stream lasts `LOOPS * 3 s`.
const GUARD: Duration = Duration::from_secs(600);

const PERIOD_NS: u64 = 1_000_000_000 / FPS;
const LOOP_NS: u64 = CLIP_FRAMES as u64 * PERIOD_NS;

/// The falling clip, decoded and scaled to [`CAPS`].
fn decoded_clip() -> Vec<gst::Buffer> {
    let frames = decoded_frames(&data(FALLING), CAPS, None);
    assert_eq!(frames.len(), CLIP_FRAMES, "frames decoded from {FALLING}");
    frames
}

/// One camera's branch: its frames enter at `src{i}`, its frame log and events are written into
/// `dir`.
fn branch(i: usize, dir: &std::path::Path) -> String {
    format!(
        "appsrc name=src{i} is-live=true format=time caps=\"{CAPS},framerate={FPS}/1\" ! \
         queue name=queue{i} leaky=downstream max-size-buffers={QUEUE_FRAMES} max-size-bytes=0 max-size-time=0 ! \
         rtmopose name=pose{i} model-file=\"{pose}\" score-threshold=0.1 adaptive-interval={MAX_INTERVAL} session-group=adaptive-streams ! \
         bytetrack ! stgcnclassify model-file=\"{fall}\" ! \
         eventsink name=events{i} stream=cam{i} class=fall min-score={HIGH_RECALL} event-type=fall \
         min-frames={MIN_FRAMES} cooldown-ms={COOLDOWN_MS} post-messages=false async=false \
         location=\"{events}\" frames-location=\"{frames}\"",
        pose = rtmo_model().display(),
        fall = fall_model().display(),
        events = dir.join(format!("events{i}.jsonl")).display(),
        frames = dir.join(format!("frames{i}.jsonl")).display(),
    )
}

/// What one stream did.
#[derive(Debug)]
struct Stream {
    pushed: u64,
    /// Frames into and out of the leaky queue.
    queued: u64,
    dequeued: u64,
    frames: Vec<FrameRecord>,
    events: Vec<serde_json::Value>,
    /// `(interval, previous, queueing ms)` of each `recognizer-interval` message.
    interval_messages: Vec<(u32, u32, u64)>,
    current_interval: u32,
    inferences: u64,
    frames_skipped: u64,
    frames_dropped_upstream: u64,
}

/// Counts the buffers passing `pad`.
fn count_buffers(pad: &gst::Pad) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    count
}

/// Runs `streams` live cameras of the looped clip in one pipeline to EOS, writing into a
/// temporary directory named after `run` (unique in the test binary: the tests run in parallel).
fn run_cameras(run: &str, streams: usize, clip: &[gst::Buffer]) -> (Vec<Stream>, Vec<String>) {
    let dir = temp_dir(&format!("adaptive-streams-{run}"));
    let description: Vec<String> = (0..streams).map(|i| branch(i, &dir)).collect();
    let pipeline = launch(&description.join("  "));
    let element = |name: String| pipeline.by_name(&name).unwrap();
    let counters: Vec<_> = (0..streams)
        .map(|i| {
            let queue = element(format!("queue{i}"));
            (
                count_buffers(&queue.static_pad("sink").unwrap()),
                count_buffers(&queue.static_pad("src").unwrap()),
            )
        })
        .collect();
    let sources: Vec<gst_app::AppSrc> = (0..streams)
        .map(|i| element(format!("src{i}")).downcast().unwrap())
        .collect();

    let started = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    // The sinks do not wait for a first frame (`async=false`): the cameras start once PLAYING.
    let (changed, current, _) = pipeline.state(gst::ClockTime::from_seconds(GUARD.as_secs()));
    changed.expect("the pipeline reaches PLAYING");
    assert_eq!(current, gst::State::Playing, "the pipeline reaches PLAYING");
    let clock = pipeline.clock().expect("a playing pipeline has a clock");
    let base = pipeline
        .base_time()
        .expect("a playing pipeline has a base time");

    // Each camera takes frame n at n / FPS of running time and pushes it then; the buffers share
    // the decoded memory.
    let cameras: Vec<_> = sources
        .into_iter()
        .map(|src| {
            let (clip, clock) = (clip.to_vec(), clock.clone());
            std::thread::spawn(move || {
                let mut pushed = 0u64;
                for n in 0..(LOOPS * CLIP_FRAMES) as u64 {
                    let pts = gst::ClockTime::from_nseconds(n * PERIOD_NS);
                    let _ = clock.new_single_shot_id(base + pts).wait();
                    let mut frame = clip[n as usize % CLIP_FRAMES].copy();
                    {
                        let b = frame.get_mut().unwrap();
                        b.set_pts(pts);
                        b.set_dts(gst::ClockTime::NONE);
                        b.set_duration(gst::ClockTime::from_nseconds(PERIOD_NS));
                    }
                    if src.push_buffer(frame).is_err() {
                        break;
                    }
                    pushed += 1;
                }
                let _ = src.end_of_stream();
                pushed
            })
        })
        .collect();

    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + GUARD;
    let mut intervals: BTreeMap<String, Vec<(u32, u32, u64)>> = BTreeMap::new();
    let mut warnings = Vec::new();
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            break Err(format!(
                "no EOS within the hang guard ({} s)",
                GUARD.as_secs()
            ));
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!("{} ({:?})", e.error(), e.debug()));
            }
            gst::MessageView::Warning(w) => warnings.push(format!(
                "{}: {} ({:?})",
                msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                w.error(),
                w.debug()
            )),
            gst::MessageView::Latency(_) => {
                let _ = pipeline.recalculate_latency();
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "recognizer-interval") {
                    intervals
                        .entry(msg.src().unwrap().name().to_string())
                        .or_default()
                        .push((
                            s.get("interval").unwrap(),
                            s.get("previous").unwrap(),
                            s.get::<u64>("queueing-ns").unwrap() / 1_000_000,
                        ));
                }
            }
            _ => {}
        }
    };
    let pushed: Vec<u64> = cameras.into_iter().map(|c| c.join().unwrap()).collect();
    let poses: Vec<_> = (0..streams).map(|i| element(format!("pose{i}"))).collect();
    for p in &poses {
        println!("{}: {}", p.name(), p.property::<gst::Structure>("stats"));
    }
    let figures: Vec<_> = poses
        .iter()
        .map(|p| {
            (
                p.property::<u32>("current-interval"),
                p.property::<u64>("inferences"),
                p.property::<u64>("frames-skipped"),
                p.property::<u64>("frames-dropped-upstream"),
            )
        })
        .collect();
    pipeline.set_state(gst::State::Null).unwrap();
    outcome.unwrap();
    println!(
        "{streams} stream(s): {:.1} s from PLAYING to EOS",
        started.elapsed().as_secs_f64()
    );

    let streams = (0..streams)
        .map(|i| {
            let (current_interval, inferences, frames_skipped, frames_dropped_upstream) =
                figures[i];
            Stream {
                pushed: pushed[i],
                queued: counters[i].0.load(Ordering::Relaxed),
                dequeued: counters[i].1.load(Ordering::Relaxed),
                frames: read_jsonl(&dir.join(format!("frames{i}.jsonl"))),
                events: read_jsonl(&dir.join(format!("events{i}.jsonl"))),
                interval_messages: intervals.remove(&format!("pose{i}")).unwrap_or_default(),
                current_interval,
                inferences,
                frames_skipped,
                frames_dropped_upstream,
            }
        })
        .collect();
    (streams, warnings)
}

/// The loops whose fall raised an event, and the events confirmed before the first fall.
fn falls_per_loop(stream: &Stream) -> (Vec<usize>, Vec<u64>) {
    let mut loops = Vec::new();
    let mut early = Vec::new();
    for event in &stream.events {
        let end = event["end_pts_ns"].as_u64().expect("end_pts_ns");
        if end < FALL_FROM_NS {
            early.push(end);
            continue;
        }
        let k = ((end - FALL_FROM_NS) / LOOP_NS) as usize;
        if !loops.contains(&k) {
            loops.push(k);
        }
    }
    (loops, early)
}

/// The highest fall probability per loop (as above), for the record.
fn fall_scores_per_loop(stream: &Stream) -> Vec<f32> {
    let mut best = vec![0f32; LOOPS];
    for f in &stream.frames {
        let Some(pts) = f.pts_ns else { continue };
        let k = ((pts.saturating_sub(FALL_FROM_NS)) / LOOP_NS) as usize;
        for p in &f.persons {
            if let Some(s) = p.scores.as_ref().and_then(|s| s.get("fall")) {
                best[k.min(LOOPS - 1)] = best[k.min(LOOPS - 1)].max(s);
            }
        }
    }
    best
}

/// Checks and prints one stream; returns the loops whose fall it raised.
/// Whether a person of `f` has a track.
fn tracked(f: &FrameRecord) -> bool {
    f.persons.iter().any(|p| p.track_id.is_some())
}

/// The frames `rtmopose` did not infer although the inferred frame before them carried a
/// tracked person, and that carry no tracked person predicted by `bytetrack`.
fn skipped_without_predictions(s: &Stream) -> Vec<u64> {
    let mut last_inferred_tracked = false;
    let mut missing = Vec::new();
    for f in &s.frames {
        match f.inferred {
            Some(true) => last_inferred_tracked = tracked(f),
            _ => {
                let predicted = f
                    .persons
                    .iter()
                    .any(|p| p.predicted && p.track_id.is_some());
                if last_inferred_tracked && !predicted {
                    missing.push(f.frame);
                }
            }
        }
    }
    missing
}

/// Prints what `s` did; returns the loops whose fall it raised.
fn report(name: &str, s: &Stream) -> Vec<usize> {
    let not_inferred = s.frames.iter().filter(|f| f.inferred == Some(false));
    let predicted = not_inferred
        .clone()
        .filter(|f| {
            f.persons
                .iter()
                .any(|p| p.predicted && p.track_id.is_some())
        })
        .count();
    let leading = leading_drops(s);
    let (loops, early) = falls_per_loop(s);
    let events: Vec<String> = s
        .events
        .iter()
        .map(|e| {
            format!(
                "{:.2}-{:.2} s p {:.2}",
                e["start_pts_ns"].as_u64().unwrap_or(0) as f64 / 1e9,
                e["end_pts_ns"].as_u64().unwrap_or(0) as f64 / 1e9,
                e["score"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    println!(
        "{name}: pushed {}, into the queue {}, out of it {} (dropped {}; rtmopose frames-dropped-upstream {} + {leading} before its first frame), \
         at the sink {}; inferred {}, skipped {} (logged as not inferred {}, {predicted} of them with predicted tracked persons); \
         frames without a tracked person {}; \
         interval messages (interval, previous, queueing ms) {:?}; current-interval {}; \
         highest fall probability per loop {:?}; events {events:?} ({} before the first fall); falls raised in loops {loops:?}",
        s.pushed,
        s.queued,
        s.dequeued,
        s.queued - s.dequeued,
        s.frames_dropped_upstream,
        s.frames.len(),
        s.inferences,
        s.frames_skipped,
        not_inferred.count(),
        s.frames.iter().filter(|f| !tracked(f)).count(),
        s.interval_messages,
        s.current_interval,
        fall_scores_per_loop(s),
        early.len(),
    );
    loops
}

/// Frames the leaky queue dropped before the first frame `rtmopose` saw (they leave no gap).
fn leading_drops(s: &Stream) -> u64 {
    s.frames
        .first()
        .and_then(|f| f.pts_ns)
        .map_or(0, |pts| pts / PERIOD_NS)
}

/// Every frame that entered `rtmopose` left the pipeline, the frames the leaky queue dropped are
/// those `frames-dropped-upstream` counts, and the frames not inferred carry the tracker's
/// predictions of the tracks it reported on the inferred frame before them.
fn assert_every_frame_leaves_with_tracks(name: &str, s: &Stream) {
    let total = (LOOPS * CLIP_FRAMES) as u64;
    let at_sink = s.frames.len() as u64;
    assert_eq!(s.pushed, total, "{name}: frames pushed by the camera");
    assert_eq!(s.queued, total, "{name}: frames into the queue");
    assert_eq!(
        at_sink, s.dequeued,
        "{name}: every frame that left the queue reaches the sink"
    );
    assert_eq!(
        s.queued - s.dequeued,
        s.frames_dropped_upstream + leading_drops(s),
        "{name}: the frames the leaky queue dropped are the gaps rtmopose counts (and those before its first frame)"
    );
    assert_eq!(
        s.inferences + s.frames_skipped,
        at_sink,
        "{name}: every frame at rtmopose is inferred or skipped"
    );
    let not_inferred = s
        .frames
        .iter()
        .filter(|f| f.inferred == Some(false))
        .count() as u64;
    assert_eq!(
        not_inferred, s.frames_skipped,
        "{name}: frames logged as not inferred"
    );
    assert!(
        s.frames.iter().any(tracked),
        "{name}: no frame carries a track"
    );
    let missing = skipped_without_predictions(s);
    assert!(
        missing.is_empty(),
        "{name}: frames not inferred without the predicted persons of the tracks before them: {missing:?}"
    );
}

/// Four cameras at once: every frame that the leaky queues let through leaves the pipeline,
/// the dropped ones are counted by `rtmopose`, the frames it skipped carry `bytetrack`'s
/// predictions, and each stream's interval changes are printed.
#[test]
fn four_live_streams_pass_every_frame_with_tracks() {
    let clip = decoded_clip();
    let (streams, warnings) = run_cameras("four", STREAMS, &clip);
    println!("{STREAMS} streams, warnings: {warnings:?}");
    for (i, s) in streams.iter().enumerate() {
        report(&format!("cam{i} of {STREAMS}"), s);
    }
    for (i, s) in streams.iter().enumerate() {
        assert_every_frame_leaves_with_tracks(&format!("cam{i} of {STREAMS}"), s);
    }
}

/// Each of four cameras raises the fall of every loop, as one camera alone does.
#[test]
#[ignore = "the fall model does not see falls at interval 3 or more at any of its card's \
            operating points (fall probability <= 0.083; high recall is 0.10); four streams run \
            at 11-15 and raise none; figures in the module documentation"]
fn four_live_streams_raise_every_fall_as_one_alone() {
    let clip = decoded_clip();
    let (alone, warnings) = run_cameras("alone", 1, &clip);
    println!("one stream, warnings: {warnings:?}");
    let alone_loops = report("alone", &alone[0]);
    let (together, warnings) = run_cameras("four-beside-alone", STREAMS, &clip);
    println!("{STREAMS} streams, warnings: {warnings:?}");
    let loops: Vec<Vec<usize>> = together
        .iter()
        .enumerate()
        .map(|(i, s)| report(&format!("cam{i} of {STREAMS}"), s))
        .collect();

    assert_every_frame_leaves_with_tracks("alone", &alone[0]);
    for (i, s) in together.iter().enumerate() {
        assert_every_frame_leaves_with_tracks(&format!("cam{i} of {STREAMS}"), s);
    }
    for (name, s) in std::iter::once(("alone".to_string(), &alone[0])).chain(
        together
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("cam{i} of {STREAMS}"), s)),
    ) {
        let (_, early) = falls_per_loop(s);
        assert!(
            early.is_empty(),
            "{name}: fall events before the first fall, confirmed at {early:?} ns"
        );
    }
    assert_eq!(
        alone_loops.len(),
        LOOPS,
        "one stream alone raises the fall of every loop"
    );
    for (i, l) in loops.iter().enumerate() {
        assert_eq!(
            l.len(),
            alone_loops.len(),
            "cam{i} raised the falls of loops {l:?}, the stream alone of {alone_loops:?}"
        );
    }
}
