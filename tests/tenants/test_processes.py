"""The acceptance run of issue 34's limits: two `tts-api` processes with API_WORKERS=2 each (four front-end
workers, two engines), sharing one real PostgreSQL. A tenant limited to 3 streams (two keys of its own) and a key
limited to 3 each get exactly 3 at once across them all, the rest 429 with Retry-After; a revoked key is refused by every worker within 5 s; the leases of a
SIGKILLed process's workers come back within their expiry (STREAM_LEASE_SECONDS), not at a restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx

from tests.tenants.helpers import ADMIN, bearer
from tools.fake_vllm import FakeVLLM
from tools.harness import tts_api_process

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()
LEASE_SECONDS = 3
BODY = {"model": "tts-1", "voice": "jenny", "input": "Terima kasih kerana menghubungi kami.", "response_format": "pcm"}


def keys_cli(store: str, *argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "VOICE_STORE_URL": store}
    done = subprocess.run([sys.executable, "-m", "app.cli", "keys", "--env-file", "/dev/null", *argv, "--json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def descendants(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in children] + [d for c in children for d in descendants(int(c))]


async def open_streams(
    client: httpx.AsyncClient, urls: list[str], key: str, *more_keys: str
) -> tuple[list, list[httpx.Response]]:
    """A streamed request to each of `urls` at once, with `key` and `more_keys` in turn: (the open 200 streams, the
    refusals read whole)."""
    keys = [key, *more_keys]

    async def one(url: str, key: str):
        request = client.build_request("POST", f"{url}/v1/audio/speech", json={**BODY, "stream": True},
                                       headers=bearer(key))  # fmt: skip
        resp = await client.send(request, stream=True)
        if resp.status_code != 200:
            await resp.aread()
            await resp.aclose()
        return resp

    answers = await asyncio.gather(*(one(u, keys[i % len(keys)]) for i, u in enumerate(urls)))
    return [r for r in answers if r.status_code == 200], [r for r in answers if r.status_code != 200]


async def test_two_services_of_two_workers_hold_one_keys_limits_together(
    tmp_path: Path, fake: FakeVLLM, postgres_url: str
) -> None:
    limited = keys_cli(postgres_url, "create", "--tenant", "brand-a", "--max-streams", "3")
    doomed = keys_cli(postgres_url, "create", "--tenant", "brand-b")
    tenant_keys = [keys_cli(postgres_url, "create", "--tenant", "brand-c")["key"] for _ in range(2)]
    keys_cli(postgres_url, "limit-tenant", "brand-c", "--max-streams", "3")  # over both its keys
    env = {
        "TTS_API": fake.url, "API_WORKERS": "2", "CODEC_MODEL": str(CODEC_DIR), "CODEC_LOAD_ENCODER": "false",
        "CODEC_THREADS": "1", "LOG_LEVEL": "warning", "SHUTDOWN_GRACE_SECONDS": "5", "VOICE_STORE_URL": postgres_url,
        "API_KEY": ADMIN, "STREAM_LEASE_SECONDS": str(LEASE_SECONDS), "MAX_CONCURRENT_REQUESTS": "32",
    }  # fmt: skip
    with tts_api_process(env, cwd=tmp_path, log=tmp_path / "b.log") as (b, _):
        starting_a = tts_api_process(env, cwd=tmp_path, log=tmp_path / "a.log")
        a, proc_a = starting_a.__enter__()  # not left normally: the test SIGKILLs it
        fake.rate, fake.n_tokens = 20, 2000  # from now on each stream lasts far longer than the test
        try:
            await _tenant_streams(a, b, tenant_keys)
            await _scenario(a, b, proc_a, postgres_url, limited, doomed)
        finally:
            for pid in [*descendants(proc_a.pid), proc_a.pid]:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc_a.wait(10)


async def _tenant_streams(a: str, b: str, keys: list[str]) -> None:
    """A tenant limited to 3 streams, asked by two keys of its own (no limits of theirs) on every worker: 3."""
    async with httpx.AsyncClient(timeout=60) as client:
        held, refused = await open_streams(client, [a, b] * 5, *keys)
        assert len(held) == 3 and len(refused) == 7, [r.status_code for r in refused]
        for resp in refused:
            assert resp.status_code == 429 and resp.headers["retry-after"] == "1", resp.text
            assert "this tenant's limit of 3 streams at once" in resp.json()["error"]["message"]
        for resp in held:
            await resp.aclose()


async def _scenario(a: str, b: str, proc_a: subprocess.Popen, store: str, limited: dict, doomed: dict) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        # exactly 3 at once, across both services and all four workers; the rest 429 with Retry-After
        held, refused = await open_streams(client, [a, b] * 5, limited["key"])
        assert len(held) == 3 and len(refused) == 7, [r.status_code for r in refused]
        for resp in refused:
            assert resp.status_code == 429 and resp.headers["retry-after"] == "1", resp.text
            assert resp.json()["error"]["code"] == "rate_limit_exceeded"
            assert resp.headers["x-ratelimit-limit-streams"] == "3"
        for resp in held:
            await resp.aclose()  # given back: the next 3 may start, here on a's workers only

        deadline = time.monotonic() + 10
        while len(held := (await open_streams(client, [a, a, a], limited["key"]))[0]) < 3:
            for resp in held:
                await resp.aclose()
            assert time.monotonic() < deadline, "the closed streams' leases did not come back"
            await asyncio.sleep(0.2)
        assert not (await open_streams(client, [b], limited["key"]))[0]  # b counts a's 3

        # a revoked key: refused by every worker of both services within 5 s
        assert (await client.get(f"{b}/v1/models", headers=bearer(doomed["key"]))).status_code == 200
        keys_cli(store, "revoke", doomed["id"])
        revoked = time.monotonic()
        await asyncio.sleep(5 - (time.monotonic() - revoked))
        answers = [(await client.get(f"{u}/v1/models", headers=bearer(doomed["key"]))).status_code
                   for u in [a, b] * 10]  # fmt: skip
        assert answers == [401] * 20

        # a SIGKILLed service's workers hold a's 3 leases: free again within their expiry
        for pid in [*descendants(proc_a.pid), proc_a.pid]:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        proc_a.wait(10)
        for resp in held:
            await resp.aclose()
        while not (got := (await open_streams(client, [b], limited["key"]))[0]):
            assert time.monotonic() - killed < LEASE_SECONDS + 2, "the killed workers' leases did not expire"
            await asyncio.sleep(0.2)
        for resp in got:
            await resp.aclose()
