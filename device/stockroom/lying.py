"""What lies on the table: the items placed and not yet removed, and how a settled scene is judged against them.

An item keeps the (evened) small picture of the scene when it was placed and its own outline on it. When
the scene settles again after a change:
- `changed`: does the scene differ from the item's picture over its outline and what differs now?
- `lies`: is the item still there (its own outline looks as it did)? A garment laid beside another leaves
  the first where it was: the first is not removed, the second is placed from what is new.
- `moved`: is what lies there now the item, moved (straightened, nudged: its outline shifted onto the new
  one covers it, and its colours are the same)? Then it is no new item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


SAME_OVERLAP = 0.7  # the item's outline shifted onto what lies there now covers this share of both: moved, not new


@dataclass
class Item:
    number: int
    id: str
    placed_t: float
    label: str
    look: np.ndarray  # the small picture when it was placed (evened)
    mask: np.ndarray  # where it differed from the empty table


def unclipped(raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per channel: does it hold the garment's colour (not clipped white by the exposure) in this frame?"""
    return (raw[mask] < 250).mean(axis=0) > 0.8


def changed(item: Item, table, evened: np.ndarray, mask: np.ndarray, share: float) -> bool:
    outline = mask | item.mask
    return bool(outline.any()) and float(table.changed_map(evened, item.look)[outline].mean()) > share


def lies(item: Item, table, evened: np.ndarray, share: float) -> bool:
    return float(table.changed_map(evened, item.look)[item.mask].mean()) <= share


def moved(item: Item, evened: np.ndarray, mask: np.ndarray, raw: np.ndarray, threshold: float) -> bool:
    was, look = item.mask, item.look
    if not mask.any() or not was.any():
        return False
    (y0, x0), (y1, x1) = np.argwhere(was).mean(axis=0), np.argwhere(mask).mean(axis=0)
    shifted = np.roll(was, (round(y1 - y0), round(x1 - x0)), axis=(0, 1))
    overlap = (shifted & mask).sum() / max(1, (shifted | mask).sum())
    kept = unclipped(raw, mask)  # a channel the exposure clipped says nothing
    a, b = np.median(evened[mask], axis=0)[kept], np.median(look[was], axis=0)[kept]
    colours = float(np.sqrt(((a - b) ** 2).sum() * 3 / max(1, kept.sum())))
    return overlap > SAME_OVERLAP and colours < 2 * threshold
