//! `poseoverlay` draws the metadata where it says, in packed RGB and I420 alike, and leaves
//! frames without metadata untouched.

use gst::prelude::*;
use recognizer::launch;
use recognizer_core::draw::track_colour;
use recognizer_meta::{Action, Keypoint, Person, PoseMeta, PoseMetaFlags, Track, TrackState};

const W: usize = 320;
const H: usize = 240;

fn person() -> Person {
    let mut kps = [Keypoint {
        x: 0.0,
        y: 0.0,
        score: 0.0,
    }; 17];
    kps[5] = Keypoint {
        x: 100.0,
        y: 100.0,
        score: 0.9,
    }; // left shoulder
    kps[7] = Keypoint {
        x: 100.0,
        y: 150.0,
        score: 0.9,
    }; // left elbow
    let mut p = Person::new([80.0, 60.0, 200.0, 220.0], 0.9, kps);
    p.set_track(Some(Track {
        id: 4,
        state: TrackState::Tracked,
        age: 10,
    }));
    p.set_action(Some(&Action {
        class_id: 1,
        label: "falling".into(),
        score: 0.9,
        window: 48,
        window_end_pts: None,
    }));
    p
}

/// Pushes one black frame (with or without metadata) through `poseoverlay` and returns it.
fn overlay(format: &str, with_meta: bool) -> Vec<u8> {
    let pipeline = launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format={format},width={W},height={H},framerate=30/1 ! \
         poseoverlay line-width=2 text-scale=2 ! appsink name=sink"
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let info = gst_video::VideoInfo::builder(format.parse().unwrap(), W as u32, H as u32)
        .build()
        .unwrap();
    let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
    {
        let b = buffer.get_mut().unwrap();
        let mut map = b.map_writable().unwrap();
        if format == "I420" {
            // Black in limited-range YUV.
            map[..W * H].fill(16);
            map[W * H..].fill(128);
        } else {
            map.fill(0);
        }
        drop(map);
        b.set_pts(gst::ClockTime::ZERO);
        if with_meta {
            PoseMeta::add(b, &[person()], PoseMetaFlags::INFERRED);
        }
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(buffer).unwrap();
    src.end_of_stream().unwrap();
    let sample = sink.pull_sample().unwrap();
    let data = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    pipeline.set_state(gst::State::Null).unwrap();
    data
}

#[test]
fn draws_box_skeleton_and_label_in_bgrx() {
    let frame = overlay("BGRx", true);
    let px = |x: usize, y: usize| {
        let at = (y * W + x) * 4;
        [frame[at + 2], frame[at + 1], frame[at]]
    };
    let colour = track_colour(4);
    assert_eq!(
        px(80, 140),
        colour,
        "left edge of the box in the track's colour"
    );
    assert_eq!(px(140, 220), colour, "bottom edge of the box");
    assert_eq!(px(100, 100), [255, 255, 255], "keypoint disc");
    assert_eq!(px(100, 125), colour, "skeleton edge shoulder-elbow");
    assert_eq!(
        px(160, 180),
        [0, 0, 0],
        "inside the box, away from the skeleton: untouched"
    );
    // The label ("#4 falling 90%") sits on a band of the track's colour above the box.
    let band = (40..60)
        .flat_map(|y| (80..150).map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y) == colour)
        .count();
    assert!(band > 300, "label band above the box: {band} pixels");
    let ink = (40..60)
        .flat_map(|y| (80..150).map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y) == [0, 0, 0])
        .count();
    assert!(ink > 50, "label text: {ink} pixels");
}

#[test]
fn draws_in_i420_too() {
    let frame = overlay("I420", true);
    let luma = |x: usize, y: usize| frame[y * W + x];
    assert!(luma(80, 140) > 60, "box edge visible in luma");
    assert_eq!(luma(100, 100), 235, "white keypoint");
    assert_eq!(luma(160, 180), 16, "inside the box: untouched");
}

#[test]
fn frames_without_metadata_are_untouched() {
    assert!(overlay("RGB", false).iter().all(|v| *v == 0));
}
