"""classify-cam: classify garments from a camera, video, image or folder with the int8 model."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from device.args import parse_args

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad flag, a missing or broken model, a missing source: exit 2 with one line."""


def main(argv=None) -> int:
    if sys.stderr is None:  # started with stderr closed: the one-line messages go nowhere, the run still runs
        sys.stderr = open(os.devnull, "w")
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="classify-cam: %(message)s", stream=sys.stderr)
    stop = StopFlag()  # from the start: Ctrl-C or SIGTERM during set-up is a clean stop too
    try:
        if args.doctor:
            from device.doctor import doctor

            return doctor(args)
        return run(args, stop)
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


class Interrupted(Exception):
    """SIGTERM or Ctrl-C arrived before the first frame."""


def apply_config(args) -> None:
    """Settings saved from the web page, where the command line gave none (flags win)."""
    from device import web

    try:
        values = web.read_config(args.config) if args.config.is_file() else {}
    except web.ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.roi is None and values.get("roi"):
        args.roi = tuple(values["roi"])
    if args.background is None and values.get("background"):
        args.background = Path(values["background"])


def setup(args):
    """Model, source and settings, or UsageError naming what is wrong."""
    from device import card, pipeline, sources
    from device.preprocess import check_picture
    from device.runtime import ModelError, RuntimeMissing

    if args.config:
        apply_config(args)
    try:
        model = pipeline.Model(args.model, args.labels, args.threads, kernels=args.kernels)
        threshold = args.threshold if args.threshold is not None else card.unknown_threshold(args.model)
    except (ModelError, RuntimeMissing, card.CardError) as exc:
        raise UsageError(str(exc)) from None
    background = None
    if args.background is not None:
        try:
            background = check_picture(sources.read_image(args.background), "background")
        except (ValueError, OSError) as exc:
            raise UsageError(f"--background {args.background}: {exc}") from None
    if args.mqtt:
        from device import mqtt

        try:
            args.broker = mqtt.parse_url(args.mqtt)
            import paho.mqtt.client  # noqa: F401  (in the device extras; say so if an older install lacks it)
        except mqtt.MqttUrlError as exc:
            raise UsageError(str(exc)) from None
        except ImportError:
            raise UsageError("--mqtt needs paho-mqtt: pip install 'paho-mqtt>=2' (or reinstall the device extra)") \
                from None
        args.queue = args.queue or mqtt.default_queue(args.device_id)
    try:
        source = sources.open_source(args.source, args.camera_timeout, colour=bool(args.save_items),
                                     realtime=args.realtime)
    except sources.SourceError as exc:
        raise UsageError(str(exc)) from None
    if args.events and isinstance(source, sources.ImageFiles):
        source.close()
        raise UsageError("--events is for cameras, streams and video files (one record per item on a table), "
                         "not for image files")
    if isinstance(source, sources.ImageFiles) and len(source.paths) == 1:
        try:  # a single image that cannot be read is a usage error, not a log line; decoded once
            source.first = (source.paths[0], check_picture(sources.read_image(source.paths[0]), "image"))
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot read image {source.paths[0]}: {exc}") from None
    settings = pipeline.Settings(threshold=threshold, top_k=args.top_k, smooth=args.smooth, roi=args.roi,
                                 background=background, raw=args.raw, segment=args.segment)
    return model, source, settings


def serve(args, model, settings):
    """Start the web page (--serve): the Live state the loop updates, or None."""
    if not args.serve:
        return None
    from device import web

    facts = {"runtime": f"{model.runtime.name} {model.runtime.version}", "model": model.path.name,
             "threshold": round(settings.threshold, 2), "source": args.source,
             "mode": "stockroom events" if args.events else "a record per frame",
             "background": str(args.background) if args.background else "none (learnt from the empty table with "
             "--events)"}
    live = web.Live(facts, list(settings.roi) if settings.roi else None)
    try:
        server = web.Server(args.serve, live, web.Settings(args.config))
    except OSError as exc:
        raise UsageError(f"--serve {args.serve}: {exc.strerror or exc}") from None
    print(f"classify-cam: web page at {server.url}#token={server.token} (the token is needed to change settings"
          f"{'; settings are saved to ' + str(args.config) if args.config else '; give --config FILE to save them'})",
          file=sys.stderr)
    return live


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


def open_outputs(args):
    """The JSON log and the dump folder, or UsageError: a path that cannot be written is a set-up error."""
    from device.output import JsonLog, OutputError

    log = None
    try:
        log = JsonLog(args.output) if args.output else None
        if args.dump_input:
            args.dump_input.mkdir(parents=True, exist_ok=True)
            if not os.access(args.dump_input, os.W_OK):
                raise OutputError(f"cannot write --dump-input {args.dump_input}: not writable")
    except OSError as exc:
        if log:
            log.close()
        message = str(exc) if isinstance(exc, OutputError) else f"cannot make --dump-input {args.dump_input}: " \
            f"{exc.strerror or exc}"
        raise UsageError(message) from None
    return log


def run(args, stop: StopFlag) -> int:
    from device import pipeline, sources
    from device.output import OutputError, Screen, Viewer, describe, dump_input

    model, source, settings = setup(args)
    log = open_outputs(args)
    if stop.stop:
        source.close()
        raise Interrupted
    kernels = ", reference kernels" if args.kernels == "reference" else ""
    print(f"classify-cam: {model.runtime.name} {model.runtime.version}{kernels}, model {model.path.name}, "
          f"source {args.source}", file=sys.stderr)
    live = serve(args, model, settings)
    if args.events:
        from device import stockroom

        return stockroom.run(args, model, source, settings, stop, log, Screen(quiet=args.quiet), live)
    labeller = pipeline.Labeller(model, settings, live=source.live or isinstance(source, sources.VideoCapture))
    stats = pipeline.Stats()
    viewer = Viewer() if args.show else None
    screen = Screen(quiet=args.quiet)
    status = EXIT_OK
    try:
        for index, frame in enumerate(source.frames()):
            record, x = labeller(frame, index)
            stats.add(record)
            if live:
                live.update(frame.image, x, record)  # references only: encoding happens if a viewer asks
            if log:
                log.write(record)  # one whole line or none
            screen.line(describe(record, stats))
            if args.dump_input and x is not None:
                dump_input(args.dump_input, index, frame.source, record["label"], x)
            if viewer:
                viewer.show(frame.image, record, x)
            if stop.stop or (args.max_frames and index + 1 >= args.max_frames):
                break
    except sources.CameraLost as exc:
        print(f"classify-cam: {exc}", file=sys.stderr)
        status = EXIT_FAULT
    except OutputError as exc:
        print(f"classify-cam: {exc}", file=sys.stderr)
        status = EXIT_FAULT
    finally:
        source.close()
        if log:
            log.close()
        print(stats.summary(), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
