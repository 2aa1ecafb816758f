"""Service tests share one fake vLLM and one app per module: `fake` hands each test the shared fake, restored."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from app.main import Components
from app.settings import Settings
from tests.conftest import SETTINGS
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=120, rate=0) as server:
        yield server


@pytest.fixture
def fake(shared_fake: FakeVLLM) -> FakeVLLM:
    """The module's fake vLLM, as a new one: nothing in flight, no records, no failure mode, its first settings."""
    shared_fake.restore()
    return shared_fake


@pytest.fixture(scope="module")
def module_settings_for(shared_fake: FakeVLLM) -> Callable[..., Settings]:
    """`settings_for` for a module-scoped server: the test settings against the module's fake."""

    def build(**overrides: object) -> Settings:
        return Settings(_env_file=None, **({"tts_api": shared_fake.url} | SETTINGS | overrides))

    return build


@pytest.fixture(scope="module")
def shared_app_url(module_settings_for: Callable[..., Settings]) -> Iterator[str]:
    with serve(module_settings_for(), Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        yield url


@pytest.fixture
def app_url(shared_app_url: str, fake: FakeVLLM) -> str:
    """The module's service with the fake backend and the stand-in codec (default test settings)."""
    return shared_app_url
