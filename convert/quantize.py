"""Full-integer int8 post-training quantization with a class-balanced calibration set."""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np

from device.preprocess import prepare
from device.spec import NUM_CLASSES


def calibration_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """size indices into the training set, as equal per class as size allows, chosen by seed."""
    rng = np.random.default_rng(seed)
    per_class = [size // NUM_CLASSES + (1 if c < size % NUM_CLASSES else 0) for c in range(NUM_CLASSES)]
    picks = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in enumerate(per_class)]
    return np.sort(np.concatenate(picks))


def convert_int8(model, calibration_images: np.ndarray) -> bytes:
    """A Keras model and uint8 calibration images (N, 28, 28) -> .tflite bytes, int8 end to end.

    Integer-only builtin ops (no float fallback), int8 input and output. Batch norm is folded
    into the convolutions by the converter. Weights are quantized per channel (the default).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    x = prepare(calibration_images)  # the device's own preprocessing, float32 (N, 28, 28, 1)

    def representative():
        for i in range(len(x)):
            yield [x[i: i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export prints its whole signature
        return converter.convert()


def mirrored(model):
    """The model's scores averaged over the image and its mirror image: (N, 28, 28, 1) -> (N, 10).

    Garments are left-right symmetric and the network was trained on flipped images too, so its two
    views of one garment make a steadier vote than either alone (docs/conversion.md, "Mirror
    averaging"). Both views share the same weights, so the int8 file hardly grows; it runs the
    network twice, so it takes about twice as long per image.
    """
    import keras

    image = keras.Input(model.input_shape[1:], name="image")
    # (N, rows, columns, 1): the columns reversed, as a GATHER. keras.ops.flip converts to REVERSE_V2 version 3,
    # which tflite-runtime 2.14's reference kernels (classify-cam --doctor, make pi-check) cannot load.
    columns = model.input_shape[2]
    mirror = keras.ops.take(image, np.arange(columns - 1, -1, -1), axis=2)
    scores = keras.layers.Average(name="mirror_average")([model(image), model(mirror)])
    return keras.Model(image, scores, name=f"{model.name}_mirrored")


def converted_mirrored(int8_path) -> bool:
    """Whether the int8 file's model card says it was converted with mirror averaging."""
    from pathlib import Path

    from device import card

    return bool(card.read(Path(int8_path).parent / "model_card.json").get("conversion", {}).get("mirror", False))


def converter_version() -> str:
    import tensorflow as tf

    return tf.__version__


class ModelFileError(ValueError):
    """A .keras file that Keras cannot load (damaged, not a model): one line, exit 2."""


def load_keras(path):
    """keras.models.load_model, with any failure as ModelFileError naming the file."""
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # zip, HDF5, JSON and Keras' own errors all mean "not a usable model"
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelFileError(f"cannot load the Keras model {path}: {type(exc).__name__}: {first}") from None
