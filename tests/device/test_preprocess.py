import cv2
import numpy as np
import pytest

from device import preprocess
from device.demo import render_photo
from device.spec import INPUT_SHAPE


def test_dataset_images_are_only_scaled(test_images):
    images, _ = test_images
    x = preprocess.prepare(images[:5])
    assert x.shape == (5, *INPUT_SHAPE) and x.dtype == np.float32
    np.testing.assert_array_equal(np.round(x[..., 0] * 255).astype(np.uint8), images[:5])


def test_photo_is_framed_like_the_dataset(test_images):
    """A dataset image drawn dark on an uneven light 640x480 background comes back close to itself."""
    images, _ = test_images
    for i in range(20):
        photo = render_photo(images[i], seed=i)
        got = preprocess.frame_photo(photo)
        assert got.shape == (28, 28) and got.dtype == np.uint8
        ys, xs = np.nonzero(got)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 >= 26  # the object touches the frame
        assert got[0].max() == 0 or got[:, 0].max() == 0  # centred: black margin on the short side
        corr = np.corrcoef(got.ravel().astype(float), images[i].ravel().astype(float))[0, 1]
        assert corr > 0.6, f"image {i}: correlation {corr:.2f}"


def test_photo_round_trip_keeps_the_class(test_images, int8_model):
    """The shipped model's answer on the synthetic photo matches its answer on the original image."""
    from device.pipeline import Model

    images, _ = test_images
    model = Model(int8_model, int8_model.parent / "labels.txt")
    direct = [model.scores(x).argmax() for x in preprocess.prepare(images[:60])]
    via_photo = [model.scores(preprocess.prepare(render_photo(images[i], seed=i))).argmax() for i in range(60)]
    assert np.mean(np.equal(direct, via_photo)) >= 0.75


def test_colour_order_is_rgb():
    """Pure blue in RGB order has the low grey value of blue (0.114), not of red (0.299)."""
    blue = np.zeros((10, 10, 3), np.uint8)
    blue[..., 2] = 255
    assert preprocess.to_grey(blue)[0, 0] == 29
    red = blue[..., ::-1].copy()
    assert preprocess.to_grey(red)[0, 0] == 76


def test_grey_and_colour_frames_agree(test_images):
    images, _ = test_images
    rgb = render_photo(images[0], seed=3)
    grey = render_photo(images[0], seed=3, colour=False)
    diff = np.abs(preprocess.frame_photo(rgb).astype(int) - preprocess.frame_photo(grey).astype(int))
    assert diff.mean() < 8


def test_empty_scene_gives_a_black_input():
    flat = np.full((480, 640, 3), 180, np.uint8)
    assert preprocess.frame_photo(flat).max() == 0


def test_roi_crops_before_framing(test_images):
    images, _ = test_images
    photo = render_photo(images[1], seed=1)
    clutter = photo.copy()
    clutter[:, :100] = 20  # something dark at the left edge, outside the packing table
    clean = preprocess.frame_photo(photo, roi=(120, 0, 520, 480))
    cropped = preprocess.frame_photo(clutter, roi=(120, 0, 520, 480))
    np.testing.assert_array_equal(clean, cropped)
    with pytest.raises(ValueError, match="outside"):
        preprocess.frame_photo(photo, roi=(700, 500, 10, 10))


def test_background_reference_finds_the_garment(test_images):
    images, _ = test_images
    empty = render_photo(np.zeros((28, 28), np.uint8), seed=5)
    photo = render_photo(images[2], seed=5)  # same lighting, plus the garment
    got = preprocess.frame_photo(photo, background=empty)
    corr = np.corrcoef(got.ravel().astype(float), images[2].ravel().astype(float))[0, 1]
    assert corr > 0.6


def test_a_shoe_pair_is_kept_together():
    img = np.full((240, 320), 210, np.uint8)
    cv2.rectangle(img, (40, 100), (140, 160), 40, -1)
    cv2.rectangle(img, (180, 100), (280, 160), 40, -1)
    got = preprocess.frame_photo(img)
    cols = np.flatnonzero(got.max(0))
    assert cols.min() == 0 and cols.max() == 27  # both shoes span the full width
