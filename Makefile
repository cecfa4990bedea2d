# Quick start: make demo, then make test. Everything lives in .venv/ at the repository root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := /usr/share/datasets/fashion-mnist

.PHONY: setup data test-packages check-parts demo test test-lean pi-check model clean

setup: $(STAMP) data test-packages

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[train,device,dev]"
	@touch $(STAMP)

# Fashion-MNIST from Debian's dataset-fashion-mnist, unless FASHION_MNIST_DIR or the Keras cache has it.
data:
	@if [ -n "$$FASHION_MNIST_DIR" ] && [ -f "$$FASHION_MNIST_DIR/t10k-images-idx3-ubyte.gz" ]; then :; \
	elif [ -f $(DATA)/t10k-images-idx3-ubyte.gz ]; then :; \
	elif [ -f $$HOME/.keras/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "installing Fashion-MNIST: $$SUDO apt-get install dataset-fashion-mnist"; \
	  $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; } || \
	  echo "could not install dataset-fashion-mnist; set FASHION_MNIST_DIR to a folder with the four IDX .gz files"; \
	else echo "Fashion-MNIST not found: set FASHION_MNIST_DIR, or Keras will try to download it"; fi

# What the tests use from Debian beside the data: the system's own Python with apt-built NumPy
# modules (python3-scipy), for the Raspberry Pi install script's test; a real MQTT broker (mosquitto)
# for stockroom mode; a real browser (chromium) for the web page. Where they cannot be installed the
# tests that need them skip, saying why; under CI=true they fail instead (check-parts says what is missing).
TEST_PACKAGES := python3-venv python3-scipy mosquitto mosquitto-clients chromium
test-packages:
	@if { /usr/bin/python3 -s -c 'import scipy.ndimage' && command -v mosquitto_passwd && command -v chromium; } \
	  >/dev/null 2>&1 || \
	  ! command -v apt-get >/dev/null 2>&1; then :; \
	else SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "installing test packages: $$SUDO apt-get install $(TEST_PACKAGES)"; \
	  $$SUDO apt-get install -y -q $(TEST_PACKAGES) >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $(TEST_PACKAGES) >/dev/null; } || \
	  echo "could not install $(TEST_PACKAGES): the tests that need them skip (and fail under CI=true)"; fi

# Under CI=true every real part the tests use must be here: one line for each that is not, then exit 1,
# before minutes of tests (the tests themselves fail, never skip, on a missing part under CI=true too).
check-parts:
	@if [ "$$CI" = true ]; then missing=0; \
	  command -v mosquitto >/dev/null 2>&1 || \
	    { echo "CI=true: mosquitto is missing from PATH: sudo apt-get install mosquitto mosquitto-clients"; missing=1; }; \
	  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	    { echo "CI=true: chromium is missing: sudo apt-get install chromium"; missing=1; }; \
	  /usr/bin/python3 -s -c 'import scipy.ndimage' >/dev/null 2>&1 || \
	    { echo "CI=true: python3-scipy is missing: sudo apt-get install python3-scipy"; missing=1; }; \
	  [ -f "$${FASHION_MNIST_DIR:-$(DATA)}/t10k-images-idx3-ubyte.gz" ] || \
	    { echo "CI=true: Fashion-MNIST is missing: sudo apt-get install dataset-fashion-mnist"; missing=1; }; \
	  [ -d ../shared/real-photos-dev ] || \
	    { echo "CI=true: ../shared/real-photos-dev is missing: the real-photo set beside the checkout"; missing=1; }; \
	  exit $$missing; fi

demo: setup
	$(BIN)/python -m tools.demo --out build/demo
	$(BIN)/classify-cam --source build/demo --output build/demo.jsonl --dump-input build/demo-seen

# The device tests run against the installed wheel in test-lean (twice where tflite-runtime has wheels);
# here, in .venv, everything else and the few device tests that build models with TensorFlow.
DEVICE_TF_TESTS := tests/device/test_classify.py tests/device/test_cli.py::test_model_with_the_wrong_input_is_refused
test: setup check-parts
	$(BIN)/python -m pytest --ignore=tests/device
	$(BIN)/python -m pytest -q $(DEVICE_TF_TESTS)
	$(MAKE) --no-print-directory test-lean

# The device as a Pi gets it: plain (non-editable) installs of each device extra, no TensorFlow. The
# device tests, stockroom mode and the page included, run from a copy of tests/ outside the checkout's
# import path, so what they import and run is the installed wheel (a test checks that).
LEAN_COPY := build/lean-tests
LEAN_TESTS := tests/device
# tflite-runtime's environment (NumPy 1, OpenCV < 4.12, the classic runtime): the suites where those differ
# (inference, decoding, the odd pictures, sources, the command) and stockroom mode and the page once each; the
# rest is the same Python on the same broker and browser, run in full above. Keeps make test within 15 minutes.
TFLITE_TESTS := $(addprefix tests/device/,test_classify.py test_cli.py test_no_tensorflow.py test_preprocess.py \
  test_picamera.py test_sources.py test_faults.py test_stockroom.py::test_one_placed_and_one_removed_per_garment \
  test_web.py::test_http_paths_tokens_and_settings)
test-lean: .venv-device/.installed
	@rm -rf $(LEAN_COPY) && mkdir -p $(LEAN_COPY) && cp -r tests $(LEAN_COPY)/
	cd $(LEAN_COPY) && FASHION_EDGE_ROOT=$(CURDIR) EXPECT_RUNTIME=ai-edge-litert \
	  $(CURDIR)/.venv-device/bin/python -m pytest -q -p no:cacheprovider --rootdir . $(LEAN_TESTS)
	cd /tmp && $(CURDIR)/.venv-device/bin/classify-cam --doctor --source $(CURDIR)/docs/before-after.png
	@if $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] > (3, 11))'; then \
	  $(MAKE) --no-print-directory .venv-tflite/.installed && \
	  cd $(LEAN_COPY) && FASHION_EDGE_ROOT=$(CURDIR) EXPECT_RUNTIME=tflite-runtime \
	    $(CURDIR)/.venv-tflite/bin/python -m pytest -q -p no:cacheprovider --rootdir . $(TFLITE_TESTS) && \
	  (cd /tmp && $(CURDIR)/.venv-tflite/bin/classify-cam --doctor --source $(CURDIR)/docs/before-after.png); \
	else echo "tflite-runtime has no wheels for this Python (> 3.11): its lean check is skipped"; fi

.venv-device/.installed .venv-tflite/.installed: .venv-%/.installed: pyproject.toml \
  $(wildcard device/*.py device/*/*.py device/web/page.html tools/*.py train/*.py models/*)
	@test -x .venv-$*/bin/python || $(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet --force-reinstall --no-deps . && \
	  .venv-$*/bin/python -m pip install --quiet ".[$(if $(filter tflite,$*),device-tflite,device)]" pytest \
	    websocket-client
	@touch $@

# The emulated Raspberry Pi (arm64) check: needs root and about 600 MB; not part of make test.
pi-check: setup
	bash tools/pi-check.sh

# Rebuild models/ from scratch (Fashion-MNIST and ../shared/real-photos-train): about an hour on 2 cores;
# the same bytes when run again on the same machine. Not part of make test.
model: setup
	$(BIN)/python -m train.rebuild

clean:
	rm -rf build runs .pytest_cache .venv-device .venv-tflite
