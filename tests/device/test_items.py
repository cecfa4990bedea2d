"""The items the page lists and corrects (device/stockroom/items.py), without a run: today's counts follow a
correction only for an item they counted, a correction to the label it has is no record, and item ids stay
ASCII (they are file names, topics and URLs)."""

import pytest

from device.options import parse
from device.stockroom.items import Items


def placed(item_id, label):
    return {"event": "placed", "id": item_id, "label": label, "confidence": 0.9, "time": "2026-12-05T10:00:00.000Z",
            "top": [[label, 0.9]], "model": "abc"}


def test_a_correction_moves_today_only_for_an_item_counted_today(tmp_path):
    items = Items(None)
    items.add(placed("a", "T-shirt/top"))
    items.reset("pi", "2026-12-05T10:00:01.000Z")  # "a" was placed before the reset
    items.add(placed("b", "Trouser"))
    items.relabel("b", "T-shirt/top", "pi", "t")
    assert items.today()["counts"] == {"T-shirt/top": 1}
    record = items.relabel("a", "Sneaker", "pi", "t")  # not in today's counts: they stay as they are
    assert record["was"] == "T-shirt/top" and record["label"] == "Sneaker"
    assert items.today()["counts"] == {"T-shirt/top": 1}


def test_a_correction_to_the_label_it_has_is_no_record_and_was_keeps_the_models_label(tmp_path):
    items = Items(tmp_path)
    (tmp_path / "Coat").mkdir()
    (tmp_path / "Coat" / "a.jpg").write_bytes(b"jpeg")
    items.add(placed("a", "Coat"))
    assert items.relabel("a", "Coat", "pi", "t") is None
    assert (tmp_path / "Coat" / "a.jpg").is_file() and items.today()["counts"] == {"Coat": 1}
    items.relabel("a", "Shirt", "pi", "t")
    items.relabel("a", "Dress", "pi", "t")  # a correction of a correction
    listed = items.page()[0]
    assert (listed["label"], listed["was"]) == ("Dress", "Coat")
    assert (tmp_path / "Dress" / "a.jpg").is_file() and not (tmp_path / "Coat").exists()
    assert items.today()["counts"] == {"Dress": 1}


@pytest.mark.parametrize("device_id", ["café", "pi 1", "pi/1", "pi+1", "ｐｉ"])
def test_a_device_id_that_is_not_plain_ascii_is_a_usage_error(device_id, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(["--source", "x.mp4", "--events", "--device-id", device_id])
    assert exit_.value.code == 2 and "ASCII letters" in capsys.readouterr().err


def test_a_restart_lists_the_earlier_items_from_the_record_and_today_goes_on(tmp_path):
    """The --output log is the record: a new run lists this device's items from it (correctable again), today's
    counts are today's placed items since the last reset, and nothing else in the log disturbs it."""
    import json
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    yesterday = (now - timedelta(days=1)).isoformat()
    midnight = datetime.combine(now.astimezone().date(), datetime.min.time()).astimezone()
    start = max(now - timedelta(seconds=60), midnight + timedelta(seconds=1))  # today, even just after midnight
    t = lambda k: (start + timedelta(seconds=k)).isoformat()  # noqa: E731
    log = tmp_path / "e.jsonl"
    lines = [{**placed("old", "Coat"), "device": "pi", "time": yesterday},
             {**placed("a", "Shirt"), "device": "pi", "time": t(1)},
             {"event": "removed", "id": "a", "device": "pi", "time": t(2), "dwell_s": 1.0},
             {"event": "reset", "id": "pi-reset-1", "device": "pi", "time": t(3), "counts": {"Shirt": 1}},
             {**placed("b", "Bag"), "device": "pi", "time": t(4)},
             {"event": "relabelled", "id": "b", "device": "pi", "time": t(5), "label": "Sandal", "was": "Bag"},
             {**placed("x", "Dress"), "device": "another", "time": t(6)}]
    log.write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"event": "placed", "id": "half')
    items = Items(tmp_path / "items")
    assert items.replay(log, "pi") == 3
    assert [(i["id"], i["label"], i["earlier"]) for i in items.page()] == \
        [("b", "Sandal", True), ("a", "Shirt", True), ("old", "Coat", True)]
    assert items.page()[1]["dwell_s"] == 1.0 and items.page()[0]["was"] == "Bag"
    today = items.today()
    assert today["counts"] == {"Sandal": 1}  # after the reset; yesterday's coat is listed, not counted
    assert abs(today["since"] - (start + timedelta(seconds=3)).timestamp()) < 0.01  # the reset's time
    assert items.relabel("old", "Shirt", "pi", "t")["was"] == "Coat" and items.today()["counts"] == {"Sandal": 1}
    assert Items(None).replay(tmp_path / "none.jsonl", "pi") == 0  # no record yet: nothing, no error
    log.write_text("".join(json.dumps(e) + "\n" for e in lines[:2]))  # no reset today: from midnight
    items = Items(None)
    assert items.replay(log, "pi") == 2 and items.today()["counts"] == {"Shirt": 1}
    assert datetime.fromtimestamp(items.today()["since"]).time().isoformat() == "00:00:00"


def test_the_same_id_again_replaces_the_first_and_counts_once():
    items = Items(None)
    items.add(placed("a", "Coat"))
    items.add(placed("b", "Bag"))
    items.add(placed("a", "Shirt"))  # a video file run again: its ids come from its clock
    assert [(i["id"], i["label"]) for i in items.page()] == [("a", "Shirt"), ("b", "Bag")]
    assert items.today()["counts"] == {"Shirt": 1, "Bag": 1}


def test_replay_follows_the_log_order_skips_damaged_lines_and_a_reset_from_the_future(tmp_path):
    import json
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    midnight = datetime.combine(now.astimezone().date(), datetime.min.time()).astimezone()
    early = (midnight + timedelta(seconds=1)).isoformat()  # a video file's clock: earlier than the reset
    lines = [{**placed("a", "Coat"), "device": "pi", "time": early},
             {"event": "reset", "id": "r", "device": "pi", "time": now.isoformat(), "counts": {}},
             {**placed("b", "Shirt"), "device": "pi", "time": early},  # after the reset in the log: counted
             {**placed("c", "Jacket"), "device": "pi", "time": early},  # no such label: skipped whole
             {**placed("d", "Coat"), "device": "pi", "time": early, "confidence": "x"},
             {**placed(["e"], "Coat"), "device": "pi", "time": early},
             {"event": "placed", "id": "f", "device": "pi", "time": early, "label": "Coat", "confidence": 0.5},
             {"event": "reset", "id": "r2", "device": "pi", "time": (now + timedelta(days=1)).isoformat()}]
    log = tmp_path / "e.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in lines))
    items = Items(None)
    assert items.replay(log, "pi") == 2
    assert items.today()["counts"] == {"Shirt": 1} and items.today()["since"] <= now.timestamp() + 0.01


def test_a_correction_never_makes_the_tally_grow():
    """An earlier run's item may never have been in this run's tally (no broker then): nothing moves."""
    from collections import Counter
    from types import SimpleNamespace

    from device.stockroom.step import StockroomStep

    items = Items(None)
    items.add(placed("old", "Pullover"))
    items.items["old"]["earlier"] = True
    items.add(placed("new", "Bag"))
    step = SimpleNamespace(items=items, device="pi", tracker=SimpleNamespace(tally=Counter({"Bag": 1})),
                           placed=Counter({"Bag": 1}), corrected=0, publisher=None)
    assert StockroomStep.correct(step, "old", "Coat")["was"] == "Pullover"
    assert step.tracker.tally == Counter({"Bag": 1}) and step.corrected == 0  # not this run's correction
    StockroomStep.correct(step, "new", "Coat")
    assert step.tracker.tally == Counter({"Coat": 1}) == step.placed and step.corrected == 1
