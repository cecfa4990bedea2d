import json

import numpy as np

from tools import photo_eval
from tools.demo import render_photo
from tests.conftest import make_jpeg


def test_score_counts_strict_group_and_unknown():
    rows = [{"kind": "t-shirt", "label": "T-shirt/top"}, {"kind": "t-shirt", "label": "Shirt"},
            {"kind": "shoes", "label": "Ankle boot"}, {"kind": "shoes", "label": "unknown"},
            {"kind": "hat", "label": "unknown"}, {"kind": "skirt", "label": "Dress"}]
    s = photo_eval.score(rows)
    assert (s["in_catalogue"], s["out_of_catalogue"]) == (4, 2)
    assert s["strict"] == 0.5  # T-shirt right, Shirt wrong, Ankle boot right, unknown wrong
    assert s["group"] == 0.75  # Shirt is still a top
    assert s["unknown_in_catalogue"] == 0.25 and s["unknown_out_of_catalogue"] == 0.5
    assert s["confusion"]["shoes"] == {"Ankle boot": 1, "unknown": 1}


def test_mapping_follows_the_real_photos_readme():
    assert photo_eval.FOLDERS["shoes"][0] == ("Sandal", "Sneaker", "Ankle boot")
    assert {k for k, (labels, _) in photo_eval.FOLDERS.items() if not labels} == {"hat", "shorts", "skirt"}


def test_threshold_turns_unsure_answers_into_unknown():
    rows = [{"kind": "pants", "top": "Trouser", "confidence": 0.9}, {"kind": "hat", "top": "Bag", "confidence": 0.3}]
    assert [r["label"] for r in photo_eval.with_threshold(rows, 0.5)] == ["Trouser", "unknown"]
    assert [r["label"] for r in photo_eval.with_threshold(rows, 0.2)] == ["Trouser", "Bag"]
    assert [r["label"] for r in photo_eval.with_threshold(rows, 0.95)] == ["unknown", "unknown"]


def render_folder(root, fmnist, kinds, per_kind: int) -> None:
    """root/<kind>/<j>.jpg: per_kind test garments of each (kind, class) rendered as camera photos."""
    images, labels = fmnist.test.images, fmnist.test.labels
    for kind, cls in kinds:
        (root / kind).mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(labels == cls)[:per_kind]):
            make_jpeg(root / kind / f"{j}.jpg", render_photo(images[i], seed=j))


def test_command_on_a_synthetic_folder(tmp_path, int8_model, fmnist, capsys):
    render_folder(tmp_path, fmnist, [("t-shirt", 0), ("pants", 1), ("shoes", 7)], 4)
    (tmp_path / "hat").mkdir()
    make_jpeg(tmp_path / "hat" / "flat.jpg", np.full((240, 320, 3), 190, np.uint8))
    out = tmp_path / "out"
    assert photo_eval.main([str(tmp_path), "--model", str(int8_model), "--out", str(out), "--sweep", "0,1"]) == 0
    sweep = capsys.readouterr().out.split("threshold")[-1].splitlines()[1:]
    assert sweep[0].split()[0] == "0.00" and sweep[0].split()[3:] == ["0.0", "0.0"]  # nothing unknown at 0
    assert sweep[1].split()[1:] == ["0.0", "0.0", "100.0", "100.0"]  # everything unknown at 1
    result = json.loads((out / "results.json").read_text())
    assert result["photos"] == 13 and result["in_catalogue"] == 12
    assert 0 <= result["strict"] <= result["group"] <= 1
    assert len(result["photos_list"]) == 13


def test_compare_puts_two_models_side_by_side(tmp_path, int8_model, fmnist, capsys):
    """--compare: both models on the same photos, columns told apart even when both files have the same name."""
    import shutil

    photos = tmp_path / "photos"
    render_folder(photos, fmnist, [("pants", 1), ("shoes", 7)], 3)
    other = tmp_path / "other" / int8_model.name
    other.parent.mkdir()
    shutil.copy(int8_model, other)
    shutil.copy(int8_model.parent / "labels.txt", other.parent / "labels.txt")
    out = tmp_path / "out"
    assert photo_eval.main([str(photos), "--model", str(int8_model), "--compare", str(other), "--out", str(out),
                            "--threshold", "0.3"]) == 0
    printed = capsys.readouterr().out
    assert f"A: {int8_model} (shipped)\nB: {other}\n" in printed
    table = printed.split(f"B: {other}\n")[1].splitlines()
    assert table[0].split() == ["A", "B"]
    result = json.loads((out / "results.json").read_text())
    assert result["compare"]["model"] == str(other) and result["compare"]["photos"] == 6
    strict = next(line for line in table if line.startswith("strict %")).split()[2:]
    assert strict == [f"{100 * result['strict']:.1f}", f"{100 * result['compare']['strict']:.1f}"]
    assert next(line for line in table if line.strip().startswith("pants")).split()[1:3] == [
        f"{100 * result['folders']['pants']['right']:.1f}", f"{100 * result['compare']['folders']['pants']['right']:.1f}"]


def test_compare_with_a_missing_model_is_a_usage_error(tmp_path, int8_model, capsys):
    (tmp_path / "pants").mkdir()
    make_jpeg(tmp_path / "pants" / "0.jpg", np.full((240, 320, 3), 190, np.uint8))
    assert photo_eval.main([str(tmp_path), "--model", str(int8_model), "--compare", str(tmp_path / "none.tflite"),
                            "--out", str(tmp_path / "out")]) == 2
    assert "--compare" in capsys.readouterr().err


def test_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert photo_eval.main([str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err



def test_reads_the_save_items_layout(tmp_path, int8_model, fmnist):
    """The tree classify-cam --save-items writes: label-named folders, `unknown`, and the model inputs in a hidden
    folder, which are no photos to count."""
    items = tmp_path / "items"
    render_folder(items, fmnist, [("Trouser", 1), ("Ankle-boot", 9)], 3)
    (items / "unknown").mkdir()
    make_jpeg(items / "unknown" / "u.jpg", np.full((240, 320, 3), 190, np.uint8))
    (items / ".inputs").mkdir()
    make_jpeg(items / ".inputs" / "0.jpg", np.full((240, 320, 3), 90, np.uint8))
    out = tmp_path / "out"
    assert photo_eval.main([str(items), "--model", str(int8_model), "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert (result["photos"], result["in_catalogue"], result["out_of_catalogue"]) == (7, 6, 1)
    assert set(result["folders"]) == {"Trouser", "Ankle-boot", "unknown"}
    assert all(p["kind"] != ".inputs" for p in result["photos_list"])


def test_photo_map_names_other_folders(tmp_path, int8_model, fmnist, capsys):
    photos = tmp_path / "photos"
    render_folder(photos, fmnist, [("jeans", 1)], 2)
    (tmp_path / "map.json").write_text(json.dumps({"jeans": "Trouser"}))
    out = tmp_path / "out"
    assert photo_eval.main([str(photos), "--model", str(int8_model), "--out", str(out), "--photo-map",
                            str(tmp_path / "map.json")]) == 0
    assert json.loads((out / "results.json").read_text())["folders"]["jeans"]["photos"] == 2
    (tmp_path / "map.json").write_text(json.dumps({"jeans": "Trousers"}))
    assert photo_eval.main([str(photos), "--model", str(int8_model), "--out", str(out), "--photo-map",
                            str(tmp_path / "map.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'Trousers' is not a class" in err
