"""Fashion-MNIST (or MNIST) from its four IDX .gz files, found offline first.

Search order for Fashion-MNIST: $FASHION_MNIST_DIR, /usr/share/datasets/fashion-mnist
(Debian's dataset-fashion-mnist), the Keras cache, and Keras' own download last.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# Per dataset: the environment variable, the offline folders, and Keras' loader name.
DATASETS = {
    "fashion": dict(
        env="FASHION_MNIST_DIR",
        dirs=["/usr/share/datasets/fashion-mnist", "~/.keras/datasets/fashion-mnist"],
        keras="fashion_mnist",
        hint="install it with `sudo apt-get install dataset-fashion-mnist` "
        "or point FASHION_MNIST_DIR at a folder holding the four IDX .gz files",
    ),
    "mnist": dict(
        env="MNIST_DIR",
        dirs=["/usr/share/datasets/mnist", "~/.keras/datasets/mnist"],
        keras="mnist",
        hint="point MNIST_DIR at a folder holding the four IDX .gz files, "
        "or allow Keras to download it",
    ),
}


class DataNotFound(RuntimeError):
    """The data set is nowhere on disk and could not be downloaded."""


@dataclass
class Split:
    images: np.ndarray  # (N, 28, 28) uint8, bright object on black
    labels: np.ndarray  # (N,) uint8


@dataclass
class Data:
    train: Split
    test: Split
    source: str  # where the files came from
    sha256: dict  # file name -> sha256 of the file as read


def read_idx(path: Path) -> np.ndarray:
    """One gzipped IDX file -> uint8 array (IDX: 2 zero bytes, dtype 0x08, ndim, big-endian dims)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for shape {tuple(dims)}")
    return data.reshape(dims)


def find_dir(dataset: str = "fashion") -> Path | None:
    """First folder, in search order, that holds all four files."""
    spec = DATASETS[dataset]
    candidates = [os.environ.get(spec["env"])] + spec["dirs"]
    for c in candidates:
        if c and all((Path(c).expanduser() / name).is_file() for name in FILES.values()):
            return Path(c).expanduser()
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _from_dir(folder: Path) -> Data:
    arrays = {key: read_idx(folder / name) for key, name in FILES.items()}
    return Data(
        train=Split(arrays["train_images"], arrays["train_labels"]),
        test=Split(arrays["test_images"], arrays["test_labels"]),
        source=str(folder),
        sha256={name: _sha256(folder / name) for name in FILES.values()},
    )


def _from_keras(dataset: str) -> Data:
    """Last resort on a user's machine: Keras downloads into ~/.keras/datasets."""
    spec = DATASETS[dataset]
    try:
        import keras

        (xtr, ytr), (xte, yte) = getattr(keras.datasets, spec["keras"]).load_data()
    except Exception as exc:  # no network, no keras, a broken download: all mean "not found"
        raise DataNotFound(
            f"{dataset} data not found in {', '.join(s for s in [os.environ.get(spec['env'])] + spec['dirs'] if s)} "
            f"and the download failed ({type(exc).__name__}); {spec['hint']}"
        ) from None
    digest = lambda a: hashlib.sha256(a.tobytes()).hexdigest()  # noqa: E731
    return Data(
        train=Split(xtr, ytr.astype(np.uint8)),
        test=Split(xte, yte.astype(np.uint8)),
        source=f"keras.datasets.{spec['keras']}",
        sha256={k: digest(a) for k, a in dict(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte).items()},
    )


def load(dataset: str = "fashion", download: bool = True) -> Data:
    """The whole data set as uint8 arrays; raises DataNotFound with a how-to message."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")
    folder = find_dir(dataset)
    if folder is not None:
        return _from_dir(folder)
    if not download:
        raise DataNotFound(f"{dataset} data not found; {DATASETS[dataset]['hint']}")
    return _from_keras(dataset)
