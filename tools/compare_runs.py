"""Compare two classify-cam --raw JSON-lines runs frame by frame: labels and raw output integers.

Usage: python compare_runs.py HOST.jsonl OTHER.jsonl ; prints one line, exits 1 on any difference.
"""

import json
import sys
from pathlib import Path


def load(path):
    return {Path(r["source"]).name: r for r in map(json.loads, Path(path).read_text().splitlines())}


def main(argv) -> int:
    a, b = load(argv[0]), load(argv[1])
    if not a or set(a) != set(b):
        print(f"different frames: {len(a)} here, {len(b)} there")
        return 1
    diff = [k for k in sorted(a) if a[k].get("label") != b[k].get("label") or a[k].get("raw") != b[k].get("raw")]
    if diff:
        k = diff[0]
        print(f"{len(diff)} of {len(a)} frames differ (first {k}: {a[k].get('label')} {a[k].get('raw')} vs "
              f"{b[k].get('label')} {b[k].get('raw')})")
        return 1
    print(f"{len(a)} frames, labels and raw int8 scores identical")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
