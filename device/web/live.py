"""What the page shows, handed over by the loop: the Live state, and its pictures encoded when a viewer asks."""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections import deque

import numpy as np

from device.spec import picture

VIEW_WIDTH = 480  # pixels: the live picture is downscaled to this for the page


class Live:
    """What the page shows; set by the loop (plain assignments), read by the server threads."""

    def __init__(self, facts: dict, roi=None):
        self.frame = None  # the latest picture (H, W) or (H, W, 3), as the source gave it
        self.seen = None  # the latest model input (28, 28, 1) float
        self.record = {}  # the latest per-frame record, or the latest event
        self.events = deque(maxlen=10)
        self.tally = {}
        self.facts = dict(facts)
        self.roi = roi
        self.frames, self.started = 0, time.monotonic()
        self.times = deque(maxlen=30)  # when the last frames came: the camera's fps now, not since the start
        self.busy = False  # something lies or moves on the table (stockroom mode): no background may be taken
        self.broker = None  # with --mqtt: a callable giving the broker's state (reached, waiting events, ...)
        self.items = None  # with --events: device.stockroom.items.Items, the recent items
        self.changes = queue.SimpleQueue()  # settings from the page ({"roi": ...} or {"background": ...}), for the loop
        self.correct = None  # with --events: correct(item_id, label) -> the relabelled record
        self.reset = None  # with --events: reset() -> the reset record (today's counts from zero)
        self.disk = None  # the folder item photos go to (--save-items): its free space is shown
        self.encoded = (None, None)  # (frame number, JPEG bytes): encoded once per frame, however many watch
        self.encoding = threading.Lock()

    def update(self, frame, seen, records=(), tally=None, busy: bool = False) -> None:
        """One frame's picture, the latest model input, and the records it gave (per-frame records or events)."""
        self.frame, self.frames, self.busy = frame, self.frames + 1, busy
        self.times.append(time.monotonic())
        if seen is not None:
            self.seen = seen
        for r in records:
            if "event" in r:
                self.events.appendleft(r)
            self.record = r  # the page says "removed" once the item is gone, not its old label
        if tally is not None:
            self.tally = dict(tally)

    def note(self, record: dict, tally=None) -> None:
        """A record made from the page (a correction, a reset): among the last events at once, for every viewer."""
        self.events.appendleft(record)
        if tally is not None:
            self.tally = dict(tally)

    def fps(self) -> float:
        """Frames a second over the last 30 frames (0 once no frame came for 5 s: a stalled camera shows)."""
        times = list(self.times)
        if len(times) < 2 or time.monotonic() - times[-1] > 5:
            return 0.0
        return round((len(times) - 1) / max(times[-1] - times[0], 1e-6), 1)

    def free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.disk).free if self.disk else None
        except OSError:
            return None

    def view(self) -> bytes | None:
        """The latest frame as the page's JPEG; made only when a viewer asks, once per frame for all viewers."""
        with self.encoding:
            number, frame, roi = self.frames, self.frame, self.roi
            if frame is None:
                return None
            if self.encoded[0] != (number, str(roi)):
                self.encoded = ((number, str(roi)), jpeg(frame, roi))
            return self.encoded[1]


def jpeg(image: np.ndarray, roi=None) -> bytes:
    """The page's picture: downscaled first (the colour conversion and the encoding then touch fewer pixels),
    the region drawn on it."""
    import cv2

    scale = min(VIEW_WIDTH / image.shape[1], 1.0)
    if scale < 1:
        image = cv2.resize(image, (VIEW_WIDTH, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if roi:
        x, y, w, h = (round(v * scale) for v in roi)
        cv2.rectangle(bgr, (x, y), (x + w, y + h), (0, 200, 255), 2)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def png_input(seen: np.ndarray) -> bytes:
    import cv2

    big = cv2.resize(picture(seen), (168, 168), interpolation=cv2.INTER_NEAREST)
    return cv2.imencode(".png", big)[1].tobytes()
