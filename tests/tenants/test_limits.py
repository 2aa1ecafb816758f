"""A key's own limits (issue 34, item 3), held by every process sharing the store: streams at once as leases
(renewed while a stream runs, back by themselves within their expiry after a SIGKILL), requests and characters
per minute as windowed counters, audio seconds per day; a refusal is a 429 in OpenAI's shape with `Retry-After`
and `x-ratelimit-*` headers. On a real SQLite file and the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from app.service import migrations
from app.service.leases import DAY, MINUTE, LimitStore, Refusal, sliding_count
from app.service.voice_store import open_engine
from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.voices.test_saved_voices import parts
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

REPO = Path(__file__).resolve().parents[2]
BODY = {"model": "tts-1", "voice": "jenny", "input": "Terima kasih kerana menghubungi kami.", "response_format": "pcm"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limit_store(store_url: str):
    engine = open_engine(store_url)
    migrations.upgrade(engine)
    clock = Clock()
    yield LimitStore(engine, clock), clock
    engine.dispose()


def test_the_sliding_window_weighs_the_previous_one_by_what_it_still_covers() -> None:
    assert sliding_count(10, 0, 0, 60) == 10
    assert sliding_count(10, 4, 30, 60) == 9
    assert sliding_count(10, 4, 60, 60) == 4
    assert sliding_count(0, 7, 59, 60) == 7


def test_stream_leases_are_at_most_the_limit_and_come_back_on_release_or_expiry(limit_store) -> None:
    store, clock = limit_store
    leases = [store.admit("k1", {"streams": 3}, 0, 10) for _ in range(3)]
    assert all(isinstance(x, str) for x in leases) and len(set(leases)) == 3
    refused = store.admit("k1", {"streams": 3}, 0, 10)
    assert isinstance(refused, Refusal) and refused.what == "streams" and refused.limit == 3
    assert isinstance(store.admit("k2", {"streams": 3}, 0, 10), str)  # another key: its own
    store.drop(leases[0])
    assert isinstance(store.admit("k1", {"streams": 3}, 0, 10), str)
    clock.now += 6
    store.renew(leases[1:2], 10)  # one renewed: it outlives the others
    clock.now += 5  # the other two expired
    assert store.held("streams:k1") == 1
    assert [isinstance(store.admit("k1", {"streams": 3}, 0, 10), str) for _ in range(3)] == [True, True, False]


def test_requests_and_characters_per_minute_are_windowed_and_refused_without_counting(limit_store) -> None:
    store, clock = limit_store
    clock.now = 1_800_000_000.0 - 1_800_000_000.0 % MINUTE  # a minute's start
    assert [store.admit("k", {"requests": 5}, 0, 0) for _ in range(5)] == [None] * 5
    refused = store.admit("k", {"requests": 5}, 0, 0)
    assert isinstance(refused, Refusal) and refused.what == "requests" and 0 < refused.retry_after <= MINUTE
    error = refused.error()
    assert error.retry_after == 60 and error.headers["x-ratelimit-limit-requests"] == "5"
    assert (
        error.headers["x-ratelimit-remaining-requests"] == "0" and error.headers["x-ratelimit-reset-requests"] == "60s"
    )
    clock.now += MINUTE + 30  # half the last minute still inside the window: 2.5 of 5
    assert [store.admit("k", {"requests": 5}, 0, 0) for _ in range(3)] == [None, None, Refusal("requests", 5, 30.0)]
    clock.now += 2 * MINUTE
    assert store.admit("k", {"chars": 100}, 60, 0) is None
    assert isinstance(store.admit("k", {"chars": 100}, 41, 0), Refusal)  # 60 + 41 > 100: refused, not counted
    assert store.admit("k", {"chars": 100}, 40, 0) is None
    both = store.admit("k", {"requests": 1, "chars": 1000}, 10, 0)
    assert both is None
    assert isinstance(store.admit("k", {"requests": 1, "chars": 1000}, 10, 0), Refusal)


def test_audio_seconds_per_day_refuse_once_the_days_are_spent(limit_store) -> None:
    store, clock = limit_store
    clock.now = 1_800_000_000.0 - 1_800_000_000.0 % DAY + 3600
    store.add("audio:k", DAY, 9.5)
    assert store.admit("k", {"audio": 10}, 0, 0) is None
    store.add("audio:k", DAY, 0.5)
    refused = store.admit("k", {"audio": 10}, 0, 0)
    assert isinstance(refused, Refusal) and refused.what == "audio-seconds" and refused.retry_after == DAY - 3600
    clock.now += DAY
    assert store.admit("k", {"audio": 10}, 0, 0) is None  # a new day


HOLDER = """
import asyncio, sys
from app.service.leases import KeyLimits, LimitStore
from app.service.principal import CallerLimits, Principal
from app.service.voice_store import open_engine

async def main(url, n, seconds):
    limits = KeyLimits(LimitStore(open_engine(url)), float(seconds))
    caller = Principal("key_holder", "t", CallerLimits(0, 0, max_streams=int(n)), None)
    leases = [await limits.admit(caller) for _ in range(int(n))]
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(*sys.argv[1:]))
"""


def test_a_sigkilled_process_leases_come_back_within_their_expiry_and_not_before(store_url: str) -> None:
    engine = open_engine(store_url)
    migrations.upgrade(engine)
    store = LimitStore(engine)
    lease_seconds = 2.0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store_url, "3", str(lease_seconds)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout.readline() == b"held\n", holder.communicate(timeout=30)[1].decode()[-2000:]
        deadline = time.monotonic() + 2.5 * lease_seconds  # past the first expiry: held, since they are renewed
        while time.monotonic() < deadline:
            assert isinstance(store.admit("key_holder", {"streams": 3}, 0, 60), Refusal)
            time.sleep(0.2)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        while not isinstance(store.admit("key_holder", {"streams": 3}, 0, 60), str):
            assert time.monotonic() - killed < lease_seconds + 1.0, "the killed process's leases did not expire"
            time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait()
        engine.dispose()


async def _stream_status(client: httpx.AsyncClient, url: str, key: str, opened: list, release: asyncio.Event):
    async with client.stream("POST", f"{url}/v1/audio/speech", json=BODY, headers=bearer(key)) as resp:
        opened.append(resp)
        if resp.status_code == 200:
            await release.wait()
        else:
            await resp.aread()
        return resp


async def test_two_apps_on_one_store_give_a_key_exactly_its_streams(
    settings_for: Callable[..., Settings], fake: FakeVLLM, store_url: str
) -> None:
    fake.rate = 20  # tokens/s: each stream runs for seconds
    settings = settings_for(voice_store_url=store_url, api_key=ADMIN, max_concurrent_requests=16)
    with serve(settings, parts()) as a, serve(settings, parts()) as b:
        key = new_key(a, "brand-a", max_streams=3)["key"]
        await asyncio.sleep(2.5)  # b reads the new key at its next refresh
        release = asyncio.Event()
        opened: list[httpx.Response] = []
        async with httpx.AsyncClient(timeout=30) as client:
            first = [asyncio.create_task(_stream_status(client, u, key, opened, release)) for u in (a, b, a)]
            while len(opened) < 3:
                await asyncio.sleep(0.05)
            assert [r.status_code for r in opened] == [200, 200, 200]
            for url in (b, a):  # the 4th, on either app: refused
                resp = await client.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(key))
                assert resp.status_code == 429, resp.text
                assert resp.json()["error"]["code"] == "rate_limit_exceeded" and resp.headers["retry-after"] == "1"
                assert resp.headers["x-ratelimit-limit-streams"] == "3"
            other = await client.post(f"{a}/v1/audio/speech", json=BODY, headers=bearer(new_key(a, "brand-b")["key"]))
            release.set()
            await asyncio.gather(*first)
            assert other.status_code == 200  # another tenant's key: its own streams
            fake.rate = 0
            deadline = time.monotonic() + 5
            while (
                resp := await client.post(f"{b}/v1/audio/speech", json=BODY, headers=bearer(key))
            ).status_code != 200:
                assert time.monotonic() < deadline, resp.text  # given back when the streams ended
                await asyncio.sleep(0.1)


def test_the_openai_sdk_sees_a_rate_limit_error_with_openais_headers(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        key = new_key(url, "brand-a", requests_per_minute=2, chars_per_minute=1000)["key"]
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        for _ in range(2):
            sdk.audio.speech.create(**BODY)
        with pytest.raises(openai.RateLimitError) as info:
            sdk.audio.speech.create(**BODY)
        headers = info.value.response.headers
        assert info.value.body["code"] == "rate_limit_exceeded" and int(headers["retry-after"]) >= 1
        assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
        chars_key = new_key(url, "brand-b", chars_per_minute=len(BODY["input"]) * 2)["key"]
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=chars_key, max_retries=0)
        for _ in range(2):
            sdk.audio.speech.create(**BODY)
        with pytest.raises(openai.RateLimitError) as info:
            sdk.audio.speech.create(**BODY)
        assert info.value.response.headers["x-ratelimit-limit-tokens"] == str(len(BODY["input"]) * 2)
