"""classify-cam's flags: every one with its help, checked as it is read (one line, exit 2, on a mistake)."""

from __future__ import annotations

import argparse
from pathlib import Path

from device.runtime import KERNELS

EXIT_USAGE = 2


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
    p.add_argument("--serve", metavar="[HOST:]PORT",
                   help="serve a web page while classifying: the live picture, what the model saw, the label, the "
                   "events and tally, and setting the region and background from a laptop (default host 127.0.0.1; "
                   "0.0.0.0:PORT serves the LAN)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="settings saved from the web page (region, background, token), read at start; flags given "
                   "on the command line win")
    p.add_argument("--raw", action="store_true",
                   help="add the model's output tensor as stored (e.g. int8 integers) to each JSON line as 'raw'; "
                   "make pi-check compares these bit for bit")
    args = p.parse_args(argv)
    if args.serve is not None:
        host, _, port = args.serve.rpartition(":")
        if not port.isdigit() or not 0 <= int(port) < 65536:
            p.error(f"--serve {args.serve!r}: give PORT or HOST:PORT")
        args.serve = f"{host or '127.0.0.1'}:{port}"
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
