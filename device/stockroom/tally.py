"""stockroom-tally: the counts of placed items per device and label, from every device under one MQTT prefix.

    stockroom-tally --mqtt mqtt://broker/stockroom           # live: a line per new event, de-duplicated by id
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
from collections import Counter, defaultdict


def parse_args(argv=None) -> argparse.Namespace:
    from device.oneline import OneLineParser

    p = OneLineParser(prog="stockroom-tally", description=__doc__.split("\n\n")[0])
    p.add_argument("--mqtt", required=True, metavar="URL", help="mqtt://[user[:password]@]host[:port]/PREFIX")
    p.add_argument("--once", action="store_true", help="print every device's retained tally and exit")
    p.add_argument("--wait", type=float, default=3.0, help="with --once: seconds to wait for the tallies (default 3)")
    return p.parse_args(argv)


def table(counts: dict) -> str:
    """device -> Counter(label -> n) as lines: 'device  label n, label n  (total N)'."""
    lines = []
    for device in sorted(counts):
        c = counts[device]
        lines.append(f"{device}: " + ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
                     + f"  (total {sum(c.values())})")
    return "\n".join(lines) or "no devices yet"


def main(argv=None) -> int:
    args = parse_args(argv)
    import paho.mqtt.client as mqtt

    from device.stockroom.mqtt import MqttUrlError, parse_url

    try:
        broker = parse_url(args.mqtt)
    except MqttUrlError as exc:
        print(f"stockroom-tally: {exc}", file=sys.stderr)
        return 2
    seen, counts, tallies = set(), defaultdict(Counter), {}
    connected, failed = threading.Event(), []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            failed.append(str(reason_code))
            connected.set()
            return
        client.subscribe([(f"{broker.prefix}/+/events", 1), (f"{broker.prefix}/+/tally", 1)])
        connected.set()

    def on_message(client, userdata, msg):
        device, kind = msg.topic.split("/")[-2:]
        try:
            data = json.loads(msg.payload)
        except ValueError:
            return
        if kind == "tally" and isinstance(data, dict):
            tallies[device] = data
        elif kind == "events" and not args.once and isinstance(data, dict) and data.get("event") == "placed":
            if data.get("id") in seen:  # at least once: a resent event keeps its id
                return
            seen.add(data.get("id"))
            counts[device][data.get("label", "?")] += 1
            print(f"{data.get('time', '')}  {device}: {data.get('label')}  |  {table(counts).replace(chr(10), '  |  ')}",
                  flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if broker.user:
        client.username_pw_set(broker.user, broker.password)
    if broker.tls:
        client.tls_set()
    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except OSError as exc:
        print(f"stockroom-tally: cannot reach the broker {broker}: {exc}", file=sys.stderr)
        return 2
    client.loop_start()
    try:
        if not connected.wait(10) or failed:
            print(f"stockroom-tally: the broker {broker} {'refused: ' + failed[0] if failed else 'did not answer'}",
                  file=sys.stderr)
            return 2
        if args.once:
            time.sleep(args.wait)  # retained tallies arrive right after subscribing
            print(table({d: Counter(t) for d, t in tallies.items()}))
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
