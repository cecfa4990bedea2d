"""Where frames come from: image files, folders, globs, video files, streams, USB and Pi cameras.

Every source yields Frame records: the picture as greyscale (H, W) or RGB (H, W, 3) uint8,
or an error message for a file that could not be read. OpenCV's BGR is turned into RGB (image
files) or straight into greyscale (video and cameras, where every millisecond counts) here, at
the edge, so nothing downstream ever sees BGR.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from device.runtime import quiet_stderr

log = logging.getLogger("classify-cam")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".gif"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264", ".mjpeg"}


class SourceError(RuntimeError):
    """The source does not exist or cannot be opened (a set-up error: exit code 2)."""


class CameraLost(RuntimeError):
    """A live camera stopped delivering frames and did not come back in time."""


@dataclass
class Frame:
    source: str  # file path, or camera id
    image: np.ndarray | None  # greyscale (H, W) or RGB (H, W, 3) uint8; None with an error
    capture_ms: float
    error: str | None = None
    t: float = 0.0  # the source's own time, seconds since 1970: a camera's capture time, a video's timestamp


class Source:
    live = False  # live sources get smoothing and stall detection
    stop = threading.Event()  # set by classify-cam on SIGTERM / Ctrl-C: every wait inside a source ends early

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


MAX_PIXELS = int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 50_000_000))  # set in device/__init__.py


def read_image(path: Path) -> np.ndarray:
    """An image file -> RGB or greyscale uint8, upright; ValueError with a reason when it cannot be read.

    The one way a picture enters the device from a file (images, folders, --background):
    - decoded once, by OpenCV, turned upright by its EXIF orientation (phone photos lie on their
      side otherwise), 16-bit scaled to 8, alpha dropped;
    - at most MAX_PIXELS (50 megapixels: a 48 MP phone photo) are decoded: a small file can declare
      a huge picture, and decoding it would take gigabytes;
    - the decoders' own warnings (libpng's) never reach stderr: what went wrong is the error.
    The picture is then checked by preprocess.check_picture wherever it is used.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ValueError("no such file")
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    data = np.fromfile(path, np.uint8)
    try:
        with quiet_stderr():  # libpng writes "libpng warning: ..." itself
            image = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)  # applies EXIF orientation
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc) or "pixels" in str(exc):
            raise ValueError(f"the picture is larger than {MAX_PIXELS / 1e6:.0f} megapixels; not decoded") from None
        raise ValueError(f"not a readable image ({cv_message(exc)})") from None
    if image is None:
        raise ValueError("not a readable image (unknown format, truncated or corrupt)")
    if image.dtype != np.uint8:  # 16-bit PNG/TIFF, float TIFF/EXR
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1))
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: no second full-size copy
    if image.ndim == 3:
        return np.ascontiguousarray(image[:, :, 0])
    return image


def cv_message(exc: Exception) -> str:
    """OpenCV's error text without its 'OpenCV(5.0.0) /path/file.cpp:123: error: (-215:...)' prefix."""
    text = " ".join(str(exc).split())
    if " error: " in text:
        text = text.split(" error: ", 1)[1]
    return text.strip()


class ImageFiles(Source):
    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.first = None  # (path, picture) already decoded by a check: not decoded twice

    def frames(self) -> Iterator[Frame]:
        from device.preprocess import check_picture

        for path in self.paths:
            t = time.perf_counter()
            try:
                if self.first is not None and self.first[0] == path:
                    image, self.first = self.first[1], None
                else:
                    image = read_image(path)
                image, error = check_picture(image, "image"), None
            except (ValueError, OSError) as exc:
                image, error = None, str(exc)
            yield Frame(str(path), image, (time.perf_counter() - t) * 1000, error, time.time())


class VideoCapture(Source):
    """A video file, stream URL or camera through OpenCV.

    A live camera that stops delivering (read fails, or the same frame keeps coming back) is
    reopened with exponential backoff; after `timeout` seconds without a fresh frame it raises
    CameraLost rather than hanging or repeating the last picture.
    """

    STALE_REPEATS = 30  # identical frames in a row that mean the camera is frozen

    def __init__(self, target, live: bool, timeout: float = 10.0, size=(640, 480), colour: bool = False,
                 realtime: bool = False):
        import cv2

        self.target, self.live, self.timeout, self.size = target, live, timeout, size
        self.colour = colour  # RGB frames (for saving item photos); grey otherwise, the cheaper conversion
        self.realtime = realtime and not live  # a video file delivered at its own frame rate, as a camera would
        # A file's time: its modification time plus each frame's timestamp, the same at any reading speed.
        self.start_t = os.path.getmtime(target) if isinstance(target, str) and os.path.isfile(target) else None
        self.name = f"camera:{target}" if live else str(target)
        self._clock = None
        self.cap = self._open()
        if not self.cap.isOpened():
            raise SourceError(f"cannot open {'camera' if live else 'video'} {target}")
        self._cv2 = cv2

    def _open(self):
        import cv2

        if isinstance(self.target, str) and "://" in self.target:
            # A stream that accepts and never answers would hold ffmpeg 30 s whatever --camera-timeout says.
            ms = int(max(self.timeout, 0.1) * 1000)
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            cap = cv2.VideoCapture(self.target)
        if self.live and cap.isOpened():
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
        return cap

    def frames(self) -> Iterator[Frame]:
        previous, repeats = None, 0
        while True:
            t = time.perf_counter()
            ok, bgr = self.cap.read()
            if ok and self.live:
                sample = bgr[::16, ::16].copy()
                repeats = repeats + 1 if previous is not None and np.array_equal(sample, previous) else 0
                previous = sample
                ok = repeats < self.STALE_REPEATS
            if not ok:
                if not self.live or self.stop.is_set():
                    return  # end of the video file, or asked to stop
                if not self._recover():
                    return  # asked to stop while reconnecting
                previous, repeats = None, 0
                continue
            # Straight to greyscale: the model is greyscale, and one conversion is cheaper than two.
            image = self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB if self.colour else self._cv2.COLOR_BGR2GRAY)
            capture_ms = (time.perf_counter() - t) * 1000
            if self.start_t is None:
                stamp = time.time()
            else:
                stamp = self.start_t + self.cap.get(self._cv2.CAP_PROP_POS_MSEC) / 1000
                if self.realtime:
                    self._wait_until(stamp)
            yield Frame(self.name, image, capture_ms, None, stamp)

    def _wait_until(self, stamp: float) -> None:
        """--realtime: deliver the frame when a camera would have (the stop flag ends the wait)."""
        if self._clock is None:
            self._clock = (time.monotonic(), stamp)
        delay = self._clock[0] + (stamp - self._clock[1]) - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)

    def _recover(self) -> bool:
        """Reopen the camera with backoff until a frame comes (True); False when asked to stop meanwhile;
        CameraLost after `timeout` seconds."""
        deadline, delay = time.monotonic() + self.timeout, 0.1
        while time.monotonic() < deadline:
            log.warning("%s: no fresh frame; reopening in %.1f s", self.name, delay)
            if self.stop.wait(delay):  # SIGTERM ends the wait at once (systemctl stop never hangs)
                return False
            self.cap.release()
            self.cap = self._open()
            if self.cap.isOpened() and self.cap.grab():
                return True
            if self.stop.is_set():
                return False
            delay = min(delay * 2, 2.0)
        raise CameraLost(f"{self.name} delivered no fresh frame for {self.timeout:.0f} s; giving up")

    def close(self) -> None:
        self.cap.release()


def video_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"))


def images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not any(part.startswith(".") for part in p.parts[-1:]))


def open_source(spec: str, camera_timeout: float = 10.0, colour: bool = False, realtime: bool = False) -> Source:
    """Turn a --source value into a Source; SourceError when there is nothing to read."""
    if not spec.strip():  # an unset shell variable: never "the current folder"
        raise SourceError("--source is empty (an unset variable?): give a camera, file, folder, glob or URL")
    from device.picamera import PiCamera, picamera_available, picamera_problem

    if spec == "auto":
        problem = picamera_problem()
        if problem:  # say why the Pi camera is skipped, in one line, then try camera 0 as auto always has
            log.warning("warning: %s; trying camera 0", problem)
        return PiCamera() if picamera_available() else VideoCapture(0, True, camera_timeout, colour=colour)
    if spec == "picamera":
        return PiCamera()
    if spec.isdigit():
        return VideoCapture(int(spec), True, camera_timeout, colour=colour)
    if spec.startswith("/dev/video"):
        if not os.path.exists(spec):
            raise SourceError(f"no such camera: {spec}")
        return VideoCapture(spec, True, camera_timeout, colour=colour)
    if "://" in spec:
        return VideoCapture(spec, spec.split("://")[0] in {"rtsp", "rtmp", "udp", "tcp"}, camera_timeout, colour=colour,
                            realtime=realtime)
    path = Path(spec)
    if path.is_dir():
        files = images_under(path)
        if not files:
            raise SourceError(f"no images under {spec}")
        return ImageFiles(files)
    if path.is_file():
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return VideoCapture(str(path), False, camera_timeout, colour=colour, realtime=realtime)
        return ImageFiles([path])
    if any(c in spec for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise SourceError(f"no files match {spec}")
        return ImageFiles(files)
    raise SourceError(f"no such source: {spec}")
