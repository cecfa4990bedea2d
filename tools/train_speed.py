"""Benchmark: training speed, milliseconds a step, by where fit() gets its batches from.

    python -m tools.train_speed [--model edge-wide] [--steps 30] [--sources arrays,epochs,pydataset]

Times fit() on the same mixed batches (real-photo flaws, non-garments and real photos, as
`fashion-train --photos` makes them; random pictures stand in for the segmented photos) fed three ways:
- arrays: the batches made beforehand, as plain arrays: what the network's arithmetic alone costs;
- epochs: an epoch's batches fitted as plain arrays while the next epoch's are made in a thread
  (train/pipeline.fit, what fashion-train does);
- pydataset: the same batches from a keras.utils.PyDataset, one batch per step (what it did before).
Also prints how long making one batch takes. The goal: epochs within 10% of arrays. An epoch of
Fashion-MNIST is 430 steps of 128, so 30 epochs of the shipped model's recipe at N ms a step take
about 30 * 430 * N / 60000 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.train_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="edge-wide", help="network to train (default edge-wide, the shipped one)")
    p.add_argument("--steps", type=int, default=30, help="steps timed per source, after --warmup (default 30)")
    p.add_argument("--warmup", type=int, default=10, help="steps not timed: tracing and first allocations (default 10)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128, fashion-train's)")
    p.add_argument("--photo-share", type=float, default=0.12, help="share of real photos per batch (default 0.12)")
    p.add_argument("--sources", default="arrays,epochs,pydataset",
                   help="comma-separated, from arrays, epochs, pydataset (default all three)")
    return p.parse_args(argv)


def trainer(model_name: str):
    """A fresh network wrapped in fashion-train's augmentation, compiled as fashion-train compiles it."""
    import keras

    from train.config import TrainConfig
    from train.models import build
    from train.pipeline import augmenter, compile_model

    keras.utils.set_random_seed(0)
    cfg = TrainConfig(model=model_name, photos=["(stand-in)"])
    model = keras.Sequential([augmenter(cfg), build(model_name)])
    compile_model(model, cfg, steps_per_epoch=100)
    return model


def step_timer(first: int, steps: int):
    """A callback that records the seconds between the start of step `first` and the end of step first+steps-1."""
    import keras

    class Timer(keras.callbacks.Callback):
        seconds = None

        def on_train_batch_begin(self, batch, logs=None):
            if batch == first:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch == first + steps - 1:
                self.seconds = time.perf_counter() - self.t0

    return Timer()


def mixed_batches(n_images: int, args):
    import numpy as np

    from train import batches
    from train import data as data_mod

    data = data_mod.load("fashion")
    rng = np.random.default_rng(0)
    n = 2760  # as many as the public collection's training photos, held-out ones aside
    pictures = rng.integers(0, 256, (n, 4, 28, 28), dtype=np.uint8)
    targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return batches.make_batches(data.train.images[:n_images], data.train.labels[:n_images], args.batch_size, 0.1, 0.12,
                                42, photos=(pictures, targets, np.full(n, 1 / n)), photo_share=args.photo_share)


def time_source(source: str, made, args) -> float:
    """ms a step for one way of feeding the same batches."""
    import keras

    model = trainer(args.model)
    timer = step_timer(args.warmup, args.steps)
    if source == "pydataset":
        class Feed(keras.utils.PyDataset):
            def __len__(self):
                return len(made)

            def __getitem__(self, index):
                return made[index]

        model.fit(Feed(), epochs=1, verbose=0, callbacks=[timer])
        return 1000 * timer.seconds / args.steps
    # arrays, or epochs: the same, with the next epoch's batches made in a thread meanwhile (train/pipeline.fit)
    from concurrent.futures import ThreadPoolExecutor

    x, y = made.epoch_arrays(0)
    with ThreadPoolExecutor(1) as ahead:
        coming = ahead.submit(made.epoch_arrays, 1) if source == "epochs" else None
        model.fit(x, y, batch_size=args.batch_size, shuffle=False, epochs=1, verbose=0, callbacks=[timer])
        if coming:
            coming.result()
    return 1000 * timer.seconds / args.steps


def main(argv=None) -> int:
    args = parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = set(sources) - {"arrays", "epochs", "pydataset"}
    if unknown or not sources:
        print(f"train_speed: unknown --sources {sorted(unknown) or args.sources!r}; choose from arrays, epochs, "
              "pydataset", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    made = mixed_batches((args.warmup + args.steps) * args.batch_size, args)
    t0 = time.perf_counter()
    for i in range(len(made)):
        made[i]
    print(f"making one batch of {args.batch_size}: {1000 * (time.perf_counter() - t0) / len(made):.0f} ms "
          f"({args.photo_share:.0%} photos, 12% non-garments, 10% flaws)", flush=True)
    for source in sources:
        print(f"{source:<10} {time_source(source, made, args):6.0f} ms a step  ({args.model}, "
              f"batch {args.batch_size}, {os.cpu_count()} cores)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
