"""A picamera2 that is installed but fails to import (the NumPy ABI mismatch) is one clear line, never a crash."""

import os
import subprocess
import sys

import pytest

from tests import conftest

NUMPY_ABI = ("numpy.dtype size changed, may indicate binary incompatibility. "
             "Expected 96 from C header, got 88 from PyObject")


def stand_in(tmp_path, body: str):
    """A picamera2 package on PYTHONPATH whose import does `body`."""
    (tmp_path / "picamera2").mkdir()
    (tmp_path / "picamera2" / "__init__.py").write_text(body)
    return {"PYTHONPATH": str(tmp_path)}


def classify_cam(env, *args, timeout=60):
    """The installed classify-cam, from a neutral folder, with only the stand-in on PYTHONPATH (never the
    checkout: the installed device package is what runs)."""
    return conftest.classify_cam(*args, timeout=timeout, env={**os.environ, **env})


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
    env = {"PYTHONPATH": str(tmp_path)}  # an empty folder: no stand-in
    # Asked of the very interpreter and environment the run uses, before the run: never from its outcome.
    probe = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('picamera2') is None)"],
                           cwd=conftest.NEUTRAL, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() in ("True", "False"), probe.stderr
    if probe.stdout.strip() == "False":
        pytest.skip("a real picamera2 is installed in this environment")
    r = classify_cam(env, "--source", "picamera")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "picamera2 is not installed" in lines[0] and "python3-picamera2" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
