"""Benchmark: what a person watching the web page costs the device, in CPU time.

    python -m tools.page_bench [--garments 10] [--viewers 1] [--stockroom-video FILE]

Runs `classify-cam --events --realtime --serve` (stockroom mode at the camera's pace, as on the
Pi) over the same rendered stockroom video twice: once with nobody on the page, once with
--viewers browsers reading it as page.html does (the live picture's MJPEG stream; the state, once a
second, on a kept-alive connection as a browser keeps it; the model's input and the items at each
new event, and the items every 10 s). It prints the CPU seconds the
classify-cam process used each time (user + system, from the kernel's accounting of the child) and
their ratio. The goal: a viewer costs at most 10% more CPU than none.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.page_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--garments", type=int, default=10, help="garments in the rendered video, 3 s each (default 10)")
    p.add_argument("--stockroom-video", type=Path, metavar="FILE", help="a stockroom video (default: render one)")
    p.add_argument("--viewers", type=int, default=1, help="pages open at once in the second run (default 1)")
    return p.parse_args(argv)


def classify_cam() -> str:
    beside = Path(sys.executable).parent / "classify-cam"
    found = str(beside) if beside.is_file() else shutil.which("classify-cam")
    if not found:
        raise SystemExit("page_bench: classify-cam is not installed in this environment")
    return found


def stream(port: int, done: threading.Event) -> None:
    """The page's live picture: the MJPEG stream, read as fast as it comes."""
    while not done.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=5) as r:
                while not done.is_set() and r.read(65536):
                    pass
        except OSError:
            done.wait(0.5)


def watch(port: int, done: threading.Event) -> None:
    """One open page: the stream, and what page.html polls, at its pace, on one kept-alive connection."""
    import http.client

    threading.Thread(target=stream, args=(port, done), daemon=True).start()
    conn, last, n = None, None, 0
    while not done.is_set():
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/state.json")
            events = json.loads(conn.getresponse().read())["events"]
            now = json.dumps(events[:1])
            for path in (["/input.png", "/api/items?offset=0&limit=12"] if now != last or n % 10 == 0 else []):
                conn.request("GET", path)
                conn.getresponse().read()
            last, n = now, n + 1
        except (OSError, ValueError, http.client.HTTPException):
            conn = None
        done.wait(1.0)


def run(video: Path, viewers: int, folder: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one classify-cam run over the video."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = folder / f"events-{viewers}.jsonl"
    started = time.monotonic()
    proc = subprocess.Popen([classify_cam(), "--source", str(video), "--events", "--realtime", "--quiet", "--output",
                             str(log), "--save-items", str(folder / f"items-{viewers}"), "--serve",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()
    threads = [threading.Thread(target=watch, args=(port, done), daemon=True) for _ in range(viewers)]
    for t in threads:
        t.start()
    while True:  # reaped here, not by Popen, so the kernel's account of its CPU time comes with it
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    if proc.returncode != 0:
        raise SystemExit(f"page_bench: classify-cam failed: {proc.stderr.read().strip()}")
    return usage.ru_utime + usage.ru_stime, time.monotonic() - started


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        from tools.bench import stockroom_video

        video = args.stockroom_video or stockroom_video(Path(tmp) / "stockroom.mp4", args.garments)
        print(f"video: {args.stockroom_video or f'rendered 640x480, {args.garments} garments'}; classify-cam "
              f"--events --realtime --serve", flush=True)
        alone = run(video, 0, Path(tmp))
        print(f"no viewer      {alone[0]:6.2f} CPU s over {alone[1]:5.1f} s  ({100 * alone[0] / alone[1]:.0f}% of a "
              f"core)", flush=True)
        watched = run(video, args.viewers, Path(tmp))
        print(f"{args.viewers} viewer{'s' if args.viewers > 1 else ' '}      {watched[0]:6.2f} CPU s over "
              f"{watched[1]:5.1f} s  ({100 * watched[0] / watched[1]:.0f}% of a core)")
    extra = 100 * (watched[0] / alone[0] - 1)
    print(f"a viewer costs {extra:+.1f}% CPU  (goal <= 10%: {'met' if extra <= 10 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
