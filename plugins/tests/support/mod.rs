//! Shared by the element tests (one test binary per element, as in gst-plugins-rs): the plugin
//! registered once, a `gst_check::Harness` around a configured element with a bus to read what
//! it posts, and synthetic buffers carrying `PoseMeta` persons. No video and no pose model.

use std::sync::Once;

use gst::prelude::*;
use gst_check::Harness;
use recognizer_meta::{
    Keypoint, NUM_KEYPOINTS, Person, PoseMeta, PoseMetaFlags, Track, TrackState,
};

/// Nanoseconds between two synthetic frames (25 fps).
pub const FRAME_NS: u64 = 40_000_000;

/// Initialises GStreamer and registers the plugin statically, once per test binary.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstrecognizer::plugin_register_static().expect("registering the recognizer plugin");
    });
}

/// `factory` with `properties` set from strings (as gst-launch-1.0 would), in a harness whose
/// source pushes `caps`, playing. The bus is the element's: it collects the element's errors and
/// warnings, which a harness would otherwise drop.
pub fn harness(factory: &str, properties: &[(&str, &str)], caps: &str) -> (Harness, gst::Bus) {
    init();
    let element = gst::ElementFactory::make(factory).build().unwrap();
    for (name, value) in properties {
        element.set_property_from_str(name, value);
    }
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps_str(caps);
    (h, bus)
}

/// A person with the box `bbox`, detection score `score`, keypoints spread over the box (score
/// 0.9) and, with `track`, a tracked track of that id.
pub fn person(bbox: [f32; 4], score: f32, track: Option<u64>) -> Person {
    let mut keypoints = [Keypoint::default(); NUM_KEYPOINTS];
    for (k, kp) in keypoints.iter_mut().enumerate() {
        let t = k as f32 / (NUM_KEYPOINTS - 1) as f32;
        *kp = Keypoint {
            x: bbox[0] + (bbox[2] - bbox[0]) * (0.3 + 0.4 * (k % 2) as f32),
            y: bbox[1] + (bbox[3] - bbox[1]) * t,
            score: 0.9,
        };
    }
    let mut p = Person::new(bbox, score, keypoints);
    p.set_track(track.map(|id| Track {
        id,
        state: TrackState::Tracked,
        age: 0,
    }));
    p
}

/// Frame `index` (PTS `index * FRAME_NS`) of `size` zero bytes, with a `PoseMeta` of `persons`
/// and `flags` when `meta` is given.
pub fn frame(size: usize, index: u64, meta: Option<(&[Person], PoseMetaFlags)>) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; size]);
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(index * FRAME_NS));
        b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
        if let Some((persons, flags)) = meta {
            PoseMeta::add(b, persons, flags);
        }
    }
    buffer
}

/// The persons of a buffer's `PoseMeta`, `None` without one.
pub fn persons(buffer: &gst::BufferRef) -> Option<Vec<Person>> {
    buffer.meta::<PoseMeta>().map(|m| m.persons().to_vec())
}

/// A flushing seek as the element sees it: FLUSH_START, FLUSH_STOP, then a new segment.
// Only the stateful elements' tests flush; the others' test binaries leave this unused.
#[allow(dead_code)]
pub fn flush(h: &mut Harness) {
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(h.push_event(gst::event::Segment::new(&segment)));
}

/// The messages of `kind` (`Error` or `Warning`) waiting on `bus`, as "text (debug)" strings.
pub fn messages(bus: &gst::Bus, kind: gst::MessageType) -> Vec<String> {
    std::iter::from_fn(|| bus.pop_filtered(&[kind]))
        .map(|msg| match msg.view() {
            gst::MessageView::Error(e) => format!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Warning(w) => format!("{} ({:?})", w.error(), w.debug()),
            _ => unreachable!("filtered"),
        })
        .collect()
}
