# CIFAR Workbench. `make run` and `make test` are all a newcomer needs: both create .venv on first use.
#   make install         .venv with the pinned requirements and this checkout (editable): .venv/bin/workbench
#   make install GPU=1   also installs TensorFlow's CUDA libraries (tensorflow[and-cuda])
#   make lint            ruff (lint + format check) and mypy, as CI runs them before the tests
#   make test ARGS="-m slow"   opt-in long tests;  make bench   every benchmark in bench/, fails if one misses
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GPU ?=
PRESET ?= classic
# Where the data comes from when the user names nothing: the bundled JPEG copy if this checkout has one.
DATA ?= $(firstword $(wildcard ../shared/data/cifar10-jpeg.tar.gz))

.PHONY: install install-dev run test lint format bench train-all params clean

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

# Lint and format check (ruff) and the type check (mypy), configured in pyproject.toml; `make format` fixes
# what ruff can.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Every benchmark at its full size, one after another (tens of minutes on 2 cores; BENCH=... picks some),
# then the GPU check where there is a GPU; each exits 1 when it misses a target, and bench fails at the
# end naming those that did.
BENCH ?= augment ensemble errors predict ui train_overhead finetune_memory soak cluster estimate search data_quality data_quality_features cpu_roofline
bench: install-dev
	@failed=""; for name in $(BENCH); do \
	    echo "== bench/$$name.py"; $(PY) bench/$$name.py || failed="$$failed $$name"; done; \
	if nvidia-smi -L >/dev/null 2>&1; then echo "== bench/gpu_check.sh"; \
	    PY=$(PY) bash bench/gpu_check.sh || failed="$$failed gpu_check"; \
	else echo "== bench/gpu_check.sh: skipped (no NVIDIA GPU)"; fi; \
	if [ -n "$$failed" ]; then echo "make bench: missed targets or failed:$$failed"; exit 1; fi

params: install
	$(PY) -m models

train-all: install
	$(PY) -m workbench train-all --preset $(PRESET) $(if $(DATA),--data $(DATA)) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
