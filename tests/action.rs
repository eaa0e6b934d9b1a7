//! `stgcnclassify` in pipelines: M = 2 with the NTU-60 contract model on real video (windows per
//! track, batching, actions carried forward), and clear errors for bad configuration. The
//! element's behaviour on synthetic frames is in `plugins/tests/stgcnclassify.rs`.

use gst::prelude::*;
use recognizer::{collect_frames, data, launch, rtmo_model, run_to_eos};
use recognizer_meta::{Person, PoseMeta};

fn ntu_model() -> String {
    data("models/contract/stgcnpp_ntu60-shape_random-weights.onnx")
        .display()
        .to_string()
}

fn ntu_labels() -> String {
    data("models/contract/label_map_ntu60.txt")
        .display()
        .to_string()
}

/// The NTU-60 contract export (M = 2, T = 100) runs in the full chain on the hugging clip: both
/// people get actions named from the label map, both windows of a frame go in one call, and the
/// latest action is carried on the frames between classifications.
#[test]
fn ntu_contract_model_with_two_persons_per_sample() {
    let pipeline = launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! rtmopose model-file=\"{}\" ! bytetrack ! \
         stgcnclassify name=cls model-file=\"{}\" labels-file=\"{}\" min-frames=20 stride=10 ! appsink name=sink",
        data("media/video/mmaction2_demo_skeleton_ntu_hugging.mp4").display(),
        rtmo_model().display(),
        ntu_model(),
        ntu_labels()
    ));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<Person>>::new()));
    let collected = frames.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let persons = sample
                    .buffer()
                    .and_then(|b| b.meta::<PoseMeta>())
                    .map(|m| m.persons().to_vec())
                    .unwrap_or_default();
                collected.lock().unwrap().push(persons);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink.set_property("sync", false);
    run_to_eos(&pipeline).unwrap();
    let cls = pipeline.by_name("cls").unwrap();
    let (classifications, batches) = (
        cls.property::<u64>("classifications"),
        cls.property::<u64>("batches"),
    );
    println!("hugging: {classifications} windows classified in {batches} calls");
    assert_eq!(
        cls.property::<String>("execution-provider"),
        "CPUExecutionProvider"
    );
    assert!(
        classifications >= 2 * batches - 2 && batches >= 5,
        "two tracks per call: {classifications} in {batches}"
    );
    let labels: Vec<String> = std::fs::read_to_string(ntu_labels())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let frames = frames.lock().unwrap();
    assert_eq!(frames.len(), 72);
    for (i, persons) in frames.iter().enumerate() {
        for p in persons.iter().filter(|p| p.track().is_some()) {
            let age = p.track().unwrap().age;
            match p.action() {
                Some(a) => {
                    assert_eq!(labels[a.class_id as usize], a.label);
                    assert!(a.window >= 20 && a.window <= 100 && a.score > 0.0 && a.score <= 1.0);
                    assert!(a.window_end_pts.is_some());
                }
                // Before a track has 20 frames there is nothing to report.
                None => assert!(
                    age < 19 || i < 19,
                    "frame {i}: track of age {age} without action"
                ),
            }
        }
    }
}

fn expect_start_error(properties: &str, needles: &[&str]) {
    let err = collect_frames(&format!(
        "videotestsrc num-buffers=1 ! stgcnclassify {properties} ! appsink name=sink"
    ))
    .unwrap_err();
    let text = err.to_string();
    for needle in needles {
        assert!(
            text.contains(needle),
            "error '{text}' does not mention '{needle}'"
        );
    }
}

#[test]
fn bad_configuration_is_an_element_error() {
    expect_start_error("", &["No model set", "'model-file' property"]);
    expect_start_error(
        &format!("model-file=\"{}\"", rtmo_model().display()),
        &["not an action model", "[N,M,T,17,3]", "dets"],
    );
    expect_start_error(
        &format!(
            "model-file=\"{}\" labels-file=\"{}\"",
            ntu_model(),
            data("models/contract/k400.txt").display()
        ),
        &["400 labels", "outputs 60 classes"],
    );
    expect_start_error(
        &format!("model-file=\"{}\"", ntu_model()),
        &["carries no labels", "'labels-file' property"],
    );
    expect_start_error(
        &format!(
            "model-file=\"{}\" labels-file=\"{}\" window=48",
            ntu_model(),
            ntu_labels()
        ),
        &["window=48", "T = 100"],
    );
    expect_start_error(
        &format!(
            "model-file=\"{}\" labels-file=\"{}\" persons-per-sample=1",
            ntu_model(),
            ntu_labels()
        ),
        &["persons-per-sample=1", "M = 2"],
    );
    expect_start_error(
        &format!(
            "model-file=\"{}\" labels-file=/nonexistent/labels.txt",
            ntu_model()
        ),
        &["/nonexistent/labels.txt"],
    );
    // An unknown choice does not even make an element: gst_parse names the property and value.
    expect_start_error(
        &format!(
            "model-file=\"{}\" labels-file=\"{}\" normalization=body",
            ntu_model(),
            ntu_labels()
        ),
        &["normalization", "body"],
    );
}
