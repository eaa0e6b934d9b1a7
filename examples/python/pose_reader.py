#!/usr/bin/python3
"""Reads Recognizer's pose metadata and events from Python (PyGObject), without linking Rust code.

Runs the whole chain

    filesrc ! decodebin ! videoconvert ! queue ! rtmopose ! bytetrack ! queue ! stgcnclassify
      ! posemetaexport ! eventsink (fall events posted on the bus)

on a video file and prints, per frame, the persons with their boxes, track ids, track states and
actions (from the custom meta "RecognizerPoseStructure" that posemetaexport adds: its structure's
`json` field is the persons array of README "JSON form"), and every event eventsink posts on the
bus (element messages named "recognizer-event").

Interpreter: Debian's /usr/bin/python3, which has PyGObject (python3-gi) and GStreamer's Python
overrides (python3-gst-1.0, needed to read GstValueArray fields such as an event's bbox); both are
installed by scripts/setup. A virtual environment or another Python lacks them.

Usage: /usr/bin/python3 examples/python/pose_reader.py VIDEO POSE_MODEL ACTION_MODEL
The plugin must be where GStreamer finds it (installed with meson, or GST_PLUGIN_PATH).

Output, one line each:
  frame N pts S.SSS inferred|skipped persons K: [#ID STATE box [...] score S [predicted]
      [action LABEL SCORE]]; ...
  event TYPE: track ID, label L, score S, from S.SSS s to S.SSS s, bbox [...]
  pose_reader: F frames, persons in P, T tracks, E events
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def seconds(t):
    return t / Gst.SECOND if t != Gst.CLOCK_TIME_NONE else -1.0


class Counts:
    def __init__(self):
        self.frames = 0
        self.frames_with_persons = 0
        self.tracks = set()


def on_buffer(pad, info, counts):
    """Called in the streaming thread for every buffer entering eventsink."""
    buffer = info.get_buffer()
    line = f"frame {counts.frames} pts {seconds(buffer.pts):.3f}"
    meta = buffer.get_custom_meta("RecognizerPoseStructure")
    if meta is None:
        line += " no pose meta"
    else:
        structure = meta.get_structure()
        persons = json.loads(structure.get_string("json"))
        # inferred: the pose model ran on this frame (else the persons are the tracker's guesses)
        ok, inferred = structure.get_boolean("inferred")
        if ok:
            line += " inferred" if inferred else " skipped"
        parts = []
        for p in persons:
            if p["track_id"] is not None:
                part = f"#{p['track_id']} {p['track_state']}"
                counts.tracks.add(p["track_id"])
            else:
                part = "untracked"
            x1, y1, x2, y2 = p["bbox"]
            part += f" box [{x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f}] score {p['score']:.2f}"
            if p.get("predicted"):
                part += " predicted"
            if p["action"] is not None:
                part += f" action {p['action']['label']} {p['action']['score']:.2f}"
            parts.append(part)
        line += f" persons {len(persons)}: " + "; ".join(parts)
        counts.frames_with_persons += bool(persons)
    counts.frames += 1
    print(line, flush=True)
    return Gst.PadProbeReturn.OK


def print_event(s):
    """An event of eventsink (README "eventsink", bus message)."""
    _, track_id = s.get_uint64("track-id")
    _, start = s.get_uint64("start-pts")
    _, end = s.get_uint64("end-pts")
    _, score = s.get_double("score")
    bbox = [round(v) for v in s.get_value("bbox")]
    print(
        f"event {s.get_string('type')}: track {track_id}, label {s.get_string('label')}, "
        f"score {score:.2f}, from {seconds(start):.3f} s to {seconds(end):.3f} s, bbox {bbox}",
        flush=True,
    )


def main():
    Gst.init(None)
    if len(sys.argv) != 4:
        print(f"usage: {sys.argv[0]} VIDEO POSE_MODEL ACTION_MODEL", file=sys.stderr)
        return 2
    video, pose_model, action_model = sys.argv[1:]
    # The chain of pipelines/file-to-events.pipeline, without the recording.
    pipeline = Gst.parse_launch(
        f'filesrc location="{video}" ! decodebin ! videoconvert ! queue max-size-buffers=4 ! '
        f'rtmopose model-file="{pose_model}" score-threshold=0.1 ! bytetrack ! '
        f'queue max-size-buffers=4 ! stgcnclassify model-file="{action_model}" ! posemetaexport ! '
        "eventsink name=sink stream=cam0 labels=fall label-match=contains event-type=fall "
        "min-frames=3 post-messages=true"
    )
    counts = Counts()
    pad = pipeline.get_by_name("sink").get_static_pad("sink")
    pad.add_probe(Gst.PadProbeType.BUFFER, on_buffer, counts)

    bus = pipeline.get_bus()
    events = 0
    ok = False
    pipeline.set_state(Gst.State.PLAYING)
    while True:
        msg = bus.timed_pop_filtered(
            Gst.CLOCK_TIME_NONE,
            Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.WARNING | Gst.MessageType.ELEMENT,
        )
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s is not None and s.has_name("recognizer-event"):
                print_event(s)
                events += 1
        elif msg.type == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            print(f"pose_reader: warning from {msg.src.get_name()}: {err.message}", file=sys.stderr)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"pose_reader: error from {msg.src.get_name()}: {err.message}\n{debug}", file=sys.stderr)
            break
        elif msg.type == Gst.MessageType.EOS:
            ok = True
            break
    pipeline.set_state(Gst.State.NULL)
    print(
        f"pose_reader: {counts.frames} frames, persons in {counts.frames_with_persons}, "
        f"{len(counts.tracks)} tracks, {events} events"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
