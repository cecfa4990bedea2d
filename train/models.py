"""The three models compared in the README: dense baseline, tutorial CNN, and our edge CNN.

Each builder returns an uncompiled keras.Model taking (28, 28, 1) floats in [0, 1] and
giving ten softmax scores in label order (device.spec).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from device.spec import INPUT_SHAPE, NUM_CLASSES


def build_dense() -> keras.Model:
    """The classic baseline: Flatten, Dense 256 ReLU, Dropout 0.2, softmax."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name="dense",
    )


def build_tutorial() -> keras.Model:
    """The tutorial CNN: Conv 32 / pool / Conv 64 / pool / Dense 128 / Dropout 0.4."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.4),
            layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name="tutorial",
    )


def _conv_bn_relu(x, filters: int, name: str):
    # No bias: batch norm supplies it, and the converter folds BN into the conv weights.
    # ReLU6 bounds activations to [0, 6], which keeps int8 activation ranges tight.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def build_edge(width: int = 32, dropout: float = 0.3, top: int | None = None) -> keras.Model:
    """Our edge CNN: three VGG-style stages, 28 -> 14 -> 7 -> 3, then a small dense head.

    Shapes for width=32: (28,28,32) x2 -> pool -> (14,14,64) x2 -> pool -> (7,7,128) -> pool
    -> (3,3,128) flattened to 1152 -> 10. About 151k parameters, so about 160 KB as int8.
    top: the last stage's channels (default 4 * width; edge-wide uses 256).
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = _conv_bn_relu(inputs, width, "b1a")
    x = _conv_bn_relu(x, width, "b1b")
    x = layers.MaxPooling2D(name="pool1")(x)
    x = _conv_bn_relu(x, 2 * width, "b2a")
    x = _conv_bn_relu(x, 2 * width, "b2b")
    x = layers.MaxPooling2D(name="pool2")(x)
    x = _conv_bn_relu(x, top or 4 * width, "b3")
    x = layers.MaxPooling2D(name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    # float32 scores even when training in mixed precision: softmax needs the range.
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="scores")(x)
    return keras.Model(inputs, outputs, name="edge")


def build_edge_wide() -> keras.Model:
    """The edge CNN with twice the channels in its last stage (256): (3,3,256) flattened to 2304 -> 10.

    About 237k parameters (250 KB as int8), 16% more multiply-adds. Made to be fine-tuned from a
    trained edge model (`widen`), not trained from scratch.
    """
    return build_edge(top=256)


def widen(start: keras.Model, wide: keras.Model, noise: float = 0.01, seed: int = 0) -> keras.Model:
    """Load a trained edge model's weights into `wide` (edge-wide) so that it scores images (nearly) the same.

    Net2Net's widening: each last-stage channel is duplicated (the same filter plus a little noise,
    `noise` times the filters' spread, so the copies can part; the same batch-norm statistics), and
    the scores layer gives each copy half the original's weight. With noise=0 the scores are exactly
    the starting model's.
    """
    rng = np.random.default_rng(seed)
    channels = start.get_layer("b3_conv").filters
    copies, left = divmod(wide.get_layer("b3_conv").filters, channels)
    if left or copies < 1:
        raise ValueError(f"cannot widen {channels} channels to {wide.get_layer('b3_conv').filters}: not a multiple")
    for layer in wide.layers:
        weights = start.get_layer(layer.name).get_weights() if layer.weights else []
        if layer.name == "b3_conv":
            (kernel,) = weights
            weights = [np.concatenate([kernel] + [kernel + rng.normal(0, noise * kernel.std(), kernel.shape)
                                                  .astype(kernel.dtype) for _ in range(copies - 1)], axis=-1)]
        elif layer.name == "b3_bn":
            weights = [np.concatenate([w] * copies) for w in weights]
        elif layer.name == "scores":
            kernel, bias = weights
            per_position = kernel.reshape(-1, channels, kernel.shape[-1])  # flatten order: (row, col, channel)
            kernel = np.concatenate([per_position / copies] * copies, axis=1).reshape(-1, kernel.shape[-1])
            weights = [kernel, bias]
        if weights:
            layer.set_weights(weights)
    return wide


def save(model: keras.Model, path) -> None:
    """model.save, made reproducible: the same weights give the same .keras file, byte for byte.

    Keras writes the time into metadata.json ("date_saved") and as the zip entry time of the
    weights; both are set to the zip format's epoch (1980-01-01) here. config.json names objects that
    several layers share by their Python id(), which differs from run to run; they are renumbered in
    order. So `make model` run twice gives identical files. Written beside the target, then moved into place.
    """
    import json
    import os
    import zipfile
    from pathlib import Path

    path = Path(path)
    raw = path.with_name(path.name + ".raw.keras")
    model.save(raw)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "1980-01-01@00:00:00"
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = renumber_shared_objects(data.decode()).encode()
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data,
                         compress_type=zipfile.ZIP_DEFLATED)
    raw.unlink()
    os.replace(tmp, path)


def renumber_shared_objects(config: str) -> str:
    """config.json with each "shared_object_id" (an id() in memory) replaced by 1, 2, ... in order of appearance."""
    import re

    numbers = {}
    return re.sub(r'"shared_object_id": (\d+)',
                  lambda m: f'"shared_object_id": {numbers.setdefault(m.group(1), len(numbers) + 1)}', config)


BUILDERS = {"edge": build_edge, "edge-wide": build_edge_wide, "tutorial": build_tutorial, "dense": build_dense}


def build(name: str) -> keras.Model:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(BUILDERS)}")
    return BUILDERS[name]()
