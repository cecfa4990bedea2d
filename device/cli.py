"""classify-cam: classify garments from a camera, video, image or folder with the int8 model.

main() reads the options, set-up turns them into a Job (model, source, settings; or one line and
exit 2), and one loop serves every mode: frames in, a step makes records (pipeline.FrameStep, a
record per frame; stockroom.step.StockroomStep, an event per item), the records go out (log,
screen, dump, window, page), and everything is closed, whatever ended the loop.
"""

from __future__ import annotations

from device import hup

hup.listen()  # first of all, before the imports below: a SIGHUP (systemctl reload) during start-up is no kill

import functools
import logging
import os
import signal
import sys
import threading
from device.job import UsageError
from device.oneline import EXIT_FAULT, EXIT_OK, EXIT_USAGE
from device.options import Options, parse


class Interrupted(Exception):
    """SIGTERM or Ctrl-C arrived before the first frame."""


def main(argv=None) -> int:
    if sys.stderr is None:  # started with stderr closed: the one-line messages go nowhere, the run still runs
        sys.stderr = open(os.devnull, "w")
    hup.listen()  # already at import; again for a caller that imported this module from another thread
    opts = parse(argv)
    logging.basicConfig(level=logging.INFO, format="classify-cam: %(message)s", stream=sys.stderr)
    stop = StopFlag()  # from the start: Ctrl-C or SIGTERM during set-up is a clean stop too
    try:
        if opts.install_model is not None or opts.rollback:
            from device.store import command

            return command(opts.install_model)
        if opts.doctor:
            from device.doctor import doctor

            return doctor(opts)
        return run(opts, stop)
    except UsageError as exc:
        print(f"classify-cam: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted:
        print("classify-cam: interrupted during set-up; nothing was classified", file=sys.stderr)
        return EXIT_FAULT
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # the last guard: one line, not a traceback
        from device.sources import cv_message

        print(f"classify-cam: error: {type(exc).__name__}: {cv_message(exc)}", file=sys.stderr)
        return EXIT_FAULT
    finally:
        stop.restore()


class StopFlag:
    """SIGTERM and the first Ctrl-C ask the loop to stop between frames, so no line is cut in half.

    It also sets the sources' stop event, so a camera's reconnect backoff ends at once.
    """

    def __init__(self):
        from device.sources import Source

        self.event = Source.stop
        self.event.clear()
        self._asked = False
        self._previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    @property
    def stop(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, _frame):
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user means it
        # Event.set() takes a lock: a second signal arriving inside it would run this handler again in the same
        # thread and wait on that lock for ever. Only the first signal sets it; the rest have nothing to add.
        if not self._asked:
            self._asked = True
            self.event.set()

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


# -- the one loop ----------------------------------------------------------------------------------------
def run(opts: Options, stop: StopFlag) -> int:
    from device import sources
    from device.job import check_first_frame, open_log, serve, setup

    if opts.store_problem:  # a damaged model store never stops a run (device/store.py): said, and the fallback
        print(f"classify-cam: {opts.store_problem}", file=sys.stderr)
    try:
        job = setup(opts)
    except UsageError:
        if stop.stop:  # SIGTERM or Ctrl-C while set-up waited (a camera opening) is what cut it short
            raise Interrupted from None
        raise
    log = None
    try:
        log = open_log(job.opts)
        if stop.stop:
            raise Interrupted
        frames = job.source.frames()
        first = next(frames, None)
        if first is not None and first.image is not None and not is_folder(job.source):
            job = check_first_frame(job, first.image)
        live = serve(job)  # a port in use is a set-up error too, said before anything else
        model = job.model
        kernels = ", reference kernels" if job.opts.kernels == "reference" else ""
        print(f"classify-cam: {model.runtime.name} {model.runtime.version}{kernels}, model {model.id} "
              f"({model_origin(job.opts)}), source {job.source.name}", file=sys.stderr)
    except BaseException as exc:  # nothing ran yet: close what was opened, say it in one line
        job.source.close()
        if log:
            log.close()
        if not isinstance(exc, sources.CameraLost):
            raise
        print(f"classify-cam: {exc}", file=sys.stderr)
        return EXIT_FAULT
    return loop(job, log, live, [] if first is None else [first], frames, stop)


def model_origin(opts) -> str:
    """Which model runs, for the start line: the installed bundle, the shipped model, or the --model file."""
    if opts.model_from == "installed":
        return f"installed, {opts.model.parent}"
    return "the shipped model" if opts.model_from == "shipped" else str(opts.model)


def is_folder(source) -> bool:
    """Many image files, each its own picture: a region or background is checked per image, not at set-up."""
    from device.sources import ImageFiles

    return isinstance(source, ImageFiles) and len(source.paths) > 1


def loop(job, log, live, first: list, frames, stop: StopFlag) -> int:
    """Frames in, the step's records out to every output; everything closed whatever ends it."""
    from itertools import chain

    from device import sources
    from device.job import make_step
    from device.output import OutputError, Outputs, Screen, Viewer
    from device.reload import Reload

    opts, source = job.opts, job.source
    step = make_step(job)
    outputs = Outputs(log, Screen(quiet=opts.quiet), opts.dump_input, keep_going=opts.events)
    lock = threading.Lock()  # the record is written by the loop, and corrected from the page's threads
    if live and opts.events:
        live.broker = step.publisher.state if step.publisher else None
        if opts.output:  # the items of the runs before this one, from the record: listed and correctable again
            step.items.replay(opts.output, opts.device_id)  # before the page sees the list: never half of it
        live.items = step.items
        live.correct = functools.partial(from_page, lock, step, outputs, live, step.correct)
        live.reset = functools.partial(from_page, lock, step, outputs, live, step.reset_counts)
    reload = Reload(job)  # SIGHUP: the installed model, from the next frame or item boundary
    viewer = Viewer() if opts.show else None
    status, shown = EXIT_OK, {}
    try:
        for index, frame in enumerate(chain(first, frames)):
            with lock:
                while live and not live.changes.empty():  # a region or background set on the page: from now on
                    change = live.changes.get()
                    reload.saw(change)
                    step.apply(**change)
                reload.check(step, frame, live)
                results = step(frame, index)
                for record, x in results:
                    outputs.write(record, x, index, step.describe(record))
                    shown = record
            if live:
                live.update(frame.image, step.seen, [r for r, _ in results], step.tally, step.busy)  # references
            if viewer:
                viewer.show(frame.image, shown, step.seen)
            if stop.stop or (opts.max_frames and index + 1 >= opts.max_frames):
                break
    except (sources.CameraLost, OutputError) as exc:
        print(f"classify-cam: {exc}", file=sys.stderr)
        status = EXIT_FAULT
    finally:
        source.close()
        with lock:  # a correction from the page either got in before this, or is refused (503)
            outputs.close()
        step.close(live_source=source.live)
        print(step.summary() + outputs.summary(), file=sys.stderr)
    return status if not outputs.failed else EXIT_FAULT


def from_page(lock, step, outputs, live, action, *args) -> dict | None:
    """A record made on the page (a relabel, a reset of today's counts), written and published like any event,
    between two frames of the loop, and shown among the page's last events; None when nothing changed."""
    with lock:
        if outputs.closed:
            raise Closing("the run is ending: corrections are no longer taken")
        record = action(*args)
        if record is not None:
            outputs.write(record, None, -1, step.describe(record))
            live.note(record, step.tally)
    return record


class Closing(RuntimeError):
    """A correction that came after the record was closed: refused, never half applied."""


if __name__ == "__main__":
    sys.exit(main())
