"""fashion-train --photos: the folder layout, the mapping and its mistakes, the cache, and a smoke fine-tune."""

import json
import subprocess
import sys

import numpy as np
import pytest

from device.spec import CLASS_NAMES
from tests.conftest import ROOT, make_jpeg
from tools.demo import render_photo
from train import photos


@pytest.fixture
def photo_dir(tmp_path, test_images):
    """A small folder of rendered photos: two mapped kinds, a folder named after a class, and an outlier folder."""
    images, labels = test_images
    root = tmp_path / "photos"
    for kind, cls in [("pants", 1), ("shoes", 7), ("Ankle-boot", 9)]:
        (root / kind).mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(labels == cls)[:5]):
            make_jpeg(root / kind / f"{j}.jpg", render_photo(images[i], seed=j))
    (root / "hat").mkdir()
    for j in range(3):
        make_jpeg(root / "hat" / f"{j}.jpg", np.full((120, 160, 3), 100 + 40 * j, np.uint8))
    (root / "pants" / "broken.jpg").write_bytes(b"not a photo")
    return root


@pytest.fixture
def mapping(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"pants": "Trouser", "shoes": ["Sandal", "Sneaker", "Ankle boot"], "hat": "unknown"}))
    return path


def test_scan_maps_folders_and_class_named_folders(photo_dir, mapping):
    found = photos.scan([photo_dir], mapping, holdout=0.0)
    kinds = {p.kind: p.classes for p in found}
    assert kinds == {"pants": (1,), "shoes": (5, 7, 9), "Ankle-boot": (9,), "hat": ()}
    assert len(found) == 5 + 1 + 5 + 5 + 3
    assert not any(p.held_out for p in found)


def test_folder_names_round_trip_every_label():
    for name in CLASS_NAMES + ("unknown",):
        assert photos.BY_NAME[photos._key(photos.folder_name(name))] == name


def test_holdout_is_stable_and_about_the_share(photo_dir, mapping):
    a = photos.scan([photo_dir], mapping, holdout=0.5)
    b = photos.scan([photo_dir], mapping, holdout=0.5)
    assert [p.held_out for p in a] == [p.held_out for p in b]
    assert 0 < sum(p.held_out for p in a) < len(a)


@pytest.mark.parametrize("mistake, message", [
    ({"pants": "Trousers"}, "'Trousers' is not a class"),
    ({"pants": []}, "expected a class name"),
    ({"pants": 3}, "expected a class name"),
    ({"gloves": "Bag"}, "in none of the --photos folders: gloves"),
])
def test_mapping_mistakes_are_clear(photo_dir, mapping, tmp_path, mistake, message):
    bad = json.loads(mapping.read_text()) | mistake
    mapping.write_text(json.dumps(bad))
    with pytest.raises(photos.PhotoError, match=message):
        photos.scan([photo_dir], mapping)


def test_unmapped_folder_empty_folder_and_missing_folder(photo_dir, mapping, tmp_path):
    (photo_dir / "scarf").mkdir()
    with pytest.raises(photos.PhotoError, match="scarf: folder is not a class name and not in the mapping"):
        photos.scan([photo_dir], mapping)
    (photo_dir / "scarf").rmdir()
    (photo_dir / "Coat").mkdir()
    with pytest.raises(photos.PhotoError, match="Coat: no images"):
        photos.scan([photo_dir], mapping)
    with pytest.raises(photos.PhotoError, match="no such folder"):
        photos.scan([tmp_path / "nowhere"], mapping)
    (tmp_path / "map.json").write_text("{oops")
    with pytest.raises(photos.PhotoError, match="--photo-map"):
        photos.scan([photo_dir], tmp_path / "map.json")


def test_prepared_pictures_are_cached_by_content(photo_dir, mapping, tmp_path):
    found = photos.scan([photo_dir], mapping, holdout=0.0)
    lines = []
    first, readable = photos.prepared(found, 2, tmp_path / "cache", log=lambda *a, **k: lines.append(a[0]))
    assert first.shape == (len(found), 2, 28, 28)
    assert [p.path.name for p, ok in zip(found, readable) if not ok] == ["broken.jpg"]
    assert any("skipped" in line and "broken.jpg" in line for line in lines)
    garments = [i for i, p in enumerate(found) if p.classes and readable[i]]
    assert all(first[i, 0].any() for i in garments)
    assert not np.array_equal(first[garments[0], 0], first[garments[0], 1])  # the variant differs from the photo
    again, _ = photos.prepared(found, 2, tmp_path / "cache", log=lambda *a, **k: None)
    assert np.array_equal(first, again)


def test_segmenting_in_several_processes_gives_the_same_pictures(photo_dir, mapping, tmp_path, monkeypatch):
    found = photos.scan([photo_dir], mapping, holdout=0.0)
    monkeypatch.setattr(photos, "workers", lambda: 2)
    lines = []
    parallel, readable = photos.prepared(found, 2, tmp_path / "two", log=lambda *a, **k: lines.append(a[0]))
    assert any("in 2 processes" in line for line in lines)
    monkeypatch.setattr(photos, "workers", lambda: 1)
    serial, readable_too = photos.prepared(found, 2, tmp_path / "one", log=lambda *a, **k: None)
    assert np.array_equal(parallel, serial) and np.array_equal(readable, readable_too)
    assert not readable.all()  # broken.jpg is reported from a worker too, not raised


def test_targets_and_sampling():
    found = [photos.Photo(None, "a", (1,), False), photos.Photo(None, "b", (5, 7, 9), False),
             photos.Photo(None, "c", (), False), photos.Photo(None, "c", (), False)]
    y = photos.targets(found)
    assert y[0].tolist() == np.eye(10)[1].tolist() and y[1].sum() == 3 and np.allclose(y[2], 0.1)
    w = photos.sampling_weights(found, balance=1.0)
    assert np.isclose(w.sum(), 1) and np.isclose(w[0], w[2] + w[3])  # every folder equally often


def test_set_loss_lets_the_network_pick_within_the_set():
    pytest.importorskip("tensorflow")
    from train.pipeline import set_crossentropy

    loss = set_crossentropy(0.0)
    shoe = np.zeros((1, 10), np.float32)
    shoe[0, [5, 7, 9]] = 1
    all_sneaker = np.full((1, 10), 1e-6, np.float32)
    all_sneaker[0, 7] = 1 - 9e-6
    spread = np.full((1, 10), 0.1, np.float32)
    assert float(loss(shoe, all_sneaker)[0]) < 1e-4  # any one shoe class is right
    assert float(loss(shoe, spread)[0]) == pytest.approx(-np.log(0.3), rel=1e-5)
    one_hot = np.eye(10, dtype=np.float32)[[2]]
    assert float(loss(one_hot, spread)[0]) == pytest.approx(-np.log(0.1), rel=1e-5)


def run_train(*args):
    return subprocess.run([sys.executable, "-m", "train.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_wrong_mapping_stops_before_training(photo_dir, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"pants": "Jeans", "shoes": "Sneaker", "hat": "unknown"}))
    r = run_train("--photos", photo_dir, "--photo-map", tmp_path / "bad.json", "--run-dir", tmp_path / "run")
    assert r.returncode == 2 and "'Jeans' is not a class" in r.stderr
    assert not (tmp_path / "run").exists() and "Traceback" not in r.stderr


def test_smoke_fine_tune_reads_photos(photo_dir, mapping, tmp_path, fmnist):
    pytest.importorskip("tensorflow")
    r = run_train("--model", "tutorial", "--photos", photo_dir, "--photo-map", mapping, "--photo-share", "0.3",
                  "--photo-holdout", "0.3", "--photo-variants", "2", "--photo-cache", tmp_path / "cache",
                  "--epochs", "1", "--limit", "1000", "--val-size", "200", "--test-limit", "200",
                  "--run-dir", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = json.loads((tmp_path / "run" / "photos.json").read_text())
    assert result["photos"] == 18 and result["trained_on"] + result["held_out"] == 18  # the broken one dropped
    assert result["held_out"] > 0 and set(result["held_out_scores"]["folders"]) <= {"pants", "shoes", "Ankle-boot", "hat"}
    assert "held-out real photos" in r.stdout
    # The real-photo figure beside Fashion-MNIST's at the end: strict accuracy on the photos held out.
    end = r.stdout.strip().splitlines()[-3:]
    strict = 100 * result["held_out_scores"]["strict"]
    assert end[0].startswith("test accuracy ") and end[2].startswith("wrote ")
    assert end[1].startswith(f"real photos: strict accuracy {strict:.1f}% on the {result['held_out']} held out"), end
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["photos"] == [str(photo_dir)] and config["photo_share"] == 0.3
