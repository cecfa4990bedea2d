"""classify-cam --serve: a web page for the headless Pi. See what the camera and the model see; set up the table.

    live.py     the Live state the loop hands over, and its pictures encoded when a viewer asks
    server.py   the page's routes, served in a thread beside the loop: the page, its state, settings and corrections
    transport.py the threaded HTTP server under them, which held-open or vanished clients cannot take down
    page.html   the page itself (package data), watching /stream.mjpg and polling /state.json
"""

from device.web.live import Live
from device.web.server import Server

__all__ = ["Live", "Server"]
