//! `poseoverlay` on synthetic frames: every advertised format at odd and even sizes, persons on
//! every edge of the frame, partly and wholly outside it, with broken coordinates; pixel checks of
//! boxes, keypoints and labels; frames without persons untouched; refused caps named.

mod support;

use gst::prelude::*;
use gst_video::{VideoFormat, VideoFrameExt};
use recognizer_core::draw::{rgb_to_yuv, track_colour};
use recognizer_meta::{Action, Keypoint, Person, PoseMetaFlags, Track, TrackState};
use support::{frame, harness, messages, person, persons};

const SIZES: [(usize, usize); 3] = [(33, 17), (641, 479), (320, 240)];

/// The formats of poseoverlay's sink pad template.
fn advertised_formats() -> Vec<VideoFormat> {
    support::init();
    let factory = gst::ElementFactory::find("poseoverlay").unwrap();
    let template = factory
        .static_pad_templates()
        .into_iter()
        .find(|t| t.direction() == gst::PadDirection::Sink)
        .unwrap();
    let caps = template.caps();
    let formats = caps
        .structure(0)
        .unwrap()
        .get::<gst::List>("format")
        .unwrap();
    formats
        .iter()
        .map(|v| VideoFormat::from_string(v.get::<&str>().unwrap()))
        .collect()
}

fn info(format: VideoFormat, w: usize, h: usize) -> gst_video::VideoInfo {
    support::init();
    gst_video::VideoInfo::builder(format, w as u32, h as u32)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap()
}

/// A black frame of `info` carrying `persons`.
fn black_frame(info: &gst_video::VideoInfo, persons: &[Person]) -> gst::Buffer {
    let mut buffer = frame(info.size(), 0, Some((persons, PoseMetaFlags::INFERRED)));
    let mut video =
        gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.get_mut().unwrap(), info)
            .unwrap();
    let yuv = info.format_info().is_yuv();
    for plane in 0..info.n_planes() {
        // Black: 0 in RGB; Y 16 and U, V 128 in limited-range YUV.
        let value = match (yuv, plane) {
            (false, _) => 0,
            (true, 0) => 16,
            (true, _) => 128,
        };
        video.plane_data_mut(plane).unwrap().fill(value);
    }
    drop(video);
    buffer
}

/// The three components (R, G, B or Y, U, V) of pixel (x, y).
fn pixel(info: &gst_video::VideoInfo, buffer: &gst::BufferRef, x: usize, y: usize) -> [u8; 3] {
    let video = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info).unwrap();
    let finfo = info.format_info();
    std::array::from_fn(|c| {
        let plane = finfo.plane()[c];
        let data = video.plane_data(plane).unwrap();
        let stride = video.plane_stride()[plane as usize] as usize;
        let (cx, cy) = (x >> finfo.w_sub()[c], y >> finfo.h_sub()[c]);
        data[cy * stride + cx * finfo.pixel_stride()[c] as usize + finfo.poffset()[c] as usize]
    })
}

/// `rgb` as the components `pixel` reads in this format.
fn expected(info: &gst_video::VideoInfo, rgb: [u8; 3]) -> [u8; 3] {
    if info.format_info().is_yuv() {
        rgb_to_yuv(rgb)
    } else {
        rgb
    }
}

fn is_white(info: &gst_video::VideoInfo, px: [u8; 3]) -> bool {
    if info.format_info().is_yuv() {
        // Chroma is shared by 2x2 pixels; luma alone says white.
        px[0] == 235
    } else {
        px == [255, 255, 255]
    }
}

/// A person whose keypoints are all below the drawing threshold: box and label only.
fn box_only(bbox: [f32; 4], track: u64) -> Person {
    let mut p = person(bbox, 0.9, Some(track));
    for k in &mut p.keypoints {
        k.score = 0.0;
    }
    p
}

/// Pushes `persons` on a black frame through `poseoverlay` with `properties` and returns the
/// output buffer, after checking that it kept its size and its metadata.
fn overlay(
    info: &gst_video::VideoInfo,
    persons: &[Person],
    properties: &[(&str, &str)],
) -> gst::Buffer {
    let caps = info.to_caps().unwrap().to_string();
    let (mut h, bus) = harness("poseoverlay", properties, &caps);
    let out = h.push_and_pull(black_frame(info, persons)).unwrap();
    assert_eq!(out.size(), info.size());
    // Debug text: persons with NaN coordinates are not equal to themselves.
    assert_eq!(
        format!("{:?}", support::persons(&out)),
        format!("{:?}", Some(persons)),
        "the metadata passes unchanged"
    );
    assert!(messages(&bus, gst::MessageType::Error).is_empty());
    out
}

/// Each person near one edge in a frame of its own, in every format and size: the box edge on
/// the frame's border is drawn there in the track's colour (chroma included, which odd sizes
/// and the semi-planar NV12 layout make easy to get wrong), and keypoints in the corners are
/// drawn white.
#[test]
fn every_format_draws_at_every_edge_of_odd_sizes() {
    let formats = advertised_formats();
    assert!(formats.contains(&VideoFormat::Nv12) && formats.contains(&VideoFormat::Rgb));
    for format in formats {
        for (w, h) in SIZES {
            let info = info(format, w, h);
            let (wf, hf) = (w as f32, h as f32);
            let (right, bottom) = (wf - 1.0, hf - 1.0);
            let edges = [
                (
                    "left",
                    [0.0, hf / 4.0, wf / 2.0, 3.0 * hf / 4.0],
                    (0, h / 2),
                ),
                (
                    "right",
                    [wf / 2.0, hf / 4.0, right, 3.0 * hf / 4.0],
                    (w - 1, h / 2),
                ),
                ("top", [wf / 4.0, 0.0, 3.0 * wf / 4.0, hf / 2.0], (w / 2, 0)),
                (
                    "bottom",
                    [wf / 4.0, hf / 2.0, 3.0 * wf / 4.0, bottom],
                    (w / 2, h - 1),
                ),
            ];
            for (track, (edge, bbox, (x, y))) in (1..).zip(edges) {
                let out = overlay(&info, &[box_only(bbox, track)], &[]);
                assert_eq!(
                    pixel(&info, &out, x, y),
                    expected(&info, track_colour(track)),
                    "{format:?} {w}x{h}: {edge} edge at ({x}, {y})"
                );
            }
            // Keypoints in two opposite corners.
            let mut corners = box_only([wf / 4.0, hf / 4.0, 3.0 * wf / 4.0, 3.0 * hf / 4.0], 5);
            corners.keypoints[0] = Keypoint {
                x: 0.0,
                y: 0.0,
                score: 0.9,
            };
            corners.keypoints[1] = Keypoint {
                x: right,
                y: bottom,
                score: 0.9,
            };
            let out = overlay(&info, &[corners], &[]);
            for (x, y) in [(0, 0), (w - 1, h - 1)] {
                assert!(
                    is_white(&info, pixel(&info, &out, x, y)),
                    "{format:?} {w}x{h}: keypoint at ({x}, {y})"
                );
            }
        }
    }
}

/// Persons outside the frame, straddling all four borders at once, or with coordinates that are
/// not numbers draw nothing inside it and break nothing, alone or together with the edge persons.
#[test]
fn persons_outside_the_frame_or_with_broken_coordinates() {
    for format in advertised_formats() {
        for (w, h) in SIZES {
            let info = info(format, w, h);
            let (wf, hf) = (w as f32, h as f32);
            let mut around = person([-60.0, -60.0, wf + 60.0, hf + 60.0], 0.9, Some(7));
            // Keypoints outside, all on one side: the skeleton's edges stay outside too.
            for k in &mut around.keypoints {
                k.x = -30.0;
            }
            let far = person([1e9, 1e9, 2e9, 2e9], 0.9, Some(8));
            let huge = person([f32::MAX, -f32::MAX, f32::MAX, f32::MAX], 0.9, Some(9));
            let mut broken = person([f32::NAN, 1.0, f32::INFINITY, 5.0], 0.9, Some(10));
            broken.keypoints[3].x = f32::NAN;
            broken.keypoints[4].y = f32::NEG_INFINITY;
            let outside = [around, far, huge, broken];
            let blank = black_frame(&info, &[]);
            let out = overlay(&info, &outside, &[]);
            let (out, blank) = (out.map_readable().unwrap(), blank.map_readable().unwrap());
            let changed = out.iter().zip(blank.iter()).filter(|(a, b)| a != b).count();
            assert_eq!(
                changed, 0,
                "{format:?} {w}x{h}: persons outside the frame drew inside it"
            );
            // All of them at once, with the edge persons and labels of every length.
            let mut all = outside.to_vec();
            for (track, bbox) in [
                [0.0, 0.0, wf / 3.0, hf / 3.0],
                [wf / 2.0, 0.0, wf - 1.0, hf - 1.0],
                [0.0, hf / 2.0, wf - 1.0, hf - 1.0],
            ]
            .into_iter()
            .enumerate()
            {
                let mut p = person(bbox, 0.9, Some(track as u64 + 1));
                p.set_action(Some(&Action {
                    class_id: 0,
                    label: "a rather long action label".into(),
                    score: 0.5,
                    window: 48,
                    window_end_pts: None,
                }));
                all.push(p);
            }
            overlay(&info, &all, &[("line-width", "64"), ("text-scale", "32")]);
            overlay(&info, &all, &[]);
        }
    }
}

fn labelled_person() -> Person {
    let mut kps = [Keypoint::default(); 17];
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

/// [`labelled_person`] drawn on a 320x240 frame of `format` with 2 px lines and text pixels.
fn labelled_overlay(format: VideoFormat) -> (gst_video::VideoInfo, gst::Buffer) {
    let info = info(format, 320, 240);
    let properties = [("line-width", "2"), ("text-scale", "2")];
    let out = overlay(&info, &[labelled_person()], &properties);
    (info, out)
}

#[test]
fn draws_box_skeleton_and_label() {
    let (info, out) = labelled_overlay(VideoFormat::Bgrx);
    let px = |x, y| pixel(&info, &out, x, y);
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
    let count = |rgb: [u8; 3]| {
        (40..60)
            .flat_map(|y| (80..150).map(move |x| (x, y)))
            .filter(|&(x, y)| px(x, y) == rgb)
            .count()
    };
    assert!(
        count(colour) > 300,
        "label band above the box: {} pixels",
        count(colour)
    );
    assert!(
        count([0, 0, 0]) > 50,
        "label text: {} pixels",
        count([0, 0, 0])
    );
}

#[test]
fn draws_in_i420_too() {
    let (info, out) = labelled_overlay(VideoFormat::I420);
    let luma = |x, y| pixel(&info, &out, x, y)[0];
    assert!(luma(80, 140) > 60, "box edge visible in luma");
    assert_eq!(luma(100, 100), 235, "white keypoint");
    assert_eq!(luma(160, 180), 16, "inside the box: untouched");
}

/// Frames without metadata, with no persons, or with everything switched off are untouched.
#[test]
fn frames_without_persons_are_untouched() {
    let info = info(VideoFormat::Rgb, 64, 48);
    let caps = info.to_caps().unwrap().to_string();
    let (mut h, _bus) = harness("poseoverlay", &[], &caps);
    let bare = frame(info.size(), 0, None);
    let out = h.push_and_pull(bare).unwrap();
    assert!(persons(&out).is_none());
    assert!(out.map_readable().unwrap().iter().all(|v| *v == 0));
    let out = overlay(&info, &[], &[]);
    assert!(out.map_readable().unwrap().iter().all(|v| *v == 0));
    let off = [
        ("draw-boxes", "false"),
        ("draw-skeleton", "false"),
        ("draw-labels", "false"),
    ];
    let out = overlay(&info, &[person([5.0, 5.0, 40.0, 40.0], 0.9, Some(1))], &off);
    assert!(out.map_readable().unwrap().iter().all(|v| *v == 0));
}

/// A format outside the template (GRAY8 here) is refused with an element error that names the
/// element, the format and the formats it takes, instead of a bare `not-negotiated` upstream.
#[test]
fn refused_format_is_named() {
    support::init();
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time caps=video/x-raw,format=GRAY8,width=64,height=48,framerate=25/1 ! \
         poseoverlay name=overlay ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(frame(64 * 48, 0, None)).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(60), &[gst::MessageType::Error])
        .expect("an error within the hang guard");
    pipeline.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
    let text = err.error().to_string();
    assert_eq!(
        msg.src().map(|s| s.name().to_string()).as_deref(),
        Some("overlay")
    );
    for needle in ["poseoverlay", "GRAY8", "NV12", "RGB", "videoconvert"] {
        assert!(text.contains(needle), "'{text}' does not name {needle}");
    }
}
