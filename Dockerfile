# The TTS API (FastAPI + the NeuCodec decoder). The vLLM backend runs in its own container (vllm.yaml).
#
# GPU (default): torch from PyPI, whose Linux x86_64 wheels are CUDA builds that bring their own CUDA
# runtime; the host needs only the NVIDIA driver and the NVIDIA Container Toolkit.
#   docker build -t streamable-tts-api:gpu .
# CPU: the CPU wheel of the same torch version.
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t streamable-tts-api:cpu .
#
# What it installs is what `make test` ran: torch from requirements/torch.txt (pinned apart: its build differs
# by target; the CUDA build pins its CUDA libraries itself), then exactly requirements/api.lock, hash-checked and
# without resolving anything (`make lock` refreshes it; tests/deploy/test_lock.py checks this file against it).
#
# Works with the classic builder too (no BuildKit-only syntax), so `docker-compose` v1 can build it.

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ARG TORCH_INDEX_URL=https://pypi.org/simple
ARG APP_UID=1000

# Every cache under /home/app/.cache, the one writable volume beside /tmp under the compose files' and the
# Kubernetes manifests' read-only root (malaya, the text normalizer, makes $HOME/Malaya on import otherwise).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HOME=/home/app \
    XDG_CACHE_HOME=/home/app/.cache \
    HF_HOME=/home/app/.cache/huggingface \
    TRITON_CACHE_DIR=/home/app/.cache/triton \
    TORCHINDUCTOR_CACHE_DIR=/home/app/.cache/torchinductor \
    MALAYA_CACHE=/home/app/.cache/malaya \
    HOST=0.0.0.0 \
    PORT=9091

# libsndfile1: soundfile. g++: torch.compile (TORCH_COMPILE=true) builds its kernels' launchers with it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 g++ \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid "${APP_UID}" --shell /usr/sbin/nologin app \
    && mkdir -p /home/app/.cache/huggingface /home/app/data \
    && chown -R app:app /home/app/.cache /home/app/data

WORKDIR /src
# torch first, from the chosen index: the largest layer, rebuilt only when its version or index changes.
COPY requirements/torch.txt ./requirements/
RUN pip install --index-url "${TORCH_INDEX_URL}" -r requirements/torch.txt

# The locked dependencies alone, so that a change to the code does not reinstall them.
COPY requirements/api.lock ./requirements/
RUN pip install --no-deps --require-hashes -r requirements/api.lock

COPY pyproject.toml ./

COPY README.md ./
COPY app ./app
# tools/: the `tts-dev-backend` command (the dev vLLM) and the fake vLLM
COPY tools ./tools
RUN pip install --no-deps . && pip check && python -c "import app.settings"

USER app
WORKDIR /home/app
EXPOSE 9091

# /health answers while the process lives (models load in the background; /ready says when they are in).
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=5 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '9091'), timeout=4)" || exit 1

CMD ["tts-api"]
