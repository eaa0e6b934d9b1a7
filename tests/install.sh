#!/usr/bin/env bash
# The plugin installed as a GStreamer plugin runs from the installed files alone (issue 15).
# Installs with meson into a temporary prefix (pluginsdir overridden into it: a test writes
# nowhere else), then, from an empty working directory with GStreamer pointed at the installed
# plugin directory and a fresh registry, runs the installed pose-frames pipeline on a clip of the
# data directory with the installed pose model and checks that
#   - the frame log has persons on every frame,
#   - ONNX Runtime was loaded from the folder installed beside the plugin (GST_DEBUG of
#     recognizer-onnx), and no shared library was loaded from the source tree (LD_DEBUG=files),
#   - the installed pkg-config file gives the header's include folder, and the C example builds
#     against the installed header with it.
# Usage: tests/install.sh   (after cargo build --release; RECOGNIZER_DATA as for scripts/test)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=$(cd "${RECOGNIZER_DATA:-$root/../shared}" && pwd)
say() { echo "install test: $*" >&2; }
fail() { say "$*"; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
pluginsdir=$prefix/lib/gstreamer-1.0
build=$tmp/build
# The cargo target directory of the source tree: the plugin scripts/test built is reused.
meson setup "$build" --buildtype=release --prefix="$prefix" -Dpluginsdir="$pluginsdir" \
  -Dcargo_target_dir="$root/target" -Dpose_model="$data/models/pose/yolo11n-pose_rtmo-contract.onnx" \
  >"$tmp/meson.log" 2>&1 || { cat "$tmp/meson.log" >&2; fail "meson setup failed"; }
meson compile -C "$build" >>"$tmp/meson.log" 2>&1 || { cat "$tmp/meson.log" >&2; fail "meson compile failed"; }
meson install -C "$build" >>"$tmp/meson.log" 2>&1 || { cat "$tmp/meson.log" >&2; fail "meson install failed"; }

share=$prefix/share/recognizer
for f in "$pluginsdir/libgstrecognizer.so" "$share/pipelines/pose-frames.pipeline" \
  "$share/schemas/event.schema.json" "$share/models/fall_stgcnpp.onnx" \
  "$share/models/yolo11n-pose_rtmo-contract.onnx"; do
  [ -f "$f" ] || fail "not installed: $f"
done
ort=$(ls "$pluginsdir"/recognizer/libonnxruntime.so.* 2>/dev/null) || fail "no ONNX Runtime in $pluginsdir/recognizer"
pc=$(find "$prefix" -name recognizer.pc) || true
[ -n "$pc" ] || fail "no recognizer.pc installed"
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags recognizer)
[[ "$cflags" == *"-I$prefix/include"* ]] || fail "recognizer.pc gives cflags '$cflags', expected -I$prefix/include"
if [ -f "$root/meta/include/recognizer/pose-meta.h" ]; then
  [ -f "$prefix/include/recognizer/pose-meta.h" ] || fail "the C header was not installed"
  # An application built against the installed header and pkg-config file alone.
  # shellcheck disable=SC2046 # pkg-config's flags are words
  cc -o "$tmp/pose_reader" "$root/examples/c/pose_reader.c" \
    $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs recognizer gstreamer-1.0) \
    || fail "examples/c/pose_reader.c does not build against the installed recognizer.pc"
fi

# Run from the installed files: an empty cwd, nothing of the source tree on any path.
mkdir "$tmp/run" "$tmp/out"
cd "$tmp/run"
description=$(grep -v '^[[:space:]]*#' "$share/pipelines/pose-frames.pipeline" | tr '\n' ' ')
description=${description//'${VIDEO}'/$data/media/video/ntu_S002C002P003R002A043_rgb_falling.avi}
description=${description//'${POSE_MODEL}'/$share/models/yolo11n-pose_rtmo-contract.onnx}
description=${description//'${OUTDIR}'/$tmp/out}
description=${description//'${STREAM}'/installed}
system_dir=$(pkg-config --variable=pluginsdir gstreamer-1.0)
eval "env -u ORT_DYLIB_PATH -u LD_LIBRARY_PATH GST_PLUGIN_PATH='$pluginsdir' \
  GST_PLUGIN_SYSTEM_PATH='$system_dir' GST_REGISTRY='$tmp/registry.bin' \
  GST_DEBUG=recognizer-onnx:4 GST_DEBUG_FILE='$tmp/gst.log' GST_DEBUG_NO_COLOR=1 \
  LD_DEBUG=files LD_DEBUG_OUTPUT='$tmp/ld' \
  timeout 300 gst-launch-1.0 -q -e $description" >"$tmp/launch.log" 2>&1 \
  || { cat "$tmp/launch.log" "$tmp/gst.log" >&2; fail "the pipeline failed from the installed files"; }

loaded=$(sed -n 's/.*loaded ONNX Runtime from \([^ ]*\) .*/\1/p' "$tmp/gst.log")
[ "$loaded" = "$ort" ] || { cat "$tmp/gst.log" >&2; fail "ONNX Runtime loaded from '$loaded', expected the installed $ort"; }
# Every shared object the process loaded, by its path: none from the source tree (or .ort).
ort_src=$(readlink -f "$root/.ort" 2>/dev/null || echo "$root/.ort")
objects=$(cat "$tmp"/ld.* | sed -n 's/.*file=\(\/[^ ]*\).*/\1/p' | sort -u)
grep -q "^$pluginsdir/libgstrecognizer.so$" <<<"$objects" || fail "the installed plugin was not loaded"
if grep -E "^($root|$ort_src)/" <<<"$objects"; then fail "loaded the above from the source tree"; fi

python3 - "$tmp/out/frames.jsonl" <<'PY'
import json, sys
frames = [json.loads(line) for line in open(sys.argv[1])]
with_persons = sum(1 for f in frames if f["persons"])
print(f"install test: {len(frames)} frames from the installed files, persons in {with_persons}", file=sys.stderr)
sys.exit(0 if frames and with_persons == len(frames) else "install test: expected persons on every frame")
PY
say "ONNX Runtime loaded from $loaded"
