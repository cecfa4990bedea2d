"""Benchmark: how fast the MQTT queue drains once the broker is back (store and forward at scale).

    python -m tools.queue_bench [--events 30000]

Fills a queue folder with N events while no broker answers (as a day of work through an outage
would), then starts a real mosquitto and times the publisher sending them all, each acknowledged
by the broker before its file is deleted. The goal: 30,000 events in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.queue_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=30000, help="events queued during the outage (default 30000)")
    args = p.parse_args(argv)
    mosquitto = shutil.which("mosquitto")
    if not mosquitto:
        print("queue_bench: needs mosquitto on PATH (sudo apt-get install mosquitto)", file=sys.stderr)
        return 2
    from device.stockroom.mqtt import Publisher
    from device.stockroom.url import Broker
    from device.stockroom.queue import Queue

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        queue = Queue(Path(tmp) / "queue")
        t = time.perf_counter()
        event = {"event": "placed", "device": "bench", "label": "Coat", "confidence": 0.9, "top": [["Coat", 0.9]]}
        for i in range(args.events):
            queue.put({**event, "id": f"bench-{i}", "item": i})
        filled = time.perf_counter() - t
        print(f"queued {args.events} events in {filled:.1f} s ({args.events / filled:.0f} a second, each fsynced)")
        conf = Path(tmp) / "m.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            t = time.perf_counter()
            publisher = Publisher(Broker("127.0.0.1", port, "bench", False, None, None), "bench", queue, {})
            shown = time.perf_counter()
            while len(queue) and time.perf_counter() - t < 600:
                time.sleep(0.2)
                if time.perf_counter() - shown > 10:
                    print(f"  {args.events - len(queue)} sent ({len(queue)} left)", flush=True)
                    shown = time.perf_counter()
            drained = time.perf_counter() - t
            left = publisher.close(5)
        finally:
            broker.terminate()
            broker.wait(5)
    sent = args.events - left
    print(f"drained {sent} of {args.events} events in {drained:.1f} s ({sent / drained:.0f} a second; "
          f"goal: 30,000 in under 120 s: {'met' if left == 0 and drained * 30000 / args.events < 120 else 'NOT met'})")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
