#!/bin/sh
# Install classify-cam on a Raspberry Pi (or any Debian-family system) without breaking apt's picamera2.
#
#   sh deploy/install-pi.sh [VENV] [--service]
#
# Why: apt's python3-picamera2 imports simplejpeg and others, built for the system's own NumPy
# (Bookworm: 1.24). A plain `pip install ".[device]"` in a --system-site-packages venv puts NumPy 2
# in front of it, and picamera2 then fails with "numpy.dtype size changed". This script:
#   1. makes VENV (default .venv) from the system's own Python (/usr/bin/python3: the one apt's
#      packages belong to), with --system-site-packages so picamera2 is seen;
#   2. installs the device side keeping the system's NumPy where it has one (NumPy pinned to it,
#      OpenCV from apt's python3-opencv if installed, else an OpenCV wheel that supports that NumPy),
#      and the TFLite runtime that has wheels here (LiteRT on 64-bit, tflite-runtime on 32-bit);
#   3. checks that what apt installed still imports inside the venv, and runs classify-cam --doctor;
#   4. with --service: installs and enables the systemd unit (deploy/classify-cam.service).
# Run it again at any time: it reuses the venv and installs only what is missing or wrong.
#
# Overrides (mostly for tests): PYTHON (default /usr/bin/python3), PIP_ARGS (extra pip arguments),
# SYSTEMD_UNIT_DIR (default /etc/systemd/system), SYSTEMCTL (default systemctl), DOCTOR_SOURCE (the
# --source --doctor tries; default: auto, the camera).
set -eu

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install-pi: error: $*" >&2; exit 2; }
say() { echo "install-pi: $*"; }

VENV=.venv
SERVICE=0
for arg in "$@"; do
  case "$arg" in
    --service) SERVICE=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $arg (usage: sh deploy/install-pi.sh [VENV] [--service])" ;;
    *) VENV=$arg ;;
  esac
done

HERE=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || die "no system Python at $PYTHON: sudo apt install python3 python3-venv"

# The system Python: 3.10 or newer, and its machine decides the runtime.
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  die "$("$PYTHON" -V 2>&1) is too old: classify-cam needs Python 3.10 or newer (Raspberry Pi OS Bookworm has 3.11)"
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
MACHINE=$("$PYTHON" -c 'import platform; print(platform.machine())')
case "$MACHINE" in
  x86_64|aarch64|arm64) RUNTIME=ai-edge-litert ;;
  armv6l|armv7l|armv8l|i386|i686)
    if "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] > (3, 11))'; then
      RUNTIME=tflite-runtime
    else
      die "no TFLite runtime publishes wheels for 32-bit $MACHINE with Python $PYVER: install the 64-bit Raspberry Pi OS"
    fi ;;
  *) die "unsupported machine $MACHINE (LiteRT has wheels for x86_64 and aarch64)" ;;
esac
"$PYTHON" -m venv --help >/dev/null 2>&1 || die "the system Python has no venv module: sudo apt install python3-venv"

# What the system's own packages give (numbers, or empty). -s: not the user's ~/.local packages.
SYS_NUMPY=$("$PYTHON" -s -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
SYS_OPENCV=$("$PYTHON" -s -c 'import cv2; print(cv2.__version__)' 2>/dev/null || true)
SYS_PICAMERA=$("$PYTHON" -s -c 'import picamera2; print("yes")' 2>/dev/null || true)
say "system Python $PYVER ($MACHINE) at $PYTHON; NumPy ${SYS_NUMPY:-none}, OpenCV ${SYS_OPENCV:-none}," \
    "picamera2 ${SYS_PICAMERA:-not importable}"
if [ -z "$SYS_PICAMERA" ] && [ -r /proc/device-tree/model ] && grep -q "Raspberry Pi" /proc/device-tree/model 2>/dev/null; then
  say "note: for the Pi camera, first: sudo apt install python3-picamera2 (then run this again)"
fi

# 1. The venv, from the system Python, seeing the system's packages.
if [ -x "$VENV/bin/python" ] && grep -q "include-system-site-packages = true" "$VENV/pyvenv.cfg" 2>/dev/null &&
   [ "$("$VENV/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))' 2>/dev/null)" = \
     "$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')" ]; then
  say "reusing $VENV"
else
  [ -e "$VENV" ] && say "$VENV was not made from $PYTHON with --system-site-packages: making it again"
  rm -rf "$VENV"
  "$PYTHON" -m venv --system-site-packages "$VENV" || die "could not make $VENV"
  say "made $VENV"
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check"

# 2. Constraints that keep the system's NumPy in force, then the device side. A NumPy that an
#    earlier plain pip install put into the venv hides the system's: it goes first.
VENV_OWN_NUMPY=$("$VENV/bin/python" -s -c 'import numpy, sys; print(numpy.__version__ if numpy.__file__.startswith(sys.prefix) else "")' 2>/dev/null || true)
if [ -n "$SYS_NUMPY" ] && [ -n "$VENV_OWN_NUMPY" ] && [ "$VENV_OWN_NUMPY" != "$SYS_NUMPY" ]; then
  say "removing NumPy $VENV_OWN_NUMPY from $VENV: it hides the system's NumPy $SYS_NUMPY that apt's packages need"
  $PIP uninstall --quiet --yes numpy || die "could not remove NumPy $VENV_OWN_NUMPY from $VENV"
fi
CONSTRAINTS="$VENV/constraints-install-pi.txt"
: > "$CONSTRAINTS"
DEPS="$RUNTIME paho-mqtt>=2"
if [ -n "$SYS_NUMPY" ]; then
  echo "numpy==$SYS_NUMPY" >> "$CONSTRAINTS"   # the system's, already there: pip installs no other
  case "$SYS_NUMPY" in 1.*) echo "opencv-python-headless<4.12" >> "$CONSTRAINTS" ;; esac  # 4.12+ need NumPy 2
else
  DEPS="numpy $DEPS"
fi
[ "$RUNTIME" = tflite-runtime ] && echo "numpy<2" >> "$CONSTRAINTS"  # tflite-runtime crashes under NumPy 2
[ -n "$SYS_OPENCV" ] || DEPS="opencv-python-headless $DEPS"
say "installing classify-cam and: $DEPS (constraints: $(tr '\n' ' ' < "$CONSTRAINTS"))"
# shellcheck disable=SC2086
$PIP install --quiet ${PIP_ARGS:-} -c "$CONSTRAINTS" $DEPS || die "pip could not install $DEPS (see above)"
# shellcheck disable=SC2086
$PIP install --quiet ${PIP_ARGS:-} --no-deps --force-reinstall "$HERE" || die "pip could not install $HERE"

# 3. Checks: the system's NumPy is the one in force, what apt built still imports, the device is usable.
VENV_NUMPY=$("$VENV/bin/python" -c 'import numpy; print(numpy.__version__)')
if [ -n "$SYS_NUMPY" ] && [ "$VENV_NUMPY" != "$SYS_NUMPY" ]; then
  die "the venv has NumPy $VENV_NUMPY instead of the system's $SYS_NUMPY: remove $VENV and run this again"
fi
if [ -n "$SYS_PICAMERA" ]; then
  "$VENV/bin/python" -c 'import picamera2' 2>/dev/null ||
    die "picamera2 imports in the system Python but not in $VENV: $("$VENV/bin/python" -c 'import picamera2' 2>&1 | tail -1)"
  say "picamera2 imports inside $VENV"
fi
say "NumPy $VENV_NUMPY in force; running classify-cam --doctor"
doctor=0
"$VENV/bin/classify-cam" --doctor --source "${DOCTOR_SOURCE:-auto}" || doctor=$?
case $doctor in
  0) ;;
  1) say "installed: the model runs here, but no camera gave a frame yet (above): connect one, or give --source" ;;
  *) die "classify-cam --doctor found a problem (above)" ;;
esac

# 4. The service.
if [ "$SERVICE" = 1 ]; then
  UNIT_DIR=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
  SYSTEMCTL=${SYSTEMCTL:-systemctl}
  SUDO=; [ "$(id -u)" = 0 ] || [ -w "$UNIT_DIR" ] || SUDO=sudo
  VENV_ABS=$(cd "$VENV" && pwd)
  RUN_AS=${SUDO_USER:-$(id -un)}
  sed -e "s|^User=.*|User=$RUN_AS|" -e "s|^WorkingDirectory=.*|WorkingDirectory=$HERE|" \
      -e "s|/home/pi/fashion-edge/.venv|$VENV_ABS|g" "$HERE/deploy/classify-cam.service" |
    $SUDO tee "$UNIT_DIR/classify-cam.service" >/dev/null || die "could not write $UNIT_DIR/classify-cam.service"
  $SUDO $SYSTEMCTL daemon-reload && $SUDO $SYSTEMCTL enable --now classify-cam ||
    die "systemctl could not enable classify-cam (is this a systemd system?)"
  say "service installed and started: journalctl -u classify-cam -f"
fi
say "done: $VENV/bin/classify-cam --help"
