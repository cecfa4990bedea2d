"""classify-cam --serve: a web page for the headless Pi. See what the camera and the model see; set up the table.

The standard library's threaded HTTP server, in a thread of its own beside the classifying loop.
The loop only hands over references (the latest frame, what the model saw, the latest record or
event, the tally): nothing is encoded unless a viewer asks, so serving with nobody watching costs
nearly nothing, and a slow or vanished viewer holds up only its own server thread.

GET  /              the page (no build step, nothing fetched from the internet)
GET  /frame.jpg     the live picture, downscaled, the region of interest drawn on it
GET  /input.png     what the model saw, 28x28 enlarged
GET  /state.json    label, confidence, the last events, the tally, runtime/model/fps facts, the settings
POST /api/roi        {"roi": [x, y, w, h]} (frame pixels) -> the settings file   (needs the token)
POST /api/background the current frame becomes the empty-table picture           (needs the token)
Actions that change settings need the token (header X-Token): printed once at start, or set in
the settings file. Changed settings are written to the --config file, which classify-cam reads at
start (flags on the command line win), and take effect at the next start.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

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

    def update(self, frame, seen, record=None, events=(), tally=None) -> None:
        self.frame, self.frames = frame, self.frames + 1
        if seen is not None:
            self.seen = seen
        if record:
            self.record = record
        for e in events:
            self.events.appendleft(e)
            self.record = e if e.get("event") == "placed" else self.record
        if tally is not None:
            self.tally = dict(tally)


class Settings:
    """The --config file: JSON {"roi": [x, y, w, h], "background": "PATH", "token": "..."}."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.values = {}
        if self.path and self.path.is_file():
            self.values = read_config(self.path)
        self.lock = threading.Lock()

    def set(self, **values) -> None:
        with self.lock:
            self.values.update(values)
            if self.path:
                tmp = self.path.with_suffix(self.path.suffix + ".tmp")
                tmp.write_text(json.dumps(self.values, indent=2) + "\n")
                os.replace(tmp, self.path)


class ConfigError(ValueError):
    """A --config file that cannot be used: a set-up error."""


def read_config(path: Path) -> dict:
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"--config {path}: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected a JSON object")
    if values.get("roi") is not None and not valid_roi(values["roi"]):
        raise ConfigError(f"--config {path}: roi must be [x, y, width, height] in whole pixels")
    return values


def valid_roi(roi) -> bool:
    """[x, y, width, height]: four whole numbers, width and height positive."""
    return (isinstance(roi, list) and len(roi) == 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in roi)
            and roi[2] > 0 and roi[3] > 0)


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


class Server:
    """The page's HTTP server in a daemon thread."""

    def __init__(self, address: str, live: Live, settings: Settings, token: str | None = None):
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
            return self.send(200, PAGE.encode(), "text/html; charset=utf-8")
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


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>classify-cam</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font-family: system-ui, sans-serif; margin: 1rem; background: #f4f4f2; color: #222; }
 .row { display: flex; gap: 1.2rem; flex-wrap: wrap; align-items: flex-start; }
 .card { background: #fff; border-radius: 8px; padding: .8rem; box-shadow: 0 1px 3px #0002; }
 #view { position: relative; display: inline-block; cursor: crosshair; user-select: none; }
 #live { display: block; max-width: 100%; }
 #box { position: absolute; border: 2px dashed #f80; display: none; pointer-events: none; }
 #label { font-size: 2rem; font-weight: 600; } #conf { color: #666; }
 #input { image-rendering: pixelated; width: 168px; height: 168px; background: #000; }
 table { border-collapse: collapse; } td { padding: 2px 8px; border-bottom: 1px solid #eee; font-size: .9rem; }
 button { font-size: 1rem; padding: .3rem .8rem; } #msg { color: #a40; }
</style></head><body>
<h1>classify-cam</h1>
<div class="row">
 <div class="card"><div id="view"><img id="live" alt="live picture"><div id="box"></div></div>
  <p>Drag on the picture to set the region of the table.
   <button id="bg">Take background (table empty)</button></p>
  <p>Token <input id="token" size="18"> <span id="msg"></span></p></div>
 <div class="card"><div>what the model saw</div><img id="input" alt="model input">
  <div id="label">-</div><div id="conf"></div></div>
 <div class="card"><div>last events</div><table id="events"></table>
  <div>tally</div><table id="tally"></table><div>facts</div><table id="facts"></table></div>
</div>
<script>
const $ = id => document.getElementById(id);
const token = () => $("token").value;
$("token").value = new URLSearchParams(location.hash.slice(1)).get("token") || localStorage.getItem("token") || "";
$("token").onchange = () => localStorage.setItem("token", token());
let size = null, drag = null;
function refresh() {
  const img = new Image();
  img.onload = () => { $("live").src = img.src; setTimeout(refresh, 300); };
  img.onerror = () => setTimeout(refresh, 1000);
  img.src = "/frame.jpg?" + Date.now();
}
function rows(el, pairs) { el.innerHTML = pairs.map(p => "<tr><td>" + p.join("</td><td>") + "</td></tr>").join(""); }
async function poll() {
  try {
    const s = await (await fetch("/state.json")).json();
    size = s.size;
    const r = s.record || {};
    $("label").textContent = r.label || (r.event === "removed" ? "(removed)" : "-");
    $("conf").textContent = r.confidence !== undefined ? "confidence " + r.confidence.toFixed(2) : "";
    rows($("events"), s.events.map(e => [e.event, e.label || "", e.time.slice(11, 19), e.dwell_s ? e.dwell_s + " s" : ""]));
    rows($("tally"), Object.entries(s.tally));
    rows($("facts"), Object.entries(s.facts).concat([["fps", s.fps], ["roi", JSON.stringify(s.roi)]]));
    $("input").src = "/input.png?" + Date.now();
  } catch (e) {}
  setTimeout(poll, 500);
}
function toFrame(ev) {
  const b = $("live").getBoundingClientRect(), k = size ? size[0] / b.width : 1;
  return [Math.round((ev.clientX - b.left) * k), Math.round((ev.clientY - b.top) * k), ev.clientX - b.left, ev.clientY - b.top];
}
$("view").onpointerdown = ev => { drag = toFrame(ev); ev.preventDefault(); };
$("view").onpointermove = ev => {
  if (!drag) return;
  const p = toFrame(ev), box = $("box");
  Object.assign(box.style, { display: "block", left: Math.min(drag[2], p[2]) + "px", top: Math.min(drag[3], p[3]) + "px",
    width: Math.abs(p[2] - drag[2]) + "px", height: Math.abs(p[3] - drag[3]) + "px" });
};
$("view").onpointerup = async ev => {
  if (!drag) return;
  const p = toFrame(ev), roi = [Math.min(drag[0], p[0]), Math.min(drag[1], p[1]), Math.abs(p[0] - drag[0]), Math.abs(p[1] - drag[1])];
  drag = null;
  if (roi[2] < 4 || roi[3] < 4) return;
  await act("/api/roi", { roi });
};
$("bg").onclick = () => act("/api/background", {});
async function act(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "X-Token": token(), "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  $("msg").textContent = r.ok ? "saved: takes effect at the next start" : (r.status === 403 ? "wrong token" : await r.text());
}
refresh(); poll();
</script></body></html>
"""
