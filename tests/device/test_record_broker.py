"""The stockroom record kept trustworthy: the queue folder (one run at a time, damaged entries set aside, a damaged
tally refused), the broker's answers (a refusal keeps events queued, an unreachable broker said at once, two runs
with one device id told apart), stockroom-tally against junk on the broker, and the web page's guards.

Everything runs as a user runs it: the installed classify-cam and stockroom-tally, a real mosquitto
(conftest.mosquitto: fails under CI=true where it is absent, skips elsewhere), small rendered videos.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import NEUTRAL, classify_cam, command
from tests.device.test_stockroom import Broker, Listener, free_port, wait_until
from tools.stockroom_video import Step, render, script


@pytest.fixture(scope="module")
def videos(tmp_path_factory, fmnist):
    """one: a garment slid on and off (5 s, 2 events); two: two garments (9.5 s); long: a garment, then a long
    empty table (19.5 s: time for the web checks while it plays)."""
    folder = tmp_path_factory.mktemp("record")
    images, labels = fmnist.test.images, fmnist.test.labels
    one, _ = script(images, labels, 1, seconds=2.5)
    two, _ = script(images, labels, 2, seconds=3.0)
    long, _ = script(images, labels, 1, seconds=3.0)
    return {"one": render(folder / "one.avi", one, (320, 240)),
            "two": render(folder / "two.avi", two, (320, 240)),
            "long": render(folder / "long.avi", long + [Step("empty", 14.0)], (320, 240))}


@pytest.fixture
def broker(tmp_path):
    made = Broker(tmp_path)
    yield made
    made.close()


@pytest.fixture
def procs():
    """Processes started in the background; any still running at the end is killed."""
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class Lines:
    """A background process's stderr read as it comes: (seconds since start, line) pairs."""

    def __init__(self, proc, started):
        self.proc, self.started, self.lines = proc, started, []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append((time.monotonic() - self.started, line))

    def first(self, text):
        """When the first line holding text came (None: not yet)."""
        return next((t for t, line in list(self.lines) if text in line), None)

    def text(self):
        return "".join(line for _, line in list(self.lines))

    def finish(self, timeout=60):
        self.proc.wait(timeout)
        self.thread.join(5)
        return self.text()


def start(procs, *args, stdout=subprocess.DEVNULL):
    """classify-cam started in the background, its stderr read as it comes."""
    t0 = time.monotonic()
    proc = subprocess.Popen(command("classify-cam") + [str(a) for a in args], cwd=NEUTRAL, stdout=stdout,
                            stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    return proc, Lines(proc, t0)


def one_line_exit_2(r):
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.endswith("\n"), r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr


def queued(folder: Path) -> list[dict]:
    """The events waiting in a queue folder, oldest first."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("0*.json"))]


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def nobody_listens() -> str:
    return f"mqtt://127.0.0.1:{free_port()}/stockroom"


# --- set-up: the queue folder and the URL -------------------------------------------------------------------

def test_a_queue_folder_in_use_is_exit_2(videos, tmp_path):
    from device.stockroom.queue import Queue

    folder = tmp_path / "q"
    held = Queue(folder)  # another run holding the folder (the lock is per open file, so this process counts)
    try:
        r = classify_cam("--source", videos["one"], "--events", "--mqtt", nobody_listens(), "--queue", folder)
    finally:
        held.close()
    one_line_exit_2(r)
    assert f"the queue folder {folder} is in use by another classify-cam (pid " in r.stderr
    assert not list(folder.glob("0*.json"))  # the refused run queued nothing into the other run's folder


@pytest.mark.parametrize("junk", [b"{\"Coat\": 3", b"{\"Coat\": \"3\"}"], ids=["not-json", "string-count"])
def test_a_damaged_tally_is_exit_2(junk, videos, tmp_path):
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "tally.json").write_bytes(junk)
    r = classify_cam("--source", videos["one"], "--events", "--mqtt", nobody_listens(), "--queue", folder)
    one_line_exit_2(r)
    assert f"{folder / 'tally.json'} is damaged" in r.stderr
    assert (folder / "tally.json").read_bytes() == junk  # never overwritten


def test_a_queue_folder_that_cannot_be_made_is_exit_2(videos, tmp_path):
    (tmp_path / "file").write_text("a regular file")
    r = classify_cam("--source", videos["one"], "--events", "--mqtt", nobody_listens(), "--queue",
                     tmp_path / "file" / "q")
    one_line_exit_2(r)
    assert f"cannot use the queue folder {tmp_path / 'file' / 'q'}: Not a directory" in r.stderr


def test_a_prefix_starting_with_dollar_is_exit_2(videos, tmp_path):
    r = classify_cam("--source", videos["one"], "--events", "--mqtt", "mqtt://host/$SYS/x", "--queue", tmp_path / "q")
    one_line_exit_2(r)
    assert r.stderr == ("classify-cam: --mqtt mqtt://host/$SYS/x: topics starting with $ are the broker's own; "
                        "choose another prefix\n")


# --- the broker ---------------------------------------------------------------------------------------------

def test_an_unreadable_queue_entry_is_set_aside_and_the_rest_delivered_in_order(videos, tmp_path, broker):
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "000000000000.json").write_bytes(b"\x00 not an event {")
    old = [{"event": "placed", "id": f"pi-e-0-{n}", "item": n, "device": "pi-e", "time": f"2024-01-01T00:00:0{n}Z",
            "label": "Coat", "confidence": 0.9} for n in (1, 2)]
    old.append({"event": "removed", "id": "pi-e-0-1", "item": 1, "device": "pi-e", "time": "2024-01-01T00:00:09Z",
                "dwell_s": 8.0})
    for n, event in enumerate(old, 1):
        (folder / f"{n:012d}.json").write_text(json.dumps(event))
    listener = Listener(broker)
    try:
        r = classify_cam("--source", videos["one"], "--events", "--mqtt", broker.url(), "--device-id", "pi-e",
                         "--queue", folder, "--max-frames", "5", "--quiet")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "queued event 000000000000.json cannot be read" in r.stderr and f"moved to {folder / 'bad'}" in r.stderr
        assert "every event delivered to the broker" in r.stderr
        assert (folder / "bad" / "000000000000.json").read_bytes() == b"\x00 not an event {"  # kept, never deleted
        assert not list(folder.glob("0*.json"))
        assert wait_until(lambda: len(listener.events()) >= len(old), 10)
        time.sleep(0.3)
        assert listener.events() == old  # each once, in the queue's order
    finally:
        listener.close()


@pytest.fixture
def acl_broker(tmp_path):
    """A mosquitto whose ACL lets anonymous clients read everything under stockroom/ and write the status, tally
    and claim topics, but not the events topics. mosquitto drops root for its own user, who cannot enter pytest's
    0700 folders: the acl and config lie in a world-readable folder."""
    made = Broker(tmp_path)
    made.stop()
    made.readable = Path(tempfile.mkdtemp(prefix="mosquitto-"))
    made.readable.chmod(0o755)
    acl = made.readable / "acl"
    acl.write_text("topic read stockroom/#\ntopic write stockroom/+/status\ntopic write stockroom/+/tally\n"
                   "topic readwrite stockroom/+/claim\n")
    acl.chmod(0o644)
    made.conf = made.readable / "mosquitto.conf"
    made.conf.write_text(f"listener {made.port} 127.0.0.1\npersistence false\nallow_anonymous true\nacl_file {acl}\n")
    made.conf.chmod(0o644)
    made.start()
    yield made
    made.close()


def test_events_the_broker_refuses_stay_queued_and_the_summary_says_why(videos, tmp_path, acl_broker):
    folder, log = tmp_path / "q", tmp_path / "e.jsonl"
    listener = Listener(acl_broker)
    try:
        r = classify_cam("--source", videos["one"], "--events", "--mqtt", acl_broker.url(), "--device-id", "pi-acl",
                         "--queue", folder, "--output", log, "--quiet")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        events = events_of(log)
        assert [e["event"] for e in events] == ["placed", "removed"]
        assert queued(folder) == events  # still on the disk, whole, in order
        assert ("refused the event 000000000000.json on stockroom/pi-acl/events (Not authorized): it stays queued"
                in r.stderr)
        assert r.stderr.rstrip().endswith("; 2 events still queued for the broker (it refused them: Not authorized)")
        assert "every event delivered" not in r.stderr
        # The connection itself was fine: the retained tally (allowed) got through, no event did.
        assert wait_until(lambda: listener.last("pi-acl/tally") is not None, 5)
        assert sum(json.loads(listener.last("pi-acl/tally")).values()) == 1
        assert listener.events() == []
    finally:
        listener.close()


def test_an_unreachable_broker_is_said_at_once_and_the_events_stay_queued(videos, tmp_path, procs):
    folder, log = tmp_path / "q", tmp_path / "e.jsonl"
    url = nobody_listens()
    proc, err = start(procs, "--source", videos["one"], "--events", "--realtime", "--mqtt", url, "--device-id", "pi-u",
                      "--queue", folder, "--output", log, "--quiet")
    assert wait_until(lambda: err.first("cannot reach it") is not None or proc.poll() is not None, 10)
    said, began = err.first("cannot reach it"), err.first("events to mqtt://")
    assert said is not None and said <= 3.0, err.text()  # seconds after the start, while the video still plays
    assert began is not None and said - began <= 1.0, err.text()
    assert proc.poll() is None  # the run goes on
    text = err.finish(60)
    assert proc.returncode == 0 and "Traceback" not in text, text
    assert "cannot reach it: Connection refused; events stay queued" in text
    events = events_of(log)
    assert len(events) == 2 and queued(folder) == events
    assert text.rstrip().endswith("; 2 events still queued for the broker; the broker: cannot reach it: "
                                  "Connection refused")


def test_two_runs_with_one_device_id_are_told_apart(videos, tmp_path, broker, procs):
    runs = [start(procs, "--source", videos["two"], "--events", "--realtime", "--mqtt", broker.url(), "--device-id",
                  "pi-same", "--queue", tmp_path / f"q{n}", "--output", tmp_path / f"e{n}.jsonl", "--quiet")
            for n in (1, 2)]
    clash = "uses the device id pi-same on this broker: the two knock each other off"
    assert wait_until(lambda: any(err.first(clash) is not None for _, err in runs)
                      or all(p.poll() is not None for p, _ in runs), 25)
    for proc, _ in runs:
        if proc.poll() is None:
            proc.terminate()  # told apart: no need to play the rest of the video
    texts = [err.finish(30) for _, err in runs]
    assert any("warning: another device (" in t and clash in t for t in texts), texts
    assert not any("Traceback" in t for t in texts), texts


# --- stockroom-tally --------------------------------------------------------------------------------------

def publish(broker, messages):
    """(topic, payload, retain) published with QoS 1, each acknowledged."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for topic, payload, retain in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


JUNK = [("stockroom/pi-str/tally", json.dumps({"Coat": "3"}), True),
        ("stockroom/pi-text/tally", "not json {", True),
        ("stockroom/pi-list/tally", "[1, 2]", True),
        ("stockroom/pi-junk/events", json.dumps({"event": "placed", "id": ["a"], "label": "Coat", "time": "T0"}), True),
        ("stockroom/pi-junk/events", b"\xff\xfe not utf-8", False),
        ("stockroom/pi-junk/events", json.dumps({"event": "placed", "id": "x", "label": 5}), False)]


def test_stockroom_tally_shrugs_off_junk_on_the_broker(broker, procs):
    publish(broker, [("stockroom/pi-1/tally", json.dumps({"Coat": 2, "Bag": 1}), True),
                     ("stockroom/pi-2/tally", json.dumps({"Sneaker": 4}), True)] + JUNK)
    once = subprocess.run(command("stockroom-tally") + ["--mqtt", broker.url(), "--once", "--wait", "1"], check=False,
                          cwd=NEUTRAL, capture_output=True, text=True, timeout=30)
    assert once.returncode == 0 and "Traceback" not in once.stderr, once.stderr
    assert once.stdout == "pi-1: Coat 2, Bag 1  (total 3)\npi-2: Sneaker 4  (total 4)\n"

    live = subprocess.Popen(command("stockroom-tally") + ["--mqtt", broker.url(), "--wait", "1"], cwd=NEUTRAL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(live)
    out = []
    threading.Thread(target=lambda: out.extend(live.stdout), daemon=True).start()
    assert wait_until(lambda: len(out) >= 2, 15), out
    assert out == ["pi-1: Coat 2, Bag 1  (total 3)\n", "pi-2: Sneaker 4  (total 4)\n"]
    publish(broker, JUNK + [("stockroom/pi-3/events", json.dumps({"event": "placed", "id": "pi-3-r-0",
                                                                  "label": "Dress", "time": "T1"}), False)])
    assert wait_until(lambda: len(out) >= 3, 10), out
    assert out[2] == "T1  pi-3: Dress  |  pi-1: Coat 2, Bag 1  (total 3)  |  pi-2: Sneaker 4  (total 4)\n"
    time.sleep(0.5)
    assert live.poll() is None and len(out) == 3  # still listening; no line for any junk
    live.terminate()
    _, err = live.communicate(timeout=10)
    assert "Traceback" not in err, err


# --- the web page -----------------------------------------------------------------------------------------

def request(address, method, path, body=b"", headers=None, timeout=5):
    """(status, body text) of one request on a fresh connection."""
    conn = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        conn.putrequest(method, path)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_the_web_page_guards_its_requests_and_connections(videos, tmp_path, procs):
    settings = tmp_path / "settings"
    settings.mkdir()
    config = settings / "page.json"
    proc, err = start(procs, "--source", videos["long"], "--events", "--realtime", "--serve", "127.0.0.1:0",
                      "--config", config, "--quiet")
    assert wait_until(lambda: err.first("web page at http://") is not None or proc.poll() is not None, 30), err.text()
    port = int(err.text().split("web page at http://127.0.0.1:")[1].split("/")[0])
    address = ("127.0.0.1", port)
    token = json.loads(config.read_text())["token"]

    def roi(body, **headers):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return request(address, "POST", "/api/roi", data, {"X-Token": token, "Content-Length": str(len(data)),
                                                           **headers})

    def frame_size():
        return json.loads(request(address, "GET", "/state.json")[1])["size"]

    assert wait_until(lambda: frame_size() is not None, 20)
    assert frame_size() == [320, 240]

    assert roi({"roi": [0, 0, 10, 10]}, **{"Content-Length": "ten"}) == (
        400, "Content-Length must be a whole number of bytes")
    assert roi(b'{"roi": [0, 0, 10, 10]' + b" " * 20_000 + b"}") == (
        413, "the request body is too large (10,000 bytes at most)")
    assert roi({"roi": [300, 0, 100, 100]}) == (400, "the region [300, 0, 100, 100] reaches outside the 320x240 frame")
    assert roi({"roi": [0, 200, 10, 50]})[0] == 400
    assert "roi" not in json.loads(config.read_text())  # nothing refused was saved
    assert roi({"roi": [10, 20, 200, 150]})[0] == 200
    assert json.loads(config.read_text())["roi"] == [10, 20, 200, 150]

    shutil.rmtree(settings)  # the settings' folder replaced by a file: they cannot be saved any more
    settings.write_text("not a folder")
    assert roi({"roi": [0, 0, 100, 100]}) == (500, f"cannot save the settings to {config}: Not a directory")
    state = json.loads(request(address, "GET", "/state.json")[1])
    assert state["roi"] == [10, 20, 200, 150]  # what could not be saved did not take effect either
    assert proc.poll() is None

    # 40 connections opened at once and held idle: the server keeps 16 of them (the rest answered 503 and closed at
    # once, so they cannot use up the process's descriptors), drops the idle ones after a short while, and a
    # normal request gets its answer within a few seconds.
    t0 = time.monotonic()
    idle = [socket.create_connection(address, timeout=5) for _ in range(40)]
    try:
        assert time.monotonic() - t0 < 1.0  # none waited to be accepted
        time.sleep(0.3)
        kept = busy = 0
        for s in idle:
            s.settimeout(0.02)
            try:
                busy += s.recv(64).startswith(b"HTTP/1.1 503")  # refused with an answer the client can act on
            except TimeoutError:
                kept += 1  # still open, waiting for a request
            except ConnectionError:
                pass
        assert kept == 16 and busy == 24
        answer = None
        while (answer is None or answer[0] == 503) and time.monotonic() - t0 < 15:  # busy: try again
            try:
                answer = request(address, "GET", "/state.json", timeout=2)
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                time.sleep(0.1)
        assert answer is not None and answer[0] == 200
        assert time.monotonic() - t0 <= 4.0, f"answered {time.monotonic() - t0:.1f} s after the idle connections came"
    finally:
        for s in idle:
            s.close()
    assert proc.poll() is None  # the run goes on
    proc.terminate()
    text = err.finish(30)
    assert proc.returncode == 0 and "Traceback" not in text, text


# --- the hostile review's cases -------------------------------------------------------------------------------

def test_events_the_queue_disk_cannot_hold_are_sent_from_memory(videos, tmp_path, broker):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(small)]).returncode:
        pytest.skip("mounting a tmpfs needs root")  # root in CI: this never skips there
    try:
        listener = Listener(broker)
        (small / "q").mkdir()
        fd = os.open(small / "fill", os.O_WRONLY | os.O_CREAT)  # fill the disk to the last block
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        r = classify_cam("--source", videos["two"], "--events", "--mqtt", broker.url(), "--device-id", "pi-full",
                         "--queue", small / "q", "--output", tmp_path / "e.jsonl", "--quiet", timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "events are sent from memory" in r.stderr
        assert wait_until(lambda: len(listener.events()) == len(events_of(tmp_path / "e.jsonl")) == 4, 20), \
            (listener.events(), r.stderr)
        assert "every event delivered to the broker" in r.stderr and "LOST" not in r.stderr
        listener.close()
    finally:
        subprocess.run(["umount", str(small)])


def test_a_claim_nested_too_deep_stops_nothing(videos, tmp_path, broker):
    publish(broker, [("stockroom/pi-deep/claim", b"[" * 200000, True)])
    listener = Listener(broker)
    r = classify_cam("--source", videos["one"], "--events", "--mqtt", broker.url(), "--device-id", "pi-deep",
                     "--queue", tmp_path / "q", "--quiet", timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "Recursion" not in r.stderr, r.stderr
    assert "every event delivered to the broker" in r.stderr
    assert wait_until(lambda: len(listener.events()) == 2, 20)
    listener.close()


def test_a_broker_that_never_answers_the_login_is_said(videos, tmp_path, procs):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never says a word
    try:
        url = f"mqtt://127.0.0.1:{silent.getsockname()[1]}/stockroom"
        proc, err = start(procs, "--source", videos["long"], "--events", "--realtime", "--mqtt", url, "--queue",
                          tmp_path / "q", "--quiet")
        assert wait_until(lambda: err.first("no answer to the login") is not None, 20), err.text()
        proc.terminate()
        text = err.finish(30)
        assert "Traceback" not in text and "every event delivered" not in text, text
    finally:
        silent.close()


@pytest.mark.parametrize("url", ["mqtt://broker..local/x", "mqtt://" + "a" * 70 + "/x", "mqtt://h:99999/x"])
def test_a_host_the_resolver_cannot_take_is_exit_2(videos, tmp_path, url):
    one_line_exit_2(classify_cam("--source", videos["one"], "--events", "--mqtt", url, "--queue", tmp_path / "q"))
    r = subprocess.run(command("stockroom-tally") + ["--mqtt", url, "--once"], cwd=NEUTRAL, capture_output=True,
                       text=True, timeout=30)
    one_line_exit_2(r)


def test_a_tally_that_is_a_folder_or_a_name_that_is_no_sequence(videos, tmp_path):
    folder = tmp_path / "q"
    (folder / "tally.json").mkdir(parents=True)
    r = classify_cam("--source", videos["one"], "--events", "--mqtt", nobody_listens(), "--queue", folder)
    one_line_exit_2(r)
    assert "tally.json is not a file" in r.stderr
    (folder / "tally.json").rmdir()
    (folder / "\u00b2.json").write_text("{}")  # int() refuses a superscript digit that isdigit() accepts
    (folder / "notes.tmp").write_text("mine")  # not the queue's: left alone
    r = classify_cam("--source", videos["one"], "--events", "--mqtt", nobody_listens(), "--queue", folder, "--quiet")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (folder / "notes.tmp").read_text() == "mine" and (folder / "\u00b2.json").exists()
