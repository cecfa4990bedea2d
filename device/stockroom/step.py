"""The loop's step in stockroom mode: frames to the tracker, its events to item photos and the MQTT queue.

classify-cam's loop (device/cli.py) hands each frame here and writes what comes back to the log,
the screen and the page, exactly as it does a per-frame record. What only stockroom mode has
happens here, in this order for each event: the item's photo (a photo that cannot be written is a
warning on the event, never a lost event), then the event onto the broker's queue on disk.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from device.output import write_picture
from device.pipeline import now_iso
from device.spec import folder_name, picture
from device.stockroom.items import Items
from device.stockroom.tracker import EventSettings, Tracker

log = logging.getLogger("classify-cam")
DRAIN_S = 10.0  # at the end of a file source: how long to wait for the broker to take the queue


class StockroomStep:
    """One `placed` and one `removed` record per item; returns [(event, model input or None)] per frame."""

    def __init__(self, model, settings, device_id: str, settle: float, save_items: Path | None = None,
                 broker=None, queue=None):
        self.tracker = Tracker(model, device_id, settings.threshold, settings.top_k, settings.roi,
                               settings.background, EventSettings(settle=settle), keep_photo=bool(save_items))
        self.save_items = save_items
        self.items = Items(save_items)  # what the page lists and corrects
        self.device = device_id
        self.frames, self.placed, self.corrected = 0, Counter(), 0  # corrected: relabelled from the page
        self.publisher = None
        if broker is not None:  # the queue was opened (locked, checked) at set-up
            from device.stockroom import mqtt

            self.tracker.tally.update(queue.tally())
            self.publisher = mqtt.Publisher(broker, device_id, queue, self.tracker.tally)
            waiting = len(queue)
            log.info("events to %s (queue %s%s)", broker, queue.folder,
                     f", {waiting} waiting from before" if waiting else "")
        self.left = 0

    @property
    def seen(self):
        return self.tracker.last_input

    @property
    def busy(self) -> bool:
        return self.tracker.busy

    @property
    def tally(self) -> Counter:
        return self.tracker.tally

    def __call__(self, frame, index: int) -> list[tuple[dict, object]]:
        if frame.image is None:
            return []
        self.frames += 1
        out = []
        for event in self.tracker.feed(frame):
            seen = None
            if event["event"] == "placed":
                self.placed[event["label"]] += 1
                seen = self.tracker.photo_input if self.save_items else self.tracker.last_input
                if self.save_items:
                    self.item_photo(event)
            if self.publisher:
                self.publisher.publish(event, self.tracker.tally)
            self.items.add(event)
            out.append((event, seen))
        return out

    def apply(self, roi=None, background=None, threshold=None, settle=None) -> None:
        """A region, background, threshold or settle time set on the page, from the next frame."""
        if roi is not None or background is not None:
            self.tracker.apply(roi, background)
        if threshold is not None:
            self.tracker.threshold = threshold
        if settle is not None:
            self.tracker.settings.settle = settle

    def between_items(self) -> bool:
        """No item on the table (nothing placed and not yet removed, nothing settling): a model may change here
        without an item's placed and removed coming from two models (device/reload.py)."""
        return self.tracker.item is None and not self.tracker.still

    def switch(self, model, threshold: float | None) -> None:
        """Another model from the next item on (SIGHUP); its events name it."""
        self.tracker.model = model
        if threshold is not None:
            self.tracker.threshold = threshold

    def correct(self, item_id: str, label: str) -> dict | None:
        """A person's correction from the page: the `relabelled` record, the photo moved, the tally moved from
        `was` to `label`, queued for the broker like any event; None for the label it has. KeyError / ValueError
        as Items.relabel."""
        record = self.items.relabel(item_id, label, self.device, now_iso())
        if record is None:  # it has that label already: nothing happened, nothing to record
            return None
        earlier = self.items.items[item_id].get("earlier")  # placed by a run before this one: not in this summary
        self.corrected += not earlier
        for counts in (self.tracker.tally,) if earlier else (self.tracker.tally, self.placed):
            # An earlier run's item may never have been in this tally (that run had no broker, or another queue):
            # a count that holds no such label is not moved, so a correction never makes the total grow.
            if counts[record["was"]] > 0:
                counts[record["was"]] -= 1
                counts[label] += 1
            counts -= Counter()  # no label left at zero (in place: the tally is shared)
        if self.publisher:
            self.publisher.publish(record, self.tracker.tally)
        return record

    def reset_counts(self) -> dict:
        """Today's counts from zero (the page's reset): a `reset` record, written and queued like any event; the
        lifetime tally is not touched (stockroom-tally counts placed and relabelled records only)."""
        record = self.items.reset(self.device, now_iso())
        if self.publisher:
            self.publisher.publish(record, self.tracker.tally)
        return record

    def item_photo(self, event: dict) -> None:
        """DIR/<label>/<id>.jpg (full resolution): the layout fashion-train --photos reads, nothing but photos in
        the label folders; what the model saw goes to DIR/.inputs/<id>.png, out of the training tree (a
        relabelled photo never leaves a twin behind with the old label). A photo that cannot be written
        becomes a warning on the event."""
        label_dir, inputs = Path(self.save_items) / folder_name(event["label"]), Path(self.save_items) / ".inputs"
        try:
            label_dir.mkdir(parents=True, exist_ok=True)
            inputs.mkdir(exist_ok=True)
            write_picture(label_dir / f"{event['id']}.jpg", self.tracker.photo)
            write_picture(inputs / f"{event['id']}.png", picture(self.tracker.photo_input))
        except OSError as exc:
            event["warning"] = f"photo not saved: {exc.strerror or exc}"
            log.warning("warning: cannot write --save-items %s: %s; the event is kept without its photo", label_dir,
                        exc.strerror or exc)

    @staticmethod
    def describe(event: dict) -> str:
        if event["event"] == "placed":
            return (f"[item {event['item']}] placed: {event['label']} {event['confidence']:.2f} "
                    f"({event['frames']} frames)")
        if event["event"] == "relabelled":
            return f"[{event['id']}] relabelled on the page: {event['was']} -> {event['label']}"
        if event["event"] == "reset":
            counts = ", ".join(f"{k} {n}" for k, n in event["counts"].items()) or "none"
            return f"[{event['id']}] today's counts reset on the page (they were: {counts})"
        return f"[item {event['item']}] removed after {event['dwell_s']:.1f} s"

    def close(self, live_source: bool) -> None:
        """Give the broker a while to take the queue (a camera is being stopped: short), then disconnect."""
        if self.publisher:
            self.left = self.publisher.close(2.0 if live_source else DRAIN_S)

    def summary(self) -> str:
        counts = ", ".join(f"{k} {n}" for k, n in self.placed.most_common()) or "-"
        queued = ""
        if self.publisher:
            p = self.publisher
            queued = (f"; {self.left} events still queued for the broker"
                      f"{f' (it refused them: {p.refused})' if p.refused else ''}" if self.left
                      else "; every event delivered to the broker" if self.frames and p.connections
                      else "; no event to deliver")
            if p.unwritten:
                queued += f", {len(p.unwritten)} of them only in memory, never on disk: LOST"
            if p.problem and p.problem != "connecting":
                queued += f"; the broker: {p.problem}"
        fixed = f", after {self.corrected} correction{'s' if self.corrected > 1 else ''} on the page" \
            if self.corrected else ""
        lying = "".join(f", item {item.number} ({item.label}) still on the table" for item in self.tracker.on)
        return (f"summary: {self.frames} frames, {sum(self.placed.values())} items placed ({counts}{fixed}){lying}, "
                f"{self.tracker.inferences} inferences{queued}")
