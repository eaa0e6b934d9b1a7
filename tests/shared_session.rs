//! `rtmopose session-group`: several streams share one model session, and with a model whose
//! batch dimension is dynamic their frames run in shared calls, with the same persons as when
//! each stream has a session of its own. Streams may be branches of one pipeline or pipelines of
//! their own (one per camera, as NVR applications build them).

use gst::prelude::*;
use recognizer::{
    Frame, collect_frames, collect_frames_in, data, launch, rtmo_model, yolo_dynamic_model,
};

const FALLING: &str = "media/video/ntu_S002C002P003R002A043_rgb_falling.avi";
const DRINKING: &str = "media/video/ntu_S001C001P001R001A001_rgb_drink_water.avi";

fn branch(video: &str, rtmopose: &str, sink: &str) -> String {
    format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! queue ! {rtmopose} ! appsink name={sink}",
        data(video).display()
    )
}

/// Each clip alone, with a session of its own.
fn alone(video: &str, model: &std::path::Path) -> Vec<Frame> {
    collect_frames(&branch(
        video,
        &format!("rtmopose model-file=\"{}\" threads=2", model.display()),
        "sink",
    ))
    .unwrap()
}

fn grouped(name: &str, model: &std::path::Path, group: &str, extra: &str) -> String {
    format!(
        "rtmopose name={name} model-file=\"{}\" threads=2 session-group={group} {extra}",
        model.display()
    )
}

fn batched_frames(pipeline: &gst::Pipeline, name: &str) -> u64 {
    pipeline
        .by_name(name)
        .unwrap()
        .property::<u64>("batched-frames")
}

/// Both clips as branches of one pipeline, their `rtmopose` elements in `group`; also each
/// element's `batched-frames`.
fn together_in_one_pipeline(
    model: &std::path::Path,
    group: &str,
    extra: &str,
) -> (Vec<Vec<Frame>>, [u64; 2]) {
    let pipeline = launch(&format!(
        "{} {}",
        branch(FALLING, &grouped("pose0", model, group, extra), "sink0"),
        branch(DRINKING, &grouped("pose1", model, group, extra), "sink1")
    ));
    let frames = collect_frames_in(&pipeline, &["sink0", "sink1"]).unwrap();
    (
        frames,
        [
            batched_frames(&pipeline, "pose0"),
            batched_frames(&pipeline, "pose1"),
        ],
    )
}

/// Each clip in a pipeline of its own, played at the same time from two threads, their
/// `rtmopose` elements in `group`; also each element's `batched-frames`.
fn together_in_two_pipelines(
    model: &std::path::Path,
    group: &str,
    extra: &str,
) -> (Vec<Vec<Frame>>, [u64; 2]) {
    let element = grouped("pose", model, group, extra);
    let runs: Vec<_> = [FALLING, DRINKING]
        .into_iter()
        .map(|video| {
            let pipeline = launch(&branch(video, &element, "sink"));
            std::thread::spawn(move || {
                let frames = collect_frames_in(&pipeline, &["sink"]).unwrap().remove(0);
                (frames, batched_frames(&pipeline, "pose"))
            })
        })
        .collect();
    let results: Vec<(Vec<Frame>, u64)> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let batched = [results[0].1, results[1].1];
    (
        results.into_iter().map(|(frames, _)| frames).collect(),
        batched,
    )
}

/// Largest difference (pixels, scores) between the persons of two runs; panics where the
/// frames or person counts differ.
fn max_difference(clip: &str, a: &[Frame], b: &[Frame]) -> f32 {
    assert_eq!(a.len(), b.len(), "{clip}: frame counts");
    let mut worst = 0.0f32;
    for (i, (fa, fb)) in a.iter().zip(b).enumerate() {
        let (pa, pb) = (
            fa.persons.as_ref().expect("pose meta"),
            fb.persons.as_ref().expect("pose meta"),
        );
        assert_eq!(pa.len(), pb.len(), "{clip} frame {i}: person counts");
        for (x, y) in pa.iter().zip(pb) {
            worst = worst.max((x.score - y.score).abs());
            for (u, v) in x.bbox.iter().zip(&y.bbox) {
                worst = worst.max((u - v).abs());
            }
            for (u, v) in x.keypoints.iter().zip(&y.keypoints) {
                worst = worst
                    .max((u.x - v.x).abs())
                    .max((u.y - v.y).abs())
                    .max((u.score - v.score).abs());
            }
        }
    }
    worst
}

#[test]
fn two_pipelines_share_batched_calls_with_the_same_persons() {
    let model = yolo_dynamic_model();
    let (falling, drinking) = (alone(FALLING, &model), alone(DRINKING, &model));
    // A long timeout costs nothing here: a call starts as soon as both streams have a frame queued.
    let (frames, batched) =
        together_in_two_pipelines(&model, "batched", "max-batch=2 batch-timeout-us=500000");
    let worst = max_difference("falling", &falling, &frames[0])
        .max(max_difference("drinking", &drinking, &frames[1]));
    println!(
        "batched-frames {batched:?} of 90 / 103 frames; largest difference to separate sessions {worst:.2e}"
    );
    assert_eq!((frames[0].len(), frames[1].len()), (90, 103));
    assert!(
        worst <= 1e-3,
        "batched persons differ from separate sessions by {worst}"
    );
    // Every frame of the shorter clip can share a call with one of the other; allow a few
    // alone while the streams start.
    assert!(
        batched[0] >= 80 && batched[1] >= 80 && batched[1] <= 90,
        "batched-frames {batched:?}"
    );
}

#[test]
fn branches_share_a_fixed_batch_model_frame_by_frame() {
    let model = rtmo_model();
    let (falling, drinking) = (alone(FALLING, &model), alone(DRINKING, &model));
    let (frames, batched) = together_in_one_pipeline(&model, "fixed", "");
    let worst = max_difference("falling", &falling, &frames[0])
        .max(max_difference("drinking", &drinking, &frames[1]));
    println!("largest difference to separate sessions {worst:.2e}");
    assert!(
        worst <= 1e-4,
        "shared-session persons differ from separate sessions by {worst}"
    );
    assert_eq!(
        batched,
        [0, 0],
        "a model with a fixed batch of 1 runs one frame per call"
    );
}

#[test]
fn group_members_must_ask_for_the_same_session() {
    let pose = |threads: u32| {
        format!(
            "rtmopose model-file=\"{}\" threads={threads} session-group=mismatch",
            rtmo_model().display()
        )
    };
    let pipeline = launch(&format!(
        "{} {}",
        branch(FALLING, &pose(1), "sink0"),
        branch(DRINKING, &pose(2), "sink1")
    ));
    let err = collect_frames_in(&pipeline, &["sink0", "sink1"]).unwrap_err();
    assert!(
        err.message
            .contains("session-group 'mismatch' already runs"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("threads=1") && err.message.contains("threads=2"),
        "{}",
        err.message
    );
}
