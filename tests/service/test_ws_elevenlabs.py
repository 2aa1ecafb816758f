"""The ElevenLabs-compatible WebSockets with a raw client: both paths, contexts, unsupported options."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator

import av
import pytest
import soundfile as sf
import websockets

from app.prompts import speech_prompt
from tools.fake_vllm import FakeVLLM

QUERY = "model_id=eleven_turbo_v2_5&output_format=pcm_24000&sync_alignment=true&inactivity_timeout=60"


def url_for(base: str, path: str, query: str = QUERY, voice: str = "jenny") -> str:
    return f"{base.replace('http://', 'ws://')}/v1/text-to-speech/{voice}/{path}?{query}"


@pytest.fixture
def base(app_url: str) -> Iterator[str]:
    yield app_url


async def collect(ws: websockets.ClientConnection) -> list[dict]:
    return [json.loads(m) async for m in ws]


async def test_stream_input_single_context(base: str, fake: FakeVLLM) -> None:
    async with websockets.connect(url_for(base, "stream-input"), additional_headers={"xi-api-key": "any"}) as ws:
        await ws.send(json.dumps({"text": " ", "voice_settings": {"stability": 0.5, "similarity_boost": 0.8}}))
        await ws.send(json.dumps({"text": "Hello from the old protocol. ", "try_trigger_generation": True}))
        await ws.send(json.dumps({"text": ""}))  # end of input
        messages = await asyncio.wait_for(collect(ws), 20)
    assert messages[-1] == {"isFinal": True}
    audio = b"".join(base64.b64decode(m["audio"]) for m in messages if m.get("audio"))
    tokens = fake.expected_tokens(speech_prompt("jenny", "Hello from the old protocol."))
    assert len(audio) == len(tokens) * 960
    assert all("contextId" not in m for m in messages)


async def speak_as(base: str, output_format: str, text: str = "Hello from the old protocol. ") -> bytes:
    query = f"model_id=eleven_turbo_v2_5&output_format={output_format}"
    async with websockets.connect(url_for(base, "stream-input", query), additional_headers={"xi-api-key": "k"}) as ws:
        await ws.send(json.dumps({"text": " "}))
        await ws.send(json.dumps({"text": text, "flush": True}))
        await ws.send(json.dumps({"text": ""}))
        messages = await asyncio.wait_for(collect(ws), 20)
    assert messages[-1] == {"isFinal": True} and not [m for m in messages if "error" in m]
    return b"".join(base64.b64decode(m["audio"]) for m in messages if m.get("audio"))


@pytest.mark.parametrize(
    ("output_format", "bytes_per_token"),
    [("pcm_8000", 320), ("pcm_16000", 640), ("pcm_22050", 882), ("pcm_44100", 1764), ("pcm_48000", 1920),
     ("ulaw_8000", 160), ("alaw_8000", 160)],
)  # fmt: skip
async def test_every_pcm_and_g711_output_format(base: str, fake: FakeVLLM, output_format: str, bytes_per_token: int) -> None:
    audio = await speak_as(base, output_format)
    tokens = fake.expected_tokens(speech_prompt("jenny", "Hello from the old protocol."))
    assert len(audio) == len(tokens) * bytes_per_token  # every token, resampled; nothing dropped


@pytest.mark.parametrize(("output_format", "rate"), [("wav_8000", 8000), ("wav_24000", 24000), ("wav_44100", 44100)])
async def test_wav_output_formats(base: str, fake: FakeVLLM, output_format: str, rate: int) -> None:
    audio = await speak_as(base, output_format)  # a streamed WAV: its header first, then the samples
    data, got_rate = sf.read(io.BytesIO(audio), dtype="int16")
    n = len(fake.expected_tokens(speech_prompt("jenny", "Hello from the old protocol."))) * 480 * rate // 24000
    assert got_rate == rate and len(data) == n and len(audio) == 44 + 2 * n


@pytest.mark.parametrize(("output_format", "rate", "kbps"), [("mp3_22050_32", 22050, 32), ("mp3_44100_128", 44100, 128), ("opus_48000_64", 48000, 64)])
async def test_mp3_and_opus_output_formats(base: str, fake: FakeVLLM, output_format: str, rate: int, kbps: int) -> None:
    audio = await speak_as(base, output_format)
    with av.open(io.BytesIO(audio)) as container:
        stream = container.streams.audio[0]
        decoded = sum(f.samples for f in container.decode(audio=0))
        assert stream.rate == rate and stream.codec_context.name.startswith(output_format.split("_")[0])
        if output_format.startswith("mp3"):
            assert stream.bit_rate == kbps * 1000
    n = len(fake.expected_tokens(speech_prompt("jenny", "Hello from the old protocol."))) * 480 * rate // 24000
    assert n <= decoded <= n + 1105 + 1152  # mp3: the encoder's delay and the last frame's padding


async def test_multi_stream_contexts_are_tagged_and_closed(base: str, fake: FakeVLLM) -> None:
    async with websockets.connect(url_for(base, "multi-stream-input")) as ws:
        for cid, text in (("a", "First context speaks. "), ("b", "Second context speaks. ")):
            await ws.send(json.dumps({"text": " ", "context_id": cid, "voice_settings": {}}))
            await ws.send(json.dumps({"text": text, "context_id": cid}))
        await ws.send(json.dumps({"text": ""}))  # a keep-alive
        for cid in ("a", "b"):
            await ws.send(json.dumps({"text": "", "context_id": cid, "flush": True}))
            await ws.send(json.dumps({"context_id": cid, "close_context": True}))
        finals: set[str] = set()
        audio: dict[str, bytes] = {"a": b"", "b": b""}
        while finals != {"a", "b"}:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if msg.get("audio"):
                audio[msg["contextId"]] += base64.b64decode(msg["audio"])
            if msg.get("isFinal"):
                finals.add(msg["contextId"])
        await ws.send(json.dumps({"close_socket": True}))
        await asyncio.wait_for(collect(ws), 5)
    for cid, text in (("a", "First context speaks."), ("b", "Second context speaks.")):
        assert len(audio[cid]) == len(fake.expected_tokens(speech_prompt("jenny", text))) * 960


async def test_closing_the_socket_mid_speech_cancels_the_backend(base: str, fake: FakeVLLM) -> None:
    fake.rate, fake.n_tokens = 20, 100
    async with websockets.connect(url_for(base, "multi-stream-input")) as ws:
        await ws.send(json.dumps({"text": "A long answer is coming. ", "context_id": "x", "flush": True}))
        while not json.loads(await asyncio.wait_for(ws.recv(), 10)).get("audio"):
            pass
    assert await fake.wait_for_async(lambda: fake.requests and fake.requests[-1].end is not None, timeout=5)
    assert fake.requests[-1].cancelled


@pytest.mark.parametrize(
    ("voice", "query", "param"),
    [
        ("jenny", "model_id=m&output_format=mp3_44100_320", "output_format"),
        ("jenny", "model_id=m", "output_format"),
        ("jenny", "output_format=pcm_24000&enable_ssml_parsing=maybe", "enable_ssml_parsing"),
        ("jenny", "output_format=pcm_24000&inactivity_timeout=999", "inactivity_timeout"),
        ("21m00Tcm4TlvDq8ikWAM", "output_format=pcm_24000", "voice_id"),
    ],
)
async def test_unsupported_options_are_refused_at_the_handshake(base: str, voice: str, query: str, param: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(url_for(base, "multi-stream-input", query, voice))
    assert info.value.response.status_code == 400
    err = json.loads(info.value.response.body)["error"]
    assert err["param"] == param and err["message"]


async def test_an_unknown_pronunciation_dictionary_gets_an_error_message(base: str) -> None:
    async with websockets.connect(url_for(base, "multi-stream-input")) as ws:
        locator = [{"pronunciation_dictionary_id": "d", "version_id": "v"}]
        await ws.send(json.dumps({"text": " ", "context_id": "c", "pronunciation_dictionary_locators": locator}))
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert msg["contextId"] == "c" and msg["error"] == "unknown pronunciation dictionary 'd' version 'v'"
