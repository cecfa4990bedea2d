"""The model store: `--install-model DIR` makes a checked bundle the model in force, `--rollback` brings the one
before back, and runs without --model use the model in force.

Installed bundles live in $CLASSIFY_CAM_MODELS (an absolute path), else ~/.local/state/classify-cam/models/
(the home of the user the service runs as):

    installed.json                  {"current": "bundle-<id>-<n>", "previous": null}   null: the shipped model
    bundle-9c02023c7ca5-1733389000/ the four files (0644), checked after they were copied

An install reads the bundle and checks it against its card (device/bundle.py) before anything is copied,
writes it into a hidden staging folder, syncs it to disk, checks the copy (every check of verify()),
renames it into place, then replaces installed.json in one rename: a power cut at any moment leaves either
the old model in force or the new one, never half of one, and a failure at any step removes what it made.
Only the current and the previous bundles are kept. A bundle's id is the first 12 hex of its int8 file's
sha256, as in events.

A store that is damaged (installed.json unreadable, or the folder of the model in force gone or unlike
its card) never stops a run: the run says so in one line and uses what --rollback would give, the previous
bundle when it is intact, else the shipped model (docs/hardening.md). An install mends it.
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

from device.bundle import INT8, BundleError, damage, read, same_files, shipped, threshold, verify

STATE, ENV = "installed.json", "CLASSIFY_CAM_MODELS"
NAME = re.compile(r"bundle-[0-9a-f]{12}-\d+")  # the store's own folders; nothing else there is touched
MENDS = "classify-cam --install-model DIR mends it"


def store() -> Path:
    """Where installed bundles live: $CLASSIFY_CAM_MODELS, else ~/.local/state/classify-cam/models/."""
    given = os.environ.get(ENV, "")
    if not given.strip():
        return Path.home() / ".local" / "state" / "classify-cam" / "models"
    if not os.path.isabs(given):  # a service and a shell start in different folders: they would not agree
        raise BundleError(f"${ENV}={given!r} is a relative path: give an absolute one")
    return Path(given)


def read_state(folder: Path) -> dict:
    """{"current": name or None, "previous": name or None} (None: the shipped model); {} when nothing was
    ever installed; BundleError for a store that cannot be read or a state file that is damaged."""
    path = folder / STATE
    try:
        os.stat(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:  # a store that may not be entered is said, never taken for an empty one
        raise BundleError(f"the model store {folder} cannot be read ({exc.strerror or exc})") from None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else f"damaged: {type(exc).__name__}"
        raise BundleError(f"the model store's {path} cannot be read ({why})") from None
    if not isinstance(state, dict) or any(not (v is None or isinstance(v, str) and NAME.fullmatch(v))
                                          for v in (state.get("current"), state.get("previous"))):
        raise BundleError(f"the model store's {path} is damaged (not the store's own names)")
    return {"current": state.get("current"), "previous": state.get("previous")}


def folder_of(name: str | None, folder: Path) -> Path:
    return shipped() if name is None else folder / name


def ident(path: Path) -> str | None:
    from device import card

    try:
        return card.sha256(path / INT8)[:12]
    except OSError:
        return None


def default_model() -> tuple[Path, str, str]:
    """The model a run without --model uses: (int8 file, "installed" or "shipped", the store's problem or "").

    A damaged store never stops a run: the previous bundle when it is intact (what --rollback gives),
    else the shipped model, and one line saying so."""
    try:
        folder = store()
        state = read_state(folder)
    except BundleError as exc:
        return shipped() / INT8, "shipped", f"{exc}: running the shipped model {ident(shipped())}; {MENDS}"
    name, previous = state.get("current"), state.get("previous")
    if name is None:
        return shipped() / INT8, "shipped", ""
    why = damage(folder / name)
    if not why:
        return folder / name / INT8, "installed", ""
    said = f"the installed model {folder / name} {why}"
    if previous is not None and not damage(folder / previous):
        return (folder / previous / INT8, "installed",
                f"{said}: running the previous one, {ident(folder / previous)} (what --rollback gives); {MENDS}")
    return shipped() / INT8, "shipped", f"{said}: running the shipped model {ident(shipped())}; {MENDS}"


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


def write_file(path: Path, data: bytes) -> None:
    """A new file, 0644 whatever the umask (the service's user reads it), on disk before this returns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fchmod(fd, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_state(folder: Path, current: str | None, previous: str | None) -> None:
    """installed.json replaced in one rename, after its bytes are on disk (the temporary file gone on failure)."""
    text = json.dumps({"current": current, "previous": previous, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    tmp = folder / f".state-{os.getpid()}-{time.time_ns()}"
    try:
        write_file(tmp, (text + "\n").encode())
        os.replace(tmp, folder / STATE)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename is done: the new state is in force
        sync(folder)


def bundles(folder: Path) -> list[str]:
    with contextlib.suppress(OSError):
        return sorted(p.name for p in folder.iterdir() if NAME.fullmatch(p.name) and p.is_dir())
    return []


def tidy(folder: Path, keep: set) -> None:
    """Bundles neither current nor previous, and staging folders a power cut left, go (only the store's own)."""
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            if path.is_dir() and (NAME.fullmatch(path.name) and path.name not in keep
                                  or path.name.startswith(".staging-")):
                shutil.rmtree(path, ignore_errors=True)


def describe(name: str | None, folder: Path) -> str:
    got = ident(folder_of(name, folder))
    if got is None:
        return f"{folder_of(name, folder)}, is gone and cannot be brought back"
    return f"{got}, the shipped model" if name is None else got


def in_force(folder: Path) -> tuple[str | None, str]:
    """The model in force that an install keeps as the previous, and what the install mends (said in its line)."""
    try:
        state = read_state(folder)
    except BundleError as exc:
        lost = len(bundles(folder))
        return None, (f"; the store was damaged ({exc}): mended, {lost} bundle{'s' * (lost != 1)} in it discarded, "
                      "the previous is the shipped model" if lost else f"; the store was damaged ({exc}): mended")
    name, previous = state.get("current"), state.get("previous")
    why = "" if name is None else damage(folder / name)
    if not why:
        return name, ""
    said = f"; the installed model {folder / name} {why}: discarded"
    if previous is not None and not damage(folder / previous):
        return previous, f"{said}, the one before it is kept"
    return None, f"{said}, the previous is the shipped model"


def install(source: Path) -> str:
    """Check the bundle in `source` and make it the device's model; the one line to print. BundleError when
    refused (the model in force stays, nothing is left behind)."""
    source = Path(source)
    files = read(source)  # the bundle's fault, named, before anything is copied
    folder = store()
    with locked(folder):
        current, mended = in_force(folder)
        made, done, new = None, False, None
        try:
            made = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
            made.chmod(0o755)  # readable as models/ is, whoever runs classify-cam later
            for name, data in files.items():
                write_file(made / name, data)
            sync(made)
            try:
                new = verify(made)
            except BundleError as exc:
                raise BundleError(f"{source}: {exc}") from None
            target = folder_of(current, folder)
            if same_files(made, target):
                return (f"model {new} from {source} is already the model in force"
                        f"{', the shipped model' if current is None else ''}: nothing changed{mended}")
            card = ""
            if ident(target) == new:
                card = f"; same model, new card: threshold {threshold(target)} -> {threshold(made)}"
            name = f"bundle-{new}-{time.time_ns()}"
            os.rename(made, folder / name)
            made = folder / name
            sync(folder)
            write_state(folder, name, current)
            done = True
        except OSError as exc:
            raise BundleError(f"the model store {folder} cannot be written ({exc.strerror or exc}): the model in "
                              "force stays") from None
        finally:
            if made is not None and not done:
                shutil.rmtree(made, ignore_errors=True)
        tidy(folder, {name, current})
    before = describe(current, folder)
    before = (f"the previous, {before}, is kept (--rollback brings it back)" if "cannot be brought back" not in before
              else "the previous is gone and cannot be brought back")
    return (f"installed model {new} from {source} in {folder}{card}; {before}{mended}; new runs use it, a running "
            "one switches on SIGHUP (systemctl reload classify-cam)")


def rollback() -> str:
    """The previous model in force again (the one it replaces becomes the previous); the one line to print."""
    folder = store()
    with locked(folder):
        try:
            state = read_state(folder)
        except BundleError as exc:
            raise BundleError(f"{exc}: {MENDS}") from None
        if not state or state["current"] is None and state["previous"] is None:
            raise BundleError(f"no previous model to roll back to: none was installed in {folder}")
        current, previous = state["current"], state["previous"]
        try:
            verify(folder_of(previous, folder))
        except (BundleError, OSError) as exc:
            raise BundleError(f"the previous model {folder_of(previous, folder)} cannot be used ({exc}): the model in "
                              "force stays") from None
        try:
            write_state(folder, previous, current)
        except OSError as exc:
            raise BundleError(f"the model store {folder} cannot be written ({exc.strerror or exc})") from None
    replaced = describe(current, folder)
    again = "(--rollback again brings it back)" if "cannot be brought back" not in replaced else ""
    return (f"rolled back to model {describe(previous, folder)}; the model it replaces, {replaced}"
            f"{', is now the previous ' + again if again else ''}; a running classify-cam switches on SIGHUP")


def command(install_from: Path | None) -> int:
    """classify-cam --install-model DIR / --rollback: one line on stdout (exit 0) or on stderr (exit 2)."""
    import sys

    try:
        line = install(install_from) if install_from is not None else rollback()
    except (BundleError, OSError) as exc:
        flag = f"--install-model {install_from}" if install_from is not None else "--rollback"
        why = exc if isinstance(exc, BundleError) else f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}"
        print(f"classify-cam: {flag} refused: {why}".rstrip(), file=sys.stderr)
        return 2
    print(f"classify-cam: {line}")
    return 0
