"""fashion-convert: float Keras model -> full-integer int8 TFLite, then prove nothing was lost."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import models

DEFAULT_CALIBRATION = 1000  # chosen by measurement: see README, "Calibration size"
# Where a conversion goes unless --ship or --output says otherwise: never over the shipped files by accident.
DEFAULT_OUTPUT = Path("build") / "convert" / "fashion_int8.tflite"


def parse_args(argv=None) -> argparse.Namespace:
    from device.oneline import OneLineParser

    p = OneLineParser(
        prog="fashion-convert",
        description="Convert the float Keras model into a full-integer int8 TFLite model (int8 input and "
        "output, integer-only ops), calibrated on a class-balanced set of training images; then evaluate "
        "both files on the full test set and exit 1 if quantization cost more accuracy than allowed.",
    )
    p.add_argument("--model", type=Path, default=models.FLOAT_MODEL, help="float .keras model (default: shipped)")
    p.add_argument("--output", type=Path, default=None,
                   help=f"int8 .tflite to write (default {DEFAULT_OUTPUT}, beside its own card and labels; with "
                   "--check-only: the shipped int8 file)")
    p.add_argument("--ship", action="store_true",
                   help="write the shipped models/fashion_int8.tflite and its card (the only way to replace them)")
    p.add_argument("--check-only", action="store_true",
                   help="convert nothing: evaluate and gate the existing --model / --output pair (and record its "
                   "calibrated 'unknown' threshold in the model card beside it)")
    p.add_argument("--calibration-size", type=int, default=DEFAULT_CALIBRATION,
                   help=f"calibration images, class-balanced, from the training set (default {DEFAULT_CALIBRATION})")
    p.add_argument("--calibration-seed", type=int, default=0, help="which calibration images (default 0)")
    p.add_argument("--calibration-study", metavar="SIZES",
                   help="comma-separated sizes, e.g. 50,200,1000,5000: convert with each and print how accuracy "
                   "moves; writes no model")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="average the scores of each image and its mirror image inside the int8 file: steadier, and "
                   "twice the time per image (default: off; with --check-only, as the model card says)")
    p.add_argument("--tolerance", type=float, default=0.3, help="most overall accuracy drop, points (default 0.3)")
    p.add_argument("--class-tolerance", type=float, default=1.0,
                   help="most accuracy drop of any one class, points (default 1.0)")
    p.add_argument("--min-agreement", type=float, default=0.98,
                   help="least share of test images on which float and int8 predict the same class (default 0.98)")
    p.add_argument("--unknown-keep", type=float, default=None,
                   help="calibrate the default 'unknown' threshold so that this share of realistic held-out garments "
                   "keep their label (default 0.97; see convert/unknown.py)")
    p.add_argument("--photos", action="append", metavar="DIR",
                   help="calibrate 'unknown' on the real photos fashion-train --photos held out of training (the same "
                   "folders, --photo-map and --photo-holdout), instead of on synthetic garments (repeatable)")
    p.add_argument("--photo-map", metavar="MAP.json", default="", help="the folder mapping used in training")
    p.add_argument("--photo-holdout", type=float, default=None, help="the held-out share used in training "
                   "(default: fashion-train's)")
    p.add_argument("--dataset", choices=["fashion", "mnist"], default="fashion", help="data set (default fashion)")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images only (0 = all)")
    p.add_argument("--report", type=Path, default=Path("runs/convert-report.json"),
                   help="where to write the JSON report (default runs/convert-report.json)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.ship and args.output is not None and args.output.resolve() != models.INT8_MODEL.resolve():
        print(f"fashion-convert: --ship writes {models.INT8_MODEL}; give --ship or --output, not both", file=sys.stderr)
        return 2
    if args.output is None:
        args.output = models.INT8_MODEL if args.ship or args.check_only else DEFAULT_OUTPUT
    elif not args.ship and not args.check_only and args.output.resolve() == models.INT8_MODEL.resolve():
        print(f"fashion-convert: --output {args.output} is the shipped int8 file: give --ship to replace it",
              file=sys.stderr)
        return 2
    from convert.quantize import ModelFileError
    from device.card import CardError
    from device.runtime import ModelError, RuntimeMissing
    from train.photos import PhotoError

    try:
        return _main(args)
    except (ModelFileError, CardError, ModelError, RuntimeMissing, PhotoError) as exc:
        print(f"fashion-convert: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fashion-convert: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last guard: one line, not a traceback
        print(f"fashion-convert: error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
              file=sys.stderr)
        return 1


def _main(args) -> int:
    if not args.model.is_file():
        print(f"fashion-convert: float model not found: {args.model}", file=sys.stderr)
        return 2
    if args.check_only and not args.output.is_file():
        print(f"fashion-convert: int8 model not found: {args.output}", file=sys.stderr)
        return 2
    if args.check_only:  # a file that is not the one its card signed is never gated (nor re-signed)
        from device.model import verify_model_file
        from device.runtime import ModelError

        try:
            verify_model_file(args.model)
            verify_model_file(args.output)
        except ModelError as exc:
            print(f"fashion-convert: {exc}", file=sys.stderr)
            return 2
        if args.unknown_keep is not None and kept_threshold(args):  # a keep alone would be ignored
            print("fashion-convert: --unknown-keep needs --photos here: the card's 'unknown' threshold was "
                  "calibrated on real photos, and a check without them keeps it", file=sys.stderr)
            return 2

    from convert import evaluate
    from train import data as data_mod

    try:
        data = data_mod.load(args.dataset)
    except data_mod.DataNotFound as exc:
        print(f"fashion-convert: {exc}", file=sys.stderr)
        return 2
    test_x, test_y = data.test.images, data.test.labels
    if args.test_limit:
        test_x, test_y = test_x[: args.test_limit], test_y[: args.test_limit]
    tol = evaluate.Tolerances(args.tolerance, args.class_tolerance, args.min_agreement)

    from convert.quantize import converted_mirrored

    # Mirror averaging is part of what an int8 file computes: a check scores the float model as its card says.
    mirror = args.mirror if args.mirror is not None else (args.check_only and converted_mirrored(args.output))
    if args.calibration_study:
        return calibration_study(args, data, test_x, test_y, tol, mirror)
    calibration = None
    if not args.check_only:
        print(f"converting {args.model}{' with mirror averaging' if mirror else ''} with {args.calibration_size} "
              f"calibration images into {args.output}{' (shipped)' if args.ship else ''} ...", flush=True)
        calibration = convert(args.model, args.output, data, args.calibration_size, args.calibration_seed, mirror)

    print(f"evaluating both files on {len(test_y)} test images ...", flush=True)
    report = evaluate.compare(args.model, args.output, test_x, test_y, tol, mirror)
    print(evaluate.format_table(report))
    report["unknown"] = unknown_threshold(args, data)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    # The threshold and the fingerprint belong to the int8 file, converted now or not (--check-only).
    from train import card

    sections = {"unknown": report["unknown"], "reference_outputs": reference_outputs(args.output)}
    if calibration is not None:
        sections["conversion"] = conversion_section(args, report, calibration, data)
    # Only a real conversion signs files (new sha256s); --check-only records its figures and nothing else.
    card.update(args.output.parent / "model_card.json", resign=calibration is not None, **sections)
    if calibration is not None:
        print(f"wrote {args.output} (converted from {args.model}) and updated {args.output.parent / 'model_card.json'}"
              + ("" if args.ship else "; the shipped models/ are unchanged (--ship replaces them)"))
    return 0 if report["passed"] else 1


def reference_outputs(int8_path: Path) -> dict:
    """What the int8 file computes with the portable reference kernels, for a device to compare with."""
    from device import classify
    from device.runtime import find_runtime, make_interpreter

    runtime = find_runtime()
    interpreter = make_interpreter(int8_path, threads=1, runtime=runtime, kernels="reference")
    return {"what": "raw outputs for classify.fingerprint()'s 8 random-pixel images (PCG64 seed 0)",
            "kernels": "reference", "runtime": f"{runtime.name} {runtime.version}",
            "raw": classify.fingerprint(interpreter)}


def kept_threshold(args) -> dict | None:
    """The card's 'unknown' section where a check keeps it: --check-only without --photos, on a threshold
    calibrated on real photos (a check never moves it to one calibrated on drawn garments); else None."""
    from device import card

    if not args.check_only or args.photos:
        return None
    recorded = card.read(args.output.parent / "model_card.json").get("unknown", {})
    return recorded if recorded.get("photos") else None


def unknown_threshold(args, data) -> dict:
    """Calibrate the default 'unknown' threshold on held-out real photos, or validation images (convert/unknown.py)."""
    from convert import unknown
    from train.config import TrainConfig
    from train.pipeline import split_validation

    cfg = TrainConfig()  # the split the shipped recipe held out of training
    recorded = kept_threshold(args)
    if recorded:
        print(f"unknown threshold {recorded['threshold']:.2f}: calibrated on real photos held out of training, as the "
              "card says (give --photos to calibrate again)", flush=True)
        return recorded
    if args.photos:
        keep = args.unknown_keep if args.unknown_keep is not None else unknown.PHOTO_KEEP
        holdout = args.photo_holdout if args.photo_holdout is not None else cfg.photo_holdout
        print("calibrating the 'unknown' threshold on the real photos held out of training ...", flush=True)
        u = unknown.calibrate_photos(args.output, args.photos, args.photo_map, holdout, cfg.photo_variants,
                                     cfg.photo_cache, keep=keep)
        print(f"unknown threshold {u['threshold']:.2f}: {100 * u['unknown_on_garments']:.1f}% of "
              f"{u['photos']['garments']} held-out garments unknown, "
              f"{100 * (u['unknown_on_not_in_catalogue'] or 0):.1f}% of {u['photos']['not_in_catalogue']} "
              "held-out photos not in the catalogue", flush=True)
        return u
    _, (val_x, val_y) = split_validation(data.train.images, data.train.labels, cfg.val_size, cfg.seed)
    keep = args.unknown_keep if args.unknown_keep is not None else unknown.DEFAULT_KEEP
    print(f"calibrating the 'unknown' threshold on {min(unknown.COUNT, len(val_y))} realistic held-out garments ...",
          flush=True)
    u = unknown.calibrate(args.output, val_x, val_y, keep=keep)
    print(f"unknown threshold {u['threshold']:.2f}: realistic garments {100 * u['realistic_accuracy']:.1f}% right, "
          f"{100 * u['unknown_on_garments']:.1f}% of them unknown; {100 * u['unknown_on_non_garments']:.1f}% of "
          "non-garments unknown")
    return u


def convert(model_path: Path, output: Path, data, size: int, seed: int, mirror: bool = False) -> dict:
    """Write the int8 file (and labels.txt beside it); return what the calibration set was.

    mirror: the file averages each image's scores with its mirror image's (convert/quantize.mirrored)."""
    import numpy as np

    from convert.quantize import calibration_indices, convert_int8

    idx = calibration_indices(data.train.labels, size, seed)
    from convert.quantize import load_keras, mirrored

    model = load_keras(model_path)
    model = mirrored(model) if mirror else model
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    tmp.write_bytes(convert_int8(model, data.train.images[idx]))
    tmp.replace(output)
    labels = output.parent / "labels.txt"
    if not labels.exists():
        shutil.copyfile(models.LABELS, labels)
    return {"source": f"{data.source} (training split)", "size": int(len(idx)), "seed": seed,
            "class_counts": np.bincount(data.train.labels[idx], minlength=10).tolist()}


def conversion_section(args, report: dict, calibration: dict, data) -> dict:
    """The conversion's section of the model card beside the output."""
    from convert.quantize import converter_version
    from device import card

    keep = ("images", "agreement", "drop_points", "largest_class_drop", "tolerances", "passed")
    return {
        "command": ("fashion-convert " + shlex.join(sys.argv[1:])).strip(),
        "source_model": args.model.name, "source_sha256": card.sha256(args.model),
        "converter": f"tensorflow {converter_version()} TFLiteConverter, full-integer int8, per-channel weights",
        "calibration": calibration, "mirror": report["mirror"], "data_sha256": data.sha256,
        "metrics": {**{k: report[k] for k in keep},
                    "float": {k: report["float"][k] for k in ("accuracy", "per_class", "bytes")},
                    "int8": {k: report["int8"][k] for k in ("accuracy", "per_class", "bytes")}},
    }


def calibration_study(args, data, test_x, test_y, tol, mirror: bool = False) -> int:
    """Convert with each calibration size into a scratch folder and tabulate the gate's figures."""
    import tempfile

    from convert import evaluate

    sizes = [int(s) for s in args.calibration_study.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            out = Path(tmp) / f"cal{size}.tflite"
            print(f"calibration size {size} ...", flush=True)
            convert(args.model, out, data, size, args.calibration_seed, mirror)
            r = evaluate.compare(args.model, out, test_x, test_y, tol, mirror)
            rows.append((size, r))
    print(f"{'size':>6} {'int8 %':>8} {'drop':>6} {'agree %':>8} {'worst class drop':>24}")
    for size, r in rows:
        w = r["largest_class_drop"]
        print(f"{size:>6} {100 * r['int8']['accuracy']:>8.2f} {r['drop_points']:>6.2f} {100 * r['agreement']:>8.2f}"
              f" {w['points']:>8.2f} {w['class']:<15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
