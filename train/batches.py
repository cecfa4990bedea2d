"""Training batches: Fashion-MNIST with real-photo flaws, non-garments and real photos mixed in."""

from __future__ import annotations

import numpy as np

from device.spec import CLASS_NAMES
from train.outliers import outlier
from train.realworld import realistic


def make_batches(images, labels, batch_size: int, realistic_share: float, outlier_share: float, seed: int,
                 photos=None, photo_share: float = 0.0):
    """A keras PyDataset over (uint8 images, int labels): shuffled each epoch, a share of each batch made
    realistic and a share replaced by outliers with equal targets. Same seed, same batches.

    photos: (pictures (N, V, 28, 28) uint8, targets (N, 10), sampling probabilities (N,)) from
    train/photos.py; photo_share of each batch's places then go to real photos, one of each drawn
    photo's V variants at random. Without photos the batches are exactly what they were before."""
    import keras

    from device.preprocess import prepare

    n_classes = len(CLASS_NAMES)
    if photos is not None:
        photo_pictures, photo_targets, photo_p = photos

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(len(labels))

        def __len__(self):
            return int(np.ceil(len(labels) / batch_size))

        def __getitem__(self, index):
            rng = np.random.default_rng([seed, self.epoch, index])
            idx = self.order[index * batch_size: (index + 1) * batch_size]
            x = images[idx].copy()
            y = np.eye(n_classes, dtype=np.float32)[labels[idx]]
            for i in range(len(idx)):
                draw = rng.random()
                if photos is not None and draw < photo_share:
                    j = rng.choice(len(photo_targets), p=photo_p)
                    x[i], y[i] = photo_pictures[j, rng.integers(photo_pictures.shape[1])], photo_targets[j]
                    continue
                draw = (draw - photo_share) / (1 - photo_share) if photos is not None else draw
                if draw < outlier_share:
                    x[i] = outlier(images, labels, rng)
                    y[i] = 1 / n_classes
                elif draw < outlier_share + realistic_share:
                    x[i] = realistic(x[i], rng, int(labels[idx[i]]))
            return prepare(x), y  # the same scaling as every other path into the model

        def on_epoch_end(self):
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(len(labels))

    return Batches()
