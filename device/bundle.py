"""Model bundles: the four files of models/ (what fashion-adapt writes), read and checked.

read() takes a bundle's files from where the user put it and checks them against its card before
anything is copied (a file that cannot be read, or is unlike its card, is the bundle's fault and named);
verify() makes every check a bundle must pass on this device, on the copy in the store (device/store.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from device import card, classify, spec
from device.model import read_labels
from device.runtime import ModelError, RuntimeMissing, make_interpreter

FILES = ("fashion_float.keras", "fashion_int8.tflite", "labels.txt", "model_card.json")
INT8 = "fashion_int8.tflite"
FINGERPRINT = 8  # the reference outputs the device checks (classify.fingerprint's images)


class BundleError(ValueError):
    """A bundle that cannot be used, or a store that cannot be read or written: one line, exit 2."""


def shipped() -> Path:
    import models

    return models.MODELS_DIR


def read(source: Path) -> dict:
    """{file name: bytes} of the bundle in `source`, each file checked against the card's size and sha256 before
    anything is copied; BundleError naming the bundle's file at fault."""
    source = Path(source)
    try:
        present = set(os.listdir(source))
    except OSError as exc:
        why = "not a folder" if isinstance(exc, NotADirectoryError) else exc.strerror or str(exc)
        raise BundleError(f"{source} cannot be read ({why}): a bundle is a folder with {', '.join(FILES)}") from None
    missing = [name for name in FILES if name not in present]
    if missing:
        raise BundleError(f"{source}: {', '.join(missing)} missing (a bundle has {', '.join(FILES)})")
    data = {}
    for name in FILES:
        try:
            data[name] = (source / name).read_bytes()
        except OSError as exc:
            raise BundleError(f"{source / name} cannot be read ({exc.strerror or exc})") from None
    try:
        entries = json.loads(data["model_card.json"].decode("utf-8"))["files"]
        if not isinstance(entries, dict):
            raise TypeError("'files' is not a table")
    except (ValueError, UnicodeDecodeError, RecursionError, KeyError, TypeError) as exc:
        raise BundleError(f"{source / 'model_card.json'} is damaged ({type(exc).__name__}: {exc})") from None
    for name in FILES[:3]:
        entry = entries.get(name)
        listed = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(listed, str):
            raise BundleError(f"{source}: model_card.json lists no sha256 for {name}: it cannot be checked")
        size = entry.get("bytes")
        if isinstance(size, int) and not isinstance(size, bool) and size != len(data[name]):
            raise BundleError(f"{source / name} is {len(data[name])} bytes, model_card.json says {size} (cut short "
                              "or half-copied?)")
        if hashlib.sha256(data[name]).hexdigest() != listed:
            raise BundleError(f"{source / name} does not match the sha256 in model_card.json (damaged, half-copied, "
                              "or from another bundle)")
    return data


def verify(folder: Path, runtime=None) -> str:
    """Every check a bundle must pass on this device, or BundleError naming the first that fails. Returns its id.

    The four files are there; the card lists each file's sha256 and they match; the labels are the ten
    classes in order; the card has its unknown threshold and the whole fingerprint; the int8 model loads,
    takes one 28x28x1 image quantized as pixel/255 and gives ten int8 scores; and this CPU's reference
    kernels give the integers the build machine recorded (the arithmetic fingerprint)."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise BundleError(f"{', '.join(missing)} missing: a bundle has the four files {', '.join(FILES)}")
    try:
        entries = card.read(folder / "model_card.json").get("files", {})
        for name in FILES[:3]:
            entry = entries.get(name)
            listed = entry.get("sha256") if isinstance(entry, dict) else None
            if not isinstance(listed, str):
                raise BundleError(f"model_card.json lists no sha256 for {name}: it cannot be checked")
            if card.sha256(folder / name) != listed:
                raise BundleError(f"{name} does not match the sha256 in model_card.json (damaged, half-copied, or "
                                  "from another bundle)")
        labels = read_labels(folder / "labels.txt")
        if tuple(labels) != spec.CLASS_NAMES:
            raise BundleError(f"labels.txt is not the ten classes in order ({', '.join(spec.CLASS_NAMES)}): "
                              f"it has {len(labels)} ({', '.join(labels[:3])}{', ...' if len(labels) > 3 else ''})")
        unknown = card.read(folder / "model_card.json").get("unknown")
        if not isinstance(unknown, dict) or "threshold" not in unknown:  # else runs would use 0.5, uncalibrated
            raise BundleError("model_card.json has no unknown threshold (its 'unknown' section's 'threshold')")
        card.unknown_threshold(folder / INT8)  # a number from 0 to 1
        expected = card.reference_outputs(folder / INT8)
        if not expected:
            raise BundleError("model_card.json records no reference outputs: the arithmetic cannot be checked")
        if len(expected) != FINGERPRINT:
            raise BundleError(f"model_card.json records {len(expected)} reference outputs, not the {FINGERPRINT} the "
                              "device checks (cut short?)")
        interpreter = make_interpreter(folder / INT8, threads=1, runtime=runtime, kernels="reference")
    except (card.CardError, ModelError, RuntimeMissing) as exc:
        raise BundleError(str(exc).replace(f"{folder}{os.sep}", "")) from None
    input_contract(interpreter)
    got = classify.fingerprint(interpreter, count=len(expected))
    if got != expected:
        wrong = sum(g != e for g, e in zip(got, expected))
        raise BundleError(f"the arithmetic fingerprint differs on this CPU ({wrong} of {len(expected)} images give "
                          "other integers than model_card.json records): another model, or a runtime that computes "
                          "differently")
    return card.sha256(folder / INT8)[:12]


def input_contract(interpreter) -> None:
    """One 1x28x28x1 int8 image whose real value is pixel/255, ten int8 scores: the model the device feeds."""
    inp, out = classify.input_details(interpreter), classify.output_details(interpreter)
    shape = tuple(int(s) for s in inp["shape"])
    if shape != (1, *spec.INPUT_SHAPE):
        raise BundleError(f"the int8 model's input is {'x'.join(map(str, shape))}, not 1x28x28x1 (one 28x28 "
                          "single-channel image)")
    for what, detail in (("input", inp), ("output", out)):
        scale, _ = detail["quantization"]
        if detail["dtype"].__name__ != "int8" or not scale:
            raise BundleError(f"the model's {what} is {detail['dtype'].__name__}"
                              f"{'' if scale else ' without a quantization scale'}, not quantized int8")
    scale, zero = inp["quantization"]
    low, high = (-128 - zero) * scale, (127 - zero) * scale
    if abs(low) > 1 / 255 or abs(high - 1) > 1 / 255:
        raise BundleError(f"the int8 model's input holds {low:.3f} to {high:.3f}, not pixel/255 (0 to 1)")
    if tuple(int(s) for s in out["shape"]) != (1, spec.NUM_CLASSES):
        raise BundleError(f"the int8 model gives {[int(s) for s in out['shape']]} scores, not one per class (1, 10)")


def same_files(a: Path, b: Path) -> bool:
    """The same four files; a bundle that cannot be read (damaged, gone) is not the same as any."""
    try:
        return all(card.sha256(a / name) == card.sha256(b / name) for name in FILES)
    except OSError:
        return False


def damage(folder: Path) -> str:
    """Why an installed bundle cannot run ('is gone', 'is damaged (...)'), or '' when its files are there and
    match its card (cheap: the hashes, not the model's arithmetic)."""
    if not os.path.isdir(folder):  # never raises: a folder that cannot be entered is gone too
        return "is gone"
    try:
        entries = card.read(folder / "model_card.json").get("files", {})
        for name in FILES[:3]:
            entry = entries.get(name)
            if not isinstance(entry, dict) or card.sha256(folder / name) != entry.get("sha256"):
                return f"is damaged ({name} does not match its card)"
    except (OSError, card.CardError) as exc:
        return f"is damaged ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})"
    return ""


def threshold(folder: Path) -> float | None:
    """The unknown threshold in the bundle's card, or None when it cannot be read."""
    try:
        return card.unknown_threshold(Path(folder) / INT8)
    except (OSError, card.CardError):
        return None
