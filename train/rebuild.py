"""make model: rebuild the shipped files in models/ from scratch, in one command, the same bytes each time.

    .venv/bin/python -m train.rebuild [--photos DIR] [--work build/model] [--dry-run]

The recipe, stage by stage (each its own process, so every stage starts from the same seeds):
1. base: the edge CNN from scratch on Fashion-MNIST, with real-photo flaws and drawn non-garments
   (fashion-train's defaults, train/config.py);
2. photos: widened to edge-wide and fine-tuned with the real photos mixed into every batch
   (`--photos`, train/photos.py), then shipped to models/fashion_float.keras;
3. convert: full-integer int8, the accuracy-drop gate, and the "unknown" threshold calibrated on
   the real photos that stage 2 held out (fashion-convert --photos).
Why these stages and settings: docs/training.md. Logs and run folders go to --work; the model card
records this command, every stage's command, and the photo set's manifest.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "real-photos-train"  # the public collection's training split, beside the checkout
PHOTO_MAP = ROOT / "train" / "photo-maps" / "clothing-dataset-small.json"

# Stage 2's fine-tuning, chosen by measurement (docs/training.md).
FINE_TUNE = ["--epochs", "6", "--learning-rate", "2e-4", "--warmup-epochs", "0", "--patience", "6",
             "--realistic", "0.3", "--outliers", "0.3", "--photo-share", "0.15"]


def stages(photos: Path, work: Path, start: Path | None = None) -> list[tuple[str, list[str]]]:
    """(name, argv) of each stage, in order; paths relative to the repository where they are inside it.

    start: a trained edge or edge-wide model to fine-tune instead of stage 1's (--start-from)."""
    rel = lambda p: os.path.relpath(p, ROOT)  # noqa: E731  (the card must not depend on where the clone is)
    photo_args = ["--photos", rel(photos), "--photo-map", rel(PHOTO_MAP)]
    base, tuned = work / "base", work / "photos"
    plan = [] if start else [("base", ["fashion-train", "--run-dir", rel(base), "--quiet"])]
    return plan + [
        ("photos", ["fashion-train", "--model", "edge-wide", "--init", rel(start or base / "model.keras"), *photo_args,
                    *FINE_TUNE, "--run-dir", rel(tuned), "--ship", "--quiet"]),
        ("convert", ["fashion-convert", *photo_args, "--report", rel(work / "convert-report.json")]),
    ]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make model", description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, default=PHOTOS, help=f"the real training photos (default {PHOTOS})")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "model",
                   help="run folders and logs (default build/model)")
    p.add_argument("--from-stage", choices=["base", "photos", "convert"], default="base",
                   help="start at this stage, reusing the earlier stages' run folders in --work (default base)")
    p.add_argument("--start-from", type=Path, metavar="MODEL.keras",
                   help="skip stage 1 and fine-tune this trained model instead (e.g. a float model from the "
                   "repository's history, for a machine where stage 1 takes hours)")
    p.add_argument("--dry-run", action="store_true", help="print the stages' commands and stop")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.photos.is_dir():
        print(f"make model: the real training photos are not at {args.photos}: put the collection's training split "
              "there (../shared/real-photos-train beside the checkout), or give --photos DIR", file=sys.stderr)
        return 2
    if args.start_from and not args.start_from.is_file():
        print(f"make model: --start-from {args.start_from}: no such model", file=sys.stderr)
        return 2
    plan = stages(args.photos, args.work, args.start_from)
    names = [name for name, _ in plan]
    plan = plan[names.index(args.from_stage):] if args.from_stage in names else plan
    for name, cmd in plan:
        print(f"[{name}] {shlex.join(cmd)}")
    if args.dry_run:
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
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
            return code
    record(stages(args.photos, args.work, args.start_from), args)
    print(f"make model: models/ rebuilt in {(time.time() - started) / 60:.1f} min")
    return 0


def record(plan, args) -> None:
    """The card's `recipe` section: this command and every stage's (no times: the card must rebuild byte for byte)."""
    import models
    from device import card

    command = "make model" if not args.start_from else \
        f"python -m train.rebuild --start-from {os.path.relpath(args.start_from, ROOT)}"
    section = {"command": command, "rebuild": "train/rebuild.py, from a clean clone with ../shared/real-photos-train "
               "beside it", "stages": [{"stage": n, "command": shlex.join(c)} for n, c in plan]}
    if args.start_from:
        section["started_from"] = {"file": os.path.relpath(args.start_from, ROOT), "sha256": card.sha256(args.start_from)}
    card.update(models.CARD, resign=False, recipe=section)


if __name__ == "__main__":
    sys.exit(main())
