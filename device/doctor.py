"""classify-cam --doctor: what this device has, and whether it can run the model."""

from __future__ import annotations

import platform
import sys


def doctor(args) -> int:
    import numpy as np

    from device import classify, sources
    from device.pipeline import Model
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
    picam = sources.picamera_available()
    print(f"picamera2   {'camera found' if picam else 'no Pi camera (or picamera2 not installed)'}")
    print(f"/dev/video  {', '.join(sources.video_devices()) or 'none'}")
    try:
        model = Model(args.model, args.labels, args.threads)
    except (ModelError, RuntimeMissing) as exc:
        print(f"model       PROBLEM: {exc}")
        return 2
    print(f"runtime     {model.runtime.name} {model.runtime.version}")
    print(f"model       {args.model}")
    for kind, detail in (("input", classify.input_details(model.interpreter)),
                         ("output", classify.output_details(model.interpreter))):
        scale, zero = detail["quantization"]
        print(f"  {kind:<9} {np.dtype(detail['dtype']).name} {[int(s) for s in detail['shape']]} scale {scale:.6g} "
              f"zero point {zero}")
    print(f"labels      {args.labels}: {len(model.labels)} ({', '.join(model.labels)})")
    print("status      " + ("OK: ready to classify" if ok else "PROBLEM: see above"))
    sys.stdout.flush()
    return 0 if ok else 2
