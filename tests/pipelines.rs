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
    let records: Vec<FrameRecord> = recognizer::read_jsonl(&out.join("frames.jsonl"));
    assert_eq!(records.len(), 72);
    assert!(
        records
            .iter()
            .all(|r| r.stream == "hall" && r.width == 1920 && r.height == 1080)
    );
    assert!(records.iter().filter(|r| r.persons.len() >= 2).count() >= 60);
    std::fs::remove_dir_all(&out).unwrap();
}

/// A loopback RTSP server (PyGObject, gst-rtsp-server) serving the hugging clip, killed on drop.
struct RtspServer {
    child: std::process::Child,
    url: String,
}

impl RtspServer {
    fn start(file: &std::path::Path) -> Self {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("/usr/bin/python3")
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/python/rtsp_server.py"),
            )
            .arg(port.to_string())
            .arg(file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting the RTSP server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("RTSP server did not start: '{line}'"))
            .to_string();
        Self { child, url }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pipelines/rtsp-to-events.pipeline` against a loopback RTSP camera: people tracked and
/// classified in the frame log, and an annotated recording that decodes again.
#[test]
fn rtsp_camera_to_events_and_recording() {
    let server = RtspServer::start(&data("media/video/mmaction2_demo_skeleton_ntu_hugging.mp4"));
    let out = std::env::temp_dir().join(format!("recognizer-rtsp-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let model = rtmo_model();
    let action = data("models/contract/stgcnpp_ntu60-shape_random-weights.onnx");
    let labels = data("models/contract/label_map_ntu60.txt");
    let description = pipeline_description(
        "rtsp-to-events.pipeline",
        &[
            ("RTSP_URL", &server.url),
            ("POSE_MODEL", model.to_str().unwrap()),
            ("ACTION_MODEL", action.to_str().unwrap()),
            ("ACTION_LABELS", labels.to_str().unwrap()),
            ("OUTDIR", out.to_str().unwrap()),
            ("STREAM", "door"),
        ],
    );
    // A hang guard for the live source (the clip lasts 2.6 s).
    recognizer::run_to_eos_within(&launch(&description), gst::ClockTime::from_seconds(300))
        .unwrap();
    let records: Vec<FrameRecord> = recognizer::read_jsonl(&out.join("frames.jsonl"));
    println!("rtsp: {} frames logged", records.len());
    // A live source (2.6 s here): frames the chain cannot keep up with are dropped by the leaky
    // queue before rtmopose, so how many get through depends on the machine's speed.
    assert!(records.len() >= 3, "only {} frames arrived", records.len());
    assert!(
        records
            .iter()
            .all(|r| r.stream == "door" && r.width == 1920)
    );
    assert!(
        records
            .iter()
            .any(|r| r.persons.iter().any(|p| p.track_id.is_some())),
        "people are tracked"
    );
    assert!(
        out.join("events.jsonl").exists(),
        "the events file is created at start"
    );
    // The recording is a valid MP4 with as many frames as were logged.
    let decoded = recognizer::collect_frames(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! appsink name=sink",
        out.join("annotated.mp4").display()
    ))
    .unwrap();
    assert_eq!(decoded.len(), records.len());
    assert_eq!((decoded[0].width, decoded[0].height), (1920, 1080));
    std::fs::remove_dir_all(&out).unwrap();
}
