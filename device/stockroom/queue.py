"""Events waiting for the broker: a folder on disk, one file per event, oldest first, one process at a time.

Each event is written whole (a temporary file, fsync, rename) before anything is sent, and its
file is deleted only when the broker has accepted it. The folder is locked (flock on `.lock`) for
as long as a classify-cam uses it: a second run given the same folder (the same --queue, two units
sharing one StateDirectory) is refused at set-up instead of overwriting the first one's events.
The order of the waiting files is read once at start and kept in memory, so taking the oldest costs
the same with 30,000 waiting as with one. A file that cannot be read or is not an event is moved
aside to `bad/` with a warning, never retried forever, never deleted.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
from collections import deque
from pathlib import Path

log = logging.getLogger("classify-cam")
NAME = re.compile(r"[0-9]{12}\.json", re.ASCII)  # a queued event's file: its sequence number


class QueueError(OSError):
    """The queue folder cannot be used (not writable, in use, a damaged tally): a set-up error (exit 2)."""


def write_whole(path: Path, data: bytes) -> None:
    """Write a file so that it is either all there or not there at all (a power cut, a full disk in between)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


class Queue:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)  # unbuffered: a full
            # disk can refuse the pid below, and nothing is left to flush (and fail) at close
        except OSError as exc:
            raise QueueError(f"cannot use the queue folder {self.folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(self._lock, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._lock)
            raise QueueError(f"the queue folder {self.folder} is in use by another classify-cam (pid {other}): give "
                             "each run its own --queue or --device-id") from None
        try:  # who holds it, for the message a second run gets (a full disk may refuse even this)
            os.ftruncate(self._lock, 0)
            os.pwrite(self._lock, str(os.getpid()).encode(), 0)
        except OSError:
            pass
        try:  # can events be written here at all? Found now, not at the first garment
            write_whole(self.folder / ".probe", b"")
            (self.folder / ".probe").unlink()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                self.close()
                raise QueueError(f"cannot write the queue folder {self.folder}: {exc.strerror or exc}") from None
            log.warning("warning: the queue folder's disk is full (%s): events are sent from memory until it has "
                        "room", self.folder)
        for stale in self.folder.glob("*.json.tmp"):  # our write cut short by a power cut: never renamed, never sent
            if NAME.fullmatch(stale.name[:-4]) or stale.name == "tally.json.tmp":
                stale.unlink(missing_ok=True)
        self.waiting = deque(sorted(int(p.stem) for p in self.folder.glob("*.json") if NAME.fullmatch(p.name)))
        self.next = self.waiting[-1] + 1 if self.waiting else 0

    def path(self, number: int) -> Path:
        return self.folder / f"{number:012d}.json"

    def put(self, event: dict) -> None:
        """On disk, whole, or OSError (the caller keeps the event until it can be written)."""
        number = self.next
        write_whole(self.path(number), json.dumps(event).encode())
        self.next += 1
        self.waiting.append(number)

    def oldest(self) -> tuple[Path, bytes] | None:
        """The oldest waiting event (path, payload); a file that is not an event is moved aside first."""
        while self.waiting:
            path = self.path(self.waiting[0])
            try:
                payload = path.read_bytes()
                if not isinstance(json.loads(payload), dict):
                    raise ValueError("not a JSON object")
                return path, payload
            except FileNotFoundError:  # removed by hand: nothing to send
                self.waiting.popleft()
            except (OSError, ValueError, RecursionError) as exc:
                self.set_aside(path, exc)
        return None

    def set_aside(self, path: Path, why) -> None:
        self.waiting.popleft()
        bad = self.folder / "bad"
        try:
            bad.mkdir(exist_ok=True)
            os.replace(path, bad / path.name)
            log.warning("warning: queued event %s cannot be read (%s): moved to %s", path.name, why, bad)
        except OSError as exc:
            log.warning("warning: queued event %s cannot be read (%s) nor moved aside (%s): skipped", path.name,
                        why, exc.strerror or exc)

    def done(self, path: Path) -> None:
        """The broker accepted it: off the disk."""
        if self.waiting and self.path(self.waiting[0]) == path:
            self.waiting.popleft()
        path.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self.waiting)

    def tally(self) -> dict:
        """The counts per label kept beside the queue (tally.json), so a restart goes on counting."""
        path = self.folder / "tally.json"
        if not path.exists():
            return {}
        if not path.is_file():
            raise QueueError(f"{path} is not a file: remove it (the count starts again)")
        try:
            tally = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise QueueError(f"{path} is damaged ({type(exc).__name__}): fix it or remove it (the count starts "
                             "again)") from None
        if not isinstance(tally, dict) or not all(isinstance(k, str) and isinstance(v, int) and
                                                  not isinstance(v, bool) and v >= 0 for k, v in tally.items()):
            raise QueueError(f"{path} is damaged (not label -> count): fix it or remove it (the count starts again)")
        return tally

    def keep_tally(self, tally: dict) -> None:
        write_whole(self.folder / "tally.json", json.dumps(tally, sort_keys=True).encode())

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # the lock goes with the descriptor
            self._lock = None
