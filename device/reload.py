"""SIGHUP (systemctl reload): a running classify-cam takes the installed model, between two items.

The signal only counts (device/hup.py, from the start of the process). At the next frame the loop
sees the count changed and starts loading and checking the installed model (device/store.py's, else the
shipped one) in a thread of its own, so the frames go on meanwhile; the switch itself, a swap of the model
the step uses, waits for a boundary once the model is ready: the next frame with a record per frame, a
table with no item on it (nothing placed and not yet removed, nothing settling) in stockroom mode, so an
item's `placed` and `removed` always come from one model, and no frame or event is dropped. Any number of
SIGHUPs is one switch. A model that cannot be used is said in one line and the running one stays.
"""

from __future__ import annotations

import logging
import threading

from device import hup

log = logging.getLogger("classify-cam")


class Reload:
    """The loop's side: check() once a frame, under the loop's lock; loading happens in a thread."""

    def __init__(self, job):
        self.opts, self.running = job.opts, job.model
        self.threshold_fixed = job.opts.threshold is not None  # a flag or the --config file: it stays
        self.pending = None  # (model, threshold) loaded, waiting for a boundary
        self.seen = 0  # SIGHUPs acted on: one during set-up loads at the first frame
        self.loader = None  # the thread loading the installed model
        self.loaded = None  # what it gave: (model, threshold) or None
        self.switches = 0

    def saw(self, change: dict) -> None:
        """A setting from the page: a threshold set there stays across a switch."""
        self.threshold_fixed = self.threshold_fixed or change.get("threshold") is not None

    def check(self, step, frame, live=None) -> None:
        """Before `frame` goes to the step: start loading a model asked for; switch to one loaded, between items."""
        if self.loader is not None and not self.loader.is_alive():  # a model that cannot be used cancels one waiting
            loaded = self.loaded
            self.loader, self.pending = None, None if loaded is None or loaded[0] is self.running else loaded
        if self.loader is None and hup.count != self.seen:
            self.seen = hup.count
            self.loader = threading.Thread(target=self.load_in_thread, args=(self.pending,), name="reload",
                                           daemon=True)
            self.loader.start()
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

    def load_in_thread(self, against) -> None:
        self.loaded = self.load(against)

    def load(self, waiting=None):
        """The installed model, loaded and checked: (model, threshold), or None (said in one line); `waiting`
        (the one loaded before, not yet switched to) when it is that one again."""
        from device import bundle, card, store
        from device.model import Model
        from device.runtime import ModelError, RuntimeMissing

        against = waiting[0] if waiting else self.running
        if self.opts.model_from == "given":
            log.info("SIGHUP: this run was given --model %s, which it keeps (the installed model is for runs "
                     "without --model)", self.opts.model)
            return None
        try:
            path, _, problem = store.default_model()
            if problem:  # the model running is intact, in memory: it stays until the store is mended
                raise bundle.BundleError(problem.split(": running ")[0])
            ident = bundle.verify(path.parent, self.running.runtime)
            if ident == against.id and path.parent == against.path.parent:
                if waiting is None:
                    log.info("SIGHUP: model %s is already the one running", ident)
                return waiting
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
