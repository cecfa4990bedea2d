"""The shipped model files (package data, so a plain install finds them too)."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
FLOAT_MODEL = MODELS_DIR / "fashion_float.keras"
INT8_MODEL = MODELS_DIR / "fashion_int8.tflite"
LABELS = MODELS_DIR / "labels.txt"
CARD = MODELS_DIR / "model_card.json"
