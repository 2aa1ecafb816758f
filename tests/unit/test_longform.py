"""Long texts: one segment stream per request, the look-ahead and the seams, with a hand-written backend and engine.

The real `SpeechService` and `Synthesis` run; the backend is a script (each request's tokens fed by the test, or
sent at once), the engine decodes token t into `SPT` samples of value t, so the delivered audio shows exactly which
tokens were spoken, in which order, and that none was dropped at a seam.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import numpy as np
import pytest

from app.backend.vllm import SamplingParams, StreamStats
from app.codec.interface import Geometry
from app.errors import TTSError
from app.observability.metrics import ServiceMetrics
from app.prompts import context_prompt, speech_prompt, voice_clone_prompt
from app.service.requests import SpeechRequest
from app.service.segments import SegmentStream
from app.service.speech import SpeechService
from app.service.voice import Voice
from app.settings import Settings
from app.text.segmenter import TextSegmenter, whole_text_segments
from tools.harness import PassthroughNormalizer, until

SPT = 8  # samples per token (a 400 Hz "codec": 50 tokens a second, as the real one)
TEXT = (
    "Good morning, this is the bank calling. Your card was used today in Penang. "
    "Was it you? If it was not, press one now, and we will block it. Thank you, and goodbye."
)


@dataclass
class Call:
    """One backend request: its prompt, the tokens sent, whether the client closed it."""

    prompt: str
    params: SamplingParams
    feed: asyncio.Queue = field(default_factory=asyncio.Queue)
    sent: list[int] = field(default_factory=list)
    closed: bool = False
    finished: bool = False


class Script:
    """A backend: each request gets `n_tokens` tokens at once (`auto`), or what the test `send`s to it."""

    def __init__(self, *, auto: bool = True, n_tokens: int = 12, finish: dict[int, str] | None = None) -> None:
        self.auto = auto
        self.n_tokens = n_tokens
        self.finish = finish or {}  # request number -> its finish_reason (default "stop")
        self.calls: list[Call] = []

    async def count_prompt_tokens(self, prompt: str) -> None:
        return None

    async def stream_speech_tokens(
        self, prompt: str, params: SamplingParams, stats: StreamStats | None = None, *, request_id: str | None = None
    ):
        number = len(self.calls)
        call = Call(prompt, params)
        self.calls.append(call)
        assert stats is not None
        if self.auto:
            call.feed.put_nowait([1000 * (number + 1) + i for i in range(self.n_tokens)])
            call.feed.put_nowait(None)
        try:
            while (ids := await call.feed.get()) is not None:
                call.sent += ids
                stats.speech_tokens += len(ids)
                yield ids
            stats.finish_reason = self.finish.get(number, "stop")
            call.finished = True
        finally:
            call.closed = not call.finished

    def send(self, number: int, ids: list[int] | None) -> None:
        self.calls[number].feed.put_nowait(ids)


class Engine:
    """Decodes token t into SPT samples of value t; while `gate` is clear, decodes wait (but the first `free`)."""

    geometry = Geometry(sample_rate=50 * SPT, samples_per_token=SPT)

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.free = 0

    async def decode(self, tokens, *, stream=0, final=False, slack=0.0):
        if self.free > 0:
            self.free -= 1
        else:
            await self.gate.wait()
        return np.repeat(tokens.astype(np.float32), SPT)


def service_for(backend: Script, engine: Engine | None = None, **overrides: object) -> SpeechService:
    settings = Settings(
        _env_file=None,
        **{"stream_segment_max_chars": 40, "stream_first_segment_chars": 20, "fade_in_ms": 0.0} | overrides,
    )
    return SpeechService(
        backend,  # type: ignore[arg-type]
        engine or Engine(),  # type: ignore[arg-type]
        PassthroughNormalizer(),
        lambda audio, rate: audio,
        limits=settings.limits,
        generation=settings.generation,
        streaming=settings.streaming,
        max_model_len=4096,
        context_wait=1.0,
        has_encoder=False,
        metrics=ServiceMetrics(),
    )


def segments_of(text: str) -> list[str]:
    return whole_text_segments(text, max_chars=40, first_max_chars=20)


async def spoken(stream: SegmentStream) -> np.ndarray:
    parts = [chunk async for chunk in stream.audio()]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def counted(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


# -- cutting a whole text --------------------------------------------------------------------------------------


def test_a_text_that_fits_in_one_segment_is_one_segment() -> None:
    assert whole_text_segments(" Hello!  How can I help you? ", max_chars=40, first_max_chars=10) == [
        "Hello! How can I help you?"
    ]
    assert whole_text_segments("   ", max_chars=40, first_max_chars=10) == []


def test_a_long_text_is_cut_at_sentences_and_clauses_and_nothing_is_lost() -> None:
    text = TEXT + " " + "This sentence is far too long for one segment, so it is cut at a clause, then another one."
    segments = segments_of(text)
    assert len(segments) > 3
    assert len(segments[0]) <= 20 and all(len(s) <= 40 for s in segments)
    assert " ".join(segments) == " ".join(text.split())
    # cut after a sentence, or a clause in a long one; at a space only where no clause is in reach
    assert segments == [
        "Good morning,", "this is the bank calling.", "Your card was used today in Penang.", "Was it you?",
        "If it was not, press one now,", "and we will block it.", "Thank you, and goodbye.",
        "This sentence is far too long for one", "segment, so it is cut at a clause,", "then another one.",
    ]


def test_chinese_is_cut_after_its_stops_and_commas() -> None:
    text = "你好，我是客服。请问有什么可以帮您？我们的营业时间是早上九点到晚上六点，周末休息！谢谢您的来电，再见。" * 3
    segments = whole_text_segments(text, max_chars=60, first_max_chars=25)
    assert "".join(segments) == text  # no space put in, nothing lost
    assert segments[0] == "你好，我是客服。请问有什么可以帮您？"
    assert all(len(s) <= 60 and s.endswith(("。", "？", "！", "，")) for s in segments)


# -- one request, many segments --------------------------------------------------------------------------------


async def test_each_segment_is_one_backend_request_prompted_with_the_previous_one_and_every_token_is_heard() -> None:
    backend = Script()
    service = service_for(backend)
    stream = await service.prepare_speech(SpeechRequest(input=TEXT, voice="husein"))
    audio = await spoken(stream)
    segments = segments_of(TEXT)
    assert len(backend.calls) == len(segments) > 3
    assert backend.calls[0].prompt == speech_prompt("husein", segments[0])
    for i in range(1, len(segments)):
        before = backend.calls[i - 1].sent
        assert backend.calls[i].prompt == context_prompt("husein", segments[i - 1], before, segments[i])
    tokens = [t for call in backend.calls for t in call.sent]
    assert len(audio) == len(tokens) * SPT  # exactly: nothing dropped or repeated at a seam
    np.testing.assert_array_equal(audio, np.repeat(np.asarray(tokens, np.float32), SPT))
    u = stream.usage
    assert (u.segments, u.speech_tokens, u.finish_reason, u.cut_segments) == (len(segments), len(tokens), "stop", [])
    # one request in the request metrics, one generation per segment
    m = service.metrics
    assert counted(m, "tts_requests_total", endpoint="speech", outcome="completed") == 1
    assert counted(m, "tts_generations_total", finish_reason="stop") == len(segments)
    assert counted(m, "tts_time_to_first_audio_seconds_count") == 1
    assert service.admission.in_use == 0  # segments take no slot of their own: the route holds one


async def test_a_cloned_voice_prompts_every_segment_with_its_reference() -> None:
    backend = Script()
    service = service_for(backend)
    voice = Voice.clone("reference words", [7, 8, 9])
    stream = SegmentStream(service, voice, SpeechRequest(input="x").resolved(service.generation, service.streaming),
                           one_request=True, endpoint="vc")
    stream.speak(TEXT)
    audio = await spoken(stream)
    segments = segments_of(TEXT)
    assert [c.prompt for c in backend.calls] == [voice_clone_prompt("reference words", [7, 8, 9], s) for s in segments]
    assert len(audio) == sum(len(c.sent) for c in backend.calls) * SPT


async def test_the_next_segment_starts_once_the_previous_tokens_are_complete_and_no_further() -> None:
    backend, engine = Script(auto=False), Engine()
    service = service_for(backend, engine)  # STREAM_LOOKAHEAD_SEGMENTS=1
    engine.gate.clear()  # segment 0's first window is decoded (its first audio), the rest waits: still spoken
    engine.free = 1
    stream = await service.prepare_speech(SpeechRequest(input=TEXT, voice="husein"))
    reading = asyncio.ensure_future(spoken(stream))
    await until(lambda: len(backend.calls) == 1)
    tokens = list(range(1, 41))
    backend.send(0, tokens)
    await until(lambda: stream.first_audio_at is not None, what="segment 0's first audio")
    await asyncio.sleep(0.05)
    assert len(backend.calls) == 1  # its context is not known yet
    backend.send(0, None)  # segment 0's tokens are complete
    await until(lambda: len(backend.calls) == 2, what="segment 1 started while segment 0 is still spoken")
    first, second = segments_of(TEXT)[:2]
    assert backend.calls[1].prompt == context_prompt("husein", first, tokens, second)
    backend.send(1, [7, 8, 9])
    backend.send(1, None)
    await asyncio.sleep(0.05)
    assert len(backend.calls) == 2  # segment 2 waits: segment 0 (undelivered) and 1 fill the look-ahead
    backend.auto = True  # the later segments answer at once
    engine.gate.set()
    audio = await reading
    assert len(backend.calls) == len(segments_of(TEXT))
    assert len(audio) == sum(len(c.sent) for c in backend.calls) * SPT


async def test_no_lookahead_before_the_first_audio() -> None:
    """A second backend request (its prefill) must not compete with the first audio's decode: segment 1 waits
    for segment 0's first audio even when segment 0's tokens are complete before it."""
    backend, engine = Script(auto=False), Engine()
    service = service_for(backend, engine)
    engine.gate.clear()  # nothing is decoded yet
    stream = await service.prepare_speech(SpeechRequest(input=TEXT, voice="husein"))
    reading = asyncio.ensure_future(spoken(stream))
    await until(lambda: len(backend.calls) == 1)
    backend.send(0, [1, 2, 3])
    backend.send(0, None)  # tokens complete, no audio yet
    await asyncio.sleep(0.1)
    assert len(backend.calls) == 1 and stream.first_audio_at is None
    engine.gate.set()  # the first window decodes
    await until(lambda: len(backend.calls) == 2, what="segment 1 started once the first audio was out")
    assert stream.first_audio_at is not None
    backend.auto = True  # the later segments answer at once
    backend.send(1, [4, 5])
    backend.send(1, None)
    await asyncio.wait_for(reading, 10)
    assert len(backend.calls) == len(segments_of(TEXT))


async def test_without_lookahead_a_segment_starts_only_once_the_previous_one_is_delivered() -> None:
    backend, engine = Script(auto=False), Engine()
    service = service_for(backend, engine, stream_lookahead_segments=0)
    engine.gate.clear()
    stream = await service.prepare_speech(SpeechRequest(input=TEXT, voice="husein"))
    reading = asyncio.ensure_future(spoken(stream))
    await until(lambda: len(backend.calls) == 1)
    backend.send(0, [1, 2, 3])
    backend.send(0, None)
    await asyncio.sleep(0.05)
    assert len(backend.calls) == 1
    backend.auto = True
    engine.gate.set()
    await reading
    assert len(backend.calls) == len(segments_of(TEXT))


async def test_closing_a_long_request_midway_closes_every_backend_request() -> None:
    backend, engine = Script(auto=False), Engine()
    service = service_for(backend, engine)
    engine.gate.clear()
    engine.free = 1  # the first audio
    stream = await service.prepare_speech(SpeechRequest(input=TEXT, voice="husein"))
    audio = stream.audio()
    first = asyncio.ensure_future(anext(audio))
    await until(lambda: len(backend.calls) == 1)
    backend.send(0, list(range(1, 30)))
    backend.send(0, None)
    engine.gate.set()
    await first
    await asyncio.sleep(0.05)
    assert len(backend.calls) == 1  # the first audio is still with the consumer (not yet sent): nothing ahead
    more = asyncio.ensure_future(anext(audio))  # the consumer is back for more: segment 1 starts
    await until(lambda: len(backend.calls) == 2)
    backend.send(1, [1, 2])  # segment 1 is generating, ahead
    await asyncio.sleep(0.05)
    more.cancel()  # the client went away, waiting for more
    with contextlib.suppress(asyncio.CancelledError):
        await more
    await audio.aclose()
    assert backend.calls[1].closed and not backend.calls[1].finished
    assert len(backend.calls) == 2
    assert counted(service.metrics, "tts_requests_total", outcome="cancelled") == 1
    assert counted(service.metrics, "tts_generations_total", finish_reason="cancelled") == 1


async def test_a_segment_cut_at_max_tokens_is_reported() -> None:
    backend = Script(finish={1: "length"})
    service = service_for(backend)
    stream = await service.prepare_speech(SpeechRequest(input=TEXT, voice="husein", max_tokens=40))
    await spoken(stream)
    assert all(c.params.max_tokens == 40 for c in backend.calls)  # max_tokens is per segment
    assert stream.usage.cut_segments == [1] and stream.usage.finish_reason == "length"
    assert counted(service.metrics, "tts_generations_total", finish_reason="length") == 1


async def test_a_failed_later_segment_ends_the_request_after_the_audio_before_it() -> None:
    class Failing(Script):
        async def stream_speech_tokens(self, prompt, params, stats=None, *, request_id=None):
            if len(self.calls) == 2:
                self.calls.append(Call(prompt, params))
                raise TTSError("the backend broke")
            async for ids in super().stream_speech_tokens(prompt, params, stats):
                yield ids

    backend = Failing()
    service = service_for(backend)
    stream = await service.prepare_speech(SpeechRequest(input=TEXT, voice="husein"))
    got: list[np.ndarray] = []
    with pytest.raises(TTSError, match="the backend broke"):
        async for chunk in stream.audio():
            got.append(chunk)
    assert sum(len(c) for c in got) == sum(len(c.sent) for c in backend.calls[:2]) * SPT
    assert len(backend.calls) == 3  # nothing after the failed segment
    assert counted(service.metrics, "tts_requests_total", outcome="failed") == 1


async def test_a_text_with_nothing_to_speak_is_a_400_naming_its_field() -> None:
    service = service_for(Script())
    stream = await service.prepare_speech(SpeechRequest(input="!!! ...", voice="husein"))
    stream.service.text_input.normalizer = type("N", (), {"normalize": lambda self, t, m=True, lang="auto": ""})()
    with pytest.raises(TTSError, match="input has nothing to speak"):
        await spoken(stream)


async def test_a_long_text_is_cut_past_its_first_segment_only_once_the_first_audio_is_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the first audio a long text costs what one sentence costs: only its first words are cut."""
    text = " ".join([TEXT] * 20)
    segments = segments_of(text)
    pushed: list[str] = []
    push = TextSegmenter.push

    def counted_push(self: TextSegmenter, text: str, now: float) -> list[str]:
        pushed.append(text)
        return push(self, text, now)

    monkeypatch.setattr(TextSegmenter, "push", counted_push)
    backend, engine = Script(auto=False), Engine()
    service = service_for(backend, engine)
    engine.gate.clear()
    stream = await service.prepare_speech(SpeechRequest(input=text, voice="husein"))
    reading = asyncio.ensure_future(spoken(stream))
    await until(lambda: len(backend.calls) == 1)
    first = segments[0]
    # its words, the next piece's (which showed where it ends) and the word after that piece (which showed
    # where the piece ends): not the 600 words of the rest
    assert len(pushed) <= len(" ".join(segments[:2]).split()) + 1 < len(text.split()) // 20
    backend.auto = True
    backend.send(0, list(range(1, 13)))
    backend.send(0, None)
    engine.gate.set()
    audio = await asyncio.wait_for(reading, 10)
    assert "".join(pushed).split() == text.split()  # all of it, in the end
    assert [c.prompt.rsplit(": ", 1)[-1].removesuffix("<|speech_start|>") for c in backend.calls[:1]] == [first]
    assert len(backend.calls) == len(segments)
    assert len(audio) == sum(len(c.sent) for c in backend.calls) * SPT


async def test_a_first_segment_with_nothing_to_speak_lets_the_rest_be_spoken() -> None:
    class SilentStart(PassthroughNormalizer):
        def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str:
            return "" if text.startswith("Uh") else super().normalize(text, malaysian, language)

    backend = Script()
    service = service_for(backend)
    service.text_input.normalizer = SilentStart()
    text = "Uh uh uh uh uh uh. " + TEXT
    stream = await service.prepare_speech(SpeechRequest(input=text, voice="husein"))
    audio = await asyncio.wait_for(spoken(stream), 10)
    assert len(backend.calls) == len(segments_of(text)) - 1  # the silent one asked nothing of the backend
    assert len(audio) == sum(len(c.sent) for c in backend.calls) * SPT > 0
