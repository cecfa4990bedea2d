"""The device runs where TensorFlow and Keras cannot even be imported."""

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, make_jpeg

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'):
            raise ImportError(name + ' is blocked on the device')
sys.meta_path.insert(0, Block())
from device import cli
code = cli.main(sys.argv[1:])
assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules), 'tensorflow was imported'
sys.exit(code)
"""


def test_device_works_without_tensorflow(tmp_path, int8_model, test_images):
    from tools.demo import render_photo

    images, _ = test_images
    make_jpeg(tmp_path / "a.jpg", render_photo(images[0]))
    r = subprocess.run([sys.executable, "-c", BLOCK, "--source", str(tmp_path), "--model", str(int8_model)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "summary: 1 frames" in r.stderr


@pytest.mark.skipif(not os.environ.get("EXPECT_RUNTIME"), reason="only in the lean device environments of make test")
def test_lean_environment_has_no_tensorflow():
    """pip install '.[device]' / '.[device-tflite]' must not have brought TensorFlow or Keras."""
    assert importlib.util.find_spec("tensorflow") is None
    assert importlib.util.find_spec("keras") is None


def test_device_imports_nothing_from_training_conversion_or_tools():
    """device/ is exactly what a Raspberry Pi runs: no import of train/, convert/ or tools/ anywhere in it."""
    import ast

    offenders = []
    for path in sorted((ROOT / "device").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("train", "convert", "tools")]
    assert not offenders, offenders
