//! Live pipelines: the elements that hold frames back answer latency queries with their
//! processing time, so that a preview with a synchronising sink (`sync=true`, as
//! `autovideosink`) does not drop frames as late because of them.
//!
//! - `stgcnclassify` adds its classification time to the upstream latency (the answer of its
//!   source pad exceeds that of its sink pad's peer); `rtmopose` does the same (tested with the
//!   element), `bytetrack` forwards the query (its work per frame is microseconds).
//! - A live stream (the falling clip, decoded and scaled beforehand, pushed by a live `appsrc` at
//!   its frame rate) through `rtmopose ! bytetrack ! stgcnclassify ! poseoverlay` into a
//!   `fakesink sync=true qos=true max-lateness=20000000` (a video sink's defaults): every frame
//!   reaches the sink and no QoS message (a frame dropped as late) is posted. The bus loop
//!   recalculates the latency when an element posts a latency message, as gst-launch-1.0 does;
//!   without that (the elements' later answers ignored), 14 of 40 frames were dropped with QoS
//!   messages when this test was written.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use gst::prelude::*;
use recognizer::{data, decoded_frames, fall_model, launch, rtmo_model};

const FALLING: &str = "media/video/ntu_S002C002P003R002A043_rgb_falling.avi";
const CAPS: &str = "video/x-raw,format=RGB,width=640,height=360,pixel-aspect-ratio=1/1";

/// The live latency (min) answered by `pad`'s peer, or by `pad` itself when `own` is set.
fn latency_at(pad: &gst::Pad, own: bool) -> gst::ClockTime {
    let mut q = gst::query::Latency::new();
    let answered = if own {
        pad.query(&mut q)
    } else {
        pad.peer_query(&mut q)
    };
    assert!(answered, "latency query unanswered at {}", pad.name());
    let (live, min, _max) = q.result();
    assert!(live, "a live pipeline answers live");
    min
}

#[test]
fn stgcnclassify_adds_its_processing_latency() {
    let pipeline = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=10/1 ! \
         stgcnclassify name=classify model-file=\"{}\" ! fakesink",
        fall_model().display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let (done, _, _) = pipeline.state(gst::ClockTime::from_seconds(60));
    done.unwrap();
    let classify = pipeline.by_name("classify").unwrap();
    let upstream = latency_at(&classify.static_pad("sink").unwrap(), false);
    let answered = latency_at(&classify.static_pad("src").unwrap(), true);
    println!("stgcnclassify: upstream {upstream}, answered {answered}");
    assert!(
        answered > upstream,
        "stgcnclassify answers {answered}, no more than upstream's {upstream}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The falling clip's frames `first..first + n`, scaled to [`CAPS`].
fn clip_frames(first: usize, n: usize) -> Vec<gst::Buffer> {
    let mut frames = decoded_frames(&data(FALLING), CAPS, Some(first + n));
    assert_eq!(frames.len(), first + n, "the clip is too short");
    frames.split_off(first)
}

#[test]
fn live_preview_through_the_chain_drops_no_frames() {
    // 3 frames a second: slower than the clip, so that this 2-core machine keeps up with the
    // pose model in a debug build (a stream faster than the model cannot be kept live by any
    // latency). Frames 30-59 hold the fall, so stgcnclassify classifies (stride 1).
    const FPS: u64 = 3;
    let frames = clip_frames(30, 30);
    let n = frames.len();
    let pipeline = launch(&format!(
        "appsrc name=src is-live=true format=time do-timestamp=true caps=\"{CAPS},framerate={FPS}/1\" ! \
         rtmopose model-file=\"{}\" score-threshold=0.1 ! bytetrack ! \
         stgcnclassify model-file=\"{}\" stride=1 ! poseoverlay ! \
         fakesink name=sink sync=true qos=true max-lateness=20000000 signal-handoffs=true",
        rtmo_model().display(),
        fall_model().display()
    ));
    let reached = Arc::new(Mutex::new(0usize));
    let counter = reached.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .connect("handoff", false, move |_| {
            *counter.lock().unwrap() += 1;
            None
        });
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    // Frames at the stream's pace; the buffers are stamped with the running time on arrival.
    let pusher = std::thread::spawn(move || {
        for frame in frames {
            let mut frame = frame.copy();
            {
                let b = frame.get_mut().unwrap();
                b.set_pts(gst::ClockTime::NONE);
                b.set_dts(gst::ClockTime::NONE);
            }
            if src.push_buffer(frame).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1000 / FPS));
        }
        let _ = src.end_of_stream();
    });
    let bus = pipeline.bus().unwrap();
    let (mut qos, mut latency_messages) = (Vec::new(), 0);
    // Hang guard only: the stream lasts n / FPS seconds.
    let guard = gst::ClockTime::from_seconds(n as u64 / FPS + 300);
    let outcome = loop {
        let Some(msg) = bus.timed_pop(guard) else {
            break Err("no EOS within the guard time".to_string());
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => break Err(e.error().to_string()),
            gst::MessageView::Latency(_) => {
                latency_messages += 1;
                let _ = pipeline.recalculate_latency();
            }
            gst::MessageView::Qos(q) => {
                let (_, dropped) = q.stats();
                qos.push(format!(
                    "{} dropped {dropped}, jitter {} ms",
                    msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    q.values().0 / 1_000_000
                ));
            }
            _ => {}
        }
    };
    pusher.join().unwrap();
    let mut q = gst::query::Latency::new();
    let answered = pipeline.query(&mut q);
    pipeline.set_state(gst::State::Null).unwrap();
    outcome.unwrap();
    println!(
        "live preview: {n} frames pushed, {} reached the sink, {latency_messages} latency messages, pipeline latency {:?}, QoS {qos:?}",
        reached.lock().unwrap(),
        answered.then(|| q.result())
    );
    assert!(qos.is_empty(), "frames dropped as late: {qos:?}");
    assert_eq!(*reached.lock().unwrap(), n, "every frame reaches the sink");
}
