"""Usage metering (issue 34, item 4): every request recorded at its end, per tenant, key, voice, endpoint and
hour, with the characters it was given and the audio it delivered; a scripted mix of streamed, complete, SSE and
WebSocket requests adds up to what the clients received, to the character and the millisecond, and so do
cancelled ones (a client hanging up mid-stream, a WebSocket `cancel`) and cut ones (a backend that broke,
max_tokens); `GET /v1/usage` (JSON and CSV), each tenant its own, an admin every tenant's; Prometheus counters per
tenant."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets

from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.voices.test_saved_voices import parts
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

BYTES_PER_MS = 24_000 * 2 // 1000  # pcm: 24 kHz, 16-bit mono
TEXTS = ["Terima kasih kerana menghubungi kami.", "Selamat pagi, apa khabar?", "Sila tunggu sebentar.",
         "Baik, saya faham.", "Jumpa lagi esok."]  # fmt: skip


def usage(url: str, key: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/usage", params=params, headers=bearer(key), timeout=10)


def wait_for_requests(url: str, key: str, n: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while True:
        rows = usage(url, key, group_by="tenant,hour").json()["data"]
        if sum(r["requests"] for r in rows) >= n:
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


async def scripted_mix(url: str, key: str) -> dict[str, tuple[int, int]]:
    """Each request of the mix: (characters sent, audio milliseconds received), by what it was."""
    got: dict[str, tuple[int, int]] = {}
    body = {"model": "tts-1", "voice": "jenny", "response_format": "pcm"}
    async with httpx.AsyncClient(timeout=60, headers=bearer(key)) as client:
        resp = await client.post(f"{url}/v1/audio/speech", json={**body, "input": TEXTS[0], "stream": True})
        got["streamed"] = (len(TEXTS[0]), round(len(resp.content) / BYTES_PER_MS))
        resp = await client.post(f"{url}/v1/audio/speech", json={**body, "input": TEXTS[1], "stream": False})
        got["complete"] = (len(TEXTS[1]), round(len(resp.content) / BYTES_PER_MS))
        resp = await client.post(f"{url}/v1/audio/speech", json={**body, "input": TEXTS[2], "stream_format": "sse"})
        events = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
        audio = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "speech.audio.delta")
        got["sse"] = (len(TEXTS[2]), round(audio / BYTES_PER_MS))
    ws_url = url.replace("http://", "ws://") + "/v1/audio/speech/stream"
    async with websockets.connect(ws_url, additional_headers=bearer(key)) as ws:
        await ws.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "pcm"}))
        await ws.send(json.dumps({"type": "text", "text": TEXTS[3]}))
        await ws.send(json.dumps({"type": "close"}))
        audio = sum(len(m) for m in [m async for m in ws] if isinstance(m, bytes))
    got["websocket"] = (len(TEXTS[3]), round(audio / BYTES_PER_MS))
    return got


async def test_a_scripted_mix_adds_up_to_what_the_clients_received(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    fake.n_tokens = lambda prompt: 61 + 7 * (len(prompt) % 13)  # lengths that are no round number of ms
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        a, b = new_key(url, "brand-a"), new_key(url, "brand-b")
        got = await scripted_mix(url, a["key"])
        assert all(ms > 0 for _, ms in got.values()), got
        rows = wait_for_requests(url, a["key"], len(got))
        assert rows == [{
            "tenant": "brand-a", "hour": rows[0]["hour"], "requests": len(got),
            "characters": sum(c for c, _ in got.values()), "audio_ms": sum(ms for _, ms in got.values()),
        }]  # fmt: skip
        by_endpoint = usage(url, a["key"], group_by="key_id,voice,endpoint").json()["data"]
        assert {r["key_id"] for r in by_endpoint} == {a["id"]} and {r["voice"] for r in by_endpoint} == {"jenny"}
        assert [(r["endpoint"], r["requests"]) for r in by_endpoint] == [("speech", 3), ("websocket", 1)]

        # another tenant sees its own (none yet), whatever it asks for; an admin sees every tenant's
        assert usage(url, b["key"], tenant="brand-a").json()["data"] == []
        await scripted_mix(url, b["key"])
        wait_for_requests(url, b["key"], len(got))
        tenants = usage(url, ADMIN, group_by="tenant").json()["data"]
        assert [(r["tenant"], r["requests"]) for r in tenants] == [("brand-a", 4), ("brand-b", 4)]
        only_b = usage(url, ADMIN, group_by="tenant", tenant="brand-b").json()["data"]
        assert [r["tenant"] for r in only_b] == ["brand-b"]
        hour = rows[0]["hour"]
        assert usage(url, ADMIN, start=hour[:10], end="9999").json()["data"] != []
        assert usage(url, ADMIN, end=hour).json()["data"] == []  # the end hour is excluded
        table = list(csv.DictReader(io.StringIO(usage(url, ADMIN, group_by="tenant", format="csv").text)))
        assert [(r["tenant"], int(r["audio_ms"])) for r in table] == [(r["tenant"], r["audio_ms"]) for r in tenants]

        metrics = httpx.get(f"{url}/metrics", headers=bearer(ADMIN)).text
        assert 'tts_tenant_requests_total{tenant="brand-a"} 4.0' in metrics
        assert f'tts_tenant_characters_total{{tenant="brand-a"}} {float(rows[0]["characters"])}' in metrics


async def test_a_cancelled_stream_counts_what_it_delivered_before_the_client_left(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    fake.rate, fake.n_tokens = 50, 400  # 8 s of audio, made in real time: the client leaves long before
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        key = new_key(url, "brand-a")["key"]
        body = {"model": "tts-1", "voice": "idayu", "response_format": "pcm", "input": TEXTS[4], "stream": True}
        received = 0
        async with (
            httpx.AsyncClient(timeout=60, headers=bearer(key)) as client,
            client.stream("POST", f"{url}/v1/audio/speech", json=body) as resp,
        ):
            async for piece in resp.aiter_bytes():
                received += len(piece)
                if received >= 24_000:  # half a second
                    break
        [row] = wait_for_requests(url, key, 1)
        full_ms = 400 * 960 // BYTES_PER_MS  # what the whole text would have been
        assert received / BYTES_PER_MS <= row["audio_ms"] < full_ms / 2, (received, row)
        assert row["characters"] == len(TEXTS[4]) and row["requests"] == 1


@pytest.mark.parametrize(
    "params", [{"group_by": "tenant,nope"}, {"group_by": ""}, {"start": "yesterday"}, {"end": "2026-1"}, {"format": "xml"}]
)
def test_bad_usage_queries_are_400s(settings_for: Callable[..., Settings], params: dict) -> None:
    with serve(settings_for(api_key=ADMIN), parts()) as url:
        resp = usage(url, ADMIN, **params)
        assert resp.status_code == 400, resp.text
        assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_usage_needs_a_key(settings_for: Callable[..., Settings]) -> None:
    with serve(settings_for(api_key=ADMIN), parts()) as url:
        assert httpx.get(f"{url}/v1/usage", timeout=10).status_code == 401


async def _hung_up(client: httpx.AsyncClient, url: str, body: dict, quiet: float = 1.0) -> int:
    """A streamed request whose client hangs up once nothing more came for `quiet` seconds (the backend stalls):
    every byte the server sent by then was read. The bytes received."""
    received = 0
    async with client.stream("POST", f"{url}/v1/audio/speech", json=body) as resp:
        assert resp.status_code == 200
        pieces = resp.aiter_raw()
        while True:
            try:
                received += len(await asyncio.wait_for(anext(pieces), quiet))
            except TimeoutError:
                return received  # the response closed here: the client is gone mid-stream


async def _ws_cancelled(url: str, key: str, text: str, after_bytes: int) -> int:
    """Our WebSocket, cancelled (`cancel`) once `after_bytes` of audio came; every message read to the close."""
    received, cancelled = 0, False
    async with websockets.connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream",
                                  additional_headers=bearer(key)) as ws:  # fmt: skip
        await ws.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "pcm"}))
        await ws.send(json.dumps({"type": "text", "text": text, "flush": True}))
        async for m in ws:
            received += len(m) if isinstance(m, bytes) else 0
            if received >= after_bytes and not cancelled:
                await ws.send(json.dumps({"type": "cancel"}))
                cancelled = True
            done = None if isinstance(m, bytes) else json.loads(m)
    assert cancelled and done is not None and done["type"] == "done", done
    return received


async def test_cancelled_and_cut_requests_count_what_the_clients_received(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    """Acceptance line 3's cancelled and cut requests: a client that hangs up mid-stream, a WebSocket cancelled
    mid-sentence, an SSE stream the server cut when its backend broke, a stream cut at max_tokens."""
    settings = settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN, backend_retries=0)
    body = {"model": "tts-1", "voice": "jenny", "response_format": "pcm", "stream": True}
    with serve(settings, parts()) as url:
        key = new_key(url, "brand-a")["key"]
        got: dict[str, tuple[int, int]] = {}
        async with httpx.AsyncClient(timeout=60, headers=bearer(key)) as client:
            fake.n_tokens = 300
            fake.set_mode("stall", count=1, after=47)
            received = await _hung_up(client, url, {**body, "input": TEXTS[0]})
            got["hung up"] = (len(TEXTS[0]), round(received / BYTES_PER_MS))
            fake.rate = 50  # tokens/s: 6 s of speech, cancelled after half a second of it
            received = await _ws_cancelled(url, key, TEXTS[1], after_bytes=24_000)
            got["websocket cancelled"] = (len(TEXTS[1]), round(received / BYTES_PER_MS))
            fake.rate = 0
            fake.set_mode("early_close", count=1, after=53)  # the backend breaks: no resend, the server cuts it
            resp = await client.post(f"{url}/v1/audio/speech", json={**body, "input": TEXTS[2], "stream_format": "sse"})
            events = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
            assert events[-1]["type"] == "error", events[-1]
            audio = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "speech.audio.delta")
            got["cut: backend broke"] = (len(TEXTS[2]), round(audio / BYTES_PER_MS))
            resp = await client.post(f"{url}/v1/audio/speech", json={**body, "input": TEXTS[3], "max_tokens": 61})
            assert resp.status_code == 200
            got["cut: max_tokens"] = (len(TEXTS[3]), round(len(resp.content) / BYTES_PER_MS))
        assert all(ms > 0 for _, ms in got.values()), got
        assert got["hung up"][1] < 300 * 20 / 2 and got["websocket cancelled"][1] < 300 * 20 / 2  # mid-stream
        rows = usage(url, key, group_by="endpoint").json()["data"]
        deadline = time.monotonic() + 30
        while sum(r["requests"] for r in rows) < len(got):
            assert time.monotonic() < deadline, rows
            time.sleep(0.1)
            rows = usage(url, key, group_by="endpoint").json()["data"]
        assert rows == [
            {"endpoint": "speech", "requests": 3, "characters": sum(got[k][0] for k in got if k != "websocket cancelled"),
             "audio_ms": sum(got[k][1] for k in got if k != "websocket cancelled")},
            {"endpoint": "websocket", "requests": 1, "characters": got["websocket cancelled"][0],
             "audio_ms": got["websocket cancelled"][1]},
        ], got  # fmt: skip
