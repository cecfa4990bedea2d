"""fashion-photo-eval: how the device pipeline does on a folder of real photos, one sub-folder per kind.

The folder names follow the real-photos set's README: each maps to the labels counted correct
("strict") and to a group (top, trouser, dress, shoe); hat, shorts and skirt are not in the
catalogue, and the right answer for them is "unknown".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from device.spec import CLASS_NAMES

# The development set's folders map to classes exactly as training maps the training set's: one map,
# train/photo-maps/clothing-dataset-small.json (folder -> class, classes, or "unknown").
PHOTO_MAP = Path(__file__).resolve().parents[1] / "train" / "photo-maps" / "clothing-dataset-small.json"
GROUP_OF = {"T-shirt/top": "top", "Pullover": "top", "Shirt": "top", "Coat": "top", "Trouser": "trouser",
            "Dress": "dress", "Sandal": "shoe", "Sneaker": "shoe", "Ankle boot": "shoe", "Bag": "bag"}


def folders(photo_map: Path = PHOTO_MAP, root: Path | None = None) -> dict:
    """folder -> (labels counted correct, group); an empty tuple means "not in the catalogue".

    The map's folders, and under `root` the folders named like a label (`Trouser`, `T-shirt-top`, `unknown`:
    the layout `classify-cam --save-items` writes), which need no entry. PhotoError for a map that is damaged
    or names something that is no class."""
    from train.photos import BY_NAME, PhotoError, _key, read_mapping, resolve

    mapping = read_mapping(photo_map)
    names = set(mapping)
    if root is not None:
        names |= {p.name for p in Path(root).iterdir() if p.is_dir() and _key(p.name) in BY_NAME}
    out = {}
    for folder in sorted(names):
        try:
            labels = tuple(CLASS_NAMES[i] for i in resolve(folder, mapping, str(root or photo_map)))
        except PhotoError as exc:
            raise PhotoError(f"--photo-map {photo_map}: {exc}") from None
        out[folder] = (labels, GROUP_OF[labels[0]] if labels else None)
    return out


FOLDERS = folders()


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a threshold is a confidence from 0 to 1, not {text}")
    return value


def _fractions(text: str) -> list[float]:
    return sorted(_fraction(v) for v in text.split(",") if v.strip())


def parse_args(argv=None) -> argparse.Namespace:
    import models

    from device.oneline import OneLineParser

    p = OneLineParser(
        prog="fashion-photo-eval",
        description="Run classify-cam's pipeline over a folder of real photos (one sub-folder per kind of garment, "
        "named as in the real-photos README) and print strict and group accuracy, 'unknown' rates, a confusion "
        "table, and a contact sheet of the worst mistakes.")
    p.add_argument("folder", type=Path, help="folder with one sub-folder per kind: named as in the real-photos "
                   "README (t-shirt, pants, shoes, hat, ...), or after a label as --save-items writes them "
                   "(T-shirt-top, Trouser, Ankle-boot, unknown, ...)")
    p.add_argument("--photo-map", type=Path, default=PHOTO_MAP, metavar="MAP.json",
                   help="folder -> class name(s) or unknown, for folders named otherwise (default: the real-photos "
                   "map, train/photo-maps/clothing-dataset-small.json)")
    p.add_argument("--model", type=Path, default=models.INT8_MODEL, help="model (default: shipped int8)")
    p.add_argument("--labels", type=Path, help="labels (default: labels.txt beside the model)")
    p.add_argument("--threshold", type=_fraction,
                   help="confidence below which the label is 'unknown' (default: the model's calibrated one, as "
                   "classify-cam)")
    p.add_argument("--sweep", metavar="T1,T2,...", type=_fractions,
                   help="also print the scores at each of these thresholds, e.g. 0.3,0.4,0.5")
    p.add_argument("--segment", choices=["auto", "fast", "grabcut"], default="auto",
                   help="how the garment is cut out (default auto: grabcut for photos, as classify-cam)")
    p.add_argument("--out", type=Path, default=Path("runs/photo-eval"),
                   help="where to write results.json and worst.png (default runs/photo-eval)")
    p.add_argument("--worst", type=int, default=24, help="mistakes on the contact sheet (default 24)")
    p.add_argument("--compare", type=Path, metavar="OTHER.tflite",
                   help="also run this model (its own labels.txt and calibrated threshold) on the same inputs and "
                   "print both side by side, folder by folder")
    return p.parse_args(argv)


def evaluate(folder: Path, model, threshold: float, segment: str = "auto", kinds: dict = FOLDERS):
    """One row per readable photo: folder, predicted label, confidence, and the 28x28 input."""
    from device.pipeline import LabelSettings, Labeller
    from device.sources import ImageFiles, images_under

    rows = []
    labeller = Labeller(model, LabelSettings(threshold=0.0, top_k=1, segment=segment), live=False)
    for kind in sorted(kinds):
        if not (folder / kind).is_dir():
            continue
        for i, frame in enumerate(ImageFiles(images_under(folder / kind)).frames()):
            record, x = labeller(frame, i)
            if "error" not in record:
                rows.append({"kind": kind, "path": frame.source, "top": record["label"],
                             "confidence": record["confidence"], "input": x, "image": frame.image})
    return with_threshold(rows, threshold)


def rescore(rows, model, threshold: float):
    """The same photos and inputs, scored by another model: what --compare puts beside the first."""
    out = []
    for r in rows:
        scores = model.scores(r["input"])
        best = int(np.argmax(scores))
        out.append({**r, "top": model.labels[best], "confidence": round(float(scores[best]), 4)})
    return with_threshold(out, threshold)


def with_threshold(rows, threshold: float):
    """Each row's label as the device would give it at this threshold."""
    return [{**r, "label": r["top"] if r["confidence"] >= threshold else "unknown"} for r in rows]


def score(rows, kinds: dict = FOLDERS) -> dict:
    inside = [r for r in rows if kinds[r["kind"]][0]]
    outside = [r for r in rows if not kinds[r["kind"]][0]]
    strict = [r["label"] in kinds[r["kind"]][0] for r in inside]
    group = [GROUP_OF.get(r["label"]) == kinds[r["kind"]][1] for r in inside]
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return {
        "photos": len(rows), "in_catalogue": len(inside), "out_of_catalogue": len(outside),
        "strict": mean(strict), "group": mean(group),
        "unknown_in_catalogue": mean([r["label"] == "unknown" for r in inside]),
        "unknown_out_of_catalogue": mean([r["label"] == "unknown" for r in outside]),
        "confusion": {kind: dict(Counter(r["label"] for r in rows if r["kind"] == kind)) for kind in kinds
                      if any(r["kind"] == kind for r in rows)},
        "folders": {kind: folder_score([r for r in rows if r["kind"] == kind], kinds) for kind in kinds
                    if any(r["kind"] == kind for r in rows)},
    }


def folder_score(rows, kinds: dict = FOLDERS) -> dict:
    """One folder: photos, right (the strict label, or unknown outside the catalogue), group, unknown."""
    labels, group = kinds[rows[0]["kind"]]
    right = [r["label"] in labels if labels else r["label"] == "unknown" for r in rows]
    return {"photos": len(rows), "right": float(np.mean(right)),
            "group": float(np.mean([GROUP_OF.get(r["label"]) == group for r in rows])) if labels else None,
            "unknown": float(np.mean([r["label"] == "unknown" for r in rows]))}


def format_report(s: dict, labels) -> str:
    cols = list(labels) + ["unknown"]
    short = [c.split("/")[0][:7] for c in cols] + ["right %"]
    lines = [f"{s['photos']} photos: {s['in_catalogue']} in the catalogue, {s['out_of_catalogue']} not",
             f"strict accuracy {100 * s['strict']:.1f}%   group accuracy {100 * s['group']:.1f}%",
             f"'unknown' on {100 * s['unknown_in_catalogue']:.1f}% of in-catalogue photos, "
             f"{100 * s['unknown_out_of_catalogue']:.1f}% of out-of-catalogue photos", "",
             f"{'folder':<11}" + "".join(f"{c:>8}" for c in short)]
    for kind, counts in s["confusion"].items():
        lines.append(f"{kind:<11}" + "".join(f"{counts.get(c, 0):>8}" for c in cols)
                     + f"{100 * s['folders'][kind]['right']:>8.1f}")
    lines.append("(right %: the folder's own label; for folders not in the catalogue, unknown)")
    return "\n".join(lines)


def format_comparison(a: dict, b: dict, name_a: str, name_b: str) -> str:
    """Two models' scores on the same photos, overall and per folder."""
    rows = [("strict %", "strict"), ("group %", "group"), ("unknown in %", "unknown_in_catalogue"),
            ("unknown out %", "unknown_out_of_catalogue")]
    # Columns A and B, named in full above them: two models are often both called fashion_int8.tflite.
    lines = ["", f"A: {name_a}", f"B: {name_b}", f"{'':<14}{'A':>17}{'B':>17}"]
    lines += [f"{label:<14}{100 * a[key]:>17.1f}{100 * b[key]:>17.1f}" for label, key in rows]
    lines.append("right % per folder:")
    lines += [f"  {kind:<12}{100 * a['folders'][kind]['right']:>17.1f}{100 * b['folders'][kind]['right']:>17.1f}"
              f"   ({a['folders'][kind]['photos']} photos)" for kind in a["folders"]]
    return "\n".join(lines)


def contact_sheet(rows, path: Path, count: int, kinds: dict = FOLDERS) -> None:
    """The most confident mistakes: the photo, and beside it the 28x28 the model was given."""
    import cv2

    from device.spec import picture

    wrong = [r for r in rows if r["label"] != "unknown" and r["label"] not in kinds[r["kind"]][0]]
    wrong.sort(key=lambda r: -r["confidence"])
    tiles = []
    for r in wrong[:count]:
        img = r["image"] if r["image"].ndim == 2 else cv2.cvtColor(r["image"], cv2.COLOR_RGB2GRAY)
        h, w = img.shape
        photo = cv2.resize(img, (round(140 * w / h), 140))[:, :140]
        photo = np.pad(photo, ((0, 0), (0, 140 - photo.shape[1])))
        seen = cv2.resize(picture(r["input"]), (140, 140),
                          interpolation=cv2.INTER_NEAREST)
        tile = np.vstack([np.hstack([photo, seen]), np.zeros((36, 280), np.uint8)])
        cv2.putText(tile, f"{r['kind']} -> {r['label']}", (4, 156), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1)
        cv2.putText(tile, f"{r['confidence']:.2f}", (4, 172), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1)
        tiles.append(tile)
    if not tiles:
        return
    per_row = 4
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % per_row)
    sheet = np.vstack([np.hstack(tiles[i: i + per_row]) for i in range(0, len(tiles), per_row)])
    cv2.imwrite(str(path), sheet)


def main(argv=None) -> int:
    args = parse_args(argv)
    from device.model import Model
    from device.runtime import ModelError, RuntimeMissing

    if not args.folder.is_dir():
        print(f"fashion-photo-eval: no such folder: {args.folder}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():  # found now, not after the whole evaluation
        print(f"fashion-photo-eval: --out {args.out} is a file, not a folder", file=sys.stderr)
        return 2
    import models
    from device import card

    labels = args.labels or args.model.parent / "labels.txt"
    try:
        model = Model(args.model, labels)
        threshold = args.threshold if args.threshold is not None else card.unknown_threshold(args.model)
    except (ModelError, RuntimeMissing, card.CardError) as exc:
        print(f"fashion-photo-eval: {exc}", file=sys.stderr)
        return 2
    from train.photos import PhotoError

    try:
        kinds = folders(args.photo_map, args.folder)
    except (PhotoError, OSError) as exc:
        print(f"fashion-photo-eval: {exc}", file=sys.stderr)
        return 2
    rows = evaluate(args.folder, model, threshold, args.segment, kinds)
    if not rows:
        print(f"fashion-photo-eval: no photos in known sub-folders of {args.folder} (folders named after a label, "
              f"or in --photo-map)", file=sys.stderr)
        return 2
    s = score(rows, kinds)
    print(format_report(s, model.labels))
    if args.sweep:
        print(f"\n{'threshold':>9} {'strict %':>9} {'group %':>8} {'unknown in %':>13} {'unknown out %':>14}")
        for t in args.sweep:
            w = score(with_threshold(rows, t), kinds)
            print(f"{t:>9.2f} {100 * w['strict']:>9.1f} {100 * w['group']:>8.1f} "
                  f"{100 * w['unknown_in_catalogue']:>13.1f} {100 * w['unknown_out_of_catalogue']:>14.1f}")
    compared = None
    if args.compare:
        try:
            other = Model(args.compare, args.compare.parent / "labels.txt")
            other_threshold = card.unknown_threshold(args.compare)
        except (ModelError, RuntimeMissing, card.CardError) as exc:
            print(f"fashion-photo-eval: --compare: {exc}", file=sys.stderr)
            return 2
        compared = score(rescore(rows, other, other_threshold), kinds)
        print(format_comparison(s, compared, f"{args.model}{' (shipped)' if args.model == models.INT8_MODEL else ''}",
                                str(args.compare)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(
        {**s, "threshold": threshold, "segment": args.segment, "model": str(args.model),
         "compare": {"model": str(args.compare), **compared} if compared else None,
         "photos_list": [{k: r[k] for k in ("path", "kind", "label", "confidence")} for r in rows]}, indent=2))
    contact_sheet(rows, args.out / "worst.png", args.worst, kinds)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'worst.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
