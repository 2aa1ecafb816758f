"""The service for the agent-plugin tests: the fake vLLM (25 tokens per request) and the stand-in codec, with an
API key (the plugins send theirs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=25, rate=0) as server:
        yield server


@pytest.fixture
def url(fake: FakeVLLM) -> Iterator[str]:
    settings = Settings(_env_file=None, tts_api=fake.url, api_key="secret", backend_read_timeout=5.0)
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as base:
        yield base
