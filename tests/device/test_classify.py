import numpy as np
import pytest

from device import card, classify
from device.preprocess import prepare
from device.runtime import make_interpreter


def detail(dtype, scale=0.0, zero_point=0):
    return {"name": "t", "dtype": dtype, "quantization": (scale, zero_point)}


def test_quantize_rounds_and_clips_int8():
    d = detail(np.int8, 1 / 255, -128)
    q = classify.quantize(np.array([0.0, 128 / 255, 1.0, 2.0, -1.0], np.float32), d)
    assert q.dtype == np.int8
    assert q.tolist() == [-128, 0, 127, 127, -128]  # pixel 128 -> 0; out of range clipped


def test_quantize_uint8_and_float_pass_through():
    assert classify.quantize(np.array([0.0, 1.0]), detail(np.uint8, 1 / 255, 0)).tolist() == [0, 255]
    x = np.array([0.25], np.float64)
    assert classify.quantize(x, detail(np.float32)).dtype == np.float32


def test_dequantize_is_int64_safe():
    # uint8 0 with zero point 128: uint8 arithmetic would wrap to +128.
    assert classify.dequantize(np.array([0, 255], np.uint8), detail(np.uint8, 0.5, 128)).tolist() == [-64.0, 63.5]
    assert classify.dequantize(np.array([-128, 127], np.int8), detail(np.int8, 1 / 256, -128)).tolist() == [
        0.0, 255 / 256]


def test_integer_tensor_without_scale_is_refused():
    with pytest.raises(ValueError, match="no quantization"):
        classify.quantize(np.zeros(2), detail(np.int8))


@pytest.mark.parametrize("kind", ["float32", "int8", "uint8"])
def test_every_dtype_gives_the_keras_answer(model_variants, test_images, kind):
    images, _ = test_images
    x = prepare(images[:100])
    expected = model_variants["keras"].predict(x, verbose=0)
    interpreter = make_interpreter(model_variants[kind] / "model.tflite", threads=1)
    assert np.dtype(classify.input_details(interpreter)["dtype"]).name == kind
    got = np.stack([classify.classify(interpreter, xi) for xi in x])
    assert got.dtype == np.float32 and got.shape == (100, 10)
    tol = 1e-4 if kind == "float32" else 0.1  # int8: a softmax step is 1/256; activations add more
    assert np.max(np.abs(got - expected)) < tol
    # Where Keras is clearly decided, the runtime must pick the same class.
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * tol
    assert clear.sum() > 20
    np.testing.assert_array_equal(got.argmax(1)[clear], expected.argmax(1)[clear])


def test_ties_go_to_the_lower_class_id():
    s = np.zeros(10, np.float32)
    s[[4, 6]] = 0.5  # Coat and Shirt tie, as int8 scores often do
    assert [c.id for c in classify.top_classes(s, 2)] == [4, 6]


def test_top_classes_order_and_threshold():
    s = np.array([0.1, 0.6, 0.05, 0.25] + [0.0] * 6, np.float32)
    assert [c.id for c in classify.top_classes(s, 3)] == [1, 3, 0]
    assert [c.id for c in classify.top_classes(s, 3, threshold=0.2)] == [1, 3]


def test_check_model_refuses_wrong_label_count(int8_model):
    interpreter = make_interpreter(int8_model)
    classify.check_model(interpreter, 10)
    with pytest.raises(ValueError, match="10 scores but there are 9 labels"):
        classify.check_model(interpreter, 9)


def test_reference_kernels_reproduce_the_cards_integers(int8_model):
    # The card's fingerprint was computed by fashion-convert on the build machine; every runtime
    # (LiteRT, tflite-runtime) on every CPU must give the same integers with the reference kernels.
    expected = card.reference_outputs(int8_model)
    assert expected is not None and len(expected) == 8
    interpreter = make_interpreter(int8_model, threads=1, kernels="reference")
    assert classify.fingerprint(interpreter) == expected
    assert classify.fingerprint(interpreter, count=2, seed=1) != expected[:2]  # other pixels, other integers


def test_unknown_kernels_are_refused(int8_model):
    with pytest.raises(ValueError, match="kernels must be one of"):
        make_interpreter(int8_model, kernels="fast")
