//! `stgcnclassify`: windows per track, batching, M = 2 with the NTU-60 contract model, actions
//! carried forward, window reset when a track goes away, clear errors.

use gst::prelude::*;
use recognizer::{collect_frames, data, launch, rtmo_model, run_to_eos};
use recognizer_meta::{Keypoint, Person, PoseMeta, PoseMetaFlags, Track, TrackState};

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
         stgcnclassify name=cls model=\"{}\" labels=\"{}\" min-frames=20 stride=10 ! appsink name=sink",
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

fn person(x: f32, track: u64) -> Person {
    let mut kps = [Keypoint::default(); 17];
    for (v, k) in kps.iter_mut().enumerate() {
        *k = Keypoint {
            x: x + v as f32 * 3.0,
            y: 100.0 + v as f32 * 10.0,
            score: 0.9,
        };
    }
    let mut p = Person::new([x, 100.0, x + 60.0, 280.0], 0.9, kps);
    p.set_track(Some(Track {
        id: track,
        state: TrackState::Tracked,
        age: 0,
    }));
    p
}

/// Synthetic metadata through appsrc: track 2 disappears for two frames and its window starts
/// over, while track 1's window keeps growing up to T.
#[test]
fn window_resets_when_a_track_goes_away() {
    recognizer::init();
    let pipeline = launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=GRAY8,width=320,height=240,framerate=30/1 ! \
         stgcnclassify model=\"{}\" labels=\"{}\" min-frames=4 stride=1 ! appsink name=sink",
        ntu_model(),
        ntu_labels()
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    for i in 0..12u64 {
        let mut buffer = gst::Buffer::with_size(320 * 240).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(i * 33));
            let mut persons = vec![person(10.0 + i as f32, 1)];
            if !(5..7).contains(&i) {
                persons.push(person(200.0 - i as f32, 2));
            }
            PoseMeta::add(b, &persons, PoseMetaFlags::INFERRED);
        }
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    let frames = {
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut frames = Vec::new();
        while let Ok(sample) = sink.pull_sample() {
            frames.push(
                sample
                    .buffer()
                    .unwrap()
                    .meta::<PoseMeta>()
                    .unwrap()
                    .persons()
                    .to_vec(),
            );
        }
        pipeline.set_state(gst::State::Null).unwrap();
        frames
    };
    assert_eq!(frames.len(), 12);
    let window = |f: &Vec<Person>, id: u64| {
        f.iter()
            .find(|p| p.track().unwrap().id == id)
            .and_then(|p| p.action())
            .map(|a| a.window)
    };
    let track1: Vec<Option<u32>> = frames.iter().map(|f| window(f, 1)).collect();
    let track2: Vec<Option<u32>> = frames.iter().map(|f| window(f, 2)).collect();
    assert_eq!(
        track1,
        vec![
            None,
            None,
            None,
            Some(4),
            Some(5),
            Some(6),
            Some(7),
            Some(8),
            Some(9),
            Some(10),
            Some(11),
            Some(12)
        ]
    );
    assert_eq!(
        track2,
        vec![
            None,
            None,
            None,
            Some(4),
            Some(5),
            None,
            None,
            None,
            None,
            None,
            Some(4),
            Some(5)
        ]
    );
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
    expect_start_error("", &["No model set"]);
    expect_start_error(
        &format!("model=\"{}\"", rtmo_model().display()),
        &["not an action model", "[N,M,T,17,3]", "dets"],
    );
    expect_start_error(
        &format!(
            "model=\"{}\" labels=\"{}\"",
            ntu_model(),
            data("models/contract/k400.txt").display()
        ),
        &["400 labels", "outputs 60 classes"],
    );
    expect_start_error(
        &format!("model=\"{}\"", ntu_model()),
        &["carries no labels", "'labels' property"],
    );
    expect_start_error(
        &format!(
            "model=\"{}\" labels=\"{}\" window=48",
            ntu_model(),
            ntu_labels()
        ),
        &["window=48", "T = 100"],
    );
    expect_start_error(
        &format!(
            "model=\"{}\" labels=\"{}\" persons-per-sample=1",
            ntu_model(),
            ntu_labels()
        ),
        &["persons-per-sample=1", "M = 2"],
    );
    expect_start_error(
        &format!("model=\"{}\" labels=/nonexistent/labels.txt", ntu_model()),
        &["/nonexistent/labels.txt"],
    );
    expect_start_error(
        &format!(
            "model=\"{}\" labels=\"{}\" normalization=body",
            ntu_model(),
            ntu_labels()
        ),
        &["invalid normalisation 'body'"],
    );
}
