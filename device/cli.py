"""classify-cam: classify garments from a camera, video, image or folder with the int8 model."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from device.runtime import KERNELS

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad flag, a missing or broken model, a missing source: exit 2 with one line."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, not argparse's usage block
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--roi wants X,Y,WIDTH,HEIGHT in pixels, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError("--roi width and height must be positive")
    return x, y, w, h


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _threads(text: str) -> int:
    value = _positive(text)
    if value > 64:
        raise argparse.ArgumentTypeError(f"at most 64, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    import models

    p = OneLineParser(
        prog="classify-cam",
        description="Say what garment is in front of the camera (one of the ten Fashion-MNIST classes, or "
        "'unknown'), frame by frame, with the int8 TFLite model and LiteRT or tflite-runtime. Also reads "
        "videos, images, folders and globs. Prints one line per frame; --output appends JSON lines.",
        epilog="Exit codes: 0 input processed (even with unreadable images), 2 usage or set-up error, 1 other "
        "failure. A summary goes to stderr at the end.",
    )
    p.add_argument("--source", default="auto",
                   help="auto (Pi camera, else camera 0), picamera, a camera index or /dev/videoN, a video file or "
                   "stream URL, an image file, a folder (all images under it, sorted) or a quoted glob "
                   "(default auto)")
    p.add_argument("--model", type=Path, default=models.INT8_MODEL, help="the .tflite model (default: shipped int8)")
    p.add_argument("--labels", type=Path,
                   help="labels file, one per line in score order (default: labels.txt beside the model)")
    p.add_argument("--output", type=Path, help="append one JSON object per frame to this file, flushed per line")
    p.add_argument("--max-frames", type=_positive, help="stop after N frames")
    p.add_argument("--threshold", type=_probability,
                   help="below this confidence the label is 'unknown' (default: the threshold calibrated for the model, "
                   "from its model_card.json; 0.5 where the card has none)")
    p.add_argument("--top-k", type=_positive, default=3, help="classes listed per frame (default 3)")
    p.add_argument("--threads", type=_threads, help="interpreter threads, 1 to 64 (default: the runtime's choice)")
    p.add_argument("--kernels", choices=KERNELS, default="default",
                   help="default: the runtime's fast kernels, whose int8 rounding can differ by one step between "
                   "an ARM board and a PC; reference: portable kernels that give the same integers on every "
                   "machine and runtime, 10-40x slower to infer (5-9 ms for this model here)")
    p.add_argument("--smooth", type=_positive, default=1,
                   help="average the scores of the last N frames of a live source or video, so the label does not "
                   "flicker (default 1: off)")
    p.add_argument("--roi", type=_roi, help="X,Y,WIDTH,HEIGHT: crop this region of each frame first (a fixed camera "
                   "over a packing table)")
    p.add_argument("--background", type=Path,
                   help="a picture of the empty scene from the same fixed camera: what differs from it is the garment")
    p.add_argument("--segment", choices=["auto", "fast", "grabcut"], default="auto",
                   help="how the garment is cut out of a photo: grabcut (colour GrabCut, cleaner outlines on beds and "
                   "floors, 20-30 ms a photo), fast (grey difference from the picture's edge, under 1 ms), or auto: "
                   "grabcut for image files, fast for video and cameras (default auto). --background overrides both")
    p.add_argument("--show", action="store_true", help="show an annotated preview window (needs a display)")
    p.add_argument("--dump-input", type=Path, metavar="DIR",
                   help="save exactly what the model saw (28x28 PNG) for each frame into DIR")
    p.add_argument("--camera-timeout", type=_seconds, default=10.0,
                   help="give up on a camera that delivers no fresh frame for this many seconds (default 10)")
    p.add_argument("--doctor", action="store_true",
                   help="check the runtime, model, labels and cameras, print what was found, and exit")
    p.add_argument("--quiet", action="store_true", help="no per-frame lines on stdout (JSON and summary only)")
    p.add_argument("--events", action="store_true",
                   help="stockroom mode (cameras, streams, video files): one 'placed' record when a garment has stood "
                   "still on the table for --settle seconds (classified over its still frames) and one 'removed' "
                   "record when the table is empty again, instead of one record per frame")
    p.add_argument("--settle", type=_seconds, default=0.5,
                   help="with --events: seconds a garment must stand still before it is classified (default 0.5)")
    p.add_argument("--save-items", type=Path, metavar="DIR",
                   help="with --events: each placed item's sharpest still frame as DIR/<label>/<id>.jpg (and what the "
                   "model saw beside it): the layout fashion-train --photos reads")
    p.add_argument("--realtime", action="store_true",
                   help="read a video file at its own frame rate, as a camera delivers frames")
    p.add_argument("--mqtt", metavar="URL",
                   help="with --events: publish each event to this broker, store and forward: "
                   "mqtt://[user[:password]@]host[:port]/PREFIX or mqtts://... (password also from "
                   "$CLASSIFY_CAM_MQTT_PASSWORD)")
    p.add_argument("--device-id", help="this device's name in event ids and MQTT topics (default: the host name)")
    p.add_argument("--queue", type=Path, metavar="DIR",
                   help="where events wait for the broker's acknowledgement, kept across restarts (default: "
                   "$STATE_DIRECTORY under systemd, else ~/.local/state/classify-cam/<device-id>/)")
    p.add_argument("--raw", action="store_true",
                   help="add the model's output tensor as stored (e.g. int8 integers) to each JSON line as 'raw'; "
                   "make pi-check compares these bit for bit")
    args = p.parse_args(argv)
    if (args.save_items or args.mqtt) and not args.events:
        p.error("--save-items and --mqtt go with --events")
    if args.device_id is None:
        import socket

        args.device_id = socket.gethostname() or "classify-cam"
    if not args.device_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        p.error(f"--device-id {args.device_id!r}: letters, digits, '-', '_' and '.' only (it is an MQTT topic level)")
    if args.labels is None:
        beside = args.model.parent / "labels.txt"
        args.labels = beside if beside.is_file() else models.LABELS
    return args


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


def setup(args):
    """Model, source and settings, or UsageError naming what is wrong."""
    from device import card, pipeline, sources
    from device.preprocess import check_picture
    from device.runtime import ModelError, RuntimeMissing

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
        except mqtt.MqttUrlError as exc:
            raise UsageError(str(exc)) from None
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
    if args.events:
        from device import stockroom

        return stockroom.run(args, model, source, settings, stop, log, Screen(quiet=args.quiet))
    labeller = pipeline.Labeller(model, settings, live=source.live or isinstance(source, sources.VideoCapture))
    stats = pipeline.Stats()
    viewer = Viewer() if args.show else None
    screen = Screen(quiet=args.quiet)
    status = EXIT_OK
    try:
        for index, frame in enumerate(source.frames()):
            record, x = labeller(frame, index)
            stats.add(record)
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
