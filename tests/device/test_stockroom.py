"""Stockroom mode on rendered stockroom videos, with a real mosquitto broker started by the tests.

make setup installs Debian's mosquitto; where it is absent the broker tests fail under CI=true and skip
otherwise, saying so in one line (conftest.mosquitto). classify-cam and stockroom-tally run as a user runs
them: the installed commands, started outside the checkout.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import NEUTRAL, classify_cam, command, mosquitto, need
from device.spec import folder_name
from tools.stockroom_video import Step, Table, render, script


def cam(*args, timeout=120, **kw):
    return classify_cam(*args, timeout=timeout, **kw)


def events_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_pairs(events):
    """Exactly one placed and one removed per item, removed after placed, with the same id; returns the placed."""
    placed = [e for e in events if e["event"] == "placed"]
    removed = [e for e in events if e["event"] == "removed"]
    assert len(placed) + len(removed) == len(events)
    assert sorted(e["id"] for e in placed) == sorted(e["id"] for e in removed), events
    assert len({e["id"] for e in placed}) == len(placed)
    for e in placed:
        later = events[events.index(e) + 1:]
        assert [r for r in later if r["id"] == e["id"]][0]["dwell_s"] > 0
        assert {"event", "id", "item", "device", "source", "time", "label", "confidence", "top", "frames",
                "model"} <= set(e)
        assert len(e["model"]) == 12 and int(e["model"], 16) >= 0  # the first 12 hex of the int8 file's sha256
    return placed


@pytest.fixture(scope="module")
def scene(tmp_path_factory, fmnist):
    """12 garments slid on and off a table, a hand passing and light changing between some of them; the same
    scene without its first empty table (the first garment slides in from the first frame); the empty table."""
    folder = tmp_path_factory.mktemp("stockroom")
    steps, truth = script(fmnist.test.images, fmnist.test.labels, 12, hands=True, light=True)
    video = render(folder / "stockroom.avi", steps, (320, 240))
    assert steps[0].kind == "empty"
    no_empty_start = render(folder / "no-empty-start.avi", steps[1:], (320, 240))
    empty = Table((320, 240)).frame([])
    cv2.imwrite(str(folder / "empty.png"), empty)
    return video, truth, folder / "empty.png", no_empty_start


@pytest.mark.parametrize("with_background", [False, True], ids=["learnt-background", "given-background"])
def test_one_placed_and_one_removed_per_garment(scene, tmp_path, with_background):
    video, truth, empty, no_empty_start = scene
    log = tmp_path / "events.jsonl"
    # With --background no empty table is needed first: a garment there from the first frame is an item, not
    # part of a learnt table (which would miss it, then place the bare table where it had been).
    extra = ["--background", empty] if with_background else []
    r = cam("--source", no_empty_start if with_background else video, "--events", "--output", log, "--device-id",
            "pi-1", "--quiet", *extra)
    assert r.returncode == 0, r.stderr
    placed = check_pairs(events_of(log))
    assert len(placed) == len(truth)  # no item from the hand or the light
    from device.spec import CLASS_NAMES

    right = sum(e["label"] == CLASS_NAMES[c] for e, c in zip(placed, truth))
    assert right >= 0.9 * len(truth), [e["label"] for e in placed]
    assert "12 items placed" in r.stderr


def test_motion_and_light_alone_make_no_item(tmp_path):
    steps = [Step("empty", 1.5), Step("hand", 1.0), Step("empty", 1.0), Step("light", 2.0), Step("empty", 1.5),
             Step("hand", 1.0), Step("empty", 1.0)]
    video = render(tmp_path / "v.avi", steps, (320, 240))
    r = cam("--source", video, "--events", "--output", tmp_path / "e.jsonl")
    assert r.returncode == 0 and not (tmp_path / "e.jsonl").read_text()
    assert "0 items placed" in r.stderr and ", 0 inferences" in r.stderr  # an empty, still table costs no inference


def test_a_swap_without_an_empty_table_is_two_items(tmp_path, fmnist):
    # The empty table; the first garment slid off while the second slides on; the second left, then slid off.
    steps, truth = script(fmnist.test.images, fmnist.test.labels, 2, swap=True)
    assert [s.kind for s in steps] == ["empty", "swap", "garment", "empty"]
    video = render(tmp_path / "v.avi", steps, (320, 240))
    r = cam("--source", video, "--events", "--output", tmp_path / "e.jsonl")
    assert r.returncode == 0, r.stderr
    events = events_of(tmp_path / "e.jsonl")
    assert [e["event"] for e in events] == ["placed", "removed", "placed", "removed"], events
    check_pairs(events)
    from device.spec import CLASS_NAMES

    assert [e["label"] for e in events if e["event"] == "placed"] == [CLASS_NAMES[c] for c in truth]


def test_realtime_gives_the_same_events_and_takes_the_video_time(tmp_path, fmnist):
    steps, _ = script(fmnist.test.images, fmnist.test.labels, 1, seconds=2.5)
    video = render(tmp_path / "v.avi", steps, (320, 240))  # 1.5 + 2.5 + 1.0 seconds
    t0 = time.monotonic()
    fast = cam("--source", video, "--events", "--output", tmp_path / "fast.jsonl")
    t1 = time.monotonic()
    slow = cam("--source", video, "--events", "--realtime", "--output", tmp_path / "slow.jsonl")
    t2 = time.monotonic()
    assert fast.returncode == slow.returncode == 0, fast.stderr + slow.stderr
    assert events_of(tmp_path / "fast.jsonl") == events_of(tmp_path / "slow.jsonl")
    assert len(events_of(tmp_path / "fast.jsonl")) == 2
    assert t2 - t1 >= 4.5 and (t2 - t1) - (t1 - t0) >= 3.0  # the video's 4.9 s from first to last frame


def test_save_items_writes_the_photo_layout_fashion_train_reads(scene, tmp_path):
    video, truth, _, _ = scene
    r = cam("--source", video, "--events", "--save-items", tmp_path / "items", "--output", tmp_path / "e.jsonl")
    assert r.returncode == 0, r.stderr
    placed = [e for e in events_of(tmp_path / "e.jsonl") if e["event"] == "placed"]
    assert len(placed) == len(truth)
    for e in placed:
        folder = tmp_path / "items" / folder_name(e["label"])
        photo = cv2.imread(str(folder / f"{e['id']}.jpg"))
        assert photo is not None and photo.shape[:2] == (240, 320)  # full resolution
        assert cv2.imread(str(tmp_path / "items" / ".inputs" / f"{e['id']}.png"), 0).shape == (28, 28)
        assert all(p.suffix == ".jpg" for p in folder.iterdir())  # nothing but photos in the label folders
    from train import photos

    found = photos.scan([tmp_path / "items"])  # the layout needs no mapping
    assert sorted(p.path.stem for p in found) == sorted(e["id"] for e in placed)


def test_events_flags_need_a_video_source(tmp_path):
    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", np.full((50, 50), 200, np.uint8))[1].tobytes())
    r = cam("--source", tmp_path / "a.png", "--events")
    assert r.returncode == 2 and "not for image files" in r.stderr
    r = cam("--source", tmp_path / "a.png", "--mqtt", "mqtt://localhost/x")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1  # one line naming both flags
    assert "--mqtt" in r.stderr and "--events" in r.stderr


# --- MQTT -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A real mosquitto on a free loopback port, with a config written here; stop() and start() at will."""

    def __init__(self, folder, password: tuple | None = None):
        self.program = mosquitto()  # absent: fails under CI=true, skips otherwise, in one line
        self.port = free_port()
        self.folder = folder
        self.readable = None
        conf = [f"listener {self.port} 127.0.0.1", "persistence false"]
        if password:  # mosquitto drops root for its own user, who cannot enter pytest's 0700 folders
            passwd = shutil.which("mosquitto_passwd")
            need(passwd, "mosquitto_passwd (Debian's mosquitto package)", "sudo apt-get install mosquitto")
            self.readable = Path(tempfile.mkdtemp(prefix="mosquitto-"))
            self.readable.chmod(0o755)
            pw = self.readable / "passwords"
            subprocess.run([passwd, "-b", "-c", str(pw), *password], check=True, capture_output=True)
            conf += ["allow_anonymous false", f"password_file {pw}"]
        else:
            conf.append("allow_anonymous true")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.program, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        self.stop()
        if self.readable:
            shutil.rmtree(self.readable, ignore_errors=True)

    def url(self, prefix="stockroom", auth=""):
        return f"mqtt://{auth}127.0.0.1:{self.port}/{prefix}"


class Listener:
    """A subscriber that records everything under the prefix (retained messages too)."""

    def __init__(self, broker: Broker, prefix="stockroom"):
        import paho.mqtt.client as mqtt

        self.messages, self.lock, subscribed = [], threading.Lock(), threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", broker.port)
        self.client.loop_start()
        assert subscribed.wait(10), "the test's subscriber never got its subscription"

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), msg.retain))

    def events(self):
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def last(self, suffix):
        with self.lock:
            found = [p for t, p, _ in self.messages if t.endswith(suffix)]
        return found[-1] if found else None

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def background_runs():
    """classify-cam --events --realtime started in the background; any still running at the end is killed."""
    procs = []

    def start(video, broker, device, queue, log, stderr):
        procs.append(realtime_run(video, broker, device, queue, log, stderr))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def realtime_run(video, broker, device, queue, log, stderr):
    """classify-cam --events --realtime on the video, publishing to the broker, started in the background."""
    return subprocess.Popen(command("classify-cam") + ["--source", str(video), "--events", "--realtime", "--mqtt",
                            broker.url(), "--device-id", device, "--queue", str(queue), "--output", str(log),
                            "--quiet"], cwd=NEUTRAL, stderr=stderr, text=True)


@pytest.fixture
def short_scene(tmp_path, fmnist):
    steps, truth = script(fmnist.test.images, fmnist.test.labels, 4, seconds=3.0)
    return render(tmp_path / "short.avi", steps, (320, 240)), truth


@pytest.fixture
def make_broker(tmp_path):
    """Brokers made with Broker(tmp_path, ...), all stopped afterwards."""
    made = []

    def make(**kw):
        made.append(Broker(tmp_path, **kw))
        return made[-1]

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def site(make_broker):
    """A running broker and a subscriber to everything on it: (broker, listener), both stopped afterwards."""
    broker = make_broker()
    listener = Listener(broker)
    yield broker, listener
    listener.close()


def test_events_tally_and_status_reach_the_broker(short_scene, tmp_path, site):
    video, truth = short_scene
    broker, listener = site
    r = cam("--source", video, "--events", "--mqtt", broker.url(), "--device-id", "pi-a", "--queue",
            tmp_path / "q", "--output", tmp_path / "e.jsonl")
    assert r.returncode == 0, r.stderr
    assert "every event delivered" in r.stderr
    assert wait_until(lambda: len(listener.events()) == 2 * len(truth))
    assert listener.events() == events_of(tmp_path / "e.jsonl")
    tally = json.loads(listener.last("pi-a/tally"))
    assert sum(tally.values()) == len(truth)
    assert wait_until(lambda: listener.last("pi-a/status") == "offline")
    out = subprocess.run(command("stockroom-tally") + ["--mqtt", broker.url(), "--once", "--wait", "1"], cwd=NEUTRAL,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("pi-a:") and f"(total {len(truth)})" in out.stdout


def test_broker_restart_mid_run_loses_nothing(short_scene, tmp_path, site, background_runs):
    video, truth = short_scene
    broker, listener = site
    proc = background_runs(video, broker, "pi-b", tmp_path / "q", tmp_path / "e.jsonl", subprocess.PIPE)
    assert wait_until(lambda: len(listener.events()) >= 1, 30)
    broker.stop()  # the server goes down for a few seconds, in the middle of the run
    time.sleep(4)
    broker.start()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    sent = events_of(tmp_path / "e.jsonl")
    assert wait_until(lambda: {e["id"] + e["event"] for e in listener.events()} >=
                      {e["id"] + e["event"] for e in sent}, 30), err
    order = []  # in order: first arrivals follow the log's order
    for e in listener.events():
        if (e["id"], e["event"]) not in order:
            order.append((e["id"], e["event"]))
    assert order == [(e["id"], e["event"]) for e in sent]


def test_sigkill_while_the_broker_is_down_then_restart_delivers_the_queue(short_scene, tmp_path, make_broker,
                                                                          background_runs):
    video, truth = short_scene
    broker = make_broker()
    broker.stop()  # down from the start: everything queues on disk
    queue = tmp_path / "q"
    proc = background_runs(video, broker, "pi-c", queue, tmp_path / "e.jsonl", subprocess.DEVNULL)
    assert wait_until(lambda: len(list(queue.glob("*.json"))) >= 3, 60)
    proc.kill()  # a power cut
    proc.wait()
    queued = sorted(json.loads(p.read_text())["id"] + json.loads(p.read_text())["event"]
                    for p in queue.glob("0*.json"))
    assert queued
    broker.start()
    listener = Listener(broker)
    try:
        r = cam("--source", video, "--events", "--mqtt", broker.url(), "--device-id", "pi-c", "--queue", queue,
                "--max-frames", "5", "--quiet")
        assert r.returncode == 0 and "waiting from before" in r.stderr, r.stderr
        assert wait_until(lambda: set(queued) <= {e["id"] + e["event"] for e in listener.events()}, 30)
        assert not list(queue.glob("0*.json"))
    finally:
        listener.close()


def test_refused_login_and_unreachable_broker_queue_and_say_so(short_scene, tmp_path, make_broker):
    video, truth = short_scene
    broker = make_broker(password=("pi", "secret"))
    r = cam("--source", video, "--events", "--mqtt", broker.url(auth="pi:wrong@"), "--device-id", "pi-d",
            "--queue", tmp_path / "q1", "--quiet")
    assert r.returncode == 0
    assert "refused the connection" in r.stderr and "still queued" in r.stderr
    assert "wrong" not in r.stderr  # never the password
    r = cam("--source", video, "--events", "--mqtt", broker.url(auth="pi@"), "--device-id", "pi-d",
            "--queue", tmp_path / "q2", "--quiet", env={**os.environ, "CLASSIFY_CAM_MQTT_PASSWORD": "secret"})
    assert r.returncode == 0 and "every event delivered" in r.stderr, r.stderr
    broker.close()
    r = cam("--source", video, "--events", "--mqtt", f"mqtt://127.0.0.1:{free_port()}/x", "--queue", tmp_path / "q3",
            "--quiet")
    assert r.returncode == 0 and f"{2 * len(truth)} events still queued" in r.stderr


@pytest.mark.parametrize("url", ["http://broker/x", "mqtt://", "mqtt://host", "mqtt://host:99999/x",
                                 "mqtt://host/a/+/b"])
def test_malformed_mqtt_url_is_exit_2(url, short_scene):
    video, _ = short_scene
    r = cam("--source", video, "--events", "--mqtt", url)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--mqtt" in r.stderr


def test_events_cost_no_more_than_a_frame_of_work(scene):
    video, truth, _, _ = scene
    from device.stockroom.tracker import Tracker
    from device.model import Model
    from device.sources import VideoCapture

    import models

    class Counting:
        labels = Model(models.INT8_MODEL, models.LABELS).labels
        id = "counting"

        def __init__(self):
            self.model, self.calls = Model(models.INT8_MODEL, models.LABELS), 0

        def scores(self, x):
            self.calls += 1
            return self.model.scores(x)

    counting = Counting()
    tracker = Tracker(counting, "pi", 0.2)
    frames = 0
    for frame in VideoCapture(str(video), live=False).frames():
        frames += 1
        tracker.feed(frame)
    assert 0 < counting.calls <= 8 * len(truth) < frames / 5  # only settled items are classified


def test_default_queue_follows_systemd_then_home(monkeypatch, tmp_path):
    from device.stockroom import mqtt

    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert mqtt.default_queue("pi-1") == tmp_path / "state"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mqtt.default_queue("pi-1") == tmp_path / ".local" / "state" / "classify-cam" / "pi-1"
