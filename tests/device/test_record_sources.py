"""The stockroom record's fault suite, on the device's side: what reaches it from tables, files, cameras and settings.

Each case asserts the one outcome the device promises (docs/hardening.md): the exit code, one line
on stderr for a set-up fault, no traceback, no invented item, no credential in any output.
The broker's side (queue, MQTT, stockroom-tally, the page's requests) is tests/device/test_record_broker.py.
"""

import functools
import http.server
import json
import os

import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import NEUTRAL, ROOT, classify_cam, command
from tools.stockroom_video import Step, Table, render, script


def one_line(r) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    return lines[0]


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def five(tmp_path_factory, fmnist):
    """Five garments; the same scene starting with the first garment lying still on the table (a restart)."""
    folder = tmp_path_factory.mktemp("five")
    steps, truth = script(fmnist.test.images, fmnist.test.labels, 5)
    video = render(folder / "five.avi", steps, (320, 240))
    restart = [Step(**{**steps[1].__dict__, "on_table": True})] + steps[2:]
    return video, render(folder / "restart.avi", restart, (320, 240)), truth


def test_a_restart_with_a_garment_on_the_table_invents_no_item(five, tmp_path):
    from device.spec import CLASS_NAMES

    _, restart, truth = five
    r = classify_cam("--source", restart, "--events", "--quiet", "--output", tmp_path / "e.jsonl")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    placed = [e for e in events_of(tmp_path / "e.jsonl") if e["event"] == "placed"]
    assert len(placed) == len(truth), [e["label"] for e in placed]  # the garment lying there counted once
    assert sum(e["label"] == CLASS_NAMES[c] for e, c in zip(placed, truth)) >= len(truth) - 1
    assert "re-learnt from the empty table" in r.stderr  # said, not silent


def test_a_background_with_a_garment_on_it_heals_without_phantoms(five, tmp_path, fmnist):
    video, _, truth = five
    table = Table((320, 240))  # the scene's own table, with a garment drawn on it: a background taken too early
    alpha, value = table.garment(fmnist.test.images[0])
    bad = table.frame([(alpha, value, 100, 40)])
    cv2.imwrite(str(tmp_path / "bad-background.png"), bad)
    r = classify_cam("--source", video, "--events", "--quiet", "--background", tmp_path / "bad-background.png",
                     "--output", tmp_path / "e.jsonl")
    assert r.returncode == 0, r.stderr
    placed = [e for e in events_of(tmp_path / "e.jsonl") if e["event"] == "placed"]
    assert len(placed) == len(truth), [e["label"] for e in placed]
    assert "re-learnt" in r.stderr


def damage(path: Path, start: float, length: float) -> Path:
    data = bytearray(path.read_bytes())
    a = int(len(data) * start)
    data[a: a + int(len(data) * length)] = bytes(int(len(data) * length))
    out = path.with_name("damaged-" + path.name)
    out.write_bytes(bytes(data))
    return out


def test_a_damaged_stretch_of_video_is_read_past_and_said(tmp_path, fmnist):
    steps, truth = script(fmnist.test.images, fmnist.test.labels, 4)
    steps.insert(3, Step("empty", 4.0))  # a long empty stretch in the middle, where the damage goes
    video = render(tmp_path / "v.avi", steps, (320, 240))
    total = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    middle = sum(int(s.seconds * 10) for s in steps[:3]) + 15  # frames before the damage
    damaged = damage(video, (middle + 2) / total, 1.5 / total)
    r = classify_cam("--source", damaged, "--events", "--quiet", "--output", tmp_path / "e.jsonl")
    assert r.returncode == 0, r.stderr
    placed = [e for e in events_of(tmp_path / "e.jsonl") if e["event"] == "placed"]
    assert len(placed) == len(truth), r.stderr  # before: the run ended at the damage, 2 of 4 garments
    assert "could not be decoded" in r.stderr and "Traceback" not in r.stderr


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_credentials_in_a_source_url_appear_nowhere(tmp_path, five):
    video, _, _ = five
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "v.avi").write_bytes(video.read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(tmp_path / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://keeper:s3cret-pw@127.0.0.1:{server.server_address[1]}/v.avi"
        log = tmp_path / "e.jsonl"
        r = classify_cam("--source", url, "--events", "--output", log, timeout=120)
        assert r.returncode == 0, r.stderr
        assert events_of(log) and "127.0.0.1" in log.read_text()
        for text in (r.stderr, r.stdout, log.read_text()):
            assert "s3cret" not in text and "keeper" not in text
        bad = classify_cam("--source", url.replace("v.avi", "missing.avi"), timeout=60)
        assert bad.returncode == 2 and "s3cret" not in one_line(bad)
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "v.avi"
    return render(path, [Step("empty", 1.0)], (320, 240))


@pytest.mark.parametrize("roi", ["300,0,100,100", "0,200,320,100", "400,400,10,10"])
def test_a_region_outside_the_frame_is_a_set_up_error(small_video, roi):
    r = classify_cam("--source", small_video, "--roi", roi)
    assert r.returncode == 2 and "reaches outside the 320x240 frame" in one_line(r)


def test_a_region_from_the_config_file_is_checked_too(small_video, tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"roi": [200, 100, 200, 200]}))
    r = classify_cam("--source", small_video, "--config", tmp_path / "c.json")
    assert r.returncode == 2 and f"the region saved in {tmp_path / 'c.json'}" in one_line(r)


def test_a_region_outside_an_image_of_a_folder_is_that_image_s_error(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "big.png"), np.full((300, 400), 200, np.uint8))
    cv2.imwrite(str(folder / "small.png"), np.full((60, 80), 200, np.uint8))
    r = classify_cam("--source", folder, "--roi", "10,10,100,100", "--output", tmp_path / "o.jsonl")
    assert r.returncode == 0, r.stderr
    by_name = {Path(x["source"]).name: x for x in events_of(tmp_path / "o.jsonl")}
    assert "label" in by_name["big.png"] and "reaches outside the 80x60 picture" in by_name["small.png"]["error"]


@pytest.mark.parametrize("size, ok", [((160, 120), True), ((100, 100), False), ((480, 240), False)])
def test_a_background_of_another_shape_is_refused_and_of_another_size_resized(small_video, tmp_path, size, ok):
    cv2.imwrite(str(tmp_path / "bg.png"), np.full(size[::-1], 195, np.uint8))
    r = classify_cam("--source", small_video, "--events", "--background", tmp_path / "bg.png")
    if ok:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 2 and "another shape than the 320x240 frames" in one_line(r)


@pytest.mark.parametrize("values, message", [({"background": 123}, "background must be a non-empty string"),
                                             ({"roi": [1, 2, 3]}, "roi must be"), ("[]", "expected a JSON object"),
                                             ({"token": ""}, "token must be")])
def test_a_config_file_of_the_wrong_types_is_a_set_up_error(small_video, tmp_path, values, message):
    (tmp_path / "c.json").write_text(values if isinstance(values, str) else json.dumps(values))
    r = classify_cam("--source", small_video, "--config", tmp_path / "c.json")
    assert r.returncode == 2 and message in one_line(r)


def test_a_labels_file_with_a_byte_order_mark(tmp_path, int8_model, small_video):
    labels = (int8_model.parent / "labels.txt").read_text()
    (tmp_path / "labels.txt").write_bytes("\ufeff".encode() + labels.encode())
    (tmp_path / "utf16.txt").write_bytes(labels.encode("utf-16"))
    r = classify_cam("--source", small_video, "--labels", tmp_path / "labels.txt", "--output", tmp_path / "o.jsonl",
                     "--top-k", "10")
    assert r.returncode == 0, r.stderr
    names = {name for line in events_of(tmp_path / "o.jsonl") for name, _ in line["top"]}
    assert "T-shirt/top" in names and not any("\ufeff" in n for n in names)
    bad = classify_cam("--source", small_video, "--labels", tmp_path / "utf16.txt")
    assert bad.returncode == 2 and "cannot be read as UTF-8" in one_line(bad)


def test_a_very_deep_folder_tree_and_a_symlink_loop(tmp_path):
    deep = tmp_path / "deep"
    deep.mkdir()
    os.symlink(deep, deep / "loop")  # a loop back to the top: walked once
    here = os.getcwd()
    try:
        os.chdir(deep)
        for _ in range(1200):  # deeper than Python's recursion limit
            os.mkdir("d")
            os.chdir("d")
        cv2.imwrite("a.png", np.full((60, 80), 120, np.uint8))
    finally:
        os.chdir(here)
    try:
        r = classify_cam("--source", deep, "--quiet", timeout=60)
    finally:
        remove_deep(deep)  # shutil.rmtree (pytest's clean-up too) recurses, and would fail on it
    assert r.returncode == 0 and "RecursionError" not in r.stderr, r.stderr
    assert "summary: 1 frames" in r.stderr


def remove_deep(top: Path) -> None:
    """Remove a folder tree of any depth without recursion (os.walk and shutil.rmtree recurse in Python 3.11)."""
    stack, order = [str(top)], []
    while stack:
        folder = stack.pop()
        order.append(folder)
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                os.unlink(entry.path)
    for folder in reversed(order):
        os.rmdir(folder)


def test_doctor_without_a_camera_is_not_ready(tmp_path, int8_model):
    r = classify_cam("--doctor", "--source", "/dev/video77", "--model", int8_model)
    assert r.returncode == 1 and "source      PROBLEM: /dev/video77: no such camera" in r.stdout, r.stdout
    r = classify_cam("--doctor", "--source", "7", "--model", int8_model, "--camera-timeout", "1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "source      PROBLEM" in r.stdout and "NOT READY" in r.stdout and "OK: ready" not in r.stdout
    for f in ("fashion_int8.tflite", "labels.txt"):  # a model without a card: the threshold is not "calibrated"
        (tmp_path / f).write_bytes((int8_model.parent / f).read_bytes())
    r = classify_cam("--doctor", "--source", ROOT / "docs" / "before-after.png", "--model",
                     tmp_path / "fashion_int8.tflite")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the 0.5 default" in r.stdout and "the model card's calibrated threshold" not in r.stdout


STAND_IN = '''
import time
import numpy as np

STALL_AFTER = {stall_after}  # frames this camera gives in all, over every reopening; then it hangs
CAPTURED = [0]


class Picamera2:
    """picamera2's calls as classify-cam makes them, over a synthetic scene."""

    @staticmethod
    def global_camera_info():
        return [{{"Model": "stand-in", "Num": 0}}]

    def __init__(self, index=0):
        self.config, self.started, self.count = None, False, 0

    def create_video_configuration(self, main=None, buffer_count=4):
        assert main["format"] in ("RGB888", "YUV420", "XRGB8888"), main
        return {{"main": dict(main), "buffer_count": buffer_count}}

    def configure(self, config):
        self.config = config

    def start(self):
        assert self.config is not None
        self.started = True

    def capture_array(self, name="main", wait=None):
        assert self.started and name == "main"
        self.count += 1
        CAPTURED[0] += 1
        if STALL_AFTER is not None and CAPTURED[0] > STALL_AFTER:
            time.sleep(wait if wait is not None else 3600)
            raise TimeoutError("no frame")
        w, h = self.config["main"]["size"]
        if self.config["main"]["format"] == "RGB888":  # B, G, R in memory
            frame = np.zeros((h, w, 3), np.uint8)
            frame[..., 0], frame[..., 2] = 40, 220  # blue low, red high: a red scene
            frame[h // 4: h // 2, w // 4: w // 2] = (30, 30, 30) if self.count % 2 else (32, 30, 30)
            return frame
        yuv = np.full((h * 3 // 2, w), 128, np.uint8)
        yuv[:h] = 150 + self.count % 2
        return yuv

    def stop(self):
        self.started = False

    def close(self):
        pass
'''


def stand_in(tmp_path, stall_after=None) -> dict:
    (tmp_path / "picamera2").mkdir()
    (tmp_path / "picamera2" / "__init__.py").write_text(STAND_IN.format(stall_after=stall_after))
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_the_pi_camera_gives_colour_frames_for_item_photos_and_the_page(tmp_path):
    env = stand_in(tmp_path)
    code = ("from device.sources.picamera import PiCamera\n"
            "for colour in (True, False):\n"
            "    cam = PiCamera(colour=colour)\n"
            "    f = next(iter(cam.frames()))\n"
            "    cam.close()\n"
            "    print(f.image.shape, f.image[0, 0].tolist())\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=NEUTRAL, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    colour, grey = r.stdout.splitlines()
    assert colour == "(480, 640, 3) [220, 0, 40]"  # RGB: red first, as every frame downstream expects
    assert grey.startswith("(480, 640)")


def test_a_stalled_pi_camera_ends_in_camera_timeout_seconds(tmp_path):
    env = stand_in(tmp_path, stall_after=3)
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", "import sys; from device.cli import main; sys.exit(main())",
                        "--source", "picamera", "--camera-timeout", "3", "--quiet"], cwd=NEUTRAL,
                       capture_output=True, text=True, env=env, timeout=60)
    took = time.monotonic() - t
    assert r.returncode == 1 and "delivered no fresh frame for 3 s" in r.stderr, r.stderr
    assert "reopening" in r.stderr and "Traceback" not in r.stderr
    assert took < 3 + 2 + 8  # the timeout, one capture's wait, and the start of Python and the model


class Mjpeg(http.server.BaseHTTPRequestHandler):
    """A network camera over HTTP: a multipart JPEG stream that stops after a few frames and then refuses."""

    frames = 15
    served = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).served += 1
        if type(self).served > 1:  # gone: every reconnect fails
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        jpeg = cv2.imencode(".jpg", np.full((240, 320, 3), 180, np.uint8))[1].tobytes()
        for _ in range(self.frames):
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                             + b"\r\n\r\n" + jpeg + b"\r\n")
            time.sleep(0.05)


def test_a_network_camera_over_http_that_drops_is_reconnected_then_given_up():
    from device.sources import is_live_url

    assert is_live_url("http://cam.local/stream") and is_live_url("https://cam/video.mjpg")
    assert not is_live_url("http://server/recording.mp4") and is_live_url("rtsp://cam/1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mjpeg)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = classify_cam("--source", f"http://127.0.0.1:{server.server_address[1]}/stream", "--camera-timeout", "3",
                         "--quiet", timeout=60)
    finally:
        server.shutdown()
    assert r.returncode == 1 and "no fresh frame" in r.stderr and "giving up" in r.stderr, r.stderr
    assert "summary:" in r.stderr and "Traceback" not in r.stderr




# --- the hostile review's cases -------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--queue", "--save-items", "--output", "--dump-input", "--config", "--background"])
def test_an_empty_path_is_refused_never_the_current_folder(small_video, flag, tmp_path):
    args = ["--events"] if flag in ("--queue", "--save-items") else []
    args += ["--mqtt", "mqtt://127.0.0.1:1/x"] if flag == "--queue" else []
    r = classify_cam("--source", small_video, *args, flag, "", cwd=tmp_path)
    assert r.returncode == 2 and "is empty" in one_line(r) and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, message", [(["--events", "--segment", "fast"], "--segment is for a record per frame"),
                                           (["--realtime"], "--realtime is for cameras")])
def test_flags_that_would_be_ignored_are_refused(tmp_path, args, message):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((60, 80), 120, np.uint8))
    r = classify_cam("--source", tmp_path / "a.png", *args)
    assert r.returncode == 2 and message in one_line(r)


def test_labels_that_would_name_a_folder_outside_the_items_are_refused(tmp_path, int8_model, small_video):
    labels = (int8_model.parent / "labels.txt").read_text().splitlines()
    (tmp_path / "labels.txt").write_text("\n".join([".."] + labels[1:]) + "\n")
    r = classify_cam("--source", small_video, "--events", "--labels", tmp_path / "labels.txt", "--save-items",
                     tmp_path / "items")
    assert r.returncode == 2 and "cannot be a label" in one_line(r)


def test_a_fifo_as_output_never_hangs(tmp_path, small_video):
    os.mkfifo(tmp_path / "fifo")
    r = classify_cam("--source", small_video, "--output", tmp_path / "fifo", timeout=30)
    assert r.returncode == 2 and "cannot open --output" in one_line(r)


def test_the_config_keeps_the_token_to_its_owner(tmp_path, small_video):
    config = tmp_path / "c.json"
    config.write_text("{}")
    config.chmod(0o644)  # an existing, readable settings file
    r = classify_cam("--source", small_video, "--serve", "127.0.0.1:0", "--config", config, "--max-frames", "3")
    assert r.returncode == 0, r.stderr
    assert json.loads(config.read_text())["token"] and (config.stat().st_mode & 0o077) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    r = classify_cam("--source", small_video, "--serve", "127.0.0.1:0", "--config", tmp_path)
    assert r.returncode == 2 and "not a file" in one_line(r)


@pytest.mark.parametrize("args, problem", [(["--roi", "0,0,999,999"], "reaches outside"),
                                           (["--config", "NOTJSON"], "--config"),
                                           (["--output", "/nonexistent/dir/x.jsonl"], "cannot open --output")])
def test_doctor_finds_what_would_stop_the_run(tmp_path, args, problem):
    (tmp_path / "bad.json").write_text("not json")
    args = [str(tmp_path / "bad.json") if a == "NOTJSON" else a for a in args]
    r = classify_cam("--doctor", "--source", ROOT / "docs" / "before-after.png", *args)
    assert r.returncode == 2 and "settings    PROBLEM" in r.stdout and problem in r.stdout, r.stdout
    assert "OK: ready" not in r.stdout


def test_a_background_from_the_page_without_a_config_file_is_applied_and_never_written(tmp_path):
    import urllib.error
    import urllib.request

    from tests.device.test_stockroom import free_port, wait_until

    video = render(tmp_path / "v.avi", [Step("empty", 8.0)], (320, 240))
    port, work = free_port(), tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([*command("classify-cam"), "--source", video, "--realtime", "--quiet", "--serve",
                             f"127.0.0.1:{port}"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        token = None
        for line in iter(proc.stderr.readline, ""):
            if "#token=" in line:
                token = line.split("#token=")[1].split()[0]
                break
        assert token, "no token printed"

        answers = []

        def post():
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/background", data=b"{}",
                                         headers={"X-Token": token})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    answers.append(json.loads(r.read()))
                    return r.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert wait_until(lambda: post() != 503, 10)  # a frame has come
        assert answers[-1] == {"saved": {}, "applied": ["background"], "kept": False}
        assert not list(work.iterdir())  # no background.png in the folder it was started from
    finally:
        proc.kill()
        proc.wait()


def test_a_region_set_on_the_page_applies_from_the_next_frame(tmp_path, fmnist):
    import urllib.request

    from tests.device.test_stockroom import free_port, wait_until

    steps = [Step("garment", 9.0, fmnist.test.images[0], int(fmnist.test.labels[0]))]
    video = render(tmp_path / "v.avi", steps, (320, 240))
    port, dump, config = free_port(), tmp_path / "seen", tmp_path / "c.json"
    proc = subprocess.Popen([*command("classify-cam"), "--source", video, "--realtime", "--quiet", "--serve",
                             f"127.0.0.1:{port}", "--config", config, "--dump-input", dump],
                            cwd=NEUTRAL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        garment_in = lambda: [p for p in dump.glob("*.png") if cv2.imread(str(p), 0).max() > 0]  # noqa: E731
        assert wait_until(lambda: len(garment_in()) >= 3, 20)  # the garment is seen
        token = json.loads(config.read_text())["token"]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/roi", data=json.dumps({"roi": [0, 0, 40, 40]})
                                     .encode(), headers={"X-Token": token})
        assert urllib.request.urlopen(req, timeout=5).status == 200
        before = {p.name for p in dump.glob("*.png")}
        assert wait_until(lambda: len(set(p.name for p in dump.glob("*.png")) - before) >= 5, 20)
        after = sorted(set(p.name for p in dump.glob("*.png")) - before)[1:]  # one frame may have been in flight
        assert all(cv2.imread(str(dump / name), 0).max() == 0 for name in after)  # an empty corner of the table
        assert json.loads(config.read_text())["roi"] == [0, 0, 40, 40]
    finally:
        proc.kill()
        proc.wait()
