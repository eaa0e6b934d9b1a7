//! eventsink as an element, through `gst_check::Harness` on synthetic buffers carrying
//! `PoseMeta` (no video, no model): exactly on which frame each rule fires (onset, minimum
//! duration, cooldown, zone), flushes, the events file and counters, the frame log (truncate,
//! append, rotation). Run alone: `cargo test --release --test events_element`.

#[path = "support/events_frames.rs"]
mod frames;
#[path = "support/events.rs"]
mod support;

use std::path::Path;

use frames::*;
use gst::prelude::*;
use recognizer_meta::{Person, PoseMeta, PoseMetaFlags};
use support::*;

/// An eventsink in a harness, fed frame by frame; its bus is read after each frame.
struct Sink {
    harness: gst_check::Harness,
    element: gst::Element,
    bus: gst::Bus,
    frame: u64,
}

impl Sink {
    fn new(properties: &str) -> Self {
        recognizer::init();
        let mut harness =
            gst_check::Harness::new_parse(&format!("eventsink name=sink {properties}"));
        let bin = harness.element().unwrap();
        let bus = gst::Bus::new();
        bin.set_bus(Some(&bus));
        let element = bin
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("sink"))
            .unwrap_or(bin);
        harness.set_src_caps_str(&format!(
            "video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=25/1"
        ));
        Self {
            harness,
            element,
            bus,
            frame: 0,
        }
    }

    /// Pushes the next frame (PTS = frame number x 40 ms), with pose metadata unless `None`;
    /// returns the events it fired, as (type, track id).
    fn push(&mut self, persons: Option<&[Person]>) -> Vec<(String, u64)> {
        let mut buffer = gst::Buffer::with_size(1).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(self.frame * FRAME_NS));
            b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
            if let Some(persons) = persons {
                PoseMeta::add(b, persons, PoseMetaFlags::default());
            }
        }
        self.frame += 1;
        self.harness.push(buffer).expect("the frame is taken");
        self.events()
    }

    fn events(&self) -> Vec<(String, u64)> {
        std::iter::from_fn(|| self.bus.pop_filtered(&[gst::MessageType::Element]))
            .filter_map(|m| m.structure().map(|s| s.to_owned()))
            .filter(|s| s.name() == "recognizer-event")
            .map(|s| {
                (
                    s.get::<String>("type").unwrap(),
                    s.get::<u64>("track-id").unwrap(),
                )
            })
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        std::iter::from_fn(|| self.bus.pop_filtered(&[gst::MessageType::Warning]))
            .filter_map(|m| match m.view() {
                gst::MessageView::Warning(w) => Some(w.error().to_string()),
                _ => None,
            })
            .collect()
    }

    /// Frames (indices) on which events fired, for one track's labels frame by frame.
    fn firing_frames(properties: &str, labels: &[&str]) -> Vec<u64> {
        let mut sink = Self::new(properties);
        labels
            .iter()
            .filter_map(|label| {
                let frame = sink.frame;
                let fired = sink.push(Some(&[person(1, label, 0.9, FEET_LOW)]));
                (!fired.is_empty()).then_some(frame)
            })
            .collect()
    }
}

/// A box whose feet are in the lower half of the frame and whose centre is in the upper half.
const FEET_LOW: [f32; 4] = [100.0, 40.0, 200.0, 300.0];

/// `F` falling, `s` standing, one character a frame.
fn labels(pattern: &str) -> Vec<&'static str> {
    pattern
        .chars()
        .map(|c| if c == 'F' { "falling" } else { "standing" })
        .collect()
}

#[test]
fn onset_needs_consecutive_frames() {
    let frames = Sink::firing_frames("labels=falling min-frames=3", &labels("FFsFFFFFF"));
    assert_eq!(frames, vec![5]);
}

#[test]
fn minimum_duration_counts_pts() {
    // 40 ms a frame: 120 ms span on the fourth matching frame.
    let frames = Sink::firing_frames("labels=falling min-duration-ms=120", &labels("sFFFFF"));
    assert_eq!(frames, vec![4]);
}

#[test]
fn cooldown_is_quiet_time_after_the_last_matching_frame() {
    // Cooldown 200 ms = 5 frames. The gap of 3 frames keeps the episode; after the gap of 6
    // a new onset fires.
    let props = "labels=falling cooldown-ms=200";
    assert_eq!(
        Sink::firing_frames(props, &labels("FFsssFFssssssF")),
        vec![0, 13]
    );
    assert_eq!(
        Sink::firing_frames("labels=falling cooldown-ms=0", &labels("FsFsF")),
        vec![0, 2, 4]
    );
}

#[test]
fn zone_anchor_decides() {
    let zone = "zone=\"0,0.5 1,0.5 1,1 0,1\"";
    assert_eq!(
        Sink::firing_frames(&format!("labels=falling {zone}"), &labels("F")),
        vec![0]
    );
    assert!(
        Sink::firing_frames(
            &format!("labels=falling {zone} zone-anchor=centre"),
            &labels("FF")
        )
        .is_empty()
    );
}

#[test]
fn persons_without_tracks_and_frames_without_metadata_do_not_count() {
    let mut sink = Sink::new("labels=falling min-frames=2");
    let mut untracked = person(1, "falling", 0.9, FEET_LOW);
    untracked.set_track(None);
    assert!(sink.push(Some(&[untracked])).is_empty());
    assert!(sink.push(Some(&[falling(2)])).is_empty());
    // A frame without pose metadata (pose not run on it) neither counts nor breaks the run.
    assert!(sink.push(None).is_empty());
    assert_eq!(
        sink.push(Some(&[falling(2), untracked])),
        vec![("falling".into(), 2)]
    );
    assert_eq!(sink.element.property::<u64>("events"), 1);
}

#[test]
fn a_flush_resets_the_runs() {
    let mut sink = Sink::new("labels=falling event-type=fall min-frames=3");
    for _ in 0..2 {
        assert!(sink.push(Some(&[falling(1)])).is_empty());
    }
    assert!(sink.harness.push_event(gst::event::FlushStart::new()));
    assert!(sink.harness.push_event(gst::event::FlushStop::new(true)));
    assert!(
        sink.harness
            .push_event(gst::event::Segment::new(&gst::FormattedSegment::<
                gst::ClockTime,
            >::new()))
    );
    // Without the flush, this would be the third frame of the run.
    assert!(sink.push(Some(&[falling(1)])).is_empty());
    assert!(sink.push(Some(&[falling(1)])).is_empty());
    assert_eq!(sink.push(Some(&[falling(1)])), vec![("fall".into(), 1)]);
}

#[test]
fn events_file_matches_the_messages_and_counters() {
    let dir = temp_dir("events-element-file");
    let location = dir.join("events.jsonl");
    let mut sink = Sink::new(&format!("labels=falling location={}", location.display()));
    let mut fired = Vec::new();
    for t in 1..=3 {
        fired.extend(sink.push(Some(&[falling(t)])));
    }
    assert_eq!(sink.element.property::<u64>("events"), 3);
    let validator = schema();
    let lines: Vec<serde_json::Value> = recognizer::read_jsonl(&location);
    assert_eq!(lines.len(), 3);
    for (line, (kind, track)) in lines.iter().zip(&fired) {
        assert_valid(&validator, line);
        assert_eq!(
            (
                line["type"].as_str().unwrap(),
                line["track_id"].as_u64().unwrap()
            ),
            (kind.as_str(), *track)
        );
    }
    assert!(sink.warnings().is_empty());
}

fn frame_lines(path: &Path) -> Vec<u64> {
    recognizer::read_jsonl::<serde_json::Value>(path)
        .iter()
        .map(|f| f["frame"].as_u64().unwrap())
        .collect()
}

/// Runs `n` frames through a frame log and stops the element.
fn log_frames(properties: &str, n: usize) {
    let mut sink = Sink::new(properties);
    for i in 0..n {
        let persons = [falling(1)];
        sink.push((i % 2 == 0).then_some(&persons[..]));
    }
    drop(sink); // to NULL: the log is flushed
}

#[test]
fn frame_log_truncates_or_appends_and_rotates() {
    let dir = temp_dir("events-element-frames");
    let log = dir.join("frames.jsonl");
    let props = format!("frames-location={}", log.display());
    log_frames(&props, 3);
    assert_eq!(frame_lines(&log), vec![0, 1, 2]);
    // Truncated at start by default, appended with frames-append.
    log_frames(&props, 2);
    assert_eq!(frame_lines(&log), vec![0, 1]);
    log_frames(&format!("{props} frames-append=true"), 2);
    assert_eq!(frame_lines(&log), vec![0, 1, 0, 1]);
    // A frame with a person is a line of about 1 KB: rotation keeps each file under 3 KB.
    log_frames(
        &format!("{props} frames-max-size-bytes=3000 frames-max-files=2"),
        30,
    );
    let sizes: Vec<u64> = ["frames.jsonl", "frames.jsonl.1", "frames.jsonl.2"]
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
        .collect();
    assert!(sizes.iter().all(|&s| s > 0 && s <= 3000), "{sizes:?}");
    assert!(!dir.join("frames.jsonl.3").exists());
    // The newest frames are in the current file, in order.
    let current = frame_lines(&log);
    assert_eq!(current.last(), Some(&29));
    assert!(current.windows(2).all(|w| w[1] == w[0] + 1));
    // Every line of every file is a frame record of this stream.
    for name in ["frames.jsonl", "frames.jsonl.1", "frames.jsonl.2"] {
        for f in recognizer::read_jsonl::<serde_json::Value>(&dir.join(name)) {
            assert_eq!(f["stream"], "cam0");
            assert_eq!(
                (f["width"].as_u64(), f["height"].as_u64()),
                (Some(WIDTH as u64), Some(HEIGHT as u64))
            );
        }
    }
}
