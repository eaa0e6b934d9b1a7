//! `stgcnclassify` on synthetic frames carrying tracked `PoseMeta` persons, with the project's
//! fall model (`models/fall_stgcnpp.onnx`: T = 48, M = 1, labels in its metadata): windows per
//! track that start over when a track goes away or after a flush, `stride`, `min-frames`,
//! actions carried forward, `score-threshold`, the labels file, the normalisation choice, and
//! the warning when persons come without track ids.

mod support;

use gst::prelude::*;
use gst_check::Harness;
use recognizer_meta::{Action, Person, PoseMetaFlags, Track, TrackState};
use support::{FRAME_NS, frame, harness, messages, person, persons};

const CAPS: &str = "video/x-raw,format=GRAY8,width=320,height=240,framerate=25/1";
const SIZE: usize = 320 * 240;

fn fall_model() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/fall_stgcnpp.onnx").to_string()
}

/// `stgcnclassify` with the fall model and `properties`.
fn classifier(properties: &[(&str, &str)]) -> (Harness, gst::Bus) {
    let model = fall_model();
    let mut all = vec![("model-file", model.as_str())];
    all.extend_from_slice(properties);
    harness("stgcnclassify", &all, CAPS)
}

/// Pushes frame `index` with `persons` and returns them as they came out.
fn classify(h: &mut Harness, index: u64, persons: &[Person]) -> Vec<Person> {
    let meta = Some((persons, PoseMetaFlags::INFERRED));
    let out = h.push_and_pull(frame(SIZE, index, meta)).unwrap();
    support::persons(&out).unwrap()
}

/// Track `id` walking at `x`, a little further on each frame.
fn walker(index: u64, x: f32, id: u64) -> Person {
    let x = x + index as f32;
    person([x, 40.0, x + 60.0, 200.0], 0.9, Some(id))
}

/// The action of track `id` on a frame.
fn action(persons: &[Person], id: u64) -> Option<Action> {
    persons
        .iter()
        .find(|p| p.track().unwrap().id == id)
        .and_then(|p| p.action())
}

/// The action of track 1 on the last of `frames` frames, classified from its 2nd frame on, with
/// `property` set.
fn last_action(frames: u64, property: (&str, &str)) -> Option<Action> {
    let (mut h, _bus) = classifier(&[("min-frames", "2"), ("stride", "1"), property]);
    let last = (0..frames)
        .map(|i| classify(&mut h, i, &[walker(i, 10.0, 1)]))
        .last()
        .unwrap();
    action(&last, 1)
}

fn windows(frames: &[Vec<Person>], id: u64) -> Vec<Option<u32>> {
    frames
        .iter()
        .map(|f| action(f, id).map(|a| a.window))
        .collect()
}

/// Track 2 disappears for two frames and track 3 is reported lost by the tracker for two: both
/// windows start over, while track 1's keeps growing; every classified action names one of the
/// model's labels.
#[test]
fn window_starts_over_when_a_track_goes_away_or_is_lost() {
    let (mut h, _bus) = classifier(&[("min-frames", "4"), ("stride", "1")]);
    let frames: Vec<Vec<Person>> = (0..12)
        .map(|i| {
            let mut present = vec![walker(i, 10.0, 1), walker(i, 120.0, 3)];
            if (5..7).contains(&i) {
                present[1].set_track(Some(Track {
                    id: 3,
                    state: TrackState::Lost,
                    age: i as u32,
                }));
            } else {
                present.push(walker(i, 200.0, 2));
            }
            classify(&mut h, i, &present)
        })
        .collect();
    let some = |v: &[u32]| v.iter().map(|w| Some(*w)).collect::<Vec<_>>();
    let track1 = [vec![None; 3], some(&[4, 5, 6, 7, 8, 9, 10, 11, 12])].concat();
    let track2 = [vec![None; 3], some(&[4, 5]), vec![None; 5], some(&[4, 5])].concat();
    assert_eq!(windows(&frames, 1), track1);
    assert_eq!(windows(&frames, 2), track2);
    assert_eq!(windows(&frames, 3), track2);
    for a in frames.iter().flatten().filter_map(|p| p.action()) {
        assert!(["normal", "fall"].contains(&a.label.as_str()), "{a:?}");
        assert!(
            a.score >= 0.5 && a.score <= 1.0,
            "the top class of two: {a:?}"
        );
    }
}

/// With `min-frames=5 stride=3` a track is classified on its 5th frame and every 3rd frame
/// after; the action is carried unchanged (window, score, timestamp of the window's last frame)
/// on the frames between. Two tracks due on the same frame share one call.
#[test]
fn stride_min_frames_and_actions_carried_forward() {
    let (mut h, _bus) = classifier(&[("min-frames", "5"), ("stride", "3")]);
    let frames: Vec<Vec<Person>> = (0..14)
        .map(|i| classify(&mut h, i, &[walker(i, 10.0, 1), walker(i, 200.0, 2)]))
        .collect();
    let expected = [
        None,
        None,
        None,
        None,
        Some(5),
        Some(5),
        Some(5),
        Some(8),
        Some(8),
        Some(8),
        Some(11),
        Some(11),
        Some(11),
        Some(14),
    ];
    for id in [1, 2] {
        assert_eq!(windows(&frames, id), expected, "track {id}");
        for (i, f) in frames.iter().enumerate().skip(4) {
            let a = action(f, id).unwrap();
            let classified_on = 4 + (i - 4) / 3 * 3;
            assert_eq!(a, action(&frames[classified_on], id).unwrap(), "frame {i}");
            assert_eq!(a.window_end_pts, Some(classified_on as u64 * FRAME_NS));
        }
    }
    let element = h.element().unwrap();
    assert_eq!(element.property::<u64>("classifications"), 8);
    assert_eq!(element.property::<u64>("batches"), 4, "one call per frame");
    assert_eq!(element.property::<u64>("frame-errors"), 0);
}

/// After a flush (a flushing seek) the windows and the carried actions start over.
#[test]
fn flush_starts_windows_over() {
    let (mut h, _bus) = classifier(&[("min-frames", "4"), ("stride", "1")]);
    for i in 0..6 {
        classify(&mut h, i, &[walker(i, 10.0, 1)]);
    }
    support::flush(&mut h);
    let frames: Vec<Vec<Person>> = (0..5)
        .map(|i| classify(&mut h, i, &[walker(i, 10.0, 1)]))
        .collect();
    assert_eq!(
        windows(&frames, 1),
        vec![None, None, None, Some(4), Some(5)]
    );
}

/// Stopping (PLAYING -> NULL -> PLAYING) starts the windows over too.
#[test]
fn stop_starts_windows_over() {
    let (mut h, _bus) = classifier(&[("min-frames", "2"), ("stride", "1")]);
    for i in 0..4 {
        classify(&mut h, i, &[walker(i, 10.0, 1)]);
    }
    h.element().unwrap().set_state(gst::State::Null).unwrap();
    h.play();
    h.set_src_caps_str(CAPS);
    let frames: Vec<Vec<Person>> = (0..3)
        .map(|i| classify(&mut h, i, &[walker(i, 10.0, 1)]))
        .collect();
    assert_eq!(windows(&frames, 1), vec![None, Some(2), Some(3)]);
}

/// Actions scoring below `score-threshold` are not written.
#[test]
fn score_threshold() {
    let score = last_action(3, ("score-threshold", "0")).unwrap().score;
    assert!(score < 1.0, "{score}");
    let at = score.to_string();
    assert!(
        last_action(3, ("score-threshold", &at)).is_some(),
        "at the threshold"
    );
    let above = (score + 1e-3).to_string();
    assert!(
        last_action(3, ("score-threshold", &above)).is_none(),
        "below it"
    );
}

/// Every class probability of the latest classification is kept in the person, in class order:
/// they sum to 1, the action is their argmax, they are carried forward between classifications
/// like the action, and they stay when `score-threshold` drops the action. A person without a
/// window (not classified yet) has none.
#[test]
fn all_class_scores_are_kept() {
    let last_person = |threshold: &str| {
        let (mut h, _bus) = classifier(&[
            ("min-frames", "2"),
            ("stride", "2"),
            ("score-threshold", threshold),
        ]);
        let first = classify(&mut h, 0, &[walker(0, 10.0, 1)]);
        assert!(first[0].class_scores().is_empty(), "not classified yet");
        let frames: Vec<Vec<Person>> = (1..4)
            .map(|i| classify(&mut h, i, &[walker(i, 10.0, 1)]))
            .collect();
        // Classified on frames 1 and 3 (stride 2), carried on frame 2.
        assert_eq!(frames[0][0].class_scores(), frames[1][0].class_scores());
        frames[2][0]
    };
    let p = last_person("0");
    let scores = p.class_scores();
    let labels: Vec<&str> = scores.iter().map(|s| s.label()).collect();
    assert_eq!(labels, ["normal", "fall"]);
    assert_eq!(
        scores.iter().map(|s| s.class_id).collect::<Vec<_>>(),
        [0, 1]
    );
    let sum: f32 = scores.iter().map(|s| s.score).sum();
    assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
    let action = p.action().unwrap();
    let best = scores
        .iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .unwrap();
    assert_eq!(
        (best.label(), best.score),
        (action.label.as_str(), action.score)
    );
    assert_eq!(p.class_score("fall"), Some(scores[1].score));
    // Above every score: no action, the scores stay.
    let p = last_person("1");
    assert_eq!(p.action(), None);
    assert_eq!(p.class_scores().len(), 2);
}

/// `labels-file` names the classes instead of the model's metadata; blank lines and surrounding
/// spaces do not count.
#[test]
fn labels_file() {
    let dir = std::env::temp_dir().join(format!("stgcnclassify-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "  upright \n\nfalling\n").unwrap();
    let a = last_action(2, ("labels-file", labels.to_str().unwrap())).unwrap();
    assert_eq!(a.label, ["upright", "falling"][a.class_id as usize]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `normalization` is an enum whose values gst-inspect-1.0 lists; the choice changes the scores.
#[test]
fn normalization_is_an_enum() {
    support::init();
    let element = gst::ElementFactory::make("stgcnclassify").build().unwrap();
    let pspec = element.find_property("normalization").unwrap();
    let class = gst::glib::EnumClass::with_type(pspec.value_type()).expect("an enum property");
    let nicks: Vec<&str> = class.values().iter().map(|v| v.nick()).collect();
    assert_eq!(nicks, ["auto", "frame", "window"]);
    assert!(element.find_property("model").is_none() && element.find_property("labels").is_none());
    let score = |normalization: &str| {
        let a = last_action(2, ("normalization", normalization)).unwrap();
        (a.class_id, a.score)
    };
    // The fall model's metadata says window.
    assert_eq!(score("auto"), score("window"));
    assert_ne!(score("auto"), score("frame"));
}

/// Persons without track ids (no `bytetrack` upstream) are passed on unclassified, with one
/// warning on the bus however many frames come.
#[test]
fn persons_without_track_ids_warn_once() {
    let (mut h, bus) = classifier(&[("min-frames", "2"), ("stride", "1")]);
    for i in 0..6 {
        let out = classify(&mut h, i, &[person([10.0, 40.0, 70.0, 200.0], 0.9, None)]);
        assert!(out.iter().all(|p| p.action().is_none()));
    }
    let warnings = messages(&bus, gst::MessageType::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("without track ids") && warnings[0].contains("bytetrack"),
        "{warnings:?}"
    );
    // Frames without persons, or without metadata, pass untouched.
    let out = h.push_and_pull(frame(SIZE, 6, None)).unwrap();
    assert!(persons(&out).is_none());
    assert_eq!(h.element().unwrap().property::<u64>("classifications"), 0);
}
