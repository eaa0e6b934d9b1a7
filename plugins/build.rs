fn main() {
    gst_plugin_version_helper::info();
    // Where `scripts/setup` puts the ONNX Runtime library, so that the plugin finds it without
    // the user exporting anything (ORT_DYLIB_PATH still wins when set).
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let ort_dir = manifest.parent().unwrap().join(".ort").join("lib");
    println!(
        "cargo:rustc-env=RECOGNIZER_SETUP_ORT_DIR={}",
        ort_dir.display()
    );
}
