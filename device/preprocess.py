"""One function from any picture to the model's input: `prepare`.

Training, calibration, evaluation and the camera all call it. A 28x28 image (or a batch of
them) is taken as already in the dataset's look and only scaled. Anything larger is a photo
or camera frame and is framed the way Fashion-MNIST's images were made from product photos:
find the object, trim to it, negate (bright garment on black), stretch contrast, resize so the
longest edge is 28 pixels, sharpen, and centre it by its bounding box.

Frame convention: greyscale (H, W) uint8, or colour (H, W, 3) uint8 in RGB order. Sources
convert to this (OpenCV reads BGR; picamera2's "XRGB8888" is B, G, R, X in memory).
"""

from __future__ import annotations

import cv2
import numpy as np

from device.spec import IMAGE_SIZE, scale

# Photos are framed on a copy whose longest edge is this many pixels: masks need no more
# detail than that, and it keeps a 640x480 frame well under a millisecond per step.
WORK_SIZE = 160
# GrabCut (still photos) works on a smaller colour copy, at most this many pixels long: it costs far
# more per pixel, and its graph cut takes much longer on some photos than on others. 100 px is the
# largest size tried that kept every real photo under 40 ms on the build machine (docs/real-photos.md).
GRABCUT_SIZE = 100
GRABCUT_INSET = 0.04  # the first guess: the picture's outer 4% is scene, the rest may be garment
GRABCUT_ITERATIONS = 2
# A cut keeping less of the picture than this has lost the garment, or kept only its print: the
# real photos' cuts keep 15% or more, but for 4 of 341 (1-5%) and for the 15 that came out empty.
GRABCUT_MIN_SHARE = 0.1
SEGMENTS = ("fast", "grabcut")


def to_grey(frame: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) RGB or (H, W, 4) RGBA uint8 -> (H, W) uint8."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return to_grey(frame[:, :, 0])
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_RGBA2GRAY)
    raise ValueError(f"not an image: array of shape {frame.shape}")


def crop(frame: np.ndarray, roi: tuple[int, int, int, int] | None) -> np.ndarray:
    """roi = (x, y, width, height) in frame pixels, wholly inside the frame: a region that reaches outside
    is refused, never clipped into another region than the one asked for."""
    if roi is None:
        return frame
    x, y, w, h = roi
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > frame.shape[1] or y + h > frame.shape[0]:
        raise ValueError(f"--roi {x},{y},{w},{h} reaches outside the {frame.shape[1]}x{frame.shape[0]} picture")
    return frame[y: y + h, x: x + w]


def _percentiles(values: np.ndarray, qs) -> list[int]:
    """Percentiles of uint8 values from their histogram: far cheaper than sorting them."""
    cdf = np.cumsum(np.bincount(values.ravel(), minlength=256))
    return [int(np.searchsorted(cdf, q / 100 * cdf[-1])) for q in qs]


def stretch(values: np.ndarray, lo, hi) -> np.ndarray:
    """Map lo..hi onto 50..255, clipped: the dataset's full contrast, and a garment's darkest
    part never fades into the black background. Keeps a float array's dtype (float32 here,
    float64 in train/realworld.py's imitation of it)."""
    return np.clip((values - lo) / max(hi - lo, 1), 0, 1) * 205 + 50


MIN_SIDE = 8  # pixels: anything thinner is a strip or a dot, not a photo of a garment
MAX_ASPECT = 20  # longest side over shortest: beyond this it is a strip, not a photo


def check_picture(image: np.ndarray, what: str = "picture") -> np.ndarray:
    """The one check every picture passes before it is framed (photos, frames, backgrounds).

    Returns the picture as a uint8 array of shape (H, W) or (H, W, 1/3/4); ValueError (a clear
    reason, becoming an `error` line or, for a single image or a --background, exit 2) for an
    empty array, another shape, a side under MIN_SIDE pixels or a strip over MAX_ASPECT:1.
    Any other size is fine: shrink() copes with any size and aspect ratio.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)) or image.size == 0:
        raise ValueError(f"not an image: an array of shape {image.shape}")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"the {what} is {w}x{h} pixels: too small to hold a garment (at least {MIN_SIDE} a side)")
    if max(h, w) > MAX_ASPECT * min(h, w):
        raise ValueError(f"the {what} is {w}x{h} pixels: a strip, not a photo (at most {MAX_ASPECT}:1)")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def shrink(image: np.ndarray, limit: int = WORK_SIZE) -> np.ndarray:
    """(H, W[, C]) uint8 -> the same picture with its longest edge at most `limit` pixels.

    Shrinks by a whole factor k (averaging k x k blocks; the last few rows or columns that do not
    fill a block are dropped), where OpenCV's area resampling is integer arithmetic: the same
    pixels on ARM as on x86. Fractional factors go through float code that rounds differently
    across CPUs, which `make pi-check` caught.
    """
    h, w = image.shape[:2]
    k = -(-max(h, w) // limit)  # ceil
    if k <= 1:
        return image
    # A side shorter than k keeps one pixel (its own whole factor), so no picture shrinks to nothing.
    ky, kx = min(k, h), min(k, w)
    image = image[: h - h % ky, : w - w % kx]
    return cv2.resize(image, (w // kx, h // ky), interpolation=cv2.INTER_AREA)


def resize_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 -> (rows, cols) uint8 by exact area averaging, in integers.

    Each output pixel is the overlap-weighted mean of the input pixels it covers, rounded half
    up; the weights are whole numbers, so the result is the same on every CPU. Used for the
    final (small) fit to 28 pixels.
    """
    rows, cols = size

    def weights(n: int, m: int) -> np.ndarray:
        # Input pixel j spans [j*m, (j+1)*m) and output pixel i spans [i*n, (i+1)*n) in units of
        # 1/(n*m) of the picture: the overlap lengths are whole numbers. (m, n) int64.
        lo = np.maximum(np.arange(m)[:, None] * n, np.arange(n)[None, :] * m)
        hi = np.minimum((np.arange(m)[:, None] + 1) * n, (np.arange(n)[None, :] + 1) * m)
        return np.maximum(hi - lo, 0).astype(np.int64)

    h, w = image.shape
    acc = weights(h, rows) @ image.astype(np.int64) @ weights(w, cols).T  # (rows, cols)
    total = h * w  # each output pixel's weights sum to n per axis: h * w in all
    return ((acc + total // 2) // total).astype(np.uint8)


def border_background(grey: np.ndarray) -> np.ndarray:
    """The empty scene guessed from the picture's edges: a Coons patch spanning the four borders.

    It follows light that falls off across the picture, which one border median cannot.
    """
    g = grey.astype(np.float32)
    h, w = g.shape
    v = np.linspace(0, 1, h, dtype=np.float32)[:, None]  # (h, 1)
    u = np.linspace(0, 1, w, dtype=np.float32)[None, :]  # (1, w)
    top, bottom, left, right = g[:1], g[-1:], g[:, :1], g[:, -1:]
    rows = top + v * (bottom - top)  # (h, w): top edge fading into bottom edge
    cols = left + u * (right - left)  # (h, w): left edge fading into right edge
    corners = (1 - v) * (g[0, 0] + u * (g[0, -1] - g[0, 0])) + v * (g[-1, 0] + u * (g[-1, -1] - g[-1, 0]))
    return np.clip(rows + cols - corners, 0, 255).astype(np.uint8)


def object_mask(grey: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """uint8 mask (255 = object) of a (small) greyscale photo.

    With a background picture of the empty scene the mask is what differs from it. Without
    one, the background is interpolated from the picture's border (the garment is in the
    middle of the picture), and Otsu's threshold splits what differs from it.
    """
    blur = cv2.GaussianBlur(grey, (5, 5), 0)
    if background is not None:
        diff = cv2.absdiff(blur, cv2.GaussianBlur(background, (5, 5), 0))
    else:
        diff = cv2.absdiff(blur, border_background(blur))
    if diff.max() < 12:  # a flat picture: nothing stands out from the background
        return np.zeros_like(diff)
    # Otsu splits the strongest contrast, which on a light garment with dark print is the print
    # alone; anything clearly above the border's own noise is object too.
    otsu, _ = cv2.threshold(diff, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    edge = np.concatenate([diff[:2].ravel(), diff[-2:].ravel(), diff[:, :2].ravel(), diff[:, -2:].ravel()])
    noise = 1.5 * _percentiles(edge, [95])[0] + 6
    _, mask = cv2.threshold(diff, min(otsu, noise), 255, cv2.THRESH_BINARY)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)


def main_object(mask: np.ndarray) -> np.ndarray:
    """The largest outline, and any other at least a quarter its size (a shoe pair), filled solid.

    Filling matters for light garments on light backgrounds, where only the edges differ.
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros_like(mask)
    if not contours:
        return out
    areas = [cv2.contourArea(c) for c in contours]
    keep = [c for c, a in zip(contours, areas) if a >= max(areas) / 4]
    return cv2.drawContours(out, keep, -1, 255, thickness=cv2.FILLED)


def fit_to_frame(obj: np.ndarray) -> np.ndarray:
    """A trimmed object (h, w) uint8 -> (28, 28) with its longest edge 28, centred by bounding box."""
    h, w = obj.shape
    f = IMAGE_SIZE / max(h, w)  # the longest edge touches the frame, as in the dataset
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    small = resize_area(obj, (nh, nw))
    # Sharpen like the dataset did after resizing: unsharp mask 1.5 * x - 0.5 * blur(x), in
    # integers so that it rounds the same way on every CPU.
    blur = cv2.GaussianBlur(small, (3, 3), 0).astype(np.int16)
    small = np.clip((3 * small.astype(np.int16) - blur + 1) // 2, 0, 255).astype(np.uint8)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    y, x = (IMAGE_SIZE - nh) // 2, (IMAGE_SIZE - nw) // 2
    out[y: y + nh, x: x + nw] = small
    return out


def grabcut_mask(rgb: np.ndarray, rough: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = object) of a small colour photo, by GrabCut; `rough` (the grey difference's
    mask of the same photo) where GrabCut fails.

    GrabCut learns colour models of the garment and of the scene from a first guess (everything
    in a rectangle just inside the picture's edge might be garment, the edge itself is scene)
    and cuts along the colour edges between them. On real photos of clothes on beds and floors
    it finds far cleaner outlines than the grey difference from the border does (measured in
    docs/real-photos.md), at a mean 15 ms a photo (docs/benchmarks.md): for still photos, not video.
    It fails on a picture with too little in it to model (OpenCV raises), and on a busy rug or
    bedspread in the garment's own colours, where it gives (nearly) the whole picture to the
    scene: 15 of the 341 real photos came out black before `rough` stood in (docs/real-photos.md). When the
    garment fills the picture in the scene's colours it keeps only the print: a red sweatshirt on
    a red bed became its white letters. A photo is framed around its garment, so a cut keeping
    under a tenth of the picture has gone wrong in one of these ways, and `rough` stands in.
    """
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    dx, dy = max(1, round(w * GRABCUT_INSET)), max(1, round(h * GRABCUT_INSET))
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut seeds its colour models by k-means from OpenCV's global random generator, which
    # every call advances: without a fixed seed a photo's outline would depend on the photos
    # cut out before it in the same process.
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(np.ascontiguousarray(rgb[..., ::-1]), mask, (dx, dy, w - 2 * dx, h - 2 * dy), *models,
                    GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return rough
    mask = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return mask if np.count_nonzero(mask) >= GRABCUT_MIN_SHARE * mask.size else rough


def frame_photo(frame: np.ndarray, roi=None, background: np.ndarray | None = None,
                segment: str = "fast") -> np.ndarray:
    """A photo or camera frame -> (28, 28) uint8 in the dataset's look (bright object on black).

    background: a frame of the empty scene, same size as `frame` (before the roi crop); with
    it the object is what differs from it. Otherwise segment picks how the garment is found:
    "fast" (grey difference from the picture's border, well under a millisecond: live video)
    or "grabcut" (colour GrabCut, tens of milliseconds: still photos).
    A frame where nothing stands out comes back all black.
    """
    if segment not in SEGMENTS:
        raise ValueError(f"segment must be one of {SEGMENTS}, not {segment!r}")
    frame = check_picture(crop(frame, roi))
    if background is None and segment == "grabcut":
        # Shrink first, then make a grey picture colour: never a full-size copy.
        colour = shrink(frame, GRABCUT_SIZE) if frame.ndim == 3 and frame.shape[2] == 3 else \
            cv2.cvtColor(shrink(to_grey(frame), GRABCUT_SIZE), cv2.COLOR_GRAY2RGB)
        grey = to_grey(colour)
        mask = object_mask(grey)
        if mask.any():  # something stands out at all: now find its outline properly
            mask = grabcut_mask(colour, mask)
    else:
        grey = shrink(to_grey(frame))
        bg = None
        if background is not None:
            bg = shrink(to_grey(check_picture(crop(background, roi), "background")))
            if bg.shape != grey.shape:  # a reference taken at another resolution
                bg = cv2.resize(bg, grey.shape[::-1], interpolation=cv2.INTER_AREA)
        mask = object_mask(grey, bg)
    mask = main_object(mask)
    x0, y0, w, h = cv2.boundingRect(mask)
    if w == 0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    y1, x1 = y0 + h, x0 + w
    # Negate so a garment on a light background becomes bright on black, blank out the
    # background, and stretch what is left to the full range like the dataset's images.
    neg = 255 - grey[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1] > 0
    lo, hi = _percentiles(neg[m], [1, 99])
    obj = np.where(m, stretch(neg.astype(np.float32), lo, hi), 0).astype(np.uint8)
    return fit_to_frame(obj)


def is_dataset_image(image: np.ndarray) -> bool:
    """True for a 28x28 image (or a batch of them) already in the model's look."""
    shape = np.shape(image)
    return shape[-2:] == (IMAGE_SIZE, IMAGE_SIZE) or shape[-3:] == (IMAGE_SIZE, IMAGE_SIZE, 1)


def prepare(image: np.ndarray, roi=None, background: np.ndarray | None = None,
            segment: str = "fast") -> np.ndarray:
    """Any picture (or a batch of 28x28 ones) -> float32 (..., 28, 28, 1) model input in [0, 1].

    segment: "fast" or "grabcut", how a photo's garment is found (see frame_photo).
    """
    if roi is None and background is None and is_dataset_image(image):
        return scale(image)
    return scale(frame_photo(image, roi, background, segment))
