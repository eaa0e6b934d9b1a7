//! `rtmopose` accuracy: against COCO ground truth (OKS) and against the Python reference
//! pipeline (onnxruntime + OpenCV letterbox, `tools/pose_reference.py`).

use std::path::Path;

use recognizer::{collect_frames, data, data_dir, oks, rtmo_model, yolo_model};
use recognizer_meta::Person;
use serde_json::Value;

fn image_pipeline(image: &Path, model: &Path, format: &str) -> String {
    let decoder = if image.extension().is_some_and(|e| e == "png") {
        "pngdec"
    } else {
        "jpegdec"
    };
    format!(
        "filesrc location=\"{}\" ! {decoder} ! videoconvert ! video/x-raw,format={format} ! rtmopose model-file=\"{}\" ! appsink name=sink",
        image.display(),
        model.display()
    )
}

fn detect(image: &Path, model: &Path, format: &str) -> Vec<Person> {
    let frames = collect_frames(&image_pipeline(image, model, format))
        .unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    assert_eq!(frames.len(), 1);
    frames[0]
        .persons
        .clone()
        .expect("rtmopose attaches metadata to every frame it ran on")
}

#[test]
fn coco_ground_truth_oks() {
    let gt: Value = serde_json::from_slice(
        &std::fs::read(data("media/images/coco_gt/test_coco.json")).unwrap(),
    )
    .unwrap();
    let mut oks_values = Vec::new();
    for image in gt["images"].as_array().unwrap() {
        let id = image["id"].as_u64().unwrap();
        let file = data(&format!(
            "media/images/coco_gt/{}",
            image["file_name"].as_str().unwrap()
        ));
        let persons = detect(&file, &rtmo_model(), "BGR");
        let annotations: Vec<&Value> = gt["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["image_id"].as_u64() == Some(id) && a["num_keypoints"].as_u64().unwrap_or(0) > 0
            })
            .collect();
        // Greedy one-to-one matching by OKS, best pairs first, as in COCO's evaluation.
        let mut pairs = Vec::new();
        for (g, ann) in annotations.iter().enumerate() {
            let kps: Vec<f32> = ann["keypoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let area = ann["area"].as_f64().unwrap() as f32;
            for (p, person) in persons.iter().enumerate() {
                pairs.push((oks(&kps, area, person), g, p));
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut used_g, mut used_p) = (vec![false; annotations.len()], vec![false; persons.len()]);
        let mut matched = vec![0.0f32; annotations.len()];
        for (value, g, p) in pairs {
            if !used_g[g] && !used_p[p] {
                used_g[g] = true;
                used_p[p] = true;
                matched[g] = value;
            }
        }
        println!(
            "image {id}: {} annotated people, {} detected, OKS {:?}",
            annotations.len(),
            persons.len(),
            matched
        );
        oks_values.extend(matched);
    }
    let mean = oks_values.iter().sum::<f32>() / oks_values.len() as f32;
    let found = oks_values.iter().filter(|v| **v >= 0.5).count();
    println!(
        "people with keypoints: {}, matched at OKS >= 0.5: {found}, mean OKS {mean:.3}",
        oks_values.len()
    );
    assert_eq!(
        oks_values.len(),
        12,
        "the 4 COCO images hold 12 people with keypoints"
    );
    assert_eq!(
        found, 12,
        "every annotated person must be found (OKS >= 0.5): {oks_values:?}"
    );
    assert!(mean >= 0.80, "mean OKS {mean:.3} below 0.80");
}

/// Mean keypoint distance (px) between the element and the reference fixture, per image.
fn agreement(fixture: &str, model: &Path, format: &str) -> f32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let reference: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let (mut total, mut count, mut worst_box) = (0.0f64, 0usize, 0.0f32);
    for image in reference["images"].as_array().unwrap() {
        let file = data_dir().join(image["file"].as_str().unwrap());
        let persons = detect(&file, model, format);
        let expected = image["persons"].as_array().unwrap();
        assert_eq!(
            persons.len(),
            expected.len(),
            "{}: person count differs from the reference",
            file.display()
        );
        for exp in expected {
            let bbox: Vec<f32> = exp["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let bbox = [bbox[0], bbox[1], bbox[2], bbox[3]];
            let best = persons
                .iter()
                .max_by(|a, b| {
                    recognizer_core::pose::iou(&a.bbox, &bbox)
                        .total_cmp(&recognizer_core::pose::iou(&b.bbox, &bbox))
                })
                .unwrap();
            assert!(
                recognizer_core::pose::iou(&best.bbox, &bbox) > 0.9,
                "{}: no match for {bbox:?}",
                file.display()
            );
            for (k, v) in exp["keypoints"].as_array().unwrap().iter().enumerate() {
                let (x, y) = (v[0].as_f64().unwrap() as f32, v[1].as_f64().unwrap() as f32);
                total += ((best.keypoints[k].x - x).hypot(best.keypoints[k].y - y)) as f64;
                count += 1;
            }
            for (a, b) in best.bbox.iter().zip(bbox) {
                worst_box = worst_box.max((a - b).abs());
            }
        }
    }
    let mean = (total / count as f64) as f32;
    println!(
        "{fixture} ({format}): {count} keypoints, mean distance {mean:.3} px, worst box edge {worst_box:.2} px"
    );
    mean
}

#[test]
fn agrees_with_python_reference_rtmo() {
    let mean = agreement("pose_reference_rtmo.json", &rtmo_model(), "BGR");
    assert!(
        mean <= 1.5,
        "mean keypoint distance {mean:.3} px to the reference exceeds 1.5 px"
    );
}

#[test]
fn agrees_with_python_reference_yolo_pose() {
    let mean = agreement("pose_reference_yolo.json", &yolo_model(), "BGR");
    assert!(
        mean <= 1.5,
        "mean keypoint distance {mean:.3} px to the reference exceeds 1.5 px"
    );
}

/// The same picture in every supported input format gives the same people (within the
/// rounding of the colour conversions).
#[test]
fn input_formats_agree() {
    let image = data("media/images/bus.jpg");
    let reference = detect(&image, &rtmo_model(), "BGR");
    assert!(
        reference.len() >= 4,
        "bus.jpg shows at least 4 people, found {}",
        reference.len()
    );
    for format in [
        "RGB", "RGBx", "BGRx", "xRGB", "RGBA", "ARGB", "I420", "YV12", "NV12",
    ] {
        let persons = detect(&image, &rtmo_model(), format);
        assert_eq!(persons.len(), reference.len(), "{format}: person count");
        let (mut worst, mut sum, mut count) = (0.0f32, 0.0f32, 0);
        for p in &persons {
            let r = reference
                .iter()
                .max_by(|a, b| {
                    recognizer_core::pose::iou(&a.bbox, &p.bbox)
                        .total_cmp(&recognizer_core::pose::iou(&b.bbox, &p.bbox))
                })
                .unwrap();
            for (a, b) in p.keypoints.iter().zip(&r.keypoints) {
                if b.score > 0.5 {
                    let d = (a.x - b.x).hypot(a.y - b.y);
                    worst = worst.max(d);
                    sum += d;
                    count += 1;
                }
            }
        }
        let mean = sum / count as f32;
        println!(
            "{format}: confident keypoints differ from BGR input by {mean:.2} px on average, {worst:.2} px at most"
        );
        // YUV input is converted by rtmopose rather than videoconvert: chroma interpolation
        // differs slightly at colour edges, which moves a few keypoints by a pixel or more.
        assert!(
            mean < 1.0,
            "{format}: keypoints differ from BGR input by {mean:.2} px on average"
        );
        assert!(
            worst < 12.0,
            "{format}: a keypoint differs from BGR input by {worst:.2} px"
        );
    }
}
