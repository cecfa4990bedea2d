"""Pictures of things that are none of the ten classes, for outlier exposure ("unknown").

`outlier` makes a non-garment, trained towards equal scores so the device can say "unknown":
shorts (the top of a pair of trousers, or drawn laid flat), skirts (the bottom of a dress, or
drawn), hats (side-on or from above), close-ups of fabric, clutter and empty frames. All come from
the training images or are drawn here; no real photo is used. (28, 28) uint8, bright on black.
"""

from __future__ import annotations

import cv2
import numpy as np

from device.preprocess import fit_to_frame
from train.realworld import DRESS, TROUSER, _photographed, pattern, realistic, trim


def _dome(w, h, base, rng) -> np.ndarray:
    """A crown's outline: the top half of a superellipse, round (2) to square-shouldered (3.5)."""
    p = rng.uniform(2, 3.5)
    a = np.linspace(0, np.pi, 32)
    c, s = np.cos(a), np.sin(a)
    return np.stack([32 + w * np.sign(c) * np.abs(c) ** (2 / p), base - h * np.abs(s) ** (2 / p)], 1)


def _hat(rng) -> np.ndarray:
    """(64, 64) outline of a hat as photographed: a cap from the side or the front, a beanie, a brimmed hat,
    or a hat from above. Crowns are nearly as tall as wide (real caps and beanies are), seams a shade darker."""
    canvas = np.zeros((64, 64), np.uint8)
    kind = rng.choice(["brimmed", "cap side", "cap front", "beanie", "above"], p=[0.15, 0.2, 0.3, 0.25, 0.1])
    if kind == "above":  # a round crown inside a brim, the crown's edge a darker ring
        r = int(rng.uniform(18, 28))
        cv2.ellipse(canvas, (32, 32), (r, int(r * rng.uniform(0.8, 1.0))), 0, 0, 360, 255, -1)
        cv2.circle(canvas, (32, 32), int(r * rng.uniform(0.45, 0.7)), 150, int(rng.uniform(1, 3)))
        return canvas
    w = rng.uniform(12, 20)  # half the crown's width
    h = w * {"brimmed": rng.uniform(0.7, 1.2), "beanie": rng.uniform(1.3, 2.0)}.get(kind, rng.uniform(0.9, 1.4))
    base = int(32 + h / 2)
    cv2.fillPoly(canvas, [np.round(_dome(w, h, base, rng)).astype(np.int32)], 255)
    top = (32, int(base - h))
    if kind != "beanie" and rng.random() < 0.7:  # panel seams from the button down to the band
        for x in np.linspace(-0.6, 0.6, int(rng.integers(2, 5))) * w:
            cv2.line(canvas, top, (int(32 + x), base), 150, 1)
    if kind == "brimmed":  # a brim all round
        cv2.ellipse(canvas, (32, base), (int(w * rng.uniform(1.3, 1.7)), int(rng.uniform(2, 6))), 0, 0, 360, 255, -1)
    elif kind == "cap side":  # the visor sticks out to one side
        side = 1 if rng.random() < 0.5 else -1
        cv2.ellipse(canvas, (int(32 + side * w * 0.9), base), (int(w * 0.8), int(rng.uniform(3, 7))),
                    side * rng.uniform(0, 15), 0, 360, 255, -1)
    elif kind == "cap front":  # the visor faces the camera: a flat crescent under the crown, wider than it
        cv2.ellipse(canvas, (32, base), (int(w * rng.uniform(1.0, 1.3)), int(h * rng.uniform(0.2, 0.45))),
                    0, 0, 180, 255, -1)
        cv2.line(canvas, (int(32 - w), base), (int(32 + w), base), 150, 1)
    else:  # a beanie: a folded band at the bottom, maybe a pom-pom
        band = int(h * rng.uniform(0.15, 0.35))
        cv2.rectangle(canvas, (int(32 - w), base - band), (int(32 + w), base), 255, -1)
        cv2.line(canvas, (int(32 - w), base - band), (int(32 + w), base - band), 150, 1)
        if rng.random() < 0.4:
            cv2.circle(canvas, top, int(w * rng.uniform(0.25, 0.4)), 255, -1)
    return canvas


def _shorts(rng) -> np.ndarray:
    """(64, 64) outline of shorts laid flat: a waistband, two short legs flaring out, a notch between them."""
    w = rng.uniform(26, 40)  # waist width on a 64-pixel canvas
    h = w * rng.uniform(0.55, 1.0)  # shorts are about as long as they are wide, or shorter
    flare, notch, hem = w * rng.uniform(0, 0.18), h * rng.uniform(0.15, 0.5), w * rng.uniform(0.03, 0.15)
    x0, y0 = 32 - w / 2, 32 - h / 2
    points = [(x0, y0), (x0 + w, y0), (x0 + w + flare, y0 + h), (32 + hem, y0 + h), (32, y0 + h - notch),
              (32 - hem, y0 + h), (x0 - flare, y0 + h)]
    canvas = np.zeros((64, 64), np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 255)
    band = canvas[int(y0): int(y0) + int(rng.uniform(1, 4))]  # the waistband, a shade darker
    band[band > 0] = 150
    return canvas


def _skirt(rng) -> np.ndarray:
    """(64, 64) outline of a skirt laid flat: narrow at the waist, wide at the hem, straight, wavy or pleated."""
    top = rng.uniform(16, 30)
    bottom = top * rng.uniform(1.1, 2.0)
    h = bottom * rng.uniform(0.5, 1.2)
    y0, n = 32 - h / 2, 24
    xs = np.linspace(-bottom / 2, bottom / 2, n)
    wave = rng.uniform(0, 3) * np.sin(xs * rng.uniform(0.3, 0.8)) if rng.random() < 0.5 else np.zeros_like(xs)
    hem = np.stack([32 + xs[::-1], y0 + h + wave[::-1]], 1)
    points = np.vstack([[(32 - top / 2, y0), (32 + top / 2, y0)], hem])
    canvas = np.zeros((64, 64), np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 255)
    if rng.random() < 0.4:  # pleats: darker lines fanning out from the waist
        for t in np.linspace(-0.4, 0.4, int(rng.integers(3, 7))):
            cv2.line(canvas, (int(32 + t * top), int(y0)), (int(32 + t * bottom), int(y0 + h)), 150, 1)
    return canvas


DATASET_FABRIC = 0.7  # share of drawn outliers cut from a dataset garment's fabric (see _fabric)
DRAWN = {"drawn shorts": _shorts, "drawn skirt": _skirt, "hat": _hat}  # outliers drawn here, by kind


def outlier(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (28, 28) uint8 picture that is none of the ten classes (the model should not be sure of it)."""
    kind = rng.choice(["shorts", "skirt", "drawn shorts", "drawn skirt", "hat", "close-up", "clutter", "empty"],
                      p=[.12, .12, .13, .13, .2, .1, .1, .1])
    if kind in DRAWN:
        source = images[rng.integers(len(images))] if rng.random() < DATASET_FABRIC else None
        return _photographed(DRAWN[kind](rng), rng, source)
    if kind in ("shorts", "skirt"):
        pool = np.flatnonzero(labels == (TROUSER if kind == "shorts" else DRESS))
        obj = trim(images[rng.choice(pool)])
        h = obj.shape[0]
        if kind == "shorts":  # the top of a pair of trousers: waist and short legs
            obj = obj[: max(2, int(h * rng.uniform(0.3, 0.55)))]
        else:  # the bottom of a dress: a skirt
            obj = obj[int(h * rng.uniform(0.4, 0.65)):]
        obj = trim(obj)
        return realistic(fit_to_frame(obj), rng) if obj.size else np.zeros((28, 28), np.uint8)
    if kind == "close-up":  # a patch of fabric filling the frame
        obj = trim(images[rng.integers(len(images))])
        h, w = obj.shape
        if min(h, w) < 6:
            return np.zeros((28, 28), np.uint8)
        ch, cw = int(h * rng.uniform(0.25, 0.45)), int(w * rng.uniform(0.25, 0.45))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        patch = obj[y: y + ch, x: x + cw]
        return fit_to_frame(np.maximum(patch, 1))
    if kind == "clutter":  # a bedspread or floor pattern, or scattered blobs
        value = rng.uniform(60, 255) * (0.4 + 0.6 * pattern((28, 28), rng))
        if rng.random() < 0.5:
            blobs = cv2.GaussianBlur(rng.random((28, 28)).astype(np.float32), (0, 0), 2) > 0.55
            value = np.where(blobs, value, 0)
        return value.astype(np.uint8)
    out = np.zeros((28, 28), np.uint8)  # empty: black, or a little noise
    if rng.random() < 0.5:
        out = np.clip(rng.normal(0, rng.uniform(2, 20), (28, 28)), 0, 255).astype(np.uint8)
    return out
