//! The pose metadata survives `queue ! tee ! videoconvert ! videoscale`, with coordinates scaled
//! to the new frame size, and is read through the public Rust API.

use recognizer::{collect_frames, data, rtmo_model};

#[test]
fn survives_tee_convert_and_scale() {
    let image = data("media/images/bus.jpg"); // 810x1080
    let head = format!(
        "filesrc location=\"{}\" ! jpegdec ! videoconvert ! video/x-raw,format=BGR ! rtmopose model-file=\"{}\"",
        image.display(),
        rtmo_model().display()
    );
    let original = collect_frames(&format!("{head} ! appsink name=sink")).unwrap();
    let scaled = collect_frames(&format!(
        "{head} ! queue ! tee name=t ! queue ! videoconvert ! video/x-raw,format=I420 ! videoscale ! \
         video/x-raw,width=405,height=270 ! appsink name=sink  t. ! queue ! fakesink"
    ))
    .unwrap();
    let (original, scaled) = (&original[0], &scaled[0]);
    assert_eq!((original.width, original.height), (810, 1080));
    assert_eq!((scaled.width, scaled.height), (405, 270));
    let before = original.persons.as_ref().unwrap();
    let after = scaled
        .persons
        .as_ref()
        .expect("metadata must survive tee, videoconvert and videoscale");
    assert!(before.len() >= 4);
    assert_eq!(before.len(), after.len());
    let (sx, sy) = (0.5f32, 0.25f32);
    for (b, a) in before.iter().zip(after) {
        for i in 0..4 {
            let s = if i % 2 == 0 { sx } else { sy };
            assert!(
                (b.bbox[i] * s - a.bbox[i]).abs() < 1e-3,
                "bbox {:?} scaled to {:?}",
                b.bbox,
                a.bbox
            );
        }
        for (kb, ka) in b.keypoints.iter().zip(&a.keypoints) {
            assert!((kb.x * sx - ka.x).abs() < 1e-3 && (kb.y * sy - ka.y).abs() < 1e-3);
            assert_eq!(kb.score, ka.score);
        }
        assert_eq!(b.score, a.score);
    }
}
