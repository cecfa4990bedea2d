"""The page's HTTP server, and the Live state the loop hands it.

The standard library's threaded HTTP server, in a thread of its own beside the classifying loop.
The loop only hands over references (the latest frame, what the model saw, the latest record or
event, the tally): nothing is encoded unless a viewer asks, so serving with nobody watching costs
nearly nothing, and a slow or vanished viewer holds up only its own server thread.

GET  /              the page: page.html beside this file (no build step, nothing fetched from the internet)
GET  /frame.jpg     the live picture, downscaled, the region of interest drawn on it
GET  /input.png     what the model saw, 28x28 enlarged
GET  /state.json    label, confidence, the last events, the tally, runtime/model/fps facts, the settings
POST /api/roi        {"roi": [x, y, w, h]} (frame pixels) -> the settings file   (needs the token)
POST /api/background the current frame becomes the empty-table picture           (needs the token)
Actions that change settings need the token (header X-Token): printed once at start, or set in
the settings file. Changed settings are written to the --config file (device/config.py), which
classify-cam reads at start (flags on the command line win), and take effect at the next start.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from device.config import ConfigFile, valid_roi
from device.output import write_picture
from device.spec import picture

log = logging.getLogger("classify-cam")
VIEW_WIDTH = 480  # pixels: the live picture is downscaled to this for the page


class Live:
    """What the page shows; set by the loop (plain assignments), read by the server threads."""

    def __init__(self, facts: dict, roi=None):
        self.frame = None  # the latest picture (H, W) or (H, W, 3), as the source gave it
        self.seen = None  # the latest model input (28, 28, 1) float
        self.record = {}  # the latest per-frame record, or the latest event
        self.events = deque(maxlen=10)
        self.tally = {}
        self.facts = dict(facts)
        self.roi = roi
        self.frames, self.started = 0, time.monotonic()
        self.busy = False  # something lies or moves on the table (stockroom mode): no background may be taken
        self.broker = None  # with --mqtt: a callable giving the broker's state (reached, waiting events, ...)

    def update(self, frame, seen, records=(), tally=None, busy: bool = False) -> None:
        """One frame's picture, the latest model input, and the records it gave (per-frame records or events)."""
        self.frame, self.frames, self.busy = frame, self.frames + 1, busy
        if seen is not None:
            self.seen = seen
        for r in records:
            if "event" in r:
                self.events.appendleft(r)
            self.record = r  # the page says "removed" once the item is gone, not its old label
        if tally is not None:
            self.tally = dict(tally)


def jpeg(image: np.ndarray, roi=None) -> bytes:
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if roi:
        x, y, w, h = roi
        cv2.rectangle(bgr, (x, y), (x + w, y + h), (0, 200, 255), max(2, bgr.shape[1] // 240))
    scale = VIEW_WIDTH / bgr.shape[1]
    if scale < 1:
        bgr = cv2.resize(bgr, (VIEW_WIDTH, round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def png_input(seen: np.ndarray) -> bytes:
    import cv2

    big = cv2.resize(picture(seen), (168, 168), interpolation=cv2.INTER_NEAREST)
    return cv2.imencode(".png", big)[1].tobytes()


def page() -> bytes:
    """page.html, shipped as package data beside this module."""
    from importlib.resources import files

    return files("device.web").joinpath("page.html").read_bytes()


class Guarded(ThreadingHTTPServer):
    """A threaded HTTP server that a browser cannot take down: at most MAX_CLIENTS connections at once (more are
    closed at once, so held-open sockets never use up the process's descriptors, which the camera and the broker
    need too), and a client that resets or stalls is dropped without a traceback on the device's stderr."""

    daemon_threads = True
    MAX_CLIENTS = 16
    request_queue_size = 64  # the listen backlog (5 by default): a burst of connections waits for no SYN retry (1 s)

    def __init__(self, *args, **kwargs):
        self.slots = threading.BoundedSemaphore(self.MAX_CLIENTS)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:  # noqa: BLE001 (no thread could start: give the slot back)
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            log.warning("web page: %s from %s: %s", type(exc).__name__, client_address[0], exc)


class Server:
    """The page's HTTP server in a daemon thread."""

    def __init__(self, address: str, live: Live, settings: ConfigFile, token: str | None = None):
        host, _, port = address.rpartition(":")
        self.live, self.settings = live, settings
        self.token = token or settings.values.get("token") or secrets.token_urlsafe(12)
        handler = type("Handler", (Handler,), {"server_state": self})
        self.httpd = Guarded((host or "127.0.0.1", int(port)), handler)
        self.url = f"http://{host or '127.0.0.1'}:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, name="web", daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Handler(BaseHTTPRequestHandler):
    server_state: Server
    protocol_version = "HTTP/1.1"
    timeout = 10  # a viewer that stops reading is dropped, never waited for
    idle_timeout = 2  # a connection that sends no request frees its slot soon, so idle sockets cannot lock the page out

    def handle_one_request(self):
        self.connection.settimeout(self.idle_timeout)  # waiting for a request
        super().handle_one_request()

    def parse_request(self):
        self.connection.settimeout(self.timeout)  # a request came: reading it and answering it
        return super().parse_request()

    def log_message(self, *args):  # no access log on the device's stderr
        pass

    def send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        s, live = self.server_state, self.server_state.live
        path = self.path.split("?")[0]
        if path == "/":
            return self.send(200, page(), "text/html; charset=utf-8")
        if path == "/frame.jpg":
            frame = live.frame
            if frame is None:
                return self.send(503, b"no frame yet", "text/plain")
            return self.send(200, jpeg(frame, live.roi), "image/jpeg")
        if path == "/input.png":
            if live.seen is None:
                return self.send(503, b"nothing classified yet", "text/plain")
            return self.send(200, png_input(live.seen), "image/png")
        if path == "/state.json":
            elapsed = max(time.monotonic() - live.started, 1e-6)
            frame = live.frame
            state = {"record": live.record, "events": list(live.events), "tally": live.tally, "facts": live.facts,
                     "fps": round(live.frames / elapsed, 1), "roi": live.roi,
                     "size": None if frame is None else [int(frame.shape[1]), int(frame.shape[0])],
                     "settings": {k: v for k, v in s.settings.values.items() if k != "token"},
                     "broker": live.broker() if live.broker else None, "busy": live.busy}
            return self.send(200, json.dumps(state).encode(), "application/json")
        return self.send(404, b"not found", "text/plain")

    def text(self, code: int, message: str) -> None:
        self.send(code, message.encode(), "text/plain; charset=utf-8")

    def body(self):
        """The request's JSON object, or None after answering 400/413 (a bad length, not JSON, too large)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return self.text(400, "Content-Length must be a whole number of bytes")
        if length > 10_000:
            return self.text(413, "the request body is too large (10,000 bytes at most)")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError):
            return self.text(400, "the request body is not JSON")
        return body if isinstance(body, dict) else self.text(400, "the request body must be a JSON object")

    def do_POST(self):
        s = self.server_state
        path = self.path.split("?")[0]
        if path not in ("/api/roi", "/api/background"):
            return self.text(404, "not found")
        if not secrets.compare_digest(self.headers.get("X-Token", "").encode(), s.token.encode()):
            return self.text(403, "wrong or missing token")
        body = self.body()
        if body is None:
            return None
        frame = s.live.frame
        if frame is None:
            return self.text(503, "no frame yet")
        if path == "/api/roi":
            roi, (h, w) = body.get("roi"), frame.shape[:2]
            if not valid_roi(roi):
                return self.text(400, "roi must be [x, y, width, height] in whole pixels")
            if roi[0] < 0 or roi[1] < 0 or roi[0] + roi[2] > w or roi[1] + roi[3] > h:
                return self.text(400, f"the region {roi} reaches outside the {w}x{h} frame")
            return self.save(roi=roi)
        if s.live.busy:
            return self.text(409, "the table is not empty (something lies or moves on it): clear it, then take "
                                  "the background")
        target = (s.settings.path.resolve().parent if s.settings.path else Path(".")) / "background.png"
        try:
            write_picture(target, frame)  # whole or not at all
        except OSError as exc:
            return self.text(500, f"cannot write {target}: {exc.strerror or exc}")
        return self.save(background=str(target.resolve()))

    def save(self, **values):
        try:
            self.server_state.settings.set(**values)
        except OSError as exc:
            return self.text(500, f"cannot save the settings to {self.server_state.settings.path}: "
                                  f"{exc.strerror or exc}")
        if "roi" in values:
            self.server_state.live.roi = values["roi"]
        return self.send(200, json.dumps({"saved": values}).encode(), "application/json")
