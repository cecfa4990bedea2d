"""Writing model_card.json: how a model was made, and the sha256 of each file it vouches for.

Only what makes the files (training, conversion, make model) writes a card; the device reads it
(device/card.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from device.card import read, sha256


def update(path: Path, resign: bool = True, **sections: dict) -> dict:
    """Replace the named sections of the card, write it atomically, and with resign refresh the file hashes.

    Only what made the files (training, conversion) resigns: checking a file never vouches for it.
    """
    path = Path(path)
    card = read(path)
    card.update(sections)
    if resign or "files" not in card:
        card["files"] = files(path.parent)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dumps(card) + "\n")
    os.replace(tmp, path)
    return card


def dumps(value, indent: int = 0, width: int = 110) -> str:
    """JSON as a person reads it: nested with two spaces, but any list or object short enough on one line."""
    flat = json.dumps(value)
    if not isinstance(value, (dict, list)) or len(flat) + indent <= width:
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, list):
        return "[\n" + ",\n".join(inner + dumps(v, indent + 2, width) for v in value) + "\n" + pad + "]"
    return "{\n" + ",\n".join(f"{inner}{json.dumps(k)}: {dumps(v, indent + 2, width)}" for k, v in value.items()) \
        + "\n" + pad + "}"


def files(folder: Path) -> dict:
    """sha256 and size of each shipped file in the folder (models, labels)."""
    return {
        f.name: {"sha256": sha256(f), "bytes": f.stat().st_size}
        for f in sorted(Path(folder).iterdir())
        if f.is_file() and f.suffix in {".keras", ".tflite", ".txt"}
    }
