import numpy as np

from tools import bench
from tests.conftest import make_jpeg


def test_still_photos_default_to_two_sizes_of_synthetic_photo():
    what, images = bench.still_photos(None)
    assert "synthetic" in what and len(images) == 40
    assert {im.shape for im in images} == {(480, 640, 3), (2448, 3264, 3)}


def test_still_photos_from_a_folder_skip_unreadable_files(tmp_path):
    make_jpeg(tmp_path / "a.jpg", np.full((120, 160, 3), 200, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    what, images = bench.still_photos(tmp_path)
    assert len(images) == 1 and "1 photos" in what
    times = bench.time_stills(images)
    assert len(times) == 1 and times[0] > 0
