"""Small pure-NumPy adapters around a TFLite interpreter: set the input, read the scores.

Quantization is read from the model's own tensors, never assumed, so float32, uint8 and int8
models all work through the same two functions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from device.spec import IMAGE_SIZE


class Class(NamedTuple):
    id: int
    score: float


def input_details(interpreter) -> dict:
    return interpreter.get_input_details()[0]


def output_details(interpreter) -> dict:
    return interpreter.get_output_details()[0]


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Real values -> the tensor's dtype: q = round(x / scale) + zero_point, clipped to the dtype's range."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    if not scale:
        raise ValueError(f"integer tensor {detail['name']!r} has no quantization scale")
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    """The tensor's dtype -> real values: scale * (q - zero_point), in int64 so uint8/int8 never wrap."""
    if np.issubdtype(q.dtype, np.floating):
        return q.astype(np.float32)
    scale, zero_point = detail["quantization"]
    if not scale:
        raise ValueError(f"integer tensor {detail['name']!r} has no quantization scale")
    return (scale * (q.astype(np.int64) - zero_point)).astype(np.float32)


def check_model(interpreter, num_labels: int) -> None:
    """Refuse a model this device cannot use: a single-channel 28x28 input and one score per label."""
    inp, out = input_details(interpreter), output_details(interpreter)
    shape = tuple(int(s) for s in inp["shape"])
    if len(shape) != 4 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ValueError(f"model input is {shape}; expected one 28x28 single-channel image (1, 28, 28, 1)")
    n_out = int(out["shape"][-1])
    if n_out != num_labels:
        raise ValueError(f"model gives {n_out} scores but there are {num_labels} labels")


def set_input(interpreter, image: np.ndarray) -> None:
    """image: float32 (28, 28, 1) or (1, 28, 28, 1), real values in [0, 1]."""
    detail = input_details(interpreter)
    x = np.asarray(image, np.float32).reshape(detail["shape"])
    interpreter.set_tensor(detail["index"], quantize(x, detail))


def raw_output(interpreter) -> np.ndarray:
    """The output tensor as stored (int8 for the shipped model), shape (10,)."""
    detail = output_details(interpreter)
    return interpreter.get_tensor(detail["index"])[0].copy()


def scores(interpreter) -> np.ndarray:
    """Dequantized class scores, float32 (10,)."""
    return dequantize(raw_output(interpreter), output_details(interpreter))


def classify(interpreter, image: np.ndarray) -> np.ndarray:
    """One image in, ten real scores out."""
    set_input(interpreter, image)
    interpreter.invoke()
    return scores(interpreter)


def top_classes(score: np.ndarray, top_k: int = 1, threshold: float = 0.0) -> list[Class]:
    """The top_k classes with score >= threshold, best first; ties go to the lower class id.

    A stable sort matters: int8 scores tie often, and an unstable one breaks ties differently on
    ARM and x86 (seen in make pi-check).
    """
    order = np.argsort(-np.asarray(score, np.float64), kind="stable")[:top_k]
    return [Class(int(i), float(score[i])) for i in order if score[i] >= threshold]


def fingerprint(interpreter, count: int = 8, seed: int = 0) -> list[list]:
    """The raw outputs for `count` fixed images of random pixels: the model's arithmetic, in integers.

    NumPy's PCG64 gives the same pixels on every machine, so with the reference kernels these
    integers must match the ones recorded in the model card on the machine that built the model.
    Random pixels keep most scores away from 0 and 255, where a rounding difference would hide.
    """
    pixels = np.random.default_rng(seed).integers(0, 256, (count, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
    outputs = []
    for image in pixels:
        set_input(interpreter, image.astype(np.float32) / 255.0)
        interpreter.invoke()
        outputs.append(raw_output(interpreter).tolist())
    return outputs
