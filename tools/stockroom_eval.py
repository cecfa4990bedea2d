"""Stockroom mode on real garments: `classify-cam --events` against the same photos as stills.

    python -m tools.stockroom_eval [--garments 72] [--tables light-wood,grey,dark,patterned] [--work DIR]

Garments are cut out of the real photos under ../shared/real-photos-dev and ../shared/site-photos (their
folders mapped to classes as fashion-photo-eval and training map them; out-of-catalogue folders left out),
laid on rendered tables and slid in and out (tools/real_stockroom.py): one video per table, the same
garments on each. Each video goes through `classify-cam --events`, with the empty table given as
--background and learnt from the video's first frames. Each `placed` record is matched to the garment
that was on the table at its time: none is a missed garment, a second one a duplicate, one at a time
when no garment was there a phantom. Printed per table and overall: strict and group accuracy of the
garments (a missed garment counts wrong) beside the same photos' as stills (classify-cam's still-photo
path, the same model and threshold), and the counting faults as counts and % of garments.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PHOTO_SETS = (SHARED / "real-photos-dev", SHARED / "site-photos")


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    import models

    from tools.real_stockroom import TABLES

    p = argparse.ArgumentParser(prog="python -m tools.stockroom_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--garments", type=int, default=72, help="garments (photos) per table, the same on each "
                   "(default 72)")
    p.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, of {', '.join(TABLES)} (default all)")
    p.add_argument("--photos", type=Path, nargs="+", default=list(PHOTO_SETS),
                   help="photo folders (folder per kind, or folders of such folders) (default: ../shared's "
                   "real-photos-dev and site-photos)")
    p.add_argument("--backgrounds", default="given,learnt", help="given, learnt or both (default both)")
    p.add_argument("--model", type=Path, default=models.INT8_MODEL, help="model (default: shipped int8)")
    p.add_argument("--size", default="640x480", help="frame size (default 640x480)")
    p.add_argument("--fps", type=int, default=10, help="frames a second (default 10)")
    p.add_argument("--seed", type=int, default=0, help="which garments, where and how (default 0)")
    p.add_argument("--work", type=Path, default=Path("runs/stockroom-eval"),
                   help="videos, event logs and results.json go here (default runs/stockroom-eval)")
    p.add_argument("--reuse", action="store_true", help="reuse videos already rendered in --work")
    p.add_argument("--extra", default="", help="extra classify-cam flags, space-separated (e.g. '--settle 0.7')")
    return p.parse_args(argv)


def catalogue(folders) -> list[tuple[Path, tuple]]:
    """(photo, labels counted right) of every in-catalogue photo under the folders, sorted."""
    from device.sources import images_under
    from tools.photo_eval import folders as kinds_of

    maps = [ROOT / "train" / "photo-maps" / "sites.json"]
    kinds = kinds_of(maps[0])
    out = []
    for top in folders:
        parents = [top] if any((top / k).is_dir() for k in kinds) else sorted(p for p in top.iterdir() if p.is_dir())
        for parent in parents:
            for kind, (labels, _) in sorted(kinds.items()):
                if labels and (parent / kind).is_dir():
                    out += [(p, labels) for p in images_under(parent / kind)]
    return out


def group(label: str) -> str | None:
    from tools.photo_eval import GROUP_OF

    return GROUP_OF.get(label)


def stills(photos, model, threshold) -> dict:
    """photo -> label, as classify-cam gives a still photo (GrabCut)."""
    from device.pipeline import LabelSettings, Labeller
    from device.sources import ImageFiles

    labeller = Labeller(model, LabelSettings(threshold=threshold, top_k=1, segment="auto"), live=False)
    out = {}
    for i, frame in enumerate(ImageFiles(list(photos)).frames()):
        record, _ = labeller(frame, i)
        out[str(frame.source)] = record.get("label")
    return out


def match(events: list[dict], truth: list[dict], t0: float, slack: float = 0.3) -> dict:
    """Each garment's placed records (by their time against its time on the table), and the phantoms."""
    per = [[] for _ in truth]
    phantoms = []
    for e in events:
        if e["event"] != "placed":
            continue
        t = datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() - t0
        hits = [i for i, g in enumerate(truth) if g["start_s"] - slack <= t <= g["end_s"] + slack]
        (per[hits[0]] if hits else phantoms).append(e)
    return {"per": per, "phantoms": phantoms}


def run_video(video: Path, truth, background: Path | None, model: Path, log: Path, extra: list[str]) -> dict:
    log.unlink(missing_ok=True)
    from tools.page_bench import classify_cam  # the one beside this Python, as the other benchmarks run it

    cmd = [classify_cam(), "--source", str(video), "--events", "--quiet", "--output",
           str(log), "--model", str(model), "--device-id", "eval", *extra]
    if background is not None:
        cmd += ["--background", str(background)]
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"classify-cam exit {r.returncode}: {r.stderr.strip()[-500:]}")
    events = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    out = match(events, truth, video.stat().st_mtime)
    out["seconds"] = time.monotonic() - t
    out["warnings"] = sum("warning" in line for line in r.stderr.splitlines())
    return out


def tally(rows: list[dict]) -> dict:
    n = len(rows)
    pc = lambda k: round(100 * sum(r[k] for r in rows) / max(n, 1), 1)
    return {"garments": n, "strict": pc("strict"), "group": pc("group"), "still_strict": pc("still_strict"),
            "still_group": pc("still_group"), "missed": sum(r["missed"] for r in rows),
            "duplicated": sum(r["duplicated"] for r in rows), "phantom": sum(r["phantom"] for r in rows)}


def line(name: str, t: dict) -> str:
    faults = t["missed"] + t["duplicated"] + t["phantom"]
    return (f"{name:<22} {t['garments']:>4} {t['strict']:>7.1f} {t['still_strict']:>7.1f} {t['group']:>7.1f} "
            f"{t['still_group']:>7.1f}   {t['missed']:>3} {t['duplicated']:>3} {t['phantom']:>3} "
            f"{100 * faults / max(t['garments'], 1):>6.1f}%")


def item_cost(chosen, model, size, fps: int, frames: int = 8) -> list[float]:
    """Milliseconds to make one item's picture and scores as the tracker does once per item: the table difference,
    GrabCut in colour on the sharpest of `frames` still frames (full size, RGB), every frame framed and scored."""
    import cv2

    from device.stockroom.picture import item_inputs
    from device.stockroom.scene import Table, small_copy
    from tools import real_stockroom as rs

    out = []
    for k, (photo, _, cut) in enumerate(chosen):
        scene = rs.Scene(rs.TABLES[k % len(rs.TABLES)], size, k, fps)
        g = rs.lay_out(photo, cut, size, np.random.default_rng(k))
        table = Table(small_copy(cv2.cvtColor(scene.frame([]), cv2.COLOR_BGR2RGB)))
        images = [cv2.cvtColor(scene.frame([(g.rgb, g.alpha, g.x, g.y)]), cv2.COLOR_BGR2RGB) for _ in range(frames)]
        t = time.perf_counter()
        mask, _ = table.mask(table.even(small_copy(images[-1])))
        inputs, _ = item_inputs(images, mask)
        np.mean([model.scores(x) for x in inputs], axis=0)
        out.append(1000 * (time.perf_counter() - t))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2

    from device import card
    from device.model import Model
    from tools import real_stockroom as rs

    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    modes = [m.strip() for m in args.backgrounds.split(",") if m.strip()]
    if any(t not in rs.TABLES for t in tables) or any(m not in ("given", "learnt") for m in modes):
        say(f"--tables must be of {', '.join(rs.TABLES)}; --backgrounds of given, learnt")
        return 2
    if not all(p.is_dir() for p in args.photos):
        say(f"photo folder missing: {[str(p) for p in args.photos if not p.is_dir()]}")
        return 2
    size = tuple(int(v) for v in args.size.split("x"))
    args.work.mkdir(parents=True, exist_ok=True)
    model = Model(args.model, args.model.parent / "labels.txt")
    threshold = card.unknown_threshold(args.model)
    rng = np.random.default_rng(args.seed)
    pool = catalogue(args.photos)
    order = rng.permutation(len(pool))
    say(f"{len(pool)} in-catalogue photos; cutting out garments for {args.garments}")
    chosen = []  # (photo, labels, cut)
    for i in order:
        if len(chosen) == args.garments:
            break
        photo, labels = pool[i]
        cut = rs.cut_out(rs.read_photo(photo))
        if cut is not None:
            chosen.append((photo, labels, cut))
    say(f"{len(chosen)} garments; the same photos as stills ...")
    key = lambda path: str(Path(path).resolve())  # noqa: E731 (a truth file may name the photos by another path)
    still = {key(p): label for p, label in stills([c[0] for c in chosen], model, threshold).items()}
    labels_of = {key(c[0]): c[1] for c in chosen}
    rows, results = [], {}
    for k, table in enumerate(tables):
        video = args.work / f"{table}.mp4"
        truth_file = args.work / f"{table}.truth.json"
        if args.reuse and video.exists() and truth_file.exists():
            truth = json.loads(truth_file.read_text())
        else:
            t = time.monotonic()
            tr = np.random.default_rng(args.seed * 100 + k)
            garments = [rs.lay_out(p, cut, size, tr, hand=i % 3 == 1, slow=i % 6 == 5)
                        for i, j in enumerate(tr.permutation(len(chosen))) for p, _, cut in [chosen[j]]]
            truth = rs.render(video, table, garments, size, args.fps, seed=args.seed + k)
            truth_file.write_text(json.dumps(truth))
            say(f"[{table}] rendered {video} ({len(truth)} garments, {time.monotonic() - t:.0f} s)")
        empty = args.work / f"{table}.empty.png"
        cv2.imwrite(str(empty), rs.Scene(table, size, args.seed + k, args.fps).frame([]))
        for mode in modes:
            out = run_video(video, truth, empty if mode == "given" else None, args.model,
                            args.work / f"{table}.{mode}.jsonl", args.extra.split())
            mine = []
            for g, placed in zip(truth, out["per"]):
                right, label = labels_of[key(g["photo"])], placed[0]["label"] if placed else None
                s = still[key(g["photo"])]
                mine.append({"table": table, "mode": mode, "photo": g["photo"], "label": label, "still": s,
                             "strict": label in right, "group": label is not None and group(label) == group(right[0]),
                             "still_strict": s in right, "still_group": s is not None and group(s) == group(right[0]),
                             "missed": not placed, "duplicated": max(len(placed) - 1, 0), "phantom": 0,
                             "hand": g["hand"], "slow_out": g["slow_out"]})
            if mine:
                mine[0]["phantom"] = len(out["phantoms"])
            rows += mine
            results[f"{table}/{mode}"] = tally(mine)
            say(f"[{table}, {mode} background] {out['seconds']:.0f} s, {out['warnings']} warnings: "
                f"{line('', results[f'{table}/{mode}']).strip()}")
    head = (f"{'table / background':<22} {'n':>4} {'strict':>7} {'still':>7} {'group':>7} {'still':>7}   "
            f"{'mis':>3} {'dup':>3} {'pha':>3} {'faults':>7}")
    print(head)
    for key, t in results.items():
        print(line(key, t))
    for mode in modes:
        results[f"all/{mode}"] = tally([r for r in rows if r["mode"] == mode])
        print(line(f"all/{mode}", results[f"all/{mode}"]))
    cost = item_cost(chosen, model, size, args.fps)
    print(f"item's picture and scores (8 still frames, {args.size}, one thread): mean {np.mean(cost):.1f} ms, "
          f"max {np.max(cost):.1f} ms over {len(cost)} items")
    results["item_ms"] = {"mean": round(float(np.mean(cost)), 1), "max": round(float(np.max(cost)), 1)}
    (args.work / "results.json").write_text(json.dumps({"results": results, "rows": rows}, indent=1))
    say(f"rows in {args.work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
