"""Events to an MQTT broker, store and forward: on disk first (queue.py), off the disk only when the broker took them.

Topics under the URL's PREFIX (CONTRACT): `PREFIX/<device>/events` (each event, QoS 1, not retained),
`PREFIX/<device>/tally` (retained: label -> placed items), `PREFIX/<device>/status` (retained
`online`; `offline` as the last will and at a clean exit), and `PREFIX/<device>/claim` (retained:
which machine uses this device id, so that two devices given the same id are told so).

MQTT 5, so that the broker's answer to each event says whether it took it: an event it refuses
(an ACL that denies the topic answers "Not authorized") stays queued, said on stderr, and is tried
again later; it is never deleted as delivered. The connection is made by our own link thread, so
the reason a broker cannot be reached (refused, no answer, TLS to a plain port) is said at once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from device.host import host_name, machine_id
from device.stockroom.url import Broker, reason

log = logging.getLogger("classify-cam")
CONNACK_S = 10.0  # seconds a broker may take to answer the login before it counts as not answering
REFUSED_RETRY_S = 30.0  # an event the broker refused is tried again after this long (an ACL may be fixed)


class Publisher:
    """The broker connection (a link thread), the sender thread, and the retained tally, status and claim."""

    def __init__(self, broker: Broker, device: str, queue, tally: dict | None = None):
        import paho.mqtt.client as mqtt

        self.broker, self.device, self.queue = broker, device, queue
        self.tally = dict(tally or {})
        self.topic = f"{broker.prefix}/{device}"
        self.claim = {"machine": machine_id(), "host": host_name(), "pid": os.getpid(), "run": os.urandom(6).hex()}
        self.connected, self.wake, self.acked = threading.Event(), threading.Event(), threading.Event()
        self.results = {}  # mid -> the broker's reason code for it
        self.closing, self.deadline = False, 0.0
        self.connections, self.problem, self.since = 0, "connecting", time.time()
        self.refused, self.unwritten = None, []  # the broker's refusal; events not on the disk (sent from memory)
        self.memory = threading.Lock()  # guards `unwritten`: the loop adds, the sender takes
        self.tally_said = self.memory_said = False
        self.clash, self.clash_said = None, 0.0  # the other machine's host name, when two share this id
        self.stopped = threading.Event()
        self.up = False  # this connection was accepted (on_connect): its loss is said, and retried at once
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"classify-cam-{device}",
                                  protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        if broker.user:
            self.client.username_pw_set(broker.user, broker.password)
        if broker.tls:
            self.client.tls_set()
        self.client.will_set(f"{self.topic}/status", "offline", qos=1, retain=True)
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_publish, self.client.on_message = self._on_publish, self._on_message
        self.link = threading.Thread(target=self._link, name="mqtt-link", daemon=True)
        self.sender = threading.Thread(target=self._send, name="mqtt-sender", daemon=True)
        self.link.start()
        self.sender.start()

    # -- the connection -------------------------------------------------------------------------
    def _link(self) -> None:
        """Connect, run the network loop until the connection is lost, say why, wait (1 s doubling to 10 s), again."""
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        delay = 1.0
        while not self.closing:
            try:
                self.client.reconnect()
            except OSError as exc:  # refused, unreachable, unknown host, TLS to a plain port, no answer
                self._down(f"cannot reach it: {reason(exc)}")
            else:
                self.up = False
                watchdog = threading.Timer(CONNACK_S, self._no_answer)
                watchdog.daemon = True
                watchdog.start()
                self.client.loop_forever()  # until the connection is lost or close() disconnects
                watchdog.cancel()
                self.connected.clear()
                if self.up and not self.closing:  # it had been up: say so, and try again soon
                    self._down("lost the connection")
                    delay = 1.0
            if self.stopped.wait(delay):
                return
            delay = min(delay * 2, 10.0)

    def _no_answer(self) -> None:
        """Connected, but no answer to the login: not an MQTT broker, or a stuck one. Said, and tried again."""
        if not self.up and not self.closing:
            self._down(f"no answer to the login in {CONNACK_S:.0f} s (is it an MQTT broker?)")
            self.client.disconnect()

    def _down(self, why: str) -> None:
        if self.problem is None or self.problem == "connecting":
            log.warning("warning: MQTT broker %s: %s; events stay queued (%d waiting) and are sent when it answers",
                        self.broker, why, len(self.queue))
            self.since = time.time()
        self.problem = why

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._down(f"it refused the connection ({reason_code})")
            return
        if self.problem not in (None, "connecting"):
            log.info("MQTT broker %s reached again; %d events waiting are being sent", self.broker, len(self.queue))
        self.problem, self.since = None, time.time()
        self.connections, self.up = self.connections + 1, True
        client.subscribe(f"{self.topic}/claim", qos=1)
        client.publish(f"{self.topic}/claim", json.dumps(self.claim), qos=1, retain=True)
        client.publish(f"{self.topic}/status", "online", qos=1, retain=True)
        client.publish(f"{self.topic}/tally", json.dumps(self.tally, sort_keys=True), qos=1, retain=True)
        self.connected.set()
        self.wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.acked.set()

    def _on_message(self, client, userdata, msg):
        """Another run's claim on this device id: said (at most once a minute), never fought over.

        At the first connection the retained claim is the last run's: this machine's own earlier run is
        no news, another machine's is worth a note. Any later claim that is not this run's means that
        another run connected with this id meanwhile (the broker lets one connection per client id, so
        two such devices knock each other off at every reconnect): a clash."""
        try:
            claim = json.loads(msg.payload)
            run, machine = claim["run"], claim["machine"]
        except (ValueError, TypeError, KeyError, RecursionError):  # junk anyone may publish: never fatal
            return
        first = msg.retain and self.connections <= 1
        if run == self.claim["run"] or (first and machine == self.claim["machine"]):
            return
        if time.monotonic() - self.clash_said < 60:
            return
        self.clash_said = time.monotonic()
        if first:
            log.warning("warning: the device id %s was last used on this broker by another machine (%s); if it still "
                        "runs, give each device its own --device-id", self.device, claim.get("host", "?"))
        else:
            log.warning("warning: another device (%s) uses the device id %s on this broker: the two knock each other "
                        "off and share one tally; give each its own --device-id", claim.get("host", "?"), self.device)
            self.clash = claim.get("host", "?")

    # -- the events -------------------------------------------------------------------------------
    def publish(self, event: dict, tally: dict) -> None:
        """Queue the event and the tally (on disk before anything else) and let the sender take it.

        A queue that cannot be written (a full disk) keeps the event in memory and tries again with the
        next one: said once, counted in the summary, never dropped while the run lasts."""
        with self.memory:
            self.unwritten.append(event)
            while self.unwritten:
                try:
                    self.queue.put(self.unwritten[0])
                except OSError as exc:
                    if not self.memory_said:  # once an outage of the disk, not once an event
                        log.warning("warning: cannot write the queue %s (%s): events are sent from memory, and "
                                    "lost if the device stops before the broker has them", self.queue.folder,
                                    exc.strerror or exc)
                        self.memory_said = True
                    break
                self.unwritten.pop(0)
                self.memory_said = False
        self.tally = dict(tally)
        try:
            self.queue.keep_tally(self.tally)
            self.tally_said = self.memory_said = False
        except OSError as exc:
            if not self.tally_said:
                log.warning("warning: cannot keep the tally beside the queue (%s)", exc.strerror or exc)
                self.tally_said = True
        if self.connected.is_set():
            self.client.publish(f"{self.topic}/tally", json.dumps(self.tally, sort_keys=True), qos=1, retain=True)
        self.wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.results[mid] = reason_code
        self.acked.set()

    def _next(self):
        """(path or None, payload): the oldest event on disk, else the oldest held in memory, else None."""
        item = self.queue.oldest()
        if item is None:
            with self.memory:
                item = (None, json.dumps(self.unwritten[0]).encode()) if self.unwritten else None
        return item

    def _send(self) -> None:
        while True:
            item = self._next() if self.connected.is_set() else None
            if item is None:
                if self.closing and (not len(self.queue) or time.monotonic() > self.deadline):
                    return
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            path, payload = item
            info = self.client.publish(f"{self.topic}/events", payload, qos=1, retain=False)
            while info.mid not in self.results:  # the broker's PUBACK; paho resends after a reconnect
                if self.closing and time.monotonic() > self.deadline:
                    return
                self.acked.wait(0.2)
                self.acked.clear()
            code = self.results.pop(info.mid)
            if not code.is_failure:  # "No matching subscribers" is a success: the broker took it
                if path is None:
                    with self.memory:
                        self.unwritten.pop(0)
                else:
                    self.queue.done(path)
                self.refused = None
                continue
            if self.refused is None:
                log.warning("warning: MQTT broker %s refused the event %s on %s/events (%s): it stays queued and is "
                            "tried again every %.0f s", self.broker, path.name if path else "(in memory)", self.topic,
                            code, REFUSED_RETRY_S)
            self.refused = str(code)
            end = time.monotonic() + REFUSED_RETRY_S
            while time.monotonic() < end and not (self.closing and time.monotonic() > self.deadline):
                self.wake.wait(0.5)
                self.wake.clear()

    def state(self) -> dict:
        """For the page and the exit summary: reached or not (since when), waiting events, the last refusal."""
        return {"broker": str(self.broker), "reached": self.connected.is_set(), "problem": self.problem,
                "since": self.since, "waiting": len(self.queue) + len(self.unwritten), "refused": self.refused,
                "clash": self.clash}

    def close(self, wait: float) -> int:
        """Wait up to `wait` seconds for the queue to drain, say `offline`, disconnect; return what is left."""
        self.deadline = time.monotonic() + wait
        self.closing = True
        self.wake.set()
        self.sender.join(max(wait, 0) + 1)
        if self.connected.is_set():
            self.client.publish(f"{self.topic}/status", "offline", qos=1, retain=True).wait_for_publish(2)
        self.stopped.set()
        self.client.disconnect()
        self.link.join(2)
        self.queue.close()
        return len(self.queue) + len(self.unwritten)


def default_queue(device: str) -> Path:
    """$STATE_DIRECTORY under systemd (StateDirectory=), else ~/.local/state/classify-cam/<device>/."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    return Path.home() / ".local" / "state" / "classify-cam" / device
