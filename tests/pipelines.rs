//! The ready-made descriptions in `pipelines/` run as they are on the shared media.

use recognizer::{data, launch, pipeline_description, rtmo_model, run_to_eos};
use recognizer_meta::FrameRecord;

#[test]
fn pose_frames_pipeline() {
    let out = std::env::temp_dir().join(format!("recognizer-pipelines-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let video = data("media/video/mmaction2_demo_skeleton_ntu_hugging.mp4");
    let model = rtmo_model();
    let description = pipeline_description(
        "pose-frames.pipeline",
        &[
            ("VIDEO", video.to_str().unwrap()),
            ("POSE_MODEL", model.to_str().unwrap()),
            ("OUTDIR", out.to_str().unwrap()),
            ("STREAM", "hall"),
        ],
    );
    run_to_eos(&launch(&description)).unwrap();
    let text = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    let records: Vec<FrameRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 72);
    assert!(records.iter().all(|r| r.stream == "hall" && r.width == 1920 && r.height == 1080));
    assert!(records.iter().filter(|r| r.persons.len() >= 2).count() >= 60);
    std::fs::remove_dir_all(&out).unwrap();
}
