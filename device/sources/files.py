"""Image files, folders and globs: decoded once, upright, checked; one unreadable file never stops a folder."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from device.runtime import quiet_stderr
from device.sources.base import Frame, Source, cv_message

log = logging.getLogger("classify-cam")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".gif"}
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


class ImageFiles(Source):
    def __init__(self, paths: list[Path], name: str = ""):
        self.paths = paths
        self.name = name or (str(paths[0]) if len(paths) == 1 else f"{len(paths)} image files")
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


def images_under(folder: Path) -> list[Path]:
    """Every image file under folder, sorted, at any depth.

    Walked with a list of folders still to visit, not by recursion, so no depth of folders is too deep;
    a folder reached twice (a symlink loop) is walked once; a folder that cannot be read is said and
    skipped; hidden files and folders (names starting with '.') are left out.
    """
    found, todo, seen, unreadable = [], [Path(folder)], set(), []
    while todo:
        here = todo.pop()
        try:
            key = (here.stat().st_dev, here.stat().st_ino)
            if key in seen:
                continue
            seen.add(key)
            entries = list(os.scandir(here))
        except OSError as exc:
            unreadable.append(f"{here} ({exc.strerror or exc})")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    todo.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS and entry.is_file():
                    found.append(Path(entry.path))
            except OSError:  # a dangling symlink, a name the file system refuses to stat
                continue
    if unreadable:
        log.warning("warning: %d folders could not be read and were skipped: %s", len(unreadable),
                    "; ".join(unreadable[:3]) + (" ..." if len(unreadable) > 3 else ""))
    return sorted(found)
