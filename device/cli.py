"""classify-cam: classify garments from a camera, video, image or folder with the int8 model.

main() reads the options, set-up turns them into a Job (model, source, settings; or one line and
exit 2), and one loop serves every mode: frames in, a step makes records (pipeline.FrameStep, a
record per frame; stockroom.step.StockroomStep, an event per item), the records go out (log,
screen, dump, window, page), and everything is closed, whatever ended the loop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from device.oneline import EXIT_FAULT, EXIT_OK, EXIT_USAGE
from device.options import Options, parse


class UsageError(Exception):
    """A bad flag, a missing or broken model, a missing source: exit 2 with one line."""


class Interrupted(Exception):
    """SIGTERM or Ctrl-C arrived before the first frame."""


def main(argv=None) -> int:
    if sys.stderr is None:  # started with stderr closed: the one-line messages go nowhere, the run still runs
        sys.stderr = open(os.devnull, "w")
    opts = parse(argv)
    logging.basicConfig(level=logging.INFO, format="classify-cam: %(message)s", stream=sys.stderr)
    stop = StopFlag()  # from the start: Ctrl-C or SIGTERM during set-up is a clean stop too
    try:
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
        self._previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    @property
    def stop(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, _frame):
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user means it
        self.event.set()

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


# -- set-up: everything that can be wrong before the first frame, as UsageError -----------------------------
@dataclass(frozen=True)
class Job:
    opts: Options  # with the --config file's settings filled in where the command line gave none
    model: object  # device.model.Model
    source: object  # device.sources.Source
    settings: object  # device.pipeline.LabelSettings
    broker: object = None  # device.stockroom.mqtt.Broker with --mqtt
    queue: Path | None = None  # where events wait for the broker


def with_config(opts: Options) -> Options:
    """Settings saved from the web page, where the command line gave none (flags win)."""
    from device.config import ConfigError, read_config

    if not opts.config:
        return opts
    try:
        values = read_config(opts.config) if opts.config.is_file() else {}
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    roi = opts.roi if opts.roi is not None or not values.get("roi") else tuple(values["roi"])
    background = opts.background if opts.background is not None or not values.get("background") \
        else Path(values["background"])
    return replace(opts, roi=roi, background=background)


def setup(opts: Options) -> Job:
    """Model, source and settings, or UsageError naming what is wrong."""
    from device import card, pipeline, sources
    from device.model import Model
    from device.preprocess import check_picture
    from device.runtime import ModelError, RuntimeMissing

    opts = with_config(opts)
    try:
        model = Model(opts.model, opts.labels, opts.threads, kernels=opts.kernels)
        threshold = opts.threshold if opts.threshold is not None else card.unknown_threshold(opts.model)
    except (ModelError, RuntimeMissing, card.CardError) as exc:
        raise UsageError(str(exc)) from None
    background = None
    if opts.background is not None:
        try:
            background = check_picture(sources.read_image(opts.background), "background")
        except (ValueError, OSError) as exc:
            raise UsageError(f"--background {opts.background}: {exc}") from None
    broker = queue = None
    if opts.mqtt:
        broker, queue = mqtt_setup(opts)
    try:
        source = sources.open_source(opts.source, opts.camera_timeout, colour=bool(opts.save_items),
                                     realtime=opts.realtime)
    except sources.SourceError as exc:
        raise UsageError(str(exc)) from None
    if opts.events and isinstance(source, sources.ImageFiles):
        source.close()
        raise UsageError("--events is for cameras, streams and video files (one record per item on a table), "
                         "not for image files")
    if isinstance(source, sources.ImageFiles) and len(source.paths) == 1:
        try:  # a single image that cannot be read is a usage error, not a log line; decoded once
            source.first = (source.paths[0], check_picture(sources.read_image(source.paths[0]), "image"))
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot read image {source.paths[0]}: {exc}") from None
    settings = pipeline.LabelSettings(threshold=threshold, top_k=opts.top_k, smooth=opts.smooth, roi=opts.roi,
                                      background=background, raw=opts.raw, segment=opts.segment)
    return Job(opts, model, source, settings, broker, queue)


def mqtt_setup(opts: Options):
    """The broker from --mqtt and the queue folder, or UsageError."""
    from device.stockroom import mqtt

    try:
        broker = mqtt.parse_url(opts.mqtt)
        import paho.mqtt.client  # noqa: F401  (in the device extras; say so if an older install lacks it)
    except mqtt.MqttUrlError as exc:
        raise UsageError(str(exc)) from None
    except ImportError:
        raise UsageError("--mqtt needs paho-mqtt: pip install 'paho-mqtt>=2' (or reinstall the device extra)") \
            from None
    return broker, opts.queue or mqtt.default_queue(opts.device_id)


def open_log(opts: Options):
    """The JSON log, and the dump folder made, or UsageError: a path that cannot be written is a set-up error."""
    from device.output import JsonLog, OutputError

    log = None
    try:
        log = JsonLog(opts.output) if opts.output else None
        if opts.dump_input:
            opts.dump_input.mkdir(parents=True, exist_ok=True)
            if not os.access(opts.dump_input, os.W_OK):
                raise OutputError(f"cannot write --dump-input {opts.dump_input}: not writable")
    except OSError as exc:
        if log:
            log.close()
        message = str(exc) if isinstance(exc, OutputError) else f"cannot make --dump-input {opts.dump_input}: " \
            f"{exc.strerror or exc}"
        raise UsageError(message) from None
    return log


def serve(job: Job):
    """Start the web page (--serve): the Live state the loop updates, or None."""
    opts = job.opts
    if not opts.serve:
        return None
    from device.config import ConfigError, ConfigFile
    from device.web import Live, Server

    facts = {"runtime": f"{job.model.runtime.name} {job.model.runtime.version}", "model": job.model.path.name,
             "threshold": round(job.settings.threshold, 2), "source": opts.source,
             "mode": "stockroom events" if opts.events else "a record per frame",
             "background": str(opts.background) if opts.background else "none (learnt from the empty table with "
             "--events)"}
    live = Live(facts, list(job.settings.roi) if job.settings.roi else None)
    try:
        server = Server(opts.serve, live, ConfigFile(opts.config))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--serve {opts.serve}: {exc.strerror or exc}") from None
    print(f"classify-cam: web page at {server.url}#token={server.token} (the token is needed to change settings"
          f"{'; settings are saved to ' + str(opts.config) if opts.config else '; give --config FILE to save them'})",
          file=sys.stderr)
    return live


def make_step(job: Job):
    """What turns frames into records in this mode."""
    from device import pipeline, sources

    if not job.opts.events:
        live = job.source.live or isinstance(job.source, sources.VideoCapture)
        return pipeline.FrameStep(job.model, job.settings, live)
    from device.stockroom.step import StockroomStep

    return StockroomStep(job.model, job.settings, job.opts.device_id, job.opts.settle, job.opts.save_items,
                         job.broker, job.queue)


# -- the one loop ----------------------------------------------------------------------------------------
def run(opts: Options, stop: StopFlag) -> int:
    from device import sources
    from device.output import OutputError, Screen, Viewer, dump_input

    job = setup(opts)
    opts, source, model = job.opts, job.source, job.model
    log = open_log(opts)
    if stop.stop:
        source.close()
        raise Interrupted
    kernels = ", reference kernels" if opts.kernels == "reference" else ""
    print(f"classify-cam: {model.runtime.name} {model.runtime.version}{kernels}, model {model.path.name}, "
          f"source {opts.source}", file=sys.stderr)
    live = serve(job)
    step = make_step(job)
    screen, viewer = Screen(quiet=opts.quiet), Viewer() if opts.show else None
    status, shown = EXIT_OK, {}
    try:
        for index, frame in enumerate(source.frames()):
            results = step(frame, index)
            for record, x in results:
                if log:
                    log.write(record)  # one whole line or none
                screen.line(step.describe(record))
                if opts.dump_input and x is not None:
                    dump_input(opts.dump_input, index, frame.source, record["label"], x)
                shown = record
            if live:
                live.update(frame.image, step.seen, [r for r, _ in results], step.tally)  # references only
            if viewer:
                viewer.show(frame.image, shown, step.seen)
            if stop.stop or (opts.max_frames and index + 1 >= opts.max_frames):
                break
    except (sources.CameraLost, OutputError) as exc:
        print(f"classify-cam: {exc}", file=sys.stderr)
        status = EXIT_FAULT
    finally:
        source.close()
        if log:
            log.close()
        step.close(live_source=source.live)
        print(step.summary(), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
