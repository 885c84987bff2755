# Two commands set up everything on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv if it is missing and install the project into it (quick when already done).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.maskinpaint-installed
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax

.PHONY: install demo test test-fast bench clean-venv lock

install: $(STAMP)

# constraints.txt pins a set of versions known to work together (Python 3.11/3.12, CPU).
# face_recognition is installed with --no-deps so pip never compiles dlib: dlib-bin provides it.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" "setuptools<81" wheel
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	$(PIP) install -q -c constraints.txt --no-deps face_recognition
	@touch $(STAMP)

demo: install
	$(PY) -m maskinpaint_jax.demo

test: install
	$(PY) -m pytest -q -rfEs tests

test-fast: install
	$(PY) -m pytest -q -rfEs -m "not slow" tests

bench: install
	$(PY) -m maskinpaint_jax.bench train --config configs/demo.py

# Re-pin after a deliberate upgrade: writes the versions of the current venv.
lock: install
	$(PIP) freeze --exclude-editable | grep -v '^-e' | sort > constraints.txt

clean-venv:
	rm -rf $(VENV)
