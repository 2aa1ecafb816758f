"""Fixtures for every suite: a fake vLLM, settings against it, and the service on a real port."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=120, rate=0) as server:
        yield server


# The tests' settings: short timeouts and windows, so streams are many chunks of a few tokens.
SETTINGS: dict = {
    "backend_read_timeout": 3.0,
    "default_playback_speed": 0.5,
    "default_playback_overlap_speed": 0.1,
    "first_chunk_seconds": 0.2,
    "decode_left_context_seconds": 0.2,
    "voice_store_url": "sqlite://",  # saved voices in memory: tests that keep them give their own file or server
}


@pytest.fixture
def settings_for(fake: FakeVLLM) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        return Settings(_env_file=None, **({"tts_api": fake.url} | SETTINGS | overrides))

    return build


@pytest.fixture
def app_url(settings_for: Callable[..., Settings]) -> Iterator[str]:
    """The service with the fake backend and the stand-in codec."""
    with serve(settings_for(), Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        yield url


# A test slower than this is named as it ends, with the run's time so far: a CI log cut by its time limit still
# says where the time went (`--durations` prints only at the end).
SLOW_TEST_S = float(os.environ.get("SLOW_TEST_S", "60"))
_RUN_STARTED = time.monotonic()
_spent: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _spent[report.nodeid] = _spent.get(report.nodeid, 0.0) + report.duration
    if report.when != "teardown":
        return
    spent = _spent.pop(report.nodeid)
    if spent >= SLOW_TEST_S:
        print(f"\n[slow] {spent:.0f} s {report.nodeid} ({(time.monotonic() - _RUN_STARTED) / 60:.1f} min into the run)",
              flush=True)  # fmt: skip
