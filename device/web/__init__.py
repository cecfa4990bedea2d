"""classify-cam --serve: a web page for the headless Pi. See what the camera and the model see; set up the table.

    live.py     the Live state the loop hands over, and its pictures encoded when a viewer asks
    server.py   the HTTP server in a thread beside the loop: the page, its state, settings and corrections
    page.html   the page itself (package data), polling /state.json and /frame.jpg
"""

from device.web.live import Live
from device.web.server import Server

__all__ = ["Live", "Server"]
