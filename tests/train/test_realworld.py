import cv2
import numpy as np
import pytest

from train import batches, outliers, realworld


def test_realistic_flaws_keep_the_dataset_framing(fmnist):
    images = fmnist.train.images[:300]
    rng = np.random.default_rng(0)
    out = [realworld.realistic(img, rng) for img in images]
    for before, after in zip(images, out):
        assert after.shape == (28, 28) and after.dtype == np.uint8
        ys, xs = np.nonzero(after)
        assert max(np.ptp(ys), np.ptp(xs)) + 1 >= 26  # the longest edge still touches the frame
    changed = np.mean([np.abs(a.astype(int) - b).mean() > 3 for a, b in zip(out, images)])
    assert changed > 0.9
    again = [realworld.realistic(img, np.random.default_rng(0)) for img in images[:1]]
    np.testing.assert_array_equal(again[0], realworld.realistic(images[0], np.random.default_rng(0)))


def test_outliers_are_pictures_of_no_class(fmnist):
    images, labels = fmnist.train.images[:2000], fmnist.train.labels[:2000]
    rng = np.random.default_rng(1)
    out = np.stack([outliers.outlier(images, labels, rng) for _ in range(300)])
    assert out.shape == (300, 28, 28) and out.dtype == np.uint8
    empty = (out.max(axis=(1, 2)) == 0).mean()
    assert 0.01 < empty < 0.2  # some empty frames, mostly things
    # Shorts are the top of trousers and skirts the bottom of dresses: not copies of training images.
    assert not any((o == images).all(axis=(1, 2)).any() for o in out[:50])


def test_trim_of_a_black_picture_is_empty():
    assert realworld.trim(np.zeros((28, 28), np.uint8)).size == 0
    img = np.zeros((28, 28), np.uint8)
    img[5:9, 10:20] = 7
    assert realworld.trim(img).shape == (4, 10)


def test_batches_mix_outliers_with_equal_targets(fmnist):
    pytest.importorskip("tensorflow", reason="needs the train extra")
    images, labels = fmnist.train.images[:1024], fmnist.train.labels[:1024]
    made = batches.make_batches(images, labels, 256, realistic_share=0.5, outlier_share=0.25, seed=3)
    assert len(made) == 4
    x, y = made[0]
    assert x.shape == (256, 28, 28, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    uniform = np.all(np.isclose(y, 0.1), axis=1)
    assert 0.15 < uniform.mean() < 0.35
    assert np.all(y[~uniform].max(axis=1) == 1)  # the rest keep their one-hot labels
    x2, y2 = made[0]
    np.testing.assert_array_equal(x, x2)  # the same batch of the same epoch, the same pictures
    made.on_epoch_end()
    assert not np.array_equal(made[0][0], x)  # a new epoch, a new shuffle and new flaws


def test_a_shoe_becomes_a_pair_side_by_side():
    shoe = np.zeros((10, 20), np.uint8)
    shoe[4:10, :] = 200  # a low, long sole-and-upper block
    for seed in range(5):
        both = realworld.pair(shoe, np.random.default_rng(seed))
        assert both.shape[1] > shoe.shape[1] * 1.25  # wider than one shoe
        assert (both > 0).sum() > (shoe > 0).sum()  # and more of it


def test_a_shoe_pair_from_above_stands_toes_up_side_by_side():
    shoe = np.zeros((10, 20), np.uint8)
    shoe[4:10, :] = 200
    for seed in range(5):
        both = realworld.pair(shoe, np.random.default_rng(seed), above=True)
        assert both.shape[0] >= shoe.shape[1]  # each shoe stands on end: as tall as a shoe is long
        n, _ = cv2.connectedComponents((both > 0).astype(np.uint8))
        assert n - 1 == 2  # two shoes, not touching (from above a pair rarely overlaps)


def test_drawn_outliers_have_their_garments_outline():
    rng = np.random.default_rng(2)
    for _ in range(20):
        shorts = realworld.trim(outliers._shorts(rng))
        h, w = shorts.shape
        assert 0.4 * w < h <= 1.1 * w  # about as long as wide, or shorter
        assert shorts[-1, w // 2 - 1: w // 2 + 2].min() == 0  # the notch between the legs
        skirt = realworld.trim(outliers._skirt(rng))
        h = len(skirt)
        assert (skirt[h // 2] > 0).sum() > (skirt[h // 8] > 0).sum()  # widening from the waist to the hem


def test_drawn_hats_are_nearly_as_tall_as_wide():
    # Real caps and beanies fill a square frame; flat half-discs taught the model nothing about them.
    rng = np.random.default_rng(2)
    aspects = [np.divide(*realworld.trim(outliers._hat(rng)).shape) for _ in range(40)]
    assert min(aspects) > 0.25 and np.median(aspects) > 0.6 and max(aspects) > 0.9


@pytest.mark.parametrize("label", realworld.SHOES)
def test_drawn_shoes_from_above_are_a_pair_of_long_shoes_with_their_marks(label):
    rng = np.random.default_rng(3)
    apart = 0
    for _ in range(20):
        pair = realworld._shoes_above(rng, label)
        assert set(np.unique(pair)) == {0, 150, 255}  # cloth, and an opening, laces or straps a shade darker
        n, comp, stats, _ = cv2.connectedComponentsWithStats((pair > 0).astype(np.uint8))
        if n - 1 != 2:  # toes turned in can touch
            continue
        apart += 1
        for k in (1, 2):
            w, h = stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]
            assert 1.6 < max(w, h) / min(w, h) < 3.5  # a shoe's outline: about two to three times as long as wide
            assert (pair[comp == k] == 150).any()  # each shoe has its marks
    assert apart >= 10


def test_spread_sleeves_lift_the_sleeves_away_from_the_body():
    top = np.zeros((28, 24), np.uint8)
    top[:, 5:19] = 200  # the body
    top[2:, :5] = top[2:, 19:] = 120  # sleeves hanging at its sides, a shade darker
    rng = np.random.default_rng(4)
    for _ in range(10):
        out = realworld.spread_sleeves(top, rng)
        h, w = out.shape
        assert w / h > 1.3 * top.shape[1] / top.shape[0]  # wider for its height than the hanging top
        assert out[-h // 8:, : w // 8].max() == 0 and out[-h // 8:, -w // 8:].max() == 0  # nothing hangs by the hem
        assert (out == 200).sum() >= 0.75 * 4 * (top == 200).sum()  # most of the body kept (at twice the size)
