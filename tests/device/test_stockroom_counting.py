"""Stockroom mode's counting faults, each on a tiny rendered video (160x120, 8 fps, a few seconds).

Each garment is a Fashion-MNIST silhouette in one flat colour, laid on a table rendered by
tools/real_stockroom.py (the benchmark's tables: noise, light falling off, light drifting), fed to
the tracker as classify-cam feeds it (colour frames from the video file). The faults are issue 32's:
a chain of phantoms from a garment blended into the table picture, a restart with a garment on the
table, a duplicate while a garment is taken away slowly, a low-contrast garment missed, and an item
placed while the hand that brought it is still in view.
"""

import cv2
import numpy as np
import pytest

from tools.real_stockroom import Garment, render

SIZE, FPS = (160, 120), 8


def garment(fmnist, index: int, colour, x=50, y=20, height=80, **kw) -> Garment:
    image = fmnist.test.images[index]
    alpha = cv2.resize(np.clip(image.astype(np.float32) / 40, 0, 1), (height, height), interpolation=cv2.INTER_LINEAR)
    rgb = np.broadcast_to(np.array(colour, np.float32), (height, height, 3)).copy()
    return Garment(f"fmnist-{index}", rgb, alpha, **{"seconds": 2.5, **kw}, x=x, y=y)


def run(path, table, garments, background=False, **kw):
    """The tracker over the rendered video: (events with seconds from the first frame, truth, tracker)."""
    import models

    from device.model import Model
    from device.sources import VideoCapture
    from device.stockroom.tracker import Tracker
    from tools.real_stockroom import Scene

    truth = render(path, table, garments, SIZE, FPS, seed=3, **kw)
    empty = None  # learnt from the first frames; True: the empty table given; a BGR picture: that one given
    if background is not False:
        empty = Scene(table, SIZE, 3, FPS).frame([]) if background is True else background
        empty = cv2.cvtColor(empty, cv2.COLOR_BGR2RGB)
    tracker = Tracker(Model(models.INT8_MODEL, models.LABELS), "t", 0.0, background=empty)
    events, t0 = [], None
    source = VideoCapture(str(path), live=False, colour=True)
    for frame in source.frames():
        t0 = frame.t if t0 is None else t0
        events += [{**e, "s": (e["time"] and stamp(e["time"])) - t0} for e in tracker.feed(frame)]
    source.close()
    return events, truth, tracker


def stamp(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def placed_per_garment(events, truth):
    """For each garment, the placed records during its time on the table; and those at no garment's time."""
    per, stray = [[] for _ in truth], []
    for e in events:
        if e["event"] == "placed":
            hits = [i for i, g in enumerate(truth) if g["start_s"] - 0.3 <= e["s"] <= g["end_s"] + 0.3]
            (per[hits[0]] if hits else stray).append(e)
    return per, stray


def paired(events):
    placed = [e["id"] for e in events if e["event"] == "placed"]
    removed = [e["id"] for e in events if e["event"] == "removed"]
    return sorted(placed) == sorted(removed) and len(set(placed)) == len(placed)


@pytest.mark.parametrize("background", [False, True, "with-a-garment"])
def test_a_garment_the_colour_of_the_table_never_makes_a_chain_of_phantoms(fmnist, tmp_path, background):
    # A garment 8 grey levels off the grey table, slid in slowly (nothing to see as motion), then two plain ones;
    # learnt, given, or given with a garment on it (taken too early: a hole in the table picture from the start).
    from tools.real_stockroom import Scene

    if background == "with-a-garment":
        g = garment(fmnist, 12, (70, 60, 50), x=10, y=10, height=60)
        background = Scene("grey", SIZE, 3, FPS).frame([(g.rgb, g.alpha, g.x, g.y)])
    faint = garment(fmnist, 0, (136, 136, 138), slide_in=2.0, slide_out=2.0, seconds=3.0)
    plain = [garment(fmnist, i, (40, 60, 150)) for i in (1, 2)]
    events, truth, tracker = run(tmp_path / "v.avi", "grey", [faint, *plain], background)
    per, stray = placed_per_garment(events, truth)
    assert not stray, events  # no phantom when the faint garment has gone, nor after the plain ones
    assert len(per[0]) <= 1 and [len(p) for p in per[1:]] == [1, 1], events
    assert paired(events)
    assert tracker.healed == (1 if isinstance(background, np.ndarray) else 0)


def test_a_restart_with_a_garment_on_a_dark_table_gives_no_phantom(fmnist, tmp_path, caplog):
    # The video starts with a garment lying on the dark table: the learnt table holds it until it goes.
    lying = garment(fmnist, 3, (200, 190, 170), slide_in=0, seconds=1.5)
    events, truth, tracker = run(tmp_path / "v.avi", "dark", [lying, garment(fmnist, 4, (200, 60, 60)),
                                                               garment(fmnist, 5, (90, 160, 90))], empty_s=0)
    per, stray = placed_per_garment(events, truth)
    assert not stray and [len(p) for p in per] == [1, 1, 1], events  # the one lying there counted once
    assert per[0][0]["frames"] > 1, per[0]  # its picture made as any item's: GrabCut over the still frames
    assert paired(events) and tracker.healed == 1
    assert "re-learnt from the empty table" in caplog.text


def test_a_garment_taken_away_slowly_is_one_item(fmnist, tmp_path):
    # A garment 14 grey levels off the grey table, taken off to the right a pixel a frame: too slow and faint for
    # any two frames to differ much, but the scene keeps changing; then a plain one, taken off slowly too.
    events, truth, _ = run(tmp_path / "v.avi", "grey", [
        garment(fmnist, 6, (142, 142, 144), x=90, height=60, seconds=3.0, edge_out="right", slide_out=9.0),
        garment(fmnist, 7, (150, 40, 40), slide_out=4.0, x=20)])
    per, stray = placed_per_garment(events, truth)
    assert not stray and [len(p) for p in per] == [1, 1], events
    assert paired(events) and len(events) == 4


def test_a_low_contrast_small_garment_is_placed(fmnist, tmp_path):
    # 16 grey levels off the dark table, and 2-3% of the picture.
    events, truth, _ = run(tmp_path / "v.avi", "dark", [garment(fmnist, 8, (62, 58, 56), height=26, x=60, y=40),
                                                        garment(fmnist, 9, (30, 30, 30), height=28, x=90, y=50)])
    per, stray = placed_per_garment(events, truth)
    assert not stray and [len(p) for p in per] == [1, 1], events
    assert paired(events)


def test_nothing_is_placed_while_the_hand_is_in_view(fmnist, tmp_path):
    # The hand lays each garment down and rests beside it, still, longer than the settle time, then goes.
    garments = [garment(fmnist, i, c, hand=True, edge_in=e, edge_out=e, x=x, y=28, height=64)
                for i, c, e, x in ((10, (40, 40, 160), "left", 60), (11, (170, 60, 40), "right", 30))]
    events, truth, _ = run(tmp_path / "v.avi", "patterned", garments)
    per, stray = placed_per_garment(events, truth)
    assert not stray and [len(p) for p in per] == [1, 1], events
    for placed, g in zip(per, truth):
        assert placed[0]["s"] >= g["alone_s"], (placed[0]["s"], g)  # not before the hand had gone
    assert paired(events)


# -- scripted videos: each frame's sprites given (the hostile review of issue 32) --------------------------------
def film(path, table, shots, seed=3):
    """Write a video of `shots`: per frame, a list of (rgb, alpha, x, y) sprites (or a callable making the frame
    from the scene). Returns the tracker's events over it, with seconds from the first frame."""
    from tools.real_stockroom import Scene

    scene = Scene(table, SIZE, seed, FPS)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for shot in shots:
        out.write(shot(scene) if callable(shot) else scene.frame(shot))
    out.release()
    return path


def feed(path, background=None):
    import models

    from device.model import Model
    from device.sources import VideoCapture
    from device.stockroom.tracker import Tracker

    tracker = Tracker(Model(models.INT8_MODEL, models.LABELS), "t", 0.0, background=background)
    events, t0 = [], None
    source = VideoCapture(str(path), live=False, colour=True)
    for frame in source.frames():
        t0 = frame.t if t0 is None else t0
        events += [{**e, "s": stamp(e["time"]) - t0} for e in tracker.feed(frame)]
    source.close()
    return events, tracker


def sprite(fmnist, index, colour, x=50, y=20, height=70):
    g = garment(fmnist, index, colour, x=x, y=y, height=height)
    return g.rgb, g.alpha, x, y


def hand(edge, x, y, w=70, h=70):
    """The benchmark's hand holding a w x h thing at (x, y) from `edge`."""
    from tools.real_stockroom import Scene, hand_at, hand_sprite

    return hand_at(hand_sprite(int(SIZE[1] * 0.22), max(SIZE)), edge, x, y, w, h, Scene("grey", SIZE, 0, FPS))


def slide(a, b, seconds):
    n = max(1, round(seconds * FPS))
    return [(round(a[0] + (b[0] - a[0]) * (i + 1) / n), round(a[1] + (b[1] - a[1]) * (i + 1) / n)) for i in range(n)]


def frames(seconds, shot):
    return [shot] * round(seconds * FPS)


def test_a_hand_resting_in_view_is_never_an_item_however_long(fmnist, tmp_path):
    # A hand rests 4 s on the empty table (longer than any timeout), goes; then lays a garment down and rests on
    # it 3.5 s before it goes: one item, placed only once the hand has gone.
    g = sprite(fmnist, 13, (40, 40, 160), x=60, y=25)
    rgb, alpha, hx, hy = hand("left", 60, 25)
    away = (-alpha.shape[1] - 2, hy)
    shots = frames(1.5, [])
    shots += [[(rgb, alpha, *p)] for p in slide(away, (hx, hy), 0.6)] + frames(4.0, [(rgb, alpha, hx, hy)])
    shots += [[(rgb, alpha, *p)] for p in slide((hx, hy), away, 0.6)] + frames(1.0, [])
    shots += [[g[:2] + (p[0] + 60 - hx, p[1] + 25 - hy), (rgb, alpha, *p)] for p in slide(away, (hx, hy), 0.6)]
    shots += frames(3.5, [g, (rgb, alpha, hx, hy)])
    gone = len(shots) / FPS
    shots += [[g, (rgb, alpha, *p)] for p in slide((hx, hy), away, 0.6)] + frames(2.0, [g]) + frames(1.0, [])
    events, _ = feed(film(tmp_path / "v.avi", "grey", shots))
    assert [e["event"] for e in events] == ["placed", "removed"], events
    assert events[0]["s"] >= gone, (events, gone)


def flat(colour, noise=4.0, falloff=0.0):
    """A table of one colour, light falling off by `falloff` from left to right, with sensor noise, the sprites
    laid on it (BGR, as the video is written)."""
    y, x = np.mgrid[0:SIZE[1], 0:SIZE[0]].astype(np.float32)
    light = (1 + falloff / 2 - falloff * x / SIZE[0] - falloff / 2 * y / SIZE[1])[..., None]

    def shot(sprites, seed):
        rng = np.random.default_rng(seed)
        image = np.array(colour, np.float32) * light * np.ones((SIZE[1], 1, 1), np.float32)
        for rgb, alpha, x, y in sprites:
            h, w = alpha.shape
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, SIZE[0]), min(y + h, SIZE[1])
            if x1 > x0 and y1 > y0:
                a, c = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None], rgb[y0 - y:y1 - y, x0 - x:x1 - x]
                image[y0:y1, x0:x1] = image[y0:y1, x0:x1] * (1 - a) + c * a
        image += rng.normal(0, noise, image.shape)
        return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    return shot


def test_a_white_garment_on_a_white_table_is_placed_not_healed_and_the_same_each_time(fmnist, tmp_path):
    # A near-white shirt (8 levels off) covering a fifth of a white table: the check "this is the table lit
    # otherwise" must not heal it away, and its verdict is the same on the same video every time.
    table, g = flat((236, 234, 230), 2.0, 0.08), sprite(fmnist, 14, (225, 226, 228), x=45, y=15, height=90)
    shots = [table([], i) for i in range(12)]
    shots += [table([g[:2] + (x, y)], 100 + i) for i, (x, y) in enumerate(slide((-95, 15), (45, 15), 0.8))]
    shots += [table([g], 200 + i) for i in range(24)]
    shots += [table([g[:2] + (x, y)], 300 + i) for i, (x, y) in enumerate(slide((45, 15), (165, 15), 0.8))]
    shots += [table([], 400 + i) for i in range(10)]
    path = film(tmp_path / "v.avi", "grey", [lambda _, s=s: s for s in shots])
    first, _ = feed(path)
    assert [e["event"] for e in first] == ["placed", "removed"], first
    assert [{k: e.get(k) for k in ("event", "label", "confidence")} for e in feed(path)[0]] == \
        [{k: e.get(k) for k in ("event", "label", "confidence")} for e in first]


def test_a_grey_picture_of_the_table_serves_a_colour_camera(fmnist, tmp_path):
    from tools.real_stockroom import Scene

    g = sprite(fmnist, 15, (150, 40, 40), x=50, y=25)
    shots = frames(1.0, []) + [[g[:2] + p] for p in slide((-72, 25), (50, 25), 0.6)] + frames(2.0, [g])
    shots += [[g[:2] + p] for p in slide((50, 25), (165, 25), 0.6)] + frames(1.0, [])
    grey = cv2.cvtColor(Scene("grey", SIZE, 3, FPS).frame([]), cv2.COLOR_BGR2GRAY)
    events, _ = feed(film(tmp_path / "v.avi", "grey", shots), background=grey)
    assert [e["event"] for e in events] == ["placed", "removed"], events


def test_a_garment_nudged_or_straightened_stays_one_item(fmnist, tmp_path):
    # Laid down, then pushed 12 px to the side a while later (no hand), and left again: one item. A different
    # garment replacing one is still two (test_stockroom.py's swap).
    g = sprite(fmnist, 16, (40, 120, 60), x=40, y=25)
    shots = frames(1.0, []) + [[g[:2] + p] for p in slide((-72, 25), (40, 25), 0.6)] + frames(2.0, [g])
    shots += [[g[:2] + p] for p in slide((40, 25), (52, 28), 0.4)] + frames(2.0, [g[:2] + (52, 28)])
    shots += [[g[:2] + p] for p in slide((52, 28), (165, 28), 0.6)] + frames(1.0, [])
    events, _ = feed(film(tmp_path / "v.avi", "patterned", shots))
    assert [e["event"] for e in events] == ["placed", "removed"], events


def test_a_stalled_stream_is_no_still_time(fmnist, tmp_path):
    # The stream freezes 1.5 s (one frame repeated) with the garment half slid in, then goes on: one item, placed
    # once it lies where it stays.
    g = sprite(fmnist, 17, (150, 40, 40), x=60, y=25)
    path = [g[:2] + p for p in slide((-72, 25), (60, 25), 1.0)]
    held = {}

    def frozen(scene):
        held.setdefault("image", scene.frame([path[5]]))
        return held["image"]
    shots = frames(1.0, []) + [[p] for p in path[:6]] + [frozen] * 12 + [[p] for p in path[6:]]
    lies = len(shots) / FPS
    shots += frames(2.0, [g]) + [[g[:2] + p] for p in slide((60, 25), (165, 25), 0.6)] + frames(1.0, [])
    events, _ = feed(film(tmp_path / "v.avi", "grey", shots))
    assert [e["event"] for e in events] == ["placed", "removed"], events
    assert events[0]["s"] >= lies, (events, lies)


def test_an_exposure_jump_that_clips_a_garment_is_no_new_item(fmnist, tmp_path):
    # A red garment lies there; the camera's exposure jumps 30% (its red clips at 255), then back: one item.
    g = sprite(fmnist, 18, (225, 120, 100), x=50, y=25)

    def bright(gain):
        return lambda scene: np.clip(scene.frame([g]) * gain, 0, 255).astype(np.uint8)
    shots = frames(1.0, []) + [[g[:2] + p] for p in slide((-72, 25), (50, 25), 0.6)] + frames(1.5, [g])
    shots += [bright(1.3)] * 16 + frames(1.5, [g]) + [[g[:2] + p] for p in slide((50, 25), (165, 25), 0.6)]
    events, _ = feed(film(tmp_path / "v.avi", "grey", shots + frames(1.0, [])))
    assert [e["event"] for e in events] == ["placed", "removed"], events


def test_a_video_that_ends_with_a_garment_on_the_table_says_so(fmnist, tmp_path):
    from types import SimpleNamespace

    import models

    from device.model import Model
    from device.sources import VideoCapture
    from device.stockroom.step import StockroomStep

    g = sprite(fmnist, 19, (40, 40, 160), x=50, y=25)
    shots = frames(1.0, []) + [[g[:2] + p] for p in slide((-72, 25), (50, 25), 0.6)] + frames(1.5, [g])
    settings = SimpleNamespace(threshold=0.0, top_k=3, roi=None, background=None)
    step = StockroomStep(Model(models.INT8_MODEL, models.LABELS), settings, "t", 0.5)
    source = VideoCapture(str(film(tmp_path / "v.avi", "grey", shots)), live=False, colour=True)
    events = [e for i, frame in enumerate(source.frames()) for e, _ in step(frame, i)]
    source.close()
    assert [e["event"] for e in events] == ["placed"]
    assert f"item 0 ({events[0]['label']}) still on the table" in step.summary()


def lit(shots, gain):
    """The shots under a light that changes frame to frame: gain(i) a number, or rows of numbers (bands)."""
    def shot(sprites, g):
        return lambda scene: np.clip(scene.frame(sprites) * g, 0, 255).astype(np.uint8)
    return [shot(s, gain(i)) for i, s in enumerate(shots)]


def test_a_flickering_light_is_learnt_through_or_said(fmnist, tmp_path, caplog):
    # The whole picture flickers 8% frame to frame (mains light, a camera's exposure): the table is learnt all
    # the same and the garment counted. Rolling bands that never let the picture hold still: said in one line.
    g = sprite(fmnist, 20, (40, 40, 160), x=50, y=25)
    shots = frames(1.5, []) + [[g[:2] + p] for p in slide((-72, 25), (50, 25), 0.6)] + frames(2.0, [g])
    shots += [[g[:2] + p] for p in slide((50, 25), (165, 25), 0.6)] + frames(1.0, [])
    events, _ = feed(film(tmp_path / "v.avi", "light-wood", lit(shots, lambda i: 1 + 0.08 * np.sin(2.2 * i))))
    assert [e["event"] for e in events] == ["placed", "removed"], events
    rows = np.arange(SIZE[1], dtype=np.float32)[:, None, None]
    bands = lit(frames(11.0, []), lambda i: 1 + 0.06 * np.sin(2 * np.pi * (rows / 40 + 0.37 * i)))
    assert feed(film(tmp_path / "b.avi", "grey", bands))[0] == []
    assert "has not held still for 10 s" in caplog.text


def test_a_garment_laid_beside_another_is_a_second_item(fmnist, tmp_path):
    # A lies on the left; B is laid beside it, on the right, and taken again while A stays; then A is taken:
    # A is never removed while it is there.
    a, b = sprite(fmnist, 21, (40, 40, 160), x=8, y=30, height=60), sprite(fmnist, 22, (170, 60, 40), x=90, y=30,
                                                                            height=60)
    shots = frames(1.0, []) + [[a[:2] + p] for p in slide((-62, 30), (8, 30), 0.5)] + frames(1.5, [a])
    shots += [[a, b[:2] + p] for p in slide((162, 30), (90, 30), 0.5)] + frames(1.5, [a, b])
    shots += [[a, b[:2] + p] for p in slide((90, 30), (162, 30), 0.5)] + frames(1.5, [a])
    shots += [[a[:2] + p] for p in slide((8, 30), (-62, 30), 0.5)] + frames(1.0, [])
    events, _ = feed(film(tmp_path / "v.avi", "grey", shots))
    assert [(e["event"], e["item"]) for e in events] == [("placed", 0), ("placed", 1), ("removed", 1),
                                                          ("removed", 0)], events
