//! The frame log (`eventsink frames-location`) of the real chain against its published JSON Schema
//! (`schemas/frame.schema.json`): every line of a log that holds frames the pose model skipped
//! (`rtmopose interval=2`), persons `bytetrack` predicted on them, classified persons with every
//! class probability, and frames without pose metadata (`inferred: null`): before `rtmopose`,
//! and after a `videoflip`, which drops the meta.

#[path = "support/events.rs"]
mod support;

use recognizer::{data, fall_model, launch, read_jsonl, rtmo_model, run_to_eos};
use recognizer_meta::FrameRecord;
use support::{assert_valid, published_schema, schema, temp_dir};

const FALLING: &str = "media/video/ntu_S002C002P003R002A043_rgb_falling.avi";

#[test]
fn frame_log_of_the_chain_matches_its_schema() {
    let dir = temp_dir("frame-log-schema");
    let (raw, flipped, frames, events) = (
        dir.join("raw.jsonl"),
        dir.join("flipped.jsonl"),
        dir.join("frames.jsonl"),
        dir.join("events.jsonl"),
    );
    // One branch logs the decoded frames before rtmopose (no pose metadata at all), one after a
    // videoflip, which drops the meta (it cannot move the coordinates). `video-direction`, not
    // the deprecated `method`, which GStreamer 1.22's videoflip ignores (it passes frames and
    // meta through unrotated).
    run_to_eos(&launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! tee name=t \
         t. ! queue ! eventsink stream=raw frames-location=\"{}\" \
         t. ! queue ! rtmopose model-file=\"{}\" score-threshold=0.1 interval=2 ! tee name=p \
         p. ! queue ! videoflip video-direction=180 ! eventsink stream=flipped frames-location=\"{}\" \
         p. ! queue ! bytetrack ! stgcnclassify model-file=\"{}\" ! eventsink stream=cam0 labels=fall \
         location=\"{}\" frames-location=\"{}\"",
        data(FALLING).display(),
        raw.display(),
        rtmo_model().display(),
        flipped.display(),
        fall_model().display(),
        events.display(),
        frames.display(),
    )))
    .unwrap();

    let validator = published_schema("frame.schema.json");
    let lines: Vec<serde_json::Value> = read_jsonl(&frames);
    let mut raw_lines: Vec<serde_json::Value> = read_jsonl(&raw);
    let flipped_lines: Vec<serde_json::Value> = read_jsonl(&flipped);
    assert_eq!(lines.len(), raw_lines.len());
    assert_eq!(lines.len(), flipped_lines.len());
    assert!(lines.len() > 50, "{} frames", lines.len());
    for line in lines.iter().chain(&raw_lines).chain(&flipped_lines) {
        assert_valid(&validator, line);
    }
    // Before rtmopose, or after an element that dropped the meta: "not looked", not "nobody".
    raw_lines.extend(flipped_lines);
    assert!(
        raw_lines
            .iter()
            .all(|l| l["inferred"].is_null() && l["persons"] == serde_json::json!([]))
    );
    // interval=2: the model runs on even frames; the odd ones carry the tracker's predictions.
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["inferred"], i % 2 == 0, "frame {i}");
    }
    let persons = |skipped: bool| {
        lines
            .iter()
            .filter(move |l| l["inferred"] == !skipped)
            .flat_map(|l| l["persons"].as_array().unwrap())
    };
    assert!(
        persons(true).count() > 0 && persons(true).all(|p| p["predicted"] == true),
        "persons on skipped frames are predicted"
    );
    assert!(persons(false).all(|p| p["predicted"] == false));
    let classified: Vec<&serde_json::Value> = persons(false)
        .chain(persons(true))
        .filter(|p| !p["scores"].is_null())
        .collect();
    assert!(!classified.is_empty(), "no person was classified");
    for p in &classified {
        let scores = p["scores"].as_object().unwrap();
        assert!(p["track_age"].as_u64().is_some());
        if let Some(action) = p["action"].as_object() {
            assert_eq!(scores[action["label"].as_str().unwrap()], action["score"]);
            assert!(action["window"].as_u64().unwrap() > 0);
        }
    }
    // The scores object keeps the classifier's class order (serde_json::Value sorts keys: read
    // the lines as FrameRecord).
    let records: Vec<FrameRecord> = read_jsonl(&frames);
    for scores in records
        .iter()
        .flat_map(|r| &r.persons)
        .filter_map(|p| p.scores.as_ref())
    {
        let labels: Vec<&str> = scores.0.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["normal", "fall"], "class order");
    }
    // The schema is not vacuous: a line without `inferred`, or with a stray key, fails.
    let mut bad = lines[0].clone();
    bad.as_object_mut().unwrap().remove("inferred");
    assert!(!validator.is_valid(&bad));
    let mut bad = lines[0].clone();
    bad["persons"] = serde_json::json!([{"bbox": [0, 0, 1, 1]}]);
    assert!(!validator.is_valid(&bad));
    // Events written by the same run follow theirs.
    let events_schema = schema();
    for event in read_jsonl::<serde_json::Value>(&events) {
        assert_valid(&events_schema, &event);
    }
}
