"""The one module that imports a TFLite runtime: LiteRT first, then tflite-runtime. Never TensorFlow.

Everything else talks to the interpreter through the small NumPy adapters in device/classify.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path


class RuntimeMissing(RuntimeError):
    """Neither ai-edge-litert nor tflite-runtime is installed."""


class ModelError(RuntimeError):
    """The model file is missing, corrupt, tampered with, or not one this device can run."""


@dataclass(frozen=True)
class Runtime:
    name: str  # "ai-edge-litert" or "tflite-runtime"
    version: str
    interpreter_class: type


def find_runtime(prefer: str | None = None) -> Runtime:
    """The first runtime that imports, in order LiteRT, tflite-runtime (or only `prefer`)."""
    candidates = [("ai-edge-litert", _litert), ("tflite-runtime", _tflite_runtime)]
    if prefer:
        candidates = [c for c in candidates if c[0] == prefer]
    errors = []
    for name, loader in candidates:
        try:
            return loader()
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise RuntimeMissing("no TFLite runtime found (" + "; ".join(errors) + "); install the device extra: "
                         "pip install '.[device]' (LiteRT) or '.[device-tflite]' (tflite-runtime)")


def _litert() -> Runtime:
    from ai_edge_litert import interpreter as mod

    return Runtime("ai-edge-litert", _version("ai-edge-litert"), mod.Interpreter)


def _tflite_runtime() -> Runtime:
    from tflite_runtime import interpreter as mod

    return Runtime("tflite-runtime", _version("tflite-runtime"), mod.Interpreter)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


# Which kernels run the model. "default": the runtime's fastest (XNNPACK and its optimized kernels).
# Their int8 rounding is chosen per CPU: LiteRT's arm64 build rounds requantization differently
# from its x86 build, so a few scores can differ by one int8 step between a Pi and a PC (measured
# with make pi-check). "reference": the portable reference kernels, bit-identical on every CPU and
# in both runtimes, at about 8x the inference time (docs/benchmarks.md, "Reference kernels").
KERNELS = ("default", "reference")


def make_interpreter(model_path: Path, threads: int | None = None, runtime: Runtime | None = None,
                     kernels: str = "default"):
    """Load and allocate a .tflite model once; raises ModelError with a readable reason."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model not found: {model_path}")
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, not {kernels!r}")
    runtime = runtime or find_runtime()
    options = {}
    if kernels == "reference":
        options["experimental_op_resolver_type"] = _resolver_types(runtime).BUILTIN_REF
    try:
        with quiet_stderr():  # the runtime's C++ "INFO: Created ... delegate" chatter
            interpreter = runtime.interpreter_class(model_path=str(model_path), num_threads=threads, **options)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError, TypeError, OverflowError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"cannot load model {model_path}: {first}") from None
    return interpreter


def _resolver_types(runtime: Runtime):
    """The OpResolverType enum of the module runtime.interpreter_class comes from."""
    return sys.modules[runtime.interpreter_class.__module__].OpResolverType


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 for a moment: C libraries that print for themselves (the runtime's
    "INFO: Created ... delegate", libpng's warnings); what matters comes back as an exception."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr at all: nothing to silence
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
