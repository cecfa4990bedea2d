import numpy as np
import pytest

from device.spec import INPUT_SHAPE, NUM_CLASSES
from train import models


@pytest.mark.parametrize("name", ["edge", "edge-wide", "tutorial", "dense"])
def test_builders_give_ten_probabilities(name):
    model = models.build(name)
    assert tuple(model.input_shape[1:]) == INPUT_SHAPE
    out = model.predict(np.zeros((2, *INPUT_SHAPE), np.float32), verbose=0)
    assert out.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)


def test_edge_model_fits_the_size_budget():
    # int8 weights: about one byte per parameter; the shipped file must stay under 300 KB.
    assert models.build("edge").count_params() < 250_000
    assert models.build("edge-wide").count_params() < 250_000


def test_tutorial_and_dense_are_the_published_designs():
    assert models.build("dense").count_params() == 28 * 28 * 256 + 256 + 256 * 10 + 10
    assert models.build("tutorial").count_params() == 225_034


def test_unknown_model_name():
    with pytest.raises(ValueError, match="choose from"):
        models.build("resnet")


def test_widen_keeps_an_edge_models_scores():
    """edge -> edge-wide by duplicating the last stage's channels: the same function, more room to learn."""
    import keras

    keras.utils.set_random_seed(0)
    start = models.build("edge")
    # Move batch norm off its identity start so the statistics have to be carried over too.
    for layer in start.layers:
        if layer.name.endswith("_bn"):
            layer.set_weights([w + np.random.default_rng(1).uniform(0.1, 0.5, w.shape).astype(w.dtype)
                               for w in layer.get_weights()])
    x = np.random.default_rng(2).random((8, *INPUT_SHAPE)).astype(np.float32)
    want = start.predict(x, verbose=0)
    exact = models.widen(start, models.build("edge-wide"), noise=0)
    assert exact.count_params() > start.count_params() + 80_000
    np.testing.assert_allclose(exact.predict(x, verbose=0), want, atol=1e-5)
    parted = models.widen(start, models.build("edge-wide")).predict(x, verbose=0)  # copies a little apart
    assert 0 < np.abs(parted - want).max() < 0.02


def test_saving_the_same_model_twice_gives_the_same_bytes(tmp_path):
    """make model's byte-for-byte promise starts here: Keras writes the save time into the .keras file."""
    import time

    from train.models import build_edge, save

    model = build_edge()
    save(model, tmp_path / "a.keras")
    time.sleep(1.1)  # a later second: Keras' own save would differ now
    save(model, tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    import keras

    assert keras.models.load_model(tmp_path / "b.keras").count_params() == model.count_params()


def test_two_builds_of_the_same_weights_save_the_same_bytes(tmp_path):
    """config.json names objects several layers share (here the float32 policy) by their id() in memory,
    which differs between two builds, as between two runs of make model: save() renumbers them."""
    import zipfile

    import keras

    from train.models import build_edge, save

    keras.mixed_precision.set_global_policy("float32")  # as train/pipeline.float32_copy does
    first = build_edge()
    keras.mixed_precision.set_global_policy("float32")  # a new policy object, as in another process
    second = build_edge()
    second.set_weights(first.get_weights())
    save(first, tmp_path / "a.keras")
    save(second, tmp_path / "b.keras")
    assert '"shared_object_id"' in zipfile.ZipFile(tmp_path / "a.keras").read("config.json").decode()
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    reloaded = keras.models.load_model(tmp_path / "b.keras")
    x = np.random.default_rng(0).random((2, *INPUT_SHAPE), np.float32)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), first.predict(x, verbose=0))
