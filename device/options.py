"""classify-cam's options: one frozen dataclass, built by one parser, every flag checked as it is read.

A mistake is one line and exit 2 (device/oneline.py), and so is a flag that does not apply to the
mode it was given in (--mqtt without --events, --smooth with it): it would otherwise be silently
ignored. The options never change once parsed; set-up derives what it needs from them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from device.oneline import OneLineParser
from device.runtime import KERNELS


@dataclass(frozen=True)
class Options:
    # input
    source: str = "auto"  # auto, picamera, a camera index, /dev/videoN, a video, URL, image, folder or glob
    realtime: bool = False  # a video file at its own frame rate, as a camera delivers it
    camera_timeout: float = 10.0  # seconds without a fresh frame before a camera is given up
    max_frames: int | None = None
    # model
    model: Path = Path()  # the parser fills in the installed bundle's int8 model, else the shipped one
    model_from: str = "given"  # "given" (--model), "installed" (device/store.py's store) or "shipped"
    store_problem: str = ""  # the model store is damaged: what the run uses instead (one line on stderr)
    labels: Path = Path()  # the parser fills in labels.txt beside the model, else the shipped one
    threshold: float | None = None  # None: the model card's calibrated one
    top_k: int = 3
    threads: int | None = None
    kernels: str = "default"
    # what the model sees
    roi: tuple | None = None  # (x, y, width, height) in frame pixels
    background: Path | None = None  # a picture of the empty table
    segment: str = "auto"  # auto: GrabCut for image files, the fast grey cut for video and cameras
    smooth: int = 1  # frames whose scores are averaged (a record per frame only)
    # output
    output: Path | None = None  # JSON lines, appended
    quiet: bool = False
    show: bool = False
    dump_input: Path | None = None
    raw: bool = False  # the output tensor as stored, in each record (a record per frame only)
    # stockroom mode
    events: bool = False
    settle: float | None = None  # seconds a garment stands still before it is classified (None: --config's, else 0.5)
    save_items: Path | None = None
    mqtt: str | None = None
    device_id: str = ""  # the parser fills in a name unique to this machine
    queue: Path | None = None  # None: the default for the device id
    # web page
    serve: str | None = None  # HOST:PORT
    config: Path | None = None
    # other commands
    doctor: bool = False
    install_model: Path | None = None
    rollback: bool = False


# Flags that belong to one mode: given in the other they are refused, never silently ignored.
EVENTS_ONLY = {"settle": "--settle", "save_items": "--save-items", "mqtt": "--mqtt", "queue": "--queue",
               "device_id": "--device-id"}
FRAMES_ONLY = {"smooth": "--smooth", "raw": "--raw", "segment": "--segment"}


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--roi wants X,Y,WIDTH,HEIGHT in pixels, got {text!r}") from None
    if x < 0 or y < 0:
        raise argparse.ArgumentTypeError("--roi X and Y must be 0 or more (the frame's top left is 0,0)")
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError("--roi width and height must be positive")
    return x, y, w, h


def _path(text: str) -> Path:
    """A path that says something: an empty one (an unset shell variable) would mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty (an unset variable?): give a path")
    return Path(text)


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


class Once(argparse.Action):
    """A flag that names one thing: given twice it is refused, never the last one silently taken."""

    def __call__(self, parser, namespace, value, option_string=None):
        if getattr(namespace, self.dest) is not None:
            parser.error(f"{option_string} given twice: give one")
        setattr(namespace, self.dest, value)


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="classify-cam",
        description="Say what garment is in front of the camera (one of the ten Fashion-MNIST classes, or "
        "'unknown'), frame by frame, with the int8 TFLite model and LiteRT or tflite-runtime. Also reads "
        "videos, images, folders and globs. Prints one line per frame; --output appends JSON lines. With "
        "--events (stockroom mode): one record when a garment is placed on the table and one when it is removed.",
        epilog="Exit codes: 0 input processed (even with unreadable images), 2 usage or set-up error, 1 other "
        "failure. A summary goes to stderr at the end.",
    )
    g = p.add_argument_group("input")
    g.add_argument("--source", default="auto",
                   help="auto (Pi camera, else camera 0), picamera, a camera index or /dev/videoN, a video file or "
                   "stream URL, an image file, a folder (all images under it, sorted) or a quoted glob "
                   "(default auto)")
    g.add_argument("--realtime", action="store_true",
                   help="read a video file at its own frame rate, as a camera delivers frames")
    g.add_argument("--camera-timeout", type=_seconds, default=10.0,
                   help="give up on a camera that delivers no fresh frame for this many seconds (default 10)")
    g.add_argument("--max-frames", type=_positive, help="stop after N frames")

    g = p.add_argument_group("model")
    g.add_argument("--model", type=_path, help="the .tflite model (default: the bundle installed with "
                   "--install-model, else the shipped int8 model)")
    g.add_argument("--labels", type=_path,
                   help="labels file, one per line in score order (default: labels.txt beside the model)")
    g.add_argument("--threshold", type=_probability,
                   help="below this confidence the label is 'unknown' (default: the threshold calibrated for the "
                   "model, "
                   "from its model_card.json; 0.5 where the card has none)")
    g.add_argument("--top-k", type=_positive, default=3, help="classes listed per record (default 3)")
    g.add_argument("--threads", type=_threads, help="interpreter threads, 1 to 64 (default: the runtime's choice)")
    g.add_argument("--kernels", choices=KERNELS, default="default",
                   help="default: the runtime's fast kernels, whose int8 rounding can differ by one step between "
                   "an ARM board and a PC; reference: portable kernels that give the same integers on every "
                   "machine and runtime, about 8x slower (docs/benchmarks.md)")

    g = p.add_argument_group("what the model sees")
    g.add_argument("--roi", type=_roi, help="X,Y,WIDTH,HEIGHT: crop this region of each frame first (a fixed camera "
                   "over a packing table)")
    g.add_argument("--background", type=_path,
                   help="a picture of the empty scene from the same fixed camera: what differs from it is the garment")
    g.add_argument("--segment", choices=["auto", "fast", "grabcut"],
                   help="how the garment is cut out of a photo: grabcut (colour GrabCut, cleaner outlines on beds and "
                   "floors, about 15 ms a photo), fast (grey difference from the picture's edge, under 1 ms), or auto: "
                   "grabcut for image files, fast for video and cameras (default auto). --background overrides both")
    g.add_argument("--smooth", type=_positive,
                   help="a record per frame: average the scores of the last N frames of a live source or video, so "
                   "the label does not flicker (default 1: off)")

    g = p.add_argument_group("output")
    g.add_argument("--output", type=_path, help="append one JSON object per record to this file, one write per line")
    g.add_argument("--quiet", action="store_true", help="no per-record lines on stdout (JSON and summary only)")
    g.add_argument("--show", action="store_true", help="show an annotated preview window (needs a display)")
    g.add_argument("--dump-input", type=_path, metavar="DIR",
                   help="save exactly what the model saw (28x28 PNG) into DIR: for each frame, or with --events for "
                   "each placed item")
    g.add_argument("--raw", action="store_true",
                   help="a record per frame: add the model's output tensor as stored (e.g. int8 integers) as 'raw'; "
                   "make pi-check compares these bit for bit")

    g = p.add_argument_group("stockroom mode")
    g.add_argument("--events", action="store_true",
                   help="(cameras, streams, video files) one 'placed' record when a garment has stood "
                   "still on the table for --settle seconds (classified over its still frames) and one 'removed' "
                   "record when the table is empty again, instead of one record per frame")
    g.add_argument("--settle", type=_seconds,
                   help="seconds a garment must stand still before it is classified (default: the --config file's, else 0.5)")
    g.add_argument("--save-items", type=_path, metavar="DIR",
                   help="each placed item's sharpest still frame as DIR/<label>/<id>.jpg (and what the "
                   "model saw beside it): the layout fashion-train --photos reads")
    g.add_argument("--mqtt", metavar="URL",
                   help="publish each event to this broker, store and forward: "
                   "mqtt://[user[:password]@]host[:port]/PREFIX or mqtts://... (password also from "
                   "$CLASSIFY_CAM_MQTT_PASSWORD)")
    g.add_argument("--device-id", help="this device's name in event ids and MQTT topics (default: the host name and "
                   "the first 8 hex of /etc/machine-id, unique to this machine)")
    g.add_argument("--queue", type=_path, metavar="DIR",
                   help="with --mqtt: where events wait for the broker's acknowledgement, kept across restarts "
                   "(default: $STATE_DIRECTORY under systemd, else ~/.local/state/classify-cam/<device-id>/)")

    g = p.add_argument_group("web page")
    g.add_argument("--serve", metavar="[HOST:]PORT",
                   help="serve a web page while classifying: the live picture, what the model saw, the label, the "
                   "events and tally, and setting the region and background from a laptop (default host 127.0.0.1; "
                   "0.0.0.0:PORT serves the LAN)")
    g.add_argument("--config", type=_path, metavar="FILE",
                   help="settings saved from the web page (region, background, token), read at start; flags given "
                   "on the command line win")

    g = p.add_argument_group("checking the device")
    g.add_argument("--doctor", action="store_true",
                   help="check the runtime, model, labels and cameras, print what was found, and exit")
    g = p.add_argument_group("model bundles (the four files of models/, as fashion-adapt writes them)")
    g.add_argument("--install-model", type=_path, metavar="DIR", action=Once,
                   help="check the bundle in DIR (files, sha256s, the ten labels, the int8 input, the arithmetic "
                   "on this CPU) and make it this device's model, keeping the previous; a running classify-cam "
                   "switches to it on SIGHUP (systemctl reload classify-cam). The store: $CLASSIFY_CAM_MODELS, else "
                   "~/.local/state/classify-cam/models/")
    g.add_argument("--rollback", action="store_true",
                   help="make the previous model (installed, or the shipped one) this device's model again")
    return p


def bundle_command(p: OneLineParser, ns: dict) -> Options:
    """--install-model DIR or --rollback: a command of its own; any other flag given with it would be ignored."""
    other = [f"--{k.replace('_', '-')}" for k, v in ns.items()
             if k not in ("install_model", "rollback") and v != p.get_default(k)]
    if ns["install_model"] is not None and ns["rollback"]:
        other.append("--rollback")
    if other:
        flag = "--install-model" if ns["install_model"] is not None else "--rollback"
        p.error(f"{flag} is a command of its own: {', '.join(other)} cannot go with it")
    return Options(install_model=ns["install_model"], rollback=ns["rollback"], model_from="")


def parse(argv=None) -> Options:
    """The command line as Options, or one line and exit 2."""
    p = build_parser()
    ns = vars(p.parse_args(argv))
    if ns["install_model"] is not None or ns["rollback"]:
        return bundle_command(p, ns)
    other_mode = FRAMES_ONLY if ns["events"] else EVENTS_ONLY
    wrong = [flag for key, flag in other_mode.items() if ns[key] not in (None, False)]
    if wrong and not ns["doctor"]:
        one = len(wrong) == 1
        if ns["events"]:
            p.error(f"{', '.join(wrong)} {'is' if one else 'are'} for a record per frame, not for --events")
        p.error(f"{', '.join(wrong)} {'goes' if one else 'go'} with --events (stockroom mode)")
    if ns["queue"] is not None and not ns["mqtt"]:
        p.error("--queue goes with --mqtt (it is where events wait for the broker)")
    if ns["serve"] is not None:
        host, _, port = ns["serve"].rpartition(":")
        if not port.isdigit() or not 0 <= int(port) < 65536:
            p.error(f"--serve {ns['serve']!r}: give PORT or HOST:PORT")
        ns["serve"] = f"{host or '127.0.0.1'}:{port}"
    from device.host import default_device_id, id_char

    ns["device_id"] = ns["device_id"] or default_device_id()
    if not all(map(id_char, ns["device_id"])):
        p.error(f"--device-id {ns['device_id']!r}: ASCII letters, digits, '-', '_' and '.' only (it is an MQTT topic "
                "level and names the item photos)")
    ns["model_from"] = "given"
    if ns["model"] is None:
        from device.store import default_model

        ns["model"], ns["model_from"], ns["store_problem"] = default_model()  # a damaged store: a fallback, said
    if ns["labels"] is None:
        import models

        beside = ns["model"].parent / "labels.txt"
        ns["labels"] = beside if beside.is_file() else models.LABELS
    ns["smooth"] = 1 if ns["smooth"] is None else ns["smooth"]
    ns["segment"] = ns["segment"] or "auto"
    names = {f.name for f in fields(Options)}
    return Options(**{k: v for k, v in ns.items() if k in names})
