"""Converts a pose model's weights and arithmetic to float16, keeping float32 inputs and outputs,
so that `rtmopose` runs it unchanged (the element's contract is float32 in and out). For the CUDA
comparison of benches/device_check.rs (`FP16_MODEL=... scripts/device-kit`).

    python3 -m pip install onnx onnxruntime
    python3 tools/gpu/fp16_model.py ../shared/models/pose/yolo11n-pose_dynamic.onnx out/yolo11n-pose_dynamic_fp16.onnx
"""

import sys

import onnx

# onnxruntime's converter: onnxconverter-common's leaves this model's Resize nodes with
# mismatched types, which ONNX Runtime refuses to load.
from onnxruntime.transformers.float16 import convert_float_to_float16


def main(source: str, target: str) -> None:
    model = onnx.load(source)
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, target)
    print(f"{source} -> {target} (float16 inside, float32 inputs and outputs)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
