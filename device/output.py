"""What classify-cam writes and shows: the JSON-lines log (never half a line), pictures (--dump-input, item
photos), the per-record lines on stdout and the --show window."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from device.spec import picture


class OutputError(OSError):
    """A write that failed (a full disk, a vanished USB stick); the message says what and where."""


class Outputs:
    """Where each record goes (the log, the screen, the dump folder), with one rule for a write that fails.

    A record per frame: the run stops (exit 1, one line), since nothing else keeps the record.
    Stockroom mode: the event is already on the broker's queue and the page, and the next garment
    matters more than this log line: a warning, counted in the summary, and the run goes on.
    """

    def __init__(self, log, screen, dump_folder: Path | None, keep_going: bool):
        self.log, self.screen, self.dump_folder, self.keep_going = log, screen, dump_folder, keep_going
        self.failed, self.first_failure = 0, ""
        self.closed = False  # after close() nothing more may be written (a correction arriving late is refused)

    def write(self, record: dict, x, index: int, line: str) -> None:
        try:
            if self.log:
                self.log.write(record)  # one whole line or none
            if self.dump_folder and x is not None:
                dump_input(self.dump_folder, index, record.get("source", ""), record.get("label", "unknown"), x)
        except OutputError as exc:
            if not self.keep_going:
                raise
            if not self.failed:
                self.first_failure = str(exc)
                print(f"classify-cam: warning: {exc}; stockroom mode goes on (events still reach the screen, the "
                      "page and any --mqtt broker)", file=sys.stderr)
            self.failed += 1
        self.screen.line(line)

    def summary(self) -> str:
        return f"; {self.failed} records not written ({self.first_failure})" if self.failed else ""

    def close(self) -> None:
        self.closed = True
        if self.log:
            self.log.close()


class JsonLog:
    """Append one JSON object per line; a failed write leaves the file ending in a whole line.

    Each record is one os.write of its whole line on an O_APPEND descriptor (no Python buffer to
    flush half of). If the write fails or is short (disk full), the file is cut back to where the
    line began and OutputError says so. A file that does not end in a newline (an older program's
    crash) gets one first, so the first new record never joins a fragment.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:  # non-blocking to open: a FIFO with no reader is an error now, not a hang SIGTERM cannot end
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
            os.set_blocking(self.fd, True)
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


def write_picture(path: Path, image: np.ndarray) -> None:
    """Encode a grey, RGB (turned to BGR here) picture by the path's suffix and write it; OSError on failure.

    Encoded in memory and written by Python, so any file name the file system takes works (a name
    that is not UTF-8, from a FAT USB stick, crashed cv2.imwrite). Written whole or not at all: a
    temporary file beside it, then a rename, so a full disk, a SIGTERM or a power cut never leaves an
    empty or partial picture under the real name (a background.png that a config names, say).
    """
    import cv2

    path = Path(path)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 and image.shape[2] == 3 else image
    ok, data = cv2.imencode(path.suffix, bgr)
    if not ok:
        raise OSError(f"{path.suffix} encoding failed")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def writable_folder(folder: Path, flag: str) -> None:
    """Make the folder and write a file into it, or OutputError naming the flag: found at set-up."""
    probe = Path(folder) / ".classify-cam-probe"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write {flag} {folder}: {exc.strerror or exc}") from None


def dump_input(folder: Path, index: int, source: str, label: str, x: np.ndarray) -> None:
    """Write the 28x28 model input as a PNG; OutputError if it cannot be written."""
    path = Path(folder) / dump_name(index, source, label)
    try:
        write_picture(path, picture(x))
    except OSError as exc:
        raise OutputError(f"cannot write --dump-input {path}: {exc.strerror or exc}") from None


class Screen:
    """The per-frame lines on stdout. A reader that goes away (`| head -1`) stops them, not the run."""

    def __init__(self, quiet: bool):
        self.on = not quiet

    def line(self, text: str) -> None:
        if not self.on:
            return
        try:
            print(text, flush=True)
        except (BrokenPipeError, ValueError, OSError):
            self.on = False
            try:  # nothing more reaches stdout, and Python's exit flush must not fail either
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass


class Viewer:
    """An annotated preview window; turns itself off (once, with a message) where there is no display."""

    def __init__(self):
        self.on = True

    def show(self, image, record, x) -> None:
        if not self.on or image is None:
            return
        import cv2

        try:
            bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            text = f"{record['label']} {record['confidence']:.2f}" if "label" in record else record.get("error", "")
            cv2.putText(bgr, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 255, 0), 2)
            if x is not None:  # what the model saw, enlarged, in the corner
                seen = cv2.resize(picture(x), (112, 112), interpolation=cv2.INTER_NEAREST)
                bgr[-112:, -112:] = cv2.cvtColor(seen, cv2.COLOR_GRAY2BGR)[: bgr.shape[0], : bgr.shape[1]]
            cv2.imshow("classify-cam", bgr)
            cv2.waitKey(1)
        except cv2.error as exc:
            print(f"classify-cam: --show needs a display and OpenCV with GUI support ({str(exc).strip()[:80]}); "
                  "continuing without a window", file=sys.stderr)
            self.on = False
