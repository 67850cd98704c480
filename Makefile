# CIFAR Workbench. `make run` and `make test` are all a newcomer needs: both create .venv on first use.
#   make install         .venv with the pinned requirements and this checkout (editable): .venv/bin/workbench
#   make install GPU=1   also installs TensorFlow's CUDA libraries (tensorflow[and-cuda])
#   make test ARGS="-m slow"   opt-in long tests;  make bench   every benchmark in bench/, fails if one misses
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GPU ?=
PRESET ?= classic
# Where the data comes from when the user names nothing: the bundled JPEG copy if this checkout has one.
DATA ?= $(firstword $(wildcard ../shared/data/cifar10-jpeg.tar.gz))

.PHONY: install install-dev run test bench train-all params clean

# Last, the checkout itself, editable, for the `workbench` command: its dependencies are the pinned
# requirements just installed, and without build isolation the venv's setuptools builds it (no download).
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt "setuptools>=64" $(if $(GPU),"tensorflow[and-cuda]==2.21.0")
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) app.py $(if $(DATA),--data $(DATA)) $(ARGS)

test: install-dev
	$(PY) -m pytest $(ARGS)

bench: install-dev
	$(PY) bench/augment.py

params: install
	$(PY) -m models

train-all: install
	$(PY) -m workbench train-all --preset $(PRESET) $(if $(DATA),--data $(DATA)) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
