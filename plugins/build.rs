fn main() {
    gst_plugin_version_helper::info();
    // The plugin's origin (gst-inspect-1.0's "Origin URL"): the packager's URL when they give
    // one (meson option package_origin), else what GStreamer's own builds say without one.
    println!("cargo:rerun-if-env-changed=RECOGNIZER_PACKAGE_ORIGIN");
    let origin = std::env::var("RECOGNIZER_PACKAGE_ORIGIN")
        .ok()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| "Unknown package origin".into());
    println!("cargo:rustc-env=RECOGNIZER_PACKAGE_ORIGIN={origin}");
    // Where `scripts/setup` puts the ONNX Runtime library in this source tree: the development
    // fallback of the plugin's search order (after ORT_DYLIB_PATH and the folder `meson install`
    // puts beside the plugin; README "Install"), so that GST_PLUGIN_PATH=target/release works
    // without exporting anything.
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let ort_dir = manifest.parent().unwrap().join(".ort").join("lib");
    println!(
        "cargo:rustc-env=RECOGNIZER_SETUP_ORT_DIR={}",
        ort_dir.display()
    );
}
