"""What this machine is: a name unique to it, for device ids and for telling two devices apart on a broker."""

from __future__ import annotations

import socket
import uuid
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def machine_id() -> str:
    """8 hex digits unique to this machine: /etc/machine-id's first 8 (systemd writes it at the first boot,
    so every Pi has its own although every Pi is called 'raspberrypi'); without one, the network card's address."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(path).read_text().strip().lower()
        except OSError:
            continue
        if len(text) >= 8 and all(c in "0123456789abcdef" for c in text[:8]):
            return text[:8]
    return f"{uuid.getnode() & 0xFFFFFFFF:08x}"


def host_name() -> str:
    """The host name, with anything that may not stand in an MQTT topic level replaced by '-'."""
    return "".join(c if id_char(c) else "-" for c in socket.gethostname()) or "classify-cam"


def id_char(c: str) -> bool:
    """What a device id is made of: ASCII letters, digits, '-', '_', '.'. It stands in MQTT topics, file names
    and the page's URLs (an item id starts with it), where anything else needs escaping somewhere."""
    return c.isascii() and (c.isalnum() or c in "-_.")


def default_device_id() -> str:
    return f"{host_name()}-{machine_id()}"
