"""Video files, stream URLs and USB cameras through OpenCV, with reconnects for live ones."""

from __future__ import annotations

import glob
import logging
import os
import time
from typing import Iterator

import numpy as np

from device.sources.base import CameraLost, Frame, Source, SourceError

log = logging.getLogger("classify-cam")

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264", ".mjpeg"}


class VideoCapture(Source):
    """A video file, stream URL or camera through OpenCV.

    A live camera that stops delivering (read fails, or the same frame keeps coming back) is
    reopened with exponential backoff; after `timeout` seconds without a fresh frame it raises
    CameraLost rather than hanging or repeating the last picture.
    """

    STALE_REPEATS = 30  # identical frames in a row that mean the camera is frozen

    def __init__(self, target, live: bool, timeout: float = 10.0, size=(640, 480), colour: bool = False,
                 realtime: bool = False):
        import cv2

        self.target, self.live, self.timeout, self.size = target, live, timeout, size
        self.colour = colour  # RGB frames (for saving item photos); grey otherwise, the cheaper conversion
        self.realtime = realtime and not live  # a video file delivered at its own frame rate, as a camera would
        # A file's time: its modification time plus each frame's timestamp, the same at any reading speed.
        self.start_t = os.path.getmtime(target) if isinstance(target, str) and os.path.isfile(target) else None
        self.name = f"camera:{target}" if live else str(target)
        self._clock = None
        self.cap = self._open()
        if not self.cap.isOpened():
            raise SourceError(f"cannot open {'camera' if live else 'video'} {target}")
        self._cv2 = cv2

    def _open(self):
        import cv2

        if isinstance(self.target, str) and "://" in self.target:
            # A stream that accepts and never answers would hold ffmpeg 30 s whatever --camera-timeout says.
            ms = int(max(self.timeout, 0.1) * 1000)
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            cap = cv2.VideoCapture(self.target)
        if self.live and cap.isOpened():
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
        return cap

    def frames(self) -> Iterator[Frame]:
        previous, repeats = None, 0
        while True:
            t = time.perf_counter()
            ok, bgr = self.cap.read()
            if ok and self.live:
                sample = bgr[::16, ::16].copy()
                repeats = repeats + 1 if previous is not None and np.array_equal(sample, previous) else 0
                previous = sample
                ok = repeats < self.STALE_REPEATS
            if not ok:
                if not self.live or self.stop.is_set():
                    return  # end of the video file, or asked to stop
                if not self._recover():
                    return  # asked to stop while reconnecting
                previous, repeats = None, 0
                continue
            # Straight to greyscale: the model is greyscale, and one conversion is cheaper than two.
            image = self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB if self.colour else self._cv2.COLOR_BGR2GRAY)
            capture_ms = (time.perf_counter() - t) * 1000
            if self.start_t is None:
                stamp = time.time()
            else:
                stamp = self.start_t + self.cap.get(self._cv2.CAP_PROP_POS_MSEC) / 1000
                if self.realtime:
                    self._wait_until(stamp)
            yield Frame(self.name, image, capture_ms, None, stamp)

    def _wait_until(self, stamp: float) -> None:
        """--realtime: deliver the frame when a camera would have (the stop flag ends the wait)."""
        if self._clock is None:
            self._clock = (time.monotonic(), stamp)
        delay = self._clock[0] + (stamp - self._clock[1]) - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)

    def _recover(self) -> bool:
        """Reopen the camera with backoff until a frame comes (True); False when asked to stop meanwhile;
        CameraLost after `timeout` seconds."""
        deadline, delay = time.monotonic() + self.timeout, 0.1
        while time.monotonic() < deadline:
            log.warning("%s: no fresh frame; reopening in %.1f s", self.name, delay)
            if self.stop.wait(delay):  # SIGTERM ends the wait at once (systemctl stop never hangs)
                return False
            self.cap.release()
            self.cap = self._open()
            if self.cap.isOpened() and self.cap.grab():
                return True
            if self.stop.is_set():
                return False
            delay = min(delay * 2, 2.0)
        raise CameraLost(f"{self.name} delivered no fresh frame for {self.timeout:.0f} s; giving up")

    def close(self) -> None:
        self.cap.release()


def video_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"))
