//! `bytetrack` on synthetic frames carrying `PoseMeta` persons (no video, no pose model): stable
//! ids and ages, Kalman-predicted persons on frames the pose model skipped, `keep-untracked`,
//! `min-box-area`, and tracking that starts over after a flush and after a stop.

mod support;

use gst::prelude::*;
use gst_check::Harness;
use recognizer_meta::{Person, PersonFlags, PoseMetaFlags, TrackState};
use support::{frame, harness, messages, person, persons};

const CAPS: &str = "video/x-raw,format=GRAY8,width=320,height=240,framerate=25/1";
const SIZE: usize = 320 * 240;

/// Pushes frame `index` with `detections` from a pose model that ran on it (or, with `None`,
/// skipped it) and returns the persons `bytetrack` attached.
fn track(h: &mut Harness, index: u64, detections: Option<&[Person]>) -> Vec<Person> {
    let meta = detections.map(|d| (d, PoseMetaFlags::INFERRED));
    let out = h.push_and_pull(frame(SIZE, index, meta)).unwrap();
    persons(&out).expect("bytetrack attaches metadata to every frame")
}

/// A person walking right by 4 px per frame.
fn walker(index: u64, x: f32) -> Person {
    let x = x + 4.0 * index as f32;
    person([x, 40.0, x + 60.0, 200.0], 0.9, None)
}

/// `(id, state, age)` of each person, in output order.
fn tracks(persons: &[Person]) -> Vec<(u64, TrackState, u32)> {
    persons
        .iter()
        .map(|p| {
            let t = p.track().expect("tracked");
            (t.id, t.state, t.age)
        })
        .collect()
}

#[test]
fn ids_stay_with_their_person_and_ages_grow() {
    let (mut h, bus) = harness("bytetrack", &[], CAPS);
    let mut ids = Vec::new();
    for i in 0..10 {
        let out = track(&mut h, i, Some(&[walker(i, 10.0), walker(i, 200.0)]));
        assert_eq!(out.len(), 2, "frame {i}");
        let state = if i == 0 {
            TrackState::New
        } else {
            TrackState::Tracked
        };
        for p in &out {
            let t = p.track().unwrap();
            assert_eq!((t.state, t.age), (state, i as u32), "frame {i}");
        }
        // Ids by position: the left walker and the right walker.
        let mut by_x: Vec<(f32, u64)> = out
            .iter()
            .map(|p| (p.bbox[0], p.track().unwrap().id))
            .collect();
        by_x.sort_by(|a, b| a.0.total_cmp(&b.0));
        ids.push((by_x[0].1, by_x[1].1));
        assert!(
            out.iter()
                .all(|p| !p.flags.contains(PersonFlags::PREDICTED))
        );
    }
    assert!(ids.iter().all(|pair| *pair == ids[0]), "ids {ids:?}");
    let mut first: Vec<u64> = vec![ids[0].0, ids[0].1];
    first.sort();
    assert_eq!(first, vec![1, 2], "ids start at 1");
    assert_eq!(h.element().unwrap().property::<u32>("active-tracks"), 2);
    assert!(messages(&bus, gst::MessageType::Warning).is_empty());
}

/// Frames without inferred pose (metadata without INFERRED, or none at all) get every live track
/// at its Kalman-predicted box, flagged as predicted, its keypoints moved with the box.
#[test]
fn frames_without_pose_get_predicted_persons() {
    let (mut h, _bus) = harness("bytetrack", &[], CAPS);
    let mut last = Vec::new();
    for i in 0..6 {
        last = track(&mut h, i, Some(&[walker(i, 10.0)]));
    }
    let (id, last) = (last[0].track().unwrap().id, last[0]);
    // Skipped by the pose model: metadata without INFERRED ...
    let skipped = frame(SIZE, 6, Some((&[], PoseMetaFlags::empty())));
    let out = h.push_and_pull(skipped).unwrap();
    let meta_flags = out
        .meta::<recognizer_meta::PoseMeta>()
        .unwrap()
        .frame_flags();
    assert!(!meta_flags.contains(PoseMetaFlags::INFERRED));
    // ... and no metadata at all.
    let predicted = [persons(&out).unwrap(), track(&mut h, 7, None)];
    for (n, out) in predicted.iter().enumerate() {
        assert_eq!(out.len(), 1, "predicted frame {n}");
        let p = out[0];
        assert!(p.flags.contains(PersonFlags::PREDICTED));
        assert_eq!(p.track().unwrap().id, id);
        assert_eq!(p.track().unwrap().age, 6 + n as u32);
        // Moving on in the walking direction, at the Kalman filter's estimate of the 4 px per
        // frame (still converging after six frames).
        let moved = p.bbox[0] - last.bbox[0];
        let walked = 4.0 * (n + 1) as f32;
        assert!(
            moved > 0.6 * walked && moved < 1.2 * walked,
            "frame {n}: moved {moved} px, the person walked {walked}"
        );
        for (k, l) in p.keypoints.iter().zip(&last.keypoints) {
            assert!((k.x - l.x - moved).abs() < 0.5 && (k.y - l.y).abs() < 2.0);
            assert_eq!(k.score, l.score);
        }
    }
    // Detections again: the same track, not predicted.
    let out = track(&mut h, 8, Some(&[walker(8, 10.0)]));
    assert_eq!(tracks(&out), vec![(id, TrackState::Tracked, 8)]);
    assert!(!out[0].flags.contains(PersonFlags::PREDICTED));
}

/// A detection below `track-thresh` starts no track: dropped by default, kept without a track
/// with `keep-untracked`.
#[test]
fn keep_untracked() {
    let faint = person([200.0, 40.0, 260.0, 200.0], 0.3, None);
    for keep in [false, true] {
        let value = keep.to_string();
        let (mut h, _bus) = harness("bytetrack", &[("keep-untracked", &value)], CAPS);
        for i in 0..3 {
            let out = track(&mut h, i, Some(&[walker(i, 10.0), faint]));
            let untracked: Vec<&Person> = out.iter().filter(|p| p.track().is_none()).collect();
            assert_eq!(out.len() - untracked.len(), 1, "keep-untracked={keep}");
            assert_eq!(untracked.len(), usize::from(keep), "keep-untracked={keep}");
            if keep {
                assert_eq!(untracked[0].score, 0.3);
            }
        }
    }
}

/// Tracks whose box is below `min-box-area` square pixels are not reported.
#[test]
fn min_box_area() {
    let tiny = person([100.0, 100.0, 103.0, 103.0], 0.9, None);
    let (mut h, _bus) = harness("bytetrack", &[], CAPS);
    for i in 0..3 {
        assert!(track(&mut h, i, Some(&[tiny])).is_empty(), "9 px < 10");
    }
    assert_eq!(h.element().unwrap().property::<u32>("active-tracks"), 1);
    let (mut h, _bus) = harness("bytetrack", &[("min-box-area", "0")], CAPS);
    for i in 0..3 {
        assert_eq!(track(&mut h, i, Some(&[tiny])).len(), 1);
    }
}

/// After a flush (a flushing seek), tracking starts over: no predictions of the old tracks, ids
/// from 1 again, ages from 0.
#[test]
fn flush_starts_tracking_over() {
    let (mut h, _bus) = harness("bytetrack", &[], CAPS);
    for i in 0..5 {
        track(&mut h, i, Some(&[walker(i, 10.0)]));
    }
    support::flush(&mut h);
    assert_eq!(h.element().unwrap().property::<u32>("active-tracks"), 0);
    assert!(
        track(&mut h, 0, None).is_empty(),
        "no Kalman state survives the flush"
    );
    let elsewhere = person([200.0, 40.0, 260.0, 200.0], 0.9, None);
    let out = track(&mut h, 1, Some(&[elsewhere]));
    assert_eq!(tracks(&out), vec![(1, TrackState::New, 0)]);
}

/// Stopping (PLAYING -> NULL -> PLAYING) starts over too.
#[test]
fn stop_starts_tracking_over() {
    let (mut h, _bus) = harness("bytetrack", &[], CAPS);
    for i in 0..5 {
        track(&mut h, i, Some(&[walker(i, 10.0)]));
    }
    let element = h.element().unwrap();
    element.set_state(gst::State::Null).unwrap();
    assert_eq!(element.property::<u32>("active-tracks"), 0);
    h.play();
    h.set_src_caps_str(CAPS);
    let out = track(
        &mut h,
        0,
        Some(&[person([200.0, 40.0, 260.0, 200.0], 0.9, None)]),
    );
    assert_eq!(tracks(&out), vec![(1, TrackState::New, 0)]);
}

/// Contradictory thresholds are an element error at start naming the properties.
#[test]
fn contradictory_thresholds_are_an_error() {
    support::init();
    let element = gst::ElementFactory::make("bytetrack")
        .property("track-thresh", 0.2f64)
        .property("low-thresh", 0.4f64)
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    assert!(element.set_state(gst::State::Paused).is_err());
    let errors = messages(&bus, gst::MessageType::Error);
    element.set_state(gst::State::Null).unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("low-thresh (0.4) must not exceed track-thresh (0.2)"),
        "{errors:?}"
    );
}
