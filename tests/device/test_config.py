"""The --config file: what the page saved is read at start, the command line wins, and a damaged value is refused."""

import json

import pytest

from device.job import UsageError, with_config
from device.options import parse


def opts_with(tmp_path, values: dict, *flags):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps(values))
    return with_config(parse(["--source", "0", "--events", "--config", str(config), *flags]))


def test_threshold_and_settle_saved_on_the_page_are_used_at_start(tmp_path):
    opts, used = opts_with(tmp_path, {"threshold": 0.7, "settle": 1.5, "roi": [1, 2, 30, 40]})
    assert (opts.threshold, opts.settle, opts.roi) == (0.7, 1.5, (1, 2, 30, 40))
    assert set(used) == {"threshold", "settle", "roi"}


def test_the_command_line_wins(tmp_path):
    opts, used = opts_with(tmp_path, {"threshold": 0.7, "settle": 1.5}, "--threshold", "0.2", "--settle", "3")
    assert (opts.threshold, opts.settle, used) == (0.2, 3.0, ())


def test_without_either_the_defaults_stay(tmp_path):
    opts, _ = opts_with(tmp_path, {})
    assert (opts.threshold, opts.settle) == (None, 0.5)  # None: the model card's calibrated threshold
    assert with_config(parse(["--source", "0", "--events"]))[0].settle == 0.5


@pytest.mark.parametrize("values", [{"threshold": 1.5}, {"threshold": "0.3"}, {"settle": -1}, {"settle": True},
                                    {"threshold": float("nan")}])
def test_a_value_out_of_range_is_a_usage_error_naming_it(tmp_path, values):
    with pytest.raises(UsageError, match=next(iter(values))):
        opts_with(tmp_path, values)
