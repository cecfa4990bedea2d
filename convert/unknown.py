"""The default "unknown" threshold of an int8 model, chosen on pictures it never trained on.

Below the threshold the device says "unknown" instead of a class. It is calibrated on the int8
model itself, on two synthetic sets made from the validation images the training held out
(train/pipeline.py split_validation): garments with a real photo's flaws (should keep their
label) and non-garments (should be unknown), both from train/realworld.py. The threshold keeps
`keep` of the garments; the card records it, with how many garments and non-garments it turns
into "unknown", and classify-cam uses it as its default.

With real photos (`fashion-convert --photos`, as `make model` runs it), the threshold is set on
real ones instead: the photos `fashion-train --photos` held out of training (train/photos.py),
the same hash split of the same folders. The held-out garments set the threshold (`keep` of them
keep their label) and the held-out photos of things not in the catalogue (hats, shorts, skirts)
show what it catches. The development set (../shared/real-photos-dev) measures the result and is
never fitted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_KEEP = 0.97  # share of realistic garments that keep their label (chosen from 0.95/0.97/0.98/0.99 on the real-photo set, docs/real-photos.md)
PHOTO_KEEP = 0.97  # share of held-out real garments that keep their label
COUNT = 2000  # realistic garments, and as many non-garments, made from the held-out images


def synthetic_sets(images: np.ndarray, labels: np.ndarray, count: int, seed: int):
    """(garments (n, 28, 28) uint8, their labels, non-garments (n, 28, 28) uint8) from held-out images."""
    from train.outliers import outlier
    from train.realworld import realistic

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(labels), size=min(count, len(labels)), replace=False)
    garments = np.stack([realistic(images[i], rng, int(labels[i])) for i in idx])
    others = np.stack([outlier(images, labels, rng) for _ in idx])
    return garments, labels[idx], others


def scores(int8_path: Path, images: np.ndarray) -> np.ndarray:
    """(n, 10) float scores from the device's own runtime and adapters."""
    from device import classify
    from device.preprocess import prepare
    from device.runtime import make_interpreter

    interpreter = make_interpreter(int8_path, threads=1)
    return np.stack([classify.classify(interpreter, x) for x in prepare(images)])


def calibrate(int8_path: Path, images: np.ndarray, labels: np.ndarray, keep: float = DEFAULT_KEEP,
              count: int = COUNT, seed: int = 0) -> dict:
    """The threshold that leaves `keep` of realistic garments above it, and what it does on both sets."""
    garments, y, others = synthetic_sets(images, labels, count, seed)
    s_in, s_out = scores(int8_path, garments), scores(int8_path, others)
    conf_in, conf_out = s_in.max(1), s_out.max(1)
    threshold = floor_threshold(conf_in, keep)
    return {
        "threshold": threshold,
        "method": f"max score; keeps {keep:.0%} of realistic held-out garments (convert/unknown.py)",
        "images": int(len(y)), "seed": seed,
        "realistic_accuracy": round(float(np.mean(s_in.argmax(1) == y)), 4),
        "unknown_on_garments": round(float(np.mean(conf_in < threshold)), 4),
        "unknown_on_non_garments": round(float(np.mean(conf_out < threshold)), 4),
    }


def floor_threshold(confidences: np.ndarray, keep: float) -> float:
    """The threshold, floored to 0.01 (the card's figure is the one used), that leaves `keep` above it."""
    return round(float(np.floor(float(np.quantile(confidences, 1 - keep)) * 100)) / 100, 2)


def calibrate_photos(int8_path: Path, photo_dirs, photo_map: str, holdout: float, variants: int, cache: str,
                     keep: float = PHOTO_KEEP) -> dict:
    """The threshold that leaves `keep` of the held-out real garments their label, and what it does."""
    from train import photos as photos_mod

    held = [p for p in photos_mod.scan(photo_dirs, photo_map, holdout) if p.held_out]
    pictures, readable = photos_mod.prepared(held, variants, cache)
    held, pictures = [p for p, ok in zip(held, readable) if ok], pictures[readable, 0]  # variant 0: as it is
    s = scores(int8_path, pictures)
    conf, top = s.max(1), s.argmax(1)
    inside = np.array([bool(p.classes) for p in held])
    threshold = floor_threshold(conf[inside], keep)
    right = np.array([t in p.classes for t, p in zip(top, held)])
    return {
        "threshold": threshold,
        "method": f"max score; keeps {keep:.0%} of the real garment photos held out of training (convert/unknown.py)",
        "photos": {"garments": int(inside.sum()), "not_in_catalogue": int((~inside).sum()),
                   "manifest": photos_mod.manifest(held)},
        "held_out_strict_at_threshold": round(float(np.mean(right[inside] & (conf[inside] >= threshold))), 4),
        "unknown_on_garments": round(float(np.mean(conf[inside] < threshold)), 4),
        "unknown_on_not_in_catalogue": round(float(np.mean(conf[~inside] < threshold)), 4) if (~inside).any() else None,
    }
