//! A pose model behind one of the supported ONNX output contracts (RTMO or raw YOLO-pose),
//! from frame to person detections. No GStreamer types: the `rtmopose` element and the
//! benchmarks drive it alike.

use std::{fmt, path::Path, str::FromStr};

use ort::{session::Session, value::TensorRef};
use recognizer_core::pose::{
    ChannelOrder, DecodeParams, Image, Letterbox, PoseDetection, decode::YOLO_POSE_CHANNELS,
    decode_rtmo, decode_yolo_pose, fill_input_tensor,
};

use crate::onnx::{self, LoadedSession, SessionRequest, TensorInfo, describe, describe_text};

/// Which output contract a model follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// Decide from the model's outputs.
    Auto,
    /// mmpose/mmdeploy RTMO end-to-end export: BGR 0-255 in, `dets` + `keypoints` out.
    Rtmo,
    /// Raw Ultralytics YOLO-pose export: RGB 0-1 in, `output0 [1,56,A]` out, NMS here.
    YoloPose,
}

impl FromStr for ModelFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "rtmo" => Ok(Self::Rtmo),
            "yolo-pose" => Ok(Self::YoloPose),
            _ => Err(format!(
                "invalid model format '{s}': expected 'auto', 'rtmo' or 'yolo-pose'"
            )),
        }
    }
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Rtmo => "rtmo",
            Self::YoloPose => "yolo-pose",
        })
    }
}

/// The tensors a model's contract uses, by name.
#[derive(Clone, Debug, PartialEq)]
enum Outputs {
    Rtmo { dets: String, keypoints: String },
    YoloPose { output: String },
}

/// The contract found in a model: input name and size, and its outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Contract {
    pub format: ModelFormat,
    pub input: String,
    pub input_width: usize,
    pub input_height: usize,
    /// The batch dimension is dynamic: several frames can run in one call.
    pub dynamic_batch: bool,
    outputs: Outputs,
}

impl Contract {
    /// Values in one frame's input tensor (`3 x H x W`).
    pub fn input_len(&self) -> usize {
        3 * self.input_width * self.input_height
    }

    pub fn letterbox(&self, width: usize, height: usize) -> Letterbox {
        Letterbox::new(width, height, self.input_width, self.input_height)
    }

    /// Letterboxes `image` into `tensor` (one frame, [`Self::input_len`] values), as the
    /// contract wants it: BGR 0-255 for RTMO, RGB 0-1 for YOLO-pose.
    pub fn preprocess(&self, image: &Image<'_>, tensor: &mut [f32]) -> Result<Letterbox, String> {
        let letterbox = self.letterbox(image.width, image.height);
        let (order, scale) = match self.format {
            ModelFormat::YoloPose => (ChannelOrder::Rgb, 1.0 / 255.0),
            _ => (ChannelOrder::Bgr, 1.0),
        };
        fill_input_tensor(image, &letterbox, order, scale, tensor).map_err(|e| e.to_string())?;
        Ok(letterbox)
    }
}

/// One frame of a batched call: its input tensor, where it came from, how to decode it.
#[derive(Clone, Copy)]
pub struct BatchItem<'a> {
    pub input: &'a [f32],
    pub letterbox: Letterbox,
    pub params: DecodeParams,
}

const CONTRACTS_TEXT: &str = "expected RTMO (input [1,3,H,W] float32 -> dets [1,N,5], keypoints [1,N,17,3]) \
     or raw YOLO-pose (input [1,3,H,W] float32 -> output0 [1,56,A])";

/// Matches a model's inputs and outputs against the supported contracts.
pub fn find_contract(
    inputs: &[TensorInfo],
    outputs: &[TensorInfo],
    wanted: ModelFormat,
) -> Result<Contract, String> {
    let mismatch = |why: &str| {
        format!(
            "{why}: {CONTRACTS_TEXT}; the model has {}",
            describe_text(inputs, outputs)
        )
    };
    let [input] = inputs else {
        return Err(mismatch(&format!(
            "the model has {} inputs, not 1",
            inputs.len()
        )));
    };
    let dim_ok = |d: i64, want: i64| d == want || d < 0;
    if input.element != "float32"
        || input.shape.len() != 4
        || !dim_ok(input.shape[0], 1)
        || !dim_ok(input.shape[1], 3)
    {
        return Err(mismatch(&format!(
            "input '{}' is not an image tensor [1,3,H,W] float32",
            input.name
        )));
    }
    let size = |d: i64| if d > 0 { d as usize } else { 640 };
    let (input_height, input_width) = (size(input.shape[2]), size(input.shape[3]));

    let rtmo = {
        let dets = outputs
            .iter()
            .filter(|o| o.shape.len() == 3 && o.shape[2] == 5)
            .min_by_key(|o| o.name != "dets");
        let kps = outputs
            .iter()
            .filter(|o| o.shape.len() == 4 && o.shape[2] == 17 && o.shape[3] == 3)
            .min_by_key(|o| o.name != "keypoints");
        match (dets, kps) {
            (Some(d), Some(k)) => Some(Outputs::Rtmo {
                dets: d.name.clone(),
                keypoints: k.name.clone(),
            }),
            _ => None,
        }
    };
    let yolo = outputs
        .iter()
        .find(|o| o.shape.len() == 3 && o.shape[1] == YOLO_POSE_CHANNELS as i64)
        .map(|o| Outputs::YoloPose {
            output: o.name.clone(),
        });
    let (format, outputs_found) = match (wanted, rtmo, yolo) {
        (ModelFormat::Auto | ModelFormat::Rtmo, Some(o), _) => (ModelFormat::Rtmo, o),
        (ModelFormat::Auto | ModelFormat::YoloPose, _, Some(o)) => (ModelFormat::YoloPose, o),
        (ModelFormat::Auto, None, None) => {
            return Err(mismatch("the model follows no supported pose contract"));
        }
        (format, _, _) => {
            return Err(mismatch(&format!(
                "model-format={format} was set but the model's outputs do not fit it"
            )));
        }
    };
    let dynamic_batch = input.shape[0] < 0;
    Ok(Contract {
        format,
        input: input.name.clone(),
        input_width,
        input_height,
        dynamic_batch,
        outputs: outputs_found,
    })
}

/// A loaded pose model with its input buffer, ready to run frame after frame.
pub struct PoseModel {
    session: Session,
    pub contract: Contract,
    pub execution_provider: &'static str,
    pub fallback_reason: Option<String>,
    input: Vec<f32>,
    /// Several frames' tensors gathered for one call ([`Self::run_batch`]).
    batch_input: Vec<f32>,
}

impl PoseModel {
    /// Loads `request.model` and checks it follows a supported contract.
    pub fn load(request: &SessionRequest<'_>, format: ModelFormat) -> Result<Self, String> {
        let LoadedSession {
            session,
            execution_provider,
            fallback_reason,
        } = onnx::load_session(request)?;
        let (inputs, outputs) = describe(&session);
        let contract = find_contract(&inputs, &outputs, format).map_err(|e| {
            format!(
                "{} is not a pose model this element can run: {e}",
                request.model.display()
            )
        })?;
        let input = vec![0.0; contract.input_len()];
        Ok(Self {
            session,
            contract,
            execution_provider,
            fallback_reason,
            input,
            batch_input: Vec::new(),
        })
    }

    /// Path-only convenience for tools and tests: CPU, default threads.
    pub fn load_cpu(model: &Path, threads: usize) -> Result<Self, String> {
        Self::load(
            &SessionRequest {
                model,
                device: onnx::Device::Cpu,
                fallback_to_cpu: false,
                threads,
            },
            ModelFormat::Auto,
        )
    }

    pub fn letterbox(&self, width: usize, height: usize) -> Letterbox {
        self.contract.letterbox(width, height)
    }

    /// Letterboxes the frame into the input tensor, as the model's contract wants it.
    pub fn preprocess(&mut self, image: &Image<'_>) -> Result<Letterbox, String> {
        self.contract.preprocess(image, &mut self.input)
    }

    /// The input tensor as last filled by [`Self::preprocess`] (`[1, 3, H, W]`).
    pub fn input_tensor(&self) -> &[f32] {
        &self.input
    }

    /// Runs the model on the input tensor and decodes persons in source-frame pixels.
    pub fn run(
        &mut self,
        letterbox: &Letterbox,
        params: &DecodeParams,
    ) -> Result<Vec<PoseDetection>, String> {
        let input = std::mem::take(&mut self.input);
        let result = self.run_batch(&[BatchItem {
            input: &input,
            letterbox: *letterbox,
            params: *params,
        }]);
        self.input = input;
        result?.pop().expect("one result per item")
    }

    /// Runs several frames in one call (a model with a dynamic batch dimension) and decodes each
    /// with its own letterbox and settings. The outer error fails the whole call; the inner ones
    /// are per frame (outputs that do not decode).
    pub fn run_batch(
        &mut self,
        items: &[BatchItem<'_>],
    ) -> Result<Vec<Result<Vec<PoseDetection>, String>>, String> {
        let frame_len = self.contract.input_len();
        if let Some(item) = items.iter().find(|i| i.input.len() != frame_len) {
            return Err(format!(
                "an input tensor holds {} values, expected {frame_len}",
                item.input.len()
            ));
        }
        if items.len() > 1 && !self.contract.dynamic_batch {
            return Err(format!(
                "{} frames in one call, but the model's batch dimension is fixed at 1",
                items.len()
            ));
        }
        // One frame runs on its own tensor; several are gathered into one contiguous batch.
        let input: &[f32] = match items {
            [] => return Ok(Vec::new()),
            [item] => item.input,
            _ => {
                self.batch_input.clear();
                for item in items {
                    self.batch_input.extend_from_slice(item.input);
                }
                &self.batch_input
            }
        };
        let shape = [
            items.len(),
            3,
            self.contract.input_height,
            self.contract.input_width,
        ];
        let tensor = TensorRef::from_array_view((shape, input)).map_err(|e| e.to_string())?;
        let outputs = self
            .session
            .run(ort::inputs![self.contract.input.as_str() => tensor])
            .map_err(|e| format!("inference failed: {e}"))?;
        let extract = |name: &str| {
            outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("output '{name}': {e}"))
        };
        // Frame b's rows are the b-th of `items.len()` equal chunks of each output.
        let chunk = |data: &'_ [f32], b: usize| -> Result<std::ops::Range<usize>, String> {
            if !data.len().is_multiple_of(items.len()) {
                return Err(format!(
                    "an output holds {} values, not a multiple of the batch size {}",
                    data.len(),
                    items.len()
                ));
            }
            let n = data.len() / items.len();
            Ok(b * n..(b + 1) * n)
        };
        let decoded = match &self.contract.outputs {
            Outputs::Rtmo { dets, keypoints } => {
                let ((_, dets), (_, keypoints)) = (extract(dets)?, extract(keypoints)?);
                items
                    .iter()
                    .enumerate()
                    .map(|(b, item)| {
                        let (d, k) = (chunk(dets, b)?, chunk(keypoints, b)?);
                        decode_rtmo(&dets[d], &keypoints[k], &item.letterbox, &item.params)
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            }
            Outputs::YoloPose { output } => {
                let (shape, data) = extract(output)?;
                let anchors = shape.last().copied().unwrap_or(0).max(0) as usize;
                items
                    .iter()
                    .enumerate()
                    .map(|(b, item)| {
                        let range = chunk(data, b)?;
                        decode_yolo_pose(&data[range], anchors, &item.letterbox, &item.params)
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            }
        };
        Ok(decoded)
    }

    /// [`Self::preprocess`] then [`Self::run`].
    pub fn detect(
        &mut self,
        image: &Image<'_>,
        params: &DecodeParams,
    ) -> Result<Vec<PoseDetection>, String> {
        let letterbox = self.preprocess(image)?;
        self.run(&letterbox, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, shape: &[i64]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            shape: shape.to_vec(),
            element: "float32".into(),
        }
    }

    #[test]
    fn finds_rtmo_and_yolo_contracts() {
        let input = [t("input", &[1, 3, 640, 640])];
        let c = find_contract(
            &input,
            &[t("dets", &[1, -1, 5]), t("keypoints", &[1, -1, 17, 3])],
            ModelFormat::Auto,
        )
        .unwrap();
        assert_eq!(c.format, ModelFormat::Rtmo);
        assert_eq!((c.input_width, c.input_height), (640, 640));
        assert!(!c.dynamic_batch);
        let c = find_contract(
            &[t("images", &[-1, 3, -1, -1])],
            &[t("output0", &[-1, 56, -1])],
            ModelFormat::Auto,
        )
        .unwrap();
        assert_eq!(c.format, ModelFormat::YoloPose);
        assert_eq!(c.input, "images");
        assert!(c.dynamic_batch);
    }

    #[test]
    fn rejects_other_models_naming_their_tensors() {
        let err = find_contract(
            &[t("keypoint", &[-1, 2, 100, 17, 3])],
            &[t("1319", &[-1, 60])],
            ModelFormat::Auto,
        )
        .unwrap_err();
        assert!(err.contains("keypoint [?,2,100,17,3] float32"), "{err}");
        assert!(err.contains("expected RTMO"), "{err}");
        let err = find_contract(
            &[t("input", &[1, 3, 640, 640])],
            &[t("output0", &[1, 56, 8400])],
            ModelFormat::Rtmo,
        )
        .unwrap_err();
        assert!(err.contains("model-format=rtmo"), "{err}");
    }
}
