"""The fault suite: odd images, models, cards, labels, flags, outputs, signals and streams, made here.

Every case asserts the one exit code the contract promises (0 input processed, even with unreadable
images; 2 usage or set-up error; 1 anything else), exactly the stderr lines it expects (one line for
a mistake; the banner, any expected line and the summary for a run), no traceback, and that a log
that should exist does and every line of it parses. classify-cam runs as a user runs it: the
installed command, started outside the checkout. What each odd case does is decided in device/ (and
listed in docs/hardening.md):
- a picture that cannot be read or used (truncated, not an image, over 50 megapixels, a strip over
  20:1, a side under 8 pixels) is an `error` line in a folder and exit 2 on its own; any other
  picture is a `label` either way (IMAGE_CASES names the outcome of each);
- a model, card or labels file that is damaged is exit 2 with one line, and --doctor says PROBLEM;
- a failed write (full disk) stops the run with exit 1, the log ending in a whole line;
- SIGTERM or Ctrl-C stop at once at any stage: before the first frame exit 1 ("interrupted"),
  afterwards exit 0 with the summary.
"""

import json
import os
import re
import resource
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import NEUTRAL, command
from tests.conftest import classify_cam as cam

import cv2


def lines_of(stderr: str) -> list[str]:
    """stderr's non-empty lines, after checking nothing there looks like a traceback or OpenCV noise."""
    assert "Traceback" not in stderr and "error: error" not in stderr and "libpng" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.strip()]


def one_line(stderr: str) -> str:
    """stderr's one line: a mistake is exactly one line, nothing before or after it."""
    lines = lines_of(stderr)
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}: {stderr!r}"
    return lines[0]


def ran(stderr: str, source, *middle: str, frames: str | int, unreadable: int = 0) -> None:
    """stderr of a run that got going is exactly: the banner (naming `source`, a single file or a video,
    when given), one line for each of `middle` (regexes) and the summary of `frames` (a number or a regex)."""
    lines_of(stderr)
    named = r"[^\n]*" if source is None else re.escape(str(source))
    pattern = (rf"classify-cam: [^\n]*, source {named}\n" + "".join(rf"{m}[^\n]*\n" for m in middle)
               + rf"summary: {frames} frames \({unreadable} unreadable\)[^\n]*\n")
    assert re.fullmatch(pattern, stderr), stderr


def parsed(path: Path) -> list[dict]:
    """Every line of a JSON log that must exist, each asserted to be whole JSON."""
    assert path.is_file(), f"no log at {path}"
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends in half a line: {data[-80:]!r}"
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def garment(h=240, w=320, channels=3) -> np.ndarray:
    """A dark blob on a light, uneven background: something the pipeline can frame."""
    y, x = np.mgrid[0:h, 0:w]
    img = (200 + 20 * np.sin(x / 37.0))[..., None].repeat(channels, 2).astype(np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (max(w // 5, 1), max(h // 3, 1)), 0, 0, 360, (40,) * channels, -1)
    return img if channels > 1 else img[..., 0]


def png_header(width: int, height: int, idat: bytes = b"") -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat or zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def encoded(ext: str, img: np.ndarray, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def exif_jpeg(img: np.ndarray, orientation: int) -> bytes:
    """A JPEG with an EXIF APP1 segment holding one Orientation tag (as phones write)."""
    tiff = b"MM\0*\0\0\0\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    app1 = b"Exif\0\0" + tiff
    jpeg = encoded(".jpg", img)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


G = garment()
# What device/ decides for a picture (device/sources/files.py read_image, device/preprocess.py check_picture):
LABEL = None  # classified: a `label` record in a folder, exit 0 on its own
SMALL = "too small to hold a garment"  # a side under 8 pixels   } each an `error` record in a folder,
STRIP = "a strip, not a photo"  # over 20:1                        } exit 2 with one line on its own
UNREADABLE = "not a readable image"  # truncated, corrupt or not an image
HUGE = "larger than 50 megapixels; not decoded"
EMPTY = "empty file"
# name -> (file name, bytes, outcome): every one of these goes into a folder beside a good photo.
IMAGE_CASES = {
    "1x1": ("a.png", lambda: encoded(".png", np.zeros((1, 1), np.uint8)), SMALL),
    "7x7": ("a.png", lambda: encoded(".png", garment(7, 7)), SMALL),
    "3000x2 strip": ("a.png", lambda: encoded(".png", np.full((2, 3000, 3), 128, np.uint8)), SMALL),
    "2x3000 strip": ("a.png", lambda: encoded(".png", np.full((3000, 2), 128, np.uint8)), SMALL),
    "100000x1": ("a.png", lambda: encoded(".png", np.full((1, 100000), 90, np.uint8)), SMALL),
    "1:40 strip": ("a.png", lambda: encoded(".png", garment(10, 400)), STRIP),
    "8x8": ("a.png", lambda: encoded(".png", garment(8, 8)), LABEL),
    "28x28 grey": ("a.png", lambda: encoded(".png", garment(28, 28, 1)), LABEL),
    "29x29": ("a.jpg", lambda: encoded(".jpg", garment(29, 29)), LABEL),
    "1:20 wide": ("a.png", lambda: encoded(".png", garment(30, 600)), LABEL),
    "4000x3000": ("a.jpg", lambda: encoded(".jpg", garment(3000, 4000)), LABEL),
    "grey jpeg": ("a.jpg", lambda: encoded(".jpg", garment(channels=1)), LABEL),
    "rgba png": ("a.png", lambda: encoded(".png", np.dstack([G, np.full(G.shape[:2], 255, np.uint8)])), LABEL),
    "transparent png": ("a.png", lambda: encoded(".png", np.dstack([G, np.zeros(G.shape[:2], np.uint8)])), LABEL),
    "16-bit grey": ("a.png", lambda: encoded(".png", garment(channels=1).astype(np.uint16) * 257), LABEL),
    "16-bit rgb": ("a.png", lambda: encoded(".png", G.astype(np.uint16) * 257), LABEL),
    "16-bit black": ("a.png", lambda: encoded(".png", np.zeros((50, 50), np.uint16)), LABEL),
    "float tiff": ("a.tiff", lambda: encoded(".tiff", G.astype(np.float32) / 255), LABEL),
    "bmp": ("a.bmp", lambda: encoded(".bmp", G), LABEL),
    "webp": ("a.webp", lambda: encoded(".webp", G), LABEL),
    "tiff": ("a.tif", lambda: encoded(".tiff", G), LABEL),
    "pgm": ("a.pgm", lambda: encoded(".pgm", garment(channels=1)), LABEL),
    "ppm": ("a.ppm", lambda: encoded(".ppm", G), LABEL),
    "uppercase .JPG": ("A.JPG", lambda: encoded(".jpg", G), LABEL),
    "all black": ("a.png", lambda: encoded(".png", np.zeros((240, 320), np.uint8)), LABEL),
    "all white": ("a.png", lambda: encoded(".png", np.full((240, 320, 3), 255, np.uint8)), LABEL),
    "noise": ("a.png", lambda: encoded(".png", np.random.default_rng(0).integers(0, 256, (240, 320, 3), np.uint8)),
              LABEL),
    "jpeg cut in half": ("a.jpg", lambda: encoded(".jpg", G)[: len(encoded(".jpg", G)) // 2], UNREADABLE),
    "jpeg first 10 bytes": ("a.jpg", lambda: encoded(".jpg", G)[:10], UNREADABLE),
    "png cut in half": ("a.png", lambda: encoded(".png", G)[: len(encoded(".png", G)) // 2], UNREADABLE),
    "png bad idat": ("a.png", lambda: png_header(320, 240, b"not zlib at all"), UNREADABLE),
    "random bytes .jpg": ("a.jpg", lambda: np.random.default_rng(1).bytes(5000), UNREADABLE),
    "text as .png": ("a.png", lambda: b"this is not a picture\n", UNREADABLE),
    "empty file": ("a.png", lambda: b"", EMPTY),
    "png declares 40000x40000": ("a.png", lambda: png_header(40000, 40000), HUGE),
    "png 20000x20000 of zeros": ("a.png", lambda: png_header(20000, 20000, zlib.compress(b"\0" * 20001 * 20000, 9)),
                                 HUGE),
    "exif rotated": ("a.jpg", lambda: exif_jpeg(G, 6), LABEL),
    "exif bogus orientation": ("a.jpg", lambda: exif_jpeg(G, 99), LABEL),
    "name with spaces and newline": ("a b\nc.jpg", lambda: encoded(".jpg", G), LABEL),
    "unicode name": ("żółć-シャツ.jpg", lambda: encoded(".jpg", G), LABEL),
    "long name": ("x" * 250 + ".jpg", lambda: encoded(".jpg", G), LABEL),
}
ERROR_CASES = sorted(name for name, (_, _, outcome) in IMAGE_CASES.items() if outcome is not LABEL)


def write_case(folder: Path, name: str) -> Path:
    file_name, make, _ = IMAGE_CASES[name]
    path = folder / file_name
    path.write_bytes(make())
    return path


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_odd_image_never_stops_a_folder(case, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_case(folder, case)
    (folder / "zz-good.png").write_bytes(encoded(".png", G))  # sorted after every case
    log = tmp_path / "log.jsonl"
    r = cam("--source", folder, "--output", log, "--quiet")
    outcome = IMAGE_CASES[case][2]
    assert r.returncode == 0, r.stderr
    ran(r.stderr, None, frames=2, unreadable=0 if outcome is LABEL else 1)
    lines = parsed(log)
    good = [line for line in lines if line["source"].endswith("zz-good.png")]
    odd = [line for line in lines if not line["source"].endswith("zz-good.png")]
    assert len(good) == 1 and len(odd) == 1 and "label" in good[0] and "error" not in good[0]
    if outcome is LABEL:
        assert "label" in odd[0] and "error" not in odd[0], odd[0]
    else:
        assert "label" not in odd[0] and outcome in odd[0]["error"], odd[0]


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_odd_image_alone(case, tmp_path):
    """On its own: a picture that cannot be used is exit 2 with one line; any other is classified, exit 0."""
    path = write_case(tmp_path, case)
    log = tmp_path / "log.jsonl"
    r = cam("--source", path, "--output", log, "--quiet")
    outcome = IMAGE_CASES[case][2]
    if outcome is LABEL:
        assert r.returncode == 0, r.stderr
        ran(r.stderr, path, frames=1)
        [record] = parsed(log)
        assert "label" in record and "error" not in record, record
    else:
        assert r.returncode == 2, r.stderr
        line = one_line(r.stderr)
        assert line.startswith(f"classify-cam: cannot read image {path}: ") and outcome in line, line
        assert not log.exists()  # set-up refused it before the log was opened


def test_huge_png_is_refused_without_decoding_it(tmp_path):
    path = write_case(tmp_path, "png 20000x20000 of zeros")
    # VmHWM: this process image's peak (ru_maxrss would count the test process it was forked from).
    code = ("import sys; from device.cli import main; rc = main(sys.argv[1:]); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
            "print(int(hwm) // 1024, file=sys.stderr); sys.exit(rc)")
    # From a neutral folder, so that `device` is the installed package, never the checkout's.
    r = subprocess.run([sys.executable, "-c", code, "--source", str(path)], cwd=NEUTRAL, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    message, peak = lines_of(r.stderr)  # the one error line, then the peak this test printed
    assert message.startswith(f"classify-cam: cannot read image {path}: ") and HUGE in message, r.stderr
    peak_mb = int(peak)
    assert peak_mb < 400, f"peak {peak_mb} MB"


def test_exif_orientation_turns_the_photo_upright(tmp_path):
    from device.sources import read_image

    img = np.zeros((60, 100, 3), np.uint8)
    img[:, :10] = 255  # a bright band on the left edge
    (tmp_path / "r.jpg").write_bytes(exif_jpeg(img, 6))  # 6: the camera was turned 90 degrees
    upright = read_image(tmp_path / "r.jpg")
    assert upright.shape[:2] == (100, 60)
    assert upright[:10].mean() > 200  # the band is now along the top


@pytest.mark.parametrize("case", ["3000x2 strip", "png declares 40000x40000", "text as .png", "1:40 strip"])
def test_odd_background_is_exit_2(case, tmp_path):
    bg = write_case(tmp_path, case)
    (tmp_path / "p.png").write_bytes(encoded(".png", G))
    r = cam("--source", tmp_path / "p.png", "--background", bg)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert line.startswith(f"classify-cam: --background {bg}: ") and IMAGE_CASES[case][2] in line, line


# --- models, cards, labels ----------------------------------------------------------------------

def shipped_copy(tmp_path) -> Path:
    import shutil

    import models

    folder = tmp_path / "m"
    folder.mkdir()
    for f in (models.INT8_MODEL, models.LABELS, models.CARD):
        shutil.copyfile(f, folder / f.name)
    return folder


def flip_bit(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def edit_card(folder: Path, change) -> None:
    card = json.loads((folder / "model_card.json").read_text())
    change(card)
    (folder / "model_card.json").write_text(json.dumps(card))


MODEL_CASES = {
    "one bit flipped in the model": lambda f: flip_bit(f / "fashion_int8.tflite", 5000),
    "model truncated": lambda f: (f / "fashion_int8.tflite").write_bytes((f / "fashion_int8.tflite").read_bytes()[:999]),
    "model empty": lambda f: (f / "fashion_int8.tflite").write_bytes(b""),
    "model random bytes, no card": lambda f: ((f / "model_card.json").unlink(),
                                             (f / "fashion_int8.tflite").write_bytes(os.urandom(4096))),
    "card truncated": lambda f: (f / "model_card.json").write_text((f / "model_card.json").read_text()[:300]),
    "card not json": lambda f: (f / "model_card.json").write_bytes(b"\xff\xfe not json"),
    "card a list": lambda f: (f / "model_card.json").write_text("[1, 2, 3]"),
    "card files not a table": lambda f: edit_card(f, lambda c: c.update(files=7)),
    "card sha256 a number": lambda f: edit_card(f, lambda c: c["files"]["fashion_int8.tflite"].update(sha256=5)),
    "card threshold a word": lambda f: edit_card(f, lambda c: c["unknown"].update(threshold="high")),
    "card threshold 7": lambda f: edit_card(f, lambda c: c["unknown"].update(threshold=7)),
    "card threshold true": lambda f: edit_card(f, lambda c: c["unknown"].update(threshold=True)),
    "labels not utf-8": lambda f: (f / "labels.txt").write_bytes(b"T-shirt\xff\xfe\n" * 10),
    "labels empty": lambda f: (f / "labels.txt").write_text("\n\n"),
    "labels too few": lambda f: (f / "labels.txt").write_text("a\nb\nc\n"),
    "labels missing": lambda f: (f / "labels.txt").unlink(),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_damaged_model_card_or_labels_is_exit_2_and_a_doctor_problem(case, tmp_path):
    folder = shipped_copy(tmp_path)
    MODEL_CASES[case](folder)
    (tmp_path / "p.png").write_bytes(encoded(".png", G))
    model = folder / "fashion_int8.tflite"
    r = cam("--source", tmp_path / "p.png", "--model", model, "--labels", folder / "labels.txt")
    assert r.returncode == 2, r.stderr
    one_line(r.stderr)
    d = cam("--doctor", "--model", model, "--labels", folder / "labels.txt")
    assert d.returncode == 2 and "PROBLEM" in d.stdout and "Traceback" not in d.stderr


def test_model_path_that_is_a_folder(tmp_path):
    r = cam("--source", tmp_path, "--model", tmp_path)
    assert r.returncode == 2, r.stderr
    one_line(r.stderr)


# --- flags --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [["--threads", "0"], ["--threads", "99999999999"], ["--roi", "1,2,3"],
                                   ["--roi", "0,0,-5,5"], ["--threshold", "7"], ["--threshold", "nan%"],
                                   ["--top-k", "0"], ["--camera-timeout", "-1"], ["--max-frames", "x"],
                                   ["--source", ""], ["--source", "   "], ["--source", "/nonexistent/x.jpg"],
                                   ["--source", "/dev/video99"], ["--source", "nothing-matches-*.png"],
                                   ["--kernels", "fast"]])
def test_bad_flag_is_exit_2_in_one_line(flags):
    r = cam(*flags)
    assert r.returncode == 2, r.stderr
    one_line(r.stderr)


def test_empty_source_never_means_the_current_folder(tmp_path):
    (tmp_path / "p.png").write_bytes(encoded(".png", G))
    r = cam("--source", "", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "--source is empty" in one_line(r.stderr)


# --- outputs ------------------------------------------------------------------------------------

@pytest.fixture
def folder_of_photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i:02d}.png").write_bytes(encoded(".png", garment(120 + i, 160)))
    return folder


def limited(max_bytes: int):
    """preexec_fn: files this process writes may not grow past max_bytes (a disk that fills up)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def test_full_disk_leaves_whole_lines_and_the_next_run_starts_clean(folder_of_photos, tmp_path):
    log = tmp_path / "log.jsonl"
    r = cam("--source", folder_of_photos, "--output", log, "--quiet", preexec_fn=limited(3000))
    assert r.returncode == 1, r.stderr
    ran(r.stderr, None, rf"classify-cam: cannot write --output {re.escape(str(log))}: ", frames=r"\d+")
    first = parsed(log)
    assert 0 < len(first) < 30 and log.stat().st_size <= 3000
    r = cam("--source", folder_of_photos, "--output", log, "--quiet")
    assert r.returncode == 0, r.stderr
    ran(r.stderr, None, frames=30)
    assert len(parsed(log)) == len(first) + 30


def test_a_log_ending_in_a_fragment_gets_a_new_line_first(folder_of_photos, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"source": "x", "frame": 0}\n{"source": "half a rec')
    r = cam("--source", folder_of_photos / "00.png", "--output", log)
    assert r.returncode == 0, r.stderr
    ran(r.stderr, folder_of_photos / "00.png", frames=1)
    lines = log.read_bytes().decode().splitlines()
    assert lines[1] == '{"source": "half a rec' and json.loads(lines[2])["label"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_tmpfs(folder_of_photos, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        r = cam("--source", folder_of_photos, "--output", mnt / "log.jsonl", "--quiet")
        assert r.returncode == 1, r.stderr
        ran(r.stderr, None, rf"classify-cam: cannot write --output {re.escape(str(mnt))}/log.jsonl: "
            "No space left", frames=r"\d+")
        assert parsed(mnt / "log.jsonl")
        r = cam("--source", folder_of_photos, "--dump-input", mnt / "seen", "--quiet")
        assert r.returncode == 1, r.stderr
        ran(r.stderr, None, "classify-cam: cannot write --dump-input", frames=r"\d+")
        assert all(p.stat().st_size > 0 for p in (mnt / "seen").iterdir())  # no empty PNG left
    finally:
        subprocess.run(["umount", str(mnt)])


def test_dump_write_failure_is_not_silent(folder_of_photos, tmp_path):
    r = cam("--source", folder_of_photos, "--dump-input", tmp_path / "seen", "--quiet", preexec_fn=limited(100))
    assert r.returncode == 1, r.stderr
    ran(r.stderr, None, "classify-cam: cannot write --dump-input", frames=r"\d+")
    assert all(p.stat().st_size > 0 for p in (tmp_path / "seen").iterdir())


def test_dump_input_takes_names_that_are_not_utf8(tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    (Path(os.fsdecode(bytes(folder) + b"/caf\xe9-\xff.png"))).write_bytes(encoded(".png", G))
    r = cam("--source", folder, "--dump-input", tmp_path / "seen", "--quiet")
    assert r.returncode == 0, r.stderr
    ran(r.stderr, None, frames=1)
    assert len(os.listdir(tmp_path / "seen")) == 1


@pytest.mark.parametrize("target", ["missing-dir/log.jsonl", "a-folder"])
def test_output_that_cannot_be_opened_is_exit_2(target, tmp_path):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "p.png").write_bytes(encoded(".png", G))
    r = cam("--source", tmp_path / "p.png", "--output", tmp_path / target)
    assert r.returncode == 2, r.stderr
    assert one_line(r.stderr).startswith(f"classify-cam: cannot open --output {tmp_path / target}: ")


def test_dump_input_that_is_a_file_is_exit_2(tmp_path):
    (tmp_path / "p.png").write_bytes(encoded(".png", G))
    (tmp_path / "f").write_text("x")
    r = cam("--source", tmp_path / "p.png", "--dump-input", tmp_path / "f")
    assert r.returncode == 2, r.stderr
    assert "--dump-input" in one_line(r.stderr)


def test_closed_stdout_never_stops_the_log(folder_of_photos, tmp_path):
    log = tmp_path / "log.jsonl"
    cmd = shlex.join(command("classify-cam") + ["--source", str(folder_of_photos), "--output", str(log)])
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | head -1"], cwd=NEUTRAL, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(parsed(log)) == 30
    ran(r.stderr, None, frames=30)  # no BrokenPipe, nothing but the banner and the summary


def test_closed_stderr_still_runs(folder_of_photos, tmp_path):
    log = tmp_path / "log.jsonl"
    r = subprocess.run(command("classify-cam") + ["--source", str(folder_of_photos), "--output", str(log), "--quiet"],
                       cwd=NEUTRAL, stdout=subprocess.DEVNULL, timeout=60, preexec_fn=lambda: os.close(2))
    assert r.returncode == 0
    assert len(parsed(log)) == 30


# --- signals and streams ------------------------------------------------------------------------

class JpegStream:
    """A TCP server sending concatenated JPEGs (an MJPEG stream): `frames` each connection, or silence."""

    def __init__(self, frames: int = 0, once: bool = True, refuse: bool = False):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        if refuse:
            self.sock.close()
            return
        self.sock.listen(5)
        self.frames, self.once, self.held = frames, once, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.frames:
                self.held.append(conn)  # accept and never answer
                continue
            for i in range(self.frames):
                try:
                    conn.sendall(encoded(".jpg", garment(240, 320 + 0 * i)))
                except OSError:
                    break
                time.sleep(0.02)
            conn.close()
            if self.once:
                self.sock.close()
                return


def start(*args):
    """classify-cam started as a user starts it (the installed command, outside the checkout), left running."""
    return subprocess.Popen(command("classify-cam") + [str(a) for a in args], cwd=NEUTRAL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(proc, text: str, timeout: float = 30) -> None:
    """Read stderr until a line holds `text` (the process keeps writing to the pipe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_reconnecting_stops_at_once(sig, tmp_path):
    stream = JpegStream(frames=10)
    log = tmp_path / "log.jsonl"
    proc = start("--source", stream.url, "--output", log, "--quiet", "--camera-timeout", "30")
    wait_for(proc, "reopening")
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 3
    assert proc.returncode == 0, err
    assert lines_of(err)[-1].startswith("summary: 10 frames (0 unreadable)"), err
    assert len(parsed(log)) == 10


def test_stream_that_ends_gives_up_after_the_camera_timeout(tmp_path):
    stream = JpegStream(frames=5)
    r = cam("--source", stream.url, "--quiet", "--camera-timeout", "1", timeout=30)
    assert r.returncode == 1, r.stderr
    # the banner, a line per reconnect, one "giving up", the summary: nothing else
    ran(r.stderr, None, *[rf"classify-cam: camera:{re.escape(stream.url)}: no fresh frame; reopening"]
        * (len(lines_of(r.stderr)) - 3), rf"classify-cam: camera:{re.escape(stream.url)} delivered no fresh frame "
        "for 1 s; giving up", frames=5)


def test_silent_stream_fails_within_the_camera_timeout():
    stream = JpegStream(frames=0)
    t0 = time.monotonic()
    r = cam("--source", stream.url, "--camera-timeout", "2", timeout=30)
    assert time.monotonic() - t0 < 10
    assert r.returncode == 2, r.stderr
    assert one_line(r.stderr) == f"classify-cam: cannot open camera {stream.url}"


def test_refused_stream_is_exit_2():
    stream = JpegStream(refuse=True)
    r = cam("--source", stream.url, "--camera-timeout", "2", timeout=30)
    assert r.returncode == 2, r.stderr
    assert one_line(r.stderr) == f"classify-cam: cannot open camera {stream.url}"


def test_sigterm_during_set_up_is_a_clean_stop():
    stream = JpegStream(frames=0)  # opening it blocks for the whole timeout: set-up is where it waits
    proc = start("--source", stream.url, "--camera-timeout", "3")
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert one_line(err) == "classify-cam: interrupted during set-up; nothing was classified"


def test_sigkill_mid_run_leaves_only_whole_lines(folder_of_photos, tmp_path):
    log = tmp_path / "log.jsonl"
    proc = start("--source", folder_of_photos, "--output", log, "--quiet")
    deadline = time.monotonic() + 30
    try:
        while not log.exists() or log.stat().st_size < 400:
            assert proc.poll() is None, "the run ended before the log grew to 400 bytes"
            assert time.monotonic() < deadline, "the log never grew to 400 bytes"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.communicate()
    assert 2 <= len(parsed(log)) < 30  # killed mid-run, and only whole lines


def test_damaged_video_is_quiet(tmp_path):
    from tests.device.test_sources import write_video

    video = write_video(tmp_path / "v.avi", 20)
    data = bytearray(video.read_bytes())
    for at in range(2000, len(data), 997):
        data[at] ^= 0xFF
    video.write_bytes(bytes(data))
    r = cam("--source", video, "--quiet")
    assert r.returncode == 0, r.stderr  # what can be decoded is the input, processed
    # The banner, at most one line saying how many frames were damaged, the summary: nothing of ffmpeg's own.
    damaged = rf"classify-cam: warning: {re.escape(str(video))}: \d+ of 20 frames could not be decoded"
    ran(r.stderr, video, *([damaged] * (len(lines_of(r.stderr)) - 2))[:1], frames=r"\d+")
