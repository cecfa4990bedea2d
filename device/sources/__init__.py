"""Where frames come from: image files, folders, globs, video files, streams, USB and Pi cameras.

    base      Frame, Source, and the errors a source raises
    files     image files, folders and globs (read_image: the one way a picture enters from a file)
    video     video files, stream URLs and USB cameras through OpenCV
    picamera  the Raspberry Pi camera through apt's picamera2, imported lazily

open_source turns a --source value into one of them.
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from device.sources.base import CameraLost, Frame, Source, SourceError, cv_message, printable
from device.sources.files import IMAGE_EXTENSIONS, ImageFiles, images_under, read_image
from device.sources.video import VIDEO_EXTENSIONS, VideoCapture, video_devices

__all__ = ["CameraLost", "Frame", "Source", "SourceError", "cv_message", "printable", "is_live_url", "IMAGE_EXTENSIONS",
           "ImageFiles",
           "images_under", "read_image", "VIDEO_EXTENSIONS", "VideoCapture", "video_devices", "open_source"]
log = logging.getLogger("classify-cam")

def is_live_url(spec: str) -> bool:
    """A stream URL is a camera (reconnected when it drops) unless it names a video file: rtsp/rtmp/udp/tcp
    always, http(s) unless its path ends in a video file's extension (an MJPEG camera has none)."""
    scheme = spec.split("://", 1)[0].lower()
    if scheme in ("http", "https"):
        return Path(urlsplit(spec).path).suffix.lower() not in VIDEO_EXTENSIONS
    return scheme in ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt")


def open_source(spec: str, camera_timeout: float = 10.0, colour: bool = False, realtime: bool = False) -> Source:
    """Turn a --source value into a Source; SourceError when there is nothing to read."""
    if not spec.strip():  # an unset shell variable: never "the current folder"
        raise SourceError("--source is empty (an unset variable?): give a camera, file, folder, glob or URL")
    from device.sources.picamera import PiCamera, picamera_available, picamera_problem

    if spec == "auto":
        problem = picamera_problem()
        if problem:  # say why the Pi camera is skipped, in one line, then try camera 0 as auto always has
            log.warning("warning: %s; trying camera 0", problem)
        if picamera_available():
            return PiCamera(timeout=camera_timeout, colour=colour)
        return VideoCapture(0, True, camera_timeout, colour=colour)
    if spec == "picamera":
        return PiCamera(timeout=camera_timeout, colour=colour)
    if spec.isdigit():
        return VideoCapture(int(spec), True, camera_timeout, colour=colour)
    if spec.startswith("/dev/video"):
        if not os.path.exists(spec):
            raise SourceError(f"no such camera: {spec}")
        return VideoCapture(spec, True, camera_timeout, colour=colour)
    if "://" in spec:
        try:
            live = is_live_url(spec)
        except ValueError as exc:  # urlsplit: an unclosed [ of an IPv6 address, a port that is no number
            raise SourceError(f"--source {printable(spec)}: not a valid URL ({exc})") from None
        return VideoCapture(spec, live, camera_timeout, colour=colour, realtime=realtime)
    path = Path(spec)
    if path.is_dir():
        files = images_under(path)
        if not files:
            raise SourceError(f"no images under {spec}")
        return ImageFiles(files, spec)
    if path.is_file():
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return VideoCapture(str(path), False, camera_timeout, colour=colour, realtime=realtime)
        return ImageFiles([path])
    if any(c in spec for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise SourceError(f"no files match {spec}")
        return ImageFiles(files, spec)
    raise SourceError(f"no such source: {spec}")
