"""Model bundles on the device: `--install-model DIR` checks one and makes it the model in force, `--rollback`
brings the one before back.

A bundle is the four files of models/ (what fashion-adapt writes). Installed bundles live in the store,
$CLASSIFY_CAM_MODELS, else ~/.local/state/classify-cam/models/ (the home of the user the service runs as):

    installed.json                  {"current": "bundle-<id>-<n>", "previous": null}   null: the shipped model
    bundle-9c02023c7ca5-1733389000/ the four files, checked after they were copied

An install copies into a hidden staging folder beside them, syncs it to disk, checks the copy (every
check of verify()), renames it into place, then replaces installed.json in one rename: a power cut at
any moment leaves either the old model in force or the new one, never half of one. Only the current and
the previous bundles are kept. A bundle's id is the first 12 hex of its int8 file's sha256, as in events.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from device import card, classify, spec
from device.model import read_labels
from device.runtime import ModelError, RuntimeMissing, make_interpreter

FILES = ("fashion_float.keras", "fashion_int8.tflite", "labels.txt", "model_card.json")
INT8, STATE, ENV = "fashion_int8.tflite", "installed.json", "CLASSIFY_CAM_MODELS"
NAME = re.compile(r"bundle-[0-9a-f]{12}-\d+")  # the store's own folders; nothing else there is touched


class BundleError(ValueError):
    """A bundle that cannot be used, or a store that cannot be read or written: one line, exit 2."""


def store() -> Path:
    """Where installed bundles live: $CLASSIFY_CAM_MODELS, else ~/.local/state/classify-cam/models/."""
    given = os.environ.get(ENV, "")
    return Path(given) if given.strip() else Path.home() / ".local" / "state" / "classify-cam" / "models"


def shipped() -> Path:
    import models

    return models.MODELS_DIR


def read_state(folder: Path) -> dict:
    """{"current": name or None, "previous": name or None} (None: the shipped model); {} when nothing was
    ever installed; BundleError for a state file that is damaged or names folders that are not the store's."""
    path = folder / STATE
    try:
        if not os.path.lexists(path):
            return {}
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else f"damaged: {type(exc).__name__}"
        raise BundleError(f"the model store's {path} cannot be read ({why}): install a bundle again with "
                          "classify-cam --install-model DIR") from None
    if not isinstance(state, dict) or any(not (v is None or isinstance(v, str) and NAME.fullmatch(v))
                                          for v in (state.get("current"), state.get("previous"))):
        raise BundleError(f"the model store's {path} is damaged (not the store's own names): install a bundle "
                          "again with classify-cam --install-model DIR")
    return {"current": state.get("current"), "previous": state.get("previous")}


def folder_of(name: str | None, folder: Path) -> Path:
    return shipped() if name is None else folder / name


def default_model() -> tuple[Path, str]:
    """The model a run without --model uses: (int8 file, "installed") or (the shipped file, "shipped")."""
    folder = store()
    name = read_state(folder).get("current")
    if name is None:
        return shipped() / INT8, "shipped"
    if not os.path.isdir(folder / name):  # os.path's never raises (a folder it may not enter is "gone" too)
        raise BundleError(f"the installed model {folder / name} is gone: classify-cam --rollback brings back the "
                          "previous one, or install one with --install-model DIR")
    return folder / name / INT8, "installed"


# -- checking a bundle -----------------------------------------------------------------------------------
def verify(folder: Path, runtime=None) -> str:
    """Every check a bundle must pass on this device, or BundleError naming the first that fails. Returns its id.

    The four files are there; the card lists each file's sha256 and they match; the labels are the ten
    classes in order; the card has its unknown threshold and the fingerprint; the int8 model loads, takes one
    28x28x1 image quantized as pixel/255 and gives ten int8 scores; and this CPU's reference kernels give the
    integers the build machine recorded (the arithmetic fingerprint)."""
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
        if not isinstance(card.read(folder / "model_card.json").get("unknown"), dict):
            raise BundleError("model_card.json has no unknown threshold (its 'unknown' section)")
        card.unknown_threshold(folder / INT8)  # present and from 0 to 1
        expected = card.reference_outputs(folder / INT8)
        if not expected:
            raise BundleError("model_card.json records no reference outputs: the arithmetic cannot be checked")
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
    return all(card.sha256(a / name) == card.sha256(b / name) for name in FILES)


# -- the store ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def locked(folder: Path):
    """One install or rollback at a time."""
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BundleError(f"the model store {folder} cannot be written ({exc.strerror or exc}); set "
                          f"${ENV} to another folder") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_state(folder: Path, current: str | None, previous: str | None) -> None:
    """installed.json replaced in one rename, after its bytes are on disk."""
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"current": current, "previous": previous, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / STATE)
    sync(folder)


def tidy(folder: Path, keep: set) -> None:
    """Bundles neither current nor previous, and staging folders a power cut left, go (only the store's own)."""
    for path in folder.iterdir():
        if path.is_dir() and (NAME.fullmatch(path.name) and path.name not in keep or path.name.startswith(".staging-")):
            shutil.rmtree(path, ignore_errors=True)


def describe(name: str | None, folder: Path) -> str:
    path = folder_of(name, folder)
    try:
        ident = card.sha256(path / INT8)[:12]
    except OSError:
        ident = "?"
    return f"{ident}, the shipped model" if name is None else ident


def install(source: Path) -> str:
    """Check the bundle in `source` and make it the device's model; the one line to print. BundleError when
    refused (the model in force stays)."""
    source = Path(source)
    if not source.is_dir():
        raise BundleError(f"{source} is not a folder (a bundle is a folder with {', '.join(FILES)})")
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise BundleError(f"{source}: {', '.join(missing)} missing (a bundle has {', '.join(FILES)})")
    folder = store()
    with locked(folder):
        try:
            current = read_state(folder).get("current")
        except BundleError:  # the install mends it: the shipped model becomes the previous
            current = None
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        staging.chmod(0o755)  # readable as models/ is, whoever runs classify-cam later
        try:
            for name in FILES:
                shutil.copyfile(source / name, staging / name)
                sync(staging / name)
            sync(staging)
            try:
                ident = verify(staging)
            except BundleError as exc:
                raise BundleError(f"{source}: {exc}") from None
            if folder_of(current, folder).is_dir() and same_files(staging, folder_of(current, folder)):
                return (f"model {ident} from {source} is already the model in force"
                        f"{', the shipped model' if current is None else ''}: nothing changed")
            name = f"bundle-{ident}-{time.time_ns()}"
            os.rename(staging, folder / name)
            sync(folder)
            write_state(folder, name, current)
        except OSError as exc:
            raise BundleError(f"the model store {folder} cannot be written ({exc.strerror or exc}): the model in "
                              "force stays") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        tidy(folder, {name, current})
    return (f"installed model {ident} from {source} in {folder}; the previous, {describe(current, folder)}, is "
            "kept (--rollback brings it back); new runs use it, a running one switches on SIGHUP (systemctl reload "
            "classify-cam)")


def rollback() -> str:
    """The previous model in force again (the one it replaces becomes the previous); the one line to print."""
    folder = store()
    with locked(folder):
        state = read_state(folder)
        if not state or state["current"] is None and state["previous"] is None:
            raise BundleError(f"no previous model to roll back to: none was installed in {folder}")
        current, previous = state["current"], state["previous"]
        try:
            verify(folder_of(previous, folder))
        except BundleError as exc:
            raise BundleError(f"the previous model {folder_of(previous, folder)} cannot be used ({exc}): the model in "
                              "force stays") from None
        try:
            write_state(folder, previous, current)
        except OSError as exc:
            raise BundleError(f"the model store {folder} cannot be written ({exc.strerror or exc})") from None
    return (f"rolled back to model {describe(previous, folder)}; {describe(current, folder)} is now the previous "
            "(--rollback again brings it back); a running classify-cam switches on SIGHUP")


def command(install_from: Path | None) -> int:
    """classify-cam --install-model DIR / --rollback: one line on stdout (exit 0) or on stderr (exit 2)."""
    import sys

    try:
        line = install(install_from) if install_from is not None else rollback()
    except BundleError as exc:
        flag = f"--install-model {install_from}" if install_from is not None else "--rollback"
        print(f"classify-cam: {flag} refused: {exc}", file=sys.stderr)
        return 2
    print(f"classify-cam: {line}")
    return 0
