# Two commands on a fresh machine:
#   make demo   installs everything and shows the method working in a few minutes on a CPU: a fast CNN on 10,000
#               embedded Fashion-MNIST images, Dyn-Unc vs random at 25 % / 50 % removed against full data, a data map
#               and the kept-index lists as Hub-ready folders (the recipe's default model, a small Swin, is for
#               `accelerate launch` on real hardware)
#   make test   installs everything and runs the test suite
PYTHON ?= python3
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
DEMO_ARGS ?= --model_name_or_path tiny_cnn --max_train_samples 10000 --num_train_epochs 10 --window 4 \
	--learning_rate 2e-3 --retrain --baselines random --dataloader_num_workers 1 --save_strategy no \
	--output_dir runs/demo --overwrite_output_dir
# One compute thread and one data-loading worker: steady on 2 shared cores, where 2 compute threads contend.
DEMO_ENV ?= OMP_NUM_THREADS=1

.PHONY: install data demo test bench evidence lint

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
	$(DEMO_ENV) $(PYTHON) recipes/dyn_unc_swin.py $(DEMO_ARGS)

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_recording_overhead.py
	$(PYTHON) bench/bench_dyn_unc_scale.py
	$(PYTHON) bench/bench_selection.py

evidence: install
	$(PYTHON) bench/reproduce.py all --preset $(or $(PRESET),cpu)

lint:
	ruff check hf_prune recipes tests bench
