//! What the service costs: frames/s of one camera under recognizer-serve against the same
//! pipeline under gst-launch-1.0, run after run in one process (interleaved rounds, medians).
//!
//! ```text
//! cargo build --release -p gst-plugin-recognizer   # target/release/libgstrecognizer.so
//! cargo bench -p recognizer-serve --bench overhead [-- rounds=3 clip=sports2d_demo_2persons_walking.mp4]
//! ```
//! Both run the whole clip (model load included) with the same elements and settings: decode,
//! `queue ! rtmopose` (threads=2, one session group) `! bytetrack ! queue ! stgcnclassify`
//! (fall model) `! eventsink` (fall rule, frame log). Frames are counted in each run's frame
//! log; the service runs with --exit-when-done.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{path::Path, process::Command, time::Instant};

use support::*;

fn lines(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn main() {
    let rounds: usize = bench_arg("rounds", "3").parse().unwrap();
    let clip = media(&bench_arg("clip", "sports2d_demo_2persons_walking.mp4"));
    let plugin_dir = repo().join("target/release");
    assert!(
        plugin_dir.join("libgstrecognizer.so").is_file(),
        "build the plugin first: cargo build --release -p gst-plugin-recognizer"
    );
    let dir = TempDir::new("overhead");
    let pose = data_dir().join("models/pose/yolo11n-pose_dynamic.onnx");
    let models = repo().canonicalize().unwrap().join("models");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\ntype = \"fall\"\nlabels = [\"fall\"]\nlabel-match = \"contains\"\nmin-frames = 3\n",
    )
    .unwrap();
    let uri = glib_uri(&clip);
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        // gst-launch-1.0.
        let frames_launch = dir.join(format!("launch-{round}.jsonl"));
        let description = format!(
            "uridecodebin uri={uri} caps=video/x-raw(ANY) expose-all-streams=false ! videoconvert ! \
             queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! \
             rtmopose model-file={pose} threads=2 session-group=main ! bytetrack ! queue max-size-buffers=4 ! \
             stgcnclassify model={m}/fall_stgcnpp.onnx labels={m}/fall_stgcnpp.labels ! \
             eventsink stream=cam0 post-messages=true rules-location={rules} label-map={m}/fall_stgcnpp.labels frames-location={out}",
            pose = pose.display(),
            m = models.display(),
            rules = rules.display(),
            out = frames_launch.display(),
        );
        let start = Instant::now();
        let status = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(description.split_whitespace())
            .env("GST_PLUGIN_PATH", &plugin_dir)
            .env("GST_REGISTRY", dir.join("registry.bin"))
            .status()
            .unwrap();
        let t_launch = start.elapsed().as_secs_f64();
        assert!(status.success());

        // recognizer-serve with one camera.
        let frames_serve = dir.join(format!("serve-{round}.jsonl"));
        let config = write_config(
            &dir,
            free_port(),
            &[camera(
                "cam0",
                &uri,
                &format!(
                    "at-end = \"stop\"\n{}[cameras.events]\nframes-location = \"{}\"\n",
                    fall_sections(),
                    frames_serve.display()
                ),
            )],
        );
        let start = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_recognizer-serve"))
            .arg("--config")
            .arg(&config)
            .arg("--exit-when-done")
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
            .status()
            .unwrap();
        let t_serve = start.elapsed().as_secs_f64();
        assert!(
            status.success(),
            "{}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap()
        );

        let (n_launch, n_serve) = (lines(&frames_launch), lines(&frames_serve));
        assert_eq!(n_launch, n_serve, "both runs see every frame");
        let (fps_launch, fps_serve) = (n_launch as f64 / t_launch, n_serve as f64 / t_serve);
        println!(
            "round {round}: gst-launch {fps_launch:.2} fps ({t_launch:.1} s), service {fps_serve:.2} fps ({t_serve:.1} s), ratio {:.3} ({n_serve} frames)",
            fps_serve / fps_launch
        );
        ratios.push(fps_serve / fps_launch);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "service / gst-launch frames/s: median {:.3} (rounds: {:?})",
        ratios[ratios.len() / 2],
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>()
    );
}

/// `file://` URI of a path.
fn glib_uri(path: &str) -> String {
    format!("file://{path}")
}
