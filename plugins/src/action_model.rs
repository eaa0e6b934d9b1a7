//! An ST-GCN-family action classifier behind the `[N, M, T, V=17, C=3] -> [N, K]` ONNX contract
//! (pyskl / mmaction2 exports and the project's own models). No GStreamer types.
//!
//! Models may describe themselves with ONNX metadata: `recognizer.normalization` (`frame` or
//! `window`), `recognizer.labels` (labels joined by newlines), `recognizer.output` (`logits` or
//! `probabilities`), `recognizer.window` (T) and `recognizer.min_frames`. Without them a model is
//! taken as a pyskl export: frame normalisation, logits.

use std::path::Path;

use ort::{session::Session, value::TensorRef};
use recognizer_core::action::{Normalization, softmax};
use recognizer_meta::NUM_KEYPOINTS;

use crate::onnx::{self, LoadedSession, SessionRequest, describe, describe_text};

/// The labels of a text with one label per line (a labels file, or the `recognizer.labels`
/// metadata of a model): surrounding whitespace trimmed, blank lines skipped.
pub fn parse_labels(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// A labels file (one label per line, as [`parse_labels`] reads it). The error names the file:
/// unreadable, or holding no labels.
pub fn read_labels_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("could not read labels file '{}': {e}", path.display()))?;
    let labels = parse_labels(&text);
    if labels.is_empty() {
        return Err(format!("labels file '{}' holds no labels", path.display()));
    }
    Ok(labels)
}

/// What the model's outputs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Logits,
    Probabilities,
}

/// A loaded classifier and what its contract and metadata say about it.
pub struct ActionModel {
    session: Session,
    input: String,
    output: String,
    /// T, if fixed by the model's input shape or metadata.
    pub frames: Option<usize>,
    /// M, if fixed by the model's input shape.
    pub persons: Option<usize>,
    /// K, if fixed by the model's output shape.
    pub classes: Option<usize>,
    /// Whether the batch dimension is dynamic (else fixed at 1: one call per sample).
    pub dynamic_batch: bool,
    pub normalization: Option<Normalization>,
    pub output_kind: Option<OutputKind>,
    pub labels: Option<Vec<String>>,
    pub min_frames: Option<usize>,
    pub execution_provider: &'static str,
    pub fallback_reason: Option<String>,
}

const CONTRACT_TEXT: &str = "expected an ST-GCN-family classifier: input [N,M,T,17,3] float32 (x, y, score) -> output [N,K] float32";

impl ActionModel {
    pub fn load(request: &SessionRequest<'_>) -> Result<Self, String> {
        let LoadedSession {
            session,
            execution_provider,
            fallback_reason,
        } = onnx::load_session(request)?;
        let (inputs, outputs) = describe(&session);
        let name = request.model.display();
        let mismatch = |why: &str| {
            format!(
                "{name} is not an action model this element can run: {why}: {CONTRACT_TEXT}; the model has {}",
                describe_text(&inputs, &outputs)
            )
        };
        let [input] = &inputs[..] else {
            return Err(mismatch(&format!("{} inputs, not 1", inputs.len())));
        };
        let s = &input.shape;
        let fixed = |d: i64| (d > 0).then_some(d as usize);
        if input.element != "float32"
            || s.len() != 5
            || fixed(s[3]).is_some_and(|v| v != NUM_KEYPOINTS)
            || fixed(s[4]).is_some_and(|c| c != 3)
        {
            return Err(mismatch(&format!(
                "input '{}' is not [N,M,T,17,3] float32",
                input.name
            )));
        }
        let Some(output) = outputs.iter().find(|o| o.shape.len() == 2) else {
            return Err(mismatch("no output of shape [N,K]"));
        };
        let persons = fixed(s[1]);
        if persons.is_some_and(|m| m > 2) {
            return Err(mismatch(&format!(
                "M = {} persons per sample; 1 or 2 are supported",
                s[1]
            )));
        }
        let metadata = session
            .metadata()
            .map_err(|e| format!("{name}: cannot read metadata: {e}"))?;
        let custom = |key: &str| metadata.custom(key).filter(|v| !v.trim().is_empty());
        let normalization = custom("recognizer.normalization")
            .map(|v| {
                v.trim()
                    .parse::<Normalization>()
                    .map_err(|e| format!("{name}: metadata recognizer.normalization: {e}"))
            })
            .transpose()?;
        let output_kind = match custom("recognizer.output").as_deref().map(str::trim) {
            None => None,
            Some("logits") => Some(OutputKind::Logits),
            Some("probabilities") => Some(OutputKind::Probabilities),
            Some(other) => {
                return Err(format!(
                    "{name}: metadata recognizer.output '{other}': expected logits or probabilities"
                ));
            }
        };
        let labels = custom("recognizer.labels").map(|v| parse_labels(&v));
        let number = |key: &str| -> Result<Option<usize>, String> {
            custom(key)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|e| format!("{name}: metadata {key} '{v}': {e}"))
                })
                .transpose()
        };
        let frames = fixed(s[2]).or(number("recognizer.window")?);
        let min_frames = number("recognizer.min_frames")?;
        drop(metadata);
        Ok(Self {
            input: input.name.clone(),
            output: output.name.clone(),
            frames,
            persons,
            classes: fixed(output.shape[1]),
            dynamic_batch: s[0] < 0,
            normalization,
            output_kind,
            labels,
            min_frames,
            execution_provider,
            fallback_reason,
            session,
        })
    }

    /// CPU, default threads: for tools and tests.
    pub fn load_cpu(model: &Path) -> Result<Self, String> {
        Self::load(&SessionRequest {
            model,
            device: onnx::Device::Cpu,
            fallback_to_cpu: false,
            threads: 0,
        })
    }

    /// Runs `samples` (`n` samples of `[M, T, V = 17, 3]` each, back to back) and returns one row of
    /// class probabilities per sample. One inference call when the batch is dynamic.
    pub fn classify(
        &mut self,
        samples: &[f32],
        n: usize,
        persons: usize,
        frames: usize,
        output: OutputKind,
    ) -> Result<Vec<Vec<f32>>, String> {
        let per = persons * frames * NUM_KEYPOINTS * 3;
        assert_eq!(samples.len(), n * per);
        let mut rows = Vec::with_capacity(n);
        let calls: Vec<(usize, usize)> = if self.dynamic_batch {
            vec![(0, n)]
        } else {
            (0..n).map(|i| (i, 1)).collect()
        };
        for (first, count) in calls {
            let data = &samples[first * per..(first + count) * per];
            let tensor =
                TensorRef::from_array_view(([count, persons, frames, NUM_KEYPOINTS, 3], data))
                    .map_err(|e| e.to_string())?;
            let outputs = self
                .session
                .run(ort::inputs![self.input.as_str() => tensor])
                .map_err(|e| format!("inference failed: {e}"))?;
            let (shape, values) = outputs[self.output.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("output '{}': {e}", self.output))?;
            let k = shape.get(1).copied().unwrap_or(0).max(0) as usize;
            if k == 0 || values.len() != count * k {
                return Err(format!(
                    "output '{}' has shape {shape:?}, expected [{count}, K]",
                    self.output
                ));
            }
            for row in values.chunks(k) {
                let mut row = row.to_vec();
                if output == OutputKind::Logits {
                    softmax(&mut row);
                }
                rows.push(row);
            }
        }
        Ok(rows)
    }
}
