"""Long texts against the real vLLM dev backend: a ~4,000-character Malay and English reply, segment by segment.

The service runs in this process, so each backend request's prompt, tokens and finish reason are recorded at the
client (the real `VLLMClient`, the real vLLM, the tiny random model and the tiny codec). Checked: one backend request
per segment, each later prompt carrying the previous segment's text and speech tokens, every token of every segment
delivered as 480 samples, and the first audio coming while only the first (short) segment was asked for. The time
to first audio beside a one-sentence request's is printed, not asserted (a timing on a shared CPU box; the client
shares this process's GIL): `python -m benchmarks.longform_ttfa` measures it, with `tts-api` in its own process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.prompts import context_prompt, speech_prompt
from app.settings import Settings
from app.text.segmenter import whole_text_segments
from tools.harness import serve_app
from tools.long_texts import ENGLISH, MALAY, long_text

REPO = Path(__file__).resolve().parents[2]

@dataclass
class Call:
    prompt: str
    max_tokens: int
    opened_at: float
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    ended_at: float = 0.0


@pytest.fixture(scope="module")
def served(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Call]]]:
    codec = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny"))
    if not (codec / "pytorch_model.bin").exists():
        from app.codec.checkpoint import make_checkpoint

        codec = tmp_path_factory.mktemp("codec-tiny")
        make_checkpoint(codec, size="tiny", with_encoder=True)
    settings = Settings(
        _env_file=None, tts_api=vllm_url, codec_model=str(codec), semantic_model=str(codec / "semantic"),
        codec_threads=1, dynamic_batching=True, max_batch_size=8,
    )
    calls: list[Call] = []
    with serve_app(settings) as (url, app):
        backend = app.state.service.backend
        original = backend.stream_speech_tokens

        async def recorded(prompt, params, stats=None, *, request_id=None):  # the real client's stream, each request written down
            call = Call(prompt, params.max_tokens, time.perf_counter())
            calls.append(call)
            try:
                async for ids in original(prompt, params, stats, request_id=request_id):
                    call.tokens += ids
                    yield ids
            finally:
                call.finish_reason = stats.finish_reason if stats is not None else None
                call.ended_at = time.perf_counter()

        backend.stream_speech_tokens = recorded
        yield url, calls


def normalized(url: str, text: str, language: str) -> str:
    r = httpx.post(f"{url}/v1/audio/normalize", json={"input": text, "language": language}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["normalized"]


def first_audio_and_all(url: str, body: dict) -> tuple[float, bytes, httpx.Headers]:
    started = time.perf_counter()
    ttfa = None
    audio = bytearray()
    with httpx.Client(timeout=600) as client, client.stream("POST", f"{url}/v1/audio/speech", json=body) as resp:
        assert resp.status_code == 200, resp.read()
        for piece in resp.iter_bytes():
            if ttfa is None and piece:
                ttfa = time.perf_counter() - started
            audio += piece
        headers = resp.headers
    assert ttfa is not None
    return ttfa, bytes(audio), headers


BODY = {"voice": "husein", "response_format": "pcm", "max_tokens": 40, "seed": 7, "temperature": 0.7}


@pytest.mark.parametrize(("language", "sentences"), [("ms", MALAY), ("en", ENGLISH)])
def test_a_4000_character_reply_is_spoken_segment_by_segment(
    served: tuple[str, list[Call]], language: str, sentences: list[str]
) -> None:
    url, calls = served
    text = long_text(sentences)
    assert 3800 <= len(text) <= 4096
    segments = whole_text_segments(text, max_chars=250, first_max_chars=100)  # the default segment sizes

    # a one-sentence request: its time to first audio, to compare with
    del calls[:]
    one_ttfa, one_audio, _ = first_audio_and_all(url, BODY | {"input": segments[0], "language": language})
    assert len(calls) == 1 and len(one_audio) == len(calls[0].tokens) * 960

    del calls[:]
    started = time.perf_counter()
    ttfa, audio, headers = first_audio_and_all(url, BODY | {"input": text, "language": language})
    elapsed = time.perf_counter() - started
    first_audio_at = started + ttfa

    # one backend request per segment, in order, each prompted after the previous one's text and speech
    assert len(calls) == len(segments) > 15
    spoken = [c.prompt.rsplit("<|im_start|>husein: ", 1)[-1].removesuffix("<|speech_start|>") for c in calls]
    assert spoken == [normalized(url, s, language) for s in segments]
    assert calls[0].prompt == speech_prompt("husein", spoken[0])
    for i in range(1, len(calls)):
        assert calls[i].prompt == context_prompt("husein", spoken[i - 1], calls[i - 1].tokens[-250:], spoken[i])
    assert all(c.max_tokens <= 40 for c in calls)  # max_tokens per segment

    # every token of every segment, 480 samples each (16-bit pcm: 960 bytes)
    assert len(audio) == sum(len(c.tokens) for c in calls) * 960

    # each segment was asked for once the previous one's tokens were complete (its context), never before
    assert all(calls[i].opened_at >= calls[i - 1].ended_at for i in range(1, len(calls)))
    # the first audio waited for the first (short) segment only: at most the look-ahead's one more was asked for
    # by then (segment 1 may start as soon as segment 0's tokens are complete; segment 2 only once 0 is delivered)
    assert len(segments[0]) <= 100 and 1 <= sum(c.opened_at <= first_audio_at for c in calls) <= 2
    cut = [i for i, c in enumerate(calls) if c.finish_reason == "length"]
    print(
        f"\n{language}: {len(text)} chars, {len(calls)} segments, {sum(len(c.tokens) for c in calls)} speech tokens, "
        f"{len(audio) / 2 / 24000:.2f} s audio in {elapsed:.2f} s; ttfa {ttfa * 1e3:.0f} ms "
        f"(one sentence: {one_ttfa * 1e3:.0f} ms); requests opened before the first audio: "
        f"{sum(c.opened_at <= first_audio_at for c in calls)}; cut at max_tokens: {len(cut)} segments; "
        f"tokens per segment {[len(c.tokens) for c in calls]}"
    )
    assert "x-finish-reason" not in headers  # streamed: its headers were sent before the end


def test_a_complete_long_response_says_which_segments_were_cut(served: tuple[str, list[Call]]) -> None:
    url, calls = served
    del calls[:]
    text = long_text(ENGLISH, 1200)
    r = httpx.post(
        f"{url}/v1/audio/speech", json=BODY | {"input": text, "stream": False, "max_tokens": 20}, timeout=600
    )
    assert r.status_code == 200, r.text
    cut = [i for i, c in enumerate(calls) if c.finish_reason == "length"]
    assert r.headers["x-finish-reason"] == ("length" if cut else "stop")
    assert r.headers.get("x-cut-segments", "") == ",".join(map(str, cut))
    assert int(r.headers["x-segments"]) == len(calls)
    assert len(r.content) == sum(len(c.tokens) for c in calls) * 960
    print(f"\ncomplete: {len(calls)} segments, {len(cut)} cut at max_tokens=20: X-Cut-Segments {r.headers.get('x-cut-segments')}")
