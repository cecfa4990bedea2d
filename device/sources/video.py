"""Video files, stream URLs and USB cameras through OpenCV, with reconnects for live ones."""

from __future__ import annotations

import glob
import logging
import os
import time
from typing import Iterator

from device.sources.base import Frame, Source, SourceError, Stale, printable

log = logging.getLogger("classify-cam")

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264", ".mjpeg"}


class VideoCapture(Source):
    """A video file, stream URL or camera through OpenCV.

    A live camera that stops delivering (read fails, or the same frame keeps coming back) is
    reopened by the stall rule every live source shares (Source.recover). A video file with a
    damaged stretch is read past it: the frames OpenCV cannot decode are counted and said at the end,
    never taken for the end of the file.
    """

    MAX_BAD_RUN = 250  # undecodable frames in a row that mean the file has ended (or nothing more can be read)

    def __init__(self, target, live: bool, timeout: float = 10.0, size=(640, 480), colour: bool = False,
                 realtime: bool = False):
        import cv2

        self.target, self.live, self.timeout, self.size = target, live, timeout, size
        self.colour = colour  # RGB frames (item photos, the page); grey otherwise, the cheaper conversion
        self.realtime = realtime and not live  # a video file delivered at its own frame rate, as a camera would
        # A file's time: its modification time (a recording fetched by URL: when it was opened) plus each frame's
        # timestamp, the same at any reading speed. A camera's: the clock when the frame came.
        local = isinstance(target, str) and os.path.isfile(target)
        self.start_t = None if live else os.path.getmtime(target) if local else time.time()
        self.name = f"camera:{printable(target)}" if live else printable(target)
        self._clock = None
        self._cv2 = cv2
        self.cap = self._open()
        if not self.cap.isOpened():
            raise SourceError(f"cannot open {'camera' if live else 'video'} {printable(target)}")
        self.total = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
        self.delivered = self.undecodable = 0

    def _open(self):
        cv2 = self._cv2
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
        cv2, stale, bad_run = self._cv2, Stale(), 0
        while True:
            t = time.perf_counter()
            ok, bgr = self.cap.read()
            if ok and self.live and stale(bgr):
                ok = False
            if not ok:
                if self.stop.is_set():
                    return
                if self.live:
                    if not self.recover(self._reopen):
                        return  # asked to stop while reconnecting
                    stale.reset()
                    continue
                bad_run += 1
                if bad_run > self.MAX_BAD_RUN or (self.total and self.cap.get(cv2.CAP_PROP_POS_FRAMES) >= self.total):
                    return self._say_what_was_lost()
                continue
            if bad_run:  # a damaged stretch, and frames again after it
                self.undecodable += bad_run
                bad_run = 0
            # Straight to greyscale: the model is greyscale, and one conversion is cheaper than two.
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB if self.colour else cv2.COLOR_BGR2GRAY)
            capture_ms = (time.perf_counter() - t) * 1000
            if self.start_t is None:
                stamp = time.time()
            else:
                stamp = self.start_t + self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
                if self.realtime:
                    self._wait_until(stamp)
            self.delivered += 1
            yield Frame(self.name, image, capture_ms, None, stamp)

    def _say_what_was_lost(self) -> None:
        missing = max(self.total - self.delivered, self.undecodable)
        if missing > 0:
            log.warning("warning: %s: %d of %d frames could not be decoded (a damaged file?); the others were read",
                        self.name, missing, max(self.total, self.delivered + missing))

    def _wait_until(self, stamp: float) -> None:
        """--realtime: deliver the frame when a camera would have (the stop flag ends the wait)."""
        if self._clock is None:
            self._clock = (time.monotonic(), stamp)
        delay = self._clock[0] + (stamp - self._clock[1]) - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)

    def _reopen(self) -> bool:
        self.cap.release()
        self.cap = self._open()
        return self.cap.isOpened() and self.cap.grab()

    def close(self) -> None:
        self.cap.release()


def video_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"))
