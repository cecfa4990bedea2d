"""fashion-train: train a model on Fashion-MNIST and write a run folder of reports."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from train.config import TrainConfig


def parse_args(argv=None) -> argparse.Namespace:
    from device.oneline import OneLineParser

    p = OneLineParser(
        prog="fashion-train",
        description="Train the edge CNN (or a baseline) on Fashion-MNIST. Each run writes a folder with "
        "the model, its config, metrics, per-class scores, confusion matrix, hardest pairs, prediction "
        "bias, training curves and first-layer filters.",
    )
    defaults = TrainConfig()
    p.add_argument("--config", help="start from a saved config.json (a run folder's) instead of the defaults")
    p.add_argument("--model", choices=["edge", "edge-wide", "tutorial", "dense"],
                   help=f"network (default {defaults.model}; edge-wide: edge with a 256-channel last stage, "
                   "for fine-tuning from an edge model)")
    p.add_argument("--dataset", choices=["fashion", "mnist"], help=f"data set (default {defaults.dataset})")
    p.add_argument("--epochs", type=int, help=f"most epochs; early stopping may end sooner (default {defaults.epochs})")
    p.add_argument("--batch-size", type=int, help=f"(default {defaults.batch_size})")
    p.add_argument("--learning-rate", type=float, help=f"peak learning rate (default {defaults.learning_rate})")
    p.add_argument("--warmup-epochs", type=int, help=f"(default {defaults.warmup_epochs})")
    p.add_argument("--weight-decay", type=float, help=f"(default {defaults.weight_decay})")
    p.add_argument("--val-size", type=int, help=f"validation images held out (default {defaults.val_size})")
    p.add_argument("--patience", type=int, help=f"early-stopping patience in epochs (default {defaults.patience})")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, help="data augmentation (default on)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, help="horizontal flips (default on)")
    p.add_argument("--shift", type=float, help=f"max shift, fraction of the width (default {defaults.shift})")
    p.add_argument("--rotate", type=float, help=f"max rotation, fraction of a turn (default {defaults.rotate})")
    p.add_argument("--zoom", type=float, help=f"max zoom (default {defaults.zoom})")
    p.add_argument("--realistic", type=float,
                   help="share of each batch given a real photo's flaws: residual background, prints, uneven light, "
                   f"ragged outlines, blur, noise, JPEG (default {defaults.realistic}; 0 = off)")
    p.add_argument("--outliers", type=float,
                   help="share of each batch replaced by non-garments (shorts, skirts, hats, close-ups, clutter, "
                   f"empty frames) trained towards equal scores, so 'unknown' works (default {defaults.outliers})")
    p.add_argument("--photos", action="append", metavar="DIR",
                   help="labelled real photos to mix into training, one sub-folder per kind (repeatable); a folder "
                   "named after a class (T-shirt-top, Trouser, ..., unknown) needs no mapping")
    p.add_argument("--photo-map", metavar="MAP.json",
                   help='folder name -> class, e.g. {"pants": "Trouser", "shoes": ["Sandal", "Sneaker", "Ankle boot"], '
                   '"hat": "unknown"}; several classes: the network picks which; unknown: trained as a non-garment')
    p.add_argument("--photo-share", type=float, help=f"share of each batch given to photos (default {defaults.photo_share})")
    p.add_argument("--photo-balance", type=float,
                   help=f"0: every photo drawn equally often, 1: every folder (default {defaults.photo_balance})")
    p.add_argument("--photo-variants", type=int,
                   help=f"segmented versions of each photo, the first as it is (default {defaults.photo_variants})")
    p.add_argument("--photo-holdout", type=float,
                   help=f"share of photos held out to measure and calibrate on (default {defaults.photo_holdout})")
    p.add_argument("--photo-cache", help=f"where segmented photos are cached (default {defaults.photo_cache})")
    p.add_argument("--init", metavar="MODEL.keras",
                   help="start from this model's weights instead of from scratch (fine-tuning; same --model, or "
                   "an edge model for --model edge-wide, widened to start with nearly the same scores)")
    p.add_argument("--label-smoothing", type=float, help=f"(default {defaults.label_smoothing})")
    p.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                   help="auto: mixed bfloat16 where the CPU has bf16 units, else float32 (default auto)")
    p.add_argument("--seed", type=int, help=f"random seed (default {defaults.seed})")
    p.add_argument("--limit", type=int, help="train on the first N images only (quick checks)")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test images only")
    p.add_argument("--out-dir", help=f"parent of the run folders (default {defaults.out_dir})")
    p.add_argument("--run-dir", help="exact run folder to write (default OUT_DIR/<time>-<model>)")
    p.add_argument("--ship", action="store_true",
                   help="copy the trained model to models/fashion_float.keras and record it in the model card")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    for f in fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(cfg, f.name, value)
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
    except (OSError, ValueError, TypeError) as exc:
        print(f"fashion-train: bad --config: {exc}", file=sys.stderr)
        return 2

    if cfg.init and not Path(cfg.init).is_file():
        print(f"fashion-train: --init: no such model: {cfg.init}", file=sys.stderr)
        return 2

    from train import photos as photos_mod

    try:  # a wrong photo folder or mapping is found before TensorFlow even loads
        if cfg.photos:
            photos_mod.scan(cfg.photos, cfg.photo_map, cfg.photo_holdout)
        if not 0 <= cfg.photo_share < 1:
            raise photos_mod.PhotoError(f"--photo-share must be in [0, 1), not {cfg.photo_share}")
        if cfg.photo_variants < 1:
            raise photos_mod.PhotoError(f"--photo-variants must be at least 1, not {cfg.photo_variants}")
    except photos_mod.PhotoError as exc:
        print(f"fashion-train: {exc}", file=sys.stderr)
        return 2

    from train import data as data_mod
    from train import pipeline

    if cfg.init:  # a model of another width or shape: one line now, not a Keras error after the data loaded
        try:
            pipeline.check_init(cfg)
        except pipeline.InitMismatch as exc:
            print(f"fashion-train: {exc}", file=sys.stderr)
            return 2
    try:
        metrics = pipeline.run(cfg, args.run_dir, verbose=2 if args.quiet or not sys.stdout.isatty() else 1)
    except (data_mod.DataNotFound, pipeline.InitMismatch) as exc:
        print(f"fashion-train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fashion-train: interrupted", file=sys.stderr)
        return 130
    except (photos_mod.PhotoError, OSError) as exc:
        print(f"fashion-train: {exc}", file=sys.stderr)
        return 2
    if args.ship:
        try:
            ship(cfg, metrics, argv)
        except (OSError, ValueError) as exc:  # a damaged card, a read-only models/: the run folder still holds it
            print(f"fashion-train: could not ship {metrics['run_dir']}/model.keras: {exc}", file=sys.stderr)
            return 1
    return 0


def ship(cfg: TrainConfig, metrics: dict, argv) -> None:
    """Copy the run's model into models/ and record how it was made in the model card."""
    from dataclasses import asdict
    from pathlib import Path

    import models
    from train import card

    run_dir = Path(metrics["run_dir"])
    command = ("fashion-train " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
    # No times: the card of a rebuilt model must come out byte for byte the same (make model).
    # Per-class scores and hardest pairs stay in the run folder's metrics.json: the card's conversion
    # section already gives each class's float and int8 accuracy on the same test set.
    keep = ("accuracy", "params", "epochs_run", "val_accuracy")
    section = {"command": command, "config": asdict(cfg), "data_source": metrics["data_source"],
               "data_sha256": metrics["data_sha256"], "metrics": {k: metrics[k] for k in keep}}
    if "photos" in metrics:
        section["photos"] = metrics["photos"]
    if cfg.init:  # fine-tuned: say from what (make model records the whole recipe)
        section["started_from"] = {"file": cfg.init, "sha256": metrics["init_sha256"]}
    shutil.copyfile(run_dir / "model.keras", models.FLOAT_MODEL)
    card.update(models.CARD, training=section)
    print(f"shipped {models.FLOAT_MODEL} and updated {models.CARD}")


if __name__ == "__main__":
    sys.exit(main())
