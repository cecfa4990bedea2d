"""make model: rebuild the shipped files in models/ from scratch, in one command, the same bytes each time.

    .venv/bin/python -m train.rebuild [--photos DIR] [--work build/model] [--dry-run]

The recipe, in three stages (each its own process, so each starts from the same seeds):
1. train: edge-wide from scratch on Fashion-MNIST with the real photos in every batch (`--photos`,
   train/photos.py), real-photo flaws and drawn non-garments (RECIPE below), into --work/train;
2. finetune: a few epochs more from stage 1's weights at a low learning rate with a larger share of
   photos in each batch (FINETUNE below), shipped to models/fashion_float.keras;
3. convert: full-integer int8 with mirror averaging (each image's scores averaged with its mirror
   image's, convert/quantize.mirrored), the accuracy-drop gate, and the "unknown" threshold
   calibrated on the real photos that stage 1 held out (fashion-convert --photos).
Why these stages and settings: docs/training.md. Logs and run folders go to --work; the model card
records this command, every stage's command, and the photo set's manifest. A stage that fails, or an
int8 model under SHIP_BAR on Fashion-MNIST, puts models/ back as it was (exit 1; the rebuilt files are
kept in --work/candidate), so the suite's gate never meets a model it would refuse.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "real-photos-train"  # the public collection's training split, beside the checkout
PHOTO_MAP = ROOT / "train" / "photo-maps" / "clothing-dataset-small.json"

# Chosen by measurement (docs/training.md, "Learning from real photos"): one stage from scratch learns the
# photos better than fine-tuning a Fashion-MNIST model does. 60 epochs take about an hour on 2 cores with
# bfloat16 (AMX); without it (float32) an epoch takes about three times as long.
RECIPE = ["--model", "edge-wide", "--epochs", "60", "--patience", "60",
          "--realistic", "0.1", "--outliers", "0.12", "--photo-share", "0.12"]
# Then the photos weigh more for a few epochs at a twentieth of the peak learning rate: out-of-catalogue
# photos come out unknown more often, Fashion-MNIST moves by -0.02 points (docs/training.md, "Stage 2",
# ft1; 50% photos cost it 0.18). The same held-out photos as stage 1
# (a hash of each photo's name), so the calibration photos are never trained on.
FINETUNE = ["--model", "edge-wide", "--epochs", "6", "--patience", "6", "--learning-rate", "1e-4",
            "--warmup-epochs", "0", "--realistic", "0.1", "--outliers", "0.12", "--photo-share", "0.3"]


# What tests/convert/test_gate.py holds the shipped int8 model to on Fashion-MNIST's test set.
SHIP_BAR = 0.94


def shipped_files() -> list[Path]:
    """The files in models/ that the stages write."""
    import models

    return [models.FLOAT_MODEL, models.INT8_MODEL, models.LABELS, models.CARD]


def stages(photos: Path, work: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) of each stage, in order; paths relative to the repository where they are inside it."""
    rel = lambda p: os.path.relpath(p, ROOT)  # noqa: E731  (the card must not depend on where the clone is)
    photo_args = ["--photos", rel(photos), "--photo-map", rel(PHOTO_MAP)]
    return [
        ("train", ["fashion-train", *RECIPE, *photo_args, "--run-dir", rel(work / "train"), "--quiet"]),
        ("finetune", ["fashion-train", *FINETUNE, *photo_args, "--init", rel(first_stage_model(work)),
                      "--run-dir", rel(work / "finetune"), "--ship", "--quiet"]),
        ("convert", ["fashion-convert", "--mirror", *photo_args, "--ship", "--report", rel(work / "convert-report.json")]),
    ]


def first_stage_model(work: Path) -> Path:
    """Where stage 1 leaves its model, for stage 2 to start from."""
    return work / "train" / "model.keras"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make model", description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=PHOTOS, help=f"the real training photos (default {PHOTOS})")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "model",
                   help="run folders and logs (default build/model)")
    p.add_argument("--from-stage", choices=["train", "finetune", "convert"], default="train",
                   help="start at this stage: finetune reuses stage 1's model in --work, convert the shipped "
                        "float model (default train)")
    p.add_argument("--dry-run", action="store_true", help="print the stages' commands and stop")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.photos.is_dir():
        print(f"make model: the real training photos are not at {args.photos}: put the collection's training split "
              "there (../shared/real-photos-train beside the checkout), or give --photos DIR", file=sys.stderr)
        return 2
    plan = stages(args.photos, args.work)
    plan = plan[[name for name, _ in plan].index(args.from_stage):]
    for name, cmd in plan:
        print(f"[{name}] {shlex.join(cmd)}")
    if args.dry_run:
        return 0
    if args.from_stage == "finetune" and not first_stage_model(args.work).is_file():
        print(f"make model: --from-stage finetune starts from stage 1's model, and {first_stage_model(args.work)} "
              "is not there: run the whole recipe", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    kept = keep_shipped(args.work / "shipped-before")
    bin_dir = Path(sys.executable).parent
    started = time.time()
    for name, cmd in plan:
        log = args.work / f"{name}.log"
        t0 = time.time()
        print(f"[{name}] running, log in {log}", flush=True)
        with open(log, "w") as f:
            code = subprocess.call([str(bin_dir / cmd[0]), *cmd[1:]], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        print(f"[{name}] {'done' if code == 0 else f'FAILED (exit {code})'} in {(time.time() - t0) / 60:.1f} min",
              flush=True)
        if code != 0:
            print(f"make model: stage {name} failed; the end of its log:\n" + "".join(log.read_text().splitlines(True)[-15:]),
                  file=sys.stderr)
            put_back(kept, args.work / "candidate")
            return code
    record(stages(args.photos, args.work))
    minutes = (time.time() - started) / 60
    from device import card

    accuracy = card.read(shipped_files()[-1])["conversion"]["metrics"]["int8"]["accuracy"]
    if accuracy < SHIP_BAR:
        put_back(kept, args.work / "candidate")
        print(f"make model: the rebuilt int8 model scores {100 * accuracy:.2f}% on Fashion-MNIST, under the "
              f"{100 * SHIP_BAR:.1f}% the shipped model is held to; models/ is as it was, the rebuilt files are in "
              f"{args.work / 'candidate'} ({minutes:.1f} min)", file=sys.stderr)
        return 1
    print(f"make model: models/ rebuilt in {minutes:.1f} min (int8 {100 * accuracy:.2f}% on Fashion-MNIST)")
    return 0


def keep_shipped(folder: Path) -> Path:
    """Copy models/'s files aside before the stages overwrite them."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in shipped_files():
        if path.is_file():
            shutil.copy2(path, folder / path.name)
    return folder


def put_back(kept: Path, candidate: Path) -> None:
    """Move what the stages wrote into `candidate` and the kept files back into models/: a failed or
    under-the-bar rebuild never leaves models/ half replaced."""
    candidate.mkdir(parents=True, exist_ok=True)
    for path in shipped_files():
        if path.is_file():
            shutil.copy2(path, candidate / path.name)
        if (kept / path.name).is_file():
            shutil.copy2(kept / path.name, path)
    print(f"make model: models/ put back as it was; what this run wrote is in {candidate}", file=sys.stderr)


def record(plan) -> None:
    """The card's `recipe` section: this command and every stage's (no times: the card must rebuild byte for byte)."""
    import models
    from train import card

    section = {"command": "make model", "rebuild": "train/rebuild.py, from a clean clone with ../shared/real-photos-train "
               "beside it", "stages": [{"stage": n, "command": shlex.join(c)} for n, c in plan]}
    card.update(models.CARD, resign=False, recipe=section)


if __name__ == "__main__":
    sys.exit(main())
