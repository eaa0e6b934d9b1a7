"""Reads Recognizer's pose metadata from Python (PyGObject), without linking Rust code.

Usage: /usr/bin/python3 read_pose_meta.py IMAGE.jpg POSE_MODEL.onnx
Prints one JSON line per frame: {"n_persons": N, "inferred": bool, "persons": [...]}. Needs GST_PLUGIN_PATH to
point at the folder holding libgstrecognizer.so.
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
image, model = sys.argv[1], sys.argv[2]
pipeline = Gst.parse_launch(
    f'filesrc location="{image}" ! jpegdec ! videoconvert ! rtmopose model-file="{model}" ! '
    "bytetrack ! posemetaexport ! appsink name=sink emit-signals=false sync=false"
)
sink = pipeline.get_by_name("sink")
pipeline.set_state(Gst.State.PLAYING)
while True:
    sample = sink.emit("pull-sample")
    if sample is None:
        break
    meta = sample.get_buffer().get_custom_meta("RecognizerPoseStructure")
    if meta is None:
        print(json.dumps({"n_persons": None, "inferred": None, "persons": None}))
        continue
    structure = meta.get_structure()
    ok, n = structure.get_uint("n-persons")
    ok, inferred = structure.get_boolean("inferred")
    persons = json.loads(structure.get_string("json"))
    print(json.dumps({"n_persons": n, "inferred": inferred, "persons": persons}))
pipeline.set_state(Gst.State.NULL)
