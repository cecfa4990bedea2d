"""One real end-to-end training run on a few hundred images (the session's smoke_run fixture)."""

import json

import numpy as np
import pytest

from device.spec import CLASS_NAMES
from train import reports

RUN_FILES = ["config.json", "metrics.json", "history.json", "model.keras", "confusion.png", "confused_pairs.png",
             "curves.png", "filters.png", "bias.txt"]


def test_run_folder_has_every_report(smoke_run):
    run_dir, metrics = smoke_run
    for name in RUN_FILES:
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert set(saved["classes"]) == set(CLASS_NAMES)
    assert len(saved["bias"]) == 10 and len(saved["confusion"]) == 10
    assert sum(map(sum, saved["confusion"])) == 300  # test_limit
    assert 0.0 <= saved["accuracy"] <= 1.0 and saved["epochs_run"] == 1


def test_smoke_model_learned_something(smoke_run):
    # One epoch on 500 images is far from good, but far above chance (10%).
    assert smoke_run[1]["accuracy"] > 0.3


def test_bias_table_flags_a_class_predicted_too_often():
    y_true = np.repeat(np.arange(10), 10)
    y_pred = y_true.copy()
    y_pred[:30] = 8  # thirty images of T-shirt, Trouser, Pullover called "Bag"
    rows = {r["class"]: r for r in reports.bias_table(y_true, y_pred)}
    assert rows["Bag"]["predicted"] == 40 and rows["Bag"]["flagged"]
    assert not any(r["flagged"] for name, r in rows.items() if name != "Bag")
    assert "over-predicted" in reports.format_bias(list(rows.values()))


def test_hardest_pairs_are_sorted():
    cm = np.eye(10, dtype=int) * 50
    cm[6, 0], cm[4, 2], cm[9, 7] = 9, 4, 6
    pairs = reports.hardest_pairs(cm, k=3)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("Shirt", "T-shirt/top", 9), ("Ankle boot", "Sneaker", 6), ("Coat", "Pullover", 4)]


@pytest.mark.parametrize("realworld", [0.0, 0.3], ids=["plain-arrays", "realworld-batches"])
def test_same_command_same_weights(tmp_path, fmnist, realworld):
    """Fixed seeds and op determinism: two runs of one config give identical weights, on both data paths."""
    import keras

    from train import pipeline
    from train.config import TrainConfig

    cfg = TrainConfig(model="edge", epochs=1, limit=300, val_size=100, test_limit=100, batch_size=64,
                      realistic=realworld, outliers=realworld / 3)
    for name in ("a", "b"):
        pipeline.run(cfg, tmp_path / name, verbose=0)
    a = keras.models.load_model(tmp_path / "a" / "model.keras").get_weights()
    b = keras.models.load_model(tmp_path / "b" / "model.keras").get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_init_starts_from_the_given_weights(tmp_path, smoke_run):
    """Fine-tuning with a learning rate of 0 leaves the starting model's weights exactly as they were."""
    import keras

    from train import pipeline
    from train.config import TrainConfig

    start = smoke_run[0] / "model.keras"
    cfg = TrainConfig(model="tutorial", epochs=1, limit=300, val_size=100, test_limit=100, batch_size=64,
                      learning_rate=0.0, warmup_epochs=0, init=str(start))
    metrics = pipeline.run(cfg, tmp_path / "ft", verbose=0)
    a = keras.models.load_model(start).get_weights()
    b = keras.models.load_model(tmp_path / "ft" / "model.keras").get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert metrics["init_sha256"] and len(metrics["init_sha256"]) == 64


def test_init_that_does_not_exist_is_a_usage_error(tmp_path, capsys):
    from train import cli

    assert cli.main(["--init", str(tmp_path / "none.keras")]) == 2
    assert "no such model" in capsys.readouterr().err


def test_edge_wide_fine_tuning_widens_an_edge_start(tmp_path, fmnist):
    """--model edge-wide --init EDGE.keras: the last stage starts as the edge model's channels, twice."""
    import keras

    from train import models, pipeline
    from train.config import TrainConfig

    start = models.build("edge")
    start.save(tmp_path / "edge.keras")
    cfg = TrainConfig(model="edge-wide", epochs=1, limit=300, val_size=100, test_limit=100, batch_size=64,
                      learning_rate=0.0, warmup_epochs=0, init=str(tmp_path / "edge.keras"))
    pipeline.run(cfg, tmp_path / "wide", verbose=0)
    wide = keras.models.load_model(tmp_path / "wide" / "model.keras")
    k0, k1 = np.split(wide.get_layer("b3_conv").kernel.numpy(), 2, axis=-1)
    np.testing.assert_array_equal(k0, start.get_layer("b3_conv").kernel.numpy())
    np.testing.assert_allclose(k1, k0, atol=0.1 * k0.std())  # the copies, a little apart
    half = wide.get_layer("scores").kernel.numpy().reshape(9, 256, 10)[:, :128]
    np.testing.assert_allclose(half, start.get_layer("scores").kernel.numpy().reshape(9, 128, 10) / 2, rtol=1e-6)


@pytest.mark.parametrize("model", ["edge", "edge-wide"])
def test_init_that_does_not_fit_the_model_is_a_usage_error(smoke_run, capsys, model):
    """A tutorial-CNN file as --init for an edge network: one clear line and exit 2, no traceback."""
    from train import cli

    argv = ["--model", model, "--init", str(smoke_run[0] / "model.keras"), "--epochs", "1", "--limit", "300",
            "--val-size", "100", "--test-limit", "100", "--quiet", "--out-dir", str(smoke_run[0].parent)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "does not fit --model" in err and "Traceback" not in err


def test_init_of_another_width_is_one_line_before_any_data(tmp_path):
    """The shipped edge-wide model as --init for the default (edge) network: exit 2, one line that says what to give,
    before the data set loads or a run folder is made (it was a Keras shape error)."""
    import subprocess
    import sys

    import models
    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "train.cli", "--init", str(models.FLOAT_MODEL), "--run-dir",
                        str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("fashion-train: --init") and "Traceback" not in r.stderr
    assert "does not fit --model edge:" in lines[-1] and "237,098 parameters" in lines[-1]
    assert "conv widths 32/32/64/64/256" in lines[-1] and lines[-1].endswith("--model edge-wide: give that")
    assert not (tmp_path / "run").exists()
