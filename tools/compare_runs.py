"""Compare two classify-cam --raw JSON-lines runs frame by frame: labels and raw output integers.

Usage: python compare_runs.py HOST.jsonl OTHER.jsonl [--tolerance STEPS]
Prints one line. Exits 1 when a label differs, or a raw integer differs by more than STEPS (default 0:
bit for bit).
"""

import argparse
import json
import sys
from pathlib import Path


def load(path):
    return {Path(r["source"]).name: r for r in map(json.loads, Path(path).read_text().splitlines())}


def steps(a: dict, b: dict) -> int:
    """Largest difference between two frames' raw integers (0 when identical)."""
    ra, rb = a.get("raw") or [], b.get("raw") or []
    if len(ra) != len(rb):
        return sys.maxsize
    return max((abs(x - y) for x, y in zip(ra, rb)), default=0)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("here", type=Path, help="the host's JSON lines")
    p.add_argument("there", type=Path, help="the other machine's JSON lines")
    p.add_argument("--tolerance", type=int, default=0,
                   help="largest raw difference accepted, in output steps (default 0: bit for bit); "
                   "labels must always match")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    a, b = load(args.here), load(args.there)
    if not a or set(a) != set(b):
        print(f"different frames: {len(a)} here, {len(b)} there")
        return 1
    labels = [k for k in sorted(a) if a[k].get("label") != b[k].get("label")]
    diff = {k: steps(a[k], b[k]) for k in sorted(a)}
    diff = {k: d for k, d in diff.items() if d or k in labels}
    if not diff:
        print(f"{len(a)} frames, labels and raw int8 scores identical")
        return 0
    k = labels[0] if labels else max(diff, key=diff.get)
    worst = max(diff.values())
    print(f"{len(diff)} of {len(a)} frames differ, by at most {worst} step(s), {len(labels)} label(s) changed "
          f"(e.g. {k}: {a[k].get('label')} {a[k].get('raw')} vs {b[k].get('label')} {b[k].get('raw')})")
    return 1 if labels or worst > args.tolerance else 0


if __name__ == "__main__":
    sys.exit(main())
