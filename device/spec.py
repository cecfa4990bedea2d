"""The model's contract, shared by train/, convert/ and device/.

Class names, the input shape and the input scaling live here and nowhere else.
This module imports only NumPy, so the device can use it without TensorFlow.
"""

import numpy as np

# Fashion-MNIST label order; models/labels.txt holds the same ten lines.
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
UNKNOWN = "unknown"

# One greyscale 28x28 image, height x width x channels (batch dimension added by callers).
IMAGE_SIZE = 28
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

# Real input value = pixel / PIXEL_SCALE, so 0.0 is black background and 1.0 a bright garment.
PIXEL_SCALE = 255.0


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 images (..., 28, 28) or (..., 28, 28, 1) -> float32 (..., 28, 28, 1) in [0, 1].

    This is the last step of every path into the model: training, calibration,
    evaluation and the camera.
    """
    images = np.asarray(images)
    if images.shape[-1] != 1:
        images = images[..., np.newaxis]
    if images.shape[-3:] != INPUT_SHAPE:
        raise ValueError(f"expected images of shape (..., 28, 28[, 1]), got {images.shape}")
    return images.astype(np.float32) / PIXEL_SCALE


def picture(x: np.ndarray) -> np.ndarray:
    """A model input (28, 28, 1) float in [0, 1] -> the (28, 28) uint8 picture it is (scale's inverse)."""
    return np.round(np.asarray(x)[..., 0] * PIXEL_SCALE).astype(np.uint8)


def folder_name(label: str) -> str:
    """The folder a label's photos live in: 'T-shirt/top' -> 'T-shirt-top', 'Ankle boot' -> 'Ankle-boot'.

    classify-cam --save-items writes these folders and fashion-train --photos reads them.
    """
    return label.replace("/", "-").replace(" ", "-")
