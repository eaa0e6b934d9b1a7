//! A pose model behind one of the supported ONNX output contracts (RTMO or raw YOLO-pose),
//! from frame to person detections. No GStreamer types: the `rtmopose` element and the
//! benchmarks drive it alike.

use std::{
    ffi::{CStr, CString},
    fmt,
    path::Path,
    str::FromStr,
};

use ort::{
    AsPointer,
    memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType},
    session::{IoBinding, Session},
    value::{Shape, Tensor, TensorRefMut},
};
use recognizer_core::pose::{
    ChannelOrder, DecodeParams, Image, Letterbox, PoseDetection, decode::YOLO_POSE_CHANNELS,
    decode_rtmo, decode_yolo_pose, fill_input_tensor,
};

use crate::onnx::{self, LoadedSession, SessionRequest, TensorInfo, describe, describe_text};

/// Which output contract a model follows (`rtmopose`'s `model-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, glib::Enum)]
#[enum_type(name = "GstRtmoPoseModelFormat")]
pub enum ModelFormat {
    /// Decide from the model's outputs.
    #[enum_value(name = "Auto: from the model's outputs", nick = "auto")]
    Auto,
    /// mmpose/mmdeploy RTMO end-to-end export: BGR 0-255 in, `dets` + `keypoints` out.
    #[enum_value(
        name = "RTMO: BGR 0-255 input, dets and keypoints outputs, NMS in the graph",
        nick = "rtmo"
    )]
    Rtmo,
    /// Raw Ultralytics YOLO-pose export: RGB 0-1 in, `output0 [1,56,A]` out, NMS here.
    #[enum_value(
        name = "YOLO-pose: RGB 0-1 input, output0 [1,56,A], NMS in the element",
        nick = "yolo-pose"
    )]
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

    /// The outputs the decoder reads.
    fn output_names(&self) -> Vec<&str> {
        match &self.outputs {
            Outputs::Rtmo { dets, keypoints } => vec![dets, keypoints],
            Outputs::YoloPose { output } => vec![output],
        }
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

/// Memory for the input tensors of up to `frames` frames (`[frames, 3, H, W]`, contiguous), from
/// which [`PoseModel::run_frames`] runs the first N in one call. On CUDA it is pinned (page-locked)
/// host memory, so that the one host-to-device copy per call runs at full speed.
pub struct FrameArena {
    /// Owns the memory (and keeps its allocator alive).
    _memory: Tensor<f32>,
    data: *mut f32,
    frames: usize,
    frame_len: usize,
    memory_info: MemoryInfo<'static>,
    /// Why the memory is not pinned, on CUDA.
    pub unpinned_reason: Option<String>,
}

// SAFETY: the arena owns its memory; which thread may write which frame is the caller's protocol
// (`frame_ptr`), and ONNX Runtime only reads it during `run_frames`.
unsafe impl Send for FrameArena {}
unsafe impl Sync for FrameArena {}

impl FrameArena {
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Frame `index`'s tensor, for a caller that holds the arena exclusively.
    pub fn frame_mut(&mut self, index: usize) -> &mut [f32] {
        assert!(
            index < self.frames,
            "frame {index} of an arena of {}",
            self.frames
        );
        // SAFETY: in bounds, and `&mut self` excludes every other access.
        unsafe {
            std::slice::from_raw_parts_mut(self.data.add(index * self.frame_len), self.frame_len)
        }
    }

    /// Frame `index`'s tensor through a shared arena.
    ///
    /// # Safety
    /// No other reference to frame `index` may exist while the returned slice lives, and no
    /// [`PoseModel::run_frames`] may read it meanwhile (the engine's slot protocol ensures this).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn frame_unchecked(&self, index: usize) -> &mut [f32] {
        assert!(
            index < self.frames,
            "frame {index} of an arena of {}",
            self.frames
        );
        unsafe {
            std::slice::from_raw_parts_mut(self.data.add(index * self.frame_len), self.frame_len)
        }
    }
}

/// How a model is run: ONNX Runtime's IO binding (inputs bound from the arena, outputs into
/// host memory that ONNX Runtime allocates, pinned on CUDA), or, if binding did not work with this
/// model and provider at load, a plain `run` on a view of the arena.
enum Runner {
    Binding {
        binding: Box<IoBinding>,
        output_memory: MemoryInfo<'static>,
    },
    Plain,
}

/// A loaded pose model, ready to run frame after frame or several frames per call.
pub struct PoseModel {
    session: Session,
    pub contract: Contract,
    pub execution_provider: &'static str,
    pub fallback_reason: Option<String>,
    runner: Runner,
    /// Why IO binding is not used, when it is not.
    pub binding_error: Option<String>,
    /// A one-frame arena for [`Self::detect`].
    single: Option<FrameArena>,
    /// How long the warm-up call at load took (one frame, set-up costs included): an upper
    /// bound of a frame's inference time before any was measured.
    pub first_call: std::time::Duration,
    /// The input's name for the C API.
    input_name: CString,
}

/// Binds `value` as the input `name` of `binding` through the C API. ort's
/// `IoBinding::bind_input` first clones a tensor that borrows its memory when the session wants it
/// on the same device (every CPU session), and in ort 2.0.0-rc.15 that clone deadlocks (it
/// re-enters a lock it holds). Without the clone ONNX Runtime reads the arena in place on the CPU,
/// and copies it to the device at this call on CUDA; the arena outlives the binding either way.
fn bind_input_view(
    binding: &mut IoBinding,
    name: &CStr,
    value: &impl AsPointer<Sys = ort::sys::OrtValue>,
) -> Result<(), String> {
    let api = ort::api();
    // SAFETY: both pointers are valid ORT objects, and `name` is a NUL-terminated string.
    let status = unsafe { (api.BindInput)(binding.ptr().cast_mut(), name.as_ptr(), value.ptr()) };
    if status.0.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null status is an error status that we own and release once read.
    let message = unsafe { CStr::from_ptr((api.GetErrorMessage)(status.0)) }
        .to_string_lossy()
        .into_owned();
    unsafe { (api.ReleaseStatus)(status.0) };
    Err(message)
}

impl PoseModel {
    /// Loads `request.model`, checks it follows a supported contract, and runs one frame of
    /// zeros through it, so that the first real frame does not pay for the provider's set-up and
    /// so that IO binding is known to work (else the plain path is used, with the reason kept).
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
        let input_name = CString::new(contract.input.as_str()).map_err(|_| {
            format!(
                "the model's input name {:?} holds a NUL byte",
                contract.input
            )
        })?;
        let mut model = Self {
            session,
            input_name,
            contract,
            execution_provider,
            fallback_reason,
            runner: Runner::Plain,
            binding_error: None,
            single: None,
            first_call: std::time::Duration::ZERO,
        };
        let mut warm_up = model.allocate_frames(1)?;
        warm_up.frame_mut(0).fill(0.0);
        let binding = model.output_memory().and_then(|info| {
            let binding = model.session.create_binding().map_err(|e| e.to_string())?;
            Ok((binding, info))
        });
        match binding {
            Ok((binding, output_memory)) => {
                model.runner = Runner::Binding {
                    binding: Box::new(binding),
                    output_memory,
                };
                let started = std::time::Instant::now();
                let tried = model.run_raw(&warm_up, 1).map(drop);
                model.first_call = started.elapsed();
                if let Err(e) = tried {
                    model.runner = Runner::Plain;
                    model.binding_error = Some(e);
                }
            }
            Err(e) => model.binding_error = Some(e),
        }
        if matches!(model.runner, Runner::Plain) {
            let started = std::time::Instant::now();
            model.run_raw(&warm_up, 1).map(drop)?;
            model.first_call = started.elapsed();
        }
        model.single = Some(warm_up);
        Ok(model)
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

    fn on_cuda(&self) -> bool {
        self.execution_provider == onnx::CUDA_EXECUTION_PROVIDER
    }

    /// Whether frames run through ONNX Runtime's IO binding.
    pub fn io_binding(&self) -> bool {
        matches!(self.runner, Runner::Binding { .. })
    }

    /// Input memory for up to `frames` frames: pinned host memory on CUDA (plain host memory if
    /// the provider cannot give pinned memory), the session's CPU allocator otherwise.
    pub fn allocate_frames(&self, frames: usize) -> Result<FrameArena, String> {
        let frame_len = self.contract.input_len();
        let len = frames.max(1) * frame_len;
        let pinned = if self.on_cuda() {
            let info = MemoryInfo::new(
                AllocationDevice::CUDA_PINNED,
                0,
                AllocatorType::Device,
                MemoryType::CPUInput,
            );
            info.and_then(|info| Allocator::new(&self.session, info))
                .and_then(|allocator| Tensor::<f32>::new(&allocator, [len]))
                .map_err(|e| e.to_string())
        } else {
            Err("CPU session".to_string())
        };
        let (mut memory, unpinned_reason) = match pinned {
            Ok(tensor) => (tensor, None),
            Err(why) => {
                let tensor = Tensor::<f32>::new(self.session.allocator(), [len])
                    .map_err(|e| format!("could not allocate the input of {frames} frames: {e}"))?;
                (tensor, self.on_cuda().then_some(why))
            }
        };
        let memory_info = memory.memory_info().to_owned();
        let data = memory.data_ptr_mut().cast::<f32>();
        Ok(FrameArena {
            _memory: memory,
            data,
            frames: frames.max(1),
            frame_len,
            memory_info,
            unpinned_reason,
        })
    }

    /// Host memory (pinned on CUDA) where ONNX Runtime puts the outputs.
    fn output_memory(&self) -> Result<MemoryInfo<'static>, String> {
        if self.on_cuda() {
            MemoryInfo::new(
                AllocationDevice::CUDA_PINNED,
                0,
                AllocatorType::Device,
                MemoryType::CPUOutput,
            )
        } else {
            MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::Default,
            )
        }
        .map_err(|e| e.to_string())
    }

    /// (Re)binds the contract's outputs to host memory. Done before every call: ONNX Runtime
    /// would otherwise reuse the previous call's outputs, whose shapes change with the number of
    /// persons and frames.
    fn bind_outputs(
        binding: &mut IoBinding,
        contract: &Contract,
        info: &MemoryInfo,
    ) -> Result<(), String> {
        for name in contract.output_names() {
            binding
                .bind_output_to_device(name, info)
                .map_err(|e| format!("binding output '{name}': {e}"))?;
        }
        Ok(())
    }

    /// Runs frames `0..frames` of `arena` and returns the raw outputs.
    fn run_raw<'s>(
        &'s mut self,
        arena: &FrameArena,
        frames: usize,
    ) -> Result<ort::session::SessionOutputs<'s>, String> {
        if frames == 0 || frames > arena.frames {
            return Err(format!(
                "{frames} frames asked of an arena of {}",
                arena.frames
            ));
        }
        if arena.frame_len != self.contract.input_len() {
            return Err(format!(
                "an input tensor holds {} values, expected {}",
                arena.frame_len,
                self.contract.input_len()
            ));
        }
        if frames > 1 && !self.contract.dynamic_batch {
            return Err(format!(
                "{frames} frames in one call, but the model's batch dimension is fixed at 1"
            ));
        }
        let shape = Shape::new([
            frames as i64,
            3,
            self.contract.input_height as i64,
            self.contract.input_width as i64,
        ]);
        // SAFETY: the arena's memory holds at least `frames` frames and outlives the view, which
        // is dropped before this function returns (plain) or copied by ONNX Runtime at binding.
        let view = unsafe {
            TensorRefMut::<f32>::from_raw(arena.memory_info.clone(), arena.data.cast(), shape)
        }
        .map_err(|e| e.to_string())?;
        let input = self.contract.input.as_str();
        match &mut self.runner {
            Runner::Binding {
                binding,
                output_memory,
            } => {
                bind_input_view(binding, &self.input_name, &*view)
                    .map_err(|e| format!("binding the input: {e}"))?;
                Self::bind_outputs(binding, &self.contract, output_memory)?;
                self.session
                    .run_binding(binding)
                    .map_err(|e| format!("inference failed: {e}"))
            }
            Runner::Plain => self
                .session
                .run(ort::inputs![input => view])
                .map_err(|e| format!("inference failed: {e}")),
        }
    }

    /// Runs frames `0..items.len()` of `arena` in one call and decodes each with its own
    /// letterbox and settings. The outer error fails the whole call; the inner ones are per frame
    /// (outputs that do not decode).
    pub fn run_frames(
        &mut self,
        arena: &FrameArena,
        items: &[(Letterbox, DecodeParams)],
    ) -> Result<Vec<Result<Vec<PoseDetection>, String>>, String> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let contract = self.contract.clone();
        let outputs = self.run_raw(arena, items.len())?;
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
        let decoded = match &contract.outputs {
            Outputs::Rtmo { dets, keypoints } => {
                let ((_, dets), (_, keypoints)) = (extract(dets)?, extract(keypoints)?);
                items
                    .iter()
                    .enumerate()
                    .map(|(b, (letterbox, params))| {
                        let (d, k) = (chunk(dets, b)?, chunk(keypoints, b)?);
                        decode_rtmo(&dets[d], &keypoints[k], letterbox, params)
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
                    .map(|(b, (letterbox, params))| {
                        let range = chunk(data, b)?;
                        decode_yolo_pose(&data[range], anchors, letterbox, params)
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            }
        };
        Ok(decoded)
    }

    /// Letterboxes one frame into the model's own one-frame arena and runs it.
    pub fn detect(
        &mut self,
        image: &Image<'_>,
        params: &DecodeParams,
    ) -> Result<Vec<PoseDetection>, String> {
        let mut arena = self
            .single
            .take()
            .expect("the one-frame arena is made at load");
        let result = self
            .contract
            .preprocess(image, arena.frame_mut(0))
            .and_then(|letterbox| self.run_frames(&arena, &[(letterbox, *params)]));
        self.single = Some(arena);
        result?.pop().expect("one result per frame")
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
