"""The empty table as the tracker knows it, and what differs from it: colour distance on a small copy.

Each frame is cut to the region of interest, shrunk to at most SMALL pixels across (in colour when
the source gives colour) and blurred a little. A pixel differs from the table when its colour
distance from the table picture (Euclidean over the channels, after a change of light over the whole
table is evened out) is above the table's own noise: NOISE_K times the median distance of the
table's pixels from its picture, followed in every still frame, and never below MIN_DIST. A
garment a little darker, lighter or of another hue than the table differs, on a light, grey, dark
or patterned table alike. The picture is only ever learnt from frames known to be empty (and only
where they match it: a faint garment is never blended in); a part of it that shows something the
live table no longer has (a ghost: a garment that lay there when it was learnt) is found by
`ghosts` and healed from the live frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from device.preprocess import crop, shrink

SMALL = 160  # pixels: the longest side of the copy motion and presence are judged on
NOISE_K = 4.0  # a difference counts beyond this many times the table's median noise
MIN_DIST = 6.0  # ... and never below this colour distance
START_NOISE = 2.5  # the median noise assumed until the table has been seen (a given --background)
FOLLOW = 0.1  # share of an empty, still frame blended into the table picture where it matches it
QUIET = 0.01  # share of the table: a part of the table's colour smaller than this is healed (light) ...
LIGHT = 0.35  # ... a larger one only where the table around it changed too (by this share of its change): light
OPEN = np.ones((3, 3), np.uint8)
RING = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))


def small_copy(image: np.ndarray, roi=None) -> np.ndarray:
    """(h, w, c) float32, c = 1 or 3: the region of interest, shrunk and blurred."""
    image = crop(np.asarray(image), roi)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    small = cv2.GaussianBlur(shrink(image, SMALL).astype(np.float32), (5, 5), 0)
    return small[..., None] if small.ndim == 2 else small


def channels_of(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """`image` with the channels of `like` (grey, RGB, RGBA): a grey picture of the table for a colour camera,
    or the other way round, is the same table."""
    want = 1 if like.ndim == 2 else like.shape[2]
    have = 1 if image.ndim == 2 else image.shape[2]
    if have == want:
        return image
    grey = image if have == 1 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    grey = grey.reshape(grey.shape[:2])
    if want == 1:
        return grey if like.ndim == 2 else grey[..., None]
    colour = image[..., :3] if have >= 3 else np.repeat(grey[..., None], 3, axis=2)
    return colour if want == 3 else np.concatenate([colour, np.full(colour.shape[:2] + (1,), 255, colour.dtype)], 2)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Colour distance per pixel of two (h, w, c) pictures; grey pictures count a level as much as colour does."""
    d = a - b
    return np.sqrt((d * d).sum(axis=2) * (3.0 / a.shape[2]))


def spread(n: int, most: int) -> np.ndarray:
    """At most `most` indices spread evenly over n: a fixed sample, the same verdict on the same picture."""
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).astype(int)


def unlike_around(image: np.ndarray, part: np.ndarray, ring: np.ndarray, k: int = 12) -> float:
    """How unlike the table around it a part of the picture is: the median, over (an even sample of) its pixels, of
    the colour distance to the nearest in colour of the k ring pixels nearest in place (a local palette:
    light falling off across the table and a cloth's pattern are the table, a garment's colours are not)."""
    (py, px), (ry, rx) = np.nonzero(part), np.nonzero(ring)
    i, j = spread(len(py), 400), spread(len(ry), 300)
    py, px, ry, rx = py[i], px[i], ry[j], rx[j]
    near = np.argsort((py[:, None] - ry[None, :]) ** 2 + (px[:, None] - rx[None, :]) ** 2, axis=1)[:, :k]
    d = image[py, px][:, None, :] - image[ry, rx][near]  # (n, k, c)
    return float(np.median(np.sqrt((d * d).sum(axis=2).min(axis=1) * (3.0 / image.shape[2]))))


class Table:
    """The learnt (or given) picture of the empty table, its noise, and the masks of what differs from it."""

    def __init__(self, picture: np.ndarray, noise: float | None = None):
        self.picture = picture.astype(np.float32)
        self.noise = START_NOISE if noise is None else max(noise, 0.5)

    @classmethod
    def learnt(cls, smalls: list[np.ndarray]) -> "Table":
        """From the small copies of frames known to be empty: their median, and their noise around it."""
        picture = np.median(np.stack(smalls), axis=0).astype(np.float32)
        noise = float(np.median([np.median(distance(s, picture)) for s in smalls]))
        return cls(picture, noise)

    @property
    def threshold(self) -> float:
        return max(MIN_DIST, NOISE_K * self.noise)

    def fits(self, small: np.ndarray) -> bool:
        return small.shape == self.picture.shape

    def even(self, small: np.ndarray) -> np.ndarray:
        """The frame with a change of light over the whole table evened out (the table is most of the picture)."""
        ratio = (self.picture.sum(axis=2) + 3) / (small.sum(axis=2) + 3)
        return small * float(np.median(ratio))

    def mask(self, evened: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(where the frame differs from the table, opened to drop single noisy pixels; the distances)."""
        d = distance(evened, self.picture)
        return cv2.morphologyEx((d > self.threshold).astype(np.uint8), cv2.MORPH_OPEN, OPEN) > 0, d

    def changed_map(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Where two frames differ: twice the table threshold, as a garment's edge flickers more than the table
        between frames (compression, colour subsampling)."""
        return distance(a, b) > 2 * self.threshold

    def changed(self, a: np.ndarray, b: np.ndarray) -> float:
        """Share of the picture that differs between two evened frames."""
        return float(self.changed_map(a, b).mean())

    def follow(self, evened: np.ndarray, mask: np.ndarray, d: np.ndarray, empty: bool) -> None:
        """A still frame: the noise from the table's own pixels; when the table is known to be empty, the
        picture follows the frame where it already matches it (slow changes of light), never elsewhere."""
        table = d[~mask]
        if table.size > 0.3 * d.size:
            self.noise = 0.9 * self.noise + 0.1 * max(float(np.median(table)), 0.5)
        if empty:
            near = (d < 0.5 * self.threshold)[..., None]
            self.picture = np.where(near, self.picture + FOLLOW * (evened - self.picture), self.picture)

    def table_like(self, evened: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, bool]:
        """The parts of the mask where the live frame has the colours of the table around them: no thing on the
        table, but a hole in the table picture (a ghost: the picture there does not look like the table, a
        garment lay there when it was learnt) or the table lit otherwise than when it was learnt (a corner
        that light turned white: the table around it changed too, it is small, or it reaches the edge). A
        part of the table's colour with a sharp outline inside the table (a white shirt on a white table)
        is a garment: placed, not healed.
        Returns (their mask, whether one of them is a ghost)."""
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        out, ghost = np.zeros_like(mask), False
        thr = self.threshold
        for i in range(1, count):
            part = labels == i
            ring = cv2.dilate(part.astype(np.uint8), RING, iterations=2).astype(bool) & ~mask
            if ring.sum() < 20 or unlike_around(evened, part, ring) > thr:
                continue
            apart = float(np.median(distance(evened[part][:, None], self.picture[part][:, None])))
            this = apart > 3 * thr and unlike_around(self.picture, part, ring) > max(2 * thr, 2 * unlike_around(
                evened, part, ring))
            around = float(np.median(distance(evened[ring][:, None], self.picture[ring][:, None])))
            if this or part.mean() < QUIET or around > LIGHT * apart or touching_edge(part):
                out |= part
                ghost = ghost or this
        return out, ghost

    def heal(self, evened: np.ndarray, where: np.ndarray) -> None:
        """The live (empty, still) frame becomes the table picture where the picture held a ghost."""
        grown = cv2.dilate(where.astype(np.uint8), RING).astype(bool)[..., None]
        self.picture = np.where(grown, evened, self.picture).astype(np.float32)


def grown(mask: np.ndarray, pixels: int = 2) -> np.ndarray:
    """The mask grown by a few pixels all round (an item's blurred edge)."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)).astype(bool)


def touching_edge(mask: np.ndarray, least: int = 12) -> bool:
    """Does a part of the mask (of at least `least` pixels) reach the picture's edge: something coming in or
    reaching in from outside the table, a hand or an arm?"""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    h, w = mask.shape
    for x, y, bw, bh, area in stats[1:]:
        if area >= least and (x == 0 or y == 0 or x + bw >= w or y + bh >= h):
            return True
    return False
