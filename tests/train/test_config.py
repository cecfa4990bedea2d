import pytest

from train.cli import config_from_args, parse_args
from train.config import TrainConfig


def test_round_trip(tmp_path):
    cfg = TrainConfig(epochs=3, model="dense", shift=0.1, augment=False)
    cfg.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == cfg


def test_unknown_key_is_refused(tmp_path):
    (tmp_path / "c.json").write_text('{"epochs": 2, "epoch": 3}')
    with pytest.raises(ValueError, match="epoch"):
        TrainConfig.load(tmp_path / "c.json")


def test_flags_override_defaults_and_saved_config(tmp_path):
    TrainConfig(epochs=7, batch_size=64).save(tmp_path / "c.json")
    cfg = config_from_args(parse_args(["--config", str(tmp_path / "c.json"), "--epochs", "2", "--no-flip"]))
    assert (cfg.epochs, cfg.batch_size, cfg.flip) == (2, 64, False)
    assert config_from_args(parse_args([])) == TrainConfig()
