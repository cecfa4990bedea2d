"""classify-cam --serve: plain HTTP checks, and the page in a real headless Chromium (DevTools protocol).

make setup installs Debian's chromium; without it the browser test skips on a developer's machine and fails
under CI=true (conftest.need).
"""

import base64
import importlib.util
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import NEUTRAL, chromium, classify_cam, command, need
from tools.stockroom_video import Step, render, script


@pytest.fixture(scope="module")
def video(tmp_path_factory, fmnist):
    steps, _ = script(fmnist.test.images, fmnist.test.labels, 3, seconds=4.0)
    steps.append(Step("empty", 3.0))  # time at the end to take the empty table as the background
    return render(tmp_path_factory.mktemp("web") / "table.avi", steps, (320, 240))


class Served:
    """classify-cam --events --realtime --serve on a free port, with its page's URL and token."""

    def __init__(self, video, *extra):
        self.proc = subprocess.Popen(command("classify-cam") + ["--source", str(video), "--events", "--realtime",
                                                                "--serve", "127.0.0.1:0", "--quiet", *map(str, extra)],
                                     cwd=NEUTRAL, stderr=subprocess.PIPE, text=True)
        deadline, said = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            said.append(line)
            found = re.search(r"web page at (http://\S+/)(?:#token=(\S+)|.*token\b.* is in (\S+)\))", line)
            if found:
                self.started = time.monotonic()  # the loop starts right after saying so
                self.url, self.token, settings = found.groups()
                if self.token is None:  # with --config the token is kept in the settings file, not printed
                    self.token = json.loads(Path(settings).read_text())["token"]
                return
            if not line and self.proc.poll() is not None:
                break
        self.kill()
        raise AssertionError(f"classify-cam never said where its page is: {''.join(said)}")

    def get(self, path):
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()

    def post(self, path, body, token=None):
        req = urllib.request.Request(self.url + path.lstrip("/"), data=json.dumps(body).encode(), method="POST",
                                     headers={"X-Token": token if token is not None else self.token})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def wait_for_frame(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                return self.get("/frame.jpg")
            except urllib.error.HTTPError:
                time.sleep(0.2)
        raise AssertionError("no frame on the page")

    def finish(self):
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def test_http_paths_tokens_and_settings(video, tmp_path):
    config = tmp_path / "settings.json"
    served = Served(video, "--config", config)
    try:
        status, kind, body = served.get("/")
        assert status == 200 and kind.startswith("text/html") and b"classify-cam" in body
        assert b"http" not in body  # nothing fetched from anywhere else: the Pi may be offline
        status, kind, jpg = served.wait_for_frame()
        assert kind == "image/jpeg" and jpg[:2] == b"\xff\xd8"
        with urllib.request.urlopen(served.url + "stream.mjpg", timeout=10) as stream:  # the page's live picture
            assert stream.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
            data = b""
            while data.count(b"--frame\r\nContent-Type: image/jpeg") < 2:  # a new picture as new frames come
                data += stream.read1(65536)
            assert data.split(b"\r\n\r\n", 1)[1][:2] == b"\xff\xd8"
        state = json.loads(served.get("/state.json")[2])
        assert state["size"] == [320, 240] and state["facts"]["model"].startswith("fashion_int8.tflite (")
        with pytest.raises(urllib.error.HTTPError) as missing:
            served.get("/nope")
        assert missing.value.code == 404
        assert served.post("/api/roi", {"roi": [1, 2, 30, 40]}, token="") == 403
        assert served.post("/api/roi", {"roi": [1, 2, 30, 40]}, token="wrong") == 403
        assert served.post("/api/background", {}, token="wrong") == 403
        saved = json.loads(config.read_text()) if config.exists() else {}
        assert "roi" not in saved and "background" not in saved  # nothing changed without the token
        assert served.post("/api/nope", {}) == 404
        assert served.post("/api/roi", {"roi": [1, 2, -3, 4]}) == 400
        assert served.post("/api/roi", {"roi": [10, 10, 1, 1]}) == 400  # a blind device is no region
        assert served.post("/api/roi", {"roi": None}) == 200  # back to the whole frame
        assert json.loads(config.read_text())["roi"] is None and json.loads(served.get("/state.json")[2])["roi"] is None
        assert served.post("/api/roi", {"roi": [10, 20, 200, 150]}) == 200
        assert json.loads(config.read_text())["roi"] == [10, 20, 200, 150]
        # A refused POST (its body never read) must not spoil the next request on the same kept-alive connection.
        import http.client

        host, port = served.url.split("/")[2].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        for headers, body in (({"X-Token": "wrong"}, b'{"threshold": 0.3}'), ({"X-Token": served.token}, b"x" * 20000)):
            conn.request("POST", "/api/settings", body=body, headers=headers)
            assert conn.getresponse().read() and True
            conn.request("GET", "/state.json")
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["size"] == [320, 240]
        conn.close()
        # Live pictures have slots of their own: as many as allowed, one more is refused, the page still answers.
        from device.web.server import MAX_STREAMS

        def watch():  # a stream closed a moment ago frees its slot within a third of a second
            for _ in range(20):
                try:
                    return urllib.request.urlopen(served.url + "stream.mjpg", timeout=10)
                except urllib.error.HTTPError:
                    time.sleep(0.1)
            raise AssertionError("no live picture slot came free")

        # A viewer that sends anything after asking for the stream gets it ended (never a busy wait on its bytes).
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            assert raw.recv(65536).startswith(b"HTTP/1.1 200")
            raw.sendall(b"X")
            deadline = time.monotonic() + 5
            while raw.recv(65536) and time.monotonic() < deadline:
                pass
            assert time.monotonic() < deadline, "the stream went on after its viewer sent bytes"
        streams = [watch() for _ in range(MAX_STREAMS)]
        try:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(served.url + "stream.mjpg", timeout=10)
            assert refused.value.code == 503
            assert served.get("/state.json")[0] == 200 and served.post("/api/settings", {"threshold": 0.3}) == 200
        finally:
            for s in streams:
                s.close()
    finally:
        served.kill()


def video_seconds(video) -> float:
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames / fps


def video_offset(event, video) -> float:
    """Where in the video an event happened: its time is the file's modification time plus the frame's stamp."""
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp() - os.path.getmtime(video)


def stuck_viewers(url, count=5):
    """Viewers that ask for many pictures and never read them (a tiny receive window set before connecting, so
    the server's writes block), and one that vanishes halfway through a request."""
    host, port = url.split("//")[1].strip("/").split(":")
    stuck = []
    for _ in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.connect((host, int(port)))
        s.sendall(b"GET /frame.jpg HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)  # far more than the buffers hold
        stuck.append(s)
    gone = socket.create_connection((host, int(port)))
    gone.sendall(b"GET /frame.jpg HTTP/1.1\r\n")
    gone.close()
    return stuck


# Seconds a record may come after the moment of the video it belongs to, read at the video's own pace.
LAG_S = 3.0


def test_a_slow_or_vanished_viewer_never_stalls_classification(video, tmp_path):
    """With --realtime the video plays as a camera delivers it, so a loop held up by the page falls behind the
    clock. Every event must be written (wall clock, watched from here) within LAG_S of its moment in the video,
    while viewers that never read hold connections open; and the events are those of a run with no page."""
    length = video_seconds(video)
    log = tmp_path / "served.jsonl"
    served = Served(video, "--output", log)
    written, stuck = [], []  # each line's wall-clock time since the loop started, taken here, not from the video

    def watch():
        now = time.monotonic() - served.started
        lines = log.read_text().split("\n")[:-1] if log.exists() else []  # whole lines only
        written.extend(now for _ in lines[len(written):])
        return [json.loads(line) for line in lines], now

    try:
        served.wait_for_frame()
        stuck = stuck_viewers(served.url)
        while served.proc.poll() is None:
            events, now = watch()
            late = [(round(wall, 1), round(video_offset(e, video), 1)) for wall, e in zip(written, events)
                    if wall > video_offset(e, video) + LAG_S]
            assert not late, f"(written at, video time) of events held up by the page: {late}"
            assert now < length + LAG_S, f"still running {now:.1f} s in; the video is {length:.1f} s"
            time.sleep(0.05)
        code, err = served.finish()
    finally:
        served.kill()
        for s in stuck:
            s.close()
    assert code == 0, err
    events, _ = watch()
    assert [e["event"] for e in events] == ["placed", "removed"] * 3, events  # three garments
    for wall, event in zip(written, events):
        moment = video_offset(event, video)
        assert moment - 1.0 <= wall <= moment + LAG_S, (wall, moment, event)  # on time, and really at video pace
    plain = classify_cam("--source", video, "--events", "--quiet", "--output", tmp_path / "plain.jsonl",
                         timeout=120)  # no page, full speed: the contract says the same events
    assert plain.returncode == 0, plain.stderr
    assert events == [json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines()]


class Browser:
    """Headless Chromium driven over the DevTools protocol (websocket-client)."""

    def __init__(self, folder):
        import websocket

        port = free_port()
        self.proc = subprocess.Popen([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                      "--no-first-run", "--disable-background-networking", "--disable-component-update",
                                      "--disable-sync", f"--user-data-dir={folder}", f"--remote-debugging-port={port}",
                                      "--window-size=1280,900", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, pages = time.monotonic() + 30, []
        while time.monotonic() < deadline and not pages:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as r:
                    pages = [p for p in json.loads(r.read()) if p.get("type") == "page"]
            except OSError:
                time.sleep(0.2)
        assert pages, "chromium did not start"
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=20, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply.get("result", {})

    def js(self, expression):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)[
            "result"].get("value")

    def wait(self, expression, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js(expression):
                return
            time.sleep(0.2)
        raise AssertionError(f"never true in the page: {expression}")

    def mouse(self, kind, x, y):
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", buttons=1 if kind != "mouseReleased"
                  else 0, clickCount=1)

    def close(self):
        self.ws.close()
        self.proc.kill()
        self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_in_a_real_browser_sets_region_and_background_that_a_restart_uses(video, tmp_path):
    chromium()
    need(importlib.util.find_spec("websocket"), "websocket-client (drives the browser)", "pip install -e '.[dev]'")
    config = tmp_path / "settings.json"
    served = Served(video, "--config", config)
    browser = Browser(tempfile.mkdtemp(prefix="chromium-"))
    try:
        browser.call("Page.navigate", url=f"{served.url}#token={served.token}")
        browser.wait("document.getElementById('live').naturalWidth > 0 && document.getElementById('live').src.endsWith('/stream.mjpg')")
        browser.wait("document.getElementById('label').textContent.length > 1 && "
                     "document.getElementById('label').textContent !== '-'", timeout=40)
        shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        (tmp_path / "page.png").write_bytes(shot)
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20000
        box = browser.js("(() => { const b = document.getElementById('live').getBoundingClientRect(); "
                         "return [b.left, b.top, b.width, b.height]; })()")
        left, top, width, height = box
        x0, y0, x1, y1 = left + width * 0.25, top + height * 0.25, left + width * 0.75, top + height * 0.75
        browser.mouse("mousePressed", x0, y0)
        for k in range(1, 6):
            browser.mouse("mouseMoved", x0 + (x1 - x0) * k / 5, y0 + (y1 - y0) * k / 5)
        browser.mouse("mouseReleased", x1, y1)
        browser.wait("document.getElementById('msg').textContent.startsWith('applied')")
        browser.js("document.getElementById('msg').textContent = ''")
        bg = browser.js("(() => { const b = document.getElementById('bg').getBoundingClientRect(); "
                        "return [b.left + b.width / 2, b.top + b.height / 2]; })()")
        deadline = time.monotonic() + 40
        while not browser.js("document.getElementById('msg').textContent.startsWith('applied')"):
            # The background is the empty table: refused (409) while something lies on it, so click when empty.
            assert time.monotonic() < deadline, browser.js("document.getElementById('msg').textContent")
            browser.wait("fetch('/state.json').then(r => r.json()).then(s => !s.busy)", timeout=40)
            browser.js("document.getElementById('msg').textContent = ''")
            browser.mouse("mousePressed", *bg)
            browser.mouse("mouseReleased", *bg)
            browser.wait("document.getElementById('msg').textContent !== ''")
        served.kill()  # the device goes away: the page says so instead of showing the last state as now
        browser.wait("!document.getElementById('gone').hidden && document.body.classList.contains('stale')")
    finally:
        browser.close()
        served.kill()
    saved = json.loads(config.read_text())
    x, y, w, h = saved["roi"]
    assert abs(x - 80) <= 3 and abs(y - 60) <= 3 and abs(w - 160) <= 3 and abs(h - 120) <= 3, saved
    assert Path(saved["background"]).is_file()
    again = Served(video, "--config", config)  # a restart reads the settings
    try:
        state = json.loads(again.get("/state.json")[2])
        assert state["roi"] == saved["roi"] and state["facts"]["background"] == saved["background"]
    finally:
        again.kill()
