//! Pose throughput: raw ONNX Runtime inference versus the `rtmopose` element chain, on the same
//! frames, the same model and the same thread count, measured side by side in one run.
//!
//! ```text
//! cargo bench --bench pose_throughput -- [video=PATH] [model=PATH] [threads=N] [rounds=N] [device=cpu|cuda|cuda:N]
//! ```
//! Raw: `Session::run` on input tensors letterboxed beforehand (decode and pre-processing not
//! timed). Element chain: `filesrc ! decodebin ! videoconvert ! rtmopose ! fakesink`, timed from
//! PLAYING to EOS, decode included; also with a `queue` before `rtmopose`, and the full chain
//! with a queue, `bytetrack` and `stgcnclassify` (the project's fall model, 1 thread), once in
//! one streaming thread after the queue and once with a second `queue` before `stgcnclassify`
//! (the classifier in a thread of its own). project target: chain / raw >= 0.95.

use std::time::Instant;

use gst::prelude::*;
use gstrecognizer::{onnx, pose_model::PoseModel, video};
use ort::value::TensorRef;

fn decode_tensors(video_path: &str, model: &mut PoseModel) -> Vec<Vec<f32>> {
    let pipeline = recognizer::launch(&format!(
        "filesrc location=\"{video_path}\" ! decodebin ! videoconvert ! video/x-raw,format=BGR ! appsink name=sink sync=false"
    ));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut tensors = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let buffer = sample.buffer().unwrap();
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
        let mut tensor = vec![0.0; model.contract.input_len()];
        model
            .contract
            .preprocess(&video::image(&frame).unwrap(), &mut tensor)
            .unwrap();
        tensors.push(tensor);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    tensors
}

fn raw_fps(
    model_path: &std::path::Path,
    device: onnx::Device,
    threads: usize,
    tensors: &[Vec<f32>],
    size: (usize, usize),
) -> f64 {
    // No fallback on either side: a GPU figure must come from the GPU.
    let request = onnx::SessionRequest {
        model: model_path,
        device,
        fallback_to_cpu: false,
        threads,
    };
    let mut session = onnx::load_session(&request).unwrap().session;
    let input = session.inputs()[0].name().to_string();
    let shape = [1usize, 3, size.1, size.0];
    // Warm-up, as the element's first frame also pays for it.
    let t = TensorRef::from_array_view((shape, &tensors[0][..])).unwrap();
    session.run(ort::inputs![input.as_str() => t]).unwrap();
    let start = Instant::now();
    for tensor in tensors {
        let t = TensorRef::from_array_view((shape, &tensor[..])).unwrap();
        let outputs = session.run(ort::inputs![input.as_str() => t]).unwrap();
        std::hint::black_box(&outputs);
    }
    tensors.len() as f64 / start.elapsed().as_secs_f64()
}

/// What follows `videoconvert` in a timed chain.
#[derive(Clone, Copy)]
enum Chain {
    Pose,
    QueuePose,
    /// queue, rtmopose, bytetrack, stgcnclassify with the fall model.
    Full,
    /// [`Chain::Full`] with a queue before stgcnclassify.
    FullQueued,
}

fn chain_fps(
    video_path: &str,
    model_path: &std::path::Path,
    device: onnx::Device,
    threads: usize,
    frames: usize,
    chain: Chain,
) -> f64 {
    let queue = match chain {
        Chain::Pose => "",
        Chain::QueuePose | Chain::Full | Chain::FullQueued => "queue max-size-buffers=4 ! ",
    };
    let classifier = format!(
        "stgcnclassify threads=1 model-file=\"{}\" ! ",
        recognizer::fall_model().display()
    );
    let after = match chain {
        Chain::Full => format!("bytetrack ! {classifier}"),
        Chain::FullQueued => format!("bytetrack ! queue max-size-buffers=4 ! {classifier}"),
        _ => String::new(),
    };
    let pipeline = recognizer::launch(&format!(
        "filesrc location=\"{video_path}\" ! decodebin ! videoconvert ! {queue}rtmopose name=pose device={device} fallback-to-cpu=false threads={threads} model-file=\"{}\" ! {after}fakesink",
        model_path.display()
    ));
    // Start (model load, warm-up) is not part of the per-frame figure: preroll first.
    pipeline.set_state(gst::State::Paused).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(120));
    let start = Instant::now();
    recognizer::run_to_eos(&pipeline).unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let inferences = pipeline
        .by_name("pose")
        .unwrap()
        .property::<u64>("inferences") as usize;
    assert_eq!(
        inferences, frames,
        "the chain must run the model on every frame"
    );
    // The preroll frame was processed before the clock started.
    (frames - 1) as f64 / elapsed
}

fn main() {
    recognizer::init();
    let arg = recognizer::bench_arg;
    let video_path = arg("video").unwrap_or_else(|| {
        recognizer::data("media/video/ntu_S002C002P003R002A043_rgb_falling.avi")
            .display()
            .to_string()
    });
    let model_path = arg("model")
        .map(Into::into)
        .unwrap_or_else(recognizer::rtmo_model);
    let threads: usize = arg("threads")
        .map(|t| t.parse().expect("threads=N"))
        .unwrap_or(2);
    let device: onnx::Device = arg("device")
        .map(|d| d.parse().expect("device=cpu|cuda|cuda:N"))
        .unwrap_or(onnx::Device::Cpu);
    let rounds: usize = arg("rounds")
        .map(|t| t.parse().expect("rounds=N"))
        .unwrap_or(5);

    let mut model = PoseModel::load_cpu(&model_path, threads).unwrap();
    let size = (model.contract.input_width, model.contract.input_height);
    let tensors = decode_tensors(&video_path, &mut model);
    drop(model);
    println!(
        "video {video_path}: {} frames; model {}; {device}; {threads} ORT threads",
        tensors.len(),
        model_path.display()
    );
    println!(
        "ratios to raw inference: chain | chain with a queue before rtmopose | full chain | full chain, queue before stgcnclassify"
    );
    println!(
        "{:>5} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "round", "raw fps", "chain", "queue", "full", "full+q"
    );
    let (mut ratios, mut queued_ratios, mut full_ratios, mut full_queued_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Interleave the runs so that machine noise hits all alike.
    for round in 0..rounds {
        let raw = raw_fps(&model_path, device, threads, &tensors, size);
        let chain = chain_fps(
            &video_path,
            &model_path,
            device,
            threads,
            tensors.len(),
            Chain::Pose,
        );
        let queued = chain_fps(
            &video_path,
            &model_path,
            device,
            threads,
            tensors.len(),
            Chain::QueuePose,
        );
        let full = chain_fps(
            &video_path,
            &model_path,
            device,
            threads,
            tensors.len(),
            Chain::Full,
        );
        let full_queued = chain_fps(
            &video_path,
            &model_path,
            device,
            threads,
            tensors.len(),
            Chain::FullQueued,
        );
        ratios.push(chain / raw);
        queued_ratios.push(queued / raw);
        full_ratios.push(full / raw);
        full_queued_ratios.push(full_queued / raw);
        println!(
            "{round:>5} {raw:>9.2} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
            chain / raw,
            queued / raw,
            full / raw,
            full_queued / raw
        );
    }
    println!(
        "median ratio to raw inference: chain {:.3}, chain with a queue before rtmopose {:.3}, full chain {:.3}, full chain with a queue before stgcnclassify {:.3} (project target >= 0.95)",
        recognizer::median(ratios),
        recognizer::median(queued_ratios),
        recognizer::median(full_ratios),
        recognizer::median(full_queued_ratios)
    );
}
