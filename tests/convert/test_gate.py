"""The accuracy-drop gate: it passes the shipped pair, and it trips on every way of shipping a bad int8 file."""

import json

import numpy as np
import pytest

import models
from convert import cli, evaluate
from convert.unknown import DEFAULT_KEEP
from convert.quantize import calibration_indices, convert_int8, converted_mirrored


@pytest.fixture(scope="module")
def shipped_float():
    import keras

    assert models.FLOAT_MODEL.is_file(), "models/fashion_float.keras is missing"
    return keras.models.load_model(models.FLOAT_MODEL, compile=False)


def test_shipped_pair_passes_the_gate(fmnist):
    """The CI check: the shipped float/int8 pair on the full 10,000-image test set (the float model scored with
    mirror averaging when the int8 file was converted with it, as its card says)."""
    report = evaluate.compare(models.FLOAT_MODEL, models.INT8_MODEL, fmnist.test.images, fmnist.test.labels,
                              mirror=converted_mirrored(models.INT8_MODEL))
    assert report["images"] == 10_000
    assert report["passed"], evaluate.format_table(report)
    assert report["int8"]["accuracy"] >= 0.94, evaluate.format_table(report)
    assert report["int8"]["bytes"] <= 300 * 1024


def test_blank_calibration_trips_the_gate(shipped_float, fmnist, tmp_path):
    blank = np.zeros((200, 28, 28), np.uint8)
    path = tmp_path / "blank.tflite"
    path.write_bytes(convert_int8(shipped_float, blank))
    report = evaluate.compare(models.FLOAT_MODEL, path, fmnist.test.images[:2000], fmnist.test.labels[:2000])
    assert not report["passed"]
    assert any("dropped" in f for f in report["failures"])


def test_int8_from_another_model_trips_the_gate(model_variants, fmnist):
    other = model_variants["int8"] / "model.tflite"  # the tiny smoke model, quantized correctly
    report = evaluate.compare(models.FLOAT_MODEL, other, fmnist.test.images[:2000], fmnist.test.labels[:2000])
    assert not report["passed"]
    assert any("agree" in f for f in report["failures"])


def test_float_fallback_trips_the_gate(shipped_float, fmnist, tmp_path):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(shipped_float)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # weights int8, activations float: not full integer
    path = tmp_path / "fallback.tflite"
    path.write_bytes(converter.convert())
    report = evaluate.compare(models.FLOAT_MODEL, path, fmnist.test.images[:1000], fmnist.test.labels[:1000])
    assert not report["passed"]
    assert any("float32 input" in f for f in report["failures"])
    assert any("float tensors" in f for f in report["failures"])


def test_gate_arithmetic_and_thresholds():
    base = {"float": {"accuracy": 0.95}, "int8": {"accuracy": 0.946, "input_dtype": "int8", "output_dtype": "int8",
                                                   "float_tensors": []},
            "drop_points": 0.4, "class_drop_points": {"Shirt": 1.5, "Bag": 0.2}, "agreement": 0.99}
    failures = evaluate.gate(base, evaluate.Tolerances())
    assert len(failures) == 2 and "0.40 points" in failures[0] and "Shirt" in failures[1]
    assert evaluate.gate(base, evaluate.Tolerances(drop=0.5, class_drop=2.0)) == []
    assert len(evaluate.gate({**base, "agreement": 0.9}, evaluate.Tolerances(drop=1, class_drop=2))) == 1


def test_smoke_conversion_end_to_end(smoke_run, fmnist, tmp_path):
    """A freshly trained small model through fashion-convert, and the report's arithmetic checked."""
    run_dir, _ = smoke_run
    out, report_path = tmp_path / "m" / "model.tflite", tmp_path / "report.json"
    code = cli.main(["--model", str(run_dir / "model.keras"), "--output", str(out), "--calibration-size", "100",
                     "--test-limit", "500", "--report", str(report_path), "--class-tolerance", "100",
                     "--tolerance", "100", "--min-agreement", "0"])
    report = json.loads(report_path.read_text())
    assert code == 0 and report["passed"]
    assert report["drop_points"] == pytest.approx(100 * (report["float"]["accuracy"] - report["int8"]["accuracy"]))
    worst = report["largest_class_drop"]
    assert worst["points"] == pytest.approx(max(report["class_drop_points"].values()))
    for name, d in report["class_drop_points"].items():
        assert d == pytest.approx(100 * (report["float"]["per_class"][name] - report["int8"]["per_class"][name]))
    card = json.loads((out.parent / "model_card.json").read_text())
    assert card["conversion"]["calibration"]["size"] == 100
    assert card["files"]["model.tflite"]["bytes"] == out.stat().st_size
    assert (out.parent / "labels.txt").read_text().splitlines()[0] == "T-shirt/top"
    unknown = card["unknown"]  # the calibrated default threshold, read by classify-cam
    assert 0 < unknown["threshold"] < 1 and unknown["images"] == 2000
    assert unknown["unknown_on_garments"] <= 1 - DEFAULT_KEEP + 0.01  # keeps that share of realistic garments
    assert unknown == json.loads(report_path.read_text())["unknown"]
    # The fingerprint a device compares with (classify-cam --doctor): this file's integers, reference kernels,
    # computed here by hand from what the card says it is (not by calling fingerprint() again: an echo).
    recorded = card["reference_outputs"]
    assert recorded["kernels"] == "reference" and len(recorded["raw"]) == 8
    assert recorded["raw"] == by_hand(out, recorded["what"], 8)
    # The same pair with the default tolerances: exit 1 if and only if the report failed.
    strict = cli.main(["--check-only", "--model", str(run_dir / "model.keras"), "--output", str(out),
                       "--test-limit", "500", "--report", str(report_path)])
    assert strict == (0 if json.loads(report_path.read_text())["passed"] else 1)


def by_hand(model_path, what: str, count: int) -> list[list[int]]:
    """The fingerprint images as the card describes them ("PCG64 seed N": uniform 0..255 pixels, real value
    pixel/255), quantized with the input tensor's own scale and zero point and run through the reference
    kernels: written out here, independent of device.classify."""
    import re

    from device.runtime import make_interpreter

    seed = int(re.search(r"PCG64 seed (\d+)", what).group(1))
    pixels = np.random.Generator(np.random.PCG64(seed)).integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)
    interpreter = make_interpreter(model_path, threads=1, kernels="reference")
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    assert inp["dtype"] == np.int8 and scale > 0
    raw = []
    for image in pixels:
        q = np.clip(np.round(image.astype(np.float32) / np.float32(255.0) / np.float32(scale)) + zero_point, -128, 127)
        interpreter.set_tensor(inp["index"], q.astype(np.int8)[None])
        interpreter.invoke()
        raw.append(interpreter.get_tensor(out["index"])[0].tolist())
    return raw


def test_shipped_fingerprint_matches_the_build_machines():
    """What this machine's reference kernels compute from the shipped int8 file must be the integers the build
    machine recorded in the shipped card (classify-cam --doctor relies on it): fingerprint() against a record
    made elsewhere, and against the images worked out by hand."""
    from device import classify
    from device.runtime import make_interpreter

    recorded = json.loads(models.CARD.read_text())["reference_outputs"]
    assert recorded["kernels"] == "reference" and "PCG64 seed 0" in recorded["what"]
    assert len(recorded["raw"]) == 8 and all(len(r) == 10 for r in recorded["raw"])
    # Random pixels keep the integers off the rails, where a rounding difference would hide.
    assert len({v for r in recorded["raw"] for v in r}) > 20 and max(max(r) for r in recorded["raw"]) < 127
    got = classify.fingerprint(make_interpreter(models.INT8_MODEL, threads=1, kernels="reference"))
    assert got == recorded["raw"]
    assert by_hand(models.INT8_MODEL, recorded["what"], 8) == recorded["raw"]


def test_mirror_averaging_scores_an_image_and_its_mirror_alike(smoke_run, fmnist, tmp_path):
    """--mirror: the int8 file gives one garment the same scores either way round, and the gate and a later
    --check-only score the float model the same way (else they would compare two computations)."""
    from device import classify
    from device.preprocess import prepare
    from device.runtime import make_interpreter

    run_dir, _ = smoke_run
    files = {}
    for mirror in ("--mirror", "--no-mirror"):
        out, report = tmp_path / mirror / "model.tflite", tmp_path / f"{mirror}.json"
        assert cli.main(["--model", str(run_dir / "model.keras"), "--output", str(out), mirror,
                         "--calibration-size", "100", "--test-limit", "300", "--report", str(report),
                         "--tolerance", "100", "--class-tolerance", "100"]) in (0, 1)
        assert json.loads(report.read_text())["mirror"] == (mirror == "--mirror")
        assert json.loads(report.read_text())["agreement"] >= 0.95  # the float side computed as the file does
        files[mirror] = out
    x = prepare(fmnist.test.images[:20])
    scores = {m: [(classify.classify(make_interpreter(f), i), classify.classify(make_interpreter(f), i[:, ::-1]))
                  for i in x] for m, f in files.items()}
    apart = {m: max(float(np.abs(a - b).max()) for a, b in pairs) for m, pairs in scores.items()}
    # Not bit-equal: each branch's activations get their own int8 scales. The smoke model alone is not symmetric.
    assert apart["--mirror"] <= 0.02 and apart["--no-mirror"] >= 5 * apart["--mirror"]
    card = json.loads((files["--mirror"].parent / "model_card.json").read_text())
    assert card["conversion"]["mirror"] is True
    check = tmp_path / "check.json"
    cli.main(["--check-only", "--model", str(run_dir / "model.keras"), "--output", str(files["--mirror"]),
              "--test-limit", "300", "--report", str(check)])
    assert json.loads(check.read_text())["mirror"] is True  # read from the card, not given


def test_check_only_keeps_a_threshold_calibrated_on_real_photos(smoke_run, tmp_path, capsys):
    """make model calibrates 'unknown' on held-out real photos; a later --check-only without --photos must not
    recalibrate it on drawn garments (it did: 0.25 became 0.24 in the shipped card)."""
    run_dir, _ = smoke_run
    out, report = tmp_path / "int8" / "model.tflite", tmp_path / "convert.json"
    cli.main(["--model", str(run_dir / "model.keras"), "--output", str(out), "--calibration-size", "100",
              "--test-limit", "300", "--report", str(report), "--tolerance", "100", "--class-tolerance", "100"])
    card_path = out.parent / "model_card.json"
    card = json.loads(card_path.read_text())
    card["unknown"] = {"threshold": 0.37, "method": "max score; keeps 97% of the real garment photos held out",
                       "photos": {"garments": 283, "not_in_catalogue": 45, "manifest": "0" * 64}}
    card_path.write_text(json.dumps(card))
    check = tmp_path / "check.json"
    cli.main(["--check-only", "--model", str(run_dir / "model.keras"), "--output", str(out),
              "--test-limit", "300", "--report", str(check)])
    assert json.loads(card_path.read_text())["unknown"] == card["unknown"]
    assert json.loads(check.read_text())["unknown"] == card["unknown"]
    # A keep without --photos would be ignored: a one-line error before any work, the card untouched.
    before = card_path.read_bytes()
    assert cli.main(["--check-only", "--model", str(run_dir / "model.keras"), "--output", str(out),
                     "--unknown-keep", "0.9", "--report", str(tmp_path / "refused.json")]) == 2
    assert "--unknown-keep needs --photos" in capsys.readouterr().err
    assert card_path.read_bytes() == before and not (tmp_path / "refused.json").exists()
    # A threshold calibrated on drawn garments is still recalibrated (and recorded) by a check, as before.
    card["unknown"] = {"threshold": 0.99, "method": "max score"}
    card_path.write_text(json.dumps(card))
    cli.main(["--check-only", "--model", str(run_dir / "model.keras"), "--output", str(out),
              "--test-limit", "300", "--report", str(check)])
    assert json.loads(card_path.read_text())["unknown"]["images"] == 2000


def test_calibration_set_is_class_balanced(fmnist):
    idx = calibration_indices(fmnist.train.labels, 205, seed=3)
    counts = np.bincount(fmnist.train.labels[idx], minlength=10)
    assert counts.sum() == 205 and counts.max() - counts.min() <= 1
    assert len(set(idx.tolist())) == 205
    np.testing.assert_array_equal(idx, calibration_indices(fmnist.train.labels, 205, seed=3))
    assert not np.array_equal(idx, calibration_indices(fmnist.train.labels, 205, seed=4))
