"""The --config file: settings saved from the web page, read at start; flags on the command line win.

JSON {"roi": [x, y, w, h], "background": "PATH", "threshold": 0.3, "settle": 0.5, "token": "..."}. Reading it needs nothing but the
standard library, so a run without --serve never imports the web server.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path


class ConfigError(ValueError):
    """A --config file that cannot be used: a set-up error (exit 2)."""


def read_config(path: Path) -> dict:
    """The settings as a dict ({} for a file not made yet); ConfigError naming the file and what is wrong with it."""
    path = Path(path)
    if not os.path.lexists(path):
        return {}
    if not path.is_file():
        raise ConfigError(f"--config {path}: not a file (a folder, a broken link or a link loop)")
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ConfigError(f"--config {path}: {exc if not isinstance(exc, RecursionError) else 'nested too deep'}") \
            from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected a JSON object")
    if values.get("roi") is not None and not valid_roi(values["roi"]):
        raise ConfigError(f"--config {path}: roi must be [x, y, width, height] in whole pixels")
    for key, (low, high) in LIMITS.items():
        value = values.get(key)
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and low <= value <= high):
            raise ConfigError(f"--config {path}: {key} must be a number from {low} to {high}, not {value!r}")
    for key in ("background", "token"):
        if values.get(key) is not None and not (isinstance(values[key], str) and values[key].strip()):
            raise ConfigError(f"--config {path}: {key} must be a non-empty string, not {values[key]!r}")
    return values


LIMITS = {"threshold": (0.0, 1.0), "settle": (0.0, 60.0)}  # the numbers the page may set, and their range


def valid_roi(roi) -> bool:
    """[x, y, width, height]: four whole numbers, width and height positive."""
    return (isinstance(roi, list) and len(roi) == 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in roi)
            and roi[2] > 0 and roi[3] > 0)


class ConfigFile:
    """The settings of one run, and the file they are saved to (None: kept for this run only)."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.values = read_config(self.path) if self.path else {}
        self.lock = threading.Lock()

    def set(self, **values) -> None:
        """Change settings and save them whole: a temporary file beside the real one, then a rename.

        The real file is written where a symlink points, with the mode it had, never readable by others
        while it holds the token (0600 when new). The temporary file is 0600 from its first byte."""
        with self.lock:
            self.values.update(values)
            if not self.path:
                return
            target = Path(os.path.realpath(self.path))
            mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else 0o600
            if self.values.get("token"):
                mode &= 0o700
            tmp = target.with_name(f".{target.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(json.dumps(self.values, indent=2) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, mode)
                os.replace(tmp, target)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
