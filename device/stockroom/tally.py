"""stockroom-tally: the counts of placed items per device and label, from every device under one MQTT prefix.

    stockroom-tally --mqtt mqtt://broker/stockroom           # the tallies, then a line per new item (by id)
    stockroom-tally --mqtt mqtt://broker/stockroom --once    # every device's retained tally, then exit

Many Pis in many stockrooms meet at one broker (mosquitto for a site, a bridged or managed broker
beyond): each publishes PREFIX/<device>/events and a retained PREFIX/<device>/tally.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter


def parse_args(argv=None) -> argparse.Namespace:
    from device.oneline import OneLineParser

    p = OneLineParser(prog="stockroom-tally", description=__doc__.split("\n\n")[0])
    p.add_argument("--mqtt", required=True, metavar="URL", help="mqtt://[user[:password]@]host[:port]/PREFIX")
    p.add_argument("--once", action="store_true", help="print every device's retained tally and exit")
    p.add_argument("--wait", type=float, default=3.0,
                   help="seconds to wait for the retained tallies before printing them (default 3)")
    return p.parse_args(argv)


def table(counts: dict) -> str:
    """device -> Counter(label -> n) as lines: 'device  label n, label n  (total N)'."""
    lines = []
    for device in sorted(counts):
        c = counts[device]
        lines.append(f"{device}: " + ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
                     + f"  (total {sum(c.values())})")
    return "\n".join(lines) or "no devices yet"


def counts_of(data) -> Counter | None:
    """A retained tally as label -> count, or None when it is not one (junk on the broker is ignored, never fatal)."""
    if not isinstance(data, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
               for k, v in data.items()):
        return None
    return Counter(data)


class View:
    """What stockroom-tally knows: each device's retained tally (the device's own count, kept across restarts
    of the device, the broker and this tool) and the events seen live, de-duplicated by id."""

    def __init__(self):
        self.tallies, self.seen = {}, set()

    def message(self, topic: str, payload: bytes) -> str | None:
        """Take one message; the line to print for a new placed item, else None. Never raises."""
        levels = topic.split("/")
        if len(levels) < 3:
            return None
        device, kind = levels[-2], levels[-1]
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, or nested too deep to read
            return None
        if kind == "tally":
            counts = counts_of(data)
            if counts is not None:
                self.tallies[device] = counts
            return None
        if kind != "events" or not isinstance(data, dict) or data.get("event") not in ("placed", "relabelled"):
            return None
        key, label = data.get("id"), data.get("label")
        if not isinstance(key, str) or not isinstance(label, str):
            return None  # an event without a usable id or label is junk
        # At least once: a resent event keeps its id (and a correction its time), so each is shown once.
        seen = key if data["event"] == "placed" else (key, "relabelled", str(data.get("time")), label)
        if seen in self.seen:
            return None
        self.seen.add(seen)
        if data["event"] == "relabelled":
            return f"{data.get('time', '')}  {device}: {data.get('was')} corrected to {label}"
        return f"{data.get('time', '')}  {device}: {label}"

    def table(self) -> str:
        return table(self.tallies)


def main(argv=None) -> int:
    args = parse_args(argv)
    import paho.mqtt.client as mqtt

    from device.stockroom.url import MqttUrlError, parse_url

    try:
        broker = parse_url(args.mqtt)
    except MqttUrlError as exc:
        print(f"stockroom-tally: {exc}", file=sys.stderr)
        return 2
    view, connected, failed = View(), threading.Event(), []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            failed.append(str(reason_code))
            connected.set()
            return
        # Subscribed again at every (re)connect: the retained tallies come back with it, so a broker restart
        # never leaves the view behind.
        client.subscribe([(f"{broker.prefix}/+/events", 1), (f"{broker.prefix}/+/tally", 1)])
        connected.set()

    def on_message(client, userdata, msg):
        line = view.message(msg.topic, msg.payload)
        if line and not args.once:
            print(f"{line}  |  {view.table().replace(chr(10), '  |  ')}", flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if broker.user:
        client.username_pw_set(broker.user, broker.password)
    if broker.tls:
        client.tls_set()
    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except OSError as exc:
        from device.stockroom.url import reason

        print(f"stockroom-tally: cannot reach the broker {broker}: {reason(exc)}", file=sys.stderr)
        return 2
    client.loop_start()
    try:
        if not connected.wait(10) or failed:
            print(f"stockroom-tally: the broker {broker} {'refused: ' + failed[0] if failed else 'did not answer'}",
                  file=sys.stderr)
            return 2
        time.sleep(args.wait)  # retained tallies arrive right after subscribing
        print(view.table(), flush=True)
        if args.once:
            return 0
        print(f"stockroom-tally: listening on {broker} (Ctrl-C to stop)", file=sys.stderr)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
