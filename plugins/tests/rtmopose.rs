//! `rtmopose` element tests: synthetic frames through a `gst_check::Harness` (the pose model of
//! the data directory runs on them; what it finds in a grey frame does not matter here), checking
//! the frame flow, the interval, flushes, adaptive pacing against a test clock and the counters.

// Shared by every element's test binary; this one needs only the harness.
#[allow(dead_code)]
mod support;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use gst::prelude::*;
use recognizer_meta::{PoseMeta, PoseMetaFlags};
use support::{FRAME_NS, harness};

const WIDTH: usize = 64;
const HEIGHT: usize = 48;
const CAPS: &str = "video/x-raw,format=I420,width=64,height=48,framerate=25/1";

fn pose_model() -> String {
    let data = std::env::var_os("RECOGNIZER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let model = data.join("models/pose/yolo11n-pose_rtmo-contract.onnx");
    assert!(
        model.is_file(),
        "missing {}: set RECOGNIZER_DATA",
        model.display()
    );
    model.display().to_string()
}

/// A grey I420 frame with PTS `index * FRAME_NS`.
fn grey_frame(index: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![128u8; WIDTH * HEIGHT * 3 / 2]);
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(index * FRAME_NS));
        b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
    }
    buffer
}

fn inferred(buffer: &gst::BufferRef) -> bool {
    let meta = buffer
        .meta::<PoseMeta>()
        .expect("every frame that passed rtmopose carries a PoseMeta");
    meta.frame_flags().contains(PoseMetaFlags::INFERRED)
}

fn flush(h: &mut gst_check::Harness) {
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(h.push_event(gst::event::Segment::new(&segment)));
}

#[test]
fn skipped_frames_say_so_and_a_flush_starts_the_interval_over() {
    let model = pose_model();
    let (mut h, _bus) = harness(
        "rtmopose",
        &[("model-file", model.as_str()), ("interval", "3")],
        CAPS,
    );
    for i in 0..4 {
        h.push(grey_frame(i)).unwrap();
    }
    let flags: Vec<bool> = (0..4).map(|_| inferred(&h.pull().unwrap())).collect();
    assert_eq!(flags, [true, false, false, true]);
    // Frames not inferred say so with an empty meta rather than none.
    h.push(grey_frame(4)).unwrap();
    let skipped = h.pull().unwrap();
    assert!(!inferred(&skipped));
    assert_eq!(skipped.meta::<PoseMeta>().unwrap().persons().len(), 0);

    flush(&mut h);
    for i in 0..2 {
        h.push(grey_frame(100 + i)).unwrap();
    }
    let flags: Vec<bool> = (0..2).map(|_| inferred(&h.pull().unwrap())).collect();
    assert_eq!(
        flags,
        [true, false],
        "the first frame after a flush is inferred"
    );

    let element = h.element().unwrap();
    let stats = element.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 3);
    assert_eq!(stats.get::<u64>("frames-skipped").unwrap(), 4);
    assert_eq!(element.property::<u64>("frames-skipped"), 4);
    assert_eq!(stats.get::<u64>("frames").unwrap(), 7);
}

#[test]
fn frames_and_events_leave_in_the_order_they_came() {
    let model = pose_model();
    let (mut h, _bus) = harness("rtmopose", &[("model-file", model.as_str())], CAPS);
    let seen = Arc::new(Mutex::new(Vec::new()));
    {
        let seen = seen.clone();
        let src = h.element().unwrap().static_pad("src").unwrap();
        src.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let entry = match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => {
                        format!("frame {}", b.pts().unwrap().nseconds() / FRAME_NS)
                    }
                    Some(gst::PadProbeData::Event(e)) => match e.structure() {
                        Some(s) if e.type_() == gst::EventType::CustomDownstream => {
                            s.name().to_string()
                        }
                        _ => return gst::PadProbeReturn::Ok,
                    },
                    _ => return gst::PadProbeReturn::Ok,
                };
                seen.lock().unwrap().push(entry);
                gst::PadProbeReturn::Ok
            },
        );
    }
    let marker = |name: &str| gst::event::CustomDownstream::new(gst::Structure::new_empty(name));
    h.push(grey_frame(0)).unwrap();
    h.push_event(marker("after-0"));
    h.push(grey_frame(1)).unwrap();
    h.push(grey_frame(2)).unwrap();
    h.push_event(marker("after-2"));
    assert!(h.push_event(gst::event::Eos::new()));
    // Every frame queued before EOS goes out before it.
    for _ in 0..3 {
        h.pull().unwrap();
    }
    loop {
        let event = h.pull_event().unwrap();
        if event.type_() == gst::EventType::Eos {
            break;
        }
    }
    assert_eq!(
        *seen.lock().unwrap(),
        ["frame 0", "after-0", "frame 1", "frame 2", "after-2"]
    );
}

#[test]
fn adaptive_interval_rises_when_frames_arrive_late_and_says_so() {
    let model = pose_model();
    let (mut h, bus) = harness(
        "rtmopose",
        &[("model-file", model.as_str()), ("adaptive-interval", "4")],
        CAPS,
    );
    h.use_testclock();
    // Frames arrive later and later: 25 ms more queueing per 40 ms frame.
    let mut index = 0u64;
    let mut next_frame = |h: &mut gst_check::Harness| {
        h.set_time(gst::ClockTime::from_nseconds(
            index * (FRAME_NS + 25_000_000),
        ))
        .unwrap();
        h.push(grey_frame(index)).unwrap();
        index += 1;
        inferred(&h.pull().unwrap())
    };
    let flags: Vec<bool> = (0..12).map(|_| next_frame(&mut h)).collect();
    let element = h.element().unwrap();
    assert!(
        element.property::<u32>("current-interval") > 1,
        "behind real time, the interval rose: {flags:?}"
    );
    assert!(
        flags.iter().filter(|f| !**f).count() > 0,
        "frames were left out: {flags:?}"
    );
    let changes: Vec<(u32, u32)> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == "recognizer-interval")
                .map(|s| {
                    (
                        s.get::<u32>("previous").unwrap(),
                        s.get::<u32>("interval").unwrap(),
                    )
                }),
            _ => None,
        })
        .collect();
    assert!(
        !changes.is_empty() && changes.iter().all(|(a, b)| b == &(a + 1)),
        "each raise is posted: {changes:?}"
    );
}
