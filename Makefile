# Two commands on a fresh machine:
#   make demo   installs everything and runs the main job (Dyn-Unc with a small Swin on the embedded Fashion-MNIST)
#   make test   installs everything and runs the test suite
PYTHON ?= python3
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
DEMO_ARGS ?= --max_train_samples 10000 --num_train_epochs 12 --window 5 --retrain --output_dir runs/demo

.PHONY: install data demo test bench lint

data:
	@if [ ! -f $(FMNIST) ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "Fashion-MNIST not found and apt-get unavailable: set FASHION_MNIST_DIR or use --dataset_name"; fi; \
	fi

install: data
	$(PYTHON) -m pip install -q -e ".[tests,plots]"

demo: install
	$(PYTHON) recipes/dyn_unc_swin.py $(DEMO_ARGS)

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_recording_overhead.py
	$(PYTHON) bench/bench_dyn_unc_scale.py
	$(PYTHON) bench/bench_dyn_unc_quality.py

lint:
	ruff check hf_prune recipes tests bench
