import json
import subprocess
import sys

from tests.conftest import ROOT


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def compare(a, b, *flags):
    return subprocess.run([sys.executable, str(ROOT / "tools/compare_runs.py"), str(a), str(b), *flags],
                          capture_output=True, text=True)


def test_identical_runs_pass_and_one_step_fails(tmp_path):
    rows = [{"source": f"/x/{i}.jpg", "label": "Bag", "raw": [i, -128, 3]} for i in range(3)]
    write(tmp_path / "a.jsonl", rows)
    write(tmp_path / "b.jsonl", [{**r, "source": r["source"].replace("/x/", "/opt/frames/")} for r in rows])
    ok = compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    assert ok.returncode == 0 and "3 frames" in ok.stdout
    rows[1] = {**rows[1], "raw": [1, -127, 3]}  # one int8 step
    write(tmp_path / "b.jsonl", rows)
    bad = compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    assert bad.returncode == 1 and "1 of 3 frames differ" in bad.stdout


def test_tolerance_accepts_small_steps_but_never_a_changed_label(tmp_path):
    rows = [{"source": f"{i}.jpg", "label": "Bag", "raw": [100, -128]} for i in range(4)]
    write(tmp_path / "a.jsonl", rows)
    rows[0] = {**rows[0], "raw": [101, -128]}  # one step
    write(tmp_path / "b.jsonl", rows)
    one = compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl", "--tolerance", "1")
    assert one.returncode == 0 and "1 of 4 frames differ, by at most 1 step" in one.stdout
    rows[1] = {**rows[1], "raw": [98, -128]}  # two steps
    write(tmp_path / "b.jsonl", rows)
    assert compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl", "--tolerance", "1").returncode == 1
    rows[1] = {**rows[1], "raw": [100, -128], "label": "unknown"}  # same integers, other label
    write(tmp_path / "b.jsonl", rows)
    relabelled = compare(tmp_path / "a.jsonl", tmp_path / "b.jsonl", "--tolerance", "5")
    assert relabelled.returncode == 1 and "1 label(s) changed" in relabelled.stdout
