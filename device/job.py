"""classify-cam's set-up: everything that can be wrong before the loop runs, found there, as UsageError (exit 2).

setup() turns the options into a Job (the model, the source, the settings, the broker's queue);
check_first_frame() holds the settings against the first picture the source gives (a region outside
the frame, a background of another size): the one place set-up meets the camera.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from device.options import Options


class UsageError(Exception):
    """A bad flag, a missing or broken model, a missing source: exit 2 with one line."""


@dataclass(frozen=True)
class Job:
    opts: Options  # with the --config file's settings filled in where the command line gave none
    model: object  # device.model.Model
    source: object  # device.sources.Source
    settings: object  # device.pipeline.LabelSettings
    from_config: tuple = ()  # the settings that came from the --config file, not the command line
    broker: object = None  # device.stockroom.url.Broker with --mqtt
    queue: object = None  # device.stockroom.queue.Queue: where events wait for the broker (locked, checked)


def with_config(opts: Options) -> tuple[Options, tuple]:
    """Settings saved from the web page, where the command line gave none (flags win); and which those were."""
    from device.config import ConfigError, read_config

    if not opts.config:
        return replace(opts, settle=0.5 if opts.settle is None else opts.settle), ()
    try:
        values = read_config(opts.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    roi = opts.roi if opts.roi is not None or not values.get("roi") else tuple(values["roi"])
    background = opts.background if opts.background is not None or not values.get("background") \
        else opts.config.parent / values["background"]  # a relative path is the config file's neighbour
    threshold = opts.threshold if opts.threshold is not None else values.get("threshold")
    settle = opts.settle if opts.settle is not None else values.get("settle")
    used = tuple(k for k, v in (("roi", roi), ("background", background), ("threshold", threshold),
                                ("settle", settle)) if v is not None and v != getattr(opts, k))
    return replace(opts, roi=roi, background=background, threshold=threshold,
                   settle=0.5 if settle is None else float(settle)), used


def setup(opts: Options) -> Job:
    """Model, source and settings, or UsageError naming what is wrong."""
    from device import card, pipeline, sources
    from device.model import Model
    from device.preprocess import check_picture
    from device.runtime import ModelError, RuntimeMissing

    opts, from_config = with_config(opts)
    try:
        model = Model(opts.model, opts.labels, opts.threads, kernels=opts.kernels)
        threshold = opts.threshold if opts.threshold is not None else card.unknown_threshold(opts.model)
    except (ModelError, RuntimeMissing, card.CardError) as exc:
        fix = " (the model installed with --install-model: --rollback, or install it again)"
        raise UsageError(f"{exc}{fix if opts.model_from == 'installed' else ''}") from None
    background = read_background(opts, from_config)
    broker = queue = None
    if opts.mqtt:
        broker, queue = mqtt_setup(opts)
    try:
        colour = bool(opts.save_items or opts.serve or opts.events)  # stockroom mode, item photos and the page: colour
        source = sources.open_source(opts.source, opts.camera_timeout, colour=colour, realtime=opts.realtime)
    except sources.SourceError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(source, sources.ImageFiles) and (opts.events or opts.realtime):
        source.close()
        raise UsageError(f"{'--events' if opts.events else '--realtime'} is for cameras, streams and video files"
                         f"{' (one record per item on a table)' if opts.events else ''}, not for image files")
    if isinstance(source, sources.ImageFiles) and len(source.paths) == 1:
        try:  # a single image that cannot be read is a usage error, not a log line; decoded once
            source.first = (source.paths[0], check_picture(sources.read_image(source.paths[0]), "image"))
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot read image {source.paths[0]}: {exc}") from None
    settings = pipeline.LabelSettings(threshold=threshold, top_k=opts.top_k, smooth=opts.smooth, roi=opts.roi,
                                      background=background, raw=opts.raw, segment=opts.segment)
    return Job(opts, model, source, settings, from_config, broker, queue)


def read_background(opts: Options, from_config: tuple = ()):
    """The --background picture (or the config file's), decoded and checked once; None without one; UsageError."""
    from device import sources
    from device.preprocess import check_picture

    if opts.background is None:
        return None
    try:
        return check_picture(sources.read_image(opts.background), "background")
    except (ValueError, OSError) as exc:
        where = f"the background saved in {opts.config}" if "background" in from_config else "--background"
        raise UsageError(f"{where} {opts.background}: {exc}") from None


def mqtt_setup(opts: Options):
    """The broker from --mqtt and the queue, opened (one run at a time) and checked, or UsageError."""
    from device.stockroom import mqtt, url
    from device.stockroom.queue import Queue, QueueError

    try:
        broker = url.parse_url(opts.mqtt)
        import paho.mqtt.client  # noqa: F401  (in the device extras; say so if an older install lacks it)
    except url.MqttUrlError as exc:
        raise UsageError(str(exc)) from None
    except ImportError:
        raise UsageError("--mqtt needs paho-mqtt: pip install 'paho-mqtt>=2' (or reinstall the device extra)") \
            from None
    try:
        queue = Queue(opts.queue or mqtt.default_queue(opts.device_id))
        queue.tally()  # a damaged tally is found now, not at the first garment
    except QueueError as exc:
        raise UsageError(str(exc)) from None
    return broker, queue


def open_log(opts: Options):
    """The JSON log opened, the picture folders made and tried, or UsageError: a path that cannot be written is
    a set-up error, found before the first frame, not at the first garment."""
    from device.output import JsonLog, OutputError, writable_folder

    log = None
    try:
        log = JsonLog(opts.output) if opts.output else None
        for flag, folder in (("--dump-input", opts.dump_input), ("--save-items", opts.save_items)):
            if folder:
                writable_folder(folder, flag)
    except OutputError as exc:
        if log:
            log.close()
        raise UsageError(str(exc)) from None
    return log


def serve(job: Job):
    """Start the web page (--serve): the Live state the loop updates, or None."""
    opts = job.opts
    if not opts.serve:
        return None
    from device.config import ConfigError, ConfigFile
    from device.web import Live, Server

    facts = {"runtime": f"{job.model.runtime.name} {job.model.runtime.version}",
             "model": f"{job.model.path.name} ({job.model.id})",
             "threshold": round(job.settings.threshold, 2), **({"settle": opts.settle} if opts.events else {}),
             "source": job.source.name,
             "mode": "stockroom events" if opts.events else "a record per frame",
             "background": str(opts.background) if opts.background else
             "none (learnt from the empty table)" if opts.events else "none"}
    live = Live(facts, list(job.settings.roi) if job.settings.roi else None)
    live.disk = opts.save_items
    try:
        settings = ConfigFile(opts.config)
        server = Server(opts.serve, live, settings)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--serve {opts.serve}: {exc.strerror or exc}") from None
    if settings.values.get("token"):  # printed once, when it was made; after that it lives in the config file
        print(f"classify-cam: web page at {server.url} (the token to change settings is in {opts.config})",
              file=sys.stderr)
        return live
    kept = ""
    if opts.config:
        try:
            settings.set(token=server.token)  # 0600 when the file is new: it holds a secret
            kept = f"; kept in {opts.config}, not printed again"
        except OSError as exc:
            kept = f"; cannot keep it in {opts.config} ({exc.strerror or exc})"
    print(f"classify-cam: web page at {server.url}#token={server.token} (the token is needed to change settings"
          f"{kept or '; give --config FILE to keep it and the settings'})", file=sys.stderr)
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


def check_first_frame(job: Job, image) -> Job:
    """The region and the background against the first frame: a region that reaches outside the frame, or a
    background of another shape, is a set-up error; a background of the same shape at another size is
    resized to the frame's (a still taken at a higher resolution with the same camera), and given the frame's
    channels."""
    import cv2

    settings = job.settings
    h, w = image.shape[:2]
    if settings.roi is not None:
        x, y, rw, rh = settings.roi
        if x < 0 or y < 0 or x + rw > w or y + rh > h:
            where = f"the region saved in {job.opts.config}" if "roi" in job.from_config else "--roi"
            raise UsageError(f"{where} {x},{y},{rw},{rh} reaches outside the {w}x{h} frame of {job.source.name}")
    background = settings.background
    if background is not None:  # a grey picture of the table for a colour camera (or the other way round)
        from device.stockroom.scene import channels_of

        background = channels_of(background, image)
        settings = replace(settings, background=background)
    if background is not None and background.shape[:2] != (h, w):
        bh, bw = background.shape[:2]
        if abs(bw / bh - w / h) > 0.01:
            where = f"the background saved in {job.opts.config}" if "background" in job.from_config else "--background"
            raise UsageError(f"{where} {job.opts.background} is {bw}x{bh}, another shape than the {w}x{h} "
                             f"frames of {job.source.name}: take it with the same camera")
        settings = replace(settings, background=cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA))
    return replace(job, settings=settings)
