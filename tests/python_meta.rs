//! The pose metadata is readable from Python (PyGObject) without linking Rust code, through the
//! GstStructure view that `posemetaexport` adds. Runs Debian's /usr/bin/python3 (python3-gi,
//! installed by scripts/setup) against the built plugin in target/release (scripts/test builds it
//! before running the tests).

use std::path::Path;

use recognizer::{data, rtmo_model};

#[test]
fn python_reads_persons_and_tracks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plugin_dir = root.join("target/release");
    assert!(
        plugin_dir.join("libgstrecognizer.so").is_file(),
        "build the plugin first: cargo build --release -p gst-plugin-recognizer"
    );
    let output = std::process::Command::new("/usr/bin/python3")
        .arg(root.join("tests/python/read_pose_meta.py"))
        .arg(data("media/images/zidane.jpg"))
        .arg(rtmo_model())
        .env("GST_PLUGIN_PATH", &plugin_dir)
        .env(
            "GST_REGISTRY",
            std::env::temp_dir().join(format!("recognizer-py-registry-{}.bin", std::process::id())),
        )
        .output()
        .expect("running /usr/bin/python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let frame: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("one frame")).unwrap();
    println!("{frame}");
    assert_eq!(frame["n_persons"], 2, "zidane.jpg shows two people");
    assert_eq!(frame["inferred"], true, "the pose model ran on the image");
    let persons = frame["persons"].as_array().unwrap();
    assert_eq!(persons.len(), 2);
    for p in persons {
        assert_eq!(p["keypoints"].as_array().unwrap().len(), 17);
        assert_eq!(p["track_state"], "new");
        assert_eq!(
            (&p["track_age"], &p["predicted"]),
            (&0.into(), &false.into())
        );
        assert!(p["track_id"].as_u64().is_some_and(|id| id >= 1));
        assert!(p["bbox"][2].as_f64().unwrap() > p["bbox"][0].as_f64().unwrap());
    }
}
