//! The project's fall model (`models/fall_stgcnpp.onnx`) through the full chain on real video
//! (`rtmopose ! bytetrack ! stgcnclassify`): the falling person of the NTU clip is labelled as a
//! fall and gives a fall event (the main job's pipeline, `pipelines/file-to-events.pipeline`);
//! under the rule an installer picks from the model card's operating points
//! (`class=fall min-score=0.3 min-frames=5`) the falling clip raises a fall event at pose
//! `interval` 1 and 2 (not yet at 3: see [`FALL_EVENT_INTERVALS`]), while nobody drinking
//! water, hugging, walking (sports2d) or moving about (pose2sim) raises one at 1, 2 or 3.
//! Also runs `pipelines/two-cameras.pipeline` (the falling clip and the drink-water clip at once).

#[path = "support/events.rs"]
mod support;

use std::path::{Path, PathBuf};

use recognizer::{
    collect_frames, data, launch, pipeline_description, read_jsonl, rtmo_model, run_to_eos,
};
use recognizer_meta::FrameRecord;
use support::{assert_valid, schema, temp_dir};

const FALLING: &str = "media/video/ntu_S002C002P003R002A043_rgb_falling.avi";
const DRINKING: &str = "media/video/ntu_S001C001P001R001A001_rgb_drink_water.avi";

fn fall_model() -> PathBuf {
    let path = recognizer::fall_model();
    assert!(path.is_file(), "missing {}", path.display());
    path
}

fn fall_labels() -> PathBuf {
    fall_model().with_extension("labels")
}

/// Runs `pipelines/<name>` to EOS with the test pose model, the fall model and its labels,
/// writing into `out`; `variables` are the pipeline's other variables.
fn run_fall_pipeline(name: &str, out: &Path, variables: &[(&str, &str)]) {
    let (pose, action, labels) = (rtmo_model(), fall_model(), fall_labels());
    let mut all = vec![
        ("POSE_MODEL", pose.to_str().unwrap()),
        ("ACTION_MODEL", action.to_str().unwrap()),
        ("ACTION_LABELS", labels.to_str().unwrap()),
        ("OUTDIR", out.to_str().unwrap()),
    ];
    all.extend_from_slice(variables);
    run_to_eos(&launch(&pipeline_description(name, &all))).unwrap();
}

fn is_fall(label: &str) -> bool {
    label.contains("fall")
}

#[test]
fn labels_name_fall_classes_only() {
    let text = std::fs::read_to_string(fall_labels()).unwrap();
    let labels: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        labels.iter().any(|l| is_fall(l)),
        "no fall class: {labels:?}"
    );
    assert!(
        labels.iter().any(|l| !is_fall(l)),
        "no other class: {labels:?}"
    );
}

/// The main job's pipeline on the falling clip: the person is labelled as a fall once down, one
/// fall event (valid against the schema) is written, and the annotated recording decodes.
#[test]
fn falling_person_gives_a_fall_event() {
    let out = temp_dir("fall-file-to-events");
    let video = data(FALLING);
    run_fall_pipeline(
        "file-to-events.pipeline",
        &out,
        &[("VIDEO", video.to_str().unwrap()), ("STREAM", "hall")],
    );

    let frames: Vec<FrameRecord> = read_jsonl(&out.join("frames.jsonl"));
    assert_eq!(frames.len(), 90);
    let fall_frames: Vec<u64> = frames
        .iter()
        .filter(|f| {
            f.persons
                .iter()
                .any(|p| p.action.as_ref().is_some_and(|a| is_fall(&a.label)))
        })
        .map(|f| f.frame)
        .collect();
    println!("falling clip: labelled fall on frames {fall_frames:?}");
    // The person stands until about frame 48 and lies on the floor from about frame 56.
    assert!(
        fall_frames.len() >= 3,
        "the falling person is labelled fall on {} frames",
        fall_frames.len()
    );
    assert!(
        fall_frames[0] >= 45,
        "labelled fall before falling, at frame {}",
        fall_frames[0]
    );

    let events: Vec<serde_json::Value> = read_jsonl(&out.join("events.jsonl"));
    println!(
        "falling clip: {} fall event(s), first {}",
        events.len(),
        events[0]
    );
    assert!(!events.is_empty(), "no fall event");
    let validator = schema();
    for event in &events {
        assert_valid(&validator, event);
        assert_eq!(event["type"], "fall");
        assert_eq!(event["stream"], "hall");
    }

    let decoded = collect_frames(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! appsink name=sink",
        out.join("annotated.mp4").display()
    ))
    .unwrap();
    assert_eq!(decoded.len(), 90);
}

/// The rule an installer who must not miss falls picks from the model card's operating points
/// (chosen on validation windows only): a rule on the fall probability, below the model's own
/// decision (0.5), with two consecutive windows (`min-frames=5` at `stgcnclassify`'s stride of 4
/// frames). The same rule as the middle row of the card's "Event-level figures".
const FALL_MIN_SCORE: f32 = 0.3;
const FALL_MIN_FRAMES: u32 = 5;

/// The pose intervals the rule must hold at: every frame, every 2nd and every 3rd frame
/// inferred (`bytetrack` predicts the others).
const INTERVALS: [u32; 3] = [1, 2, 3];

/// The intervals at which the falling clip must raise its event. Not at 3: there its fall
/// probability stays below 0.1 (0.08 at most; 0.75 at interval 1, 0.59 at 2), so no operating
/// point of the card (the lowest is 0.10) raises it. Two frames in three of each window are
/// skeletons `bytetrack` predicted, which the model never saw in training (issue 14, item 3).
/// The run at interval 3 is still made and its scores printed.
const FALL_EVENT_INTERVALS: [u32; 2] = [1, 2];

/// What one interval's branch of [`run_at_intervals`] wrote.
struct IntervalRun {
    interval: u32,
    events: Vec<serde_json::Value>,
    frames: Vec<FrameRecord>,
}

impl IntervalRun {
    /// Tracked persons that carry a classification.
    fn classified(&self) -> impl Iterator<Item = &recognizer_meta::PersonRecord> {
        self.frames
            .iter()
            .flat_map(|f| &f.persons)
            .filter(|p| p.track_id.is_some() && p.scores.is_some())
    }

    /// Fall probabilities of the classified persons, per frame.
    fn fall_scores(&self) -> Vec<(u64, f32)> {
        self.frames
            .iter()
            .flat_map(|f| {
                f.persons
                    .iter()
                    .filter_map(|p| p.scores.as_ref()?.get("fall"))
                    .map(move |s| (f.frame, s))
            })
            .collect()
    }

    fn summary(&self) -> String {
        let scores = self.fall_scores();
        let max = scores.iter().map(|s| s.1).fold(0.0f32, f32::max);
        let over: Vec<u64> = scores
            .iter()
            .filter(|s| s.1 >= FALL_MIN_SCORE)
            .map(|s| s.0)
            .collect();
        format!(
            "interval {}: {} event(s), max fall score {max:.3}, fall score >= {FALL_MIN_SCORE} on frames {over:?}",
            self.interval,
            self.events.len()
        )
    }
}

/// Decodes `video` once and tees it into one `rtmopose interval=N ! bytetrack ! stgcnclassify !
/// eventsink class=fall ...` branch per interval of [`INTERVALS`] (one pipeline: the frames are
/// decoded once), each writing its events and frame log into `out`.
fn run_at_intervals(video: &str, out: &Path) -> Vec<IntervalRun> {
    let (pose, action) = (rtmo_model(), fall_model());
    let mut description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! tee name=t",
        data(video).display()
    );
    for i in INTERVALS {
        description += &format!(
            " t. ! queue max-size-buffers=4 ! rtmopose model-file=\"{}\" score-threshold=0.1 interval={i} ! \
             bytetrack ! stgcnclassify model-file=\"{}\" ! eventsink stream=i{i} event-type=fall \
             class=fall min-score={FALL_MIN_SCORE} min-frames={FALL_MIN_FRAMES} \
             location=\"{}\" frames-location=\"{}\"",
            pose.display(),
            action.display(),
            out.join(format!("events-{i}.jsonl")).display(),
            out.join(format!("frames-{i}.jsonl")).display()
        );
    }
    run_to_eos(&launch(&description)).unwrap();
    INTERVALS
        .iter()
        .map(|&interval| IntervalRun {
            interval,
            events: read_jsonl(&out.join(format!("events-{interval}.jsonl"))),
            frames: read_jsonl(&out.join(format!("frames-{interval}.jsonl"))),
        })
        .collect()
}

/// The falling clip raises a fall event under the installer's rule at intervals 1 and 2
/// ([`FALL_EVENT_INTERVALS`]; not yet at 3), once the person is falling; the everyday clips raise
/// none at intervals 1, 2 and 3, and at `interval=1` nobody in them is labelled fall by the
/// model's own decision either.
#[test]
fn fall_rule_at_intervals() {
    let validator = schema();
    let mut failures = Vec::new();
    for video in [
        FALLING,
        DRINKING,
        "media/video/mmaction2_demo_skeleton_ntu_hugging.mp4",
        "media/video/sports2d_demo_2persons_walking.mp4",
        "media/video/pose2sim_multiperson_cam01.mp4",
    ] {
        let out = temp_dir("fall-intervals");
        for run in run_at_intervals(video, &out) {
            println!("{video}: {}", run.summary());
            let classified = run.classified().count();
            if classified < 50 {
                failures.push(format!(
                    "{video} interval {}: only {classified} person-frames classified",
                    run.interval
                ));
            }
            for event in &run.events {
                assert_valid(&validator, event);
                assert_eq!(event["type"], "fall");
                assert_eq!(event["label"], "fall");
            }
            if video == FALLING && FALL_EVENT_INTERVALS.contains(&run.interval) {
                // The person stands until about frame 48 (30 fps) and lies on the floor from
                // about frame 56.
                let standing_ns = 45 * 1_000_000_000 / 30;
                match run.events.first() {
                    None => failures.push(format!("{video}: no fall event, {}", run.summary())),
                    Some(e) if e["start_pts_ns"].as_u64().unwrap() < standing_ns => {
                        failures.push(format!("{video}: fall event while standing: {e}"))
                    }
                    Some(_) => {}
                }
            } else if video != FALLING {
                if !run.events.is_empty() {
                    failures.push(format!("{video}: fall event(s), {}", run.summary()));
                }
                let labelled = run
                    .classified()
                    .filter(|p| p.action.as_ref().is_some_and(|a| is_fall(&a.label)))
                    .count();
                if run.interval == 1 && labelled > 0 {
                    failures.push(format!(
                        "{video}: {labelled} person-frames labelled fall at interval 1"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Two cameras in one process: the fall on cam0 gives events on cam0 only, and each stream's
/// track ids start at 1.
#[test]
fn two_cameras_pipeline() {
    let out = temp_dir("two-cameras");
    let (v0, v1) = (data(FALLING), data(DRINKING));
    run_fall_pipeline(
        "two-cameras.pipeline",
        &out,
        &[
            ("VIDEO0", v0.to_str().unwrap()),
            ("VIDEO1", v1.to_str().unwrap()),
        ],
    );
    let e0: Vec<serde_json::Value> = read_jsonl(&out.join("events-cam0.jsonl"));
    let e1: Vec<serde_json::Value> = read_jsonl(&out.join("events-cam1.jsonl"));
    println!(
        "two cameras: {} events on cam0, {} on cam1",
        e0.len(),
        e1.len()
    );
    assert!(!e0.is_empty(), "no fall event on the falling camera");
    assert!(
        e0.iter()
            .all(|e| e["stream"] == "cam0" && e["type"] == "fall"),
        "{e0:?}"
    );
    assert!(
        e1.is_empty(),
        "a fall event on the drink-water camera: {e1:?}"
    );
    for (name, count) in [("frames-cam0.jsonl", 90), ("frames-cam1.jsonl", 103)] {
        let records: Vec<FrameRecord> = read_jsonl(&out.join(name));
        assert_eq!(records.len(), count, "{name}");
        let first_id = records
            .iter()
            .flat_map(|r| r.persons.iter().filter_map(|p| p.track_id))
            .next();
        assert_eq!(first_id, Some(1), "{name}: ids start at 1 per stream");
    }
}
