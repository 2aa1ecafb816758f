"""Clean input: an unpaired surrogate is a 400 (it was a 500), control characters and bidi overrides never
reach the prompt, in every text field (speech input, voice, context, instructions, /normalize, WebSocket text)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM

INVISIBLE = "\x00\x07\x1b\x7f\x9b\u202e\u202d\u2066\u2069\u200f"
DIRTY = "Pay \u202e0001\u202c now\x1b[2J, dear\x00 customer.\x07"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=40, rate=0) as server:
        yield server


@pytest.fixture(scope="module")
def url(fake: FakeVLLM) -> Iterator[str]:
    with serve_like_tts_api(limits_settings(fake.url)) as (base, _):
        yield base


def post_raw(url: str, path: str, body: str) -> httpx.Response:
    """`body` is JSON text as a client wrote it (`"\\ud800"` escapes included), sent as ASCII."""
    return httpx.post(f"{url}{path}", content=body.encode("ascii"), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/audio/speech", '{"input": "\\ud800"}', "input"),
        ("/v1/audio/speech", '{"input": "Hello \\udfff there"}', "input"),
        ("/v1/audio/speech", '{"input": "Hello", "voice": "jen\\ud800ny"}', "voice"),
        ("/v1/audio/speech", '{"input": "Hello", "voice": {"id": "\\ud800"}}', "voice"),
        ("/v1/audio/speech", '{"input": "Hello", "instructions": "\\ud800"}', "instructions"),
        ("/v1/audio/speech", '{"input": "Hi", "context": {"id": "c", "previous_text": "\\ud800"}}', "context"),
        ("/v1/audio/speech", '{"input": "Hi", "context": {"id": "\\ud800"}}', "context"),
        ("/v1/audio/speech", '{"input": "Hi", "model": "\\ud800"}', "model"),
        ("/v1/audio/normalize", '{"input": "\\ud800"}', "input"),
    ],
)
def test_an_unpaired_surrogate_is_a_400_naming_the_field(url: str, path: str, body: str, param: str) -> None:
    resp = post_raw(url, path, body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert param in (error["param"] or "") and "surrogate" in error["message"]


def test_a_surrogate_pair_is_text_like_any_other(url: str) -> None:
    resp = post_raw(url, "/v1/audio/speech", '{"input": "Hello \\ud83d\\ude00 there", "stream": false}')
    assert resp.status_code == 200


def test_control_and_bidi_characters_never_reach_the_prompt(url: str, fake: FakeVLLM) -> None:
    resp = httpx.post(f"{url}/v1/audio/speech", json={"input": DIRTY, "voice": "jenny", "stream": False}, timeout=30)
    assert resp.status_code == 200
    prompt = fake.requests[-1].prompt or ""
    assert "Pay 0001 now[2J, dear customer." in prompt
    assert not set(INVISIBLE) & set(prompt)


def test_normalize_returns_the_text_without_them(url: str) -> None:
    resp = httpx.post(f"{url}/v1/audio/normalize", json={"input": DIRTY}, timeout=30)
    assert resp.status_code == 200
    assert not set(INVISIBLE) & set(resp.json()["normalized"])


async def test_websocket_text_with_a_surrogate_is_refused_and_the_session_goes_on(url: str, fake: FakeVLLM) -> None:
    async with websockets.connect(f"{url.replace('http://', 'ws://')}/v1/audio/speech/stream") as ws:
        await ws.send(json.dumps({"type": "config", "voice": "jenny"}))
        await ws.send(json.dumps({"type": "text", "text": "bad \ud800 text"}))  # json.dumps escapes it: valid JSON
        await ws.send(json.dumps({"type": "text", "text": f"Good {DIRTY}", "flush": True}))
        await ws.send(json.dumps({"type": "close"}))
        messages = []
        async for m in ws:
            if isinstance(m, str):
                messages.append(json.loads(m))
        await asyncio.sleep(0)
    errors = [m for m in messages if m.get("type") == "error"]
    assert len(errors) == 1 and errors[0]["error"]["param"] == "text"
    assert "surrogate" in errors[0]["error"]["message"]
    assert ws.close_code == 1000
    prompt = fake.requests[-1].prompt or ""
    assert "Good Pay 0001 now[2J, dear customer." in prompt and not set(INVISIBLE) & set(prompt)


def test_every_text_field_of_the_request_models_is_cleaned() -> None:
    from pydantic import ValidationError

    from app.service.requests import StreamConfig, VoiceCloneRequest

    vc = VoiceCloneRequest.model_validate({"reference_text": f"ref {DIRTY}", "generate_text": f"gen {DIRTY}"})
    assert not set(INVISIBLE) & set(vc.reference_text + vc.generate_text)
    assert StreamConfig.model_validate({"type": "config", "voice": "jen\u202eny"}).voice == "jenny"
    for fields in ({"reference_text": "\ud800", "generate_text": "hi"}, {"reference_text": "hi", "generate_text": "\udc00"}):
        with pytest.raises(ValidationError, match="surrogate"):
            VoiceCloneRequest.model_validate(fields)
    with pytest.raises(ValidationError, match="surrogate"):
        StreamConfig.model_validate({"type": "config", "voice": "\ud800"})
