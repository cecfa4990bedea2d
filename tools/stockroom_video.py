"""Rendered stockroom videos: garments slid onto a table, left still, slid off; hands and light changes.

    python -m tools.stockroom_video OUT.mp4 [--garments 12] [--size 640x480] [--fps 10]

A fixed camera looks down at a light, unevenly lit table with sensor noise in every frame. Each
garment is a Fashion-MNIST test image drawn dark on the table (as tools/demo.py draws photos).
Scripts are lists of steps; `script()` returns the truth the events must match.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass
class Step:
    kind: str  # "garment": slide in, stay, slide out; "swap": slide out while the next slides in; "hand"; "light"; "empty"
    seconds: float
    image: np.ndarray | None = None  # the 28x28 garment
    label: int | None = None
    next_image: np.ndarray | None = None  # for "swap"
    next_label: int | None = None
    on_table: bool = False  # "garment": already lying still at the first frame (a restart), no slide in


class Table:
    def __init__(self, size=(640, 480), seed: int = 0):
        self.w, self.h = size
        rng = np.random.default_rng(seed)
        ramp = np.linspace(0, 1, self.w)[None, :] * 30 + np.linspace(0, 1, self.h)[:, None] * -20
        self.base = np.clip(195 + ramp + cv2.GaussianBlur(rng.normal(0, 6, (self.h, self.w)), (0, 0), 6), 0, 255)
        self.rng = np.random.default_rng(seed + 1)
        self.gain = 1.0

    def garment(self, image28: np.ndarray):
        """(alpha, value) of the garment at table scale: about 60% of the table's height."""
        side = int(self.h * 0.6)
        big = cv2.resize(image28, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        return np.clip(big / 40.0, 0, 1), 235 - big * 0.9

    def frame(self, things) -> np.ndarray:
        """things: (alpha, value, x, y) drawn in order; returns a BGR frame with fresh noise."""
        img = self.base.copy() * self.gain
        for alpha, value, x, y in things:
            h, w = alpha.shape
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, self.w), min(y + h, self.h)
            if x1 <= x0 or y1 <= y0:
                continue
            a = alpha[y0 - y: y1 - y, x0 - x: x1 - x]
            v = value[y0 - y: y1 - y, x0 - x: x1 - x] * self.gain
            img[y0:y1, x0:x1] = a * v + (1 - a) * img[y0:y1, x0:x1]
        grey = np.clip(img + self.rng.normal(0, 2.5, img.shape), 0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)

    def hand(self):
        h, w = int(self.h * 0.35), int(self.w * 0.18)
        alpha = np.zeros((h, w), np.float32)
        cv2.ellipse(alpha, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1.0, -1)
        return cv2.GaussianBlur(alpha, (7, 7), 0), np.full((h, w), 150, np.float32)


def render(path: Path, steps: list[Step], size=(640, 480), fps: int = 10, seed: int = 0) -> Path:
    """Write the video (MJPG in .avi, or mp4v in .mp4) and return its path."""
    table = Table(size, seed)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if str(path).endswith(".mp4") else "MJPG"))
    out = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not out.isOpened():
        raise RuntimeError(f"cannot write {path}")
    slide = int(0.8 * fps)  # frames to slide a garment in or out
    for step in steps:
        n = int(step.seconds * fps)
        if step.kind == "empty":
            for _ in range(n):
                out.write(table.frame([]))
        elif step.kind == "light":
            start = table.gain
            for i in range(n):
                table.gain = start * (1 + 0.2 * min(1.0, i / max(n // 2, 1)))
                out.write(table.frame([]))
        elif step.kind == "hand":
            alpha, value = table.hand()
            for i in range(n):
                x = int(-alpha.shape[1] + (table.w + alpha.shape[1]) * i / max(n - 1, 1))
                out.write(table.frame([(alpha, value, x, table.h // 3)]))
        elif step.kind in ("garment", "swap"):
            alpha, value = table.garment(step.image)
            cx, cy = (table.w - alpha.shape[1]) // 2, (table.h - alpha.shape[0]) // 2
            for i in range(0 if step.on_table else slide):  # slide in from the left
                x = int(-alpha.shape[1] + (cx + alpha.shape[1]) * (i + 1) / slide)
                out.write(table.frame([(alpha, value, x, cy)]))
            for _ in range(max(n - 2 * slide, 0)):
                out.write(table.frame([(alpha, value, cx, cy)]))
            if step.kind == "garment":
                for i in range(slide):  # slide out to the right
                    x = int(cx + (table.w - cx) * (i + 1) / slide)
                    out.write(table.frame([(alpha, value, x, cy)]))
            else:  # out to the right while the next comes in from the left, no empty table between
                a2, v2 = table.garment(step.next_image)
                for i in range(slide):
                    x = int(cx + (table.w - cx) * (i + 1) / slide)
                    x2 = int(-a2.shape[1] + (cx + a2.shape[1]) * (i + 1) / slide)
                    out.write(table.frame([(alpha, value, x, cy), (a2, v2, x2, cy)]))
    out.release()
    return path


def script(images, labels, count: int, hands: bool = False, light: bool = False, swap: bool = False,
           seconds: float = 3.0) -> tuple[list[Step], list[int]]:
    """A stockroom scene of `count` garments (the i-th of each class in turn) and the true labels in order."""
    steps, truth = [Step("empty", 1.5)], []
    for i in range(count):
        c = i % 10
        idx = int(np.flatnonzero(labels == c)[i // 10])
        if hands and i % 3 == 1:
            steps += [Step("hand", 1.0), Step("empty", 1.0)]
        if light and i % 4 == 2:
            steps += [Step("light", 2.0), Step("empty", 1.0)]
        if swap and i % 2 == 0 and i + 1 < count:
            c2 = (i + 1) % 10
            idx2 = int(np.flatnonzero(labels == c2)[(i + 1) // 10])
            steps.append(Step("swap", seconds, images[idx], c, images[idx2], c2))
            truth.append(c)
            continue
        steps += [Step("garment", seconds, images[idx], c), Step("empty", 1.0)]
        truth.append(c)
    return steps, truth


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.stockroom_video", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the video to write (.avi: MJPG, .mp4: mp4v)")
    p.add_argument("--garments", type=int, default=12, help="garments slid on and off (default 12)")
    p.add_argument("--size", default="640x480", help="frame size (default 640x480)")
    p.add_argument("--fps", type=int, default=10, help="frames a second (default 10)")
    p.add_argument("--hands", action="store_true", help="a hand passes over the empty table now and then")
    p.add_argument("--light", action="store_true", help="the light changes now and then")
    args = p.parse_args(argv)
    from train import data as data_mod

    test = data_mod.load("fashion", download=False).test
    steps, truth = script(test.images, test.labels, args.garments, args.hands, args.light)
    w, h = (int(v) for v in args.size.split("x"))
    render(args.out, steps, (w, h), args.fps)
    print(f"wrote {args.out}: {len(truth)} garments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
