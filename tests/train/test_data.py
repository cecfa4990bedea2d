import gzip
import struct

import numpy as np
import pytest

from train import data


def write_idx(path, array: np.ndarray) -> None:
    header = b"\0\0\x08" + bytes([array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_dataset(folder, n_train=20, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": np.arange(n_train) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": np.arange(n_test) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in data.FILES.items():
        write_idx(folder / name, arrays[key])
    return arrays


def test_read_idx_round_trip(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(tmp_path / "x.gz", images)
    out = data.read_idx(tmp_path / "x.gz")
    assert out.dtype == np.uint8 and out.shape == (3, 28, 28)
    np.testing.assert_array_equal(out, images)


def test_read_idx_rejects_truncated_file(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\0\0\x08\x03" + struct.pack(">III", 5, 28, 28) + b"\0" * 100)
    with pytest.raises(ValueError, match="bytes of data"):
        data.read_idx(path)


def test_env_var_folder_comes_first(tmp_path, monkeypatch):
    arrays = write_dataset(tmp_path / "mine")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "mine"))
    d = data.load("fashion", download=False)
    assert d.source == str(tmp_path / "mine")
    assert d.train.images.shape == (20, 28, 28) and d.test.labels.shape == (10,)
    np.testing.assert_array_equal(d.test.images, arrays["test_images"])
    assert set(d.sha256) == set(data.FILES.values())


def test_incomplete_folder_is_skipped(tmp_path, monkeypatch):
    write_dataset(tmp_path / "half")
    (tmp_path / "half" / data.FILES["test_labels"]).unlink()
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "half"))
    assert data.find_dir("fashion") != tmp_path / "half"


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nothing"))
    monkeypatch.setitem(data.DATASETS["mnist"], "dirs", [str(tmp_path / "nowhere")])
    with pytest.raises(data.DataNotFound, match="MNIST_DIR"):
        data.load("mnist", download=False)


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    """No files and a download that fails: DataNotFound naming the apt package, not a traceback."""
    import keras

    def no_network():
        raise OSError("network unreachable")

    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "none"))
    monkeypatch.setitem(data.DATASETS["fashion"], "dirs", [str(tmp_path / "nowhere")])
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", no_network)
    with pytest.raises(data.DataNotFound, match="dataset-fashion-mnist"):
        data.load("fashion")


def test_mnist_uses_the_same_loader(tmp_path, monkeypatch):
    write_dataset(tmp_path / "mnist", n_train=30)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "mnist"))
    assert data.load("mnist", download=False).train.images.shape == (30, 28, 28)
