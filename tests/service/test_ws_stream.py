"""`/v1/audio/speech/stream` end to end: a real WebSocket client, the fake vLLM, the stand-in codec."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
import soxr
import websockets

from app.audio.pcm import float_to_int16
from app.audio.stitch import apply_fade_in
from app.main import Components
from app.prompts import context_prompt, speech_prompt, speech_tokens_text
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

SENTENCES = ["Hello there, how are you today?", "I am calling about your order.", "It ships tomorrow morning."]


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/v1/audio/speech/stream"


@pytest.fixture
def serve_with(settings_for: Callable[..., Settings]) -> Callable[..., object]:
    def start(**overrides: object):
        return serve(settings_for(**overrides), Components(codec=LocalCodec(), normalizer=PassthroughNormalizer()))

    return start


@pytest.fixture
def url(serve_with: Callable[..., object]) -> Iterator[str]:
    with serve_with() as base:
        yield base


async def run_session(
    url: str, config: dict, words: list[str], pause: float = 0.0, headers: dict | None = None
) -> tuple[list[dict], bytes, dict]:
    """Send config, the words one by one (an LLM's deltas), then close; collect events and audio in order."""
    events: list[dict] = []
    audio = bytearray()
    info: dict = {"words_sent_at_first_audio": None}
    sent = 0
    async with websockets.connect(ws_url(url), additional_headers=headers or {}) as ws:
        await ws.send(json.dumps({"type": "config", **config}))

        async def send_words() -> None:
            nonlocal sent
            for word in words:
                await ws.send(json.dumps({"type": "text", "text": word + " "}))
                sent += 1
                await asyncio.sleep(pause)
            await ws.send(json.dumps({"type": "close"}))

        sender = asyncio.create_task(send_words())
        async for message in ws:
            if isinstance(message, bytes):
                if info["words_sent_at_first_audio"] is None:
                    info["words_sent_at_first_audio"] = sent
                audio += message
                events.append({"type": "<audio>", "bytes": len(message)})
            else:
                events.append(json.loads(message))
        await sender
        info["close_code"] = ws.close_code
    return events, bytes(audio), info


def segment_prompts(fake: FakeVLLM) -> list[str]:
    return [r.prompt for r in fake.requests]


async def test_llm_deltas_stream_in_and_ordered_audio_comes_out_before_the_text_ends(url: str, fake: FakeVLLM) -> None:
    words = " ".join(SENTENCES).split()
    events, audio, info = await run_session(url, {"voice": "idayu", "context": True}, words, pause=0.05)
    assert events[0]["type"] == "session.started" and events[0]["sample_rate"] == 24000
    assert events[-1]["type"] == "done" and info["close_code"] == 1000
    # the first audio arrived while the LLM was still writing
    assert info["words_sent_at_first_audio"] is not None and info["words_sent_at_first_audio"] < len(words)
    starts = [e for e in events if e["type"] == "segment.started"]
    dones = [e for e in events if e["type"] == "segment.done"]
    assert [e["text"] for e in starts] == SENTENCES == [e["text"] for e in dones]
    assert [e["index"] for e in starts] == [0, 1, 2]
    # audio of segment i lies between its started and done events
    kinds = [e["type"] for e in events]
    assert kinds[1] == "segment.started" and kinds[-2] == "segment.done"
    order = [(e["type"], e.get("index")) for e in events if e["type"] in ("segment.started", "segment.done")]
    assert order == [(t, i) for i in range(3) for t in ("segment.started", "segment.done")]
    # the audio is each segment's tokens decoded, in order: 480 samples per generated token
    prompts = segment_prompts(fake)
    assert len(prompts) == 3
    tokens = [fake.expected_tokens(p) for p in prompts]
    assert [e["speech_tokens"] for e in dones] == [len(t) for t in tokens]
    assert len(audio) == sum(len(t) for t in tokens) * 480 * 2
    codec = LocalCodec()
    expected = np.concatenate([float_to_int16(apply_fade_in(codec.one_shot(t), 120)) for t in tokens])
    got = np.frombuffer(audio, np.int16)
    assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1
    usage = events[-1]["usage"]
    assert usage["segments"] == 3 and usage["output_tokens"] == sum(len(t) for t in tokens)
    assert usage["audio_seconds"] == pytest.approx(sum(len(t) for t in tokens) / 50)


@pytest.mark.parametrize(("config", "rate", "width"), [({"sample_rate": 16000}, 16000, 2), ({"sample_rate": 8000, "encoding": "mulaw"}, 8000, 1)])
async def test_the_stream_at_another_rate_and_encoding(url: str, fake: FakeVLLM, config: dict, rate: int, width: int) -> None:
    """One resampler across the segments: the stream is the decoded segments, joined, resampled once."""
    words = " ".join(SENTENCES).split()
    events, audio, info = await run_session(url, {"voice": "idayu", "context": True, **config}, words)
    assert events[0]["type"] == "session.started" and events[0]["sample_rate"] == rate
    assert events[-1]["type"] == "done" and info["close_code"] == 1000
    tokens = [fake.expected_tokens(p) for p in segment_prompts(fake)]
    assert len(audio) == sum(len(t) for t in tokens) * 480 * rate // 24000 * width  # every token, nothing dropped
    codec = LocalCodec()
    joined = np.concatenate([apply_fade_in(codec.one_shot(t), 120) for t in tokens])
    want = float_to_int16(soxr.resample(joined, 24000, rate))
    if width == 1:
        got = sf.read(io.BytesIO(audio), samplerate=8000, channels=1, format="RAW", subtype="ULAW", dtype="int16")[0]
        assert np.corrcoef(got, want)[0, 1] > 0.999
    else:
        got = np.frombuffer(audio, np.int16)
        assert np.abs(got.astype(np.int32) - want.astype(np.int32)).max() <= 4


async def test_with_context_segment_2_is_prompted_with_segment_1s_speech(url: str, fake: FakeVLLM) -> None:
    await run_session(url, {"voice": "husein"}, " ".join(SENTENCES[:2]).split())
    first, second = segment_prompts(fake)
    assert first == speech_prompt("husein", SENTENCES[0])
    assert second == context_prompt("husein", SENTENCES[0], fake.expected_tokens(first), SENTENCES[1])
    assert speech_tokens_text(fake.expected_tokens(first)) in second


@pytest.mark.parametrize("how", ["config", "setting"])
async def test_without_context_segment_2_stands_alone(
    how: str, fake: FakeVLLM, serve_with: Callable[..., object]
) -> None:
    config = {"voice": "husein"} | ({"context": False} if how == "config" else {})
    with serve_with(**({"stream_context": False} if how == "setting" else {})) as base:
        events, _, _ = await run_session(base, config, " ".join(SENTENCES[:2]).split())
    assert events[0]["context"] is False
    first, second = segment_prompts(fake)
    assert second == speech_prompt("husein", SENTENCES[1])
    assert speech_tokens_text(fake.expected_tokens(first)[:5]) not in second


async def test_context_is_bounded_to_the_last_tokens(fake: FakeVLLM, serve_with: Callable[..., object]) -> None:
    with serve_with(stream_context_max_tokens=10) as base:
        await run_session(base, {}, " ".join(SENTENCES[:2]).split())
    first, second = segment_prompts(fake)
    kept = fake.expected_tokens(first)[-10:]
    assert speech_tokens_text(kept) + "<|im_end|>" in second
    assert speech_tokens_text(fake.expected_tokens(first)[-11:]) not in second


async def test_flush_forces_out_buffered_text(url: str, fake: FakeVLLM) -> None:
    async with websockets.connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "config", "audio_frames": "base64", "response_format": "wav"}))
        assert json.loads(await ws.recv())["type"] == "session.started"
        await ws.send(json.dumps({"type": "text", "text": "no sentence end yet"}))
        await ws.send(json.dumps({"type": "flush"}))
        started = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert started == started | {"type": "segment.started", "index": 0, "text": "no sentence end yet"}
        audio = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert audio["type"] == "audio" and audio["index"] == 0 and audio["audio"]


async def test_a_client_that_leaves_cancels_the_backend_request(fake: FakeVLLM, url: str) -> None:
    fake.rate = 20  # 5 s of tokens: still generating when the client goes
    fake.n_tokens = 100
    async with websockets.connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "config"}))
        await ws.send(json.dumps({"type": "text", "text": "Say this slowly please."}))
        await ws.send(json.dumps({"type": "close"}))
        while not isinstance(await asyncio.wait_for(ws.recv(), 10), bytes):
            pass
    assert await fake.wait_for_async(lambda: fake.requests and fake.requests[-1].end is not None, timeout=5)
    rec = fake.requests[-1]
    assert rec.cancelled and rec.tokens_sent < 100


async def test_bad_messages_get_openai_errors_and_the_session_goes_on(url: str, fake: FakeVLLM) -> None:
    async with websockets.connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "config"}))
        await ws.recv()
        await ws.send("not json")
        await ws.send(json.dumps({"type": "shout", "text": "x"}))
        await ws.send(b"\x00\x01")
        errors = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
        for err in errors:
            assert err["type"] == "error" and set(err["error"]) == {"message", "type", "param", "code"}
        assert errors[1]["error"]["param"] == "type"
        await ws.send(json.dumps({"type": "text", "text": "Still here."}))
        await ws.send(json.dumps({"type": "close"}))
        rest = [m async for m in ws]
    assert json.loads(rest[-1])["type"] == "done"


@pytest.mark.parametrize(
    ("config", "param", "code"),
    [
        ({"voice": "nobody"}, "voice", "invalid_voice"),
        ({"response_format": "ogg"}, "response_format", None),
        ({"speed": 9}, "speed", None),
        ({"colour": "red"}, "colour", None),
        ({"response_format": "opus", "sample_rate": 44100}, "sample_rate", None),
        ({"response_format": "flac", "encoding": "mulaw"}, "encoding", None),
    ],
)
async def test_a_bad_config_ends_the_session_with_a_clear_error(url: str, config: dict, param: str, code) -> None:
    async with websockets.connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "config", **config}))
        err = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1008
    assert err["type"] == "error" and err["error"]["param"] == param
    assert err["error"]["type"] == "invalid_request_error"
    if code:
        assert err["error"]["code"] == code


async def test_api_key_by_header_or_first_message(serve_with: Callable[..., object], fake: FakeVLLM) -> None:
    with serve_with(api_key="k1") as base:
        # a wrong header is refused at the handshake with an OpenAI-shaped 401
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(ws_url(base), additional_headers={"Authorization": "Bearer nope"})
        assert info.value.response.status_code == 401
        assert json.loads(info.value.response.body)["error"]["code"] == "invalid_api_key"
        # no key at all: the config message must carry it
        async with websockets.connect(ws_url(base)) as ws:
            await ws.send(json.dumps({"type": "config"}))
            err = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
        assert err["error"]["code"] == "invalid_api_key" and ws.close_code == 1008
        events, audio, _ = await run_session(base, {"api_key": "k1"}, ["Hi", "there."])
        assert events[-1]["type"] == "done" and audio
        events, audio, _ = await run_session(base, {}, ["Hi", "there."], headers={"Authorization": "Bearer k1"})
        assert events[-1]["type"] == "done" and audio
        # the HTTP endpoints still need the header
        assert httpx.get(f"{base}/v1/models").status_code == 401


async def test_a_failing_segment_reports_an_error_and_the_next_one_still_plays(
    fake: FakeVLLM, serve_with: Callable[..., object]
) -> None:
    fake.set_mode("http_error", count=1, match="first", status=500)
    text = "The first one fails. The second one works."
    with serve_with(backend_retries=0) as base:  # no resend: the segment fails (tests/faults resend it)
        events, audio, _ = await run_session(base, {}, text.split())
    err = next(e for e in events if e["type"] == "error")
    assert err["index"] == 0 and err["error"]["type"] == "api_error"
    done = [e for e in events if e["type"] == "segment.done"]
    assert [e["text"] for e in done] == ["The second one works."]
    assert len(audio) == len(fake.expected_tokens(fake.requests[-1].prompt)) * 960
    # a failed segment is no context for the next
    assert fake.requests[-1].prompt == speech_prompt("husein", "The second one works.")
    assert events[-1]["usage"]["failed_segments"] == 1


async def test_time_rule_sends_a_stalled_sentence(fake: FakeVLLM, serve_with: Callable[..., object]) -> None:
    with serve_with(stream_segment_max_wait=0.2) as base:
        async with websockets.connect(ws_url(base)) as ws:
            await ws.send(json.dumps({"type": "config"}))
            await ws.recv()
            t0 = time.monotonic()
            await ws.send(json.dumps({"type": "text", "text": "An LLM that pauses mid"}))
            started = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert time.monotonic() - t0 >= 0.15
    assert started["type"] == "segment.started" and started["text"] == "An LLM that pauses"
