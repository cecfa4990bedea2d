"""SIGHUP (systemctl reload) counted, nothing more: imported and installed first thing (device/cli.py), before
the heavy imports, so a reload during start-up is no kill (systemd would take that death for a clean exit).

The handler only adds one to a number: no lock, no I/O, nothing a second signal arriving inside it could
deadlock or recurse on (threading.Event.set() takes a lock). device/reload.py reads the number between frames.
"""

import signal

count = 0  # SIGHUPs so far; a burst arriving inside the handler may add fewer, never none


def _counted(signum, frame):
    global count
    count += 1


def listen() -> None:
    """From now on SIGHUP asks for the installed model instead of ending the process (main thread only)."""
    if hasattr(signal, "SIGHUP"):
        try:
            signal.signal(signal.SIGHUP, _counted)
        except ValueError:  # not the main thread (an embedding program): its own business
            pass
