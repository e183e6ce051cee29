# `make test` and `make demo` work on a fresh clone: each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision must be a matching pair; pip takes these from local disk here.
TORCH_PAIR ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv test demo lint clean

$(BIN)/modal-noisy: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PAIR)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/modal-noisy

# One intra-op thread per process: the suite's subprocesses (examples, demo, crash tests) must not
# oversubscribe small machines, where spinning OpenMP threads slow training down tenfold. Instead, two
# pytest workers (pytest-xdist) keep two cores busy; each test file runs whole on one worker, so a
# module's shared fitted model is trained once.
test: venv
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

demo: venv
	$(BIN)/modal-noisy demo

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
