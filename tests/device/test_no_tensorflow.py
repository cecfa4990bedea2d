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


def device_imports() -> dict[str, set[str]]:
    """Every module of device/ (dotted name) -> the device modules it imports, at any depth of its code."""
    import ast

    root = ROOT / "device"
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = found
    return graph


def test_device_imports_nothing_from_training_conversion_or_tools():
    """device/ is exactly what a Raspberry Pi runs: no import of train/, convert/ or tools/ anywhere in it,
    sub-packages included."""
    offenders = [f"{module}: {name}" for module, names in device_imports().items() for name in names
                 if name.split(".")[0] in ("train", "convert", "tools")]
    assert not offenders, offenders


def test_device_has_no_import_circle():
    """A module never imports, directly or through others, a module that imports it (a package's face,
    its __init__, counts as importing what it hands on)."""
    graph = device_imports()
    edges = {m: {n for n in names if n in graph and n != m} for m, names in graph.items()}

    def reaches(start, goal, seen):
        for nxt in edges[start] - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    circles = sorted(f"{m} -> {n}" for m in edges for n in edges[m] if reaches(n, m, {n}))
    assert not circles, circles


def test_no_device_module_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "device").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


@pytest.mark.skipif(not os.environ.get("EXPECT_RUNTIME"), reason="only in the lean device environments of make test")
def test_lean_run_tests_the_installed_wheel_not_the_checkout():
    """make test-lean copies the tests out of the checkout: device/ must come from site-packages."""
    import device

    assert "site-packages" in device.__file__ and not device.__file__.startswith(str(ROOT / "device")), \
        device.__file__
