import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="needs the train extra")


def test_threshold_keeps_the_asked_share_of_garments(fmnist, int8_model):
    from convert import unknown

    images, labels = fmnist.test.images[:2000], fmnist.test.labels[:2000]
    loose = unknown.calibrate(int8_model, images, labels, keep=0.95, count=400)
    strict = unknown.calibrate(int8_model, images, labels, keep=0.70, count=400)
    assert 0 < loose["threshold"] <= strict["threshold"] < 1
    assert loose["threshold"] == round(loose["threshold"], 2)  # what the card says is what is used
    assert loose["unknown_on_garments"] <= 0.05
    assert 0.2 <= strict["unknown_on_garments"] <= 0.3
    # Non-garments are less sure than garments: more of them fall below the same threshold.
    assert strict["unknown_on_non_garments"] > strict["unknown_on_garments"]


def test_synthetic_sets_are_reproducible(fmnist):
    from convert import unknown

    a = unknown.synthetic_sets(fmnist.test.images[:500], fmnist.test.labels[:500], 50, seed=1)
    b = unknown.synthetic_sets(fmnist.test.images[:500], fmnist.test.labels[:500], 50, seed=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[0].shape == a[2].shape == (50, 28, 28)
