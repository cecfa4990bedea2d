"""Training batches: Fashion-MNIST with real-photo flaws, non-garments and real photos mixed in."""

from __future__ import annotations

import numpy as np

from device.spec import CLASS_NAMES
from train.outliers import outlier
from train.realworld import realistic


class Batches:
    """Batches over (uint8 images, int labels): shuffled each epoch, a share of each batch made realistic
    and a share replaced by outliers with equal targets. Same seed, same batches.

    photos: (pictures (N, V, 28, 28) uint8, targets (N, 10), sampling probabilities (N,)) from
    train/photos.py; photo_share of each batch's places then go to real photos, one of each drawn
    photo's V variants at random. Without photos the batches are exactly what they were before.
    A batch depends only on (seed, epoch, index), so an epoch can be made ahead in another thread.
    """

    def __init__(self, images, labels, batch_size: int, realistic_share: float, outlier_share: float, seed: int,
                 photos=None, photo_share: float = 0.0):
        self.images, self.labels, self.batch_size, self.seed = images, labels, batch_size, seed
        self.realistic_share, self.outlier_share = realistic_share, outlier_share
        self.photos, self.photo_share = photos, photo_share
        self.epoch = 0
        self._order = (None, None)  # (epoch, its shuffle of the images): one permutation per epoch, not per batch

    def __len__(self):
        return int(np.ceil(len(self.labels) / self.batch_size))

    def __getitem__(self, index):
        return self.batch(self.epoch, index)

    def on_epoch_end(self):
        self.epoch += 1

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's shuffle of the images, made once per epoch (a thread may make the next epoch meanwhile)."""
        made_for, order = self._order
        if made_for != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.labels))
            self._order = (epoch, order)
        return order

    def batch(self, epoch: int, index: int):
        """Batch `index` of `epoch`: float32 (B, 28, 28, 1) images and (B, 10) targets."""
        from device.preprocess import prepare

        n_classes = len(CLASS_NAMES)
        order = self.order(epoch)
        rng = np.random.default_rng([self.seed, epoch, index])
        idx = order[index * self.batch_size: (index + 1) * self.batch_size]
        x = self.images[idx].copy()
        y = np.eye(n_classes, dtype=np.float32)[self.labels[idx]]
        photo_share = self.photo_share if self.photos is not None else 0.0
        for i in range(len(idx)):
            draw = rng.random()
            if draw < photo_share:
                pictures, targets, p = self.photos
                j = rng.choice(len(targets), p=p)
                x[i], y[i] = pictures[j, rng.integers(pictures.shape[1])], targets[j]
                continue
            draw = (draw - photo_share) / (1 - photo_share) if self.photos is not None else draw
            if draw < self.outlier_share:
                x[i] = outlier(self.images, self.labels, rng)
                y[i] = 1 / n_classes
            elif draw < self.outlier_share + self.realistic_share:
                x[i] = realistic(x[i], rng, int(self.labels[idx[i]]))
        return prepare(x), y  # the same scaling as every other path into the model

    def epoch_arrays(self, epoch: int):
        """All of `epoch`'s batches in order, as one pair of arrays: (N, 28, 28, 1) float32 and (N, 10).

        fit() takes these as plain arrays (shuffle off, the same batch size). Fed one batch a step
        through a keras PyDataset instead, the recipe's epochs took 228-241 s here against 128-163 s
        this way (edge-wide, 2 cores; docs/training.md, "Training speed")."""
        xs, ys = zip(*(self.batch(epoch, i) for i in range(len(self))))
        return np.concatenate(xs), np.concatenate(ys)


def make_batches(images, labels, batch_size: int, realistic_share: float, outlier_share: float, seed: int,
                 photos=None, photo_share: float = 0.0) -> Batches:
    return Batches(images, labels, batch_size, realistic_share, outlier_share, seed, photos, photo_share)
