"""Shared fixtures: the real data set (skips, saying why, where it is absent) and one small trained model."""

import os
from pathlib import Path

import shutil

import numpy as np
import pytest

import models

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
REAL_PHOTOS = ROOT.parent / "shared" / "real-photos-dev"


@pytest.fixture(scope="session")
def fmnist():
    from train import data

    try:
        return data.load("fashion", download=False)
    except data.DataNotFound as exc:
        pytest.skip(f"Fashion-MNIST is not installed here: {exc}")


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
