"""Training pictures that look like what the device makes of real photos.

The device frames a photo the way the dataset was made (device/preprocess.py), but what comes
out is never as clean as a Fashion-MNIST image: a strip of bed or floor left at an edge, ragged
outlines, prints and stripes, light falling off across the garment, a stretched or squashed
outline, a cut-off sleeve, blur, noise and JPEG blocks. `realistic` gives a dataset image those
flaws and frames it again with the device's own `fit_to_frame`, so the network learns garments
through them. It also poses them as real photos show them and product shots never do: shoes as a
pair, side by side or drawn seen from above, and long-sleeved tops laid flat with the sleeves out.

Pictures of things that are none of the ten classes (for "unknown") are train/outliers.py's;
the batches that mix both in are train/batches.py's.

Pictures are (28, 28) uint8, bright garment on black, as everywhere in the project.
"""

from __future__ import annotations

import cv2
import numpy as np

from device.preprocess import fit_to_frame, stretch
from device.spec import CLASS_NAMES

TROUSER, DRESS = CLASS_NAMES.index("Trouser"), CLASS_NAMES.index("Dress")
SANDAL, SNEAKER, BOOT = (CLASS_NAMES.index(name) for name in ("Sandal", "Sneaker", "Ankle boot"))
SHOES = [SANDAL, SNEAKER, BOOT]
SHOES_ABOVE = 0.3  # share of realistic shoes drawn as a pair seen from above (_shoes_above)
# Share of realistic long-sleeved tops laid out with their sleeves lifted (spread_sleeves): jumpers
# are mostly photographed laid flat, shirts and coats as often on a hanger.
SPREAD = {CLASS_NAMES.index("Pullover"): 0.5, CLASS_NAMES.index("Coat"): 0.15, CLASS_NAMES.index("Shirt"): 0.15}


def trim(image: np.ndarray) -> np.ndarray:
    """The bounding box of the non-black pixels; an empty (0, 0) array for a black image."""
    ys, xs = np.nonzero(image)
    if len(ys) == 0:
        return image[:0, :0]
    return image[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def pattern(shape, rng) -> np.ndarray:
    """(h, w) float32 in [0, 1]: stripes, checks or blotches, like prints on fabric or a bedspread."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # stripes at any angle
        angle, period = rng.uniform(0, np.pi), rng.uniform(2.5, 8)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + rng.uniform(0, 6.3))
    if kind == 1:  # checks
        p = rng.uniform(3, 9)
        return ((np.floor(x / p) + np.floor(y / p)) % 2).astype(np.float32)
    noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), rng.uniform(0.8, 2.5))
    return (noise > np.median(noise)).astype(np.float32)  # blotches


def _residue(value, mask, rng):
    """Pad the object on one or two sides with a blob of 'background' the segmentation kept."""
    h, w = value.shape
    pad = [0, 0, 0, 0]  # top, bottom, left, right
    for side in rng.choice(4, size=rng.integers(1, 3), replace=False):
        pad[side] = int(rng.uniform(0.05, 0.25) * (h if side < 2 else w)) + 1
    value = cv2.copyMakeBorder(value, *pad, cv2.BORDER_CONSTANT, value=0)
    mask = cv2.copyMakeBorder(mask, *pad, cv2.BORDER_CONSTANT, value=0)
    H, W = value.shape
    blob = np.zeros((H, W), np.uint8)
    centre = (int(rng.uniform(0, W)), int(rng.uniform(0, H)))
    if pad[0]:
        centre = (centre[0], pad[0] // 2)
    elif pad[1]:
        centre = (centre[0], H - pad[1] // 2)
    elif pad[2]:
        centre = (pad[2] // 2, centre[1])
    else:
        centre = (W - pad[3] // 2, centre[1])
    axes = (int(rng.uniform(0.15, 0.6) * W) + 1, int(rng.uniform(0.15, 0.6) * H) + 1)
    cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    blob = (blob > 0) & ~mask
    stuff = rng.uniform(40, 220) * (0.6 + 0.4 * pattern((H, W), rng))
    value = np.where(blob, stuff, value)
    return value.astype(np.float32), mask | blob


def pair(obj: np.ndarray, rng: np.random.Generator, above: bool = False) -> np.ndarray:
    """A trimmed shoe -> the pair, side by side or one behind the other, as shoes are photographed.

    above: the pair seen from above, toes up or down: the dataset only has side views, and a side
    view turned a quarter is the nearest thing it holds to a shoe's outline from above.
    """
    if above:
        obj = np.rot90(obj, 1 if rng.random() < 0.5 else 3)
    h, w = obj.shape
    other = obj[:, ::-1] if rng.random() < 0.5 else obj
    spread = (0.95, 1.5) if above else (0.3, 1.1)  # from above the two shoes rarely overlap
    dx, dy = int(w * rng.uniform(*spread)), int(h * rng.uniform(-0.3, 0.3))
    canvas = np.zeros((h + abs(dy), w + dx), np.uint8)
    y0 = max(-dy, 0)
    canvas[y0: y0 + h, :w] = obj
    back = canvas[y0 + dy: y0 + dy + h, dx: dx + w]
    np.copyto(back, other, where=back == 0)  # the second shoe behind the first
    return canvas


def spread_sleeves(obj: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A trimmed long-sleeved top -> the same with its sleeves lifted away from the body, as a top laid
    flat on a bed or floor often lies; the dataset's product shots have them hanging at the sides."""
    obj = cv2.resize(obj, (2 * obj.shape[1], 2 * obj.shape[0]), interpolation=cv2.INTER_LINEAR)  # smoother turns
    h, w = obj.shape
    sleeve, length = int(w * rng.uniform(0.18, 0.25)) + 1, int(h * rng.uniform(0.7, 0.95))
    angle = rng.uniform(15, 60)  # degrees away from hanging straight down
    canvas = np.zeros((3 * h, w + 2 * h), np.uint8)  # room for the sleeves on every side
    canvas[h: 2 * h, h + sleeve: h + w - sleeve] = obj[:, sleeve: w - sleeve]
    for x0, x1, shoulder, turn in ((0, sleeve, sleeve, -angle), (w - sleeve, w, w - sleeve, angle)):
        arm = np.zeros_like(canvas)
        arm[h: h + length, h + x0: h + x1] = obj[:length, x0: x1]
        rot = cv2.getRotationMatrix2D((h + shoulder, h + 0.08 * h), turn, 1.0)  # about the shoulder seam
        np.maximum(canvas, cv2.warpAffine(arm, rot, canvas.shape[::-1], flags=cv2.INTER_LINEAR), out=canvas)
    return trim(canvas)


def realistic(image: np.ndarray, rng: np.random.Generator, label: int | None = None) -> np.ndarray:
    """(28, 28) uint8 dataset image -> (28, 28) uint8 with a real photo's flaws, framed like the device does.

    label: the image's class; a shoe is sometimes shown as a pair.
    """
    obj = trim(image)
    if obj.size == 0:
        return image
    if label in SHOES and rng.random() < SHOES_ABOVE:
        return _photographed(_shoes_above(rng, label), rng)
    if label in SHOES and rng.random() < 0.5:
        obj = pair(obj, rng, above=rng.random() < 0.4)
    if label in SPREAD and rng.random() < SPREAD[label]:
        obj = spread_sleeves(obj, rng)
    # Work at twice the size so edges and prints are finer than a dataset pixel.
    h, w = obj.shape
    aspect = np.exp(rng.uniform(-0.2, 0.2))  # a garment laid out wider or narrower than the product shot
    size = (max(2, round(2 * w * aspect)), max(2, round(2 * h / aspect)))
    value = cv2.resize(obj, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)
    mask = value > 8
    h, w = value.shape
    if rng.random() < 0.25:  # part of the garment outside the picture or under something
        cut = rng.uniform(0.03, 0.15)
        side = rng.integers(4)
        if side == 0:
            value, mask = value[int(cut * h):], mask[int(cut * h):]
        elif side == 1:
            value, mask = value[: h - int(cut * h)], mask[: h - int(cut * h)]
        elif side == 2:
            value, mask = value[:, int(cut * w):], mask[:, int(cut * w):]
        else:
            value, mask = value[:, : w - int(cut * w)], mask[:, : w - int(cut * w)]
        h, w = value.shape
    if rng.random() < 0.35:  # a print, stripes or checks on the fabric
        value *= 1 - rng.uniform(0.2, 0.7) * pattern((h, w), rng)
    if rng.random() < 0.5:  # light falling off across the garment
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (x / w - 0.5) * np.cos(angle) + (y / h - 0.5) * np.sin(angle)
        value *= 1 + rng.uniform(0.2, 0.8) * ramp
    if rng.random() < 0.4:
        value, mask = _residue(value, mask, rng)
    if rng.random() < 0.3:  # the outline one step too tight or too loose
        kernel = np.ones((3, 3), np.uint8)
        grow = rng.random() < 0.5
        new = (cv2.dilate if grow else cv2.erode)(mask.astype(np.uint8), kernel).astype(bool)
        value = np.where(new & ~mask, rng.uniform(40, 160), value)
        mask = new
    if rng.random() < 0.3:
        value = value + rng.normal(0, rng.uniform(3, 15), value.shape)
    if rng.random() < 0.25:
        value = cv2.GaussianBlur(value.astype(np.float32), (0, 0), rng.uniform(0.5, 1.2))
    value = np.clip(value, 0, 255)
    inside = value[mask]
    if inside.size == 0:
        return image
    if rng.random() < 0.6:  # the device's own contrast stretch to 50..255
        value = stretch(value, *np.percentile(inside, [1, 99]))
    else:  # or a camera's gamma and exposure
        value = 255 * (value / 255) ** rng.uniform(0.6, 1.6)
    obj = np.where(mask, np.clip(value, 1, 255), 0).astype(np.uint8)
    out = fit_to_frame(trim(obj))
    if rng.random() < 0.2:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(30, 80))])
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def _fabric(shape_mask: np.ndarray, rng, source: np.ndarray | None = None) -> np.ndarray:
    """A drawn (h, w) uint8 outline (255 cloth, 150 seams and folds) -> the same outline in a fabric's
    brightness, maybe with a print, turned a little. With `source`, a dataset garment (28, 28), the
    fabric is the middle of that garment stretched over the outline instead: then a drawn outlier's
    cloth looks like the classes' own, and only its shape can tell the model it is none of them."""
    h, w = shape_mask.shape
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-12, 12), 1.0)
    shape_mask = cv2.warpAffine(shape_mask, rot, (w, h), flags=cv2.INTER_NEAREST)
    if source is not None and min((obj := trim(source)).shape) >= 8:
        oh, ow = obj.shape
        middle = obj[oh // 4: oh - oh // 4, ow // 4: ow - ow // 4].astype(np.float32)
        value = np.maximum(cv2.resize(middle, (w, h), interpolation=cv2.INTER_LINEAR), 40)
    else:
        value = rng.uniform(80, 255) * (1 - rng.uniform(0, 0.6) * pattern(shape_mask.shape, rng) * (rng.random() < 0.5))
    value = value * np.where(shape_mask == 255, 1.0, 0.6)  # drawn seams and folds, a shade darker
    return np.where(shape_mask > 0, np.clip(value, 1, 255), 0).astype(np.uint8)


def _photographed(outline: np.ndarray, rng, source: np.ndarray | None = None) -> np.ndarray:
    """A drawn (64, 64) outline -> (28, 28) uint8: in a fabric (see _fabric), framed, with a real photo's flaws."""
    return realistic(fit_to_frame(trim(_fabric(outline, rng, source))), rng)


def _shoe_outline(length: float, width: float, rng) -> np.ndarray:
    """A right shoe seen from above, toe up, centred on (0, 0): its outline as (n, 2) x, y points."""
    t = np.linspace(0, 1, 40)  # heel (0) to toe (1)
    half = np.where(t > 0.68, np.sqrt(np.clip(1 - ((t - 0.68) / 0.32) ** 2, 0, 1)), 0.75 + 0.25 * t / 0.68)
    half = half * np.where(t < 0.12, np.sqrt(np.clip(1 - ((0.12 - t) / 0.12) ** 2, 0, 1)), 1)  # round heel
    arch = 1 - rng.uniform(0, 0.25) * np.exp(-(((t - 0.4) / 0.15) ** 2))  # the inner side curves in
    y = (0.5 - t) * length
    return np.vstack([np.stack([half * width / 2, y], 1), np.stack([-half * arch * width / 2, y], 1)[::-1]])


def _ellipse(cx, cy, ax, ay) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return np.stack([cx + ax * np.cos(a), cy + ay * np.sin(a)], 1)


def _band(y: float, half_height: float, half_width: float) -> np.ndarray:
    """A rectangle across a shoe at height y: a strap or a lace."""
    return np.array([(-half_width, y - half_height), (half_width, y - half_height),
                     (half_width, y + half_height), (-half_width, y + half_height)])


def _shoes_above(rng, label: int) -> np.ndarray:
    """(64, 64) outline of a pair of shoes seen from above, toes the same way, as shoes on a floor are
    photographed; the dataset has only side views. Sneakers and boots show their opening (boots a
    wider one) and maybe laces; sandals show straps across the sole."""
    length = rng.uniform(24, 34)
    width = length * rng.uniform(0.34, 0.44) * (1.1 if label == BOOT else 1.0)
    outline = _shoe_outline(length, width, rng)
    marks = []  # polygons drawn a shade darker (150) inside the shoe
    if label == SANDAL:
        for _ in range(rng.integers(1, 4)):
            yc, th = length * rng.uniform(-0.35, 0.3), length * rng.uniform(0.04, 0.14)
            marks.append(_band(yc, th, width))
    else:
        deep = 0.2 if label == BOOT else 0.14
        wide = 1.2 if label == BOOT else 1.0
        marks.append(_ellipse(0, length * rng.uniform(0.18, 0.28), width * rng.uniform(0.26, 0.34) * wide,
                              length * rng.uniform(deep, deep + 0.06)))  # the opening, towards the heel
        if rng.random() < 0.7:  # laces
            for yc in np.linspace(-0.05, -0.2, int(rng.integers(3, 6))) * length:
                marks.append(_band(yc + 0.5, 0.5, width * 0.22))
    canvas = np.zeros((64, 64), np.uint8)
    gap, shift, splay = width * rng.uniform(0, 0.35), length * rng.uniform(-0.15, 0.15), np.radians(rng.uniform(-8, 15))
    for side in (1, -1):  # right shoe, then the left one, its mirror image
        turn = np.array([[np.cos(side * splay), np.sin(side * splay)], [-np.sin(side * splay), np.cos(side * splay)]])
        centre = (32 + side * (width + gap) / 2, 32 + side * shift / 2)
        body = np.zeros_like(canvas)
        cv2.fillPoly(body, [np.round(outline * [side, 1] @ turn + centre).astype(np.int32)], 255)
        for poly in marks:
            mark = np.zeros_like(canvas)
            cv2.fillPoly(mark, [np.round(poly * [side, 1] @ turn + centre).astype(np.int32)], 255)
            body[(mark > 0) & (body > 0)] = 150
        np.copyto(canvas, body, where=body > 0)
    turns = rng.choice(4, p=[0.45, 0.08, 0.4, 0.07])  # toes up, sideways, down
    return np.ascontiguousarray(np.rot90(canvas, turns))
