"""classify-cam as a user runs it: a real process, real files, the real runtime."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from tools.demo import render_photo
from tests.conftest import NEUTRAL, ROOT, classify_cam, command, make_jpeg, need
from tests.device.test_sources import write_video

SCHEMA = {"source", "frame", "time", "label", "confidence", "top", "ms"}


def cam(*args, timeout=60):
    """The installed classify-cam, started outside the checkout."""
    return classify_cam(*args, timeout=timeout)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def photo_folder(tmp_path, test_images):
    images, _ = test_images
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        make_jpeg(folder / f"{i}.jpg", render_photo(images[i], seed=i))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (folder / "empty.png").write_bytes(b"")
    return folder


def test_folder_gives_one_json_line_per_image(photo_folder, int8_model, tmp_path):
    out = tmp_path / "log.jsonl"
    r = cam("--source", photo_folder, "--model", int8_model, "--output", out)
    assert r.returncode == 0, r.stderr
    lines = read_jsonl(out)
    assert [line["frame"] for line in lines] == list(range(6))
    good = [line for line in lines if "error" not in line]
    bad = [line for line in lines if "error" in line]
    assert len(good) == 4 and len(bad) == 2
    for line in good:
        assert SCHEMA <= set(line)
        assert line["time"].endswith("Z") and "T" in line["time"]
        assert set(line["ms"]) == {"capture", "preprocess", "infer"}
        assert len(line["top"]) == 3 and line["top"][0][1] == line["confidence"]
    for line in bad:
        assert {"source", "frame", "time", "error"} <= set(line) and "label" not in line
    assert "summary: 6 frames (2 unreadable)" in r.stderr
    assert "Traceback" not in r.stderr


def test_output_appends(photo_folder, int8_model, tmp_path):
    out = tmp_path / "log.jsonl"
    for _ in range(2):
        assert cam("--source", photo_folder / "0.jpg", "--model", int8_model, "--output", out).returncode == 0
    assert len(read_jsonl(out)) == 2


@pytest.mark.parametrize("args, message", [
    (["--source", "/no/such/folder"], "no such source"),
    (["--source", "{photos}/broken.jpg"], "cannot read image"),
    (["--model", "/no/model.tflite"], "model not found"),
    (["--model", "{photos}/0.jpg", "--labels", "{labels}"], "cannot load model"),
    (["--frobnicate"], "unrecognized arguments"),
    (["--threshold", "7"], "between 0 and 1"),
    (["--roi", "1,2,3"], "X,Y,WIDTH,HEIGHT"),
])
def test_usage_errors_exit_2_with_one_line(args, message, photo_folder, int8_model):
    args = [a.format(photos=photo_folder, labels=int8_model.parent / "labels.txt") for a in args]
    if "--model" not in args:
        args += ["--model", str(int8_model)]
    if "--source" not in args:
        args += ["--source", str(photo_folder)]
    r = cam(*args)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_labels_must_match_the_model(photo_folder, int8_model, tmp_path):
    (tmp_path / "nine.txt").write_text("\n".join("abcdefghi"))
    r = cam("--source", photo_folder, "--model", int8_model, "--labels", tmp_path / "nine.txt")
    assert r.returncode == 2 and "10 scores but there are 9 labels" in r.stderr


def test_tampered_model_is_refused(photo_folder, int8_model, tmp_path):
    import shutil

    from train import card

    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copyfile(int8_model, folder / "model.tflite")
    shutil.copyfile(int8_model.parent / "labels.txt", folder / "labels.txt")
    card.update(folder / "model_card.json", conversion={})
    assert cam("--source", photo_folder, "--model", folder / "model.tflite").returncode == 0
    with open(folder / "model.tflite", "r+b") as f:  # flip one byte of the weights
        f.seek(-100, 2)
        b = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([b[0] ^ 0xFF]))
    r = cam("--source", photo_folder, "--model", folder / "model.tflite")
    assert r.returncode == 2 and "sha256" in r.stderr


def test_model_with_the_wrong_input_is_refused(tmp_path, photo_folder):
    keras = pytest.importorskip("keras", reason="builds a model: needs the train extra")
    import tensorflow as tf

    colour = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    (tmp_path / "colour.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(colour).convert())
    r = cam("--source", photo_folder, "--model", tmp_path / "colour.tflite", "--labels", ROOT / "models/labels.txt")
    assert r.returncode == 2 and "single-channel" in r.stderr


def test_video_max_frames_smooth_and_dump(tmp_path, int8_model):
    video = write_video(tmp_path / "v.avi", frames=20)
    out, dump = tmp_path / "v.jsonl", tmp_path / "seen"
    r = cam("--source", video, "--model", int8_model, "--output", out, "--max-frames", 7, "--smooth", 3,
            "--dump-input", dump, "--top-k", 2)
    assert r.returncode == 0, r.stderr
    lines = read_jsonl(out)
    assert len(lines) == 7 and all(len(line["top"]) == 2 for line in lines)
    pngs = sorted(dump.glob("*.png"))
    assert len(pngs) == 7
    import cv2

    assert cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED).shape == (28, 28)


def test_threshold_turns_low_confidence_into_unknown(photo_folder, int8_model, tmp_path):
    out = tmp_path / "t.jsonl"
    assert cam("--source", photo_folder, "--model", int8_model, "--threshold", 1.0, "--output", out).returncode == 0
    assert {line["label"] for line in read_jsonl(out) if "label" in line} == {"unknown"}


def test_sigterm_leaves_only_whole_lines(tmp_path, int8_model):
    video = write_video(tmp_path / "long.avi", frames=400)
    out = tmp_path / "long.jsonl"
    proc = subprocess.Popen(command("classify-cam") + ["--source", str(video), "--model", str(int8_model),
                                                       "--output", str(out), "--quiet"], cwd=NEUTRAL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 2000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    text = out.read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert 0 < len(lines) < 400 and "summary:" in err


def test_doctor(int8_model, tmp_path):
    video = write_video(tmp_path / "v.avi", frames=3, size=(64, 48))  # a source that works: no camera here
    r = cam("--doctor", "--model", int8_model, "--source", video)
    assert r.returncode == 0, r.stdout + r.stderr
    expected = os.environ.get("EXPECT_RUNTIME")  # set by make test for each lean environment
    assert (expected or "ai-edge-litert") in r.stdout or (not expected and "tflite-runtime" in r.stdout)
    assert "int8 [1, 28, 28, 1]" in r.stdout and "OK" in r.stdout
    assert "arithmetic  OK: the reference kernels give the build machine's integers" in r.stdout


def test_doctor_notices_other_arithmetic(int8_model, tmp_path):
    # The same model file, but a card whose recorded reference integers are off by one step.
    for f in ("fashion_int8.tflite", "labels.txt", "model_card.json"):
        (tmp_path / f).write_bytes((int8_model.parent / f).read_bytes())
    card = json.loads((tmp_path / "model_card.json").read_text())
    card["reference_outputs"]["raw"][3][0] += 1
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    r = cam("--doctor", "--model", tmp_path / "fashion_int8.tflite")
    assert r.returncode == 2 and "arithmetic  PROBLEM: 1 of 8 fingerprint images" in r.stdout


def test_reference_kernels_run_and_say_so(photo_folder, int8_model, tmp_path):
    outs = {}
    for kernels in ("default", "reference"):
        outs[kernels] = tmp_path / f"{kernels}.jsonl"
        r = cam("--source", photo_folder, "--kernels", kernels, "--raw", "--top-k", 10, "--output", outs[kernels])
        assert r.returncode == 0, r.stderr
        assert ("reference kernels" in r.stderr) == (kernels == "reference")
    default, reference = read_jsonl(outs["default"]), read_jsonl(outs["reference"])
    for a, b in zip(default, reference):  # same labels; integers within a few rounding steps
        assert a.get("label") == b.get("label")
        if "raw" in a:
            assert max(abs(x - y) for x, y in zip(a["raw"], b["raw"])) <= 4


# Every flag of the classify-cam table in ../shared/CONTRACT.md, by the part of the program that reads it.
CONTRACT_FLAGS = ["--source", "--model", "--labels", "--output", "--max-frames", "--threshold", "--top-k", "--threads",
                  "--smooth", "--roi", "--background", "--show", "--dump-input", "--doctor",
                  "--events", "--save-items", "--realtime", "--mqtt", "--device-id", "--queue",  # stockroom mode
                  "--serve", "--config",  # the web page
                  "--install-model", "--rollback"]  # model bundles (tests/device/test_install.py)
# In the contract, not built yet: the test fails the day one appears in --help without moving up into the list.
NOT_YET_BUILT = []


def contract_flags() -> set[str]:
    """The flags named in the first column of CONTRACT.md's classify-cam table."""
    path = ROOT.parent / "shared" / "CONTRACT.md"
    need(path.is_file(), f"the outside contract {path}", "check out ../shared beside the repository")
    text = path.read_text()
    section = text[text.index("## `classify-cam`"):]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    flags = set()
    for row in section.splitlines():
        if row.startswith("| `--"):
            flags |= set(re.findall(r"`(--[a-z][a-z-]*)", row.split("|")[1]))
    return flags


def in_help(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def test_help_explains_every_contract_flag():
    assert contract_flags() == set(CONTRACT_FLAGS) | set(NOT_YET_BUILT), "CONTRACT.md's table changed: update the lists"
    r = cam("--help")
    assert r.returncode == 0, r.stderr
    missing = [flag for flag in CONTRACT_FLAGS if not in_help(flag, r.stdout)]
    assert not missing, f"contract flags not in classify-cam --help: {missing}"
    built = [flag for flag in NOT_YET_BUILT if in_help(flag, r.stdout)]
    assert not built, f"{built} now exist: move them into CONTRACT_FLAGS (and test them)"


@pytest.mark.parametrize("args, named", [
    (["--mqtt", "mqtt://localhost/shop"], ["--mqtt", "--events"]),
    (["--save-items", "{tmp}/items"], ["--save-items", "--events"]),
    (["--device-id", "pi-1"], ["--device-id", "--events"]),
    (["--settle", "1"], ["--settle", "--events"]),
    (["--queue", "{tmp}/q", "--mqtt", "mqtt://localhost/shop"], ["--queue", "--mqtt", "--events"]),
    (["--smooth", "3", "--events"], ["--smooth", "--events"]),
    (["--raw", "--events"], ["--raw", "--events"]),
    (["--queue", "{tmp}/q", "--events"], ["--queue", "--mqtt"]),
], ids=["mqtt-without-events", "save-items-without-events", "device-id-without-events", "settle-without-events",
        "queue-and-mqtt-without-events", "smooth-with-events", "raw-with-events", "queue-without-mqtt"])
def test_flags_of_the_other_mode_are_refused_in_one_line(args, named, tmp_path):
    """Never silently ignored: one line naming the flag, exit 2, before anything is opened (the source is a real
    video, so the refusal is the mode rule's, and nothing is written)."""
    video = write_video(tmp_path / "v.avi", frames=3, size=(64, 48))
    args = [a.format(tmp=tmp_path) for a in args]
    r = cam("--source", video, "--output", tmp_path / "log.jsonl", *args)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and all(flag in lines[0] for flag in named), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "log.jsonl").exists() and not (tmp_path / "items").exists() and not (tmp_path / "q").exists()


@pytest.fixture(scope="module")
def stockroom_video(tmp_path_factory, fmnist):
    """Two garments slid onto a small table and off again (tools/stockroom_video.py), and their true labels."""
    from tools.stockroom_video import render, script

    steps, truth = script(fmnist.test.images, fmnist.test.labels, 2, seconds=2.5)
    return render(tmp_path_factory.mktemp("table") / "table.avi", steps, (320, 240)), truth


def test_show_and_dump_input_work_with_events(stockroom_video, tmp_path):
    """--dump-input with --events: one 28x28 PNG per placed item, named by its label; --show (no display here)
    turns itself off with one line and the events still come."""
    import cv2

    video, truth = stockroom_video
    out, dump = tmp_path / "events.jsonl", tmp_path / "seen"
    r = cam("--source", video, "--events", "--show", "--dump-input", dump, "--output", out, "--quiet", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if "--show" in line]) <= 1  # at most once, not per frame
    events = read_jsonl(out)
    placed = [e for e in events if e["event"] == "placed"]
    assert len(placed) == len(truth) and len([e for e in events if e["event"] == "removed"]) == len(truth)
    pngs = sorted(dump.iterdir())
    assert len(pngs) == len(placed) and all(p.suffix == ".png" for p in pngs), [p.name for p in pngs]
    for png, event in zip(pngs, placed):
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).shape == (28, 28)
        assert png.stem.endswith(event["label"].replace("/", "-").replace(" ", "_")), (png.name, event["label"])


def test_raw_scores_are_the_int8_output(photo_folder, int8_model, tmp_path):
    from device.runtime import make_interpreter

    # The output's quantization as the file gives it (a mirror-averaged file's scale is not 1/256).
    scale, zero_point = make_interpreter(int8_model).get_output_details()[0]["quantization"]
    out = tmp_path / "raw.jsonl"
    assert cam("--source", photo_folder, "--model", int8_model, "--raw", "--top-k", 10, "--output", out).returncode == 0
    for line in read_jsonl(out):
        if "error" in line:
            continue
        raw = line["raw"]
        assert len(raw) == 10 and all(isinstance(v, int) and -128 <= v <= 127 for v in raw)
        best = max(range(10), key=raw.__getitem__)
        assert line["top"][0][1] == max(s for _, s in line["top"])
        assert abs((raw[best] - zero_point) * scale - line["confidence"]) < 1e-4


def test_default_threshold_is_the_one_calibrated_for_the_model(photo_folder, int8_model, tmp_path):
    import shutil

    from train import card

    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copyfile(int8_model, folder / "model.tflite")
    shutil.copyfile(int8_model.parent / "labels.txt", folder / "labels.txt")
    out = tmp_path / "calibrated.jsonl"
    assert cam("--source", photo_folder, "--model", folder / "model.tflite", "--output", out).returncode == 0
    labels = lambda: {line["label"] for line in read_jsonl(out) if "label" in line}  # noqa: E731
    assert labels() - {"unknown"}  # no card: 0.5
    card.update(folder / "model_card.json", unknown={"threshold": 1.0})  # a card that says: never be sure
    out.unlink()
    assert cam("--source", photo_folder, "--model", folder / "model.tflite", "--output", out).returncode == 0
    assert labels() == {"unknown"}
    out.unlink()  # the flag still wins over the card
    assert cam("--source", photo_folder, "--model", folder / "model.tflite", "--threshold", 0, "--output",
               out).returncode == 0
    assert "unknown" not in labels()
