"""The three models compared in the README: dense baseline, tutorial CNN, and our edge CNN.

Each builder returns an uncompiled keras.Model taking (28, 28, 1) floats in [0, 1] and
giving ten softmax scores in label order (device.spec).
"""

from __future__ import annotations

import keras
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


def build_edge(width: int = 32, dropout: float = 0.3) -> keras.Model:
    """Our edge CNN: three VGG-style stages, 28 -> 14 -> 7 -> 3, then a small dense head.

    Shapes for width=32: (28,28,32) x2 -> pool -> (14,14,64) x2 -> pool -> (7,7,128) -> pool
    -> (3,3,128) flattened to 1152 -> 10. About 170k parameters, so about 180 KB as int8.
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = _conv_bn_relu(inputs, width, "b1a")
    x = _conv_bn_relu(x, width, "b1b")
    x = layers.MaxPooling2D(name="pool1")(x)
    x = _conv_bn_relu(x, 2 * width, "b2a")
    x = _conv_bn_relu(x, 2 * width, "b2b")
    x = layers.MaxPooling2D(name="pool2")(x)
    x = _conv_bn_relu(x, 4 * width, "b3")
    x = layers.MaxPooling2D(name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    # float32 scores even when training in mixed precision: softmax needs the range.
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="scores")(x)
    return keras.Model(inputs, outputs, name="edge")


BUILDERS = {"edge": build_edge, "tutorial": build_tutorial, "dense": build_dense}


def build(name: str) -> keras.Model:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(BUILDERS)}")
    return BUILDERS[name]()
