"""Real garments on rendered tables: stockroom videos to measure stockroom mode on.

    python -m tools.real_stockroom OUT.mp4 PHOTO... [--table grey] [--size 640x480] [--fps 10]

Each garment is cut out of a real phone photo by the still-photo path's own cut-out (GrabCut in
colour on the photo shrunk to 100 pixels, device/preprocess.py), so the video shows the same
garment, with the same outline, that `classify-cam` is given when the photo is a still. It is laid
on a rendered table (light wood, grey, dark, or a patterned cloth; light falling off across it),
slid in from an edge, left 2-4 s, slid out to an edge; some are brought and taken by a hand that
rests in view a moment; some are taken away slowly. Every frame has sensor noise and the light
drifts gently. The photos are read from where they lie (../shared): none is copied.
`render()` returns the truth: for each garment its photo and the times it entered and left.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

TABLES = ("light-wood", "grey", "dark", "patterned")
NOISE = 2.5  # sensor noise, grey levels (one sigma) per channel
SKIN = (205, 150, 120)  # RGB of the hand


def table_picture(kind: str, size=(640, 480), seed: int = 0) -> np.ndarray:
    """(h, w, 3) float32 RGB of an empty table, lit unevenly (brighter to one side)."""
    w, h = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "light-wood":
        warp = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 25) * 60
        grain = np.sin((y + warp + 0.05 * x) / 5.0) * 0.5 + np.sin((y + warp) / 1.7) * 0.2
        base = np.array([205, 168, 120], np.float32) + grain[..., None] * np.array([14, 12, 10], np.float32)
    elif kind == "grey":
        base = np.broadcast_to(np.array([128, 128, 130], np.float32), (h, w, 3)).copy()
    elif kind == "dark":
        base = np.broadcast_to(np.array([46, 42, 40], np.float32), (h, w, 3)).copy()
    elif kind == "patterned":  # a gingham cloth: light squares, and stripes of a muted blue that cross
        cell = max(4, w // 40)
        a, b = (x // cell).astype(int) % 2, (y // cell).astype(int) % 2
        light, blue = np.array([215, 212, 200], np.float32), np.array([150, 165, 190], np.float32)
        mix = ((a + b) / 2.0)[..., None]
        base = light * (1 - mix) + blue * mix
    else:
        raise ValueError(f"table must be one of {TABLES}, not {kind!r}")
    speckle = cv2.GaussianBlur(rng.normal(0, 3, (h, w)).astype(np.float32), (0, 0), 2)[..., None]
    light = (1.08 - 0.16 * x / w - 0.08 * y / h)[..., None]  # falls off across the table
    return np.clip((base + speckle) * light, 0, 255).astype(np.float32)


def cut_out(photo_rgb: np.ndarray, longest: int = 480):
    """The still-photo path's cut-out of a photo: (rgb, alpha) float32 of the garment's bounding box at most
    `longest` pixels long, or None when that path finds no garment in it."""
    from device.preprocess import GRABCUT_SIZE, grabcut_mask, main_object, object_mask, shrink, to_grey

    colour = shrink(photo_rgb, GRABCUT_SIZE)
    rough = object_mask(to_grey(colour))
    if not rough.any():
        return None
    mask = main_object(grabcut_mask(colour, rough))
    if mask.mean() < 0.03 * 255:
        return None
    h, w = photo_rgb.shape[:2]
    f = min(1.0, longest / max(h, w))
    big = cv2.resize(photo_rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask.astype(np.float32) / 255, big.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (5, 5), 0)
    x, y, bw, bh = cv2.boundingRect((alpha > 0.5).astype(np.uint8))
    return big[y: y + bh, x: x + bw].astype(np.float32), alpha[y: y + bh, x: x + bw]


def read_photo(path: Path) -> np.ndarray:
    from device.sources import ImageFiles

    frame = next(iter(ImageFiles([Path(path)]).frames()))  # EXIF-upright, RGB, as classify-cam reads it
    if frame.image is None or frame.image.ndim != 3:
        raise ValueError(f"cannot read {path} as a colour photo")
    return frame.image


def hand_sprite(h: int, arm: int) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, alpha) of a hand at the end of a forearm `arm` pixels long, pointing right, `h` pixels tall: the
    arm always reaches beyond the table's edge."""
    w = arm + int(1.1 * h)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w - int(0.55 * h), h // 2), (int(h * 0.55), int(h * 0.45)), 0, 0, 360, 1.0, -1)
    cv2.rectangle(alpha, (0, int(h * 0.2)), (w - int(0.55 * h), int(h * 0.8)), 1.0, -1)
    shade = np.linspace(0.85, 1.05, h, dtype=np.float32)[:, None, None]
    rgb = np.broadcast_to(np.array(SKIN, np.float32) * shade, (h, w, 3)).copy()
    return rgb, cv2.GaussianBlur(alpha, (7, 7), 0)


def turn(sprite, edge: str):
    """A sprite pointing right turned to reach in from `edge`."""
    k = {"left": 0, "top": 3, "right": 2, "bottom": 1}[edge]
    return tuple(np.ascontiguousarray(np.rot90(a, k)) for a in sprite)


@dataclass
class Garment:
    photo: Path
    rgb: np.ndarray
    alpha: np.ndarray
    seconds: float = 3.0  # lying still on the table
    edge_in: str = "left"
    edge_out: str = "right"
    slide_in: float = 0.8
    slide_out: float = 0.8
    hand: bool = False  # brought and taken by a hand that rests in view a moment after laying it down
    x: int = 0  # where it lies (top-left), table pixels
    y: int = 0


class Scene:
    """Draws frames: the table, a gently drifting light, the things on it, fresh noise."""

    def __init__(self, table: str, size=(640, 480), seed: int = 0, fps: int = 10):
        self.w, self.h = size
        self.fps = fps
        self.base = table_picture(table, size, seed)
        self.rng = np.random.default_rng(seed + 1)
        bank = self.rng.normal(0, NOISE, (6, self.h + 16, self.w + 16, 3)).astype(np.float32)
        self.noise = bank
        self.frames = 0
        self.drift = self.rng.uniform(0, 2 * np.pi)

    def gain(self) -> float:
        return 1.0 + 0.04 * np.sin(self.drift + 2 * np.pi * self.frames / (self.fps * 25))

    def frame(self, things) -> np.ndarray:
        """things: (rgb, alpha, x, y), drawn in order; returns BGR uint8."""
        img = self.base.copy()
        for rgb, alpha, x, y in things:
            h, w = alpha.shape
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, self.w), min(y + h, self.h)
            if x1 <= x0 or y1 <= y0:
                continue
            a = alpha[y0 - y: y1 - y, x0 - x: x1 - x, None]
            img[y0:y1, x0:x1] = a * rgb[y0 - y: y1 - y, x0 - x: x1 - x] + (1 - a) * img[y0:y1, x0:x1]
        k, dy, dx = self.rng.integers(0, len(self.noise)), *self.rng.integers(0, 16, 2)
        img = img * self.gain() + self.noise[k, dy: dy + self.h, dx: dx + self.w]
        self.frames += 1
        return cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)

    def outside(self, w: int, h: int, x: int, y: int, edge: str) -> tuple[int, int]:
        """Where a w x h thing lying at (x, y) starts (or ends) just beyond `edge`."""
        return {"left": (-w - 2, y), "right": (self.w + 2, y), "top": (x, -h - 2), "bottom": (x, self.h + 2)}[edge]


def hand_at(hand, edge: str, gx: int, gy: int, gw: int, gh: int, scene: Scene):
    """The hand's (rgb, alpha, x, y) holding the garment at (gx, gy) by its side towards `edge`, arm to the edge."""
    rgb, alpha = turn(hand, edge)
    h = hand[1].shape[0]  # the hand's width across the arm
    reach = hand[1].shape[1] - int(0.55 * h)  # from the arm's end to the middle of the palm
    if edge == "left":
        return rgb, alpha, gx - reach, gy + gh // 2 - h // 2
    if edge == "right":
        return rgb, alpha, gx + gw - int(0.55 * h), gy + gh // 2 - h // 2
    if edge == "top":
        return rgb, alpha, gx + gw // 2 - h // 2, gy - reach
    return rgb, alpha, gx + gw // 2 - h // 2, gy + gh - int(0.55 * h)


def moves(a: tuple, b: tuple, n: int):
    for i in range(n):
        f = (i + 1) / n
        yield int(a[0] + (b[0] - a[0]) * f), int(a[1] + (b[1] - a[1]) * f)


def render(path: Path, table: str, garments: list[Garment], size=(640, 480), fps: int = 10, seed: int = 0,
           empty_s: float = 1.5, gap_s: float = 1.2, writer=None) -> list[dict]:
    """Write the video (mp4v in .mp4, MJPG in .avi); returns the truth: per garment its photo and the seconds
    (from the first frame) when it started coming in and when it had gone."""
    scene = Scene(table, size, seed, fps)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if str(path).endswith(".mp4") else "MJPG"))
    out = writer or cv2.VideoWriter(str(path), fourcc, fps, size)
    if not out.isOpened():
        raise RuntimeError(f"cannot write {path}")
    hand = hand_sprite(int(size[1] * 0.22), max(size))
    truth = []

    def empty(seconds):
        for _ in range(round(seconds * fps)):
            out.write(scene.frame([]))

    empty(empty_s)
    for g in garments:
        gh, gw = g.alpha.shape
        start = scene.frames / fps
        here = (g.x, g.y)
        held = lambda pos, edge: [(g.rgb, g.alpha, *pos)] + ([hand_at(hand, edge, *pos, gw, gh, scene)] if g.hand else [])
        for pos in moves(scene.outside(gw, gh, g.x, g.y, g.edge_in), here, max(1, round(g.slide_in * fps))):
            out.write(scene.frame(held(pos, g.edge_in)))
        still = round(g.seconds * fps)
        alone = scene.frames / fps  # from when the garment lies alone on the table
        if g.hand:  # the hand rests a moment beside the garment, then goes; it comes back for it at the end
            rest, leave = round(0.7 * fps), round(0.5 * fps)
            rgb, alpha, hx, hy = hand_at(hand, g.edge_in, *here, gw, gh, scene)
            for _ in range(rest):
                out.write(scene.frame([(g.rgb, g.alpha, *here), (rgb, alpha, hx, hy)]))
            gone = scene.outside(*alpha.shape[::-1], hx, hy, g.edge_in)
            for pos in moves((hx, hy), gone, leave):
                out.write(scene.frame([(g.rgb, g.alpha, *here), (rgb, alpha, *pos)]))
            alone = scene.frames / fps
            for _ in range(still):
                out.write(scene.frame([(g.rgb, g.alpha, *here)]))
            rgb, alpha, hx, hy = hand_at(hand, g.edge_out, *here, gw, gh, scene)
            for pos in moves(scene.outside(*alpha.shape[::-1], hx, hy, g.edge_out), (hx, hy), leave):
                out.write(scene.frame([(g.rgb, g.alpha, *here), (rgb, alpha, *pos)]))
        else:
            for _ in range(still):
                out.write(scene.frame([(g.rgb, g.alpha, *here)]))
        for pos in moves(here, scene.outside(gw, gh, g.x, g.y, g.edge_out), max(1, round(g.slide_out * fps))):
            out.write(scene.frame(held(pos, g.edge_out)))
        truth.append({"photo": str(g.photo), "table": table, "start_s": start, "end_s": scene.frames / fps,
                      "hand": g.hand, "slow_out": g.slide_out > 1.5, "alone_s": alone})
        empty(gap_s)
    if writer is None:
        out.release()
    return truth


def lay_out(photo: Path, cut, size=(640, 480), rng=None, hand: bool = False, slow: bool = False) -> Garment:
    """A garment from a photo's cut-out, scaled to lie inside the table, at a random place, edges and time."""
    rng = rng or np.random.default_rng(0)
    rgb, alpha = cut
    w, h = size
    f = min(rng.uniform(0.5, 0.72) * h / alpha.shape[0], 0.8 * w / alpha.shape[1])
    rgb = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, rgb.shape[1::-1], interpolation=cv2.INTER_AREA)
    gh, gw = alpha.shape
    mx, my = int(0.08 * w), int(0.08 * h)
    x = int(rng.integers(mx, max(mx + 1, w - gw - mx)))
    y = int(rng.integers(my, max(my + 1, h - gh - my)))
    edges = ("left", "right", "top", "bottom")
    return Garment(photo, rgb, alpha, float(rng.uniform(2.0, 4.0)), edges[rng.integers(4)], edges[rng.integers(4)],
                   float(rng.uniform(0.6, 1.2)), float(rng.uniform(2.0, 3.0)) if slow else float(rng.uniform(0.6, 1.2)),
                   hand, x, y)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.real_stockroom", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the video to write (.mp4: mp4v, .avi: MJPG)")
    p.add_argument("photos", type=Path, nargs="+", help="photos of garments (read where they lie, never copied)")
    p.add_argument("--table", choices=TABLES, default="grey", help="the table (default grey)")
    p.add_argument("--size", default="640x480", help="frame size (default 640x480)")
    p.add_argument("--fps", type=int, default=10, help="frames a second (default 10)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(args.seed)
    garments = []
    for i, photo in enumerate(args.photos):
        cut = cut_out(read_photo(photo))
        if cut is None:
            print(f"skipped {photo}: the still-photo path finds no garment in it", file=sys.stderr)
            continue
        garments.append(lay_out(photo, cut, size, rng, hand=i % 3 == 1, slow=i % 5 == 4))
    truth = render(args.out, args.table, garments, size, args.fps, args.seed)
    print(f"wrote {args.out}: {len(truth)} garments on the {args.table} table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
