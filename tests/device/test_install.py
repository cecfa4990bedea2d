"""Model bundles on the device: --install-model, --rollback, the default model, and SIGHUP in a running
classify-cam (a realtime stockroom video publishing to a real mosquitto), as a user runs them.

Bundles are made from copies of models/ (a valid bundle). A second valid model, without TensorFlow: the
same flatbuffer with one byte of its description string changed ("MLIR Converted." -> "MLIR Converted!"),
so the int8 file, and with it the model's id, differ while the arithmetic (and the card's fingerprint) stay.
Every test has its own store ($CLASSIFY_CAM_MODELS) and home: the real ~/.local/state is never touched.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import cv2
import pytest

import models
from device.spec import CLASS_NAMES
from tests.conftest import NEUTRAL, classify_cam, command
from tests.device.test_stockroom import check_pairs, events_of, make_broker, site, wait_until  # noqa: F401
from tools.demo import render_photo
from tools.stockroom_video import Step, render

INT8 = "fashion_int8.tflite"


def make_bundle(folder: Path, mark: bytes = b"!", threshold: float | None = None, resign: bool = True,
                int8: bytes | None = None, labels: str | None = None) -> Path:
    """A bundle from copies of models/: the int8 file marked (another id, the same arithmetic), or replaced by
    `int8`; other labels; another unknown threshold; the card's sha256s written for the files (resign)."""
    folder.mkdir(parents=True)
    for name in ("fashion_float.keras", "labels.txt", "model_card.json"):
        shutil.copyfile(models.MODELS_DIR / name, folder / name)
    data = bytearray(models.INT8_MODEL.read_bytes())
    at = data.index(b"MLIR Converted.") + 14
    data[at:at + 1] = mark
    (folder / INT8).write_bytes(int8 if int8 is not None else bytes(data))
    if labels is not None:
        (folder / "labels.txt").write_text(labels)
    card = json.loads((folder / "model_card.json").read_text())
    if resign:
        for name in ("fashion_int8.tflite", "labels.txt"):
            data = (folder / name).read_bytes()
            card["files"][name].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    if threshold is not None:
        card["unknown"]["threshold"] = threshold
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def ident(folder: Path) -> str:
    return hashlib.sha256((folder / INT8).read_bytes()).hexdigest()[:12]


@pytest.fixture
def env(tmp_path):
    """This test's own model store and home."""
    (tmp_path / "home").mkdir()
    return {**os.environ, "CLASSIFY_CAM_MODELS": str(tmp_path / "store"), "HOME": str(tmp_path / "home")}


def cam(env, *args, **kw):
    return classify_cam(*args, env=env, **kw)


def one_line(r, code: int) -> str:
    out = (r.stdout if code == 0 else r.stderr).strip()
    assert r.returncode == code and len(out.splitlines()) == 1 and "Traceback" not in r.stderr, (r.stdout, r.stderr)
    return out


@pytest.fixture
def photo(tmp_path, test_images):
    images, labels = test_images
    i = next(i for i in range(len(labels)) if labels[i] == 7)  # a sneaker: the model is sure of it
    path = tmp_path / "sneaker.png"
    cv2.imwrite(str(path), cv2.cvtColor(render_photo(images[i], seed=0), cv2.COLOR_RGB2BGR))
    return path


def start_line(env, photo, tmp_path) -> tuple[str, dict]:
    """A run without --model on one photo: its start line and its record."""
    out = tmp_path / "run.jsonl"
    out.unlink(missing_ok=True)
    r = cam(env, "--source", photo, "--output", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return r.stderr.splitlines()[0], events_of(out)[0]


def test_install_default_model_and_rollback(tmp_path, env, photo):
    first = make_bundle(tmp_path / "first")
    second = make_bundle(tmp_path / "second", mark=b"?", threshold=1.0)  # nothing is that sure: all unknown
    shipped = ident(models.MODELS_DIR)
    line, record = start_line(env, photo, tmp_path)
    assert f"model {shipped} (the shipped model)" in line and record["label"] == "Sneaker"

    out = one_line(cam(env, "--install-model", first), 0)
    assert f"installed model {ident(first)}" in out and shipped in out
    line, record = start_line(env, photo, tmp_path)
    assert f"model {ident(first)} (installed," in line and record["label"] == "Sneaker"
    doctor = cam(env, "--doctor", "--source", photo)
    assert doctor.returncode == 0 and f"model       {ident(first)}: " in doctor.stdout, doctor.stdout

    assert f"installed model {ident(second)}" in one_line(cam(env, "--install-model", second), 0)
    line, record = start_line(env, photo, tmp_path)  # the threshold comes with the bundle's card
    assert f"model {ident(second)} (installed," in line and record["label"] == "unknown"
    assert record["confidence"] > 0.5  # "Sneaker" at the shipped card's threshold

    assert f"rolled back to model {ident(first)}" in one_line(cam(env, "--rollback"), 0)
    assert f"model {ident(first)} (installed," in start_line(env, photo, tmp_path)[0]
    assert f"rolled back to model {ident(second)}" in one_line(cam(env, "--rollback"), 0)  # and forth
    assert "already the model in force" in one_line(cam(env, "--install-model", second), 0)
    bundles = sorted(p.name for p in Path(env["CLASSIFY_CAM_MODELS"]).iterdir() if not p.name.startswith("."))
    assert len(bundles) == 3 and "installed.json" in bundles  # only the current and the previous are kept


def test_rollback_reaches_the_shipped_model_and_says_when_there_is_nothing(tmp_path, env, photo):
    assert "no previous model" in one_line(cam(env, "--rollback"), 2)
    first = make_bundle(tmp_path / "first")
    one_line(cam(env, "--install-model", first), 0)
    assert f"rolled back to model {ident(models.MODELS_DIR)}, the shipped model" in one_line(cam(env, "--rollback"), 0)
    assert "(the shipped model)" in start_line(env, photo, tmp_path)[0]
    (Path(env["CLASSIFY_CAM_MODELS"]) / "installed.json").write_text("{")  # a store whose state is damaged:
    r = cam(env, "--source", photo, "--quiet")  # said in one line, and the stockroom keeps working
    warning, start = r.stderr.splitlines()[:2]
    assert r.returncode == 0 and "installed.json cannot be read" in warning and "running the shipped model" in warning
    assert "(the shipped model)" in start, r.stderr
    doctor = cam(env, "--doctor", "--source", photo)  # a problem line, and the doctor goes on (no restart loop)
    assert doctor.returncode == 0 and "store       PROBLEM: " in doctor.stdout and "needs mending" in doctor.stdout
    out = one_line(cam(env, "--install-model", first), 0)
    assert f"installed model {ident(first)}" in out and "mended, 1 bundle in it discarded" in out
    assert "is a command of its own: --source" in one_line(cam(env, "--rollback", "--source", photo), 2)


def wrong_input(data: bytes) -> bytes:
    """The int8 model with its input tensor declared 1x32x32x1 (its shape vector patched: it still loads)."""
    from device.runtime import make_interpreter

    pattern = struct.pack("<4i", 1, 28, 28, 1)
    for at in [i for i in range(len(data) - 15) if data.startswith(pattern, i)]:
        patched = data[:at] + struct.pack("<4i", 1, 32, 32, 1) + data[at + 16:]
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"wrong-input-{os.getpid()}.tflite"
        path.write_bytes(patched)
        try:
            if list(make_interpreter(path).get_input_details()[0]["shape"]) == [1, 32, 32, 1]:
                return patched
        finally:
            path.unlink()
    raise AssertionError("the input's shape vector was not found in the model")


DAMAGE = {  # how a bundle is damaged -> what the one line says
    "missing-file": (lambda d: (d / "fashion_float.keras").unlink(), "fashion_float.keras missing"),
    "wrong-sha256": (lambda d: (d / INT8).write_bytes((d / INT8).read_bytes()[:-1] + b"\0"),
                     "does not match the sha256"),
    "truncated-tflite": (lambda d: make_bundle(d, int8=models.INT8_MODEL.read_bytes()[:50000]), "cannot load model"),
    "foreign-labels": (lambda d: make_bundle(d, labels="cat\ndog\n" * 5), "not the ten classes in order"),
    "wrong-input-shape": (lambda d: make_bundle(d, int8=wrong_input(models.INT8_MODEL.read_bytes())),
                          "input is 1x32x32x1, not 1x28x28x1"),
    "other-arithmetic": (lambda d: d.joinpath("model_card.json").write_text(
        d.joinpath("model_card.json").read_text().replace('"raw": [[', '"raw": [[1, ')), "fingerprint differs"),
}


@pytest.fixture(scope="module")
def in_force(tmp_path_factory):
    """A store with a bundle in force, shared by the refusals (each leaves it as it was)."""
    tmp = tmp_path_factory.mktemp("in-force")
    (tmp / "home").mkdir()
    env = {**os.environ, "CLASSIFY_CAM_MODELS": str(tmp / "store"), "HOME": str(tmp / "home")}
    one_line(cam(env, "--install-model", make_bundle(tmp / "good")), 0)
    return env


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_bundle_is_refused_and_the_model_in_force_stays(damage, in_force, tmp_path):
    store = Path(in_force["CLASSIFY_CAM_MODELS"])
    before = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}, (store / "installed.json").read_bytes()
    do, said = DAMAGE[damage]
    if damage in ("truncated-tflite", "foreign-labels", "wrong-input-shape"):  # re-signed: only the check sees it
        do(tmp_path / "bad")
    else:
        do(make_bundle(tmp_path / "bad", mark=b"#"))
    out = one_line(cam(in_force, "--install-model", tmp_path / "bad"), 2)
    assert out.startswith(f"classify-cam: --install-model {tmp_path / 'bad'} refused") and said in out, out
    assert ".staging" not in out
    after = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}, (store / "installed.json").read_bytes()
    assert after == before  # nothing left behind, the same model in force


def stockroom_video(path: Path, fmnist) -> Path:
    """Four garments (a second still each) with short empty gaps: 13 s at its own frame rate."""
    images, labels = fmnist.test.images, fmnist.test.labels
    steps = [Step("empty", 1.0)]
    for c in (7, 1, 8, 9):
        i = int((labels == c).argmax())
        steps += [Step("garment", 2.4, images[i], c), Step("empty", 0.6)]
    return render(path, steps, (320, 240))


def test_sighup_switches_between_items_losing_and_splitting_nothing(tmp_path, env, fmnist, site):
    broker, listener = site
    first, second = make_bundle(tmp_path / "first"), make_bundle(tmp_path / "second", mark=b"?")
    one_line(cam(env, "--install-model", first), 0)
    video, log, err = stockroom_video(tmp_path / "table.avi", fmnist), tmp_path / "e.jsonl", tmp_path / "err"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(command("classify-cam") + ["--source", str(video), "--events", "--realtime", "--mqtt",
                                broker.url(), "--device-id", "pi-h", "--queue", str(tmp_path / "q"), "--output",
                                str(log), "--quiet"], cwd=NEUTRAL, stderr=stderr, text=True, env=env)
    try:
        assert wait_until(lambda: log.is_file() and '"placed"' in log.read_text(), 30), err.read_text()
        store = Path(env["CLASSIFY_CAM_MODELS"])
        running = next(store.glob(f"bundle-{ident(first)}-*"))
        (running / "broken").write_bytes(b"not a model")  # damaged on disk (never in place: it is mapped)
        os.replace(running / "broken", running / INT8)
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "cannot be used" in err.read_text(), 10), err.read_text()
        one_line(cam(env, "--install-model", second), 0)
        assert wait_until(lambda: log.read_text().count('"placed"') == 2, 30), err.read_text()
        proc.send_signal(signal.SIGHUP)  # while the second garment lies on the table
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    said = err.read_text()
    assert proc.returncode == 0, said
    assert said.count("SIGHUP: the installed model cannot be used") == 1 and "keeps running" in said
    switched = re.findall(rf"switched model {ident(first)} -> {ident(second)} at (\S+), between items", said)
    assert len(switched) == 1, said
    events = events_of(log)
    placed = check_pairs(events)  # every placed has its removed, once, ids unique
    assert len(placed) == 4 and {e["label"] for e in placed} <= set(CLASS_NAMES) | {"unknown"}
    assert [e["model"] for e in placed] == [ident(first)] * 2 + [ident(second)] * 2
    removed = [e for e in events if e["event"] == "removed"]
    assert removed[1]["time"] < switched[0] <= placed[2]["time"]  # once the second garment had gone
    assert wait_until(lambda: len(listener.events()) == len(events))
    assert listener.events() == events  # the broker got every event, once, in order


# -- the hostile review's cases (issue 34): in-process where a process is not the point ------------------------
@pytest.fixture
def store(tmp_path, monkeypatch):
    """This test's own store, for device.store called in-process."""
    monkeypatch.setenv("CLASSIFY_CAM_MODELS", str(tmp_path / "store"))
    return tmp_path / "store"


def bundle_folders(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir() if p.is_dir())


def test_a_damaged_store_never_stops_a_run_and_an_install_mends_it(tmp_path, store):
    from device import bundle, store as st

    a, b = make_bundle(tmp_path / "a"), make_bundle(tmp_path / "b", mark=b"?")
    st.install(a)
    damaged = next(store.glob("bundle-*"))
    (damaged / "fashion_float.keras").unlink()  # the bundle in force damaged
    assert not bundle.same_files(b, damaged)  # unreadable is "not the same", never "cannot be written"
    assert "installed model" in st.install(b)  # not "cannot be written": the damaged one is not the same as any
    (next(store.glob(f"bundle-{ident(b)}-*")) / INT8).unlink()  # the current one damaged: the intact previous runs
    path, origin, said = st.default_model()
    assert origin == "shipped" and "is damaged" in said and "running the shipped model" in said  # a's was damaged
    for damage in ("", "{", "[]", '{"current": "../../etc"}', None):  # empty, half, wrong shape, foreign, a folder
        state = store / "installed.json"
        state.unlink() if state.is_file() else shutil.rmtree(state, ignore_errors=True)
        state.mkdir() if damage is None else state.write_text(damage)
        path, origin, said = st.default_model()
        assert (path, origin) == (models.INT8_MODEL, "shipped") and "running the shipped model 9c02" in said, said
    state.rmdir()
    st.write_state(store, None, None)
    store_file = tmp_path / "a-file"
    store_file.write_text("")
    os.environ["CLASSIFY_CAM_MODELS"] = str(store_file)  # a store that cannot be read is said (here: not a folder)
    assert "cannot be read (Not a directory): running the shipped model" in st.default_model()[2]
    os.environ["CLASSIFY_CAM_MODELS"] = "relative/store"  # resolved against each process's cwd: refused
    assert "is a relative path" in st.default_model()[2]


def test_a_failed_install_leaves_nothing_and_blames_the_right_side(tmp_path, store, monkeypatch):
    from device import bundle, store as st

    a, b = make_bundle(tmp_path / "a"), make_bundle(tmp_path / "b", mark=b"?")
    st.install(a)
    before = bundle_folders(store), (store / "installed.json").read_bytes()
    real = st.write_state
    monkeypatch.setattr(st, "write_state", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(bundle.BundleError, match=f"the model store {store} cannot be written \\(No space left"):
        st.install(b)  # after the rename into the store: the folder made goes again
    assert (bundle_folders(store), (store / "installed.json").read_bytes()) == before
    monkeypatch.setattr(st, "write_state", real)
    monkeypatch.setattr(st.tempfile, "mkdtemp", lambda **kw: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(bundle.BundleError, match="cannot be written \\(Permission denied\\)"):
        st.install(b)
    monkeypatch.undo()
    os.environ["CLASSIFY_CAM_MODELS"] = str(store)
    (b / "labels.txt").unlink()
    (b / "labels.txt").mkdir()  # a bundle file that cannot be read: the bundle's fault, named, nothing copied
    with pytest.raises(bundle.BundleError, match=f"^{b / 'labels.txt'} cannot be read \\(Is a directory\\)$"):
        st.install(b)
    card = json.loads((a / "model_card.json").read_text())
    card["files"][INT8]["bytes"] += 1
    (a / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(bundle.BundleError, match=f"{a / INT8} is 265224 bytes, model_card.json says 265225"):
        st.install(a)
    assert (bundle_folders(store), (store / "installed.json").read_bytes()) == before


@pytest.mark.parametrize("cut", ["threshold", "reference"])
def test_a_card_cut_short_is_refused(tmp_path, store, cut):
    from device import bundle, store as st

    a = make_bundle(tmp_path / "a")
    card = json.loads((a / "model_card.json").read_text())
    if cut == "threshold":
        del card["unknown"]["threshold"]  # runs would use 0.5 while the doctor said "calibrated"
    else:
        card["reference_outputs"]["raw"] = card["reference_outputs"]["raw"][:3]
    (a / "model_card.json").write_text(json.dumps(card))
    said = "has no unknown threshold" if cut == "threshold" else "records 3 reference outputs, not the 8"
    with pytest.raises(bundle.BundleError, match=said):
        st.install(a)


def test_install_and_rollback_lines_say_what_is_true(tmp_path, store):
    from device import store as st

    a = make_bundle(tmp_path / "a")
    same_model = make_bundle(tmp_path / "card", threshold=0.5)  # the same int8 file: the same id, another card
    old = os.umask(0o077)
    try:
        st.install(a)
    finally:
        os.umask(old)
    folder = next(store.glob("bundle-*"))
    assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o644"}  # the service's user reads them
    assert "same model, new card: threshold 0.26 -> 0.5" in st.install(same_model)
    shutil.rmtree(store / json.loads((store / "installed.json").read_text())["current"])  # the current one gone
    path, origin, said = st.default_model()  # a run meanwhile: the intact previous, what --rollback gives
    assert origin == "installed" and "running the previous one" in said and path.parent.name.startswith(f"bundle-{ident(a)}")
    line = st.rollback()
    assert "is gone and cannot be brought back" in line and "?" not in line, line


def test_install_model_twice_is_refused(capsys):
    from device.options import parse

    with pytest.raises(SystemExit) as exit_:
        parse(["--install-model", "a", "--install-model", "b"])
    assert exit_.value.code == 2 and "--install-model given twice" in capsys.readouterr().err


def test_the_model_is_loaded_beside_the_frames_and_only_swapped_between_them(monkeypatch):
    import time
    from types import SimpleNamespace

    from device import hup, reload

    running, new = SimpleNamespace(id="a" * 12), SimpleNamespace(id="b" * 12, path=Path("/x/y"))
    switched = []
    step = SimpleNamespace(between_items=lambda: True, switch=lambda m, t: switched.append(m))
    job = SimpleNamespace(opts=SimpleNamespace(threshold=0.3), model=running)
    r = reload.Reload(job)
    monkeypatch.setattr(r, "load", lambda waiting: (time.sleep(0.3), (new, 0.4))[1])  # ~150 ms on x86, more on a Pi
    monkeypatch.setattr(reload, "where", lambda model, opts: "")
    monkeypatch.setattr(hup, "count", hup.count + 1)
    frame = SimpleNamespace(t=0.0)
    started = time.perf_counter()
    r.check(step, frame)
    assert time.perf_counter() - started < 0.1 and switched == []  # the frame goes on while the model loads
    r.loader.join()
    r.check(step, frame)
    assert switched == [new] and r.running is new and r.switches == 1


def test_a_burst_of_sighups_is_one_switch_and_sigterm_still_stops(tmp_path, env, monkeypatch):
    import time

    from device import store as st

    video = render(tmp_path / "v.avi", [Step("empty", 20.0)], (160, 120))
    log, err = tmp_path / "f.jsonl", tmp_path / "err"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(command("classify-cam") + ["--source", str(video), "--realtime", "--output", str(log),
                                "--quiet"], cwd=NEUTRAL, stderr=stderr, env=env)
    try:
        assert wait_until(lambda: log.is_file() and log.read_text().count("\n") >= 2, 20), err.read_text()
        monkeypatch.setenv("CLASSIFY_CAM_MODELS", env["CLASSIFY_CAM_MODELS"])
        st.install(make_bundle(tmp_path / "a"))
        storm = time.monotonic() + 1.0
        while time.monotonic() < storm:  # signals inside the handler: no lock taken, no deadlock, no recursion
            for _ in range(200):
                os.kill(proc.pid, signal.SIGHUP)
        assert wait_until(lambda: "switched model" in err.read_text(), 10), err.read_text()
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() < started + 5:  # SIGTERMs in a storm too: one clean stop
            for _ in range(200):
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    break
        proc.wait(timeout=5)
        assert time.monotonic() - started < 3
    finally:
        if proc.poll() is None:
            proc.kill()
    said = err.read_text()
    # The summary is said, the record closed; a SIGTERM of the storm that lands after the handler is given back,
    # at the very end, ends the process by the signal (which systemd, for SIGTERM, takes for a clean stop).
    assert proc.returncode in (0, -signal.SIGTERM) and said.count("switched model") == 1 \
        and "frames" in said.splitlines()[-1], said
    models_seen = [json.loads(line)["model"] for line in log.read_text().splitlines()]  # per-frame records name it
    assert models_seen[0] == ident(models.MODELS_DIR) and models_seen[-1] == ident(tmp_path / "a")


def test_a_sighup_at_start_up_is_no_kill(env, photo):
    """From the moment the handler exists (seen in /proc: SIGHUP caught), a SIGHUP during set-up is no kill, and the
    handler is the first thing classify-cam's module does, before its heavy imports. What remains is the
    interpreter's own start-up, before any of the project's code runs (docs/hardening.md)."""
    import ast
    import time

    import device.cli

    tree = ast.parse(Path(device.cli.__file__).read_text())
    code = [node for node in tree.body if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Constant)]
    assert [ast.unparse(n) for n in code[1:3]] == ["from device import hup", "hup.listen()"], \
        [ast.unparse(n) for n in code[:3]]
    for _ in range(3):
        proc = subprocess.Popen(command("classify-cam") + ["--source", str(photo), "--quiet"], cwd=NEUTRAL, env=env,
                                stderr=subprocess.PIPE, text=True)
        status, deadline = Path(f"/proc/{proc.pid}/status"), time.monotonic() + 20
        while time.monotonic() < deadline:  # the signal goes at the first sight of the handler
            caught = [line for line in status.read_text().splitlines() if line.startswith("SigCgt:")]
            if caught and int(caught[0].split()[1], 16) & (1 << (signal.SIGHUP - 1)):
                break
        proc.send_signal(signal.SIGHUP)
        _, said = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "1 frames" in said, (proc.returncode, said)
