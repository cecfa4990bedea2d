"""classify-cam --events: the stockroom loop, from frames to placed/removed records, item photos and MQTT."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from device.output import OutputError, write_picture
from device.spec import folder_name, picture

DRAIN_S = 10.0  # at the end of a file source: how long to wait for the broker to take the queue


def item_photo(folder: Path, event: dict, photo, seen) -> None:
    """DIR/<label>/<id>.jpg (full resolution) and <id>.input.png (what the model saw): the layout
    fashion-train --photos reads, so a wrongly named photo is fixed by moving it to the right folder."""
    label_dir = Path(folder) / folder_name(event["label"])
    try:
        label_dir.mkdir(parents=True, exist_ok=True)
        write_picture(label_dir / f"{event['id']}.jpg", photo)
        write_picture(label_dir / f"{event['id']}.input.png", picture(seen))
    except OSError as exc:
        raise OutputError(f"cannot write --save-items {label_dir}: {exc.strerror or exc}") from None


def run(args, model, source, settings, stop, log, screen, live=None) -> int:
    """One record per item; returns the exit code."""
    from device import mqtt, sources
    from device.events import EventSettings, Tracker

    tracker = Tracker(model, args.device_id, settings.threshold, settings.top_k, settings.roi, settings.background,
                      EventSettings(settle=args.settle), keep_photo=bool(args.save_items))
    publisher = None
    if args.mqtt:
        queue = mqtt.Queue(args.queue)
        tracker.tally.update(queue.tally())
        publisher = mqtt.Publisher(args.broker, args.device_id, queue, tracker.tally)
        waiting = len(queue)
        print(f"classify-cam: events to {args.broker} (queue {queue.folder}"
              f"{f', {waiting} waiting from before' if waiting else ''})", file=sys.stderr)
    frames, status, placed = 0, 0, Counter()
    try:
        for frame in source.frames():
            if frame.image is None:
                continue
            frames += 1
            events = tracker.feed(frame)
            if live:
                live.update(frame.image, tracker.last_input, events=events, tally=tracker.tally)
            for event in events:
                if event["event"] == "placed":
                    placed[event["label"]] += 1
                    if args.save_items:
                        item_photo(args.save_items, event, tracker.photo, tracker.photo_input)
                if log:
                    log.write(event)
                if publisher:
                    publisher.publish(event, tracker.tally)
                screen.line(describe(event))
            if stop.stop or (args.max_frames and frames >= args.max_frames):
                break
    except sources.CameraLost as exc:
        print(f"classify-cam: {exc}", file=sys.stderr)
        status = 1
    except OutputError as exc:
        print(f"classify-cam: {exc}", file=sys.stderr)
        status = 1
    finally:
        source.close()
        if log:
            log.close()
        left = publisher.close(DRAIN_S if not source.live else 2.0) if publisher else 0
        counts = ", ".join(f"{k} {n}" for k, n in placed.most_common()) or "-"
        queued = f"; {left} events still queued for the broker" if publisher and left else \
            ("; every event delivered to the broker" if publisher else "")
        print(f"summary: {frames} frames, {sum(placed.values())} items placed ({counts}), "
              f"{tracker.inferences} inferences{queued}", file=sys.stderr)
    return status


def describe(event: dict) -> str:
    if event["event"] == "placed":
        return f"[item {event['item']}] placed: {event['label']} {event['confidence']:.2f} ({event['frames']} frames)"
    return f"[item {event['item']}] removed after {event['dwell_s']:.1f} s"
