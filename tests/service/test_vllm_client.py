"""The vLLM client against the fake vLLM: the speech id range from `/tokenize`, and the service on a backend
with or without token ids."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from app.audio.pcm import float_to_int16
from app.audio.stitch import apply_fade_in
from app.backend.vllm import SamplingParams, VLLMClient
from app.main import Components
from app.prompts import speech_prompt
from app.settings import Settings
from tools.fake_vllm import SPEECH_TOKEN_ID_BASE as BASE
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, free_port, serve


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
