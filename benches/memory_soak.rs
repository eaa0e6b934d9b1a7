//! Memory in steady state: the whole chain on 10,000 frames (the hugging clip decoded once and
//! pushed again and again through appsrc), resident memory sampled along the way. project target:
//! no growth beyond 10 MB over 10,000 frames.
//!
//! `cargo bench --bench memory_soak -- [frames=10000] [interval=10] [threads=2] [streams=1]`
//! (`interval` is rtmopose's: the model runs on every Nth frame, the tracker predicts between;
//! every other element works on every frame. With `streams` > 1, that many chains run side by
//! side, their `rtmopose` elements sharing one session (`session-group`), and every stream gets
//! every frame.)

use std::time::Instant;

use gst::prelude::*;

fn main() {
    recognizer::init();
    let arg = |key: &str, default: u64| {
        recognizer::bench_arg(key).map_or(default, |v| v.parse().expect("key=N"))
    };
    let (frames, interval, threads, streams) = (
        arg("frames", 10_000),
        arg("interval", 10),
        arg("threads", 2),
        arg("streams", 1),
    );
    let clip = recognizer::data("media/video/mmaction2_demo_skeleton_ntu_hugging.mp4");

    // Decode the clip once.
    let decode = recognizer::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink sync=false",
        clip.display()
    ));
    let sink = decode
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    decode.set_state(gst::State::Playing).unwrap();
    let mut decoded = Vec::new();
    let mut caps = None;
    while let Ok(sample) = sink.pull_sample() {
        caps = sample.caps().map(|c| c.to_owned());
        decoded.push(sample.buffer_owned().unwrap());
    }
    decode.set_state(gst::State::Null).unwrap();
    let caps = caps.unwrap();

    let group = if streams > 1 {
        "session-group=soak"
    } else {
        ""
    };
    let chains: Vec<String> = (0..streams)
        .map(|i| {
            format!(
                "appsrc name=src{i} format=time ! rtmopose model-file=\"{}\" interval={interval} threads={threads} score-threshold=0.1 {group} ! \
                 bytetrack ! stgcnclassify model-file=\"{}\" labels-file=\"{}\" min-frames=20 stride=8 ! poseoverlay ! posemetaexport ! \
                 eventsink frames-location=/dev/null",
                recognizer::rtmo_model().display(),
                recognizer::data("models/contract/stgcnpp_ntu60-shape_random-weights.onnx").display(),
                recognizer::data("models/contract/label_map_ntu60.txt").display(),
            )
        })
        .collect();
    let pipeline = recognizer::launch(&chains.join(" "));
    let sources: Vec<gst_app::AppSrc> = (0..streams)
        .map(|i| {
            let src = pipeline
                .by_name(&format!("src{i}"))
                .unwrap()
                .downcast::<gst_app::AppSrc>()
                .unwrap();
            src.set_caps(Some(&caps));
            src.set_max_bytes(8 * decoded[0].size() as u64);
            src.set_block(true);
            src
        })
        .collect();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let start = Instant::now();
    let mut samples = Vec::new();
    println!(
        "{frames} frames per stream, {streams} stream(s), rtmopose interval {interval}, {threads} threads"
    );
    println!("{:>8} {:>10} {:>8}", "frame", "RSS MiB", "s");
    for i in 0..frames {
        for src in &sources {
            let mut buffer = decoded[(i as usize) % decoded.len()].copy();
            buffer
                .get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_nseconds(i * 33_333_333));
            if src.push_buffer(buffer).is_err() {
                panic!(
                    "pipeline stopped at frame {i}: {:?}",
                    bus.pop_filtered(&[gst::MessageType::Error])
                );
            }
        }
        if (i + 1) % 1000 == 0 {
            let rss = recognizer::resident_kib();
            samples.push(rss);
            println!(
                "{:>8} {:>10.1} {:>8.0}",
                i + 1,
                rss as f64 / 1024.0,
                start.elapsed().as_secs_f64()
            );
        }
    }
    for src in &sources {
        src.end_of_stream().unwrap();
    }
    recognizer::run_to_eos(&pipeline).unwrap();
    if samples.len() >= 2 {
        // The first thousand frames include warm-up (arenas, windows filling): growth is counted after.
        let growth = (*samples.last().unwrap() as f64 - samples[0] as f64) / 1024.0;
        println!(
            "RSS growth from frame 1000 to {frames}: {growth:.1} MiB (project target <= 10 MB)"
        );
    }
}
