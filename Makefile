# pgrl: `make run` trains an agent on CartPole-v1 and shows the result; `make test` runs the suite.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp

.PHONY: setup run test test-fast lint bench verify clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Train A2C on CartPole-v1 for its preset budget (150,000 steps, about 15 s), evaluate it and draw its learning curve.
run: setup
	$(VENV)/bin/pgrl train a2c --env CartPole-v1 --seed 0 --run-dir runs/quickstart-a2c-CartPole-v1 --overwrite
	@echo "learning curve: runs/quickstart-a2c-CartPole-v1/learning-curve.png"

# The whole suite: math, updates, collection, checkpoints, verification, CLI, learning tests;
# two pytest processes (one per core of the reference machine), whole files to each, so that a
# module's Ray session or fixtures stay in one process.
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

# Everything except the learning tests.
test-fast: setup
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not learning"

lint: setup
	$(VENV)/bin/ruff check pgrl tests
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m pgrl.bench

verify: setup
	$(VENV)/bin/pgrl verify --out runs/verify

clean:
	rm -rf $(VENV) runs bench-results *.egg-info
