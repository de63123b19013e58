# Two commands on a fresh machine:
#   make demo   installs everything and shows the method working in a few minutes on a CPU: a fast CNN on 10,000
#               embedded Fashion-MNIST images, Dyn-Unc vs random at 25 % / 50 % removed against full data, a data map
#               and the kept-index lists as Hub-ready folders (`recipes/dyn_unc_swin.py --preset cpu`; the recipe's
#               default model, a small Swin, is for `accelerate launch` on real hardware)
#   make test   installs everything and runs the test suite
#
# Where it installs: into the virtual environment you are in (venv, virtualenv or conda); outside one, into a project
# environment `.venv` that it creates (so it works with Debian's or Ubuntu's externally-managed system Python and
# never writes into the global site-packages). `VENV=path` picks another location.
# On a machine without a GPU, `TORCH=cpu` installs PyTorch's CPU-only build first (the default, CUDA build pulls
# about 3 GB of nvidia-* wheels).
PYTHON ?= python3
IN_VENV := $(shell $(PYTHON) -c 'import os, sys; print(int(sys.prefix != sys.base_prefix or bool(os.environ.get("CONDA_PREFIX"))))' 2>/dev/null)
VENV ?= $(if $(filter 1,$(IN_VENV)),,.venv)
VENV_ARGS ?=
PY := $(if $(VENV),$(VENV)/bin/python,$(PYTHON))
TORCH ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# Real text for the text tasks (hf_prune.text_data): Debian's fortunes, one file per category
FORTUNES := /usr/share/games/fortunes
DEMO_ARGS ?= --preset cpu --output_dir runs/demo --overwrite_output_dir
# One compute thread: steady on 2 shared cores, where 2 compute threads contend.
DEMO_ENV ?= OMP_NUM_THREADS=1

.PHONY: venv install data demo test bench evidence lint

data:
	@missing=""; \
	[ -f $(FMNIST) ] || missing="dataset-fashion-mnist"; \
	[ -d $(FORTUNES) ] || missing="$$missing fortunes"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	  else echo "Embedded data not found ($$missing) and apt-get unavailable: set FASHION_MNIST_DIR / FORTUNES_DIR or use --dataset_name"; fi; \
	fi

venv:
ifneq ($(VENV),)
	@if [ ! -x $(VENV)/bin/python ]; then \
	  echo "Creating the project environment $(VENV) (not inside a virtual environment; VENV=path to choose another)"; \
	  $(PYTHON) -m venv $(VENV_ARGS) $(VENV) || { echo "Could not create $(VENV): on Debian/Ubuntu install python3-venv (apt-get install python3-venv)"; exit 1; }; \
	fi
endif

install: data venv
ifeq ($(TORCH),cpu)
	$(PY) -m pip install -q torch torchvision --index-url $(TORCH_CPU_INDEX)
else ifneq ($(TORCH),)
	$(error TORCH=$(TORCH) is not known: use TORCH=cpu for PyTorch's CPU-only build, or leave it unset)
endif
	$(PY) -m pip install -q -e ".[tests,plots]"

demo: install
	$(DEMO_ENV) $(PY) recipes/dyn_unc_swin.py $(DEMO_ARGS)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/bench_recording_overhead.py
	$(PY) bench/bench_dyn_unc_scale.py
	$(PY) bench/bench_selection.py

evidence: install
	$(PY) bench/reproduce.py all --preset $(or $(PRESET),cpu)

lint: install
	$(PY) -m ruff check hf_prune recipes tests bench
