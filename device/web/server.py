"""The page's HTTP server, in a thread beside the loop.

The standard library's threaded HTTP server, in a thread of its own beside the classifying loop.
The loop only hands over references (the latest frame, what the model saw, the latest record or
event, the tally): nothing is encoded unless a viewer asks, so serving with nobody watching costs
nearly nothing, and a slow or vanished viewer holds up only its own server thread.

GET  /              the page: page.html beside this file (no build step, nothing fetched from the internet)
GET  /stream.mjpg   the live picture as MJPEG, STREAM_FPS a second, while the viewer stays (what the page shows)
GET  /frame.jpg     the live picture once, downscaled, the region of interest drawn on it
GET  /input.png     what the model saw, 28x28 enlarged
GET  /state.json    label, confidence, the last events, the tally, runtime/model/fps facts, the settings
GET  /api/items      {"items": [...], "total": N}: this run's items, newest first (?offset=&limit= pages)
GET  /items/ID.jpg   an item's photo (with --save-items)
POST /api/items/ID/label  {"label": "Coat"}: correct an item (the relabelled record)   (needs the token)
POST /api/counts/reset  today's counts from zero: the reset record                (needs the token)
POST /api/roi        {"roi": [x, y, w, h]} (frame pixels) -> the settings file   (needs the token)
POST /api/background the current frame becomes the empty-table picture           (needs the token)
POST /api/settings   {"threshold": 0.3, "settle": 0.5} (either)                  (needs the token)
Actions that change anything need the token (header X-Token): printed once when made, kept in
the settings file. A setting applies from the next frame (the loop takes it between
two frames) and is kept in the --config file (device/config.py), which classify-cam reads at start
(flags on the command line win).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from device.config import LIMITS, ConfigFile, valid_roi
from device.output import write_picture
from device.web.live import Live, png_input
from device.web.transport import Guarded, GuardedHandler

STREAM_FPS = 3  # the live picture's rate on the page: enough to watch a garment placed, cheap to encode
MIN_ROI = 4  # pixels: the least width and height of a region (a smaller one leaves the device blind)
MAX_STREAMS = 8  # live pictures at once: the other half of the server's slots stay for pages, state and actions
ITEM_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")  # what an item id may be; anything else is no item (404)


def page() -> bytes:
    """page.html, shipped as package data beside this module."""
    from importlib.resources import files

    return files("device.web").joinpath("page.html").read_bytes()


class Server:
    """The page's HTTP server in a daemon thread."""

    def __init__(self, address: str, live: Live, settings: ConfigFile, token: str | None = None):
        host, _, port = address.rpartition(":")
        self.live, self.settings = live, settings
        self.closing = threading.Event()  # ends the MJPEG streams
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.token = token or settings.values.get("token") or secrets.token_urlsafe(12)
        handler = type("Handler", (Handler,), {"server_state": self})
        self.httpd = Guarded((host or "127.0.0.1", int(port)), handler)
        self.url = f"http://{host or '127.0.0.1'}:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, name="web", daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class Handler(GuardedHandler):
    """The page's routes."""

    server_state: Server

    def do_GET(self):
        s, live = self.server_state, self.server_state.live
        url = urlsplit(self.path)
        path = url.path
        if path == "/api/items":
            return self.items_page(live, parse_qs(url.query))
        if path.startswith("/items/") and path.endswith(".jpg"):
            item_id = path[len("/items/"):-len(".jpg")]
            photo = live.items.photo(item_id) if live.items and ITEM_ID.fullmatch(item_id) else None
            if photo is None:
                return self.text(404, "no photo of that item")
            try:
                return self.send(200, photo.read_bytes(), "image/jpeg")
            except OSError:
                return self.text(404, "no photo of that item")
        if path == "/":
            return self.send(200, page(), "text/html; charset=utf-8")
        if path == "/stream.mjpg":
            return self.stream(live)
        if path == "/frame.jpg":
            picture = live.view()
            if picture is None:
                return self.send(503, b"no frame yet", "text/plain")
            return self.send(200, picture, "image/jpeg")
        if path == "/input.png":
            if live.seen is None:
                return self.send(503, b"nothing classified yet", "text/plain")
            return self.send(200, png_input(live.seen), "image/png")
        if path == "/state.json":
            frame = live.frame
            state = {"record": live.record, "events": self.events(live), "tally": live.tally, "facts": live.facts,
                     "fps": live.fps(), "roi": live.roi, "free_bytes": live.free_bytes(),
                     "today": live.items.today() if live.items else None,
                     "running_s": round(time.monotonic() - live.started),
                     "size": None if frame is None else [int(frame.shape[1]), int(frame.shape[0])],
                     "settings": {k: v for k, v in s.settings.values.items() if k != "token"},
                     "broker": live.broker() if live.broker else None, "busy": live.busy}
            return self.send(200, json.dumps(state).encode(), "application/json")
        return self.send(404, b"not found", "text/plain")

    def stream(self, live) -> None:
        """multipart/x-mixed-replace: a new JPEG whenever a new frame came, at most STREAM_FPS a second. One
        connection instead of a request per picture; a viewer that stops reading is dropped after `timeout`.
        At most MAX_STREAMS at once (503 beyond: the page then polls /frame.jpg)."""
        streams = self.server_state.streams
        if not streams.acquire(blocking=False):
            return self.text(503, f"{MAX_STREAMS} live pictures are watched already: poll /frame.jpg")
        try:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            closing, sent = self.server_state.closing, None
            while not closing.is_set():
                if live.frames != sent:
                    sent, picture = live.frames, live.view()
                    if picture is not None:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(picture) + picture + b"\r\n")
                        self.wfile.flush()
                if self.gone(1 / STREAM_FPS):
                    break
        finally:
            streams.release()

    def gone(self, seconds: float) -> bool:
        """Wait, and say whether the viewer went away meanwhile: its slot is given back at once, not after the next
        failed write, which never comes while the camera is still. A viewer only reads: anything it sends (its
        end closed, or bytes no stream asks for) ends the stream, never a wait that returns at once forever."""
        readable = select.select([self.connection], [], [], seconds)[0]
        return bool(readable) or self.server_state.closing.is_set()

    @staticmethod
    def events(live) -> list[dict]:
        """The last events, a removal with the label its item has now (a removed record carries none)."""
        items = live.items.items if live.items else {}
        return [{**e, "label": items[e["id"]]["label"]} if e.get("event") == "removed" and e.get("id") in items
                else e for e in list(live.events)]

    def items_page(self, live, query: dict):
        try:
            offset = max(int(query.get("offset", ["0"])[0]), 0)
            limit = min(max(int(query.get("limit", ["50"])[0]), 1), 500)
        except ValueError:
            return self.text(400, "offset and limit must be whole numbers")
        items = live.items
        answer = {"items": items.page(offset, limit) if items else [], "total": len(items.items) if items else 0,
                  "offset": offset}
        return self.send(200, json.dumps(answer).encode(), "application/json")

    def relabel(self, item_id: str, body: dict):
        live = self.server_state.live
        if live.correct is None or not ITEM_ID.fullmatch(item_id) or item_id not in live.items.items:
            return self.text(404, "no such item (corrections are for this run's items, in stockroom mode)")
        try:
            record = live.correct(item_id, body.get("label"))
        except RuntimeError as exc:  # the run is ending: nothing was applied
            return self.text(503, str(exc))
        except KeyError:
            return self.text(404, "no such item")
        except ValueError as exc:
            return self.text(400, str(exc))
        except OSError as exc:
            return self.text(500, f"cannot move the photo: {exc.strerror or exc}")
        if record is None:  # it has that label already: no record, nothing moved
            return self.send(200, json.dumps({"unchanged": item_id}).encode(), "application/json")
        return self.send(200, json.dumps({"relabelled": record}).encode(), "application/json")

    def reset(self):
        live = self.server_state.live
        if live.reset is None:
            return self.text(404, "today's counts are kept in stockroom mode (--events) only")
        try:
            record = live.reset()
        except RuntimeError as exc:  # the run is ending: nothing was reset
            return self.text(503, str(exc))
        return self.send(200, json.dumps({"reset": record}).encode(), "application/json")

    def numbers(self, body: dict):
        """The threshold and the settle time: checked as the --config file is, kept there, applied next frame."""
        live = self.server_state.live
        values = {k: body[k] for k in LIMITS if body.get(k) is not None}
        unknown = sorted(set(body) - set(LIMITS))
        if unknown or not values:
            return self.text(400, f"give threshold and/or settle{f', not {unknown}' if unknown else ''}")
        for key, value in values.items():
            low, high = LIMITS[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                return self.text(400, f"{key} must be a number from {low} to {high}, not {value!r}")
        if "settle" in values and live.items is None:
            return self.text(400, "settle is the stockroom mode's (--events): this run makes a record per frame")
        for key, value in values.items():
            live.facts[key] = value
        return self.save(values, dict(values))

    def do_POST(self):
        s = self.server_state
        path = urlsplit(self.path).path
        item = re.fullmatch(r"/api/items/([^/]+)/label", path)
        if path not in ("/api/roi", "/api/background", "/api/settings", "/api/counts/reset") and not item:
            return self.text(404, "not found")
        tokens = self.headers.get_all("X-Token") or []
        if len(tokens) != 1 or not secrets.compare_digest(tokens[0].strip().encode(), s.token.encode()):
            return self.text(403, "wrong or missing token (exactly one X-Token header)")
        body = self.body()
        if body is None:
            return None
        if item:
            return self.relabel(item.group(1), body)
        if path == "/api/counts/reset":
            return self.reset()
        if path == "/api/settings":
            return self.numbers(body)
        frame = s.live.frame
        if frame is None:
            return self.text(503, "no frame yet")
        if path == "/api/roi":
            roi, (h, w) = body.get("roi"), frame.shape[:2]
            if roi is None and "roi" in body:  # back to the whole frame
                return self.save({"roi": None}, {"roi": (0, 0, w, h)})
            if not valid_roi(roi) or roi[2] < MIN_ROI or roi[3] < MIN_ROI:
                return self.text(400, f"roi must be [x, y, width, height] in whole pixels, at least {MIN_ROI} wide "
                                      "and high (or null: the whole frame)")
            if roi[0] < 0 or roi[1] < 0 or roi[0] + roi[2] > w or roi[1] + roi[3] > h:
                return self.text(400, f"the region {roi} reaches outside the {w}x{h} frame")
            return self.save({"roi": roi}, {"roi": tuple(roi)})
        if s.live.busy:
            return self.text(409, "the table is not empty (something lies or moves on it): clear it, then take "
                                  "the background")
        if s.settings.path is None:  # applied, never written into whatever folder the device was started from
            return self.save({}, {"background": frame}, "taken from the page (not kept: no --config)")
        target = Path(os.path.realpath(s.settings.path)).parent / "background.png"
        try:
            write_picture(target, frame)  # whole or not at all
        except OSError as exc:
            return self.text(500, f"cannot write {target}: {exc.strerror or exc}")
        return self.save({"background": str(target.resolve())}, {"background": frame}, str(target.resolve()))

    def save(self, values: dict, change: dict, background: str | None = None):
        """Keep the settings in the --config file (when there is one), then hand the change to the loop, which
        applies it from the next frame. What cannot be kept is not applied either: one answer, one state."""
        state = self.server_state
        try:
            if values:
                state.settings.set(**values)
        except OSError as exc:
            return self.text(500, f"cannot save the settings to {state.settings.path}: {exc.strerror or exc}")
        if "roi" in change:
            state.live.roi = list(change["roi"]) if values.get("roi", True) is not None else None
        if background:
            state.live.facts["background"] = background
        state.live.changes.put(change)
        kept = state.settings.path is not None
        return self.send(200, json.dumps({"saved": values if kept else {}, "applied": sorted(change), "kept": kept})
                         .encode(), "application/json")
