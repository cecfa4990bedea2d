"""Frame in, labelled record out: preprocess, infer, smooth, label; and the loop's step for a record per frame.

classify-cam's loop (device/cli.py) hands each frame to a step and writes what it returns: here
FrameStep, one record per frame; in stockroom mode device/stockroom/step.py, an event per placed or
removed item. Both return [(record, model input or None)] and keep `seen` (the latest model input,
for the page) and a `summary()` for the end of the run.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

import cv2
import numpy as np

from device import classify
from device.model import Model
from device.preprocess import prepare
from device.sources.base import cv_message
from device.spec import UNKNOWN


@dataclass
class LabelSettings:
    threshold: float = 0.5
    top_k: int = 3
    smooth: int = 1  # frames averaged for live sources
    roi: tuple | None = None
    background: np.ndarray | None = None
    raw: bool = False  # add the output tensor as stored to each record
    segment: str = "auto"  # auto: GrabCut for still photos, the fast grey cut for video and cameras


@dataclass
class Stats:
    frames: int = 0
    errors: int = 0
    started: float = field(default_factory=time.perf_counter)
    ms: dict = field(default_factory=lambda: {"capture": 0.0, "preprocess": 0.0, "infer": 0.0})
    labels: Counter = field(default_factory=Counter)

    def add(self, record: dict) -> None:
        self.frames += 1
        if "error" in record:
            self.errors += 1
            return
        self.labels[record["label"]] += 1
        for k, v in record["ms"].items():
            self.ms[k] += v

    def summary(self) -> str:
        elapsed = time.perf_counter() - self.started
        done = self.frames - self.errors
        mean = ", ".join(f"{k} {v / done:.2f}" for k, v in self.ms.items()) if done else "-"
        counts = ", ".join(f"{k} {n}" for k, n in self.labels.most_common()) or "-"
        return (f"summary: {self.frames} frames ({self.errors} unreadable) in {elapsed:.1f} s, "
                f"{self.frames / elapsed if elapsed else 0:.1f} fps; mean ms: {mean}; labels: {counts}")


def iso(t: float) -> str:
    """Seconds since 1970 -> ISO 8601 UTC with milliseconds, as every record's "time"."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(time.time())


class Labeller:
    """Runs one frame through preprocess and inference and makes its JSON record."""

    def __init__(self, model: Model, settings: LabelSettings, live: bool):
        self.model, self.settings = model, settings
        self.window = deque(maxlen=max(settings.smooth, 1) if live else 1)
        self.segment = settings.segment if settings.segment != "auto" else ("fast" if live else "grabcut")

    def __call__(self, frame, index: int) -> tuple[dict, np.ndarray | None]:
        record = {"source": frame.source, "frame": index, "time": now_iso()}
        if frame.error is not None:
            record["error"] = frame.error
            return record, None
        t0 = time.perf_counter()
        try:
            x = prepare(frame.image, self.settings.roi, self.settings.background, self.segment)
        except (ValueError, TypeError) as exc:  # e.g. an roi outside the picture, a 1x1 image (check_picture)
            record["error"] = f"cannot preprocess: {exc}"
            return record, None
        except cv2.error as exc:  # should not happen after check_picture; still one record, never a stop
            record["error"] = f"cannot preprocess: {cv_message(exc)}"
            return record, None
        t1 = time.perf_counter()
        raw = self.model.scores(x)
        t2 = time.perf_counter()
        self.window.append(raw)
        score = np.mean(self.window, axis=0) if len(self.window) > 1 else raw
        top = classify.top_classes(score, self.settings.top_k)
        best = top[0]
        labels = self.model.labels
        record.update(
            label=labels[best.id] if best.score >= self.settings.threshold else UNKNOWN,
            confidence=round(best.score, 4),
            top=[[labels[c.id], round(c.score, 4)] for c in top],
            ms={"capture": round(frame.capture_ms, 3), "preprocess": round((t1 - t0) * 1000, 3),
                "infer": round((t2 - t1) * 1000, 3)},
            model=self.model.id,  # a switch on SIGHUP shows in the record
        )
        if self.settings.raw:
            record["raw"] = self.model.raw_output()
        return record, x


class FrameStep:
    """A record per frame (or per image): the loop's step when it is not in stockroom mode."""

    tally = None  # no items are counted
    busy = False  # nothing tells whether a table is empty: the page lets a background be taken

    def __init__(self, model: Model, settings: LabelSettings, live: bool):
        self.labeller = Labeller(model, settings, live)
        self.stats = Stats()
        self.seen = None

    def __call__(self, frame, index: int) -> list[tuple[dict, np.ndarray | None]]:
        record, x = self.labeller(frame, index)
        self.stats.add(record)
        self.seen = x if x is not None else self.seen
        return [(record, x)]

    def apply(self, roi=None, background=None, threshold=None, settle=None) -> None:
        """A region, background or threshold set on the page, from the next frame (settle is for items only)."""
        settings = self.labeller.settings
        settings.roi = roi if roi is not None else settings.roi
        settings.background = background if background is not None else settings.background
        settings.threshold = threshold if threshold is not None else settings.threshold

    def between_items(self) -> bool:
        """A record per frame: every frame boundary is one (device/reload.py)."""
        return True

    def switch(self, model: Model, threshold: float | None) -> None:
        """Another model from the next frame (SIGHUP); the smoothing window starts afresh (other scores)."""
        self.labeller.model = model
        self.labeller.window.clear()
        if threshold is not None:
            self.labeller.settings.threshold = threshold

    def describe(self, record: dict) -> str:
        if "error" in record:
            return f"[{record['frame']}] {record['source']}: ERROR {record['error']}"
        ms = sum(record["ms"].values())
        return (f"[{record['frame']}] {record['source']}: {record['label']} {record['confidence']:.2f}  "
                f"({ms:.1f} ms, {1000 / ms if ms else 0:.0f} fps)")

    def close(self, live_source: bool) -> None:
        pass

    def summary(self) -> str:
        return self.stats.summary()
