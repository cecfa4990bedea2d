import shutil

import numpy as np
import pytest

import models


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
    import keras

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
def int8_model(model_variants):
    return model_variants["int8"] / "model.tflite"
