//! `stgcnclassify` against its Python reference (`tools/action_reference.py` and
//! `tools/stgcn/`): the same windows, normalisation and model give the same scores
//! (max abs difference <= 1e-4), both through the core + model API and through the element (the
//! action's score and every class probability the element writes into the metadata).
//!
//! Fixtures in tests/fixtures/stgcn/:
//! - schedule fixtures (`frames` + `expected` per frame and track): a tracked sequence run
//!   through the element's schedule (window, stride, min-frames, M);
//! - window fixtures (`windows` + `expected`): single windows of the project's models.

use std::path::{Path, PathBuf};

use gst::prelude::*;
use gstrecognizer::action_model::{ActionModel, OutputKind};
use recognizer::{data_dir, launch};
use recognizer_core::action::{
    Normalization, Pose, Schedule, TrackFrame, TrackWindows, WindowSpec,
};
use recognizer_meta::{
    Keypoint, MAX_CLASS_SCORES, Person, PersonFlags, PoseMeta, PoseMetaFlags, Track, TrackState,
};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn fixtures(kind: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stgcn");
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, v)
        })
        .filter(|(_, v)| v.get(kind).is_some())
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn model_path(fixture: &Value) -> PathBuf {
    let rel = fixture["model"].as_str().unwrap();
    let in_repo = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if in_repo.is_file() {
        in_repo
    } else {
        data_dir().join(rel)
    }
}

fn pose(v: &Value) -> Pose {
    let mut p = [[0.0f32; 3]; 17];
    for (j, k) in p.iter_mut().zip(v.as_array().unwrap()) {
        for c in 0..3 {
            j[c] = k[c].as_f64().unwrap() as f32;
        }
    }
    p
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// One frame's tracked persons as the element sees them.
struct FixtureFrame {
    width: f32,
    height: f32,
    persons: Vec<(u64, [f32; 4], Pose)>,
}

fn frames(fixture: &Value) -> Vec<FixtureFrame> {
    fixture["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| FixtureFrame {
            width: f["width"].as_f64().unwrap() as f32,
            height: f["height"].as_f64().unwrap() as f32,
            persons: f["persons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let b = floats(&p["bbox"]);
                    (
                        p["track_id"].as_u64().unwrap(),
                        [b[0], b[1], b[2], b[3]],
                        pose(&p["keypoints"]),
                    )
                })
                .collect(),
        })
        .collect()
}

fn spec_of(fixture: &Value) -> (WindowSpec, Schedule) {
    let normalization: Normalization = fixture["normalization"].as_str().unwrap().parse().unwrap();
    let window = fixture["window"].as_u64().unwrap() as usize;
    let spec = WindowSpec {
        frames: window,
        persons: fixture["persons"].as_u64().unwrap() as usize,
        normalization,
        min_joint_score: 0.01,
    };
    let schedule = Schedule {
        window,
        stride: fixture["stride"].as_u64().unwrap() as usize,
        min_frames: fixture["min_frames"].as_u64().unwrap() as usize,
    };
    (spec, schedule)
}

/// Core + model: the schedule picks the same (frame, track) pairs as the reference, and the
/// score vectors agree.
#[test]
fn schedule_fixtures_through_the_core() {
    let all = fixtures("frames");
    assert!(!all.is_empty());
    for (path, fixture) in all {
        let (spec, schedule) = spec_of(&fixture);
        let mut model = ActionModel::load_cpu(&model_path(&fixture)).unwrap();
        let mut windows = TrackWindows::new(schedule);
        let expected = fixture["expected"].as_array().unwrap();
        let (mut checked, mut worst) = (0usize, 0.0f32);
        for (i, frame) in frames(&fixture).iter().enumerate() {
            let centre = |b: &[f32; 4]| ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
            let present: Vec<(u64, TrackFrame)> = frame
                .persons
                .iter()
                .map(|(id, bbox, p)| {
                    let (cx, cy) = centre(bbox);
                    let other = (spec.persons > 1)
                        .then(|| {
                            frame
                                .persons
                                .iter()
                                .filter(|(o, _, _)| o != id)
                                .min_by(|a, b| {
                                    let da = (centre(&a.1).0 - cx).hypot(centre(&a.1).1 - cy);
                                    let db = (centre(&b.1).0 - cx).hypot(centre(&b.1).1 - cy);
                                    da.total_cmp(&db)
                                })
                                .map(|o| o.2)
                        })
                        .flatten();
                    (
                        *id,
                        TrackFrame {
                            pose: *p,
                            other,
                            width: frame.width,
                            height: frame.height,
                        },
                    )
                })
                .collect();
            let due = windows.push_frame(&present);
            let want: Vec<&Value> = expected
                .iter()
                .filter(|e| e["frame"].as_u64() == Some(i as u64))
                .collect();
            let want_ids: Vec<u64> = want
                .iter()
                .map(|e| e["track_id"].as_u64().unwrap())
                .collect();
            assert_eq!(due, want_ids, "{}: frame {i}: tracks due", path.display());
            if due.is_empty() {
                continue;
            }
            let per = spec.sample_len();
            let mut batch = vec![0.0; due.len() * per];
            for (n, id) in due.iter().enumerate() {
                spec.fill_sample(
                    windows.frames(*id).unwrap().iter(),
                    &mut batch[n * per..(n + 1) * per],
                );
            }
            let rows = model
                .classify(
                    &batch,
                    due.len(),
                    spec.persons,
                    spec.frames,
                    OutputKind::Logits,
                )
                .unwrap();
            for ((id, row), e) in due.iter().zip(&rows).zip(&want) {
                assert_eq!(
                    windows.frames(*id).unwrap().len() as u64,
                    e["window"].as_u64().unwrap()
                );
                worst = worst.max(max_diff(row, &floats(&e["scores"])));
                checked += 1;
                windows.set_action(
                    *id,
                    recognizer_core::action::TrackAction {
                        class_id: 0,
                        score: 0.0,
                        window: 0,
                        window_end: None,
                        scores: row.clone(),
                    },
                );
            }
        }
        println!(
            "{}: {checked} windows, max abs score difference {worst:.2e}",
            path.display()
        );
        assert_eq!(checked, expected.len());
        assert!(
            worst <= TOLERANCE,
            "{}: scores differ by {worst:e}",
            path.display()
        );
    }
}

/// The element itself, fed the fixture's tracked persons through appsrc: on every frame where
/// the reference classified a track, the element's action for it has the reference's top class,
/// score (<= 1e-4) and window length, and its class scores are the reference's (<= 1e-4).
#[test]
fn schedule_fixtures_through_the_element() {
    for (path, fixture) in fixtures("frames") {
        let (spec, schedule) = spec_of(&fixture);
        let frames = frames(&fixture);
        let (w, h) = (frames[0].width as u32, frames[0].height as u32);
        let labels: String = (0..fixture["expected"][0]["scores"].as_array().unwrap().len())
            .map(|k| format!("class{k}\n"))
            .collect();
        let labels_path =
            std::env::temp_dir().join(format!("recognizer-labels-{}.txt", std::process::id()));
        std::fs::write(&labels_path, labels).unwrap();
        let normalization = match spec.normalization {
            Normalization::Frame => "frame",
            Normalization::Window => "window",
        };
        let pipeline = launch(&format!(
            "appsrc name=src format=time caps=video/x-raw,format=GRAY8,width={w},height={h},framerate=30/1 ! \
             stgcnclassify model-file=\"{}\" labels-file=\"{}\" window={} stride={} min-frames={} persons-per-sample={} normalization={normalization} ! \
             appsink name=sink",
            model_path(&fixture).display(),
            labels_path.display(),
            schedule.window,
            schedule.stride,
            schedule.min_frames,
            spec.persons
        ));
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let (mut checked, mut worst) = (0usize, 0.0f32);
        for (i, frame) in frames.iter().enumerate() {
            let mut buffer = gst::Buffer::with_size((w * h) as usize).unwrap();
            {
                let b = buffer.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(i as u64 * 33));
                let persons: Vec<Person> = frame
                    .persons
                    .iter()
                    .map(|(id, bbox, p)| {
                        let mut kps = [Keypoint::default(); 17];
                        for (k, j) in kps.iter_mut().zip(p) {
                            *k = Keypoint {
                                x: j[0],
                                y: j[1],
                                score: j[2],
                            };
                        }
                        let mut person = Person::new(*bbox, 0.9, kps);
                        person.set_track(Some(Track {
                            id: *id,
                            state: TrackState::Tracked,
                            age: i as u32,
                        }));
                        person
                    })
                    .collect();
                PoseMeta::add(b, &persons, PoseMetaFlags::INFERRED);
            }
            src.push_buffer(buffer).unwrap();
            let sample = sink.pull_sample().unwrap();
            let persons = sample
                .buffer()
                .unwrap()
                .meta::<PoseMeta>()
                .unwrap()
                .persons()
                .to_vec();
            for e in fixture["expected"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["frame"].as_u64() == Some(i as u64))
            {
                let id = e["track_id"].as_u64().unwrap();
                let person = persons
                    .iter()
                    .find(|p| p.track().unwrap().id == id)
                    .expect("the track's person");
                let action = person.action().expect("classified track");
                let scores = floats(&e["scores"]);
                // Every class probability in the metadata equals the reference's for its class:
                // all classes in class order, or, beyond MAX_CLASS_SCORES (NTU-60), the most
                // probable ones, flagged as truncated.
                let kept = person.class_scores();
                let ids: Vec<usize> = kept.iter().map(|s| s.class_id as usize).collect();
                for s in kept {
                    assert_eq!(s.label(), format!("class{}", s.class_id));
                    worst = worst.max((s.score - scores[s.class_id as usize]).abs());
                }
                let truncated = person.flags.contains(PersonFlags::SCORES_TRUNCATED);
                if scores.len() <= MAX_CLASS_SCORES {
                    assert_eq!(ids, (0..scores.len()).collect::<Vec<_>>());
                    assert!(!truncated);
                } else {
                    assert_eq!((ids.len(), truncated), (MAX_CLASS_SCORES, true));
                    let least_kept = kept.iter().map(|s| s.score).fold(f32::MAX, f32::min);
                    let most_dropped = (0..scores.len())
                        .filter(|k| !ids.contains(k))
                        .map(|k| scores[k])
                        .fold(0.0, f32::max);
                    assert!(most_dropped <= least_kept + TOLERANCE);
                }
                let (best, best_score) = scores
                    .iter()
                    .copied()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap();
                assert_eq!(
                    action.class_id as usize,
                    best,
                    "{}: frame {i} track {id}",
                    path.display()
                );
                assert_eq!(action.window as u64, e["window"].as_u64().unwrap());
                worst = worst.max((action.score - best_score).abs());
                checked += 1;
            }
        }
        src.end_of_stream().unwrap();
        pipeline.set_state(gst::State::Null).unwrap();
        println!(
            "{}: element matched {checked} classifications, max abs score difference {worst:.2e}",
            path.display()
        );
        assert!(checked > 0 && worst <= TOLERANCE);
    }
}

/// Single windows of the project's own models (written by tools/stgcn/make_fixtures.py).
#[test]
fn window_fixtures_through_the_core() {
    let all = fixtures("windows");
    assert!(
        !all.is_empty(),
        "no window fixtures in tests/fixtures/stgcn"
    );
    for (path, fixture) in all {
        let mut model = ActionModel::load_cpu(&model_path(&fixture)).unwrap();
        let t = fixture["T"].as_u64().unwrap() as usize;
        let normalization: Normalization =
            fixture["normalization"].as_str().unwrap().parse().unwrap();
        let spec = WindowSpec {
            frames: t,
            persons: 1,
            normalization,
            min_joint_score: 0.01,
        };
        let windows = fixture["windows"].as_array().unwrap();
        let mut batch = vec![0.0; windows.len() * spec.sample_len()];
        for (n, w) in windows.iter().enumerate() {
            let (width, height) = (
                w["width"].as_f64().unwrap() as f32,
                w["height"].as_f64().unwrap() as f32,
            );
            let frames: Vec<TrackFrame> = w["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| TrackFrame {
                    pose: pose(f),
                    other: None,
                    width,
                    height,
                })
                .collect();
            spec.fill_sample(
                frames.iter(),
                &mut batch[n * spec.sample_len()..(n + 1) * spec.sample_len()],
            );
        }
        let output = model.output_kind.unwrap_or(OutputKind::Logits);
        let rows = model.classify(&batch, windows.len(), 1, t, output).unwrap();
        let worst = rows
            .iter()
            .zip(fixture["expected"].as_array().unwrap())
            .map(|(row, e)| max_diff(row, &floats(e)))
            .fold(0.0f32, f32::max);
        println!(
            "{}: {} windows, max abs score difference {worst:.2e}",
            path.display(),
            windows.len()
        );
        assert!(
            worst <= TOLERANCE,
            "{}: scores differ by {worst:e}",
            path.display()
        );
    }
}
