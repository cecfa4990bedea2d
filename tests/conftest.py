"""Shared fixtures: the real parts (need), classify-cam run as a user runs it, the data set, one small model.

The lean runs of make test copy tests/ out of the checkout and set FASHION_EDGE_ROOT, so that what
they import and run is the installed wheel, not the checkout's device/.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import models

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(os.environ.get("FASHION_EDGE_ROOT") or Path(__file__).resolve().parents[1])
REAL_PHOTOS = ROOT.parent / "shared" / "real-photos-dev"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Where the processes under test start: never the checkout, whose device/ would shadow the installed one.
NEUTRAL = Path(tempfile.gettempdir())
# classify-cam without --model runs the bundle installed with --install-model: in the tests, none (an empty store of
# their own), never the one in the real home's ~/.local/state (tests/device/test_install.py sets its own per test).
os.environ["CLASSIFY_CAM_MODELS"] = tempfile.mkdtemp(prefix="classify-cam-models-")


def need(present, what: str, install: str) -> None:
    """A real part a test needs. Absent: under CI=true the test fails with one line naming what to install;
    on a developer's machine it skips, saying the same."""
    if present:
        return
    message = f"{what} is missing: {install}"
    if CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def mosquitto() -> str:
    path = shutil.which("mosquitto")  # Debian puts it in /usr/sbin: on root's PATH, not on every user's
    need(path, "mosquitto (a real MQTT broker) on PATH", "sudo apt-get install mosquitto mosquitto-clients, "
         "and /usr/sbin on PATH")
    return path


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    need(path, "chromium (a real browser for the web page)", "sudo apt-get install chromium")
    return path


def command(name: str) -> list[str]:
    """An installed console script (classify-cam, stockroom-tally) of the Python running the tests."""
    script = Path(sys.executable).parent / name
    assert script.is_file(), f"{script} is not installed: pip install the project into this environment"
    return [str(script)]


def classify_cam(*args, timeout=60, cwd=None, **kw) -> subprocess.CompletedProcess:
    """classify-cam as a user runs it: the installed command, started outside the checkout."""
    return subprocess.run(command("classify-cam") + [str(a) for a in args], cwd=cwd or NEUTRAL, capture_output=True,
                          text=True, timeout=timeout, **kw)


@pytest.fixture(scope="session")
def fmnist():
    from train import data

    try:
        return data.load("fashion", download=False)
    except data.DataNotFound as exc:
        need(False, f"Fashion-MNIST ({exc})", "sudo apt-get install dataset-fashion-mnist, or make setup")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, fmnist):
    pytest.importorskip("tensorflow", reason="needs the train extra (a lean device environment has no TensorFlow)")
    """A real, tiny training run: the tutorial CNN, 1,000 images, one epoch. Returns (run_dir, metrics).

    The tutorial CNN, not the edge one: batch norm's running statistics need more than a
    handful of steps before the model predicts well in inference mode.
    """
    from train import pipeline
    from train.config import TrainConfig

    run_dir = tmp_path_factory.mktemp("smoke-run")
    cfg = TrainConfig(model="tutorial", epochs=1, limit=1200, val_size=200, test_limit=300, batch_size=32,
                      warmup_epochs=0)
    metrics = pipeline.run(cfg, run_dir, verbose=0)
    return run_dir, metrics


@pytest.fixture(scope="session")
def test_images(fmnist):
    """The first 200 test images and labels (uint8)."""
    return fmnist.test.images[:200], fmnist.test.labels[:200]


def make_jpeg(path: Path, image: np.ndarray) -> Path:
    """Write an RGB or grey uint8 array as an image file (OpenCV wants BGR)."""
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    assert cv2.imwrite(str(path), bgr)
    return path

def _convert(keras_model, kind: str, calibration: np.ndarray) -> bytes:
    """The same small model as float32, int8 or uint8-input/output TFLite."""
    import tensorflow as tf

    from convert.quantize import convert_int8
    from device.preprocess import prepare

    if kind == "int8":
        return convert_int8(keras_model, calibration)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if kind == "uint8":
        x = prepare(calibration)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[i: i + 1]] for i in range(len(x)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


@pytest.fixture(scope="session")
def model_variants(smoke_run, fmnist, tmp_path_factory):
    """{'float32' | 'int8' | 'uint8': folder with model.tflite and labels.txt}, plus the Keras model."""
    keras = pytest.importorskip("keras", reason="needs the train extra (a lean device environment has no Keras)")

    run_dir, _ = smoke_run
    keras_model = keras.models.load_model(run_dir / "model.keras")
    out = {}
    for kind in ("float32", "int8", "uint8"):
        folder = tmp_path_factory.mktemp(f"model-{kind}")
        (folder / "model.tflite").write_bytes(_convert(keras_model, kind, fmnist.train.images[:100]))
        shutil.copyfile(models.LABELS, folder / "labels.txt")
        out[kind] = folder
    out["keras"] = keras_model
    return out


@pytest.fixture
def int8_model():
    """The shipped int8 model (labels.txt and model_card.json beside it): what the device runs."""
    assert models.INT8_MODEL.is_file(), "models/fashion_int8.tflite is missing"
    return models.INT8_MODEL
