"""Frame in, labelled record out: load the model once, then preprocess, infer, smooth, label."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from device import card, classify
from device.preprocess import prepare
from device.runtime import ModelError, Runtime, find_runtime, make_interpreter
from device.sources import cv_message
from device.spec import UNKNOWN


def read_labels(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"labels not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"labels file {path} cannot be read as UTF-8 text ({exc})") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file is empty: {path}")
    return labels


def verify_model_file(model_path: Path) -> None:
    """If the model card beside the model lists its sha256, the file must match it."""
    model_path = Path(model_path)
    try:
        expected = card.expected_sha256(model_path) if model_path.is_file() else None
    except card.CardError as exc:
        raise ModelError(str(exc)) from None
    if expected and card.sha256(model_path) != expected:
        raise ModelError(f"{model_path} does not match the sha256 in its model card: the file is damaged, "
                         "half-copied or not the shipped model")


class Model:
    """The interpreter (built once), its labels, and the checks that make them fit together."""

    def __init__(self, model_path: Path, labels_path: Path, threads: int | None = None,
                 runtime: Runtime | None = None, kernels: str = "default"):
        verify_model_file(model_path)
        self.runtime = runtime or find_runtime()
        self.interpreter = make_interpreter(model_path, threads, self.runtime, kernels)
        self.labels = read_labels(labels_path)
        try:
            classify.check_model(self.interpreter, len(self.labels))
        except ValueError as exc:
            raise ModelError(f"{model_path}: {exc}") from None
        self.path = Path(model_path)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return classify.classify(self.interpreter, x)

    def raw_output(self) -> list:
        """The last inference's output tensor as stored (int8 for the shipped model)."""
        return classify.raw_output(self.interpreter).tolist()


@dataclass
class Settings:
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

    def __init__(self, model: Model, settings: Settings, live: bool):
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
        )
        if self.settings.raw:
            record["raw"] = self.model.raw_output()
        return record, x
