"""The Raspberry Pi camera, through apt's picamera2 (imported lazily), and what to say when it breaks."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from device.sources.base import Frame, Source, SourceError


class PiCamera(Source):
    """The Raspberry Pi camera through picamera2 (from apt: python3-picamera2), imported lazily.

    We ask for a small YUV420 stream: its first plane (Y) is already the greyscale picture, so
    no colour conversion is needed at all.
    """

    live = True

    def __init__(self, size=(640, 480), index: int = 0):
        Picamera2 = import_picamera2()
        if not Picamera2.global_camera_info():
            raise SourceError("no Raspberry Pi camera found")
        self.name = f"picamera:{index}"
        self.size = size
        self.cam = Picamera2(index)
        config = self.cam.create_video_configuration(main={"size": size, "format": "YUV420"}, buffer_count=2)
        self.cam.configure(config)
        self.cam.start()

    def frames(self) -> Iterator[Frame]:
        w, h = self.size
        while True:
            t = time.perf_counter()
            yuv = self.cam.capture_array("main")  # (h * 3 / 2, stride) uint8
            yield Frame(self.name, np.ascontiguousarray(yuv[:h, :w]), (time.perf_counter() - t) * 1000, None, time.time())

    def close(self) -> None:
        self.cam.stop()
        self.cam.close()


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
