//! Where the tests, benchmarks and examples find their inputs: the shared data directory
//! (models and media, `RECOGNIZER_DATA`) and the files of this repository.

use std::path::{Path, PathBuf};

/// The data directory with `models/` and `media/`: `RECOGNIZER_DATA`, else `../shared` beside
/// the repository.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("RECOGNIZER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("models").is_dir() && dir.join("media").is_dir(),
        "data directory {} has no models/ and media/: set RECOGNIZER_DATA",
        dir.display()
    );
    dir
}

/// A file under the data directory, which must exist.
pub fn data(relative: &str) -> PathBuf {
    let path = data_dir().join(relative);
    assert!(path.is_file(), "missing data file {}", path.display());
    path
}

/// A file of this repository (models, pipelines, fixtures).
pub(crate) fn project_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The project's fall model (`models/fall_stgcnpp.onnx`).
pub fn fall_model() -> PathBuf {
    project_path("models/fall_stgcnpp.onnx")
}

/// The RTMO-contract pose model used by the tests.
pub fn rtmo_model() -> PathBuf {
    data("models/pose/yolo11n-pose_rtmo-contract.onnx")
}

/// The raw YOLO-pose export of the same weights.
pub fn yolo_model() -> PathBuf {
    data("models/pose/yolo11n-pose.onnx")
}

/// The raw YOLO-pose export with dynamic batch and input size (several frames per call).
pub fn yolo_dynamic_model() -> PathBuf {
    data("models/pose/yolo11n-pose_dynamic.onnx")
}
