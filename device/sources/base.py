"""What every source yields, and how it says it cannot go on.

A Frame is the picture as greyscale (H, W) or RGB (H, W, 3) uint8, or an error message for a file
that could not be read. OpenCV's BGR is turned into RGB or grey at the edge, in the source that
read it, so nothing downstream ever sees BGR.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import numpy as np


class SourceError(RuntimeError):
    """The source does not exist or cannot be opened (a set-up error: exit code 2)."""


class CameraLost(RuntimeError):
    """A live camera stopped delivering frames and did not come back in time."""


@dataclass
class Frame:
    source: str  # file path, or camera id
    image: np.ndarray | None  # greyscale (H, W) or RGB (H, W, 3) uint8; None with an error
    capture_ms: float
    error: str | None = None
    t: float = 0.0  # the source's own time, seconds since 1970: a camera's capture time, a video's timestamp


log = logging.getLogger("classify-cam")


class Source:
    live = False  # live sources get smoothing and stall detection
    stop = threading.Event()  # set by classify-cam on SIGTERM / Ctrl-C: every wait inside a source ends early
    name = ""  # what records, logs and the page call it: never a password (printable())
    timeout = 10.0  # --camera-timeout: seconds a live source may go without a fresh frame

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def recover(self, reopen: Callable[[], bool]) -> bool:
        """The one stall rule of every live source (USB, network and Pi cameras): reopen with backoff
        (0.1 s doubling to 2 s) until reopen() gives a frame (True); False when asked to stop meanwhile;
        CameraLost after `timeout` seconds without a fresh frame."""
        deadline, delay = time.monotonic() + self.timeout, 0.1
        while time.monotonic() < deadline:
            log.warning("%s: no fresh frame; reopening in %.1f s", self.name, delay)
            if self.stop.wait(delay):  # SIGTERM ends the wait at once (systemctl stop never hangs)
                return False
            if reopen():
                return True
            if self.stop.is_set():
                return False
            delay = min(delay * 2, 2.0)
        raise CameraLost(f"{self.name} delivered no fresh frame for {self.timeout:g} s; giving up")


class Stale:
    """The same picture over and over is a frozen camera, not a still table: REPEATS identical samples in a row."""

    REPEATS = 30

    def __init__(self):
        self.previous, self.repeats = None, 0

    def __call__(self, image: np.ndarray) -> bool:
        sample = image[::16, ::16].copy()
        same = self.previous is not None and np.array_equal(sample, self.previous)
        self.previous, self.repeats = sample, self.repeats + 1 if same else 0
        return self.repeats >= self.REPEATS

    def reset(self) -> None:
        self.previous, self.repeats = None, 0


def printable(spec) -> str:
    """A --source as it may be printed, logged, published and shown: a URL's user name and password removed
    (http://user:secret@cam/stream -> http://cam/stream). The one place a source becomes a name."""
    text = str(spec)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        if parts.username is None and parts.password is None:
            return text
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    except ValueError:  # a URL too broken to parse: keep only its scheme
        return text.split("://", 1)[0] + "://(unparsable address)"


def cv_message(exc: Exception) -> str:
    """OpenCV's error text without its 'OpenCV(5.0.0) /path/file.cpp:123: error: (-215:...)' prefix."""
    text = " ".join(str(exc).split())
    if " error: " in text:
        text = text.split(" error: ", 1)[1]
    return text.strip()
