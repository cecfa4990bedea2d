"""Events to an MQTT broker, store and forward: on disk first, off the disk only when the broker has them.

Topics under the URL's PREFIX (CONTRACT): `PREFIX/<device>/events` (each event, QoS 1, not retained),
`PREFIX/<device>/tally` (retained: label -> placed items), `PREFIX/<device>/status` (retained
`online`; `offline` as the last will and at a clean exit).

The queue is a folder: one file per event, named by a sequence number, written whole (a temporary
file, fsync, rename) before anything is sent. One sender thread takes the oldest file, publishes
it with QoS 1, waits for the broker's PUBACK, and only then deletes it: the queue drains in order,
across broker outages (paho reconnects and resends what was in flight) and across restarts of
classify-cam (the files are still there). At least once: an event sent again keeps its `id`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger("classify-cam")
PASSWORD_ENV = "CLASSIFY_CAM_MQTT_PASSWORD"


class MqttUrlError(ValueError):
    """A --mqtt URL that cannot be used: a set-up error (exit 2)."""


@dataclass
class Broker:
    host: str
    port: int
    prefix: str
    tls: bool
    user: str | None
    password: str | None

    def __str__(self) -> str:  # never the password
        who = f"{self.user}@" if self.user else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{who}{self.host}:{self.port}/{self.prefix}"


def parse_url(url: str) -> Broker:
    """mqtt://[user[:password]@]host[:port]/PREFIX (or mqtts://); the password may come from $CLASSIFY_CAM_MQTT_PASSWORD."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MqttUrlError(f"--mqtt {redact(url)}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttUrlError(f"--mqtt {redact(url)}: the URL must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise MqttUrlError(f"--mqtt {redact(url)}: no broker host in the URL")
    prefix = parts.path.strip("/")
    if not prefix or any(c in prefix for c in "+#") or parts.query or parts.fragment:
        raise MqttUrlError(f"--mqtt {redact(url)}: give a topic prefix without + or #, e.g. mqtt://broker/stockroom")
    password = unquote(parts.password) if parts.password else os.environ.get(PASSWORD_ENV)
    return Broker(parts.hostname, port or (8883 if parts.scheme == "mqtts" else 1883), prefix,
                  parts.scheme == "mqtts", unquote(parts.username) if parts.username else None, password)


def redact(url: str) -> str:
    """The URL as it may be printed: the password replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        pass
    return url


class Queue:
    """Events waiting for the broker, one file each, oldest first; kept across restarts."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob("*.tmp"):  # a write cut short by a power cut: never renamed, never sent
            stale.unlink()
        numbers = [int(p.stem) for p in self.folder.glob("*.json") if p.stem.isdigit()]
        self.next = max(numbers, default=-1) + 1
        self.lock = threading.Lock()

    def put(self, event: dict) -> Path:
        with self.lock:
            path = self.folder / f"{self.next:012d}.json"
            self.next += 1
        write_whole(path, json.dumps(event).encode())
        return path

    def tally(self) -> dict:
        """The counts per label kept beside the queue (tally.json), so a restart goes on counting."""
        path = self.folder / "tally.json"
        try:
            tally = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            return {}
        return tally if isinstance(tally, dict) else {}

    def keep_tally(self, tally: dict) -> None:
        write_whole(self.folder / "tally.json", json.dumps(tally, sort_keys=True).encode())

    def oldest(self) -> Path | None:
        files = sorted(p for p in self.folder.glob("*.json") if p.stem.isdigit())
        return files[0] if files else None

    def __len__(self) -> int:
        return sum(1 for p in self.folder.glob("*.json") if p.stem.isdigit())


def write_whole(path: Path, data: bytes) -> None:
    """Write a file so that it is either all there or not there at all (a power cut in between)."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Publisher:
    """The broker connection, the sender thread, and the retained tally and status."""

    def __init__(self, broker: Broker, device: str, queue: Queue, tally: dict | None = None):
        import paho.mqtt.client as mqtt

        self.broker, self.device, self.queue = broker, device, queue
        self.tally = dict(tally or {})
        self.topic = f"{broker.prefix}/{device}"
        self.connected = threading.Event()
        self.wake = threading.Event()
        self.closing, self.deadline = False, 0.0
        self.refused_said = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"classify-cam-{device}",
                                  clean_session=True)
        if broker.user:
            self.client.username_pw_set(broker.user, broker.password)
        if broker.tls:
            self.client.tls_set()
        self.client.will_set(f"{self.topic}/status", "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        self.sender = threading.Thread(target=self._send, name="mqtt-sender", daemon=True)
        self.sender.start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            if not self.refused_said:  # said once; events keep queueing until the login is fixed
                log.warning("MQTT broker %s refused the connection: %s; events stay queued", self.broker, reason_code)
                self.refused_said = True
            return
        self.refused_said = False
        client.publish(f"{self.topic}/status", "online", qos=1, retain=True)
        client.publish(f"{self.topic}/tally", json.dumps(self.tally, sort_keys=True), qos=1, retain=True)
        self.connected.set()
        self.wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()

    def publish(self, event: dict, tally: dict) -> None:
        """Queue the event and the tally (on disk before anything else) and let the sender take it."""
        self.queue.put(event)
        self.tally = dict(tally)
        self.queue.keep_tally(self.tally)
        if self.connected.is_set():
            self.client.publish(f"{self.topic}/tally", json.dumps(self.tally, sort_keys=True), qos=1, retain=True)
        self.wake.set()

    def _send(self) -> None:
        while True:
            path = self.queue.oldest()
            if path is None or not self.connected.is_set():
                if self.closing and path is None:
                    return
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            try:
                payload = path.read_bytes()
            except OSError:
                continue
            info = self.client.publish(f"{self.topic}/events", payload, qos=1, retain=False)
            while not info.is_published():  # PUBACK; paho resends it after a reconnect
                if self.closing and time.monotonic() > self.deadline:
                    return
                time.sleep(0.01)
            path.unlink(missing_ok=True)

    def close(self, wait: float) -> int:
        """Wait up to `wait` seconds for the queue to drain, say `offline`, disconnect; return what is left."""
        self.deadline = time.monotonic() + wait
        self.closing = True
        self.wake.set()
        while len(self.queue) and time.monotonic() < self.deadline:
            time.sleep(0.05)
        if self.connected.is_set():
            self.client.publish(f"{self.topic}/status", "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        return len(self.queue)


def default_queue(device: str) -> Path:
    """$STATE_DIRECTORY under systemd (StateDirectory=), else ~/.local/state/classify-cam/<device>/."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    return Path.home() / ".local" / "state" / "classify-cam" / device
