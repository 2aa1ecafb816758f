"""Integration tests against the real vLLM dev backend (tools.vllm_server).

`vllm_url` (session scope) reuses a server that already serves the tiny model, else starts one
(building the model and installing .venv-vllm first if needed; minutes the first time) and stops it
at the end of the session. It FAILS when vLLM cannot be started: these tests are the contract that
the service works with a real vLLM, so they must not silently skip.

`DEV_VLLM_URL` (e.g. http://127.0.0.1:9094) picks another address; a local one is started there
when nothing answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tools import vllm_server as dev

HERE = Path(__file__).resolve().parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def vllm_url() -> Iterator[str]:
    dev_url = os.environ.get("DEV_VLLM_URL", "").strip()
    url = dev_url.rstrip("/") or dev.base_url()
    parts = urlsplit(url)
    host, port = parts.hostname or dev.DEFAULT_HOST, parts.port or dev.DEFAULT_PORT

    info = dev.probe(url)
    if info is not None and dev.SERVED_MODEL_NAME in info["models"]:
        yield url
        return
    if info is not None:
        pytest.fail(f"{url} answers but does not serve {dev.SERVED_MODEL_NAME!r}: {info}")
    if host not in LOCAL_HOSTS:
        pytest.fail(f"DEV_VLLM_URL={dev_url} does not answer, and only a local dev backend can be started")

    try:
        backend = dev.start(port=port, host=host)
    except Exception as exc:  # any failure to start must fail the tests, with its reason
        pytest.fail(f"could not start the vLLM dev backend on {host}:{port}: {exc}")
    try:
        yield backend.url
    finally:
        if backend.started:
            dev.stop(port)
