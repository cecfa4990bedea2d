"""make model's recipe (train/rebuild.py): its stages, and what the card records. The rebuild itself is not
part of make test (an hour or more); these check the plan and the card's writing."""

import json
import os

from train.card import dumps
from train import rebuild


def test_the_plan_is_training_from_scratch_then_a_photo_finetune_then_convert(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    assert rebuild.main(["--photos", str(photos), "--work", str(tmp_path / "work"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("]")[0] for line in lines] == ["[train", "[finetune", "[convert"]
    assert "--init" not in lines[0] and "--ship" not in lines[0] and "--photos" in lines[0]
    # stage 2 starts from stage 1's run folder, with the same photos (so the same ones held out), and ships
    first = os.path.relpath(rebuild.first_stage_model(tmp_path / "work"), rebuild.ROOT)
    assert f"--init {first}" in lines[1] and "--ship" in lines[1]
    assert "--photos" in lines[1] and "--photo-share 0.3" in lines[1]
    assert "--photos" in lines[2] and "fashion-convert --mirror" in lines[2]
    assert "--ship" in lines[2]  # fashion-convert replaces models/ only when asked
    assert rebuild.main(["--photos", str(photos), "--from-stage", "convert", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("]")[0] for line in lines] == ["[convert"]


def test_finetune_alone_needs_stage_one_model(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    assert rebuild.main(["--photos", str(photos), "--work", str(tmp_path / "work"), "--from-stage", "finetune"]) == 2
    assert "starts from stage 1's model" in capsys.readouterr().err
    assert not (tmp_path / "work" / "shipped-before").exists()  # stopped before touching anything


def test_missing_photos_is_exit_2(tmp_path, capsys):
    assert rebuild.main(["--photos", str(tmp_path / "none"), "--dry-run"]) == 2
    assert "real training photos are not at" in capsys.readouterr().err


def test_a_failed_or_under_the_bar_rebuild_leaves_models_as_it_was(tmp_path, monkeypatch, capsys):
    shipped = [tmp_path / "models" / name for name in ("float.keras", "int8.tflite", "labels.txt", "model_card.json")]
    shipped[0].parent.mkdir()
    for path in shipped:
        path.write_text("before")
    monkeypatch.setattr(rebuild, "shipped_files", lambda: shipped)
    monkeypatch.setattr(rebuild, "record", lambda plan: None)

    def stage_writing(accuracy: float, exit_code: int = 0):
        card = json.dumps({"conversion": {"metrics": {"int8": {"accuracy": accuracy}}}})
        script = (f"import pathlib, sys\nfor p in {[str(p) for p in shipped[:-1]]!r}: pathlib.Path(p).write_text('new')\n"
                  f"pathlib.Path({str(shipped[-1])!r}).write_text({card!r})\nsys.exit({exit_code})")
        return lambda photos, work: [("train", ["python", "-c", script])]

    argv = ["--photos", str(tmp_path), "--work", str(tmp_path / "work")]
    monkeypatch.setattr(rebuild, "stages", stage_writing(0.9312))
    assert rebuild.main(argv) == 1
    assert "scores 93.12% on Fashion-MNIST, under the 94.0%" in capsys.readouterr().err
    assert [p.read_text() for p in shipped] == ["before"] * 4
    assert (tmp_path / "work" / "candidate" / "float.keras").read_text() == "new"
    monkeypatch.setattr(rebuild, "stages", stage_writing(0.95, exit_code=3))
    assert rebuild.main(argv) == 3
    assert [p.read_text() for p in shipped] == ["before"] * 4
    monkeypatch.setattr(rebuild, "stages", stage_writing(0.9401))
    assert rebuild.main(argv) == 0
    assert shipped[0].read_text() == "new" and "int8 94.01%" in capsys.readouterr().out


def test_card_json_is_compact_and_round_trips():
    value = {"files": {"a.tflite": {"sha256": "0" * 64, "bytes": 5}}, "raw": [[-1, 2, 3]] * 8,
             "nested": {"classes": {f"c{i}": {"precision": 0.9, "recall": 0.8} for i in range(10)}}}
    text = dumps(value)
    assert json.loads(text) == value
    assert len(text.splitlines()) < 30 and all(len(line) <= 120 for line in text.splitlines())


def test_shipped_card_is_short_and_holds_what_the_device_reads():
    import models

    text = models.CARD.read_text()
    c = json.loads(text)
    assert len(text.splitlines()) <= 200
    assert {"files", "unknown", "reference_outputs", "conversion", "training"} <= set(c)
    assert 0 < c["unknown"]["threshold"] < 1 and len(c["reference_outputs"]["raw"]) == 8
