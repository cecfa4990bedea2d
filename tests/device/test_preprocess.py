import cv2
import numpy as np
import pytest

from device import preprocess
from tools.demo import render_photo
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
    from device.model import Model

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


def test_resize_area_is_area_averaging_in_whole_numbers():
    """Exact block means, rounded half up; within one step of OpenCV's INTER_AREA, which rounds in floats."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (56, 84)).astype(np.uint8)
    blocks = image.reshape(28, 2, 28, 3).astype(np.int64).sum(axis=(1, 3))  # 2x3 blocks
    np.testing.assert_array_equal(preprocess.resize_area(image, (28, 28)), (blocks + 3) // 6)
    for shape, size in [((97, 61), (28, 18)), ((160, 120), (28, 21)), ((40, 40), (28, 28))]:
        image = rng.integers(0, 256, shape).astype(np.uint8)
        want = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(preprocess.resize_area(image, size).astype(int) - want).max() <= 1
    flat = preprocess.resize_area(np.full((9, 5), 77, np.uint8), (28, 16))  # upscaling keeps a flat picture flat
    assert flat.shape == (28, 16) and (flat == 77).all()


def test_shrink_uses_a_whole_factor():
    frame = np.random.default_rng(2).integers(0, 256, (481, 643, 3)).astype(np.uint8)
    assert preprocess.shrink(frame[:480, :640], 160).shape == (120, 160, 3)  # a VGA frame: 4 x 4 blocks
    small = preprocess.shrink(frame, 160)
    assert small.shape == (96, 128, 3)  # 643 / 160 rounds up to 5; the odd row and 3 columns are dropped
    blocks = frame[:480, :640].reshape(96, 5, 128, 5, 3).astype(np.int64).sum(axis=(1, 3))
    np.testing.assert_array_equal(small, (blocks + 12) // 25)  # exact block means
    assert preprocess.shrink(frame[:100, :150], 160).shape == (100, 150, 3)  # small pictures stay as they are


def _garment_on_a_bedspread(colour_garment, size=(480, 640)):
    """A red T-shirt-like shape on a green-and-beige striped bedspread whose grey level matches it."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    stripes = ((x + y) // 24) % 2 == 0
    scene = np.where(stripes[..., None], [60, 140, 60], [200, 190, 150]).astype(np.uint8)
    shape = np.zeros((h, w), np.uint8)
    cv2.rectangle(shape, (250, 150), (390, 380), 255, -1)  # body
    cv2.rectangle(shape, (180, 150), (460, 220), 255, -1)  # sleeves
    photo = np.where(shape[..., None] > 0, np.array(colour_garment, np.uint8), scene)
    return photo, shape


def test_grabcut_finds_a_colour_garment_on_a_patterned_bed():
    """A garment as grey as the busy bed under it: the colour cut finds its outline, and the 28x28 is its shape."""
    photo, shape = _garment_on_a_bedspread([200, 30, 40])
    got = preprocess.frame_photo(photo, segment="grabcut")
    want = preprocess.fit_to_frame(shape[150:381, 180:461])
    inside = (got > 0) == (want > 0)
    assert inside.mean() > 0.9, f"outline agrees on {inside.mean():.0%} of pixels"


@pytest.mark.parametrize("kept", ["speck", "print"])
def test_a_cut_that_loses_the_garment_falls_back_to_the_grey_outline(test_images, monkeypatch, kept):
    """On a busy rug in the garment's own colours GrabCut can keep only a speck (15 of the real
    photos came out black before), or only the print of a garment that fills a picture in the
    scene's colours (a sweatshirt's letters): the grey difference's outline frames the garment."""
    images, _ = test_images

    def cut(bgr, mask, rect, bgd_model, fgd_model, iterations, mode):  # cv2.grabCut's arguments
        h, w = mask.shape
        mask[:] = cv2.GC_BGD
        if kept == "speck":
            mask[10:13, 10:13] = cv2.GC_FGD
        else:  # a block in the middle, 5% of the picture, as the real photos' prints were (1-5%)
            mask[h // 2: h // 2 + h // 4, w // 2: w // 2 + w // 5] = cv2.GC_FGD

    monkeypatch.setattr(preprocess.cv2, "grabCut", cut)
    for i in range(5):
        got = preprocess.frame_photo(render_photo(images[i], seed=i), segment="grabcut")
        assert np.corrcoef(got.ravel().astype(float), images[i].ravel().astype(float))[0, 1] > 0.6


def test_grabcut_on_an_empty_scene_gives_a_black_input():
    flat = np.full((480, 640, 3), 180, np.uint8)
    assert preprocess.frame_photo(flat, segment="grabcut").max() == 0
    noisy = np.clip(180 + np.random.default_rng(1).normal(0, 2, (480, 640, 3)), 0, 255).astype(np.uint8)
    assert preprocess.frame_photo(noisy, segment="grabcut").max() == 0


def test_grabcut_keeps_a_synthetic_photo_like_the_dataset(test_images):
    images, _ = test_images
    corrs = []
    for i in range(20):
        got = preprocess.frame_photo(render_photo(images[i], seed=i), segment="grabcut")
        corrs.append(np.corrcoef(got.ravel().astype(float), images[i].ravel().astype(float))[0, 1])
    # A faint garment (light on the light background) can lose part of its middle; most come back whole.
    assert np.median(corrs) > 0.7 and min(corrs) > 0.3, np.round(corrs, 2)


def test_unknown_segment_is_refused():
    with pytest.raises(ValueError, match="segment"):
        preprocess.frame_photo(np.zeros((100, 100), np.uint8), segment="magic")


def test_grabcut_gives_a_photo_the_same_input_whatever_came_before(test_images):
    # GrabCut's k-means draws from OpenCV's global random generator: unseeded, the same photo
    # would be cut differently depending on the photos processed before it.
    images, _ = test_images
    photos = [render_photo(images[i], seed=i) for i in range(6)]
    first = [preprocess.frame_photo(p, segment="grabcut") for p in photos]
    again = [preprocess.frame_photo(p, segment="grabcut") for p in photos[::-1]][::-1]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
