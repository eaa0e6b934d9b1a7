//! The project's fall model (`models/fall_stgcnpp.onnx`) through the full chain on real video
//! (`rtmopose ! bytetrack ! stgcnclassify`): the falling person of the NTU clip is labelled as a
//! fall and gives a fall event (the main job's pipeline, `pipelines/file-to-events.pipeline`),
//! while nobody drinking water, hugging, walking (sports2d) or moving about (pose2sim) is.
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

/// Per frame, the actions given to tracked persons, through the chain with the fall model.
fn labels_over(video: &str) -> Vec<Vec<String>> {
    let frames = collect_frames(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! rtmopose model-file=\"{}\" score-threshold=0.1 ! bytetrack ! \
         stgcnclassify model-file=\"{}\" ! appsink name=sink",
        data(video).display(),
        rtmo_model().display(),
        fall_model().display()
    ))
    .unwrap();
    frames
        .iter()
        .map(|f| {
            f.persons
                .iter()
                .flatten()
                .filter_map(|p| p.action().map(|a| a.label))
                .collect()
        })
        .collect()
}

#[test]
fn no_fall_in_everyday_clips() {
    for video in [
        DRINKING,
        "media/video/mmaction2_demo_skeleton_ntu_hugging.mp4",
        "media/video/sports2d_demo_2persons_walking.mp4",
        "media/video/pose2sim_multiperson_cam01.mp4",
    ] {
        let labels = labels_over(video);
        let classified: usize = labels.iter().map(Vec::len).sum();
        let falls: usize = labels
            .iter()
            .map(|l| l.iter().filter(|s| is_fall(s)).count())
            .sum();
        println!("{video}: {classified} person-frames classified, {falls} labelled fall");
        assert!(
            classified >= 50,
            "{video}: only {classified} person-frames classified"
        );
        assert_eq!(falls, 0, "{video}: someone labelled fall");
    }
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
