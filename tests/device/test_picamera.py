"""A picamera2 that is installed but fails to import (the NumPy ABI mismatch) is one clear line, never a crash."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

NUMPY_ABI = ("numpy.dtype size changed, may indicate binary incompatibility. "
             "Expected 96 from C header, got 88 from PyObject")


def stand_in(tmp_path, body: str):
    """A picamera2 package on PYTHONPATH whose import does `body`."""
    (tmp_path / "picamera2").mkdir()
    (tmp_path / "picamera2" / "__init__.py").write_text(body)
    return {"PYTHONPATH": str(tmp_path)}


def classify_cam(env, *args, timeout=60):
    import os

    return subprocess.run([sys.executable, "-m", "device.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env, "PYTHONPATH": env["PYTHONPATH"] + ":" + str(ROOT)})


@pytest.fixture
def abi_broken(tmp_path):
    return stand_in(tmp_path, f"import sys\nprint('A module that was compiled using NumPy 1.x ...', file=sys.stderr)\n"
                              f"raise ValueError({NUMPY_ABI!r})\n")


def test_source_picamera_names_the_numpy_mismatch_and_the_fix(abi_broken):
    r = classify_cam(abi_broken, "--source", "picamera")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    import numpy

    built = "built for NumPy 1.x" if int(numpy.__version__.split(".")[0]) >= 2 else "built for another NumPy"
    assert built in lines[0] and f"has NumPy {numpy.__version__}" in lines[0] and "deploy/install-pi.sh" in lines[0]
    assert "ValueError" not in r.stderr and "Traceback" not in r.stderr


def test_auto_warns_in_one_line_then_falls_back_to_camera_0(abi_broken):
    r = classify_cam(abi_broken, "--source", "auto", "--max-frames", "1", "--camera-timeout", "1")
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "NumPy" in warnings[0] and "trying camera 0" in warnings[0]
    assert "camera 0" in r.stderr.splitlines()[-1]  # the fallback was tried (no camera here)
    assert "Traceback" not in r.stderr


def test_doctor_shows_problem_with_the_fix(abi_broken):
    r = classify_cam(abi_broken, "--doctor")
    line = next(line for line in r.stdout.splitlines() if line.startswith("picamera2"))
    assert "PROBLEM" in line and "deploy/install-pi.sh" in line
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_other_import_failures_name_the_cause(tmp_path):
    env = stand_in(tmp_path, "import libcamera_not_here\n")
    r = classify_cam(env, "--source", "picamera")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "ModuleNotFoundError" in r.stderr and "libcamera_not_here" in r.stderr


def test_missing_picamera2_is_a_plain_set_up_error(tmp_path):
    r = classify_cam({"PYTHONPATH": str(tmp_path)}, "--source", "picamera")
    if "picamera2" in sys.modules or r.returncode != 2:
        pytest.skip("a real picamera2 is installed here")
    assert "not installed" in r.stderr and len(r.stderr.strip().splitlines()) == 1
