"""The Raspberry Pi camera, through apt's picamera2 (imported lazily), and what to say when it breaks."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from device.sources.base import Frame, Source, SourceError, Stale


class PiCamera(Source):
    """The Raspberry Pi camera through picamera2 (from apt: python3-picamera2), imported lazily.

    Grey is enough for the model: a YUV420 stream, whose first plane (Y) is the grey picture with no
    conversion at all. Colour when item photos or the page need it: an "RGB888" stream (picamera2's
    RGB888 is B, G, R in memory), turned into RGB here at the edge. A capture that does not come within
    a second or two, or the same picture over and over, is a stall: the stall rule every camera shares.
    """

    live = True
    CAPTURE_WAIT_S = 2.0  # the longest a single capture may take before it counts as a stall

    def __init__(self, size=(640, 480), index: int = 0, timeout: float = 10.0, colour: bool = False):
        self.Picamera2 = import_picamera2()
        if not self.Picamera2.global_camera_info():
            raise SourceError("no Raspberry Pi camera found")
        self.name, self.index, self.size, self.timeout, self.colour = f"picamera:{index}", index, size, timeout, colour
        self.cam = None
        self.cam = self._start()

    def _start(self):
        cam = self.Picamera2(self.index)
        stream = {"size": self.size, "format": "RGB888" if self.colour else "YUV420"}
        cam.configure(cam.create_video_configuration(main=stream, buffer_count=2))
        cam.start()
        return cam

    def _capture(self):
        """One frame as the model's convention wants it, or None when none came in time."""
        w, h = self.size
        try:
            array = self.cam.capture_array("main", wait=min(self.CAPTURE_WAIT_S, self.timeout))
        except TimeoutError:
            return None
        if self.colour:  # (h, stride // 3, 3): B, G, R
            return np.ascontiguousarray(array[:h, :w, 2::-1])
        return np.ascontiguousarray(array[:h, :w])  # (h * 3 / 2, stride): the Y plane is the first h rows

    def _reopen(self) -> bool:
        self.close()
        try:
            self.cam = self._start()
        except Exception:  # noqa: BLE001 (libcamera raises its own kinds while a camera is gone)
            self.cam = None
            return False
        return self._capture() is not None

    def frames(self) -> Iterator[Frame]:
        stale = Stale()
        while True:
            t = time.perf_counter()
            image = self._capture() if self.cam is not None else None
            if image is None or stale(image):
                if self.stop.is_set() or not self.recover(self._reopen):
                    return
                stale.reset()
                continue
            yield Frame(self.name, image, (time.perf_counter() - t) * 1000, None, time.time())

    def close(self) -> None:
        if self.cam is not None:
            try:
                self.cam.stop()
                self.cam.close()
            except Exception:  # noqa: BLE001 (closing a camera that already went away)
                pass
            self.cam = None


class PicameraBroken(SourceError):
    """picamera2 is installed but cannot be imported; the message names the cause and the fix."""


def import_picamera2():
    """picamera2's Picamera2 class; SourceError (PicameraBroken when installed but failing) in one line.

    picamera2 comes from apt and is built, with simplejpeg and the rest, for the system's NumPy. The
    most common way it breaks is a venv that put another NumPy in front of it ("numpy.dtype size
    changed"), so that case names the fix: the install script that keeps the system's NumPy.
    """
    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # NumPy prints a page about its ABI before raising
            from picamera2 import Picamera2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "picamera2":
            raise SourceError("picamera2 is not installed: on a Pi, sudo apt install python3-picamera2, then "
                              "sh deploy/install-pi.sh (a venv with --system-site-packages)") from None
        raise PicameraBroken(explain_picamera_error(exc)) from None
    except Exception as exc:  # ValueError, ImportError, AttributeError...: installed, but broken
        raise PicameraBroken(explain_picamera_error(exc)) from None
    return Picamera2


def explain_picamera_error(exc: BaseException) -> str:
    """One line: why picamera2 failed to import, and what to do about it."""
    import numpy

    text = " ".join(str(exc).split())
    numpy_abi = ("numpy.dtype size changed", "compiled using NumPy 1.x", "compiled against", "_ARRAY_API",
                 "numpy.core.multiarray failed to import", "numpy._core")
    if any(marker in text for marker in numpy_abi):
        built = "NumPy 1.x" if int(numpy.__version__.split(".")[0]) >= 2 else "another NumPy"
        return (f"picamera2 from apt was built for {built}, this environment has NumPy {numpy.__version__}: "
                "reinstall with deploy/install-pi.sh")
    return (f"picamera2 is installed but cannot be imported ({type(exc).__name__}: {text[:160]}): "
            "reinstall it with sudo apt install --reinstall python3-picamera2, then sh deploy/install-pi.sh")


def picamera_problem() -> str | None:
    """None when picamera2 imports (or is simply not installed); else the one-line cause and fix."""
    try:
        import_picamera2()
    except PicameraBroken as exc:
        return str(exc)
    except SourceError:
        return None
    return None


def picamera_available() -> bool:
    try:
        Picamera2 = import_picamera2()
    except SourceError:
        return False
    try:
        return bool(Picamera2.global_camera_info())
    except Exception:  # a broken libcamera install counts as no camera
        return False
