"""Benchmark: per-stage latency and fps of the device pipeline on 640x480 video, against decode alone.

    python -m tools.bench [--video FILE] [--frames 300] [--garments 10] [--threads 1] [--photos DIR]

Without --video it writes a synthetic 640x480 video (Fashion-MNIST garments photographed on an
uneven light background) with OpenCV first. The goal: the whole pipeline costs at most twice
what decoding the frames alone costs. Stockroom mode (--events) is timed on a rendered stockroom
video (tools/stockroom_video.py: garments slid onto a table, left a few seconds, slid off), or on
--stockroom-video; the goal: at most 1.5 times what decoding that video alone costs. Then it times
the still-photo preprocessing (GrabCut) on synthetic photos, or on the photos under --photos; the
goal there is at most 50 ms a photo.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

GARMENT_S = 3.0  # seconds each garment of the stockroom video spends on the table, slides included
STOCKROOM_FPS = 30  # as the synthetic video, and a camera


def parse_args(argv=None) -> argparse.Namespace:
    import models

    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, help="a video to read (default: write a synthetic 640x480 one)")
    p.add_argument("--frames", type=int, default=300, help="frames in the synthetic video (default 300)")
    p.add_argument("--codec", default="mp4v", help="FourCC of the synthetic video (default mp4v)")
    p.add_argument("--garments", type=int, default=10, help="garments in the rendered stockroom video, each on the "
                   f"table for {GARMENT_S:g} s (default 10)")
    p.add_argument("--stockroom-video", type=Path, metavar="FILE",
                   help="a stockroom video for --events (default: render a 640x480 one)")
    p.add_argument("--model", type=Path, default=models.INT8_MODEL, help="model (default: shipped int8)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    p.add_argument("--photos", type=Path, help="time still-photo preprocessing on the images under this folder "
                   "(default: 20 synthetic 640x480 and 20 synthetic 3264x2448 photos)")
    p.add_argument("--serve", action="store_true", help="also time the pipeline with the web page served, with no "
                   "viewer and with one viewer polling it as the page does")
    p.add_argument("--repeat", type=int, default=3, help="passes over the video; the fastest is kept (default 3)")
    return p.parse_args(argv)


def write_video(path: Path, frames: int, codec: str) -> Path:
    from tools.demo import render_photo
    from train import data as data_mod

    try:
        images = data_mod.load("fashion", download=False).test.images[:30]
    except data_mod.DataNotFound:  # still a fair benchmark: random blobs instead of garments
        images = (np.random.default_rng(0).random((30, 28, 28)) * 255).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 30, (640, 480))
    rng = np.random.default_rng(0)
    for i in range(frames):
        # Each garment held for ten frames, as a person would hold it under the camera, with
        # fresh sensor noise in every frame (a noiseless video decodes unrealistically fast).
        rgb = render_photo(images[(i // 10) % len(images)], seed=i // 10).astype(np.int16)
        rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape[:2])[..., None], 0, 255).astype(np.uint8)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def stockroom_video(path: Path, garments: int = 10, size=(640, 480), fps: int = STOCKROOM_FPS) -> Path:
    """A rendered stockroom scene: the empty table, then each garment slid on, left GARMENT_S seconds, slid off.

    Long enough for the tracker to learn the empty table (LEARN_S) and for each garment to settle, so
    the events benchmark places items and runs their inferences. .mp4: mp4v, as the synthetic video."""
    from tools.stockroom_video import render, script
    from train import data as data_mod

    try:
        test = data_mod.load("fashion", download=False).test
        images, labels = test.images, test.labels
    except data_mod.DataNotFound:  # random blobs on the table instead of garments: still placed and removed
        images = (np.random.default_rng(0).random((30, 28, 28)) * 255).astype(np.uint8)
        labels = np.arange(30) % 10
    steps, _ = script(images, labels, garments, seconds=GARMENT_S)
    return render(path, steps, size, fps)


def decode_only(video: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(video))
    n, t = 0, time.perf_counter()
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    return n, time.perf_counter() - t


def full_pipeline(video: Path, model, settings, live=None) -> tuple[int, float, dict]:
    from device import sources
    from device.pipeline import Labeller, Stats

    source = sources.VideoCapture(str(video), live=False)
    labeller, stats = Labeller(model, settings, live=True), Stats()
    t = time.perf_counter()
    for i, frame in enumerate(source.frames()):
        record, x = labeller(frame, i)
        stats.add(record)
        if live is not None:  # what classify-cam --serve adds to each frame
            live.update(frame.image, x, [record])
    elapsed = time.perf_counter() - t
    source.close()
    return stats.frames, elapsed, {k: v / max(stats.frames, 1) for k, v in stats.ms.items()}


def served_pipeline(video: Path, model, settings, viewers: int) -> float:
    """ms a frame with --serve's page running: no viewer, or viewers polling it as the page does."""
    import threading
    import urllib.request

    from device import web
    from device.config import ConfigFile

    live = web.Live({"bench": True})
    server = web.Server("127.0.0.1:0", live, ConfigFile(None))
    done = threading.Event()

    def viewer():  # the page: a picture every 300 ms, the state every 500 ms
        n = 0
        while not done.is_set():
            for path in (["frame.jpg", "state.json"] if n % 2 == 0 else ["frame.jpg"]):
                try:
                    urllib.request.urlopen(server.url + path, timeout=5).read()
                except OSError:
                    pass
            n += 1
            done.wait(0.3)

    threads = [threading.Thread(target=viewer, daemon=True) for _ in range(viewers)]
    for t in threads:
        t.start()
    frames, elapsed, _ = full_pipeline(video, model, settings, live)
    done.set()
    server.close()
    return 1000 * elapsed / frames


def events_pipeline(video: Path, model) -> tuple[int, float, int, int, int]:
    """Stockroom mode (--events) over a stockroom video: frames, seconds, inferences run, placed, removed."""
    from device import sources
    from device.stockroom.tracker import Tracker

    source = sources.VideoCapture(str(video), live=False)
    tracker = Tracker(model, "bench", 0.5)
    n, events, t = 0, [], time.perf_counter()
    for frame in source.frames():
        events += tracker.feed(frame)
        n += 1
    elapsed = time.perf_counter() - t
    source.close()
    kinds = [e["event"] for e in events]
    return n, elapsed, tracker.inferences, kinds.count("placed"), kinds.count("removed")


def still_photos(folder: Path | None) -> tuple[str, list]:
    """Decoded stills (RGB) to time: the photos under folder, or synthetic ones at two sizes."""
    from device import sources
    from tools.demo import render_photo

    if folder is not None:
        images = [f.image for f in sources.ImageFiles(sources.images_under(folder)).frames() if f.error is None]
        return f"{len(images)} photos under {folder}", images
    garments = (np.random.default_rng(1).random((20, 28, 28)) * 255).astype(np.uint8)
    try:
        from train import data as data_mod

        garments = data_mod.load("fashion", download=False).test.images[:20]
    except Exception:  # noqa: BLE001 (a lean device install has the loader but maybe not the data)
        pass
    images = [render_photo(g, size=size, seed=i) for size in [(640, 480), (3264, 2448)] for i, g in enumerate(garments)]
    return "20 synthetic 640x480 and 20 synthetic 3264x2448 photos", images


def time_stills(images) -> list[float]:
    """ms of preprocessing per still photo (GrabCut, as classify-cam does for image files)."""
    from device.preprocess import prepare

    times = []
    for image in images:
        t = time.perf_counter()
        prepare(image, segment="grabcut")
        times.append((time.perf_counter() - t) * 1000)
    return times


def main(argv=None) -> int:
    args = parse_args(argv)
    from device.model import Model
    from device.pipeline import LabelSettings

    model = Model(args.model, args.model.parent / "labels.txt", args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or write_video(Path(tmp) / "bench.mp4", args.frames, args.codec)
        decode = min((decode_only(video) for _ in range(args.repeat)), key=lambda r: r[1])
        full = min((full_pipeline(video, model, LabelSettings()) for _ in range(args.repeat)), key=lambda r: r[1])
        room = args.stockroom_video or stockroom_video(Path(tmp) / "stockroom.mp4", args.garments)
        room_decode = min((decode_only(room) for _ in range(args.repeat)), key=lambda r: r[1])
        events = min((events_pipeline(room, model) for _ in range(args.repeat)), key=lambda r: r[1])
    d_ms = 1000 * decode[1] / decode[0]
    f_ms = 1000 * full[1] / full[0]
    stages = full[2]
    print(f"video: {args.video or f'synthetic 640x480 {args.codec}'}, {decode[0]} frames; "
          f"{model.runtime.name} {model.runtime.version}, {args.threads} thread(s)")
    print(f"decode only   {d_ms:7.2f} ms/frame  {1000 / d_ms:7.1f} fps")
    print(f"full pipeline {f_ms:7.2f} ms/frame  {1000 / f_ms:7.1f} fps")
    print("  stages: " + ", ".join(f"{k} {v:.2f} ms" for k, v in stages.items())
          + "   (capture = decode + BGR->grey)")
    ratio = f_ms / d_ms
    print(f"pipeline / decode = {ratio:.2f}  (goal <= 2.00: {'met' if ratio <= 2 else 'NOT met'})")
    rd_ms = 1000 * room_decode[1] / room_decode[0]
    e_ms = 1000 * events[1] / events[0]
    what = args.stockroom_video or f"rendered 640x480 mp4v, {args.garments} garments {GARMENT_S:g} s each"
    print(f"stockroom video: {what}, {events[0]} frames")
    print(f"  decode only {rd_ms:7.2f} ms/frame  {1000 / rd_ms:7.1f} fps")
    print(f"  --events    {e_ms:7.2f} ms/frame  {1000 / e_ms:7.1f} fps   ({events[3]} placed, {events[4]} removed, "
          f"{events[2]} inferences)")
    ratio = e_ms / rd_ms
    print(f"events / decode = {ratio:.2f}  (goal <= 1.50: {'met' if ratio <= 1.5 else 'NOT met'})")
    if args.serve:
        with tempfile.TemporaryDirectory() as tmp:
            video = args.video or write_video(Path(tmp) / "bench.mp4", args.frames, args.codec)
            base = min(1000 * r[1] / r[0] for r in (full_pipeline(video, model, LabelSettings()) for _ in range(args.repeat)))
            none = min(served_pipeline(video, model, LabelSettings(), 0) for _ in range(args.repeat))
            one = min(served_pipeline(video, model, LabelSettings(), 1) for _ in range(args.repeat))
        print(f"--serve, no viewer  {none:7.2f} ms/frame  (+{100 * (none / base - 1):.1f}% on {base:.2f}; goal <= 5%)")
        print(f"--serve, one viewer {one:7.2f} ms/frame  (+{100 * (one / base - 1):.1f}%; goal <= 25%)")
    what, images = still_photos(args.photos)
    ms = np.array(min((time_stills(images) for _ in range(args.repeat)), key=sum))
    print(f"still photos ({what}): preprocessing mean {ms.mean():.1f} ms, 95th percentile "
          f"{np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms  (goal <= 50 ms a photo: "
          f"{'met' if ms.max() <= 50 else f'NOT met by {(ms > 50).sum()} of {len(ms)}'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
