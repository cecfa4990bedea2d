"""The device runs where TensorFlow and Keras cannot even be imported."""

import subprocess
import sys

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
    from device.demo import render_photo

    images, _ = test_images
    make_jpeg(tmp_path / "a.jpg", render_photo(images[0]))
    r = subprocess.run([sys.executable, "-c", BLOCK, "--source", str(tmp_path), "--model", str(int8_model)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "summary: 1 frames" in r.stderr
