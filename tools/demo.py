"""Synthetic camera photos from Fashion-MNIST test images, for `make demo` and the tests.

A 28x28 image (bright garment on black) is drawn the other way round, dark on a light, unevenly
lit background at camera resolution, the way a product photo looks before the dataset's own
framing. The device pipeline must undo exactly that.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np


def render_photo(image28: np.ndarray, size=(640, 480), seed: int = 0, colour: bool = True) -> np.ndarray:
    """(28, 28) uint8 -> (h, w, 3) RGB uint8 (or (h, w) grey): the garment dark on an uneven light background."""
    rng = np.random.default_rng(seed)
    w, h = size
    # Light background, brighter on one side, with sensor noise.
    ramp = np.linspace(0, 1, w)[None, :] * rng.uniform(-40, 40) + np.linspace(0, 1, h)[:, None] * rng.uniform(-30, 30)
    background = np.clip(200 + ramp + rng.normal(0, 3, (h, w)), 0, 255)
    # The garment: about 60-80% of the frame height, somewhere near the middle.
    side = int(h * rng.uniform(0.6, 0.8))
    big = cv2.resize(image28, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    y = (h - side) // 2 + int(rng.integers(-h // 12, h // 12 + 1))
    x = (w - side) // 2 + int(rng.integers(-w // 8, w // 8 + 1))
    patch = background[y: y + side, x: x + side]
    alpha = np.clip(big / 40.0, 0, 1)  # the object's soft edge
    patch[:] = alpha * (235 - big * 0.9) + (1 - alpha) * patch
    grey = cv2.GaussianBlur(np.clip(background, 0, 255).astype(np.uint8), (3, 3), 0)
    if not colour:
        return grey
    tint = np.array([1.0, 0.97, 0.92])  # warm indoor light: RGB differ, as in a real photo
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.demo",
                                description="Write synthetic camera photos of Fashion-MNIST test images.")
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="folder to write (default build/demo)")
    p.add_argument("--count", type=int, default=10, help="photos, one class after another (default 10)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from device.spec import CLASS_NAMES
    from train import data as data_mod  # numpy only when download=False

    try:
        test = data_mod.load("fashion", download=False).test
    except data_mod.DataNotFound as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        c = i % len(CLASS_NAMES)
        idx = int(np.flatnonzero(test.labels == c)[i // len(CLASS_NAMES)])
        rgb = render_photo(test.images[idx], seed=i)
        name = args.out / f"{i:02d}_{CLASS_NAMES[c].replace('/', '-').replace(' ', '_')}.jpg"
        cv2.imwrite(str(name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.count} synthetic photos to {args.out} (file names give the true class)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
