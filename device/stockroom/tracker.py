"""Stockroom mode: frames in, one `placed` and one `removed` record per garment out.

A fixed camera looks at a table. Each frame is compared, on a small copy (device/stockroom/scene.py:
colour distance against the table's own noise), with the empty table (a --background picture, or
one learnt from the first frames, only ever from frames known to be empty), with the frame before
and with the first frame of the present still spell:
- occupied: a part of the table differs from the empty one (a change of light over the whole table
  evened out, so light alone is never an item);
- moving: enough of the picture changed since the frame before, or since the still spell began (a
  garment taken away too slowly to show between two frames still changes the scene: a changed scene
  needs a new settle).
Nothing is classified while anything moves. Once something has stood still on the table for
`settle` seconds with nothing reaching in from the table's edge (a hand resting in view waits),
the item's picture is made as a still photo's (device/stockroom/picture.py) and one `placed`
record is written; when the table is empty and still again, one `removed` record with the dwell
time. An item swapped for another without the table emptying is noticed when the scene settles
again looking different: a `removed`, then a new `placed`. Before anything new is placed, the parts
of the difference that are holes in the table picture (ghosts: a garment that lay there when the
table was learnt) are healed with a warning, never placed. While the table is empty and still no
inference runs.

Times are the source's own (Frame.t): a video file's timestamps, a camera's capture time.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from device import classify
from device.pipeline import iso
from device.spec import UNKNOWN
from device.stockroom.lying import Item, changed, lies, moved, unclipped
from device.stockroom.picture import item_inputs
from device.stockroom.scene import MIN_DIST, Table, channels_of, distance, grown, small_copy, touching_edge

log = logging.getLogger("classify-cam")
LEARN_S = 0.5  # seconds of the empty scene that make the background, without --background
MAX_STILL_FRAMES = 8  # still frames classified for one item (evenly spread); the sharpest makes its picture
KEEP_FRAMES = 16  # still frames kept while waiting for the settle (thinned evenly beyond this)
RESTLESS_S = 10.0  # seconds without a still frame before a warning says so
HEAL_SAY = 0.05  # share of the table: healing more than this as light is said
EDGE_MAX = 60.0  # seconds a still scene waits while something reaches in from the table's edge (a hand): only
# a thing lying across the region's edge that long is placed


@dataclass
class EventSettings:
    settle: float = 0.5  # seconds something must stand still before it is classified
    occupied: float = 0.004  # share of the table that must differ from the empty one for "something is there"
    moving: float = 0.004  # share of the picture that must change for "it moves"
    changed: float = 0.25  # share of the item's outline that must differ for "another item" after a swap


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
        self.table = None if self.background is None else Table(small_copy(self.background, self.roi))
        self.learning = [] if self.background is None else None  # (small, frame) of the empty scene, until LEARN_S
        self.learn_from = None
        self.previous = self.anchor = self.anchor_mask = None  # the frame before; the still spell's first
        self.still_since = None
        self.last = None  # (t, small copy) of the frame before, as it came
        self.still = []  # (t, frame) while still and occupied
        self.on: list[Item] = []  # the items lying on the table, the last placed last
        self.items = 0
        self.tally = Counter()
        self.inferences = 0
        self.empty_frames = 0
        self.last_input = None
        self.photo = self.photo_input = None  # with keep_photo: the last placed item's (for --save-items)
        self.first = []  # with learnt_t: the first still frames (those the table was learnt from)
        self.started, self.said = None, False  # since when nothing held still; whether that was said
        self.learnt_t = None  # when the table picture was learnt from this run's first frames (no --background)
        self.healed = 0  # times the table picture was found holding something that has gone, and healed

    @property
    def item(self) -> Item | None:
        return self.on[-1] if self.on else None

    @property
    def busy(self) -> bool:
        """Something lies or moves on the table (or it is still being learnt): not the moment to take its picture."""
        return self.table is None or self.item is not None or bool(self.still) or self.still_since is None

    def apply(self, roi=None, background=None) -> None:
        """A new region (the table picture cut again) or a new table picture, from the next frame on; an item on
        the table is judged afresh against it."""
        if roi is not None:
            self.roi = roi
        if background is not None:
            self.background = background
        if self.background is not None:
            self.table, self.learning = Table(small_copy(self.background, self.roi)), None
        else:
            self.table, self.learning, self.learn_from = None, [], None  # still learning: again on the new region
        self.previous, self.anchor, self.still_since, self.still = None, None, None, []

    # -- one frame --------------------------------------------------------------------------------
    def feed(self, frame) -> list[dict]:
        if self.background is not None and channels_of(self.background, frame.image) is not self.background:
            self.apply(background=channels_of(self.background, frame.image))  # a grey table for a colour camera
        small = small_copy(frame.image, self.roi)
        frozen = (self.last is not None and np.array_equal(small, self.last[1])  # a stalled stream repeats a frame
                  and ((small > 5) & (small < 250)).mean() > 0.1)  # (a table clipped white repeats too: no stall)
        dt, self.last = (frame.t - self.last[0]) if self.last else 0.0, (frame.t, small)
        if frozen:  # no evidence of stillness: the still (or learning) spell's clock stops
            self.still_since = None if self.still_since is None else self.still_since + dt
            self.learn_from = None if self.learn_from is None else self.learn_from + dt
            return []
        if self.table is None:
            return self.learn(frame, small)
        if not self.table.fits(small):  # a source that changed its size: learn or take the table again
            self.apply()
            return []
        evened = self.table.even(small)
        s = self.settings
        mask, d = self.table.mask(evened)
        moving = self.previous is not None and self.table.changed(evened, self.previous) > s.moving
        drifted = self.anchor is not None and (  # since the still spell began: the picture, or what lies there
            self.table.changed(evened, self.anchor) > s.moving
            or (mask ^ self.anchor_mask).mean() > max(s.moving, 0.05 * self.anchor_mask.mean()))
        self.previous = evened
        if moving or drifted:
            self.still_since, self.anchor, self.anchor_mask, self.still = None, evened, mask, []
            self.restless(frame.t, "nothing can be placed")
            return []
        self.started, self.said = frame.t, False
        if self.still_since is None:
            self.still_since, self.anchor, self.anchor_mask = frame.t, evened, mask
        occupied = mask.mean() > s.occupied
        self.table.follow(evened, mask, d, empty=not occupied and self.item is None)
        if not occupied:
            self.still = []
            self.empty_frames += 1
            return self.end_items(frame.t)
        self.keep(frame)
        if frame.t - self.still_since < s.settle:
            return []
        if self.item is not None and not changed(self.item, self.table, evened, mask, s.changed):
            self.still = self.still[-1:]
            return []
        events = []
        table, ghost = self.table.table_like(evened, mask)
        if table.any():  # no thing there: the table picture healed where it is wrong, never an item
            events += self.heal(frame, evened, table, ghost)
            mask = mask & ~table
            if mask.mean() <= s.occupied:
                self.still = []
                return events + self.end_items(frame.t)
            if self.item is not None and not changed(self.item, self.table, evened, mask, s.changed):
                return events
        if touching_edge(mask) and frame.t - self.still_since < s.settle + EDGE_MAX:
            return events  # something reaches in from the edge (a hand): nothing is placed until it has gone
        if len(self.on) == 1 and moved(self.item, evened, mask, self.last[1], self.table.threshold):
            if unclipped(self.last[1], mask).all():  # straightened or nudged: the same garment, its picture kept
                self.item.look, self.item.mask = evened, mask  # (not one the exposure clipped)
            self.still = self.still[-1:]
            return events
        stay = [item for item in self.on if lies(item, self.table, evened, s.changed)]  # one laid beside another
        events += self.end_items(frame.t, [item for item in self.on if item not in stay])
        if stay:
            mask = mask & ~grown(np.any([item.mask for item in stay], axis=0))
            if mask.mean() <= s.occupied:
                self.still = self.still[-1:]
                return events
        return events + [self.place(frame, evened, mask)]

    def learn(self, frame, small) -> list[dict]:
        """The first LEARN_S seconds of a still scene (no --background): the empty table. Motion starts again."""
        self.started = frame.t if self.started is None else self.started
        if self.learning:  # a change of light over the whole picture (flicker, exposure) evened out, as detection does
            small = Table(self.learning[0][0]).even(small)
        if self.learning and (distance(small, self.learning[-1][0]) > 2 * MIN_DIST).mean() > self.settings.moving:
            self.learning, self.learn_from = [], None
            self.restless(frame.t, "the empty table is not learnt yet")
            return []
        self.learn_from = frame.t if self.learn_from is None else self.learn_from
        self.learning.append((small, frame.image))
        if frame.t - self.learn_from >= LEARN_S and len(self.learning) >= 3:
            self.table = Table.learnt([x for x, _ in self.learning])
            self.background = self.learning[len(self.learning) // 2][1]
            step = max(1, -(-len(self.learning) // MAX_STILL_FRAMES))
            self.first = [image for _, image in self.learning[::step]][:MAX_STILL_FRAMES]  # an item lying there
            self.learning, self.learnt_t = None, frame.t
        return []

    def restless(self, t: float, so: str) -> None:
        """Said once when nothing has held still for RESTLESS_S seconds (flickering light, a shaking camera)."""
        self.started = t if self.started is None else self.started
        if t - self.started >= RESTLESS_S and not self.said:
            self.said = True
            log.warning("warning: the picture has not held still for %.0f s (flickering light? a moving camera?): %s",
                        t - self.started, so)

    def keep(self, frame) -> None:
        self.still.append((frame.t, frame.image))
        if len(self.still) > KEEP_FRAMES:
            self.still = self.still[::2]

    def heal(self, frame, evened, where, ghost: bool) -> list[dict]:
        """The table picture is wrong where the live table shows no thing: heal it from the live frame. A ghost
        (the picture held something that has gone) is said, and when it is a garment that lay on the table
        from this run's first frames, counted: placed when the table was learnt, removed now."""
        self.table.heal(evened, where)
        if not ghost:  # the table lit otherwise: said when it is a large part of the table
            if where.mean() > HEAL_SAY:
                log.warning("warning: %.0f%% of the table looked like the table lit otherwise: its picture healed "
                            "there (nothing placed)", 100 * where.mean())
            return []
        self.healed += 1
        start = self.learnt_t is not None and self.items == 0 and self.healed == 1
        log.warning("warning: the table picture held %s that has now gone: re-learnt from the empty table%s",
                    "a garment" if start else "something", " (it is counted as an item)" if start else "")
        if not start:
            return []
        inputs, best = item_inputs(self.first, where, self.roi)  # as any item: GrabCut over its still frames
        self.inferences += len(inputs)
        if self.keep_photo:
            self.photo, self.photo_input = self.first[best], inputs[best]
        scores = np.mean([self.model.scores(x) for x in inputs], axis=0)
        placed = self.event(frame, inputs[best], scores, evened, where, len(inputs), self.learnt_t)
        return [placed] + self.end_items(frame.t, [self.item])

    # -- events ---------------------------------------------------------------------------------
    def place(self, frame, evened: np.ndarray, mask: np.ndarray) -> dict:
        frames = self.still[:: max(1, -(-len(self.still) // MAX_STILL_FRAMES))][:MAX_STILL_FRAMES]
        inputs, best = item_inputs([image for _, image in frames], mask, self.roi)
        scores = np.mean([self.model.scores(x) for x in inputs], axis=0)
        self.inferences += len(frames)
        if self.keep_photo:  # the sharpest still frame, and the input made from it
            self.photo, self.photo_input = frames[best][1], inputs[best]
        self.still = self.still[-1:]
        return self.event(frame, inputs[best], scores, evened, mask, len(frames), frame.t)

    def event(self, frame, seen, scores: np.ndarray, look, mask, frames: int, placed_t: float) -> dict:
        """A new item with these scores: its `placed` record, counted in the tally."""
        self.last_input = seen  # for the web page: what the model saw
        top = classify.top_classes(scores, self.top_k)
        labels = self.model.labels
        label = labels[top[0].id] if top[0].score >= self.threshold else UNKNOWN
        number = self.items
        self.items += 1
        self.on.append(Item(number, f"{self.device}-{compact(placed_t)}-{number}", placed_t, label, look, mask))
        self.tally[label] += 1
        return {"event": "placed", "id": self.item.id, "item": number, "device": self.device, "source": frame.source,
                "time": iso(placed_t), "label": label, "confidence": round(top[0].score, 4),
                "top": [[labels[c.id], round(c.score, 4)] for c in top], "frames": frames, "model": self.model.id}

    def end_items(self, t: float, items: list[Item] | None = None) -> list[dict]:
        """`removed` records for these items (all on the table by default), the first placed first."""
        items = list(self.on) if items is None else items
        self.on = [item for item in self.on if item not in items]
        return [{"event": "removed", "id": item.id, "item": item.number, "device": self.device, "time": iso(t),
                 "dwell_s": round(t - item.placed_t, 3)} for item in items]


def compact(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
