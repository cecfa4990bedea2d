"""What classify-cam writes: the JSON-lines log (never half a line) and the --dump-input pictures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class OutputError(OSError):
    """A write that failed (a full disk, a vanished USB stick); the message says what and where."""


class JsonLog:
    """Append one JSON object per line; a failed write leaves the file ending in a whole line.

    Each record is one os.write of its whole line on an O_APPEND descriptor (no Python buffer to
    flush half of). If the write fails or is short (disk full), the file is cut back to where the
    line began and OutputError says so. A file that does not end in a newline (an older program's
    crash) gets one first, so the first new record never joins a fragment.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot open --output {self.path}: {exc.strerror or exc}") from None
        self.records = 0
        size = os.fstat(self.fd).st_size
        if size and not self._ends_in_newline(size):
            self._append(b"\n")

    def _ends_in_newline(self, size: int) -> bool:
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            return f.read(1) == b"\n"

    def _append(self, data: bytes) -> None:
        start = os.fstat(self.fd).st_size
        try:
            written = os.write(self.fd, data)
            while written < len(data):  # a short write: the disk filled up part-way
                more = os.write(self.fd, data[written:])
                if more == 0:
                    raise OSError(28, "No space left on device")
                written += more
        except OSError as exc:
            try:
                os.ftruncate(self.fd, start)  # back to the last whole line
            except OSError:
                pass
            raise OutputError(f"cannot write --output {self.path}: {exc.strerror or exc} "
                              f"(after {self.records} records; the file ends in a whole line)") from None

    def write(self, record: dict) -> None:
        self._append((json.dumps(record) + "\n").encode("utf-8"))
        self.records += 1

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def dump_name(index: int, source: str, label: str) -> str:
    """A file name for what the model saw: index, the source's stem, the label (no '/' or spaces)."""
    stem = Path(source).stem if "/" in source or "." in source else source.replace(":", "")
    return f"{index:06d}_{stem}_{label.replace('/', '-').replace(' ', '_')}.png"


def dump_input(folder: Path, index: int, source: str, label: str, x: np.ndarray) -> None:
    """Write the 28x28 model input as a PNG; OutputError if it cannot be written.

    Encoded in memory and written by Python, so any file name the file system takes works (a
    name that is not UTF-8, from a FAT USB stick, crashed cv2.imwrite).
    """
    import cv2

    ok, png = cv2.imencode(".png", np.round(x[..., 0] * 255).astype(np.uint8))
    path = Path(folder) / dump_name(index, source, label)
    try:
        if not ok:
            raise OSError("PNG encoding failed")
        with open(path, "wb") as f:
            f.write(png.tobytes())
    except OSError as exc:
        try:
            path.unlink(missing_ok=True)  # no empty or partial PNG left behind
        except OSError:
            pass
        raise OutputError(f"cannot write --dump-input {path}: {exc.strerror or exc}") from None
