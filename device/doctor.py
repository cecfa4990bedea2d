"""classify-cam --doctor: what this device has, and whether it can run the model."""

from __future__ import annotations

import platform
import sys


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

    try:  # the same checks classify-cam makes before its first frame: "ready" means it will run
        model = Model(opts.model, opts.labels, opts.threads, kernels=opts.kernels)
        threshold = card.unknown_threshold(opts.model)
    except (ModelError, RuntimeMissing, card.CardError) as exc:
        print(f"model       PROBLEM: {exc}")
        print("status      PROBLEM: see above")
        return 2
    print(f"runtime     {model.runtime.name} {model.runtime.version}")
    print(f"model       {opts.model}")
    for kind, detail in (("input", classify.input_details(model.interpreter)),
                         ("output", classify.output_details(model.interpreter))):
        scale, zero = detail["quantization"]
        print(f"  {kind:<9} {np.dtype(detail['dtype']).name} {[int(s) for s in detail['shape']]} scale {scale:.6g} "
              f"zero point {zero}")
    print(f"labels      {opts.labels}: {len(model.labels)} ({', '.join(model.labels)})")
    print(f"unknown     below {threshold:.2f} confidence (the model card's calibrated threshold)")
    ok = arithmetic(opts, model) and ok
    print("status      " + ("OK: ready to classify" if ok else "PROBLEM: see above"))
    sys.stdout.flush()
    return 0 if ok else 2


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
