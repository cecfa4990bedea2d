"""A --mqtt URL as the broker it names, checked at set-up; and why a broker cannot be reached, in words."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

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
    """mqtt://[user[:password]@]host[:port]/PREFIX (or mqtts://); the password may also come from
    $CLASSIFY_CAM_MQTT_PASSWORD."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MqttUrlError(f"--mqtt {redact(url)}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttUrlError(f"--mqtt {redact(url)}: the URL must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise MqttUrlError(f"--mqtt {redact(url)}: no broker host in the URL")
    try:  # what the resolver would choke on later, in a thread: an empty or over-long label, a bad character
        parts.hostname.encode("idna")
    except UnicodeError:
        raise MqttUrlError(f"--mqtt {redact(url)}: {parts.hostname!r} is not a valid host name") from None
    prefix = unquote(parts.path.strip("/"))
    if not prefix or any(c in prefix for c in "+#\0") or parts.query or parts.fragment:
        raise MqttUrlError(f"--mqtt {redact(url)}: give a topic prefix without + or #, e.g. mqtt://broker/stockroom")
    if prefix.startswith("$"):  # $SYS and the like belong to the broker: it drops what clients publish there
        raise MqttUrlError(f"--mqtt {redact(url)}: topics starting with $ are the broker's own; choose another prefix")
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


def reason(exc: BaseException) -> str:
    """Why a connection failed, in words a person can act on."""
    import socket
    import ssl

    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or exc}): is that port a TLS (mqtts) port?"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    return exc.strerror or str(exc) or type(exc).__name__
