"""tools/stockroom_eval.py and tools/real_stockroom.py: real garments on rendered tables, measured against stills.

A tiny run (two garments from ../shared, one small dark-table video): the benchmark's full run is in
docs/stockroom.md. ../shared missing: fails under CI=true, skips otherwise (conftest.need).
"""

import json

import pytest

from tests.conftest import need
from tools import stockroom_eval


def test_help_names_the_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_:
        stockroom_eval.main(["--help"])
    assert exit_.value.code == 0 and "classify-cam --events" in capsys.readouterr().out


def test_a_tiny_run_counts_and_scores_every_garment(tmp_path, capsys):
    dev = stockroom_eval.PHOTO_SETS[0]
    need(dev.is_dir(), f"the real-photo set {dev}", "the ../shared folder beside the checkout")
    code = stockroom_eval.main(["--garments", "2", "--tables", "dark", "--backgrounds", "given", "--size", "320x240",
                                "--photos", str(dev), "--work", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[dark, given background]" in err and "all/given" in out and "item's picture" in out
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert results["all/given"]["garments"] == 2
    assert results["all/given"]["missed"] + results["all/given"]["duplicated"] + results["all/given"]["phantom"] == 0
    assert (tmp_path / "dark.mp4").exists() and not list(tmp_path.glob("*.jpg"))  # no photo copied
