"""fashion-photo-eval, fashion-convert and fashion-train meet a user's mistake with one line, never a traceback."""

import json
import shutil
import subprocess
import sys

import pytest

import models
from tests.conftest import ROOT


def run(module, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def one_line_exit_2(r) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith(("I0000", "W0000", "WARNING"))]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def photo_folder(tmp_path):
    (tmp_path / "photos" / "t-shirt").mkdir(parents=True)
    return tmp_path / "photos"


@pytest.fixture
def shipped(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for f in (models.FLOAT_MODEL, models.INT8_MODEL, models.LABELS, models.CARD):
        shutil.copyfile(f, folder / f.name)
    return folder


@pytest.mark.parametrize("flags", [["--sweep", "a,b"], ["--threshold", "7"], ["--threshold", "x"],
                                   ["--sweep", "0.2,1.5"]])
def test_photo_eval_bad_flags(photo_folder, flags):
    one_line_exit_2(run("tools.photo_eval", photo_folder, *flags))


def test_photo_eval_out_is_a_file(photo_folder, tmp_path):
    (tmp_path / "f").write_text("x")
    assert "is a file" in one_line_exit_2(run("tools.photo_eval", photo_folder, "--out", tmp_path / "f"))


def test_photo_eval_damaged_card(photo_folder, shipped):
    (shipped / "model_card.json").write_text("{ not json")
    assert "damaged" in one_line_exit_2(run("tools.photo_eval", photo_folder, "--model", shipped / "fashion_int8.tflite"))


def test_photo_eval_random_tflite(photo_folder, tmp_path):
    (tmp_path / "x.tflite").write_bytes(b"\0" * 1000)
    one_line_exit_2(run("tools.photo_eval", photo_folder, "--model", tmp_path / "x.tflite"))


def flip_bit(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damaged", ["fashion_int8.tflite", "fashion_float.keras"])
def test_check_only_never_gates_nor_resigns_a_damaged_file(shipped, damaged, tmp_path):
    pytest.importorskip("tensorflow")
    card_before = (shipped / "model_card.json").read_bytes()
    flip_bit(shipped / damaged, 4000)
    r = run("convert.cli", "--check-only", "--model", shipped / "fashion_float.keras", "--output",
            shipped / "fashion_int8.tflite", "--test-limit", "100", "--report", tmp_path / "r.json")
    assert "does not match the sha256" in one_line_exit_2(r)
    assert (shipped / "model_card.json").read_bytes() == card_before


def test_convert_damaged_card(shipped, tmp_path):
    pytest.importorskip("tensorflow")
    (shipped / "model_card.json").write_text("[]")
    r = run("convert.cli", "--check-only", "--model", shipped / "fashion_float.keras", "--output",
            shipped / "fashion_int8.tflite", "--report", tmp_path / "r.json")
    assert "damaged" in one_line_exit_2(r)


def test_convert_random_keras(tmp_path):
    pytest.importorskip("tensorflow")
    (tmp_path / "x.keras").write_bytes(b"PK\x03\x04 not really a zip")
    r = run("convert.cli", "--model", tmp_path / "x.keras", "--output", tmp_path / "o" / "x.tflite", "--report",
            tmp_path / "r.json")
    assert "cannot load the Keras model" in one_line_exit_2(r)


def test_train_random_init(tmp_path):
    pytest.importorskip("tensorflow")
    (tmp_path / "x.keras").write_bytes(b"garbage")
    r = run("train.cli", "--init", tmp_path / "x.keras", "--limit", "500", "--epochs", "1", "--run-dir",
            tmp_path / "run")
    assert "cannot load it as a Keras model" in one_line_exit_2(r)


def test_check_only_on_the_shipped_pair_leaves_the_file_hashes(shipped, tmp_path):
    pytest.importorskip("tensorflow")
    before = json.loads((shipped / "model_card.json").read_text())["files"]
    r = run("convert.cli", "--check-only", "--model", shipped / "fashion_float.keras", "--output",
            shipped / "fashion_int8.tflite", "--test-limit", "300", "--report", tmp_path / "r.json")
    assert r.returncode in (0, 1), r.stderr
    assert json.loads((shipped / "model_card.json").read_text())["files"] == before
