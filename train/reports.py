"""What an engineer reads before trusting a model: per-class scores, confusion, hardest pairs, bias.

Pure functions over labels and predictions (scikit-learn metrics), plus matplotlib pictures.
Used by training and by the conversion report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from device.spec import CLASS_NAMES, NUM_CLASSES

# A class predicted this many times more often than it occurs is flagged: a model that
# leans on one class (the classic "everything is a Bag") shows here before anywhere else.
BIAS_FLAG_RATIO = 1.2


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # headless: files, never windows
    import matplotlib.pyplot as plt

    return plt


def per_class(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """{'accuracy': float, 'classes': {name: {precision, recall, f1, support}}}."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels = list(range(NUM_CLASSES))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "classes": {
            CLASS_NAMES[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in labels
        },
    }


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(10, 10) counts, rows = true class, columns = predicted class."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(NUM_CLASSES)))


def hardest_pairs(cm: np.ndarray, k: int = 5) -> list[dict]:
    """The k most frequent (true, predicted) mistakes, most frequent first."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:k]
    pairs = []
    for flat in order:
        t, p = np.unravel_index(flat, off.shape)
        if off[t, p] == 0:
            break
        pairs.append({"true": CLASS_NAMES[t], "predicted": CLASS_NAMES[p], "count": int(off[t, p]),
                      "true_id": int(t), "predicted_id": int(p)})
    return pairs


def bias_table(y_true: np.ndarray, y_pred: np.ndarray) -> list[dict]:
    """Per class: how often it occurs, how often it is predicted, their ratio, and a flag."""
    occurs = np.bincount(y_true, minlength=NUM_CLASSES)
    predicted = np.bincount(y_pred, minlength=NUM_CLASSES)
    rows = []
    for i, name in enumerate(CLASS_NAMES):
        ratio = predicted[i] / occurs[i] if occurs[i] else float("inf") if predicted[i] else 1.0
        rows.append({"class": name, "occurs": int(occurs[i]), "predicted": int(predicted[i]),
                     "ratio": round(float(ratio), 3), "flagged": bool(ratio > BIAS_FLAG_RATIO)})
    return rows


def format_bias(rows: list[dict]) -> str:
    lines = [f"{'class':<12} {'occurs':>7} {'predicted':>9} {'ratio':>6}"]
    for r in rows:
        flag = "  <- over-predicted" if r["flagged"] else ""
        lines.append(f"{r['class']:<12} {r['occurs']:>7} {r['predicted']:>9} {r['ratio']:>6.2f}{flag}")
    return "\n".join(lines)


def format_per_class(report: dict) -> str:
    lines = [f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, m in report["classes"].items():
        lines.append(f"{name:<12} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>8}")
    lines.append(f"{'accuracy':<12} {report['accuracy']:>9.4f}")
    return "\n".join(lines)


def plot_confusion(cm: np.ndarray, path: Path, title: str = "Confusion matrix") -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 7))
    ConfusionMatrixDisplay(cm, display_labels=CLASS_NAMES).plot(ax=ax, cmap="Blues", colorbar=False,
                                                                 xticks_rotation=45)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pairs(pairs: list[dict], images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
               path: Path, per_pair: int = 6) -> None:
    """One row per confused pair: up to per_pair test images of `true` that were called `predicted`."""
    plt = _plt()
    rows = max(len(pairs), 1)
    fig, axes = plt.subplots(rows, per_pair, figsize=(1.4 * per_pair, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, pair in enumerate(pairs):
        idx = np.flatnonzero((y_true == pair["true_id"]) & (y_pred == pair["predicted_id"]))[:per_pair]
        for c, i in enumerate(idx):
            axes[r, c].imshow(images[i].squeeze(), cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_title(f"{pair['true']} -> {pair['predicted']} ({pair['count']})", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: dict, path: Path) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", a), ("accuracy", b)):
        if key in history:
            ax.plot(history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_filters(kernel: np.ndarray, path: Path) -> None:
    """First conv layer's kernels (h, w, 1, n) as a grid of small greyscale tiles."""
    plt = _plt()
    n = kernel.shape[-1]
    cols = min(n, 8)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(kernel[:, :, 0, i], cmap="gray")
    fig.suptitle("first-layer filters")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(obj, path: Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")
