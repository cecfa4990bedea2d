"""The HTTP transport under the page: a threaded server and a request handler that a browser cannot take down.

Only the standard library. What the page serves (its routes) is server.py's; this module only makes sure that
held-open, dribbling, resetting or vanished clients cost a slot for a bounded time and never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("classify-cam")


class Guarded(ThreadingHTTPServer):
    """A threaded HTTP server that a browser cannot take down: at most MAX_CLIENTS connections at once (more are
    closed at once, so held-open sockets never use up the process's descriptors, which the camera and the broker
    need too), and a client that resets or stalls is dropped without a traceback on the device's stderr."""

    daemon_threads = True
    MAX_CLIENTS = 16
    request_queue_size = 64  # the listen backlog (5 by default): a burst of connections waits for no SYN retry (1 s)

    def __init__(self, *args, **kwargs):
        self.slots = threading.BoundedSemaphore(self.MAX_CLIENTS)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:  # an answer the client can act on (try again), not a dropped connection
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nRetry-After: 1\r\n"
                                b"Connection: close\r\n\r\nbusy\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:  # noqa: BLE001 (no thread could start: give the slot back)
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            log.warning("web page: %s from %s: %s", type(exc).__name__, client_address[0], exc)


class GuardedHandler(BaseHTTPRequestHandler):
    """Deadlines for every stage of a request, and small helpers to answer one."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # a viewer that stops reading is dropped, never waited for
    idle_timeout = 2  # a connection that sends no request frees its slot soon, so idle sockets cannot lock the page out
    header_deadline = 5  # seconds from the first byte to the end of the headers: a dribbling client is cut off

    def handle_one_request(self):
        self.connection.settimeout(self.idle_timeout)  # waiting for a request
        # Reading the headers has a deadline of its own: a client sending one byte every few seconds never
        # trips the per-read timeout, and 16 of them would hold every slot for as long as they liked.
        cutoff = threading.Timer(self.header_deadline, self.cut_off)
        cutoff.daemon = True
        self.headers_read = self.body_read = False
        cutoff.start()
        try:
            super().handle_one_request()
        finally:
            cutoff.cancel()

    def cut_off(self):
        if not self.headers_read:
            try:
                self.connection.shutdown(2)  # SHUT_RDWR: the blocked read returns, the slot is freed
            except OSError:
                pass

    def parse_request(self):
        self.connection.settimeout(self.timeout)  # a request came: reading it and answering it
        ok = super().parse_request()  # reads the headers
        self.headers_read = True
        return ok

    def log_message(self, *args):  # no access log on the device's stderr
        pass

    def send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.command not in ("GET", "HEAD") and not self.body_read:
            # Answered before its body was read (a wrong token, too large, no such path): the unread bytes would
            # be taken for the next request on this connection, so the connection ends with this answer.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def text(self, code: int, message: str) -> None:
        self.send(code, message.encode(), "text/plain; charset=utf-8")

    def body(self):
        """The request's JSON object, or None after answering 400/413 (a bad length, not JSON, too large)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return self.text(400, "Content-Length must be a whole number of bytes")
        if length > 10_000:
            return self.text(413, "the request body is too large (10,000 bytes at most)")
        data, self.body_read = self.rfile.read(length), True
        try:
            body = json.loads(data or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self.text(400, "the request body is not JSON (or nested too deep)")
        return body if isinstance(body, dict) else self.text(400, "the request body must be a JSON object")
