# Quick start: make demo, then make test. Everything lives in .venv/ at the repository root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := /usr/share/datasets/fashion-mnist

.PHONY: setup data demo test pi-check clean

setup: $(STAMP) data

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

demo: setup
	$(BIN)/python -m device.demo --out build/demo
	$(BIN)/classify-cam --source build/demo --output build/demo/log.jsonl --dump-input build/demo/seen

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf build runs .pytest_cache
