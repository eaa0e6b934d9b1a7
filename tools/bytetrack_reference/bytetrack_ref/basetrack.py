# Patched from bytetracker 0.3.2 (PyPI, MIT, Copyright (c) 2022 Kadir Nar), itself a repackaging
# of yolox/tracker/basetrack.py of the official ByteTrack repository (MIT).
# Patches (see ../README.md):
#   R1 instance attributes set in __init__ as in the official basetrack.py (the package uses class
#      attributes and STrack never calls BaseTrack.__init__).
#   R2 the id counter stays global as in the official code (BaseTrack._count), but the tracker
#      resets it when it is constructed (BYTETracker.__init__), so ids start at 1 per sequence,
#      as the Rust tracker's per-instance ids do.
from collections import OrderedDict

import numpy as np


class TrackState(object):
    New = 0
    Tracked = 1
    Lost = 2
    Removed = 3


class BaseTrack(object):
    _count = 0

    def __init__(self):
        self.track_id = 0
        self.is_activated = False
        self.state = TrackState.New

        self.history = OrderedDict()
        self.features = []
        self.curr_feature = None
        self.score = 0
        self.start_frame = 0
        self.frame_id = 0
        self.time_since_update = 0

        # multi-camera
        self.location = (np.inf, np.inf)

    @property
    def end_frame(self):
        return self.frame_id

    @staticmethod
    def next_id():
        BaseTrack._count += 1
        return BaseTrack._count

    @staticmethod
    def reset_count():
        BaseTrack._count = 0

    def activate(self, *args):
        raise NotImplementedError

    def predict(self):
        raise NotImplementedError

    def update(self, *args, **kwargs):
        raise NotImplementedError

    def mark_lost(self):
        self.state = TrackState.Lost

    def mark_removed(self):
        self.state = TrackState.Removed
