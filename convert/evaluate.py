"""One evaluation path for the float .keras and the int8 .tflite, and the accuracy-drop gate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.preprocess import prepare
from device.spec import CLASS_NAMES

LATENCY_IMAGES = 300  # single images timed for the per-image latency


@dataclass
class Tolerances:
    drop: float = 0.3  # most overall accuracy lost, in percentage points
    class_drop: float = 1.0  # most accuracy any one class may lose, in points
    # A float model and its own int8 copy agree on almost every image (99.5%+ measured);
    # an int8 file converted from another model, even an equally accurate one, does not.
    agreement: float = 0.98


def predict_keras(path: Path, x: np.ndarray, mirror: bool = False) -> tuple[np.ndarray, float]:
    """Class ids for x (N, 28, 28, 1) float, and single-image latency in ms (mirror: convert/quantize.mirrored)."""
    from convert.quantize import load_keras, mirrored

    model = load_keras(path)
    model = mirrored(model) if mirror else model
    pred = model.predict(x, batch_size=500, verbose=0).argmax(1)
    one = x[:1]
    model(one, training=False)
    t = time.perf_counter()
    for i in range(LATENCY_IMAGES // 10):  # the eager call is slow; fewer runs say enough
        model(x[i: i + 1], training=False)
    ms = (time.perf_counter() - t) * 1000 / (LATENCY_IMAGES // 10)
    return pred, ms


def tflite_model_info(interpreter) -> dict:
    """dtypes and whether any float tensor is left (a float-fallback model has some)."""
    from device import classify

    tensors = interpreter.get_tensor_details()
    floats = [t["name"] for t in tensors if np.issubdtype(t["dtype"], np.floating)]
    return {"input_dtype": np.dtype(classify.input_details(interpreter)["dtype"]).name,
            "output_dtype": np.dtype(classify.output_details(interpreter)["dtype"]).name,
            "float_tensors": floats}


def predict_tflite(path: Path, x: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """The device's own runtime and adapters, one image at a time, single thread."""
    from device import classify
    from device.runtime import make_interpreter

    interpreter = make_interpreter(path, threads=1)
    pred = np.empty(len(x), np.int64)
    for i in range(len(x)):
        pred[i] = int(np.argmax(classify.classify(interpreter, x[i])))
    t = time.perf_counter()
    for i in range(LATENCY_IMAGES):
        classify.set_input(interpreter, x[i % len(x)])
        interpreter.invoke()
    ms = (time.perf_counter() - t) * 1000 / LATENCY_IMAGES
    return pred, ms, tflite_model_info(interpreter)


def per_class_accuracy(y_true, y_pred) -> dict:
    return {name: float(np.mean(y_pred[y_true == c] == c)) for c, name in enumerate(CLASS_NAMES)
            if np.any(y_true == c)}


def evaluate_file(path: Path, images: np.ndarray, labels: np.ndarray, mirror: bool = False) -> dict:
    """Accuracy, per-class accuracy, size and latency of one file; mirror: a .keras model's scores averaged
    with its mirror image's, as in an int8 file converted with --mirror."""
    path = Path(path)
    x = prepare(images)
    info = {}
    if path.suffix == ".tflite":
        pred, ms, info = predict_tflite(path, x)
    else:
        pred, ms = predict_keras(path, x, mirror)
    return {"file": str(path), "bytes": path.stat().st_size, "accuracy": float(np.mean(pred == labels)),
            "per_class": per_class_accuracy(labels, pred), "latency_ms": round(ms, 3), "pred": pred, **info}


def compare(float_path: Path, int8_path: Path, images: np.ndarray, labels: np.ndarray,
            tol: Tolerances = Tolerances(), mirror: bool = False) -> dict:
    """Evaluate both files on the same images and apply the gate.

    mirror: the int8 file was converted with mirror averaging, so the float model is scored the same way
    (the gate compares one computation in two number formats)."""
    f = evaluate_file(float_path, images, labels, mirror)
    q = evaluate_file(int8_path, images, labels)
    class_drop = {name: 100 * (f["per_class"][name] - q["per_class"][name]) for name in f["per_class"]}
    worst = max(class_drop, key=class_drop.get)
    report = {
        "images": int(len(labels)),
        "float": {k: v for k, v in f.items() if k != "pred"},
        "int8": {k: v for k, v in q.items() if k != "pred"},
        "agreement": float(np.mean(f["pred"] == q["pred"])),
        "drop_points": 100 * (f["accuracy"] - q["accuracy"]),
        "class_drop_points": class_drop,
        "largest_class_drop": {"class": worst, "points": class_drop[worst]},
        "tolerances": vars(tol).copy(),
        "mirror": mirror,
    }
    report["failures"] = gate(report, tol)
    report["passed"] = not report["failures"]
    return report


def gate(report: dict, tol: Tolerances) -> list[str]:
    """Every reason the int8 file may not ship; empty when it may."""
    failures = []
    # Drops move in steps of 0.1 point per 1,000 images: compare them rounded, not as float noise.
    if round(report["drop_points"], 6) > tol.drop:
        failures.append(f"overall accuracy dropped {report['drop_points']:.2f} points "
                        f"({100 * report['float']['accuracy']:.2f}% -> {100 * report['int8']['accuracy']:.2f}%), "
                        f"tolerance {tol.drop}")
    for name, d in report["class_drop_points"].items():
        if round(d, 6) > tol.class_drop:
            failures.append(f"class {name} dropped {d:.2f} points, tolerance {tol.class_drop}")
    if report["agreement"] < tol.agreement:
        failures.append(f"float and int8 agree on only {100 * report['agreement']:.2f}% of images "
                        f"(at least {100 * tol.agreement:.1f}% expected): is the int8 file converted from this model?")
    q = report["int8"]
    if q.get("input_dtype") != "int8" or q.get("output_dtype") != "int8":
        failures.append(f"int8 file has {q.get('input_dtype')} input and {q.get('output_dtype')} output, not int8")
    if q.get("float_tensors"):
        failures.append(f"int8 file keeps {len(q['float_tensors'])} float tensors (float fallback), "
                        f"e.g. {q['float_tensors'][0]!r}")
    return failures


def format_table(report: dict) -> str:
    f, q = report["float"], report["int8"]
    lines = [
        f"{'':<14}{'float':>10}{'int8':>10}{'drop':>8}",
        f"{'accuracy %':<14}{100 * f['accuracy']:>10.2f}{100 * q['accuracy']:>10.2f}{report['drop_points']:>8.2f}",
    ]
    for name in f["per_class"]:
        lines.append(f"  {name:<12}{100 * f['per_class'][name]:>10.2f}{100 * q['per_class'][name]:>10.2f}"
                     f"{report['class_drop_points'][name]:>8.2f}")
    lines += [
        f"{'file KB':<14}{f['bytes'] / 1024:>10.1f}{q['bytes'] / 1024:>10.1f}",
        f"{'ms / image':<14}{f['latency_ms']:>10.3f}{q['latency_ms']:>10.3f}   (one thread; float = Keras eager call)",
        f"agreement {100 * report['agreement']:.2f}%   largest class drop "
        f"{report['largest_class_drop']['points']:.2f} points ({report['largest_class_drop']['class']})"
        f"   on {report['images']} test images",
        "GATE PASSED" if report["passed"] else "GATE FAILED:\n  - " + "\n  - ".join(report["failures"]),
    ]
    return "\n".join(lines)
