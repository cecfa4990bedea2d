"""The one training config: defaults here, flags override them, a copy is saved in each run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class TrainConfig:
    model: str = "edge"  # edge | tutorial | dense (train/models.py)
    dataset: str = "fashion"  # fashion | mnist
    epochs: int = 50  # upper bound; early stopping may end sooner (32 before outlier exposure)
    batch_size: int = 128
    learning_rate: float = 2e-3  # peak of the warm-up + cosine schedule (Adam)
    warmup_epochs: int = 1  # linear warm-up from 0 to learning_rate
    weight_decay: float = 4e-3  # AdamW decoupled weight decay (Keras default)
    label_smoothing: float = 0.1  # soft targets instead of one-hot ones
    val_size: int = 5000  # held out from the 60k training images, class-balanced
    patience: int = 15  # early stopping on val accuracy, best weights restored (5 stopped a run mid-schedule)
    augment: bool = True  # flip + small shifts by default (measured: see README)
    flip: bool = True  # horizontal flip: garments are left-right symmetric
    shift: float = 0.06  # max translation, fraction of 28 px (about 1.7 px)
    rotate: float = 0.0  # max rotation, fraction of a turn; 0.02 (7 degrees) cost accuracy here
    zoom: float = 0.0  # max zoom in or out; 0.05 cost accuracy here (the dataset's framing is fixed)
    realistic: float = 0.1  # share of each batch given a real photo's flaws (train/realworld.py); 0 = off
    outliers: float = 0.1  # share of each batch replaced by non-garments with equal targets, for "unknown"
    photos: list = field(default_factory=list)  # folders of labelled real photos, one sub-folder per kind (train/photos.py)
    photo_map: str = ""  # JSON file: photo folder name -> class name, list of class names, or "unknown"
    photo_share: float = 0.1  # share of each batch given to real photos (when there are any)
    photo_balance: float = 0.5  # 0: photos drawn equally often; 1: folders drawn equally often
    photo_variants: int = 4  # segmented versions of each photo: as it is, and slightly cropped/turned/lit
    photo_holdout: float = 0.1  # share of photos never trained on: real-photo figures and "unknown" calibration
    photo_cache: str = "build/photo-cache"  # each photo segmented once, keyed by its content
    init: str = ""  # start from this .keras model's weights (fine-tuning); "" = from scratch
    precision: str = "auto"  # auto: mixed_bfloat16 where the CPU has bf16 units (AMX/AVX512-BF16), else float32
    seed: int = 42  # python, numpy and TF seeds; op determinism is on
    limit: int = 0  # train on the first N training images only (0 = all); smoke tests
    test_limit: int = 0  # evaluate on the first N test images only (0 = all)
    out_dir: str = "runs"  # each run writes out_dir/<time>-<model>/

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = json.loads(Path(path).read_text())
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        return cls(**values)
