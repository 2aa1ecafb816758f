"""The hot-path reader of vLLM's stream (token ids or text), and the service on a backend without token ids."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from app.audio.pcm import float_to_int16
from app.audio.stitch import apply_fade_in
from app.backend.sse import BackendStreamError, StreamFormatError
from app.backend.vllm import EventReader, StreamStats, VLLMClient
from app.env import Settings
from app.main import Components
from app.prompts import speech_prompt
from tools.fake_vllm import EOS_TOKEN_ID, SPEECH_TOKEN_ID_BASE, FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

BASE = SPEECH_TOKEN_ID_BASE


def event(text: str = "", ids: list[int] | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    choice: dict = {"index": 0, "text": text, "finish_reason": finish}
    if ids is not None:
        choice["token_ids"] = ids
    return f"data: {json.dumps({'choices': [choice], 'usage': usage})}\n\n".encode()


def test_token_ids_map_to_codes_and_other_ids_are_skipped() -> None:
    reader, stats = EventReader(BASE), StreamStats()
    data = event("ignored text", [BASE + 5, BASE + 65535, 42, EOS_TOKEN_ID], finish="stop") + b"data: [DONE]\n\n"
    assert reader.feed(data, stats) == [5, 65535]
    assert reader.done and stats.finish_reason == "stop"


def test_events_split_anywhere_across_chunks() -> None:
    stream = event(ids=[BASE + 1, BASE + 2]) + event(ids=[BASE + 3], usage={"prompt_tokens": 7}) + b"data: [DONE]\n\n"
    for cut in range(1, len(stream)):
        reader, stats = EventReader(BASE), StreamStats()
        got = reader.feed(stream[:cut], stats) + reader.feed(stream[cut:], stats)
        assert got == [1, 2, 3] and reader.done and stats.prompt_tokens == 7


def test_without_a_known_id_range_the_text_is_parsed() -> None:
    reader, stats = EventReader(None), StreamStats()
    got = reader.feed(event("<|s_7|><|s_1", [BASE + 7, BASE + 12]) + event("2|>", []), stats)
    assert got == [7, 12]  # a token split across two events' text


def test_an_event_without_token_ids_falls_back_to_its_text() -> None:
    reader = EventReader(BASE)
    assert reader.feed(event("<|s_9|>"), StreamStats()) == [9]


@pytest.mark.parametrize(
    ("bad", "error"), [(b'data: {"error": {"message": "boom"}}\n\n', BackendStreamError), (b"data: {oops\n\n", StreamFormatError)]
)
def test_an_error_event_keeps_the_tokens_before_it(bad: bytes, error: type) -> None:
    reader = EventReader(BASE)
    assert reader.feed(event(ids=[BASE + 1, BASE + 2]) + bad + event(ids=[BASE + 3]), StreamStats()) == [1, 2]
    assert isinstance(reader.error, error) and reader.done


async def test_the_id_range_is_learned_from_tokenize(fake: FakeVLLM) -> None:
    client = VLLMClient(fake.url, "TTS-model")
    try:
        await client.start()
        assert client.speech_id_base == BASE
        fake.token_ids = False  # an older backend: no contiguous ids, no token ids in events
        assert await client.learn_speech_ids() is None
    finally:
        await client.aclose()


@pytest.mark.parametrize("token_ids", [True, False])
def test_the_service_gives_the_same_audio_with_or_without_token_ids(
    settings_for: Callable[..., Settings], fake: FakeVLLM, token_ids: bool
) -> None:
    fake.token_ids = token_ids
    fake.tokens_per_event = 5
    fake.split_tokens = True  # text pieces cut inside tokens: only the text path has to reassemble them
    codec = LocalCodec()
    with serve(settings_for(), Components(codec=codec, normalizer=PassthroughNormalizer())) as url:
        r = httpx.post(f"{url}/v1/audio/speech", json={"input": "same audio", "response_format": "pcm"}, timeout=30)
    assert r.status_code == 200
    body = fake.requests[-1].body
    assert body["return_token_ids"] is True
    tokens = fake.expected_tokens(speech_prompt("husein", "same audio"))
    assert r.content == float_to_int16(apply_fade_in(codec.one_shot(tokens), 120)).tobytes()


async def test_a_backend_that_starts_after_us_is_asked_again_on_the_first_stream() -> None:
    from app.backend.vllm import SamplingParams
    from tools.harness import free_port

    port = free_port()
    client = VLLMClient(f"http://127.0.0.1:{port}", "TTS-model", connect_timeout=1.0)
    try:
        await client.start()  # nobody listens yet
        assert client.speech_id_base is None
        with FakeVLLM(port=port, n_tokens=12) as fake:
            got = [t async for ids in client.stream_speech_tokens("hello", SamplingParams(50, 0.6, 1.15)) for t in ids]
            assert client.speech_id_base == BASE  # learned on the way
            assert got == fake.expected_tokens("hello")
            assert fake.requests[-1].body["return_token_ids"] is True
    finally:
        await client.aclose()
