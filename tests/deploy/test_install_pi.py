"""deploy/install-pi.sh: its checks on unsupported systems, and a real install with the system's Python.

The real install stands in for a Raspberry Pi OS Bookworm: Debian's own Python 3.11 with apt's
python3-scipy (built for the system's NumPy 1.24, like apt's simplejpeg under picamera2) and a
stand-in picamera2 that imports it. make setup installs python3-scipy; the test skips, saying
why, where it is absent (and fails under CI=true).
"""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, need

SCRIPT = ROOT / "deploy" / "install-pi.sh"
SYSTEM_PYTHON = "/usr/bin/python3"


def run(*args, env=None, timeout=60):
    return subprocess.run(["sh", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def fake_python(tmp_path, version=(3, 11), machine="aarch64"):
    """A Python that reports another version and machine (a sitecustomize on its path)."""
    site = tmp_path / "fake-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import platform, sys\nsys.version_info = {tuple(version) + (0, 'final', 0)!r}\n"
        f"platform.machine = lambda: {machine!r}\n")
    exe = tmp_path / "python3"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def one_error_line(r) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install-pi: error: "), r.stderr
    return lines[0]


def test_help_and_unknown_option():
    r = run("--help")
    assert r.returncode == 0 and "install-pi.sh [VENV] [--service]" in r.stdout
    assert "unknown option --frobnicate" in one_error_line(run("--frobnicate"))


def test_no_system_python(tmp_path):
    assert "no system Python" in one_error_line(run(str(tmp_path / "venv"), env={"PYTHON": str(tmp_path / "none")}))


def test_python_too_old(tmp_path):
    line = one_error_line(run(str(tmp_path / "venv"), env={"PYTHON": fake_python(tmp_path, (3, 9))}))
    assert "needs Python 3.10 or newer" in line
    assert not (tmp_path / "venv").exists()


def test_32_bit_without_wheels(tmp_path):
    line = one_error_line(run(str(tmp_path / "venv"), env={"PYTHON": fake_python(tmp_path, (3, 13), "armv7l")}))
    assert "32-bit armv7l" in line and "64-bit" in line


def test_unknown_machine(tmp_path):
    assert "unsupported machine riscv64" in one_error_line(
        run(str(tmp_path / "venv"), env={"PYTHON": fake_python(tmp_path, (3, 11), "riscv64")}))


def system_has_apt_numpy() -> bool:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-s", "-c", "import numpy, scipy.ndimage"], capture_output=True).returncode == 0


def test_real_install_keeps_the_system_numpy_for_apt_modules(tmp_path, test_images):
    need(system_has_apt_numpy(), "Debian's python3 with apt's python3-scipy", "sudo apt-get install python3-scipy")
    from tests.conftest import make_jpeg
    from tools.demo import render_photo

    picam = tmp_path / "apt-site"  # stands in for /usr/lib/python3/dist-packages/picamera2
    (picam / "picamera2").mkdir(parents=True)
    (picam / "picamera2" / "__init__.py").write_text(
        "import scipy.ndimage  # built for the system's NumPy, like simplejpeg\n"
        "class Picamera2:\n    @staticmethod\n    def global_camera_info():\n        return []\n")
    images, _ = test_images
    make_jpeg(tmp_path / "photo.jpg", render_photo(images[0]))
    env = {"PYTHONPATH": str(picam), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "DOCTOR_SOURCE": str(tmp_path / "photo.jpg")}
    venv = tmp_path / "venv"
    r = run(str(venv), env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "picamera2 imports inside" in r.stdout and "OK: ready to classify" in r.stdout
    system_numpy = subprocess.run([SYSTEM_PYTHON, "-s", "-c", "import numpy; print(numpy.__version__)"],
                                  capture_output=True, text=True).stdout.strip()
    venv_python = str(venv / "bin" / "python")
    inside = subprocess.run([venv_python, "-c", "import numpy, picamera2; print(numpy.__version__)"],
                            capture_output=True, text=True, env={**os.environ, **env})
    assert inside.returncode == 0 and inside.stdout.strip() == system_numpy, inside.stderr

    r = subprocess.run([str(venv / "bin" / "classify-cam"), "--source", str(tmp_path / "photo.jpg"), "--output",
                        str(tmp_path / "log.jsonl")], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "log.jsonl").read_text())["label"]

    # The documented mistake: NumPy 2 pip-installed over it breaks the stand-in, as it breaks picamera2;
    # classify-cam says so in one line, and running the script again repairs the venv.
    subprocess.run([venv_python, "-m", "pip", "install", "--quiet", "numpy>=2"], check=True, capture_output=True)
    r = subprocess.run([str(venv / "bin" / "classify-cam"), "--source", "picamera"], cwd=tmp_path,
                       capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "built for NumPy 1.x" in r.stderr and "install-pi.sh" in r.stderr
    r = run(str(venv), env=env, timeout=900)
    assert r.returncode == 0 and "reusing" in r.stdout and "removing NumPy 2" in r.stdout, r.stdout + r.stderr
