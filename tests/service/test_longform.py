"""Long texts on every HTTP path and the WebSockets, end to end: a real client, the fake vLLM, the stand-in codec.

Segments are short here (60 characters, the first 25), so a paragraph is several segments: each one backend
request, prompted after the previous one's speech; the audio is every segment's tokens, nothing dropped; a
segment cut at max_tokens is reported in the header, the final SSE event and the WebSockets' final messages.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets

from app.audio.pcm import float_to_int16
from app.audio.stitch import apply_fade_in
from app.main import Components
from app.prompts import context_prompt, speech_prompt
from app.settings import Settings
from app.text.segmenter import whole_text_segments
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

TEXT = (
    "Selamat pagi, this is the bank calling about your card. It was used today in Penang, at a shop in "
    "Georgetown. Was it you? If it was not, press one now, and we will block the card at once. Thank you."
)
LONG = {"stream_segment_max_chars": 60, "stream_first_segment_chars": 25}
SEGMENTS = whole_text_segments(TEXT, max_chars=60, first_max_chars=25)


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeVLLM]:  # the conftest's `fake` hands it to each test, restored
    with FakeVLLM(n_tokens=30, rate=0) as server:
        yield server


def serving(settings_for: Callable[..., Settings], **overrides: object):
    """The service with the short segments (`LONG`) and `overrides`, the stand-in codec."""
    return serve(settings_for(**LONG | overrides), Components(codec=LocalCodec(), normalizer=PassthroughNormalizer()))


@pytest.fixture(scope="module")
def shared_url(module_settings_for: Callable[..., Settings]) -> Iterator[str]:
    with serving(module_settings_for) as url:
        yield url


@pytest.fixture
def url(shared_url: str, fake: FakeVLLM) -> str:
    return shared_url


def spoken(prompt: str) -> str:
    """The text a prompt asks to speak (its last turn; the turns before it are context)."""
    return prompt.rsplit("<|im_start|>", 1)[-1]


def prompts(fake: FakeVLLM) -> list[str]:
    return [r.body["prompt"] for r in fake.requests]


def assert_each_segment_prompted_after_the_previous(fake: FakeVLLM, voice: str = "husein") -> list[list[int]]:
    """One backend request per segment, each after the previous one's text and speech; their tokens."""
    sent = prompts(fake)
    assert len(SEGMENTS) >= 4 and len(sent) == len(SEGMENTS)
    assert sent[0] == speech_prompt(voice, SEGMENTS[0])
    tokens = [fake.expected_tokens(p) for p in sent]
    for i in range(1, len(SEGMENTS)):
        assert sent[i] == context_prompt(voice, SEGMENTS[i - 1], tokens[i - 1], SEGMENTS[i])
    return tokens


def expected_audio(tokens: list[list[int]]) -> np.ndarray:
    """Each segment decoded, its first 5 ms faded in, joined: the seams as the WebSocket's."""
    codec = LocalCodec()
    return np.concatenate([float_to_int16(apply_fade_in(codec.one_shot(t), 120)) for t in tokens])


def assert_audio(got: np.ndarray, tokens: list[list[int]]) -> None:
    assert len(got) == sum(len(t) for t in tokens) * 480  # every token of every segment, nothing dropped
    assert np.abs(got.astype(np.int32) - expected_audio(tokens).astype(np.int32)).max() <= 1


def speech(url: str, **fields: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "husein"} | fields, timeout=60)


def sse_events(resp: httpx.Response) -> list[dict]:
    return [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]


# -- every HTTP path ---------------------------------------------------------------------------------------------


def test_a_complete_response_is_every_segment_and_says_how_it_ended(url: str, fake: FakeVLLM) -> None:
    resp = speech(url, response_format="wav", stream=False)
    assert resp.status_code == 200, resp.text
    tokens = assert_each_segment_prompted_after_the_previous(fake)
    audio, rate = sf.read(io.BytesIO(resp.content), dtype="int16")
    assert rate == 24000
    assert_audio(audio, tokens)
    assert resp.headers["x-finish-reason"] == "stop" and resp.headers["x-segments"] == str(len(SEGMENTS))
    assert "x-cut-segments" not in resp.headers


def test_a_streamed_response_is_one_continuous_stream_of_every_segment(url: str, fake: FakeVLLM) -> None:
    resp = speech(url, response_format="pcm")
    assert resp.status_code == 200, resp.text
    assert_audio(np.frombuffer(resp.content, np.int16), assert_each_segment_prompted_after_the_previous(fake))


def test_sse_is_one_event_per_chunk_and_a_final_event_with_the_finish_reason(url: str, fake: FakeVLLM) -> None:
    resp = speech(url, response_format="pcm", stream_format="sse")
    assert resp.status_code == 200
    events = sse_events(resp)
    *deltas, done = events
    assert {e["type"] for e in deltas} == {"speech.audio.delta"} and done["type"] == "speech.audio.done"
    tokens = assert_each_segment_prompted_after_the_previous(fake)
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert_audio(np.frombuffer(audio, np.int16), tokens)
    assert done["finish_reason"] == "stop" and "cut_segments" not in done
    assert done["usage"]["output_tokens"] == sum(len(t) for t in tokens)


def test_a_cut_segment_is_reported_in_the_header_the_final_event_and_the_metrics(url: str, fake: FakeVLLM) -> None:
    fake.n_tokens = lambda prompt: 100 if SEGMENTS[2] in spoken(prompt) else 30  # only segment 2 runs into max_tokens
    resp = speech(url, response_format="wav", stream=False, max_tokens=50)
    assert resp.status_code == 200
    assert resp.headers["x-finish-reason"] == "length" and resp.headers["x-cut-segments"] == "2"
    assert [r.body["max_tokens"] for r in fake.requests] == [50] * len(SEGMENTS)  # max_tokens is per segment
    audio, _ = sf.read(io.BytesIO(resp.content), dtype="int16")
    assert len(audio) == (30 * (len(SEGMENTS) - 1) + 50) * 480
    done = sse_events(speech(url, response_format="pcm", stream_format="sse", max_tokens=50))[-1]
    assert done["type"] == "speech.audio.done" and done["finish_reason"] == "length" and done["cut_segments"] == [2]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'tts_generations_total{endpoint="speech",finish_reason="length"} 2.0' in metrics


def test_voice_cloning_prompts_every_segment_with_the_reference(url: str, fake: FakeVLLM) -> None:
    t = np.arange(int(2.0 * 22050)) / 22050
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), 22050, format="WAV", subtype="PCM_16")
    resp = httpx.post(
        f"{url}/v1/audio/vc",
        data={"reference_text": "I wonder if I shall ever be happy.", "generate_text": TEXT, "stream": "false",
              "response_format": "pcm"},
        files={"reference_audio": ("ref.wav", buf.getvalue(), "audio/wav")},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    sent = prompts(fake)
    assert len(sent) == len(SEGMENTS)
    reference = sent[0][: -len(f"{SEGMENTS[0]}<|speech_start|>")]
    assert reference.startswith("<|im_start|>I wonder if I shall ever be happy.<|speech_start|><|s_")
    assert sent == [f"{reference}{s}<|speech_start|>" for s in SEGMENTS]  # the same reference, every segment
    assert_audio(np.frombuffer(resp.content, np.int16), [fake.expected_tokens(p) for p in sent])
    assert resp.headers["x-finish-reason"] == "stop"


async def test_a_client_that_leaves_midway_cancels_every_backend_request(url: str, fake: FakeVLLM) -> None:
    fake.rate = 100  # 0.3 s a segment
    body = {"input": TEXT, "voice": "husein"}
    async with httpx.AsyncClient(timeout=30) as client, client.stream("POST", f"{url}/v1/audio/speech", json=body) as resp:
        assert resp.status_code == 200
        await anext(resp.aiter_bytes())
    assert await fake.wait_for_async(lambda: fake.active_streams == 0 and fake.requests, timeout=5)
    assert 1 <= len(fake.requests) < len(SEGMENTS)
    assert fake.requests[-1].cancelled  # the one generating when the client left
    assert fake.max_concurrent <= 1  # one backend stream at a time: the next starts when its context is known


def test_a_long_request_takes_one_slot_and_is_never_refused_midway(
    fake: FakeVLLM, module_settings_for: Callable[..., Settings]
) -> None:
    fake.rate = 300
    with serving(module_settings_for, max_concurrent_requests=1) as base:
        with httpx.Client(timeout=30) as client, client.stream(
            "POST", f"{base}/v1/audio/speech", json={"input": TEXT, "voice": "husein", "response_format": "pcm"}
        ) as resp:
            pieces = resp.iter_bytes()
            audio = bytearray(next(pieces))
            assert speech(base).status_code == 429  # the long one holds the only slot...
            for piece in pieces:
                audio += piece
        # ...and no segment of its own was refused
        assert len(fake.requests) == len(SEGMENTS)
        assert len(audio) == 30 * len(SEGMENTS) * 960


# -- the WebSockets' final messages ------------------------------------------------------------------------------


async def test_our_websocket_says_which_segments_were_cut(url: str, fake: FakeVLLM) -> None:
    fake.n_tokens = lambda prompt: 100 if "Georgetown" in spoken(prompt) else 20
    async with websockets.connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream") as ws:
        await ws.send(json.dumps({"type": "config", "voice": "husein", "max_tokens": 50}))
        await ws.send(json.dumps({"type": "text", "text": TEXT}))
        await ws.send(json.dumps({"type": "close"}))
        messages = [json.loads(m) async for m in ws if isinstance(m, str)]
    dones = [m for m in messages if m["type"] == "segment.done"]
    cut = [m["index"] for m in dones if m.get("finish_reason") == "length"]
    assert len(cut) == 1 and all("Georgetown" in m["text"] for m in dones if m["index"] in cut)
    assert messages[-1]["type"] == "done"
    assert messages[-1]["finish_reason"] == "length" and messages[-1]["cut_segments"] == cut


async def test_the_elevenlabs_final_message_says_when_a_segment_was_cut(
    fake: FakeVLLM, module_settings_for: Callable[..., Settings]
) -> None:
    with serving(module_settings_for, default_max_tokens=20) as base:  # the fake speaks 30 tokens: every segment is cut
        path = "/v1/text-to-speech/jenny/stream-input?model_id=eleven_turbo_v2_5&output_format=pcm_24000"
        async with websockets.connect(base.replace("http://", "ws://") + path) as ws:
            await ws.send(json.dumps({"text": " "}))
            await ws.send(json.dumps({"text": "Hello from the old protocol. It ships tomorrow. ", "flush": True}))
            await ws.send(json.dumps({"text": ""}))
            messages = [json.loads(m) async for m in ws]
    final = messages[-1]
    n = len(fake.requests)  # one backend request per segment (the segmenter's cut; 2 or more), every one cut
    assert n >= 2 and final["isFinal"] is True and final["finishReason"] == "length"
    assert final["cutSegments"] == list(range(n))
    fake.restore()
    with serving(module_settings_for) as base:  # nothing cut: the final message as ElevenLabs sends it
        async with websockets.connect(base.replace("http://", "ws://") + path) as ws:
            await ws.send(json.dumps({"text": "Hello. "}))
            await ws.send(json.dumps({"text": ""}))
            messages = [json.loads(m) async for m in ws]
    assert messages[-1] == {"isFinal": True}


def test_time_to_first_audio_of_a_long_text_waits_for_its_first_segment_only(url: str, fake: FakeVLLM) -> None:
    """The first audio of a long text comes while only its first (short) segment has been asked for."""
    fake.rate = 100
    with httpx.Client(timeout=30) as client, client.stream(
        "POST", f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "husein", "response_format": "pcm"}
    ) as resp:
        pieces = resp.iter_bytes()
        next(pieces)
        asked = prompts(fake)
        assert asked == [speech_prompt("husein", SEGMENTS[0])] and len(SEGMENTS[0]) <= 25
        for _ in pieces:
            pass
    assert len(fake.requests) == len(SEGMENTS)


async def test_two_long_requests_at_once_each_get_their_own_segments(url: str, fake: FakeVLLM) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        a, b = await asyncio.gather(
            client.post(f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "husein", "stream": False}),
            client.post(f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "idayu", "stream": False}),
        )
    assert a.status_code == b.status_code == 200
    assert len(fake.requests) == 2 * len(SEGMENTS)
    assert len(a.content) == len(b.content) == 30 * len(SEGMENTS) * 960



# -- word timings of a long reply: each segment placed where its audio is ---------------------------------------


def _segment_ends(fake: FakeVLLM) -> list[int]:
    samples = [len(fake.expected_tokens(r.body["prompt"])) * 480 for r in fake.requests]
    return [sum(samples[: k + 1]) for k in range(len(samples))]


def test_sse_sends_each_segments_timestamps_once_its_audio_is_complete(url: str, fake: FakeVLLM) -> None:
    events = sse_events(speech(url, response_format="pcm", stream_format="sse", timestamps="word"))
    stamps = [e for e in events if e["type"] == "speech.audio.timestamps"]
    ends = _segment_ends(fake)
    assert len(stamps) == len(SEGMENTS) == len(ends) > 2 and [e["index"] for e in stamps] == list(range(len(ends)))
    assert [round(e["end"] * 24000) for e in stamps] == ends  # each segment's end: its tokens' samples, exactly
    assert [e["start"] for e in stamps] == [0, *(e["end"] for e in stamps[:-1])]
    delivered = 0
    for e in events:  # a segment's timings come after all of its audio and before any of the next one's
        if e["type"] == "speech.audio.delta":
            delivered += len(base64.b64decode(e["audio"])) // 2
        elif e["type"] == "speech.audio.timestamps":
            assert delivered == ends[e["index"]]
            assert all(e["start"] <= w["start"] <= w["end"] <= e["end"] for w in e["words"])
    assert [w["word"] for e in stamps for w in e["words"]] == TEXT.split()
    assert events[-1]["type"] == "speech.audio.done"


def test_the_json_body_carries_every_segments_words_in_order(url: str, fake: FakeVLLM) -> None:
    body = speech(url, response_format="pcm", stream=False, timestamps="char").json()
    ends = _segment_ends(fake)
    assert len(ends) == len(SEGMENTS) > 2
    words = body["words"]
    assert [w["word"] for w in words] == TEXT.split() and body["text"] == " ".join(SEGMENTS)
    assert len(base64.b64decode(body["audio"])) // 2 == ends[-1] and body["audio_seconds"] == round(ends[-1] / 24000, 3)
    chars = body["characters"]
    assert "".join(c["char"] for c in chars) == body["text"]
    assert all(a["end"] <= b["start"] for a, b in zip(chars, chars[1:], strict=False))
    seams = [i for i, c in enumerate(chars) if c["char"] == " " and c["start"] == c["end"]]
    for k, end in enumerate(ends[:-1]):  # a segment's last character ends where its audio does
        assert any(chars[i]["start"] == round(end / 24000, 3) for i in seams), k


def test_elevenlabs_with_timestamps_places_every_segment(url: str, fake: FakeVLLM) -> None:
    resp = httpx.post(f"{url}/v1/text-to-speech/husein/with-timestamps?output_format=pcm_24000",
                      json={"text": TEXT}, timeout=60)  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    ends = _segment_ends(fake)
    norm = body["normalized_alignment"]
    assert len(ends) > 2 and "".join(norm["characters"]) == " ".join(SEGMENTS)
    last = norm["character_end_times_seconds"][-1]
    assert last == round(ends[-1] / 24000, 3) == round(len(base64.b64decode(body["audio_base64"])) / 2 / 24000, 3)
