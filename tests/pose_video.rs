//! `rtmopose` on real video: people found frame after frame, the frame log of `eventsink`,
//! and `interval`.

use recognizer::{collect_frames, data, rtmo_model};
use recognizer_meta::{FrameRecord, PoseMetaFlags};

fn video_source(file: &str) -> String {
    format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert",
        data(file).display()
    )
}

/// The falling person is found in at least 95% of frames; the frame log has one JSON object per
/// frame in the documented form (`recognizer_meta::FrameRecord`).
#[test]
fn falling_person_found_and_logged() {
    let dir = tempdir();
    let log = dir.join("frames.jsonl");
    let description = format!(
        "{} ! rtmopose model-file=\"{}\" ! eventsink stream=cam7 frames-location=\"{}\"",
        video_source("media/video/ntu_S002C002P003R002A043_rgb_falling.avi"),
        rtmo_model().display(),
        log.display()
    );
    let pipeline = recognizer::launch(&description);
    recognizer::run_to_eos(&pipeline).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let records: Vec<FrameRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a frame record"))
        .collect();
    assert_eq!(records.len(), 90, "the clip has 90 frames");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            (r.stream.as_str(), r.frame, r.width, r.height),
            ("cam7", i as u64, 1920, 1080)
        );
        assert_eq!(
            r.pts_ns,
            Some(i as u64 * 1_000_000_000 / 30),
            "frame {i} pts"
        );
        for p in &r.persons {
            assert_eq!(p.keypoints.len(), 17);
            assert!(p.track_id.is_none() && p.track_state.is_none() && p.action.is_none());
            assert!(
                p.bbox[0] >= 0.0
                    && p.bbox[2] <= 1920.0
                    && p.bbox[0] < p.bbox[2]
                    && p.bbox[1] < p.bbox[3]
            );
        }
    }
    // The raw JSON carries explicit nulls for what later elements fill in.
    let first: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("bbox")).unwrap()).unwrap();
    assert!(
        first["persons"][0]["track_id"].is_null() && first["persons"][0].get("action").is_some()
    );
    let with_person = records.iter().filter(|r| !r.persons.is_empty()).count();
    println!(
        "falling clip: a person in {with_person} of {} frames",
        records.len()
    );
    assert!(
        with_person * 100 >= records.len() * 95,
        "person found in only {with_person} of 90 frames"
    );
}

#[test]
fn two_people_hugging() {
    let frames = collect_frames(&format!(
        "{} ! rtmopose model-file=\"{}\" ! appsink name=sink",
        video_source("media/video/mmaction2_demo_skeleton_ntu_hugging.mp4"),
        rtmo_model().display()
    ))
    .unwrap();
    assert_eq!(frames.len(), 72);
    let two = frames
        .iter()
        .filter(|f| f.persons.as_ref().is_some_and(|p| p.len() >= 2))
        .count();
    println!(
        "hugging clip: two or more people in {two} of {} frames",
        frames.len()
    );
    assert!(
        two * 100 >= frames.len() * 80,
        "two people found in only {two} of {} frames",
        frames.len()
    );
}

/// With `interval=3` the model runs on frames 0, 3, 6, ...; the frames between carry no pose meta.
#[test]
fn interval_runs_every_nth_frame() {
    let frames = collect_frames(&format!(
        "{} ! rtmopose model-file=\"{}\" interval=3 name=pose ! appsink name=sink",
        video_source("media/video/ntu_S002C002P003R002A043_rgb_falling.avi"),
        rtmo_model().display()
    ))
    .unwrap();
    assert_eq!(frames.len(), 90);
    for (i, f) in frames.iter().enumerate() {
        if i % 3 == 0 {
            assert!(
                f.flags.contains(PoseMetaFlags::INFERRED),
                "frame {i} must carry inferred metadata"
            );
            assert!(f.persons.is_some());
        } else {
            // Marked as not looked at: a meta without INFERRED and without persons.
            assert!(
                !f.flags.contains(PoseMetaFlags::INFERRED) && f.persons.as_deref() == Some(&[]),
                "frame {i} must say that pose did not run on it"
            );
        }
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "recognizer-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
