"""tools/train_speed: the training-speed benchmark runs each source and refuses an unknown one."""

import pytest

from tools import train_speed


def test_each_source_prints_ms_a_step(capsys, fmnist):
    pytest.importorskip("tensorflow", reason="needs the train extra")
    assert train_speed.main(["--model", "dense", "--warmup", "1", "--steps", "2", "--batch-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "making one batch of 32" in out
    for source in ("arrays", "epochs", "pydataset"):
        assert any(line.startswith(source) and "ms a step" in line for line in out.splitlines()), out


def test_unknown_source_is_exit_2(capsys):
    assert train_speed.main(["--sources", "arrays,disk"]) == 2
    assert "unknown --sources ['disk']" in capsys.readouterr().err
