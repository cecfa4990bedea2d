"""classify-cam --serve: a web page for the headless Pi. See what the camera and the model see; set up the table.

    server.py   the HTTP server in a thread beside the loop, and the Live state the loop hands it
    page.html   the page itself (package data), polling /state.json and /frame.jpg
"""

from device.web.server import Live, Server

__all__ = ["Live", "Server"]
