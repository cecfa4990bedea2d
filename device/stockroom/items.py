"""The items of this run, newest first, and the one way their record is corrected afterwards: a relabel.

The page lists them (GET /api/items) with today's counts per label (reset from the page, which
is itself a `reset` record), and a person who saw a mistake corrects it (POST
/api/items/<id>/label): the photo moves to the right label folder of the --save-items tree, and a
`relabelled` record (the same id, the new label, `was`) is written and published like any event,
so the tally moves the item from `was` to `label`. A correction of a correction is the same again.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, OrderedDict
from datetime import date, datetime
from pathlib import Path

from device.spec import CLASS_NAMES, UNKNOWN, folder_name

LABELS = (*CLASS_NAMES, UNKNOWN)
KEEP = 2000  # items remembered for the page; older ones drop off the list (their photos stay on disk)
TAIL = 4_000_000  # bytes of the --output log read back at a start: about 2,000 items' events


class Items:
    def __init__(self, save_items: Path | None):
        self.save_items = Path(save_items) if save_items else None
        self.items = OrderedDict()  # id -> the item as the page shows it, oldest first
        # Today's counts, as the page shows them: placed items per label since the later of local midnight and
        # the last reset (a `reset` record); the lifetime tally (retained on the broker) is another thing.
        self.counts, self.day, self.since = Counter(), date.today(), time.time()
        self.counted = set()  # ids in today's counts: a correction moves an item's count only if it is in them

    def today(self) -> dict:
        """{"counts": {label: n}, "since": epoch seconds}: a new local day starts from zero."""
        if date.today() != self.day:
            self.counts, self.day, self.counted = Counter(), date.today(), set()
            self.since = datetime.combine(self.day, datetime.min.time()).timestamp()
        return {"counts": dict(self.counts.most_common()), "since": self.since}

    def reset(self, device: str, now: str) -> dict:
        """The page's "reset today's counts": the `reset` record keeps what they were, and since when."""
        before = self.today()
        self.counts, self.since, self.counted = Counter(), time.time(), set()
        stamp = now.replace("-", "").replace(":", "")
        return {"event": "reset", "id": f"{device}-reset-{stamp}", "device": device, "time": now,
                "counts": before["counts"], "since": datetime.fromtimestamp(before["since"]).astimezone().isoformat()}

    def add(self, event: dict) -> None:
        """Follow the loop's events: a placed item is listed; its removal adds the dwell time."""
        if event["event"] == "placed":
            item = {"id": event["id"], "label": event["label"], "confidence": event["confidence"], "time": event["time"],
                    "model": event.get("model"), "top": event["top"], "dwell_s": None}  # its photo: page() looks
            self.today()
            old = self.items.pop(item["id"], None)  # the same id again (a video file run twice): the new one counts
            if old is not None:
                self.uncount(item["id"], old["label"])
            self.count(item["id"], item["label"])
            self.items[item["id"]] = item
            while len(self.items) > KEEP:
                self.items.popitem(last=False)
        elif event["event"] == "removed" and event["id"] in self.items:
            self.items[event["id"]]["dwell_s"] = event["dwell_s"]

    def count(self, item_id: str, label: str) -> None:
        self.counts[label] += 1
        self.counted.add(item_id)

    def uncount(self, item_id: str, label: str) -> None:
        """Out of today's counts, if it was in them; no label is left at zero."""
        if item_id in self.counted:
            self.counted.discard(item_id)
            self.counts[label] -= 1
            self.counts = +self.counts

    def replay(self, log: Path, device: str) -> int:
        """The items an earlier run left in the --output log (this device's, in the log's last TAIL bytes): after a
        restart the page still lists and corrects them, and today's counts go on from midnight or the last reset.
        Nothing is written or published again: the record holds these events already. Returns the items listed."""
        try:
            with open(log, "rb") as f:
                start = max(f.seek(0, os.SEEK_END) - TAIL, 0)
                f.seek(start)
                lines = f.read().splitlines()[1 if start else 0:]  # from the middle of a line: not that line
        except OSError:
            return 0
        # Today's counts: this day's placed items after the day's last reset, in the log's order (an item's time is
        # its source's clock, a video file's for one, so order, not time, says what came after a reset).
        midnight = since = datetime.combine(date.today(), datetime.min.time()).timestamp()
        for line in lines:
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or event.get("device") != device:
                    continue
                kind, when = event["event"], datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
                if kind == "reset" and midnight <= when <= time.time() + 60:  # a reset from the future is no reset
                    self.counts, self.counted, since = Counter(), set(), when
                elif kind == "placed" and whole(event):
                    self.add(event)
                    self.items[event["id"]]["earlier"] = True  # a run before this one placed it
                    if when < midnight:  # listed, not one of today's
                        self.uncount(event["id"], event["label"])
                elif kind == "removed" and isinstance(event["dwell_s"], (int, float)):
                    self.add(event)
                elif kind == "relabelled" and event["id"] in self.items:
                    self.relabel(event["id"], event["label"], device, event["time"], move=False)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line of another kind or an unreadable one: not the page's business
        if self.items:
            self.since = since
        return len(self.items)

    def page(self, offset: int = 0, limit: int = 50) -> list[dict]:
        newest = list(reversed(self.items.values()))[offset: offset + limit]
        return [{**item, "photo": f"/items/{item['id']}.jpg" if self.photo(item["id"]) else None} for item in newest]

    def photo(self, item_id: str, label: str | None = None) -> Path | None:
        """Where the item's photo is, if it was saved (in its current label's folder)."""
        item = self.items.get(item_id)
        label = label or (item["label"] if item else None)
        if not self.save_items or label is None:
            return None
        path = self.save_items / folder_name(label) / f"{item_id}.jpg"
        return path if path.is_file() else None

    def relabel(self, item_id: str, label: str, device: str, now: str, move: bool = True) -> dict | None:
        """The `relabelled` record for a correction, the photo moved with it; None when the item already has that
        label (nothing to record); KeyError for an item not listed, ValueError for a label that is not one of the
        ten classes or `unknown`."""
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}")
        item = self.items[item_id]
        was = item["label"]
        if label == was:
            return None
        photo = self.photo(item_id, was) if move else None  # a replayed correction: its photo moved then
        if photo is not None:
            target = self.save_items / folder_name(label)
            made = not target.exists()
            target.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(photo, target / photo.name)  # the same file system: never half moved
            except OSError:
                if made:
                    remove_if_empty(target)
                raise
        if self.save_items and move:
            remove_if_empty(self.save_items / folder_name(was))  # an empty label folder stops fashion-train
        item["label"], item["was"] = label, item.get("was", was)  # "was": what the model said first
        self.today()  # a new day starts from zero
        if item_id in self.counted:  # placed today, since the last reset: today's counts follow the correction
            self.uncount(item_id, was)
            self.count(item_id, label)
        return {"event": "relabelled", "id": item_id, "device": device, "time": now, "label": label, "was": was}


def whole(event: dict) -> bool:
    """A placed record as the page needs it (a log line of another version or a damaged one is skipped whole)."""
    return (isinstance(event.get("id"), str) and event.get("label") in LABELS and isinstance(event.get("top"), list)
            and isinstance(event.get("confidence"), (int, float)) and not isinstance(event["confidence"], bool))


def remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only an empty folder goes
    except OSError:
        pass
