"""Labelled real photos for training: one sub-folder per kind, a mapping from folder to class.

The layout is the one every tool in this field reads (Keras `image_dataset_from_directory`,
Ultralytics classify, Teachable Machine): `DIR/<kind>/<photo>`. A folder maps to
- one class (`"pants": "Trouser"`),
- several classes, when the folder does not say which (`"shoes": ["Sandal", "Sneaker", "Ankle boot"]`):
  trained with a set-valued target, so the network puts its weight on whichever of them it finds best,
- or `"unknown"`, not in the catalogue (`"hat": "unknown"`): trained towards equal scores (outliers).
A folder named like a label needs no entry: `T-shirt-top`, `trouser`, `ankle-boot`, `unknown` (the
folder names `classify-cam --save-items` writes). A mapping file (JSON) names the others.

Each photo goes through the device's own still-photo path (`prepare`, GrabCut) once per variant and
is cached by the file's content, so a photo is segmented once across runs. Variant 0 is the photo
as it is; the others are the photo slightly cropped, turned and lit differently before segmentation
(real photos' own augmentation, on top of the flips and shifts every training picture gets).

A share of the photos (chosen by a hash of the file's path inside its folder, so adding photos never
moves one from one side to the other) is held out: never trained on, it measures the model on real
photos and calibrates "unknown" (convert/unknown.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.spec import CLASS_NAMES, UNKNOWN, folder_name

VARIANT_VERSION = 1  # bump when variant() changes: the cache key includes it


class PhotoError(ValueError):
    """A photo folder or mapping that cannot be used; the message says which and why."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


BY_NAME = {_key(name): name for name in CLASS_NAMES} | {_key(UNKNOWN): UNKNOWN}


@dataclass
class Photo:
    path: Path
    kind: str  # the sub-folder's name
    classes: tuple  # class indices counted right; () = not in the catalogue
    held_out: bool


def read_mapping(path: str | Path | None) -> dict:
    """The mapping file: {folder: class name | [class names] | "unknown"}; {} without one."""
    if not path:
        return {}
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PhotoError(f"--photo-map {path}: {exc}") from None
    if not isinstance(mapping, dict):
        raise PhotoError(f"--photo-map {path}: expected a JSON object of folder -> class name(s)")
    return mapping


def resolve(kind: str, mapping: dict, where: str) -> tuple:
    """A folder's class indices (() for not in the catalogue); PhotoError for a name that is no class."""
    target = mapping.get(kind, BY_NAME.get(_key(kind)))
    if target is None:
        raise PhotoError(f"{where}/{kind}: folder is not a class name and not in the mapping; name it after a "
                         f"class ({', '.join(folder_name(c) for c in CLASS_NAMES)}, unknown) or map it")
    names = [target] if isinstance(target, str) else target
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PhotoError(f"mapping for {kind!r}: expected a class name or a list of class names, got {target!r}")
    if names == [UNKNOWN]:
        return ()
    indices = []
    for name in names:
        if name not in CLASS_NAMES:
            raise PhotoError(f"mapping for {kind!r}: {name!r} is not a class "
                             f"(classes: {', '.join(CLASS_NAMES)}, or unknown)")
        indices.append(CLASS_NAMES.index(name))
    return tuple(sorted(set(indices)))


def held_out(relative: str, share: float) -> bool:
    digest = hashlib.sha256(relative.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def scan(dirs, mapping_path=None, holdout: float = 0.1, lenient: bool = False) -> list[Photo]:
    """Every photo under the folders, with its classes; PhotoError before any training starts.

    lenient (fashion-adapt, one site's photos): the mapping may name folders that are in none of the folders
    (one map for every site) and a folder may be empty (its last photo moved to another label); otherwise
    both are mistakes (a misspelt folder, a wrong path)."""
    from device.sources import images_under

    mapping = read_mapping(mapping_path)
    photos, used = [], set()
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise PhotoError(f"--photos {d}: no such folder")
        kinds = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not kinds:
            raise PhotoError(f"--photos {d}: no sub-folders (expected one folder per kind of garment)")
        for folder in kinds:
            classes = resolve(folder.name, mapping, str(root))
            used.add(folder.name)
            files = images_under(folder)
            if not files and not lenient:
                raise PhotoError(f"{folder}: no images in this folder")
            photos += [Photo(f, folder.name, classes, held_out(f"{folder.name}/{f.relative_to(folder)}", holdout))
                       for f in files]
    unused = sorted(set(mapping) - used)
    if unused and not lenient:
        raise PhotoError(f"--photo-map names folders that are in none of the --photos folders: {', '.join(unused)}")
    return photos


def manifest(photos: list[Photo]) -> str:
    """sha256 over every photo's folder, file name and content: the photo set the card records."""
    h = hashlib.sha256()
    for p in sorted(photos, key=lambda p: (p.kind, p.path.name, str(p.path))):
        h.update(f"{p.kind}/{p.path.name}\0{file_sha256(p.path)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo a little cropped, turned, and lit differently: what another shot of it might be."""
    import cv2

    h, w = image.shape[:2]
    top, bottom, left, right = (int(rng.uniform(0, 0.08) * s) for s in (h, h, w, w))
    image = image[top: h - bottom, left: w - right]
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-8, 8)), 1.0)
    image = cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
    gain, offset, gamma = rng.uniform(0.8, 1.2), rng.uniform(-20, 20), rng.uniform(0.8, 1.25)
    lit = 255 * ((np.clip(image * gain + offset, 0, 255) / 255) ** gamma)
    return lit.astype(np.uint8)


def cache_tag() -> str:
    """What the cached pictures depend on besides the photo: the device's preprocessing and variant()."""
    import device.preprocess

    return hashlib.sha256(Path(device.preprocess.__file__).read_bytes()
                          + f"variants v{VARIANT_VERSION}".encode()).hexdigest()[:16]


def segment(path: Path, digest: str, variants: int):
    """(variants, 28, 28) uint8: one photo through the device's still-photo prepare, as it is and varied;
    or the reason it cannot be read (str). Seeded by the photo's content, so any process gives the same."""
    from device.preprocess import frame_photo
    from device.sources import read_image

    try:
        image = read_image(path)
        rng = np.random.default_rng(int.from_bytes(bytes.fromhex(digest[:8]), "big"))
        return np.stack([frame_photo(image if v == 0 else variant(image, rng), segment="grabcut")
                         for v in range(variants)])
    except (ValueError, OSError) as exc:
        return str(exc)


def workers() -> int:
    """Processes for segmenting: every core this process may use (GrabCut runs on one)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def prepared(photos: list[Photo], variants: int, cache_dir: str | Path, log=print) -> tuple[np.ndarray, np.ndarray]:
    """(pictures (N, variants, 28, 28) uint8, readable (N,) bool): each photo through the device's
    still-photo prepare, cached. An unreadable photo is reported, and left out by the caller.

    Photos not in the cache are segmented in `workers()` processes (spawned: the caller may have
    TensorFlow's threads running, which a fork would copy half-made); the pictures do not depend on
    how many.
    """
    cache = Path(cache_dir) / cache_tag()
    cache.mkdir(parents=True, exist_ok=True)
    out = np.zeros((len(photos), variants, 28, 28), np.uint8)
    readable = np.ones(len(photos), bool)
    todo = []  # (index, digest, cache file) of the photos to segment
    for i, p in enumerate(photos):
        digest = file_sha256(p.path)
        cached = cache / f"{digest}-{variants}.npy"
        if cached.is_file():
            out[i] = np.load(cached)
        else:
            todo.append((i, digest, cached))
    if not todo:
        return out, readable
    paths, digests = [photos[i].path for i, _, _ in todo], [digest for _, digest, _ in todo]
    n = min(workers(), len(todo))
    log(f"  segmenting {len(todo)} photos in {n} process{'es' if n > 1 else ''}", flush=True)
    if n > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(segment, paths, digests, [variants] * len(todo), chunksize=8)
    else:
        pool, results = None, map(segment, paths, digests, [variants] * len(todo))
    skipped = 0
    try:
        for made, ((i, _, cached), result) in enumerate(zip(todo, results), 1):
            if isinstance(result, str):
                log(f"  skipped {photos[i].path}: {result}")
                readable[i] = False
                skipped += 1
                continue
            out[i] = result
            tmp = cached.with_suffix(".tmp.npy")
            np.save(tmp, result)
            tmp.replace(cached)
            if made % 250 == 0:
                log(f"  segmented {made}/{len(todo)} photos", flush=True)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    log(f"  segmented {len(todo) - skipped} photos ({skipped} unreadable), {len(photos) - len(todo)} from the cache "
        f"{cache}", flush=True)
    return out, readable


def targets(photos: list[Photo]) -> np.ndarray:
    """(N, 10) float32: one-hot for one class, several ones for a set of classes, 0.1 each for unknown."""
    y = np.zeros((len(photos), len(CLASS_NAMES)), np.float32)
    for i, p in enumerate(photos):
        if p.classes:
            y[i, list(p.classes)] = 1.0
        else:
            y[i] = 1.0 / len(CLASS_NAMES)
    return y


def sampling_weights(photos: list[Photo], balance: float) -> np.ndarray:
    """Per-photo sampling probability: a folder with n photos is drawn in proportion to n ** (1 - balance).

    balance 0: every photo equally often (big folders dominate); 1: every folder equally often.
    """
    counts = {}
    for p in photos:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    w = np.array([counts[p.kind] ** -balance for p in photos], np.float64)
    return w / w.sum()


def score(photos: list[Photo], scores: np.ndarray, threshold: float = 0.0) -> dict:
    """Per folder and overall: strict accuracy (top class among the folder's), and 'unknown' rates."""
    top, conf = scores.argmax(1), scores.max(1)
    rows = {}
    for kind in sorted({p.kind for p in photos}):
        idx = [i for i, p in enumerate(photos) if p.kind == kind]
        classes = photos[idx[0]].classes
        unknown = conf[idx] < threshold
        right = np.isin(top[idx], classes) & ~unknown if classes else unknown
        rows[kind] = {"photos": len(idx), "right": round(float(np.mean(right)), 4),
                      "unknown": round(float(np.mean(unknown)), 4)}
    inside = [i for i, p in enumerate(photos) if p.classes]
    outside = [i for i, p in enumerate(photos) if not p.classes]
    strict = [top[i] in photos[i].classes and conf[i] >= threshold for i in inside]
    mean = lambda xs: round(float(np.mean(xs)), 4) if len(xs) else None  # noqa: E731
    return {"strict": mean(strict), "unknown_in_catalogue": mean(conf[inside] < threshold),
            "unknown_out_of_catalogue": mean(conf[outside] < threshold), "folders": rows}


class PhotoSet:
    """The real photos of a run: pictures and targets to train on, and the held-out ones to measure."""

    def __init__(self, cfg, photos: list, pictures: np.ndarray, readable: np.ndarray):
        self.photos = [p for p, ok in zip(photos, readable) if ok]
        pictures = pictures[readable]
        train = np.array([not p.held_out for p in self.photos])
        self.train_photos = [p for p in self.photos if not p.held_out]
        self.held = [p for p in self.photos if p.held_out]
        self.held_pictures = pictures[~train][:, 0]  # variant 0: the photo as it is
        self.training = (pictures[train], targets(self.train_photos), sampling_weights(self.train_photos,
                                                                                       cfg.photo_balance))
        self.manifest = manifest(self.photos)
        self.cfg = cfg

    def report(self, model, run_dir: Path) -> dict:
        """Held-out photos' scores per folder (float model, no threshold), written to photos.json."""
        from device.preprocess import prepare
        from train import reports

        scores = model.predict(prepare(self.held_pictures), batch_size=512, verbose=0) if self.held else np.zeros((0, 10))
        result = {"folders": [str(d) for d in self.cfg.photos], "map": self.cfg.photo_map, "manifest": self.manifest,
                  "photos": len(self.photos), "trained_on": len(self.train_photos), "held_out": len(self.held),
                  "held_out_scores": score(self.held, scores) if self.held else None,
                  "held_out_files": sorted(f"{p.kind}/{p.path.name}" for p in self.held)}
        reports.write_json(result, run_dir / "photos.json")
        if self.held:
            s = result["held_out_scores"]
            inside = {p.kind for p in self.held if p.classes}
            print(f"held-out real photos ({len(self.held)}): strict {100 * s['strict']:.1f}% (top class, no threshold); "
                  + "  ".join(f"{k} {100 * v['right']:.0f}%" for k, v in s["folders"].items() if k in inside),
                  flush=True)
        return {k: v for k, v in result.items() if k != "held_out_files"}


def load(cfg) -> PhotoSet | None:
    """cfg.photos (a TrainConfig's) scanned, segmented and split; None without photos."""
    if not cfg.photos:
        return None
    photos = scan(cfg.photos, cfg.photo_map, cfg.photo_holdout)
    print(f"photos: {len(photos)} in {len({(p.path.parent.parent, p.kind) for p in photos})} folders, "
          f"{sum(p.held_out for p in photos)} held out; segmenting (cached in {cfg.photo_cache})", flush=True)
    return PhotoSet(cfg, photos, *prepared(photos, cfg.photo_variants, cfg.photo_cache))
