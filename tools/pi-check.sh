#!/usr/bin/env bash
# make pi-check: does the device give the same answers on a Raspberry Pi (arm64) as here?
#
# Builds once, cached in .pi-root/ (git-ignored), an arm64 Debian Bookworm root (the base of
# Raspberry Pi OS Bookworm: Python 3.11, glibc 2.36) with debootstrap and qemu-user-static,
# installs the device extra from this checkout in it for each runtime (LiteRT, tflite-runtime),
# runs classify-cam over a fixed set of frames, and compares labels and raw int8 scores with
# the same run on this machine, per runtime, bit for bit (see CHECKS below for LiteRT's default
# kernels). One verdict line; non-zero on any difference. Needs root and about 600 MB.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$HERE/.pi-root
ROOTFS=$CACHE/bookworm-arm64
WORK=$CACHE/work
PYTHON=${PYTHON:-python3}
RUNTIMES="litert tflite"
say() { echo "pi-check: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot, binfmt_misc)"; exit 2; }

# --- tools: debootstrap and a static qemu for arm64 -----------------------------------------
if ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/qemu-aarch64-static ]; then
  say "installing debootstrap and qemu-user-static"
  apt-get install -y -q debootstrap qemu-user-static >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q debootstrap qemu-user-static >/dev/null; }
fi

# --- binfmt_misc: may not be mounted in a container; register qemu-aarch64 ourselves ---------
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  # 'F' opens the interpreter now, so the chroot needs no copy of it.
  printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
    >/proc/sys/fs/binfmt_misc/register
fi
echo 1 >/proc/sys/fs/binfmt_misc/qemu-aarch64

# --- the arm64 root, once: download and unpack here, then configure under emulation --------
if [ ! -f "$ROOTFS/.complete" ]; then
  mkdir -p "$CACHE"
  if [ ! -x "$ROOTFS/debootstrap/debootstrap" ]; then
    say "downloading an arm64 Debian Bookworm root into $ROOTFS (once)"
    rm -rf "$ROOTFS"
    debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$ROOTFS" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
      { say "debootstrap failed; see $CACHE/debootstrap.log"; exit 1; }
  fi
  say "configuring the arm64 root under emulation (once; a few minutes)"
  chroot "$ROOTFS" /debootstrap/debootstrap --second-stage >>"$CACHE/debootstrap.log" 2>&1 ||
    { say "debootstrap's second stage failed; see $CACHE/debootstrap.log"; exit 1; }
  touch "$ROOTFS/.complete"
fi

# qemu 7.2 hands the host's x86 /proc/cpuinfo to the guest and LiteRT crashes parsing it:
# show it a Raspberry Pi 4's (four Cortex-A72 cores) instead.
mkdir -p "$WORK"
CPUINFO=$WORK/cpuinfo
: >"$CPUINFO"
for i in 0 1 2 3; do
  printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i" >>"$CPUINFO"
done
printf 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' >>"$CPUINFO"

MOUNTS=()
cleanup() { for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
bind() { [ -e "$2" ] || mkdir -p "$2"; mount "${@:3}" "$1" "$2"; MOUNTS+=("$2"); }
# Without /proc and /sys, LiteRT quietly picks other kernels whose int8 results differ.
bind proc "$ROOTFS/proc" -t proc
bind sysfs "$ROOTFS/sys" -t sysfs
bind /dev "$ROOTFS/dev" --bind
bind "$CPUINFO" "$ROOTFS/proc/cpuinfo" --bind
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# pip inside must trust what pip here trusts (a proxy's CA, say).
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ROOTFS/etc/ssl/certs/host-ca.crt"

# 'max' (qemu's default CPU model) gives wrong int8 results; emulate the Pi 4's core.
export QEMU_CPU=${PI_CPU:-cortex-a72}  # PI_CPU=cortex-a76 for a Pi 5
in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  PIP_CERT=/etc/ssl/certs/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 QEMU_CPU=$QEMU_CPU "$@"; }

# --- this checkout, installed (not editable) in the root, one venv per runtime --------------
SRC=$ROOTFS/opt/fashion-edge
rm -rf "$SRC"
mkdir -p "$SRC"
git -C "$HERE" ls-files -z --cached --others --exclude-standard | (cd "$HERE" && xargs -0 cp --parents -t "$SRC")
STAMP=$(cd "$HERE" && cat pyproject.toml device/*.py models/* | sha256sum | cut -c1-16)
for rt in $RUNTIMES; do
  extra=device; [ "$rt" = tflite ] && extra=device-tflite
  venv=/opt/venv-$rt
  if [ "$(cat "$ROOTFS$venv/.stamp" 2>/dev/null)" != "$STAMP" ]; then
    say "installing .[$extra] in the arm64 root (emulated: minutes)"
    in_root /usr/bin/python3 -m venv --clear "$venv"
    in_root "$venv/bin/pip" install -q "/opt/fashion-edge[$extra]" >"$WORK/pip-$rt.log" 2>&1 ||
      { say "pip install .[$extra] failed in the arm64 root; see $WORK/pip-$rt.log"; exit 1; }
    echo "$STAMP" >"$ROOTFS$venv/.stamp"
  fi
done

# --- the same frames through both machines ---------------------------------------------------
FRAMES=$ROOTFS/opt/frames
rm -rf "$FRAMES" && mkdir -p "$FRAMES"
"$HERE/.venv/bin/python" -m tools.demo --out "$FRAMES" --count 30 >/dev/null
# Real photos too, where the shared development set sits beside the checkout: mounted read-only
# (never copied), 3 per folder, through the default segmentation for files (GrabCut).
REAL=${PI_REAL_PHOTOS:-$HERE/../shared/real-photos-dev}
RUNS="frames:grabcut frames:fast"
if [ -d "$REAL" ]; then
  bind "$REAL" "$ROOTFS/opt/real-photos" --bind -o ro
  rm -rf "$WORK/real" "$ROOTFS/opt/real" && mkdir -p "$WORK/real" "$ROOTFS/opt/real"
  for dir in "$REAL"/*/; do
    kind=$(basename "$dir")
    find "$dir" -maxdepth 1 -type f -iname '*.jpg' | sort | head -3 | while read -r photo; do
      ln -s "$photo" "$WORK/real/$kind-$(basename "$photo")"
      ln -s "/opt/real-photos/$kind/$(basename "$photo")" "$ROOTFS/opt/real/$kind-$(basename "$photo")"
    done
  done
  RUNS="$RUNS real:auto"
else
  say "no real photos at $REAL (set PI_REAL_PHOTOS): checking rendered frames only"
fi
verdicts=()
status=0
# Which kernels, and how close, per runtime. tflite-runtime's default kernels are the reference
# arithmetic on both CPUs: bit for bit. LiteRT's default kernels (XNNPACK) round requantization
# one way on arm64 and another on x86, so a few scores may differ by one int8 step (labels must
# not); its reference kernels (classify-cam --kernels reference) must match bit for bit.
CHECKS="tflite:default:0 litert:reference:0 litert:default:1"
for check in $CHECKS; do
  IFS=: read -r rt kernels tolerance <<<"$check"
  host_venv=$HERE/.venv-device; [ "$rt" = tflite ] && host_venv=$HERE/.venv-tflite
  make -C "$HERE" --no-print-directory "${host_venv#"$HERE"/}/.installed" >/dev/null
  # Both ways of finding the garment on the rendered frames (GrabCut for files, the fast grey cut
  # for cameras and video), and the real photos the way classify-cam treats files by default.
  for what in $RUNS; do
    IFS=: read -r src seg <<<"$what"
    run=$rt-$kernels-$src-$seg
    here_src=$FRAMES; root_src=/opt/frames
    [ "$src" = real ] && { here_src=$WORK/real; root_src=/opt/real; }
    flags=(--segment $seg --kernels $kernels --raw --top-k 10 --quiet)
    rm -f "$WORK/host-$run.jsonl" "$ROOTFS/opt/pi-$run.jsonl"
    (cd /tmp && "$host_venv/bin/classify-cam" --source "$here_src" "${flags[@]}" \
      --output "$WORK/host-$run.jsonl" 2>"$WORK/host-$run.err") || { say "host run ($run) failed: $(tail -1 "$WORK/host-$run.err")"; exit 1; }
    in_root /opt/venv-$rt/bin/classify-cam --source $root_src "${flags[@]}" \
      --output /opt/pi-$run.jsonl 2>"$WORK/pi-$run.err" || { say "arm64 run ($run) failed: $(tail -1 "$WORK/pi-$run.err")"; exit 1; }
    runtime=$(grep -o 'classify-cam: [a-z-]* [0-9.]*' "$WORK/pi-$run.err" | head -1 | cut -d' ' -f2-)
    line=$("$PYTHON" "$HERE/tools/compare_runs.py" "$WORK/host-$run.jsonl" "$ROOTFS/opt/pi-$run.jsonl" \
      --tolerance "$tolerance") || status=1
    accepted="bit for bit"; [ "$tolerance" = 0 ] || accepted="same labels, up to $tolerance step"
    verdicts+=("$runtime, $kernels kernels, $src --segment $seg ($accepted): $line;")
  done
done
# The model card's fingerprint, computed on the build machine: does the arm64 root reproduce it?
for rt in $RUNTIMES; do
  doctor=$(in_root /opt/venv-$rt/bin/classify-cam --doctor 2>&1 | grep '^arithmetic' || true)
  case $doctor in *OK*) ;; *) status=1 ;; esac
  verdicts+=("$rt --doctor: ${doctor:-no arithmetic line};")
done
# --- deploy/install-pi.sh against apt's NumPy: the picamera2 case (issue: NumPy 2 breaks it) ---
# Bookworm's python3-scipy stands in for apt's simplejpeg (both built for the system's NumPy 1.24),
# and a stand-in picamera2 package imports it, as apt's python3-picamera2 imports simplejpeg.
if [ ! -f "$ROOTFS/.apt-numpy" ]; then
  say "installing python3-scipy (apt, NumPy 1.24) in the arm64 root (once)"
  { in_root apt-get update -q && in_root apt-get install -y -q python3-scipy; } >"$WORK/apt.log" 2>&1 ||
    { say "apt-get install python3-scipy failed in the root; see $WORK/apt.log"; exit 1; }
  touch "$ROOTFS/.apt-numpy"
fi
STANDIN=$ROOTFS/usr/lib/python3/dist-packages/picamera2
mkdir -p "$STANDIN"
printf 'import scipy.ndimage  # built for the system NumPy, like simplejpeg
class Picamera2:
    @staticmethod
    def global_camera_info():
        return []
' >"$STANDIN/__init__.py"
# The documented mistake first: a plain pip install brings NumPy 2 in front of apt's NumPy.
in_root /usr/bin/python3 -m venv --clear --system-site-packages /opt/venv-plain
in_root /opt/venv-plain/bin/pip install -q "/opt/fashion-edge[device]" >"$WORK/pip-plain.log" 2>&1 ||
  { say "pip install .[device] (plain) failed; see $WORK/pip-plain.log"; exit 1; }
plain=$(in_root /opt/venv-plain/bin/classify-cam --source picamera 2>&1 >/dev/null; echo "exit $?")
case $plain in *"built for NumPy 1.x"*"exit 2") plain_ok=1 ;; *) plain_ok=0; status=1 ;; esac
# Then the one install command.
installed=0
if in_root sh /opt/fashion-edge/deploy/install-pi.sh /opt/venv-pi >"$WORK/install-pi.log" 2>&1 &&
   in_root /opt/venv-pi/bin/python -c 'import picamera2, numpy; assert numpy.__version__.startswith("1.")' \
     >>"$WORK/install-pi.log" 2>&1 &&
   in_root /opt/venv-pi/bin/classify-cam --source /opt/frames --max-frames 3 --quiet >>"$WORK/install-pi.log" 2>&1; then
  installed=1
else
  status=1
fi
verdicts+=("picamera2 stand-in: plain pip install -> $( [ $plain_ok = 1 ] && echo "exit 2 naming the NumPy mismatch" || echo "NOT the expected message: ${plain%%$'\n'*}");")
verdicts+=("deploy/install-pi.sh: $( [ $installed = 1 ] && echo "apt's NumPy kept, the stand-in imports, classify-cam classifies" || echo "FAILED, see $WORK/install-pi.log")")
guest=$(in_root /usr/bin/python3 -c 'import platform; print(platform.machine(), "Python", platform.python_version())')
if [ $status = 0 ]; then word=PASS; else word=FAIL; fi
echo "pi-check: $word, emulated $QEMU_CPU ($guest) against $(uname -m) here: ${verdicts[*]}"
exit $status
