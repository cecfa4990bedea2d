"""Review and correct from the page: the item list, its photos, and a relabel that the whole record follows.

A real classify-cam (--events --save-items --serve --mqtt, a rendered video at its own frame rate), a
real mosquitto, plain HTTP: the photo moves to the right label folder, a `relabelled` record goes to
--output and to the events topic, the retained tally moves the item, and stockroom-tally says it.
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from device.spec import folder_name
from tests.conftest import NEUTRAL, command
from tests.device.test_stockroom import Broker, Listener, free_port, wait_until
from tools.stockroom_video import Step, render, script


def call(url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"X-Token": token or "", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def running(tmp_path, fmnist):
    """classify-cam on a 3-garment video at its own pace, serving the page and publishing to a real broker."""
    steps, truth = script(fmnist.test.images, fmnist.test.labels, 3, seconds=3.0)
    video = render(tmp_path / "v.avi", steps + [Step("empty", 30.0)], (320, 240))  # time to look and correct
    broker = Broker(tmp_path)
    listener = Listener(broker)
    port = free_port()
    config = tmp_path / "settings.json"
    proc = subprocess.Popen(command("classify-cam") + [
        "--source", str(video), "--events", "--realtime", "--quiet", "--save-items", str(tmp_path / "items"),
        "--output", str(tmp_path / "e.jsonl"), "--mqtt", broker.url(), "--device-id", "pi-r", "--queue",
        str(tmp_path / "q"), "--serve", f"127.0.0.1:{port}", "--config", str(config)],
        cwd=NEUTRAL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert wait_until(config.is_file, 20), "the page never started"
    token = json.loads(config.read_text())["token"]
    yield f"http://127.0.0.1:{port}", token, proc, tmp_path, broker, listener
    proc.kill()
    proc.wait()
    listener.close()
    broker.close()


def test_a_relabel_moves_the_photo_writes_publishes_and_moves_the_tally(running):
    base, token, proc, tmp_path, broker, listener = running
    items = lambda: json.loads(call(base + "/api/items")[1])["items"]  # noqa: E731
    state = lambda: json.loads(call(base + "/state.json")[1])  # noqa: E731
    assert wait_until(lambda: len(items()) >= 1, 40), proc.stderr.read() if proc.poll() is not None else ""
    # A threshold set on the page applies from the next frame and is kept in --config: nothing reaches 1.0.
    assert call(base + "/api/settings", {"threshold": 1.5}, token)[0] == 400
    assert call(base + "/api/settings", {"threshold": 0.9, "speed": 2}, token)[0] == 400
    assert call(base + "/api/settings", {"threshold": 1.0})[0] == 403
    status, body = call(base + "/api/settings", {"threshold": 1.0, "settle": 0.4}, token)
    assert status == 200 and json.loads(body)["kept"], body
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert (saved["threshold"], saved["settle"]) == (1.0, 0.4)
    assert wait_until(lambda: len(items()) >= 3, 40)
    assert items()[0]["label"] == "unknown" and items()[0]["confidence"] < 1.0
    # Health, and the last events in full: a removal says what was removed.
    now = state()
    assert now["fps"] > 0 and now["free_bytes"] > 0 and now["broker"]["reached"]
    removed = [e for e in now["events"] if e["event"] == "removed"]
    assert removed and all(e["label"] in {i["label"] for i in items()} for e in removed)
    newest, older = items()[0], items()[1]
    assert newest["time"] > older["time"]  # newest first
    assert {"id", "label", "confidence", "time", "photo", "model"} <= set(newest)
    status, jpeg = call(base + newest["photo"])
    assert status == 200 and jpeg[:2] == b"\xff\xd8"
    item, was = older["id"], older["label"]
    new = "Coat" if was != "Coat" else "Bag"

    assert call(f"{base}/api/items/{item}/label", {"label": new})[0] == 403  # no token
    assert call(f"{base}/api/items/nope-1/label", {"label": new}, token)[0] == 404
    assert call(f"{base}/api/items/{item}/label", {"label": "Hat"}, token)[0] == 400
    assert call(f"{base}/items/..%2f..%2fsettings.jpg")[0] == 404

    status, body = call(f"{base}/api/items/{item}/label", {"label": new}, token)
    assert status == 200, body
    record = json.loads(body)["relabelled"]
    assert {k: record[k] for k in ("event", "id", "label", "was", "device")} == \
        {"event": "relabelled", "id": item, "label": new, "was": was, "device": "pi-r"}
    photo = tmp_path / "items" / folder_name(new) / f"{item}.jpg"
    assert photo.is_file() and not (tmp_path / "items" / folder_name(was) / f"{item}.jpg").exists()
    assert [i["label"] for i in items() if i["id"] == item] == [new]
    status, body = call(f"{base}/api/items/{item}/label", {"label": new}, token)  # the label it has: no record
    assert status == 200 and json.loads(body) == {"unchanged": item}

    # A correction of the correction, then the whole record follows: the log, the broker, the retained tally.
    assert call(f"{base}/api/items/{item}/label", {"label": "unknown"}, token)[0] == 200
    assert (tmp_path / "items" / "unknown" / f"{item}.jpg").is_file()
    # A photo deleted by hand: the correction still counts, the list says there is no photo, no empty folder stays.
    gone, gone_was = newest["id"], newest["label"]
    (tmp_path / "items" / folder_name(gone_was) / f"{gone}.jpg").unlink()
    assert call(f"{base}/api/items/{gone}/label", {"label": "Sandal"}, token)[0] == 200
    assert [i["photo"] for i in items() if i["id"] == gone] == [None]
    old = tmp_path / "items" / folder_name(gone_was)
    assert not old.exists() or any(old.iterdir())  # never an empty label folder (fashion-train refuses one)
    assert wait_until(lambda: sum(e["event"] == "relabelled" for e in listener.events()) == 3, 20)
    # Today's counts follow the corrections; their reset is a record of its own, the all-time tally untouched.
    today = state()["today"]["counts"]
    labels = [i["label"] for i in items()]
    assert today == {label: labels.count(label) for label in labels} and "Sandal" in today
    assert call(base + "/api/counts/reset", {}, None)[0] == 403
    status, body = call(base + "/api/counts/reset", {}, token)
    assert status == 200 and json.loads(body)["reset"]["counts"] == today
    assert state()["today"]["counts"] == {}
    assert wait_until(lambda: any(e["event"] == "reset" for e in listener.events()), 20)
    proc.terminate()  # a clean stop (SIGTERM): the log closed, the queue handed to the broker
    proc.wait(60)
    assert "after 3 corrections on the page" in proc.stderr.read()  # the summary's counts are the corrected ones
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    relabels = [(e["was"], e["label"]) for e in lines if e["event"] == "relabelled"]
    assert [e["counts"] for e in lines if e["event"] == "reset"] == [today]
    assert relabels == [(was, new), (new, "unknown"), (gone_was, "Sandal")]
    placed = [e["label"] for e in lines if e["event"] == "placed"]
    expected = {}
    for label in placed:
        expected[label] = expected.get(label, 0) + 1
    expected[was] -= 1
    expected["unknown"] = expected.get("unknown", 0) + 1
    expected[gone_was] -= 1
    expected["Sandal"] = expected.get("Sandal", 0) + 1
    expected = {k: v for k, v in expected.items() if v}
    assert wait_until(lambda: json.loads(listener.last("pi-r/tally") or "{}") == expected, 20), \
        (listener.last("pi-r/tally"), expected)
    out = subprocess.run(command("stockroom-tally") + ["--mqtt", broker.url(), "--once", "--wait", "1"], cwd=NEUTRAL,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "unknown 1" in out.stdout, out.stdout + out.stderr


def test_the_item_list_in_a_real_browser_corrects_a_label(running, tmp_path):
    import base64
    import importlib.util
    import tempfile

    from tests.conftest import chromium, need
    from tests.device.test_web import Browser

    chromium()
    need(importlib.util.find_spec("websocket"), "websocket-client (drives the browser)", "pip install -e '.[dev]'")
    base, token, proc, folder, broker, listener = running
    browser = Browser(tempfile.mkdtemp(prefix="chromium-"))
    try:
        browser.call("Page.navigate", url=f"{base}/#token={token}")
        browser.wait("document.querySelectorAll('#items .item').length >= 1", timeout=40)
        browser.wait("document.querySelector('#items .item img').naturalWidth > 0")  # the item's own photo
        # A label being picked is never redrawn away under the finger, whatever comes meanwhile.
        assert browser.js("(() => { const s = document.querySelector('#items .item select'); s.focus(); shown = ''; "
                          "return items().then(() => s.isConnected && document.activeElement === s); })()")
        browser.js("document.activeElement.blur()")
        first = browser.js("document.querySelector('#items .item').dataset.id")
        was = browser.js("document.querySelector('#items .item b').textContent")
        new = "Bag" if was != "Bag" else "Coat"
        browser.js("document.getElementById('items').scrollIntoView()")
        shot = browser.call("Page.captureScreenshot", format="png")["data"]
        (tmp_path / "items.png").write_bytes(base64.b64decode(shot))
        browser.js(f"(() => {{ const s = document.querySelector('#items .item select'); s.value = {new!r}; "
                   "s.dispatchEvent(new Event('change')); })()")
        browser.wait("document.getElementById('itemsmsg').textContent !== ''")
        assert browser.js("document.getElementById('itemsmsg').textContent").startswith("corrected"), \
            browser.js("document.getElementById('itemsmsg').textContent")
        browser.wait(f"document.querySelector('#items .item b').textContent === {new!r}")
        shot = browser.call("Page.captureScreenshot", format="png")["data"]
        (tmp_path / "relabelled.png").write_bytes(base64.b64decode(shot))
        if os.environ.get("WEB_SCREENSHOT"):  # the README's picture: WEB_SCREENSHOT=docs/web-page.png pytest -k browser
            browser.wait("document.querySelectorAll('#items .item').length >= 3", timeout=40)
            time.sleep(1.5)  # the next state poll: the counts follow the correction
            browser.js("window.scrollTo(0, 0)")
            size = browser.call("Page.getLayoutMetrics")["cssContentSize"]
            whole = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})["data"]
            Path(os.environ["WEB_SCREENSHOT"]).write_bytes(base64.b64decode(whole))
        assert browser.js("document.querySelector('#items .item div').textContent").count(f"the model said {was}") == 1
        browser.call("Page.navigate", url=f"{base}/")  # a later visit without the token in the address keeps it
        browser.wait(f"document.getElementById('token').value === {token!r}")
        # A phone, 390 px wide: the page fits, nothing scrolls sideways.
        browser.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
        browser.call("Page.reload")
        browser.wait("document.querySelectorAll('#items .item').length >= 1", timeout=40)
        width = browser.js("document.documentElement.scrollWidth")
        shot = browser.call("Page.captureScreenshot", format="png")["data"]
        (tmp_path / "phone.png").write_bytes(base64.b64decode(shot))
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    finally:
        browser.close()
    listed = json.loads(call(base + "/api/items")[1])["items"]
    assert [i["label"] for i in listed if i["id"] == first] == [new]
    assert wait_until(lambda: any(e["event"] == "relabelled" and e["id"] == first and e["was"] == was
                                  for e in listener.events()), 20)
