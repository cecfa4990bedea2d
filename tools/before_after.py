"""The README's before/after picture: real photos, what two device set-ups fed the model, and their labels.

    .venv/bin/python tools/before_after.py --before-model OLD.tflite --before-segment fast \
        --out docs/before-after.png PHOTO...

Each row: the photo (small), then for "before" and "after" the 28x28 input the model was given,
enlarged, with the label and confidence under it. "After" is the shipped model with classify-cam's
defaults (GrabCut for photos, the calibrated threshold).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TILE = 112  # pixels per picture in the sheet


def parse_args(argv=None) -> argparse.Namespace:
    import models

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("photos", nargs="+", type=Path, help="photo files; the folder name is printed as the truth")
    p.add_argument("--before-model", type=Path, required=True, help="the earlier .tflite (labels.txt beside it)")
    p.add_argument("--before-segment", default="fast", help="how 'before' cut out the garment (default fast)")
    p.add_argument("--before-threshold", type=float, default=0.5, help="'before' unknown threshold (default 0.5)")
    p.add_argument("--after-model", type=Path, default=models.INT8_MODEL, help="default: the shipped model")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "before-after.png", help="PNG to write")
    return p.parse_args(argv)


def labeller(model_path: Path, segment: str, threshold: float | None):
    from device import card
    from device.model import Model
    from device.pipeline import LabelSettings, Labeller

    model = Model(model_path, model_path.parent / "labels.txt")
    t = threshold if threshold is not None else card.unknown_threshold(model_path)
    return Labeller(model, LabelSettings(threshold=t, top_k=1, segment=segment), live=False)


def tile(x: np.ndarray, caption: str) -> np.ndarray:
    from device.spec import picture

    seen = cv2.resize(picture(x), (TILE, TILE), interpolation=cv2.INTER_NEAREST)
    out = np.vstack([seen, np.zeros((22, TILE), np.uint8)])
    cv2.putText(out, caption, (2, TILE + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.36, 255, 1)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    from device.sources import ImageFiles

    before = labeller(args.before_model, args.before_segment, args.before_threshold)
    after = labeller(args.after_model, "auto", None)
    rows = []
    for i, frame in enumerate(ImageFiles(args.photos).frames()):
        if frame.error:
            print(f"skipping {frame.source}: {frame.error}", file=sys.stderr)
            continue
        cells = []
        grey = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        f = TILE / max(h, w)
        photo = np.zeros((TILE + 22, TILE), np.uint8)
        photo[:round(h * f), :round(w * f)] = cv2.resize(grey, (round(w * f), round(h * f)),
                                                         interpolation=cv2.INTER_AREA)
        cv2.putText(photo, Path(frame.source).parent.name, (2, TILE + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.36, 255, 1)
        cells.append(photo)
        for lab in (before, after):
            record, x = lab(frame, i)
            cells.append(tile(x, f"{record['label'][:11]} {record['confidence']:.2f}"))
        rows.append(np.hstack([np.pad(c, ((0, 0), (0, 6))) for c in cells]))
    header = np.zeros((20, rows[0].shape[1]), np.uint8)
    for j, text in enumerate(["photo", "before", "after"]):
        cv2.putText(header, text, (j * (TILE + 6) + 2, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1)
    # Two columns of rows, so the picture is wide rather than tall.
    half = -(-len(rows) // 2)
    left, right = rows[:half], rows[half:] + [np.zeros_like(rows[0])] * (2 * half - len(rows))
    sheet = np.hstack([np.vstack([header] + left), np.zeros((20 + half * rows[0].shape[0], 16), np.uint8),
                       np.vstack([header] + right)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), sheet)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
