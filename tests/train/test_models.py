import numpy as np
import pytest

from device.spec import INPUT_SHAPE, NUM_CLASSES
from train import models


@pytest.mark.parametrize("name", ["edge", "tutorial", "dense"])
def test_builders_give_ten_probabilities(name):
    model = models.build(name)
    assert tuple(model.input_shape[1:]) == INPUT_SHAPE
    out = model.predict(np.zeros((2, *INPUT_SHAPE), np.float32), verbose=0)
    assert out.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)


def test_edge_model_fits_the_size_budget():
    # int8 weights: about one byte per parameter; the shipped file must stay under 300 KB.
    assert models.build("edge").count_params() < 250_000


def test_tutorial_and_dense_are_the_published_designs():
    assert models.build("dense").count_params() == 28 * 28 * 256 + 256 + 256 * 10 + 10
    assert models.build("tutorial").count_params() == 225_034


def test_unknown_model_name():
    with pytest.raises(ValueError, match="choose from"):
        models.build("resnet")
