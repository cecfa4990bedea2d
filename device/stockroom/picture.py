"""The item's picture: what the model is given for a garment lying still on the table.

A garment lies still for seconds, so the device can afford what a still photo gets: the sharpest
of the still frames is cut to the garment (where it differs from the empty table, with a margin,
so the crop is framed like a photo of it) and GrabCut finds its outline in colour, once per item,
started from the table difference (probably garment where it differs, surely table well away from
it; the difference itself where GrabCut fails). Every still frame kept is then framed with that one
outline exactly as the still-photo path frames a photo (device/preprocess.py: negate, stretch,
fit to 28 pixels), and their scores are averaged. Nothing here assumes a light table: the outline
comes from the difference and the colours, not from the garment being darker than the table.
"""

from __future__ import annotations

import cv2
import numpy as np

from device.preprocess import (GRABCUT_ITERATIONS, GRABCUT_MIN_SHARE, GRABCUT_SIZE, IMAGE_SIZE, _percentiles, crop,
                               fit_to_frame, main_object, shrink, stretch, to_grey)
from device.spec import scale

MARGIN = 0.12  # of the garment's size, added on each side of the crop: the table around it, as in a photo


def box(mask: np.ndarray, shape: tuple, margin: float = MARGIN) -> tuple[int, int, int, int] | None:
    """The garment's box (x0, y0, x1, y1) in a picture of `shape`, from its mask on the small copy."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    h, w = shape[:2]
    fy, fx = h / mask.shape[0], w / mask.shape[1]
    x0, x1, y0, y1 = xs.min() * fx, (xs.max() + 1) * fx, ys.min() * fy, (ys.max() + 1) * fy
    mx, my = margin * (x1 - x0) + 2 * fx, margin * (y1 - y0) + 2 * fy
    return (int(max(0, x0 - mx)), int(max(0, y0 - my)), int(min(w, x1 + mx + 0.5)), int(min(h, y1 + my + 0.5)))


def outline(colour: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = garment) of a small colour crop by GrabCut, started from the table difference
    `prior` (bool, same size); the prior itself where GrabCut fails or keeps too little."""
    rough = np.where(prior, 255, 0).astype(np.uint8)
    near = cv2.dilate(rough, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    init = np.full(prior.shape, cv2.GC_BGD, np.uint8)
    init[near > 0] = cv2.GC_PR_BGD
    init[prior] = cv2.GC_PR_FGD
    if colour.ndim == 2:
        colour = cv2.cvtColor(colour, cv2.COLOR_GRAY2RGB)
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(np.ascontiguousarray(colour[..., ::-1]), init, None, *models, GRABCUT_ITERATIONS,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return rough
    mask = np.where((init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return mask if np.count_nonzero(mask) >= GRABCUT_MIN_SHARE * mask.size else rough


def framed(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(28, 28) uint8: the garment under the mask framed as the still-photo path frames a photo."""
    x0, y0, w, h = cv2.boundingRect(mask)
    if w == 0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    neg = 255 - grey[y0: y0 + h, x0: x0 + w]
    m = mask[y0: y0 + h, x0: x0 + w] > 0
    lo, hi = _percentiles(neg[m], [1, 99])
    return fit_to_frame(np.where(m, stretch(neg.astype(np.float32), lo, hi), 0).astype(np.uint8))


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian: the sharpest still frame makes the best photo of an item."""
    return float(cv2.Laplacian(to_grey(image), cv2.CV_32F).var())


def item_inputs(images: list[np.ndarray], mask: np.ndarray, roi=None) -> tuple[list[np.ndarray], int]:
    """Model inputs (float32 (28, 28, 1)) of a garment lying still in these frames, one per frame, all framed
    with the outline GrabCut finds on the sharpest; and the index of that frame. `mask`: where the garment
    differs from the empty table on the small copy of the region of interest."""
    crops = [crop(image, roi) for image in images]
    b = box(mask, crops[0].shape)
    if b is None:
        return [scale(np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)) for _ in images], 0
    x0, y0, x1, y1 = b
    crops = [c[y0:y1, x0:x1] for c in crops]
    small = [shrink(c, GRABCUT_SIZE) for c in crops]
    best = max(range(len(small)), key=lambda i: sharpness(small[i]))
    h, w = small[best].shape[:2]
    sub = mask_crop(mask, b, crop(images[0], roi).shape)
    prior = cv2.resize(sub.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    cut = main_object(outline(small[best], prior))
    return [scale(framed(to_grey(s), cut)) for s in small], best


def mask_crop(mask: np.ndarray, b: tuple, shape: tuple) -> np.ndarray:
    """The part of the small-copy mask under the box b (given in the pictures's pixels of `shape`)."""
    mh, mw = mask.shape
    h, w = shape[:2]
    x0, y0, x1, y1 = b
    return mask[int(y0 * mh / h): max(int(y0 * mh / h) + 1, int(np.ceil(y1 * mh / h))),
                int(x0 * mw / w): max(int(x0 * mw / w) + 1, int(np.ceil(x1 * mw / w)))]
