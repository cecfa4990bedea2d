"""fashion-adapt: a site's photos make a bundle that is better there, or a rejected one, or a one-line usage error."""

import json
import subprocess
import sys

import numpy as np
import pytest

from device import card
from tests.conftest import ROOT, make_jpeg
from tools.demo import render_photo

# A tiny recipe and a short Fashion-MNIST check, so a run takes seconds, not minutes.
TINY = ["--replay", "200", "--folds", "3", "--test-limit", "200", "--calibration-size", "50", "--photo-cache"]
# Learn the site's habit hard: its photos carry 90% of the loss.
HARD = ["--epochs", "20", "--learning-rate", "3e-3", "--photo-weight", "0.9"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("photo-cache")


@pytest.fixture(scope="module")
def site(tmp_path_factory, fmnist):
    """Rendered photos: trousers in `Trouser`, and this site's sandals filed under `Bag` (its own habit, which the
    base model cannot know and a model that learnt the site's photos predicts for the sandals it never saw)."""
    images, labels = fmnist.test.images, fmnist.test.labels
    root = tmp_path_factory.mktemp("site") / "items"
    for folder, cls, count in [("Trouser", 1, 4), ("Bag", 5, 12)]:
        (root / folder).mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(labels == cls)[:count]):
            make_jpeg(root / folder / f"{j:02d}.jpg", render_photo(images[i], size=(160, 120), seed=j))
    (root / ".inputs").mkdir()  # what --save-items puts aside: never read
    return root


def adapt(*argv, cache):
    from train import adapt as adapt_mod

    return adapt_mod.main([str(a) for a in argv] + TINY + [str(cache)])


def check_bundle(folder):
    from device.model import Model

    c = json.loads((folder / "model_card.json").read_text())
    for name in ("fashion_float.keras", "fashion_int8.tflite", "labels.txt"):
        assert c["files"][name]["sha256"] == card.sha256(folder / name), name
    model = Model(folder / "fashion_int8.tflite", folder / "labels.txt")  # the device's own checks
    assert model.id == card.sha256(folder / "fashion_int8.tflite")[:12]
    assert len(c["reference_outputs"]["raw"]) == 8 and 0 < c["unknown"]["threshold"] < 1
    return c


def test_a_site_that_gains_gets_a_complete_bundle(site, cache, tmp_path, capsys):
    """Floor off (--floor 0): sandals learnt as bags cost Fashion-MNIST's sandals, the next test's refusal."""
    out = tmp_path / "bundle"
    code = adapt(site, "--out", out, *HARD, "--floor", "0", cache=cache)
    printed = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert code == 0, printed.out + printed.err
    assert report["accepted"] and not (out / "rejected").exists()
    c = check_bundle(out)
    base = card.sha256(ROOT / "models" / "fashion_int8.tflite")
    assert c["adaptation"]["base"]["id"] == base[:12] and c["adaptation"]["recipe"]["photo_weight"] == 0.9
    photos = c["adaptation"]["photos"]
    assert len(photos) == 16 and {p["label"] for p in photos} == {"Trouser", "Bag"}
    assert all(p["sha256"] == card.sha256(site / p["path"]) for p in photos)
    s = report["site"]
    assert s["folders"]["Bag"]["right_before"] == 0 and s["folders"]["Bag"]["right_after"] >= 6
    assert any(ch["photo"].startswith("Bag/") and ch["after"] == "Bag" for ch in s["changed"])
    assert "Fashion-MNIST int8" in (out / "report.txt").read_text() and "Bag" in printed.out
    assert "cross-validating" in printed.err  # progress on stderr


def test_a_bundle_under_the_fashion_mnist_floor_is_rejected(site, cache, tmp_path, capsys):
    out = tmp_path / "bundle"
    code = adapt(site, "--out", out, *HARD, cache=cache)
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert code == 1 and not report["accepted"]
    assert report["site"]["right_after"] > report["site"]["right_before"]  # better on the site, and yet
    assert report["fashion_mnist"]["int8"] < 0.93 and any("floor" in r for r in report["reasons"])
    check_bundle(out / "rejected")
    assert not (out / "fashion_int8.tflite").exists()


def test_a_recipe_that_cannot_gain_is_rejected(site, cache, tmp_path, capsys):
    out = tmp_path / "bundle"
    code = adapt(site, "--out", out, "--learning-rate", "0", cache=cache)
    capsys.readouterr()
    assert code == 1
    assert not (out / "fashion_int8.tflite").exists()  # nothing a device could pick up by mistake
    check_bundle(out / "rejected")
    report = json.loads((out / "report.json").read_text())
    assert not report["accepted"] and report["site"]["right_after"] == report["site"]["right_before"]
    assert any("under the" in r for r in report["reasons"])
    assert "not shipped because" in (out / "report.txt").read_text()


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "train.adapt", *map(str, argv)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("mistake", ["missing", "empty", "no-photos", "bad-map", "unmapped", "out-taken", "no-out"])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, mistake):
    photos = tmp_path / "photos"
    (photos / "Trouser").mkdir(parents=True)
    (photos / "Trouser" / "a.jpg").write_bytes(b"x")
    out = tmp_path / "out"
    argv = [photos, "--out", out]
    if mistake == "missing":
        argv[0] = tmp_path / "none"
    elif mistake == "empty":
        argv[0] = tmp_path / "empty"
        argv[0].mkdir()
    elif mistake == "no-photos":
        (photos / "Trouser" / "a.jpg").unlink()
    elif mistake == "bad-map":  # a class that does not exist, in a folder this site lacks: still a mistake
        (tmp_path / "map.json").write_text(json.dumps({"hat": "Hats"}))
        argv += ["--photo-map", tmp_path / "map.json"]
    elif mistake == "unmapped":
        (photos / "hoodie").mkdir()
    elif mistake == "out-taken":
        out.mkdir()
        (out / "something").write_text("x")
    elif mistake == "no-out":
        argv = argv[:1]
    r = run_cli(*argv)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("fashion-adapt: ")
    assert not (out / "model_card.json").exists()


def test_a_map_may_name_folders_the_site_does_not_have(tmp_path):
    from train import adapt as adapt_mod

    photos = tmp_path / "photos"
    (photos / "pants").mkdir(parents=True)
    (photos / "pants" / "a.jpg").write_bytes(b"x")
    (photos / "Dress").mkdir()  # emptied by a correction on the page: no mistake
    found = adapt_mod.scan_site([photos], str(ROOT / "train" / "photo-maps" / "sites.json"))
    assert [(p.kind, p.classes) for p, _ in found] == [("pants", (1,))]
