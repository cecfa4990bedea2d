"""Reading models/model_card.json: the sha256 of each shipped file, the calibrated threshold, the fingerprint.

The device only reads cards; train/card.py writes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class CardError(ValueError):
    """The model card is there but cannot be used (damaged, not JSON, wrong types): a set-up error."""


def read(path: Path) -> dict:
    """The card as a dict; {} where there is none; CardError for one that is damaged."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CardError(f"model card {path} is damaged ({exc}): restore it from the repository") from None
    if not isinstance(card, dict) or not isinstance(card.get("files", {}), dict):
        raise CardError(f"model card {path} is damaged (not a JSON object with a 'files' table)")
    return card


def expected_sha256(model_path: Path) -> str | None:
    """The sha256 the card beside the model lists for it, or None when there is no such entry."""
    model_path = Path(model_path)
    entry = read(model_path.parent / "model_card.json").get("files", {}).get(model_path.name)
    if entry is not None and not (isinstance(entry, dict) and isinstance(entry.get("sha256", ""), str)):
        raise CardError(f"model card beside {model_path} is damaged (its entry for {model_path.name})")
    return entry.get("sha256") if entry else None


def unknown_threshold(model_path: Path, fallback: float = 0.5) -> float:
    """The "unknown" threshold calibrated for this model (the card's `unknown` section), else `fallback`."""
    entry = read(Path(model_path).parent / "model_card.json").get("unknown", {})
    value = entry.get("threshold", fallback) if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise CardError(f"model card beside {model_path}: the unknown threshold {value!r} is not a number from 0 to 1")
    return float(value)


def reference_outputs(model_path: Path) -> list | None:
    """The fingerprint (device/classify.py) the build machine recorded for this model, or None."""
    entry = read(Path(model_path).parent / "model_card.json").get("reference_outputs", {})
    raw = entry.get("raw") if isinstance(entry, dict) else None
    return raw if isinstance(raw, list) else None
