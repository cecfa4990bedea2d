"""fashion-convert replaces the shipped models/ files only when asked with --ship."""

import json

import models
from convert import cli
from device import card

SHIPPED = [models.FLOAT_MODEL, models.INT8_MODEL, models.LABELS, models.CARD]


def shipped_sha256() -> dict:
    return {p.name: card.sha256(p) for p in SHIPPED}


def test_convert_without_ship_leaves_models_untouched(smoke_run, tmp_path, monkeypatch, capsys):
    """No --ship, no --output: the int8 file, its labels and card go to build/convert/ (under the working folder)."""
    run_dir, _ = smoke_run
    before = shipped_sha256()
    monkeypatch.chdir(tmp_path)
    code = cli.main(["--model", str(run_dir / "model.keras"), "--calibration-size", "50", "--test-limit", "200",
                     "--tolerance", "100", "--class-tolerance", "100", "--min-agreement", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert shipped_sha256() == before
    written = tmp_path / "build" / "convert" / "fashion_int8.tflite"
    assert written.is_file() and (written.parent / "labels.txt").is_file()
    made = json.loads((written.parent / "model_card.json").read_text())
    assert made["files"]["fashion_int8.tflite"]["sha256"] == card.sha256(written)
    assert made["conversion"]["source_sha256"] == card.sha256(run_dir / "model.keras")
    # It says which float model it converted, where it wrote, and that models/ is as it was.
    assert f"wrote {cli.DEFAULT_OUTPUT} (converted from {run_dir / 'model.keras'})" in out
    assert "the shipped models/ are unchanged" in out


def test_the_shipped_file_as_output_needs_ship(tmp_path, capsys):
    before = shipped_sha256()
    assert cli.main(["--output", str(models.INT8_MODEL), "--report", str(tmp_path / "r.json")]) == 2
    assert "give --ship" in capsys.readouterr().err
    assert cli.main(["--ship", "--output", str(tmp_path / "x.tflite"), "--report", str(tmp_path / "r.json")]) == 2
    assert "not both" in capsys.readouterr().err
    assert shipped_sha256() == before and not (tmp_path / "r.json").exists()
