//! Bad input gets a clear element error, not a panic or a hang.

use gst::prelude::*;
use recognizer::{PipelineError, collect_frames, data, rtmo_model};

fn run_pose(properties: &str) -> Result<Vec<recognizer::Frame>, PipelineError> {
    collect_frames(&format!(
        "filesrc location=\"{}\" ! jpegdec ! videoconvert ! rtmopose {properties} ! appsink name=sink",
        data("media/images/zidane.jpg").display()
    ))
}

fn expect_error(properties: &str, needles: &[&str]) {
    let err = run_pose(properties).expect_err("the pipeline must fail");
    let text = format!("{} {}", err.message, err.debug.clone().unwrap_or_default());
    println!("{properties}: {text}");
    assert!(
        err.source
            .as_deref()
            .is_some_and(|s| s.contains("GstRtmoPose")),
        "error from {:?}",
        err.source
    );
    for needle in needles {
        assert!(
            text.contains(needle),
            "error '{text}' does not mention '{needle}'"
        );
    }
}

#[test]
fn missing_model_file() {
    expect_error(
        "model-file=/nonexistent/pose.onnx",
        &["/nonexistent/pose.onnx", "does not exist"],
    );
}

/// In a `session-group` the element that loads the group's model reports the same errors.
#[test]
fn wrong_model_in_a_session_group() {
    expect_error(
        "model-file=/nonexistent/pose.onnx session-group=errors-missing",
        &["/nonexistent/pose.onnx", "does not exist"],
    );
    let stgcn = data("models/contract/stgcnpp_ntu60-shape_random-weights.onnx");
    expect_error(
        &format!(
            "model-file=\"{}\" session-group=errors-contract",
            stgcn.display()
        ),
        &[
            "stgcnpp_ntu60-shape_random-weights.onnx",
            "not a pose model",
            "expected RTMO",
        ],
    );
}

#[test]
fn no_model_set() {
    expect_error("", &["No model set", "'model-file' property"]);
}

#[test]
fn file_that_is_not_onnx() {
    let labels = data("models/contract/label_map_ntu60.txt");
    expect_error(
        &format!("model-file=\"{}\"", labels.display()),
        &["label_map_ntu60.txt", "could not load", "ONNX model"],
    );
}

#[test]
fn model_of_another_contract() {
    let stgcn = data("models/contract/stgcnpp_ntu60-shape_random-weights.onnx");
    expect_error(
        &format!("model-file=\"{}\"", stgcn.display()),
        &[
            "stgcnpp_ntu60-shape_random-weights.onnx",
            "not a pose model",
            "expected RTMO",
            "keypoint [?,2,100,17,3] float32",
        ],
    );
}

#[test]
fn forced_format_that_does_not_fit() {
    expect_error(
        &format!(
            "model-file=\"{}\" model-format=yolo-pose",
            rtmo_model().display()
        ),
        &["model-format=yolo-pose"],
    );
}

#[test]
fn invalid_device_string() {
    expect_error(
        &format!("model-file=\"{}\" device=gpu0", rtmo_model().display()),
        &["invalid device 'gpu0'", "cuda:N"],
    );
}

/// This machine has no CUDA (and the set-up installs the CPU build of ONNX Runtime).
#[test]
fn cuda_without_fallback_fails() {
    expect_error(
        &format!(
            "model-file=\"{}\" device=cuda fallback-to-cpu=false",
            rtmo_model().display()
        ),
        &["cuda:0", "CUDA", "fallback-to-cpu"],
    );
}

#[test]
fn cuda_with_fallback_runs_on_cpu_and_says_so() {
    recognizer::init();
    let description = format!(
        "filesrc location=\"{}\" ! jpegdec ! videoconvert ! rtmopose name=pose device=cuda:0 model-file=\"{}\" ! fakesink",
        data("media/images/zidane.jpg").display(),
        rtmo_model().display()
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let warnings = recognizer::run_to_eos(&pipeline).unwrap();
    let pose = pipeline.by_name("pose").unwrap();
    assert_eq!(
        pose.property::<String>("execution-provider"),
        "CPUExecutionProvider"
    );
    assert_eq!(pose.property::<u64>("inferences"), 1);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Falling back to the CPU") && w.contains("CUDA")),
        "the fallback must be announced with a warning message: {warnings:?}"
    );
}

#[test]
fn unwritable_frame_log() {
    let pipeline = recognizer::launch(
        "videotestsrc num-buffers=1 ! eventsink frames-location=/nonexistent-dir/frames.jsonl",
    );
    let err = recognizer::run_to_eos(&pipeline).expect_err("must fail");
    assert!(
        err.message.contains("/nonexistent-dir/frames.jsonl")
            && err.message.contains("for writing"),
        "{err}"
    );
}

/// A source that pushes a format `rtmopose` does not take (GRAY8 from an `appsrc`) gets an
/// element error from `rtmopose` naming the format and the formats it takes, not only upstream's
/// `not-negotiated`.
#[test]
fn refused_format_is_named() {
    let pipeline = recognizer::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=GRAY8,width=64,height=48,framerate=25/1 ! \
         rtmopose name=pose model-file=\"{}\" ! fakesink",
        rtmo_model().display()
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.push_buffer(gst::Buffer::from_mut_slice(vec![0u8; 64 * 48]))
        .unwrap();
    src.end_of_stream().unwrap();
    let err = recognizer::run_to_eos(&pipeline).expect_err("GRAY8 must be refused");
    assert!(
        err.source.as_deref().is_some_and(|s| s.ends_with(":pose")),
        "error from {:?}",
        err.source
    );
    for needle in ["rtmopose 'pose'", "GRAY8", "NV12", "BGRx", "videoconvert"] {
        assert!(
            err.message.contains(needle),
            "'{err}' does not name {needle}"
        );
    }
}
