"""Stockroom mode: frames in, one `placed` and one `removed` record per garment out.

A fixed camera looks at a table. Each frame is compared, on a small grey copy, with the empty
table (a --background picture, or one learnt from the first frames and kept up to date while the
table stays empty and still) and with the frame before:
- occupied: enough of the table differs from the empty one (after evening out a change of light
  over the whole table, so light alone is never an item);
- moving: enough of the picture changed since the frame before.
Nothing is classified while anything moves. Once something has stood still on the table for
`settle` seconds, the still frames are classified (mean scores) and one `placed` record is
written; when the table is empty and still again, one `removed` record with the dwell time. An
item swapped for another without the table emptying is noticed when the scene settles again
looking different from the placed item: a `removed`, then a new `placed`. A hand passing, or light
changing, never settles into an item. While the table is empty and still no inference runs.

Times are the source's own (Frame.t): a video file's timestamps, a camera's capture time.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import cv2
import numpy as np

from device import classify
from device.pipeline import iso
from device.preprocess import crop, prepare, shrink, to_grey
from device.spec import UNKNOWN

log = logging.getLogger("classify-cam")
SMALL = 160  # pixels: the longest side of the copy motion and presence are judged on
LEARN_S = 0.5  # seconds of the empty scene that make the background, without --background
MAX_STILL_FRAMES = 8  # still frames classified for one item (evenly spread), and kept for the best photo
FOLLOW_FULL = 5  # empty, still frames between updates of the full-size background


@dataclass
class EventSettings:
    settle: float = 0.5  # seconds something must stand still before it is classified
    occupied: float = 0.02  # share of the table that must differ from the empty one for "something is there"
    moving: float = 0.004  # share of the picture that must change between frames for "it moves"
    changed: float = 0.25  # share of the item's outline that must differ for "another item" after a swap
    min_diff: int = 18  # grey levels: the least difference that counts (above the sensor's noise)


@dataclass
class Item:
    number: int
    id: str
    placed_t: float
    label: str
    look: np.ndarray  # the small grey picture when it was placed
    mask: np.ndarray  # where it differed from the empty table


@dataclass
class Tracker:
    """The state machine. feed(frame) returns the events that frame completed (usually none)."""

    model: object  # device.model.Model
    device: str
    threshold: float
    top_k: int = 3
    roi: tuple | None = None
    background: np.ndarray | None = None  # a picture of the empty table (full size)
    settings: EventSettings = field(default_factory=EventSettings)
    keep_photo: bool = False  # keep the sharpest still frame of each item (for --save-items)

    def __post_init__(self):
        self.bg_small = None if self.background is None else self.small(self.background)
        self.learning = [] if self.background is None else None  # frames of the empty scene, until LEARN_S
        self.learn_from = None
        self.previous = None
        self.still_since = None
        self.still = []  # (t, frame) while still and occupied
        self.item: Item | None = None
        self.items = 0
        self.tally = Counter()
        self.inferences = 0
        self.empty_frames = 0
        self.last_input = None
        self.photo = self.photo_input = None  # with keep_photo: the last placed item's (for --save-items)
        self.learnt_t = None  # when the table picture was learnt from this run's first frames (no --background)
        self.healed = 0  # times the table picture was found holding something that has gone, and re-learnt
        if self.background is not None:
            self.background = to_grey(self.background)

    @property
    def busy(self) -> bool:
        """Something lies or moves on the table (or it is still being learnt): not the moment to take its picture."""
        return self.bg_small is None or self.item is not None or bool(self.still) or self.still_since is None

    def apply(self, roi=None, background=None) -> None:
        """A new region (the table picture cut again) or a new table picture, from the next frame on; an item on
        the table is judged afresh against it."""
        if roi is not None:
            self.roi = roi
        if background is not None:
            self.background = to_grey(background)
        if self.background is not None:
            self.bg_small, self.learning = self.small(self.background), None
        else:
            self.learning, self.learn_from = [], None  # still learning: start again on the new region
        self.previous, self.still_since, self.still = None, None, []

    # -- the small picture ------------------------------------------------------------------------
    def small(self, image: np.ndarray) -> np.ndarray:
        grey = shrink(to_grey(crop(image, self.roi)), SMALL)
        return cv2.GaussianBlur(grey, (5, 5), 0).astype(np.int16)

    def differs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.abs(a - b) > self.settings.min_diff

    def against_empty(self, small: np.ndarray) -> np.ndarray:
        """Where the frame differs from the empty table, with a change of light over the table evened out."""
        bg = self.bg_small
        gain = (np.median(bg) + 1) / (np.median(small) + 1)  # the table is most of the picture
        return self.differs(np.clip(small * gain, 0, 255), bg)

    # -- one frame --------------------------------------------------------------------------------
    def feed(self, frame) -> list[dict]:
        small = self.small(frame.image)
        moving = self.previous is not None and self.differs(small, self.previous).mean() > self.settings.moving
        self.previous = small
        if self.bg_small is None:  # learning the empty scene: the first LEARN_S seconds
            if moving:
                self.learning, self.learn_from = [], None
                return []
            self.learn_from = frame.t if self.learn_from is None else self.learn_from
            self.learning.append(frame.image)
            if frame.t - self.learn_from >= LEARN_S and len(self.learning) >= 3:
                self.background = np.median(np.stack([to_grey(f) for f in self.learning]), axis=0).astype(np.uint8)
                self.bg_small = self.small(self.background)
                self.learning, self.learnt_t = None, frame.t
            return []
        mask = self.against_empty(small)
        occupied = mask.mean() > self.settings.occupied
        if moving:
            self.still_since, self.still = None, []
            return []
        self.still_since = frame.t if self.still_since is None else self.still_since
        if not occupied:
            events = self.end_item(frame.t) if self.item else []
            self.follow_the_empty_table(frame.image)
            return events
        self.still.append((frame.t, frame.image))
        if frame.t - self.still_since < self.settings.settle:
            return []
        if self.item is not None:
            if not self.is_another(small, mask):
                self.still = self.still[-1:]
                return []
            events = self.end_item(frame.t)
        elif self.is_ghost(small, mask):
            return self.heal(frame, small)
        else:
            events = []
        return events + [self.place(frame, small, mask)]

    def is_ghost(self, small: np.ndarray, mask: np.ndarray) -> bool:
        """Is what differs from the table picture a hole in that picture, not a thing on the table?

        A garment that lay there while the table was learnt (a restart with a garment on it), or a
        --background taken with one on it, leaves a hole when it goes: the frame there looks like the
        rest of the table (by the table's own median and spread), the table picture does not."""
        table = small[~mask]
        if table.size < 0.2 * small.size or not mask.any():
            return False
        middle = np.median(table)
        spread = max(1.4826 * np.median(np.abs(table - middle)), 2.0)  # the table's own noise and texture
        now, before = abs(np.median(small[mask]) - middle), abs(np.median(self.bg_small[mask]) - middle)
        return now <= 3 * spread and before > max(3 * spread, 2 * now)

    def heal(self, frame, small: np.ndarray) -> list[dict]:
        """Re-learn the table from this (empty, still) frame, say so, and, when the hole is a garment that lay on
        the table from the first frames, count it: placed when the table was learnt, removed now."""
        old, self.background, self.bg_small = self.background, to_grey(frame.image), small
        self.healed, self.still = self.healed + 1, []
        start = self.learnt_t is not None and self.items == 0
        log.warning("warning: the table picture held %s that has now gone: re-learnt from the empty table%s",
                    "a garment" if start else "something", " (it is counted as an item)" if start else "")
        if not start:
            return []
        seen = prepare(old, self.roi, self.background)
        self.inferences += 1
        if self.keep_photo:
            self.photo, self.photo_input = old, seen
        placed = self.event(frame, seen, self.model.scores(seen), small, np.zeros_like(small, bool), 1, self.learnt_t)
        return [placed] + self.end_item(frame.t)

    def follow_the_empty_table(self, image: np.ndarray) -> None:
        """Empty and still: the background follows changes of light (no inference runs).

        The small copy every frame; the full-size picture the garment is cut out against every
        FOLLOW_FULL-th frame (it costs a little more, and light changes slowly)."""
        self.bg_small = (0.8 * self.bg_small + 0.2 * self.small(image)).astype(np.int16)
        self.empty_frames += 1
        if self.empty_frames % FOLLOW_FULL == 0:
            grey = to_grey(image).astype(np.float32)
            if self.background.shape == grey.shape:
                self.background = (0.5 * self.background + 0.5 * grey).astype(np.uint8)
        self.still = []

    def is_another(self, small: np.ndarray, mask: np.ndarray) -> bool:
        outline = mask | self.item.mask
        return self.differs(small, self.item.look)[outline].mean() > self.settings.changed if outline.any() else False

    # -- events -----------------------------------------------------------------------------------
    def place(self, frame, small: np.ndarray, mask: np.ndarray) -> dict:
        frames = self.still[:: max(1, len(self.still) // MAX_STILL_FRAMES)][:MAX_STILL_FRAMES]
        inputs = [prepare(image, self.roi, self.background) for _, image in frames]
        scores = np.mean([self.model.scores(x) for x in inputs], axis=0)
        self.inferences += len(frames)
        if self.keep_photo:  # the sharpest still frame, and the input already made from it
            best = max(range(len(frames)), key=lambda i: sharpness(frames[i][1]))
            self.photo, self.photo_input = frames[best][1], inputs[best]
        self.still = self.still[-1:]
        return self.event(frame, inputs[-1], scores, small, mask, len(frames), frame.t)

    def event(self, frame, seen, scores: np.ndarray, small, mask, frames: int, placed_t: float) -> dict:
        """A new item with these scores: its `placed` record, counted in the tally."""
        self.last_input = seen  # for the web page: what the model saw
        top = classify.top_classes(scores, self.top_k)
        labels = self.model.labels
        label = labels[top[0].id] if top[0].score >= self.threshold else UNKNOWN
        number = self.items
        self.items += 1
        self.item = Item(number, f"{self.device}-{compact(placed_t)}-{number}", placed_t, label, small, mask)
        self.tally[label] += 1
        return {"event": "placed", "id": self.item.id, "item": number, "device": self.device, "source": frame.source,
                "time": iso(placed_t), "label": label, "confidence": round(top[0].score, 4),
                "top": [[labels[c.id], round(c.score, 4)] for c in top], "frames": frames, "model": self.model.id}

    def end_item(self, t: float) -> list[dict]:
        item, self.item = self.item, None
        return [{"event": "removed", "id": item.id, "item": item.number, "device": self.device, "time": iso(t),
                 "dwell_s": round(t - item.placed_t, 3)}]

def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian: the sharpest still frame makes the best photo of an item."""
    return float(cv2.Laplacian(to_grey(image), cv2.CV_32F).var())


def compact(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
