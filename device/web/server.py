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
import secrets
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from device.config import ConfigFile, valid_roi
from device.output import write_picture
from device.spec import picture

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

    def update(self, frame, seen, records=(), tally=None) -> None:
        """One frame's picture, the latest model input, and the records it gave (per-frame records or events)."""
        self.frame, self.frames = frame, self.frames + 1
        if seen is not None:
            self.seen = seen
        for r in records:
            if "event" not in r:
                self.record = r
                continue
            self.events.appendleft(r)
            self.record = r if r["event"] == "placed" else self.record
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


class Server:
    """The page's HTTP server in a daemon thread."""

    def __init__(self, address: str, live: Live, settings: ConfigFile, token: str | None = None):
        host, _, port = address.rpartition(":")
        self.live, self.settings = live, settings
        self.token = token or settings.values.get("token") or secrets.token_urlsafe(12)
        handler = type("Handler", (Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host or '127.0.0.1'}:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, name="web", daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Handler(BaseHTTPRequestHandler):
    server_state: Server
    protocol_version = "HTTP/1.1"
    timeout = 10  # a viewer that stops reading is dropped, never waited for

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
                     "settings": {k: v for k, v in s.settings.values.items() if k != "token"}}
            return self.send(200, json.dumps(state).encode(), "application/json")
        return self.send(404, b"not found", "text/plain")

    def do_POST(self):
        s = self.server_state
        path = self.path.split("?")[0]
        if path not in ("/api/roi", "/api/background"):
            return self.send(404, b"not found", "text/plain")
        if not secrets.compare_digest(self.headers.get("X-Token", ""), s.token):
            return self.send(403, b"wrong or missing token", "text/plain")
        length = min(int(self.headers.get("Content-Length") or 0), 10_000)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.send(400, b"not JSON", "text/plain")
        if path == "/api/roi":
            roi = body.get("roi") if isinstance(body, dict) else None
            if not valid_roi(roi):
                return self.send(400, b"roi must be [x, y, width, height] in whole pixels", "text/plain")
            s.settings.set(roi=roi)
            s.live.roi = roi
            return self.send(200, json.dumps({"saved": {"roi": roi}}).encode(), "application/json")
        frame = s.live.frame
        if frame is None:
            return self.send(503, b"no frame yet", "text/plain")
        target = (s.settings.path.parent if s.settings.path else Path(".")) / "background.png"
        try:
            write_picture(target, frame)
        except OSError as exc:
            return self.send(500, f"cannot write {target}: {exc}".encode(), "text/plain")
        s.settings.set(background=str(target.resolve()))
        return self.send(200, json.dumps({"saved": {"background": str(target.resolve())}}).encode(),
                         "application/json")
