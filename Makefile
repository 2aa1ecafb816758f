# Two commands on a fresh machine: `make dev` (install, build the tiny offline models, start the dev vLLM and
# the API on :9091) and `make test` (install and run the whole suite, integration tests against the real vLLM).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The installer, pinned like everything else; the packages come from requirements/ (tools/lock.py): torch from
# torch.txt (the CPU wheel: pip finds it in the machine's local wheel folder or on PIP_EXTRA_INDEX_URL), then
# exactly the locks, hash-checked. LATEST=1 (make test-latest): the newest versions pyproject.toml allows.
PIP_SPEC  ?= pip==26.3
LOCKS     := requirements/torch.txt requirements/test.lock requirements/reference.lock
LATEST    ?=
MODELS    ?= .cache/models
CODEC_DIR := $(MODELS)/codec-tiny
LM_DIR    := $(MODELS)/tiny-tts-lm
VLLM_URL  ?= http://127.0.0.1:9093
DEV_ENV    = CODEC_MODEL=$(CODEC_DIR) SEMANTIC_MODEL=$(CODEC_DIR)/semantic TTS_API=$(VLLM_URL) CODEC_THREADS=1

.PHONY: all install system-deps models vllm dev api stop-dev test test-latest test-unit lint lock bench stress clean images

all: install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(PIP_SPEC)"

# Locked (default): torch, then every package of the lock without resolving anything (--no-deps, hashes
# checked), the project itself, the test-only references (without their deps), and `tools.lock check`: the venv
# read back against the lock, and `pip check` (a lock that no longer meets pyproject.toml fails here). LATEST=1: pip resolves the newest allowed versions (torch stays pinned) and
# `tools.lock newer` prints what differs from the lock.
$(VENV)/.installed: pyproject.toml requirements-reference.txt $(LOCKS) | $(BIN)/python
	$(BIN)/pip install -q -r requirements/torch.txt
ifeq ($(LATEST),)
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/test.lock
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/reference.lock
	$(BIN)/python -m tools.lock check
else
	$(BIN)/pip install -q --upgrade --upgrade-strategy eager -c requirements/torch.txt -e . --group test
	$(BIN)/pip install -q --upgrade --no-deps -r requirements-reference.txt
	@echo "== newer than the lock (requirements/):"; $(BIN)/python -m tools.lock newer
endif
	touch $@

install: system-deps $(VENV)/.installed

# Debian packages the tests use: the compose validator, espeak-ng and sox for a real speech clip, libsndfile,
# kubectl (package kubernetes-client) to render deploy/k8s; chromium for the playground's browser test
# (Playwright drives it; its own browser download is not used); curl (the fault suite checks what curl sees
# of an aborted stream); g++ (the test-only CTC reference, ctc-forced-aligner, builds from source); promtool (package
# prometheus) checks and unit-tests deploy/prometheus's alert rules; postgresql, whose server the saved-voice tests
# start (Debian keeps its binaries in /usr/lib/postgresql/*/bin, off PATH); haproxy, the real proxy in front of two
# front-ends in the rolling-restart test and the chaos run's replicas mode; buildah and debootstrap build
# docker-compose-cpu.yaml's images on a Debian stand-in base and ip (iproute2) gives the vLLM image its loopback
# (tests/images, tools/images.py: no Docker engine). Each entry is command:package.
system-deps:
	@missing=""; \
	for c in docker-compose:docker-compose espeak-ng:espeak-ng sox:sox kubectl:kubernetes-client chromium:chromium curl:curl g++:g++ promtool:prometheus haproxy:haproxy buildah:buildah debootstrap:debootstrap ip:iproute2; do \
	  command -v $${c%%:*} >/dev/null || missing="$$missing $${c#*:}"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing libsndfile1 >/dev/null; \
	  else echo "please install:$$missing (Debian: apt-get install docker-compose espeak-ng sox kubernetes-client chromium curl g++ prometheus haproxy postgresql buildah debootstrap iproute2)"; exit 1; fi; \
	fi

$(CODEC_DIR)/pytorch_model.bin: | $(VENV)/.installed
	$(BIN)/tts-make-codec --size tiny --with-encoder --out $(CODEC_DIR)

$(LM_DIR)/config.json: | $(VENV)/.installed
	$(BIN)/tts-dev-backend build-model --out $(LM_DIR)

models: $(CODEC_DIR)/pytorch_model.bin $(LM_DIR)/config.json

vllm: install
	$(BIN)/tts-dev-backend install

dev: install models vllm
	$(BIN)/tts-dev-backend start --model $(LM_DIR)
	$(MAKE) api

api:
	$(DEV_ENV) $(BIN)/tts-api

stop-dev:
	$(BIN)/tts-dev-backend stop

lint: $(VENV)/.installed
	$(BIN)/ruff check app tools tests stress_test benchmarks

test: install models vllm lint
	DEV_CODEC_DIR=$(CODEC_DIR) DEV_LM_DIR=$(LM_DIR) $(if $(LATEST),TTS_UNLOCKED=1) $(BIN)/python -m pytest -ra --durations=30

# The suite on the newest versions pyproject.toml allows, in .venv-latest (the dev vLLM stays locked): run it
# before `make lock`, and whenever a dependency publishes a major release.
test-latest:
	$(MAKE) test VENV=.venv-latest LATEST=1

# Resolve the locks anew (newest allowed versions) with uv; then `make test` (and `make test-latest` first).
lock: $(VENV)/.installed
	$(BIN)/python -m tools.lock refresh

test-unit: install models
	DEV_CODEC_DIR=$(CODEC_DIR) $(BIN)/python -m pytest -ra --ignore=tests/integration --ignore=tests/images

# docker-compose-cpu.yaml's images, built with buildah on a Debian stand-in base (no Docker engine; root), into
# .cache/images; `make test` builds and runs them in tests/images.
images: install system-deps
	$(BIN)/python -m tools.images build

# Benchmarks print figures and assert nothing (docs/performance.md has this machine's).
bench: install models
	$(BIN)/python benchmarks/codec_bench.py --size full
	$(BIN)/python benchmarks/stitch_bench.py --size full
	$(BIN)/python benchmarks/normalize_bench.py
	$(BIN)/python -m benchmarks.service_bench --size full

stress:
	$(BIN)/python -m stress_test

clean:
	rm -rf $(VENV) .venv-latest .cache .pytest_cache .ruff_cache test-artifacts
