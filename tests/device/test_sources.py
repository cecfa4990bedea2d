import json
import logging
import re
import sys
import time
import types

import cv2
import numpy as np
import pytest

from device import sources
from tests.conftest import make_jpeg


def write_video(path, frames: int = 12, size=(640, 480)):
    """A real video file written with OpenCV: frame i is pure red in its left half."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened()
    for i in range(frames):
        bgr = np.full((size[1], size[0], 3), 200, np.uint8)
        bgr[:, : size[0] // 2] = (0, 0, 255)  # red, in OpenCV's BGR order
        cv2.putText(bgr, str(i), (400, 240), cv2.FONT_HERSHEY_SIMPLEX, 3, (0, 0, 0), 5)
        writer.write(bgr)
    writer.release()
    return path


def test_image_files_are_rgb(tmp_path):
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 255  # RGB
    make_jpeg(tmp_path / "red.png", red)
    (frame,) = sources.ImageFiles([tmp_path / "red.png"]).frames()
    assert frame.error is None and frame.image[0, 0].tolist() == [255, 0, 0]


def test_video_frames_are_grey_with_rgb_weights(tmp_path):
    """Red video pixels must become red's grey (0.299 * 255 = 76), not blue's (29): BGR read as BGR."""
    src = sources.open_source(str(write_video(tmp_path / "v.avi")))
    frames = list(src.frames())
    assert len(frames) == 12 and not src.live
    assert frames[0].image.ndim == 2
    assert abs(int(frames[0].image[240, 100]) - 76) <= 6


def test_unreadable_files_become_errors(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    noise = np.random.default_rng(0).integers(0, 256, (60, 60, 3)).astype(np.uint8)
    good = make_jpeg(tmp_path / "good.jpg", noise)
    raw = good.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(raw[: len(raw) // 3])
    errors = {f.source.split("/")[-1]: f.error for f in sources.open_source(str(tmp_path)).frames()}
    assert errors["good.jpg"] is None
    assert errors["empty.jpg"] == "empty file"
    assert "not a readable image" in errors["text.png"]
    assert "not a readable image" in errors["truncated.jpg"]
    assert set(errors) == {"good.jpg", "empty.jpg", "text.png", "truncated.jpg"}


def test_folder_is_recursive_and_sorted(tmp_path):
    for name in ["b/2.png", "a/1.png", "c.jpg", "notes.txt"]:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        if name.endswith("txt"):
            path.write_text("x")
        else:
            make_jpeg(path, np.zeros((8, 8), np.uint8))
    names = [p.relative_to(tmp_path).as_posix() for p in sources.open_source(str(tmp_path)).paths]
    assert names == ["a/1.png", "b/2.png", "c.jpg"]
    assert [p.name for p in sources.open_source(str(tmp_path / "*" / "*.png")).paths] == ["1.png", "2.png"]


@pytest.mark.parametrize("spec", ["/no/such/dir", "/dev/video99", "nothing*.jpg"])
def test_missing_sources_are_setup_errors(spec):
    with pytest.raises(sources.SourceError):
        sources.open_source(spec)


class FakeCapture:
    """Stands in for cv2.VideoCapture on a camera: delivers `good` frames, then only failures or repeats."""

    def __init__(self, good=3, then="fail"):
        self.good, self.then, self.reads, self.opens = good, then, 0, 1

    def isOpened(self):
        return True

    def set(self, *_):
        return True

    def read(self):
        self.reads += 1
        if self.reads <= self.good:
            return True, np.full((48, 64, 3), self.reads * 10, np.uint8)
        if self.then == "stale":
            return True, np.full((48, 64, 3), 99, np.uint8)
        return False, None

    def grab(self):
        return False

    def release(self):
        pass


def reopen_delays(caplog) -> list[float]:
    """The backoff delays the source announced: one warning per reopening."""
    return [float(m.group(1)) for r in caplog.records
            if (m := re.search(r"no fresh frame; reopening in ([0-9.]+) s", r.getMessage()))]


def test_camera_that_stops_is_retried_then_given_up(monkeypatch, caplog):
    """Reopened with a doubling backoff (0.1, 0.2, 0.4, 0.8 s) until --camera-timeout has passed, then given up."""
    caplog.set_level(logging.WARNING, logger="classify-cam")
    fake, opens = FakeCapture(good=3, then="fail"), []
    monkeypatch.setattr(sources.VideoCapture, "_open", lambda self: opens.append(time.monotonic()) or fake)
    cam = sources.VideoCapture(0, live=True, timeout=1.0)
    got = []
    t0 = time.monotonic()
    with pytest.raises(sources.CameraLost, match="no fresh frame"):
        for frame in cam.frames():
            got.append(frame)
    took = time.monotonic() - t0
    assert len(got) == 3
    assert reopen_delays(caplog) == [0.1, 0.2, 0.4, 0.8]
    assert len(opens) == 1 + 4  # the first open, and one reopening after each wait
    gaps = np.diff(opens)
    assert all(g >= d * 0.9 for g, d in zip(gaps, [0.1, 0.2, 0.4, 0.8])), gaps  # it waited before each
    assert 1.0 <= took < 3.0


class StandInCamera:
    """Stands in for cv2.VideoCapture itself: each construction is one opening of the camera. Opening number
    `plan[k]` delivers that many frames (0: opens but grabs nothing), then reads fail. Frames are a garment
    photo, each with one pixel of its own so that none is a frozen repeat."""

    plan: list[int] = []
    opens = 0
    photo: np.ndarray = None

    def __init__(self, *_args, **_kw):
        cls = type(self)
        self.deliver = cls.plan[cls.opens] if cls.opens < len(cls.plan) else 0
        cls.opens += 1
        self.reads = 0

    def isOpened(self):
        return True

    def set(self, *_):
        return True

    def grab(self):
        return self.deliver > 0

    def read(self):
        self.reads += 1
        if self.reads > self.deliver:
            return False, None
        bgr = self.photo.copy()
        bgr[0, 0] = (self.reads * 7 + type(self).opens) % 256
        return True, bgr

    def get(self, *_):
        return 0.0

    def release(self):
        pass


def test_camera_that_comes_back_goes_on_being_classified(monkeypatch, caplog, tmp_path, test_images):
    """A camera that stops, fails one reopening and then delivers again: the run goes on, the frames after the
    gap are classified like those before it, and the gap cost exactly two reopenings (0.1 s, then 0.2 s)."""
    import cv2

    from device import cli
    from tools.demo import render_photo

    caplog.set_level(logging.WARNING, logger="classify-cam")
    images, labels = test_images
    StandInCamera.photo = cv2.cvtColor(render_photo(images[1], seed=1), cv2.COLOR_RGB2BGR)
    monkeypatch.setattr(StandInCamera, "plan", [4, 0, 50])
    monkeypatch.setattr(StandInCamera, "opens", 0)
    monkeypatch.setattr(cv2, "VideoCapture", StandInCamera)
    out = tmp_path / "log.jsonl"
    code = cli.main(["--source", "0", "--camera-timeout", "5", "--max-frames", "10", "--output", str(out), "--quiet"])
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(10))
    assert all("label" in r and r["source"] == "camera:0" for r in records), records
    before, after = records[:4], records[4:]
    assert {r["label"] for r in after} == {r["label"] for r in before} != {"unknown"}
    assert StandInCamera.opens == 3 and reopen_delays(caplog) == [0.1, 0.2]


def test_frozen_camera_is_not_repeated_forever(monkeypatch):
    fake = FakeCapture(good=2, then="stale")
    monkeypatch.setattr(sources.VideoCapture, "_open", lambda self: fake)
    cam = sources.VideoCapture(0, live=True, timeout=0.3)
    count = 0
    with pytest.raises(sources.CameraLost):
        for _ in cam.frames():
            count += 1
    from device.sources.base import Stale

    assert count <= 2 + Stale.REPEATS


def test_picamera_gives_the_y_plane(monkeypatch):
    """A fake picamera2 module (the only fake: the camera hardware) delivering YUV420 frames."""
    h, w = 480, 640
    yuv = np.zeros((h * 3 // 2, w), np.uint8)
    yuv[:h] = 77  # luma
    yuv[h:] = 128  # chroma

    class Picamera2:
        @staticmethod
        def global_camera_info():
            return [{"Model": "imx708"}]

        def __init__(self, index=0):
            self.configured = None

        def create_video_configuration(self, main, buffer_count):
            return {"main": main}

        def configure(self, config):
            assert config["main"]["format"] == "YUV420"

        def start(self):
            pass

        def capture_array(self, name="main", wait=None):  # picamera2's own signature
            return yuv

        def stop(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    from device.sources import picamera

    assert picamera.picamera_available()
    cam = sources.open_source("picamera")
    frame = next(iter(cam.frames()))
    assert frame.image.shape == (h, w) and frame.image.dtype == np.uint8 and int(frame.image.max()) == 77
    cam.close()


def test_picamera_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(sources.SourceError, match="python3-picamera2"):
        sources.open_source("picamera")
