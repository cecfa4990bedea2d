"""The model as the device runs it: the interpreter built once, its labels, and the checks that make them fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device import card, classify
from device.runtime import ModelError, Runtime, find_runtime, make_interpreter
from device.spec import folder_name


def read_labels(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"labels not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows Notepad) is not part of a label
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"labels file {path} cannot be read as UTF-8 text ({exc})") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file is empty: {path}")
    for label in labels:  # each label names a folder of --save-items: never one outside it, or a hidden one
        folder = folder_name(label)
        if folder.startswith(".") or "\\" in folder or "\0" in folder or not folder.isprintable():
            raise ModelError(f"labels file {path}: {label!r} cannot be a label (it would name the folder {folder!r})")
    return labels


def verify_model_file(model_path: Path) -> str | None:
    """If the model card beside the model lists its sha256, the file must match it. Returns the file's sha256."""
    model_path = Path(model_path)
    try:
        expected = card.expected_sha256(model_path) if model_path.is_file() else None
    except card.CardError as exc:
        raise ModelError(str(exc)) from None
    digest = card.sha256(model_path) if model_path.is_file() else None
    if expected and digest != expected:
        raise ModelError(f"{model_path} does not match the sha256 in its model card: the file is damaged, "
                         "half-copied or not the shipped model")
    return digest


class Model:
    """The interpreter (built once), its labels, and the checks that make them fit together."""

    def __init__(self, model_path: Path, labels_path: Path, threads: int | None = None,
                 runtime: Runtime | None = None, kernels: str = "default"):
        digest = verify_model_file(model_path)
        self.id = (digest or "")[:12]  # names the model in every event, the start line and the page
        self.runtime = runtime or find_runtime()
        self.interpreter = make_interpreter(model_path, threads, self.runtime, kernels)
        self.labels = read_labels(labels_path)
        try:
            classify.check_model(self.interpreter, len(self.labels))
        except ValueError as exc:
            raise ModelError(f"{model_path}: {exc}") from None
        self.path = Path(model_path)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return classify.classify(self.interpreter, x)

    def raw_output(self) -> list:
        """The last inference's output tensor as stored (int8 for the shipped model)."""
        return classify.raw_output(self.interpreter).tolist()
