"""fashion-adapt: teach a shipped model one site's own labelled photos, and keep it only if it is better there.

    fashion-adapt items/ --out bundle/                      # the --save-items layout (class-named folders)
    fashion-adapt photos/ --photo-map train/photo-maps/sites.json --out bundle/ --base other-bundle/

The recipe (chosen by measurement, docs/adaptation.md): the base model's convolutional body is frozen, each
photo goes once through the device's still-photo preparation (GrabCut, cached by content, train/photos.py)
as it is and in 3 varied shots, and the body's penultimate features of every picture and its mirror image
are computed once; so are those of a Fashion-MNIST replay set (class-balanced training images, some given a
real photo's flaws, some replaced by drawn non-garments). Only the scores layer is trained, from the base's
weights, on both sets: the site's photos carry `photo_weight` of the loss. That costs seconds, so "better" is
decided honestly: k-fold cross-validation over the site's photos (each photo scored by a model that never
saw it) against the base's own scores, with the device's label at the base's 'unknown' threshold. Then the
model trained on every photo is converted to int8 (convert/, mirror averaging as the base), gated as
fashion-convert gates, and held to a Fashion-MNIST floor. Exit 0 with the bundle in --out when the site gains
and every check passes; exit 1 with the bundle in --out/rejected/ otherwise; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from device.spec import CLASS_NAMES, UNKNOWN

FLOOR = 0.93  # the bundle's int8 model on Fashion-MNIST's test set: at least this
BUNDLE = ("fashion_float.keras", "fashion_int8.tflite", "labels.txt", "model_card.json")
# Where each kind of recipe cuts the network: the layer whose output is computed once (frozen below it).
CUTS = {"head": "flatten", "block3": "pool2", "all": None}


@dataclass
class Recipe:
    layers: str = "head"  # head: only the scores layer; block3: the last conv block and the scores layer; all
    epochs: int = 10  # passes over the photos and the replay set
    learning_rate: float = 1e-3  # Adam
    photo_weight: float = 0.3  # the site's photos' share of the loss (the rest: Fashion-MNIST replay)
    replay: int = 6000  # Fashion-MNIST training images replayed (class-balanced; each also mirrored)
    replay_realistic: float = 0.3  # share of the replay given a real photo's flaws (train/realworld.py)
    replay_outliers: float = 0.1  # share of the replay replaced by drawn non-garments, trained towards equal scores
    variants: int = 4  # segmented shots of each photo (train/photos.py), each also mirrored
    folds: int = 5  # k of the cross-validation over the site's photos
    label_smoothing: float = 0.1
    batch_size: int = 512
    seed: int = 0
    min_gain: int = 2  # photos the site must gain, net (right after minus right before), at the least
    min_gain_share: float = 0.02  # ... and at least this share of the site's photos


class UsageError(ValueError):
    """A mistake in the command (folders, map, base, --out): one line, exit 2."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- the base model


@dataclass
class Base:
    folder: Path
    float_path: Path
    int8_path: Path
    labels_path: Path
    card: dict
    threshold: float
    mirror: bool
    int8_sha256: str

    @property
    def id(self) -> str:
        return self.int8_sha256[:12]


def load_base(folder: Path | None) -> Base:
    """The shipped model (models/) or a bundle folder: its files checked against its card."""
    import models
    from device import card as card_mod
    from device.model import verify_model_file
    from device.runtime import ModelError

    folder = Path(folder) if folder else models.MODELS_DIR
    if not folder.is_dir():
        raise UsageError(f"--base {folder}: no such folder")
    paths = {name: folder / name for name in BUNDLE}
    missing = [name for name, p in paths.items() if not p.is_file()]
    if missing:
        raise UsageError(f"--base {folder}: not a model bundle (missing {', '.join(missing)})")
    try:
        verify_model_file(paths["fashion_float.keras"])
        digest = verify_model_file(paths["fashion_int8.tflite"])
        card = card_mod.read(paths["model_card.json"])
        threshold = card_mod.unknown_threshold(paths["fashion_int8.tflite"])
    except (ModelError, card_mod.CardError) as exc:
        raise UsageError(f"--base {folder}: {exc}") from None
    mirror = bool(card.get("conversion", {}).get("mirror", False))
    return Base(folder, paths["fashion_float.keras"], paths["fashion_int8.tflite"], paths["labels.txt"], card,
                threshold, mirror, digest)


# ----------------------------------------------------------------------------------------------- the site's photos


def scan_site(dirs, photo_map: str | None):
    """[(photo, its PHOTOS folder)], sorted; UsageError for a missing folder, a bad map, no photos."""
    from train import photos as photos_mod

    found = []
    try:
        mapping = photos_mod.read_mapping(photo_map)
        for kind in mapping:  # the map itself checked, also for folders this site does not have
            photos_mod.resolve(kind, mapping, str(photo_map))
        for d in dirs:
            root = Path(d)
            if not root.is_dir():
                raise UsageError(f"{d}: no such folder")
            if not any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
                raise UsageError(f"{d}: no sub-folders (expected one folder per label, as classify-cam --save-items "
                                 "writes them)")
            found += [(p, root) for p in photos_mod.scan([root], photo_map, holdout=0.0, lenient=True)]
    except photos_mod.PhotoError as exc:
        raise UsageError(str(exc)) from None
    if not found:
        raise UsageError(f"no photos under {', '.join(map(str, dirs))}")
    return found


def fold_of(photos, k: int, seed: int) -> np.ndarray:
    """Each photo's fold: stratified by folder (each folder's photos dealt round the folds in a seeded order)."""
    folds = np.zeros(len(photos), int)
    rng = np.random.default_rng(seed)
    start = 0
    for kind in sorted({p.kind for p in photos}):
        idx = [i for i, p in enumerate(photos) if p.kind == kind]
        order = rng.permutation(len(idx))
        for rank, j in enumerate(order):
            folds[idx[j]] = (start + rank) % k
        start += len(idx)  # the next folder starts where this one ended, so small folders spread over the folds
    return folds


def device_labels(scores: np.ndarray, threshold: float) -> list[str]:
    """What classify-cam says for each row of scores: the top class, or unknown under the threshold."""
    return [UNKNOWN if s.max() < threshold else CLASS_NAMES[int(s.argmax())] for s in scores]


def is_right(photo, label: str) -> bool:
    if not photo.classes:
        return label == UNKNOWN
    return label != UNKNOWN and CLASS_NAMES.index(label) in photo.classes


def label_of(photo) -> str | list:
    if not photo.classes:
        return UNKNOWN
    names = [CLASS_NAMES[c] for c in photo.classes]
    return names[0] if len(names) == 1 else names


# ----------------------------------------------------------------------------------------------- the learner


def replay_set(data, recipe: Recipe):
    """(uint8 (n, 28, 28), (n, 10) targets): class-balanced training images, some with flaws, some non-garments."""
    from convert.quantize import calibration_indices
    from train.outliers import outlier
    from train.realworld import realistic

    idx = calibration_indices(data.train.labels, recipe.replay, recipe.seed + 1)
    rng = np.random.default_rng([recipe.seed, 7])
    images, labels = data.train.images, data.train.labels
    x = images[idx].copy()
    y = np.eye(len(CLASS_NAMES), dtype=np.float32)[labels[idx]]
    for i in range(len(idx)):
        draw = rng.random()
        if draw < recipe.replay_outliers:
            x[i], y[i] = outlier(images, labels, rng), 1.0 / len(CLASS_NAMES)
        elif draw < recipe.replay_outliers + recipe.replay_realistic:
            x[i] = realistic(x[i], rng, int(labels[idx[i]]))
    return x, y


class Learner:
    """The base model cut in two: the frozen body (its features computed once) and the top that is trained."""

    def __init__(self, base_model, recipe: Recipe):
        import keras

        self.recipe = recipe
        model = keras.models.clone_model(base_model)
        model.set_weights(base_model.get_weights())
        self.model = model
        cut = CUTS[recipe.layers]
        names = [layer.name for layer in model.layers]
        if cut is not None and cut not in names:
            raise UsageError(f"--layers {recipe.layers}: the base model has no layer {cut!r} to cut at")
        i = names.index(cut) if cut else 0
        self.body = keras.Model(model.inputs, model.layers[i].output) if cut else None
        x = inputs = keras.Input(model.layers[i].output.shape[1:])
        for layer in model.layers[i + 1:]:
            x = layer(x)
        self.top = keras.Model(inputs, x)
        for layer in self.top.layers:  # batch norm keeps the base's statistics (a few photos cannot set them)
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        self.start = self.top.get_weights()

    def features(self, pictures: np.ndarray) -> np.ndarray:
        """(n, ...) features of uint8 (n, 28, 28) pictures, the device's scaling."""
        from device.preprocess import prepare

        x = prepare(pictures)
        return x if self.body is None else self.body.predict(x, batch_size=1024, verbose=0)

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> list:
        """Train the top from the base's weights; returns its weights (the top is left holding them)."""
        import keras

        from train.pipeline import set_crossentropy

        keras.utils.set_random_seed(self.recipe.seed)
        self.top.set_weights(self.start)
        self.top.compile(optimizer=keras.optimizers.Adam(self.recipe.learning_rate),
                         loss=set_crossentropy(self.recipe.label_smoothing))
        if self.recipe.epochs > 0 and self.recipe.learning_rate > 0:
            self.top.fit(x, y, sample_weight=weight, batch_size=self.recipe.batch_size, epochs=self.recipe.epochs,
                         shuffle=True, verbose=0)
        return self.top.get_weights()

    def replay_features(self, replay) -> tuple[np.ndarray, np.ndarray]:
        """The replay set's features, each picture and its mirror image, and their targets."""
        x, y = replay
        return self.features(np.concatenate([x, x[:, :, ::-1]])), np.concatenate([y, y])

    def scores(self, feats: np.ndarray, mirrored: np.ndarray | None) -> np.ndarray:
        s = self.top.predict(feats, batch_size=1024, verbose=0)
        if mirrored is not None:
            s = (s + self.top.predict(mirrored, batch_size=1024, verbose=0)) / 2
        return s


def training_set(photo_feats, photo_targets, replay_feats, replay_targets, photo_weight: float):
    """One set of (features, targets, sample weights): the photos carry photo_weight of the total."""
    n_p, n_r = len(photo_feats), len(replay_feats)
    if n_r == 0:
        w_p, w_r = 1.0, 0.0
    else:
        # mean weight 1 over the whole set; photos' total share photo_weight
        total = n_p + n_r
        w_p, w_r = photo_weight * total / max(n_p, 1), (1 - photo_weight) * total / n_r
    x = np.concatenate([photo_feats, replay_feats]) if n_r else photo_feats
    y = np.concatenate([photo_targets, replay_targets]) if n_r else photo_targets
    w = np.concatenate([np.full(n_p, w_p, np.float32), np.full(n_r, w_r, np.float32)])
    return x, y, w


class Site:
    """A site's photos ready to learn from: features of every shot and its mirror, computed once."""

    def __init__(self, learner: Learner, photos, pictures: np.ndarray, replay_features):
        from train.photos import targets

        self.photos = photos
        n, v = pictures.shape[:2]
        flat = pictures.reshape(n * v, 28, 28)
        feats = learner.features(np.concatenate([flat, flat[:, :, ::-1]]))
        self.feats = feats[: n * v].reshape(n, v, *feats.shape[1:])
        self.mirror_feats = feats[n * v:].reshape(n, v, *feats.shape[1:])
        self.targets = targets(photos)
        self.replay = replay_features

    def train_arrays(self, which: np.ndarray, photo_weight: float):
        """Features, targets and weights of the photos `which` (every shot, mirrored too) and the replay set."""
        f = np.concatenate([self.feats[which], self.mirror_feats[which]], axis=1)  # (m, 2v, ...)
        m, k = f.shape[:2]
        x = f.reshape(m * k, *f.shape[2:])
        y = np.repeat(self.targets[which], k, axis=0)
        return training_set(x, y, *self.replay, photo_weight)


def cross_validate(learner: Learner, site: Site, recipe: Recipe, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold scores (n, 10), fold of each photo): each photo scored by a top that never saw it."""
    n = len(site.photos)
    k = max(2, min(recipe.folds, n))
    folds = fold_of(site.photos, k, recipe.seed)
    scores = np.zeros((n, len(CLASS_NAMES)), np.float32)
    for f in range(k):
        held = folds == f
        if not held.any():
            continue
        t0 = time.time()
        learner.fit(*site.train_arrays(~held, recipe.photo_weight))
        scores[held] = learner.scores(site.feats[held, 0], site.mirror_feats[held, 0] if mirror else None)
        log(f"  fold {f + 1}/{k}: learnt from {int((~held).sum())} photos, scored {int(held.sum())} "
            f"({time.time() - t0:.1f} s)")
    return scores, folds


def base_scores(learner: Learner, site: Site, mirror: bool) -> np.ndarray:
    learner.top.set_weights(learner.start)
    return learner.scores(site.feats[:, 0], site.mirror_feats[:, 0] if mirror else None)


# ----------------------------------------------------------------------------------------------- comparing


def compare(photos, before: np.ndarray, after: np.ndarray, threshold: float, recipe: Recipe) -> dict:
    """Per folder and overall, right before and after (the device's label at the threshold); what changed."""
    lb, la = device_labels(before, threshold), device_labels(after, threshold)
    rb = np.array([is_right(p, b) for p, b in zip(photos, lb)])
    ra = np.array([is_right(p, a) for p, a in zip(photos, la)])
    folders = {}
    for kind in sorted({p.kind for p in photos}):
        idx = [i for i, p in enumerate(photos) if p.kind == kind]
        folders[kind] = {"label": label_of(photos[idx[0]]), "photos": len(idx),
                         "right_before": int(rb[idx].sum()), "right_after": int(ra[idx].sum())}
    changed = [{"photo": f"{p.kind}/{p.path.name}", "label": label_of(p), "before": b, "after": a,
                "right_before": bool(x), "right_after": bool(z)}
               for p, b, a, x, z in zip(photos, lb, la, rb, ra) if b != a]
    n = len(photos)
    needed = max(recipe.min_gain, math.ceil(recipe.min_gain_share * n))
    inside = np.array([bool(p.classes) for p in photos])
    return {
        "photos": n, "right_before": int(rb.sum()), "right_after": int(ra.sum()),
        "accuracy_before": round(float(rb.mean()), 4), "accuracy_after": round(float(ra.mean()), 4),
        "fixed": int((~rb & ra).sum()), "broken": int((rb & ~ra).sum()), "gain_needed": needed,
        "in_catalogue_top_before": round(float(np.mean([before[i].argmax() in photos[i].classes
                                                        for i in np.flatnonzero(inside)])), 4) if inside.any() else None,
        "in_catalogue_top_after": round(float(np.mean([after[i].argmax() in photos[i].classes
                                                       for i in np.flatnonzero(inside)])), 4) if inside.any() else None,
        "threshold": threshold, "folders": folders, "changed": changed,
    }


# ----------------------------------------------------------------------------------------------- the bundle


def write_bundle(stage: Path, model, base: Base, data, recipe: Recipe, test_limit: int, calibration_size: int) -> dict:
    """fashion_float.keras, fashion_int8.tflite, labels.txt into `stage`; converted, gated; returns the gate report."""
    from convert import evaluate
    from convert.cli import convert
    from train.models import save

    stage.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(base.labels_path, stage / "labels.txt")
    save(model, stage / "fashion_float.keras")
    log(f"converting to int8{' with mirror averaging' if base.mirror else ''} ...")
    calibration = convert(stage / "fashion_float.keras", stage / "fashion_int8.tflite", data, calibration_size, 0,
                          base.mirror)
    test_x, test_y = data.test.images, data.test.labels
    if test_limit:
        test_x, test_y = test_x[:test_limit], test_y[:test_limit]
    log(f"gating: float and int8 on {len(test_y)} Fashion-MNIST test images ...")
    report = evaluate.compare(stage / "fashion_float.keras", stage / "fashion_int8.tflite", test_x, test_y,
                              evaluate.Tolerances(), base.mirror)
    report["calibration"] = calibration
    return report


def card_for(stage: Path, base: Base, gate: dict, data, recipe: Recipe, manifest: list, result: dict,
             command: str) -> dict:
    from convert.cli import reference_outputs
    from convert.quantize import converter_version
    from device import card as card_mod
    from train import card as card_writer

    keep = ("images", "agreement", "drop_points", "largest_class_drop", "tolerances", "passed")
    conversion = {
        "command": command, "source_model": "fashion_float.keras",
        "source_sha256": card_mod.sha256(stage / "fashion_float.keras"),
        "converter": f"tensorflow {converter_version()} TFLiteConverter, full-integer int8, per-channel weights",
        "calibration": gate["calibration"], "mirror": gate["mirror"], "data_sha256": data.sha256,
        "metrics": {**{k: gate[k] for k in keep},
                    "float": {k: gate["float"][k] for k in ("accuracy", "per_class", "bytes")},
                    "int8": {k: gate["int8"][k] for k in ("accuracy", "per_class", "bytes")}},
    }
    base_unknown = base.card.get("unknown", {})
    unknown = {"threshold": base.threshold,
               "method": "the base model's threshold, kept (fashion-adapt): on the site's photos, cross-validated, "
                         f"{result['site']['accuracy_before']:.1%} right before and {result['site']['accuracy_after']:.1%} "
                         "after at this threshold",
               "base_method": base_unknown.get("method")}
    return {
        "files": card_writer.files(stage),
        "adaptation": {
            "command": command,
            "base": {"folder": str(base.folder), "int8_sha256": base.int8_sha256, "id": base.id,
                     "float_sha256": card_mod.sha256(base.float_path)},
            "recipe": asdict(recipe),
            "photos": manifest,
            "site": {k: v for k, v in result["site"].items() if k not in ("changed", "folders")},
            "accepted": result["accepted"], "reasons": result["reasons"],
        },
        "conversion": conversion,
        "unknown": unknown,
        "reference_outputs": reference_outputs(stage / "fashion_int8.tflite"),
    }


def format_report(result: dict) -> str:
    s = result["site"]
    lines = [f"fashion-adapt: {'ACCEPTED' if result['accepted'] else 'REJECTED'} "
             f"(base {result['base_id']} -> {result.get('bundle_id') or '-'})",
             f"site photos: {s['photos']} (cross-validated, {result['folds']} folds; the device's label at threshold "
             f"{s['threshold']:.2f})",
             f"  right before {s['right_before']} ({100 * s['accuracy_before']:.1f}%), after {s['right_after']} "
             f"({100 * s['accuracy_after']:.1f}%): {s['fixed']} fixed, {s['broken']} broken; a net gain of "
             f"{s['gain_needed']} needed",
             f"  {'folder':<16}{'label':<28}{'photos':>7}{'before':>8}{'after':>8}"]
    for kind, f in s["folders"].items():
        label = f["label"] if isinstance(f["label"], str) else "/".join(f["label"])
        lines.append(f"  {kind:<16}{label[:27]:<28}{f['photos']:>7}{f['right_before']:>8}{f['right_after']:>8}")
    fm = result.get("fashion_mnist")
    if fm:
        lines.append(f"Fashion-MNIST int8 test accuracy: base {fm['base_int8']}, adapted {100 * fm['int8']:.2f}% "
                     f"(floor {100 * fm['floor']:.1f}%, {fm['images']} images); gate {'passed' if fm['gate_passed'] else 'FAILED'}")
    if s["changed"]:
        lines.append(f"photos whose label changed ({len(s['changed'])}):")
        for c in s["changed"]:
            mark = "fixed" if c["right_after"] and not c["right_before"] else \
                "broken" if c["right_before"] and not c["right_after"] else "still wrong"
            lines.append(f"  {c['photo']}: {c['before']} -> {c['after']} ({mark})")
    if result["reasons"]:
        lines.append("not shipped because:")
        lines += [f"  - {r}" for r in result["reasons"]]
    lines.append(f"time: {result['seconds']:.0f} s")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- the command


def parse_args(argv=None) -> argparse.Namespace:
    from device.oneline import OneLineParser

    d = Recipe()
    p = OneLineParser(prog="fashion-adapt", description=__doc__.split("\n\n")[0] + ". Exit 0: better, the bundle "
                      "is in --out; 1: not better, the bundle is in --out/rejected/; 2: a usage error.")
    p.add_argument("photos", nargs="+", metavar="PHOTOS", help="folders of labelled photos, one sub-folder per label "
                   "(classify-cam --save-items' layout: T-shirt-top, Trouser, ..., unknown)")
    p.add_argument("--out", required=True, type=Path, help="the bundle's folder (must be empty or new)")
    p.add_argument("--photo-map", metavar="MAP.json", help="folder name -> class name(s) or unknown "
                   "(train/photo-maps/sites.json); it may name folders the site does not have")
    p.add_argument("--base", type=Path, help="the bundle folder to start from (default: the shipped models/)")
    p.add_argument("--layers", choices=sorted(CUTS), default=d.layers,
                   help=f"what is trained (default {d.layers}: the scores layer on the frozen body)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"(default {d.epochs})")
    p.add_argument("--learning-rate", type=float, default=d.learning_rate, help=f"(default {d.learning_rate})")
    p.add_argument("--photo-weight", type=float, default=d.photo_weight,
                   help=f"the photos' share of the loss against the Fashion-MNIST replay (default {d.photo_weight})")
    p.add_argument("--replay", type=int, default=d.replay, help=f"Fashion-MNIST images replayed (default {d.replay})")
    p.add_argument("--folds", type=int, default=d.folds, help=f"cross-validation folds (default {d.folds})")
    p.add_argument("--photo-cache", default="build/photo-cache", help="segmented photos' cache (default build/photo-cache)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    # for the tests: a short Fashion-MNIST check and calibration
    p.add_argument("--test-limit", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--calibration-size", type=int, default=1000, help=argparse.SUPPRESS)
    p.add_argument("--floor", type=float, default=FLOOR, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def check_args(args) -> Recipe:
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise UsageError(f"--out {args.out}: exists and is not an empty folder (a bundle is never overwritten)")
    if args.epochs < 0 or args.learning_rate < 0 or args.replay < 0 or args.folds < 2:
        raise UsageError("--epochs, --learning-rate and --replay must be >= 0, --folds >= 2")
    if not 0 < args.photo_weight <= 1:
        raise UsageError(f"--photo-weight must be in (0, 1], not {args.photo_weight}")
    return Recipe(layers=args.layers, epochs=args.epochs, learning_rate=args.learning_rate,
                  photo_weight=args.photo_weight, replay=args.replay, folds=args.folds, seed=args.seed)


def main(argv=None) -> int:
    args = parse_args(argv)
    command = ("fashion-adapt " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
    try:
        recipe = check_args(args)
        found = scan_site(args.photos, args.photo_map)
        base = load_base(args.base)
        return run(args, recipe, found, base, command)
    except UsageError as exc:
        print(f"fashion-adapt: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fashion-adapt: interrupted", file=sys.stderr)
        return 130


def run(args, recipe: Recipe, found, base: Base, command: str) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.time()
    from train import data as data_mod
    from train import photos as photos_mod

    photos = [p for p, _ in found]
    log(f"fashion-adapt: {len(photos)} photos in {len({(r, p.kind) for p, r in found})} folders; base {base.folder} "
        f"({base.id}); segmenting (cached in {args.photo_cache})")
    pictures, readable = photos_mod.prepared(photos, recipe.variants, args.photo_cache, log=lambda m, **_: log(m))
    found = [f for f, ok in zip(found, readable) if ok]
    photos, pictures = [p for p, _ in found], pictures[readable]
    if len(photos) < 2:
        raise UsageError(f"{len(photos)} usable photo{'s' if len(photos) != 1 else ''}: at least two are needed")
    try:
        data = data_mod.load("fashion")
    except data_mod.DataNotFound as exc:
        raise UsageError(str(exc)) from None

    import keras
    import tensorflow as tf

    from convert.quantize import load_keras

    tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("float32")
    learner = Learner(load_keras(base.float_path), recipe)
    log(f"features: {len(photos)} photos x {recipe.variants} shots and {recipe.replay} Fashion-MNIST images, "
        f"each mirrored, through the frozen body ({recipe.layers} trained) ...")
    site = Site(learner, photos, pictures, learner.replay_features(replay_set(data, recipe)))
    before = base_scores(learner, site, base.mirror)
    log(f"cross-validating ({min(recipe.folds, len(photos))} folds) ...")
    after, _ = cross_validate(learner, site, recipe, base.mirror)
    result = {"base_id": base.id, "folds": max(2, min(recipe.folds, len(photos))),
              "site": compare(photos, before, after, base.threshold, recipe)}
    s = result["site"]
    log(f"site photos, cross-validated: right before {s['right_before']}/{s['photos']}, after {s['right_after']} "
        f"({s['fixed']} fixed, {s['broken']} broken)")

    log("learning from every photo ...")
    learner.fit(*site.train_arrays(np.ones(len(photos), bool), recipe.photo_weight))
    stage = args.out / ".partial"
    gate = write_bundle(stage, learner.model, base, data, recipe, args.test_limit, args.calibration_size)
    base_int8 = base.card.get("conversion", {}).get("metrics", {}).get("int8", {}).get("accuracy")
    result["fashion_mnist"] = {"int8": gate["int8"]["accuracy"], "float": gate["float"]["accuracy"],
                               "images": gate["images"], "gate_passed": gate["passed"],
                               "gate_failures": gate["failures"], "floor": args.floor,
                               "base_int8": f"{100 * base_int8:.2f}%" if base_int8 is not None else "?"}
    reasons = []
    gain = s["right_after"] - s["right_before"]
    if gain < s["gain_needed"]:
        reasons.append(f"the site's photos gain {gain:+d} right (cross-validated), under the {s['gain_needed']} needed")
    if gate["int8"]["accuracy"] < args.floor:
        reasons.append(f"Fashion-MNIST int8 {100 * gate['int8']['accuracy']:.2f}% is under the {100 * args.floor:.1f}% floor")
    if not gate["passed"]:
        reasons += [f"int8 gate: {f}" for f in gate["failures"]]
    result["accepted"], result["reasons"] = not reasons, reasons

    manifest = [{"path": str(p.path.relative_to(root)), "folder": str(root), "sha256": photos_mod.file_sha256(p.path),
                 "label": label_of(p)} for p, root in found]
    from device import card as card_mod
    from train.card import dumps

    result["bundle_id"] = card_mod.sha256(stage / "fashion_int8.tflite")[:12]
    result["seconds"] = round(time.time() - t0, 1)
    card = card_for(stage, base, gate, data, recipe, manifest, result, command)
    (stage / "model_card.json").write_text(dumps(card) + "\n")
    target = args.out if result["accepted"] else args.out / "rejected"
    target.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE:
        os.replace(stage / name, target / name)
    shutil.rmtree(stage, ignore_errors=True)
    result["bundle"] = str(target)
    result["recipe"] = asdict(recipe)
    result["command"] = command
    text = format_report(result)
    (args.out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "report.txt").write_text(text + "\n")
    print(text)
    log(f"fashion-adapt: wrote {target} ({'better than the base' if result['accepted'] else 'not better: rejected'}) "
        f"and {args.out / 'report.txt'} in {result['seconds']:.0f} s")
    return 0 if result["accepted"] else 1


if __name__ == "__main__":
    sys.exit(main())
