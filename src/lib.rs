//! Support code for Recognizer's end-to-end tests, benchmarks and examples (package
//! `recognizer`): where the inputs are ([`data`]), running pipelines with the statically
//! registered plugin ([`pipeline`]), and measures ([`metrics`]). The items are re-exported here,
//! so that a test writes `recognizer::data(...)`. Element tests on synthetic buffers live with
//! the plugin, in `plugins/tests/`.

pub mod data;
pub mod metrics;
pub mod pipeline;

pub use data::{data, data_dir, fall_model, rtmo_model, yolo_dynamic_model, yolo_model};
pub use metrics::{bench_arg, id_consistency, median, oks, resident_kib};
pub use pipeline::{
    Frame, PipelineError, collect_frames, collect_frames_in, decoded_frames, init, launch,
    pipeline_description, read_jsonl, run_to_eos, run_to_eos_within,
};
