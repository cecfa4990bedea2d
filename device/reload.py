"""SIGHUP (systemctl reload): a running classify-cam takes the installed model, between two items.

The signal only sets a flag (from the start of main(), so a reload during set-up is not a kill). At the
next frame the loop loads and checks the installed model (device/bundle.py's store, else the shipped one)
beside the running one; the switch itself waits for a boundary: the next frame with a record per frame, a
table with no item on it (nothing placed and not yet removed, nothing settling) in stockroom mode, so
an item's `placed` and `removed` always come from one model, and no frame or event is dropped. A model
that cannot be used is said in one line and the running one stays.
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("classify-cam")
ASKED = threading.Event()  # set by SIGHUP


def listen() -> None:
    """From now on SIGHUP asks for the installed model instead of ending the process."""
    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda signum, frame: ASKED.set())


class Reload:
    """The loop's side: check() once a frame, under the loop's lock."""

    def __init__(self, job):
        self.opts, self.running = job.opts, job.model
        self.threshold_fixed = job.opts.threshold is not None  # a flag or the --config file: it stays
        self.pending = None  # (model, threshold) loaded, waiting for a boundary
        self.switches = 0

    def saw(self, change: dict) -> None:
        """A setting from the page: a threshold set there stays across a switch."""
        self.threshold_fixed = self.threshold_fixed or change.get("threshold") is not None

    def check(self, step, frame, live=None) -> None:
        """Before `frame` goes to the step: load a model asked for, switch to one loaded when between items."""
        if ASKED.is_set():
            ASKED.clear()
            self.pending = self.load()  # a model that cannot be used cancels one waiting
        if self.pending is None or not step.between_items():
            return
        model, threshold = self.pending
        self.pending = None
        old = self.running
        step.switch(model, None if self.threshold_fixed else threshold)
        self.running, self.switches = model, self.switches + 1
        if live is not None:
            live.facts["model"] = f"{model.path.name} ({model.id})"
        from device.pipeline import iso

        log.info("switched model %s -> %s at %s, between items (%s%s)", old.id, model.id, iso(frame.t),
                 where(model, self.opts), "" if self.threshold_fixed else f", unknown below {threshold:.2f}")

    def load(self):
        """The installed model, loaded and checked: (model, threshold), or None (said in one line)."""
        from device import bundle, card
        from device.model import Model
        from device.runtime import ModelError, RuntimeMissing

        if self.opts.model_from == "given":
            log.info("SIGHUP: this run was given --model %s, which it keeps (the installed model is for runs "
                     "without --model)", self.opts.model)
            return None
        try:
            path, _ = bundle.default_model()
            ident = bundle.verify(path.parent, self.running.runtime)
            if ident == self.running.id and path.parent == self.running.path.parent:
                log.info("SIGHUP: model %s is already the one running", ident)
                return None
            model = Model(path, path.parent / "labels.txt", self.opts.threads, self.running.runtime,
                          self.opts.kernels)
            return model, card.unknown_threshold(path)
        except (bundle.BundleError, ModelError, RuntimeMissing, card.CardError, OSError) as exc:
            log.warning("SIGHUP: the installed model cannot be used, model %s keeps running: %s", self.running.id,
                        exc)
            return None


def where(model, opts) -> str:
    from device import bundle

    return "the shipped model" if model.path.parent == bundle.shipped() else f"installed, {model.path.parent}"
