"""What every source yields, and how it says it cannot go on.

A Frame is the picture as greyscale (H, W) or RGB (H, W, 3) uint8, or an error message for a file
that could not be read. OpenCV's BGR is turned into RGB or grey at the edge, in the source that
read it, so nothing downstream ever sees BGR.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator

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


class Source:
    live = False  # live sources get smoothing and stall detection
    stop = threading.Event()  # set by classify-cam on SIGTERM / Ctrl-C: every wait inside a source ends early

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def cv_message(exc: Exception) -> str:
    """OpenCV's error text without its 'OpenCV(5.0.0) /path/file.cpp:123: error: (-215:...)' prefix."""
    text = " ".join(str(exc).split())
    if " error: " in text:
        text = text.split(" error: ", 1)[1]
    return text.strip()
