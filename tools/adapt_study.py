"""How fashion-adapt's recipe was chosen: each recipe on each site, measured two ways (docs/adaptation.md).

    .venv/bin/python -m tools.adapt_study [--sites a,b,c] [--layers head] [--grid quick]

For each site of ../shared/site-photos and each recipe:
- cv: k-fold cross-validation over all the site's photos (what fashion-adapt decides on): right before/after;
- split: learn from the first 75% of the site's photos by file name, measure on the rest (a later hand-out);
- fm: the float top trained on the learn split, on Fashion-MNIST's 10,000 test images (mirror-averaged as
  the shipped int8 file is), against the base's (int8 is within a few hundredths of this; the tool gates it).
Features are computed once per site and recipe family, so a row costs seconds to a minute.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT.parent / "shared" / "site-photos"
MAP = ROOT / "train" / "photo-maps" / "sites.json"

GRIDS = {
    "head": [dict(layers="head", epochs=e, learning_rate=lr, photo_weight=w)
             for e, lr, w in itertools.product([10, 30], [1e-3, 3e-3], [0.3, 0.7])],
    "head-default": [dict(layers="head", epochs=30, learning_rate=1e-3, photo_weight=0.5)],
    "block3": [dict(layers="block3", epochs=e, learning_rate=lr, photo_weight=w, replay=2000)
               for e, lr, w in [(5, 3e-4, 0.5), (5, 1e-3, 0.5), (10, 1e-3, 0.7)]],
    "all": [dict(layers="all", epochs=3, learning_rate=3e-4, photo_weight=0.5, replay=2000)],
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", default="a,b,c")
    p.add_argument("--grid", default="head", help=f"comma-separated: {', '.join(GRIDS)}")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "adapt-study.jsonl")
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    from convert.quantize import load_keras
    from device.preprocess import prepare
    from train import adapt, data as data_mod, photos as photos_mod

    tf.config.experimental.enable_op_determinism()
    data = data_mod.load("fashion")
    base = adapt.load_base(None)
    base_model = load_keras(base.float_path)
    test_x = data.test.images
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for family in args.grid.split(","):
        for settings in GRIDS[family]:
            recipe = adapt.Recipe(**settings)
            learner = adapt.Learner(base_model, recipe)
            replay = learner.replay_features(adapt.replay_set(data, recipe))
            tf_feats = learner.features(test_x)
            tf_mirror = learner.features(test_x[:, :, ::-1])
            for s in args.sites.split(","):
                t0 = time.time()
                folder = SITES / f"site-{s}"
                found = adapt.scan_site([folder], str(MAP))
                photos = [ph for ph, _ in found]
                pictures, ok = photos_mod.prepared(photos, recipe.variants, ROOT / "build" / "photo-cache",
                                                   log=lambda *a, **k: None)
                photos, pictures = [ph for ph, o in zip(photos, ok) if o], pictures[ok]
                site = adapt.Site(learner, photos, pictures, replay)
                before = adapt.base_scores(learner, site, base.mirror)
                after, _ = adapt.cross_validate(learner, site, recipe, base.mirror)
                cv = adapt.compare(photos, before, after, base.threshold, recipe)
                order = sorted(range(len(photos)), key=lambda i: photos[i].path.name)
                learn = np.zeros(len(photos), bool)
                learn[order[: int(round(0.75 * len(photos)))]] = True
                learner.fit(*site.train_arrays(learn, recipe.photo_weight))
                later = learner.scores(site.feats[~learn, 0], site.mirror_feats[~learn, 0] if base.mirror else None)
                rest = [ph for ph, m in zip(photos, ~learn) if m]
                split = adapt.compare(rest, before[~learn], later, base.threshold, recipe)
                fm = float(np.mean(learner.scores(tf_feats, tf_mirror if base.mirror else None).argmax(1)
                                   == data.test.labels))
                learner.top.set_weights(learner.start)
                fm0 = float(np.mean(learner.scores(tf_feats, tf_mirror if base.mirror else None).argmax(1)
                                    == data.test.labels))
                row = {"site": s, **settings, "photos": len(photos),
                       "cv": [cv["right_before"], cv["right_after"], cv["fixed"], cv["broken"]],
                       "split": [int((~learn).sum()), split["right_before"], split["right_after"]],
                       "fm_base": round(fm0, 4), "fm": round(fm, 4), "seconds": round(time.time() - t0, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
            keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
