from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from app.env import Settings
from app.main import Components
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=120, rate=0) as server:
        yield server


@pytest.fixture
def settings_for(fake: FakeVLLM) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        values: dict = {
            "tts_api": fake.url,
            "backend_read_timeout": 3.0,
            "default_playback_speed": 0.5,
            "default_playback_overlap_speed": 0.1,
            "first_chunk_seconds": 0.2,
            "decode_left_context_seconds": 0.2,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def app_url(settings_for: Callable[..., Settings]) -> Iterator[str]:
    """The service with the fake backend and the stand-in codec."""
    with serve(settings_for(), Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        yield url
