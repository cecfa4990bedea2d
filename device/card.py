"""models/model_card.json: how the shipped model was made, and the sha256 of each shipped file."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read(path: Path) -> dict:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def update(path: Path, **sections: dict) -> dict:
    """Replace the named sections of the card, refresh the file hashes, and write it atomically."""
    path = Path(path)
    card = read(path)
    card.update(sections)
    card["files"] = {
        f.name: {"sha256": sha256(f), "bytes": f.stat().st_size}
        for f in sorted(path.parent.iterdir())
        if f.is_file() and f.suffix in {".keras", ".tflite", ".txt"}
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, path)
    return card


def expected_sha256(model_path: Path) -> str | None:
    """The sha256 the card beside the model lists for it, or None when there is no such entry."""
    model_path = Path(model_path)
    entry = read(model_path.parent / "model_card.json").get("files", {}).get(model_path.name)
    return entry.get("sha256") if entry else None


def unknown_threshold(model_path: Path, fallback: float = 0.5) -> float:
    """The "unknown" threshold calibrated for this model (the card's `unknown` section), else `fallback`."""
    entry = read(Path(model_path).parent / "model_card.json").get("unknown", {})
    return float(entry.get("threshold", fallback))


def reference_outputs(model_path: Path) -> list | None:
    """The fingerprint (device/classify.py) the build machine recorded for this model, or None."""
    entry = read(Path(model_path).parent / "model_card.json").get("reference_outputs", {})
    return entry.get("raw")
