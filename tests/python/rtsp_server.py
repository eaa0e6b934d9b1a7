"""Serves an H.264 MP4 file over RTSP on loopback for the pipeline tests.

Usage: /usr/bin/python3 rtsp_server.py PORT FILE.mp4
Prints "ready rtsp://127.0.0.1:PORT/cam" once listening; serves until killed. Each client gets
the file from its start, in real time.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, path = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f'( filesrc location="{path}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )')
factory.set_shared(False)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"could not listen on 127.0.0.1:{port}")
print(f"ready rtsp://127.0.0.1:{port}/cam", flush=True)
GLib.MainLoop().run()
