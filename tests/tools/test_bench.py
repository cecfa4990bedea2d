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


def test_events_benchmark_places_the_garments_of_a_rendered_stockroom_video(tmp_path, int8_model):
    import models
    from device.model import Model

    video = bench.stockroom_video(tmp_path / "stockroom.mp4", garments=2, size=(320, 240), fps=10)
    frames, seconds, inferences, placed, removed = bench.events_pipeline(video, Model(int8_model, models.LABELS))
    assert frames == 95 and seconds > 0  # 1.5 s of empty table, then 2 x (3 s on the table + 1 s empty), 10 fps
    assert placed == removed == 2
    assert 0 < inferences <= 2 * 8  # only settled garments are classified


def test_bench_times_events_on_the_stockroom_video_and_reports_its_events(tmp_path, capsys):
    make_jpeg(tmp_path / "a.jpg", np.full((120, 160, 3), 200, np.uint8))
    assert bench.main(["--frames", "20", "--garments", "1", "--repeat", "1", "--photos", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stockroom video: rendered 640x480 mp4v, 1 garments 3 s each, 165 frames" in out, out
    line = next(l for l in out.splitlines() if "--events" in l)
    assert "(1 placed, 1 removed, " in line and " 0 inferences" not in line, line
    assert "events / decode = " in out
