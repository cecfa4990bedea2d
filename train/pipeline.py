"""The training recipe, top to bottom: seeds, data, model, fit, evaluate, report."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from device import card
from device.preprocess import prepare
from device.spec import CLASS_NAMES
from train import data as data_mod
from train import batches, reports
from train.config import TrainConfig


def split_validation(images, labels, val_size: int, seed: int):
    """Class-balanced hold-out: val_size // 10 images of each class, chosen by seed."""
    rng = np.random.default_rng(seed)
    per_class = val_size // len(CLASS_NAMES)
    val_idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class]
                              for c in range(len(CLASS_NAMES))])
    mask = np.zeros(len(labels), bool)
    mask[val_idx] = True
    return (images[~mask], labels[~mask]), (images[mask], labels[mask])


def strategy():
    """The default strategy on a CPU or one GPU; MirroredStrategy when several GPUs are visible.

    Moving to several machines is then a matter of setting TF_CONFIG and choosing
    MultiWorkerMirroredStrategy here, not of rewriting the recipe.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def augmenter(cfg: TrainConfig):
    """Random flips, shifts, rotations and zoom; active only while training."""
    import keras
    from keras import layers

    steps = []
    if cfg.flip:
        steps.append(layers.RandomFlip("horizontal", seed=cfg.seed))
    if cfg.shift:
        steps.append(layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="constant", seed=cfg.seed + 1))
    if cfg.rotate:
        steps.append(layers.RandomRotation(cfg.rotate, fill_mode="constant", seed=cfg.seed + 2))
    if cfg.zoom:
        steps.append(layers.RandomZoom(cfg.zoom, fill_mode="constant", seed=cfg.seed + 3))
    return keras.Sequential(steps, name="augment")


def cpu_has_bf16() -> bool:
    """True where oneDNN can run bfloat16 natively (Intel AMX or AVX512-BF16); elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def resolve_precision(cfg: TrainConfig) -> str:
    import tensorflow as tf

    if cfg.precision != "auto":
        return cfg.precision
    # Measured here (2 cores with AMX): an epoch of the edge CNN takes about 41 s in mixed
    # bfloat16 against 55 s or more in float32.
    return "mixed_bfloat16" if cpu_has_bf16() and not tf.config.list_physical_devices("GPU") else "float32"


def float32_copy(model, name: str):
    """The same weights in an all-float32 model: what is saved, evaluated and converted."""
    import keras

    from train.models import build

    keras.mixed_precision.set_global_policy("float32")
    copy = build(name)
    copy.set_weights(model.get_weights())
    return copy


def set_crossentropy(label_smoothing: float):
    """Cross-entropy that also takes a set of right classes (a photo folder such as "shoes").

    A target row that sums to 1 (one-hot, or equal scores for a non-garment) gets the usual
    label-smoothed cross-entropy. A row with several ones (y: (batch, 10)) means "one of these":
    its loss is -log of the total score on the set, so the network may put the weight on
    whichever of them it finds best (its own guess of which shoe it is), smoothed the same way.
    """
    import keras
    from keras import ops

    def loss(y_true, y_pred):
        k = ops.cast(ops.shape(y_true)[-1], y_pred.dtype)
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, keras.config.epsilon(), 1.0)
        mean_log = ops.mean(ops.log(p), axis=-1)
        ce = -ops.sum((y_true * (1 - label_smoothing) + label_smoothing / k) * ops.log(p), axis=-1)
        on_set = ops.sum(ops.where(y_true > 0.5, p, 0.0), axis=-1)
        set_loss = -(1 - label_smoothing) * ops.log(ops.clip(on_set, keras.config.epsilon(), 1.0)) \
            - label_smoothing * mean_log
        return ops.where(ops.sum(y_true, axis=-1) > 1.5, set_loss, ce)

    return loss


def compile_model(model, cfg: TrainConfig, steps_per_epoch: int):
    import keras

    total = max(cfg.epochs * steps_per_epoch, 1)
    warmup = min(cfg.warmup_epochs * steps_per_epoch, total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=total - warmup, alpha=0.01,
        warmup_target=cfg.learning_rate, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
                  # Without photos the same loss as ever, so the same command still gives the same weights.
                  loss=set_crossentropy(cfg.label_smoothing) if cfg.photos else
                  keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                  metrics=["accuracy"])


def run(cfg: TrainConfig, run_dir: Path | None = None, verbose: int | str = "auto") -> dict:
    """Train one model per cfg, write its run folder, and return the metrics dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from train import models as models_mod
    from train import photos as photos_mod
    from train.models import build

    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()  # same command, same weights

    # Data: uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the device's own scaling.
    data = data_mod.load(cfg.dataset)
    images, labels = data.train.images, data.train.labels
    if cfg.limit:
        images, labels = images[: cfg.limit], labels[: cfg.limit]
    (x_tr, y_tr), (x_val, y_val) = split_validation(images, labels, min(cfg.val_size, len(labels) // 5), cfg.seed)
    test_images, y_test = data.test.images, data.test.labels
    if cfg.test_limit:
        test_images, y_test = test_images[: cfg.test_limit], y_test[: cfg.test_limit]
    x_val, x_test = prepare(x_val), prepare(test_images)

    run_dir = Path(run_dir or Path(cfg.out_dir) / f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.model}")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.json")
    print(f"run folder: {run_dir}\ndata: {data.source}  train {len(x_tr)}  val {len(x_val)}  test {len(x_test)}",
          flush=True)

    # Real photos (optional): segmented once by the device's still-photo path, a share held out.
    photo_set = photos_mod.load(cfg)
    # Model: the shipped network is `model`; augmentation wraps it only for training.
    train_data = training_data(cfg, x_tr, y_tr, photo_set.training if photo_set else None)
    steps = int(np.ceil(len(y_tr) / cfg.batch_size))
    precision = resolve_precision(cfg)
    keras.mixed_precision.set_global_policy(precision)  # variables stay float32 either way
    print(f"precision: {precision}", flush=True)
    with strategy().scope():
        model = build(cfg.model)
        if cfg.init:  # fine-tuning: the same network, started from a trained model's weights
            start_from(model, cfg)
        trainer = keras.Sequential([augmenter(cfg), model]) if cfg.augment else model
        compile_model(trainer, cfg, steps)
    model.summary(print_fn=lambda s, **_: print(s))

    t0 = time.time()
    one_hot = keras.utils.to_categorical(y_val, len(CLASS_NAMES))  # label smoothing needs one-hot targets
    history = fit(trainer, train_data, (x_val, one_hot), cfg, verbose)
    train_seconds = time.time() - t0
    model = float32_copy(model, cfg.model)

    # Evaluate on the untouched test set and write the reports.
    scores = model.predict(x_test, batch_size=512, verbose=0)
    y_pred = scores.argmax(1)
    metrics = evaluate_and_report(run_dir, test_images, y_test, y_pred, title=f"{cfg.model} on {cfg.dataset} test")
    metrics.update(model=cfg.model, params=int(model.count_params()), epochs_run=len(history.history["loss"]),
                   train_seconds=round(train_seconds, 1), data_source=data.source, data_sha256=data.sha256,
                   val_accuracy=float(max(history.history["val_accuracy"])), run_dir=str(run_dir),
                   precision=precision, init_sha256=card.sha256(Path(cfg.init)) if cfg.init else None)
    if photo_set:
        metrics["photos"] = photo_set.report(model, run_dir)
    reports.write_json(metrics, run_dir / "metrics.json")
    reports.write_json(history.history, run_dir / "history.json")
    reports.plot_curves(history.history, run_dir / "curves.png")
    first_conv = next((layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)), None)
    if first_conv is not None:
        reports.plot_filters(np.asarray(first_conv.kernel), run_dir / "filters.png")
    models_mod.save(model, run_dir / "model.keras")
    print(f"test accuracy {metrics['accuracy']:.4f}  ({metrics['params']} parameters, "
          f"{train_seconds / 60:.1f} min, {metrics['epochs_run']} epochs)", flush=True)
    if photo_set:
        print(photo_line(metrics["photos"]), flush=True)
    print(f"wrote {run_dir}", flush=True)
    return metrics


def photo_line(photos: dict) -> str:
    """The real-photo figures beside Fashion-MNIST's: strict accuracy on the photos the run held out."""
    scores = photos.get("held_out_scores")
    if not scores or scores.get("strict") is None:
        return f"real photos: {photos['trained_on']} trained on, none held out to measure on (--photo-holdout)"
    return (f"real photos: strict accuracy {100 * scores['strict']:.1f}% on the {photos['held_out']} held out "
            f"(top class, no threshold; {photos['trained_on']} trained on)")


class InitMismatch(ValueError):
    """--init names a model whose weights do not fit --model."""


def start_from(model, cfg: TrainConfig) -> None:
    """Load cfg.init's weights into model: the same network, or an edge model widened into edge-wide."""
    import keras

    from train.models import widen

    try:
        start = keras.models.load_model(cfg.init, compile=False)
    except Exception as exc:  # a damaged or foreign file: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise InitMismatch(f"--init {cfg.init}: cannot load it as a Keras model ({type(exc).__name__}: {first})") from None
    try:
        if cfg.model == "edge-wide" and start.count_params() < model.count_params():
            widen(start, model)  # an edge model: nearly the same scores in the wider network
        else:
            model.set_weights(start.get_weights())
    except ValueError:
        raise InitMismatch(init_mismatch(cfg, start, model)) from None


def init_mismatch(cfg: TrainConfig, start, model) -> str:
    """One line for an --init model of another width or shape: what it is, what --model wants, and what to give."""
    from train.models import BUILDERS

    def shape(m) -> str:
        inputs = "x".join(str(d) for d in m.input_shape[1:])
        convs = [layer.filters for layer in m.layers if hasattr(layer, "filters")]
        return f"input {inputs}" + (f", conv widths {'/'.join(map(str, convs))}" if convs else "")

    fits = [name for name, build in BUILDERS.items() if build().count_params() == start.count_params()]
    hint = f"; it is the size of --model {fits[0]}: give that" if fits else ""
    return (f"--init {cfg.init} does not fit --model {cfg.model}: it has {start.count_params():,} parameters "
            f"({shape(start)}), --model {cfg.model} has {model.count_params():,} ({shape(model)}){hint}")


def check_init(cfg: TrainConfig) -> None:
    """InitMismatch before any data is loaded when cfg.init cannot start cfg.model (fashion-train checks first)."""
    import keras

    from train.models import build

    keras.mixed_precision.set_global_policy("float32")
    try:
        start_from(build(cfg.model), cfg)
    finally:
        keras.backend.clear_session()  # the run builds its own model, from its own seeds


def training_data(cfg: TrainConfig, images: np.ndarray, labels: np.ndarray, photos=None) -> dict:
    """fit()'s training arguments: uint8 (N, 28, 28) images and int labels in, batches out.

    With real-photo flaws, outliers or real photos on: batches (train/batches.py) that have a share
    of real photos (photos: train/photos.py's pictures, targets and sampling probabilities), a share
    of images given a real photo's flaws and a share replaced by non-garments with equal targets
    (train/realworld.py). Otherwise plain arrays, shuffled by fit, as the recipe was before those
    existed: the same command still gives the same weights as then.
    """
    import keras

    realistic = cfg.realistic if cfg.augment else 0.0
    if realistic or cfg.outliers or photos is not None:
        return {"x": batches.make_batches(images, labels, cfg.batch_size, realistic, cfg.outliers, cfg.seed,
                                            photos=photos, photo_share=cfg.photo_share)}
    return {"x": prepare(images), "y": keras.utils.to_categorical(labels, len(CLASS_NAMES)),
            "batch_size": cfg.batch_size, "shuffle": True}


def fit(trainer, train_data: dict, validation: tuple, cfg: TrainConfig, verbose):
    """trainer.fit with early stopping on validation accuracy, the best epoch's weights restored.

    Mixed batches (train/batches.py) are made an epoch at a time, the next epoch in a thread while this
    one trains, and each epoch is fitted from plain arrays: the same batches in the same order as a
    keras PyDataset would give, without its cost per step (batches.Batches.epoch_arrays).
    Returns an object with .history, as fit's own result has.
    """
    import keras

    made = train_data["x"]
    if not isinstance(made, batches.Batches):
        stop = keras.callbacks.EarlyStopping("val_accuracy", patience=cfg.patience, restore_best_weights=True,
                                             verbose=1)
        return trainer.fit(**train_data, validation_data=validation, epochs=cfg.epochs, callbacks=[stop],
                           verbose=verbose)
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    history, best, best_epoch, best_weights = {}, -1.0, 0, None
    with ThreadPoolExecutor(1) as ahead:
        coming = ahead.submit(made.epoch_arrays, 0)
        for epoch in range(cfg.epochs):
            x, y = coming.result()
            if epoch + 1 < cfg.epochs:
                coming = ahead.submit(made.epoch_arrays, epoch + 1)
            if verbose:
                print(f"Epoch {epoch + 1}/{cfg.epochs}", flush=True)
            # One epoch per call (the schedule follows the optimizer's step count, so it carries on).
            h = trainer.fit(x, y, batch_size=cfg.batch_size, shuffle=False, epochs=1, validation_data=validation,
                            verbose=verbose)
            for key, values in h.history.items():
                history.setdefault(key, []).extend(values)
            if history["val_accuracy"][-1] > best:  # as keras' EarlyStopping: a strict improvement
                best, best_epoch, best_weights = history["val_accuracy"][-1], epoch, trainer.get_weights()
            elif epoch - best_epoch >= cfg.patience:
                print(f"Epoch {epoch + 1}: early stopping", flush=True)
                break
    print(f"Restoring model weights from the end of the best epoch: {best_epoch + 1}.", flush=True)
    trainer.set_weights(best_weights)
    return SimpleNamespace(history=history)


def evaluate_and_report(run_dir: Path, images, y_true, y_pred, title: str) -> dict:
    """Per-class scores, confusion matrix, hardest pairs and bias table into run_dir; returns them."""
    report = reports.per_class(y_true, y_pred)
    cm = reports.confusion(y_true, y_pred)
    pairs = reports.hardest_pairs(cm)
    bias = reports.bias_table(y_true, y_pred)
    reports.plot_confusion(cm, run_dir / "confusion.png", title=title)
    reports.plot_pairs(pairs, images, y_true, y_pred, run_dir / "confused_pairs.png")
    (run_dir / "bias.txt").write_text(reports.format_bias(bias) + "\n")
    print(reports.format_per_class(report))
    print("most confused:", ", ".join(f"{p['true']}->{p['predicted']} {p['count']}" for p in pairs))
    print(reports.format_bias(bias))
    return {**report, "confusion": cm.tolist(), "hardest_pairs": pairs, "bias": bias,
            "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
