//! The project's general action model (Penn Action, `models/penn_action_stgcnpp.onnx`) through the
//! full chain on real video.

use std::path::PathBuf;

use recognizer::{collect_frames, data, rtmo_model};

#[test]
/// The general action model (Penn Action, 15 classes) labels the shared clean-and-jerk clip as
/// clean_and_jerk through the full chain.
fn penn_model_recognises_clean_and_jerk() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/penn_action_stgcnpp.onnx");
    let frames = collect_frames(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! rtmopose model-file=\"{}\" score-threshold=0.1 ! bytetrack ! \
         stgcnclassify model-file=\"{}\" ! appsink name=sink",
        data("media/video/clean_and_jerk.mp4").display(),
        rtmo_model().display(),
        model.display()
    ))
    .unwrap();
    let labels: Vec<String> = frames
        .iter()
        .flat_map(|f| {
            f.persons
                .iter()
                .flatten()
                .filter_map(|p| p.action().map(|a| a.label))
        })
        .collect();
    let right = labels.iter().filter(|l| *l == "clean_and_jerk").count();
    println!(
        "clean_and_jerk clip: {right} of {} classified person-frames labelled clean_and_jerk",
        labels.len()
    );
    assert!(
        labels.len() >= 100 && right * 10 >= labels.len() * 9,
        "{right} of {}",
        labels.len()
    );
}
