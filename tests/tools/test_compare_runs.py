import json
import subprocess
import sys

from tests.conftest import ROOT


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def compare(a, b):
    return subprocess.run([sys.executable, str(ROOT / "tools/compare_runs.py"), str(a), str(b)],
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
