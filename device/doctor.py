"""classify-cam --doctor: what this device has, and whether it can run the model on its --source.

Exit 0 "OK: ready to classify" only when the model runs here AND the source gave a frame (and the
broker answered, with --mqtt); 2 when the model, runtime, labels or card cannot run; 1 when they can
but the source or the broker cannot be used yet (no camera connected, a broker that does not answer).
"""

from __future__ import annotations

import platform
import sys

from device.job import UsageError


def doctor(opts) -> int:
    import numpy as np

    from device import classify, sources
    from device.sources import picamera
    from device.model import Model
    from device.runtime import ModelError, RuntimeMissing

    ok = True
    print(f"python      {platform.python_version()} ({platform.machine()}, {platform.system()})")
    print(f"numpy       {np.__version__}")
    try:
        import cv2

        print(f"opencv      {cv2.__version__}")
    except ImportError as exc:
        print(f"opencv      MISSING ({exc})")
        ok = False
    problem = picamera.picamera_problem()
    if problem:
        print(f"picamera2   PROBLEM: {problem}")
        ok = False
    else:
        picam = picamera.picamera_available()
        print(f"picamera2   {'camera found' if picam else 'no Pi camera (or picamera2 not installed)'}")
    print(f"/dev/video  {', '.join(sources.video_devices()) or 'none'}")
    from device import card

    if opts.store_problem:  # a run says it and goes on with the fallback: so does the doctor
        print(f"store       PROBLEM: {opts.store_problem}")
    try:  # the same checks classify-cam makes before its first frame: "ready" means it will run
        model = Model(opts.model, opts.labels, opts.threads, kernels=opts.kernels)
        threshold = card.unknown_threshold(opts.model)
    except (ModelError, RuntimeMissing, card.CardError) as exc:
        print(f"model       PROBLEM: {exc}")
        print("status      PROBLEM: see above")
        return 2
    print(f"runtime     {model.runtime.name} {model.runtime.version}")
    origin = {"installed": " (installed with --install-model)", "shipped": " (the shipped model)"}
    print(f"model       {model.id}: {opts.model}{origin.get(opts.model_from, '')}")
    for kind, detail in (("input", classify.input_details(model.interpreter)),
                         ("output", classify.output_details(model.interpreter))):
        scale, zero = detail["quantization"]
        print(f"  {kind:<9} {np.dtype(detail['dtype']).name} {[int(s) for s in detail['shape']]} scale {scale:.6g} "
              f"zero point {zero}")
    print(f"labels      {opts.labels}: {len(model.labels)} ({', '.join(model.labels)})")
    unknown = card.read(opts.model.parent / "model_card.json").get("unknown")
    calibrated = isinstance(unknown, dict) and "threshold" in unknown
    print(f"unknown     below {threshold:.2f} confidence ("
          + ("the model card's calibrated threshold)" if calibrated else "no calibrated threshold in a model card "
             "beside the model: the 0.5 default; give --threshold)"))
    ok = arithmetic(opts, model) and ok
    try:
        if ok:
            opts, background = settings_check(opts)
            source_fine = source_check(opts, background)
    except UsageError as exc:  # what would stop classify-cam with exit 2 stops the doctor's "ready" too
        print(f"settings    PROBLEM: {exc}")
        ok = False
    if not ok:
        print("status      PROBLEM: see above")
        return 2
    waiting = [what for what, fine in (("the source", source_fine), ("the broker", broker_check(opts))) if not fine]
    print("status      " + (f"NOT READY: the model runs here, but {' and '.join(waiting)} cannot be used yet (above)"
                            if waiting else "OK: ready to classify")
          + ("; the model store needs mending (above)" if opts.store_problem else ""))
    sys.stdout.flush()
    return 1 if waiting else 0


def settings_check(opts):
    """The settings classify-cam checks at set-up (the config file, the background, the broker's URL and queue,
    the output paths), checked the same way: UsageError for what would be exit 2. Returns the options with the
    config file's settings filled in, and the background picture (decoded once). A queue held by a running
    classify-cam is said, not a problem."""
    from device.job import open_log, read_background, with_config

    opts, from_config = with_config(opts)
    background = read_background(opts, from_config)
    if opts.mqtt:
        from device.job import mqtt_setup

        try:
            mqtt_setup(opts)[1].close()
        except UsageError as exc:
            if "in use by another classify-cam" not in str(exc):
                raise
            print(f"queue       {exc} (a running service: fine)")
    log = open_log(opts)
    if log:
        log.close()
    print("settings    OK: config, background, outputs" + (", broker URL and queue" if opts.mqtt else ""))
    return opts, background


def source_check(opts, background) -> bool:
    """Open --source and take one frame from it, as classify-cam would, and hold the region and background
    against it (UsageError, as classify-cam's set-up)."""
    from device import sources
    from device.job import Job, check_first_frame

    source = None
    try:
        source = sources.open_source(opts.source, min(opts.camera_timeout, 5.0))
        frame = next(iter(source.frames()), None)
        if frame is None or frame.image is None:
            raise sources.SourceError(frame.error if frame is not None else "no frame came")
    except (sources.SourceError, sources.CameraLost) as exc:
        print(f"source      PROBLEM: {sources.printable(opts.source)}: {exc}")
        return False
    finally:
        if source is not None:
            source.close()
    print(f"source      OK: {source.name} gave a {frame.image.shape[1]}x{frame.image.shape[0]} frame")
    if opts.roi is not None or opts.background is not None:
        from device.pipeline import LabelSettings

        check_first_frame(Job(opts, None, source, LabelSettings(roi=opts.roi, background=background)), frame.image)
    return True


def broker_check(opts) -> bool:
    """With --mqtt: connect once (5 s at most) and say whether the broker took the login."""
    if not opts.mqtt:
        return True
    import threading

    import paho.mqtt.client as mqtt

    from device.stockroom.url import MqttUrlError, parse_url, reason

    try:
        broker = parse_url(opts.mqtt)
    except MqttUrlError as exc:
        print(f"mqtt        PROBLEM: {exc}")
        return False
    answered, result = threading.Event(), []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, u, f, code, p: (result.append(code), answered.set())
    if broker.user:
        client.username_pw_set(broker.user, broker.password)
    if broker.tls:
        client.tls_set()
    try:
        client.connect(broker.host, broker.port, keepalive=10)
        client.loop_start()
        answered.wait(5)
    except OSError as exc:
        result = [reason(exc)]
    finally:
        client.disconnect()
        client.loop_stop()
    code = result[0] if result else "no answer to the login"
    fine = not isinstance(code, str) and not code.is_failure
    print(f"mqtt        {'OK: ' + str(broker) + ' took the login' if fine else f'PROBLEM: {broker}: {code}'}")
    return fine


def arithmetic(opts, model) -> bool:
    """Do this machine's reference kernels give the integers the build machine recorded in the card?"""
    from device import card, classify
    from device.runtime import make_interpreter

    expected = card.reference_outputs(opts.model)
    if expected is None:
        print("arithmetic  not checked (the model card records no reference outputs)")
        return True
    reference = make_interpreter(opts.model, threads=1, runtime=model.runtime, kernels="reference")
    got = classify.fingerprint(reference, count=len(expected))
    if got == expected:
        print("arithmetic  OK: the reference kernels give the build machine's integers, bit for bit")
        return True
    wrong = sum(g != e for g, e in zip(got, expected))
    print(f"arithmetic  PROBLEM: {wrong} of {len(expected)} fingerprint images give other integers than on "
          "the build machine (a different model file, or a runtime that computes differently)")
    return False
