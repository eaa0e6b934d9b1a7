"""ByteTrack reference (official yolox/tracker code path) without torch/yolox/cython_bbox.

See ../README.md for the provenance and the list of patches.
"""
from .basetrack import BaseTrack, TrackState
from .byte_tracker import BYTETracker, STrack
from .kalman_filter import KalmanFilter

__all__ = ["BaseTrack", "TrackState", "BYTETracker", "STrack", "KalmanFilter"]
