"""The speech service's pieces, each alone: admission counted in the metrics, text input, reference intake,
prompts fitted into the model's context, segment streams over a stand-in service, and the token spellings."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from app.errors import InvalidRequestError, OverloadedError, PayloadTooLargeError, PromptTooLongError
from app.observability.metrics import ServiceMetrics
from app.prompts import (
    CONTROL_MARKER_RE,
    CONTROL_TOKENS,
    END_OF_TURN,
    PARTIAL_SPEECH_TOKEN_RE,
    SPEECH_TOKEN_RE,
    context_prompt,
    speech_prompt,
    speech_token,
    speech_tokens_text,
)
from app.service.admission import Admission, MeteredAdmission, Slot
from app.service.context import SpeechContext
from app.service.prompting import fit_context, segment_prompt
from app.service.references import read_reference
from app.service.requests import ResolvedGeneration
from app.service.segment_policy import PerSegment
from app.service.segments import SegmentStream
from app.service.synthesis import SynthesisJob
from app.service.text_input import TextInput, require_speech
from app.text.offsets import Mapped, carry
from app.text.options import TextOptions
from app.text.segmenter import TextSegmenter


def sample(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0


# -- admission ---------------------------------------------------------------------------------------------------


def test_metered_admission_counts_slots_in_flight_and_rejections_by_endpoint() -> None:
    metrics = ServiceMetrics()
    lane = MeteredAdmission(1, "requests", metrics)
    slot = lane.admit("vc")
    assert sample(metrics, "tts_requests_in_flight") == 1 and lane.in_use == 1
    with pytest.raises(OverloadedError):
        lane.admit("stream")
    assert sample(metrics, "tts_requests_total", endpoint="stream", format="-", outcome="rejected") == 1
    slot.release()
    slot.release()
    assert sample(metrics, "tts_requests_in_flight") == 0 and lane.in_use == 0


# -- text input --------------------------------------------------------------------------------------------------


class Upper:
    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str:
        return text.upper()


async def test_text_input_normalizes_and_strips_control_markers() -> None:
    text = TextInput(Upper(), max_chars=50)
    try:
        assert await text.normalize("hi<|im_end|>there <|s_5|>", True) == "HI THERE"
    finally:
        text.close()


def test_text_input_checks_the_length_limit() -> None:
    text = TextInput(Upper(), max_chars=5)
    try:
        text.check("12345", "input")
        with pytest.raises(InvalidRequestError) as exc:
            text.check("123456", "generate_text")
        assert exc.value.param == "generate_text" and "6 characters; the limit is 5" in exc.value.message
    finally:
        text.close()


def test_nothing_to_speak_names_its_parameter() -> None:
    assert require_speech("ok", "input") == "ok"
    with pytest.raises(InvalidRequestError) as exc:
        require_speech("", "reference_text")
    assert exc.value.message == "reference_text has nothing to speak after cleanup" and exc.value.param == "reference_text"


# -- reference intake --------------------------------------------------------------------------------------------


def wav(seconds: float, rate: int = 22_050, value: float = 0.1, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.full(int(seconds * rate), value, np.float32), rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def read(data: bytes, **kw):
    seen: list[int] = []

    def resample(audio: np.ndarray, rate: int) -> np.ndarray:
        seen.append(rate)
        return audio.mean(axis=1)

    limits = {"max_bytes": 1_000_000, "max_seconds": 5.0, **kw}
    return read_reference(data, resample_to_16k=resample, **limits), seen


def test_a_readable_clip_is_resampled_from_its_own_rate() -> None:
    audio, seen = read(wav(1.0))
    assert seen == [22_050] and audio.shape == (22_050,) and audio.dtype == np.float32


@pytest.mark.parametrize(
    ("data", "limits", "error", "message"),
    [
        (b"", {}, InvalidRequestError, "is empty"),
        (wav(1.0), {"max_bytes": 100}, PayloadTooLargeError, "the limit is 100"),
        (b"RIFF not really a wave file", {}, InvalidRequestError, "not readable audio"),
        (wav(9.0), {}, InvalidRequestError, "9.0 s; the limit is 5 s"),
        (wav(0.5, value=float("nan"), subtype="FLOAT"), {}, InvalidRequestError, "NaN or infinite"),
    ],
)
def test_unusable_clips_are_refused_with_a_reason(data: bytes, limits: dict, error: type, message: str) -> None:
    with pytest.raises(error) as exc:
        read(data, **limits)
    assert message in exc.value.message and exc.value.param == "reference_audio"


# -- prompting ---------------------------------------------------------------------------------------------------


class Counter:
    def __init__(self, answer: tuple[int, int | None] | None) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def count_prompt_tokens(self, prompt: str) -> tuple[int, int | None] | None:
        self.asked.append(prompt)
        return self.answer


def test_segment_prompt_continues_after_a_context() -> None:
    ctx = SpeechContext("before", (1, 2), "anwar")
    assert segment_prompt("anwar", "now", None) == speech_prompt("anwar", "now")
    assert segment_prompt("anwar", "now", ctx) == context_prompt("anwar", "before", (1, 2), "now")


async def test_a_prompt_that_fits_by_its_bytes_is_not_counted() -> None:
    counter = Counter((10_000, 10))
    assert await fit_context("short", 100, param="input", max_model_len=200, counter=counter) == 100
    assert counter.asked == []


async def test_max_tokens_is_capped_to_the_backends_context() -> None:
    counter = Counter((30, 100))
    assert await fit_context("x" * 150, 500, param="input", max_model_len=120, counter=counter) == 70
    assert counter.asked == ["x" * 150]


async def test_without_a_count_max_tokens_stays_as_asked() -> None:
    assert await fit_context("x" * 150, 500, param="input", max_model_len=120, counter=Counter(None)) == 500


async def test_a_prompt_that_fills_the_context_is_a_400_on_its_parameter() -> None:
    with pytest.raises(PromptTooLongError) as exc:
        await fit_context("x" * 150, 10, param="reference_audio", max_model_len=100, counter=Counter((99, None)))
    assert exc.value.param == "reference_audio" and "99 tokens" in exc.value.message


# -- token spellings ---------------------------------------------------------------------------------------------


def test_speech_tokens_are_written_and_read_in_one_spelling() -> None:
    text = speech_tokens_text([0, 7, 65_535])
    assert text == speech_token(0) + speech_token(7) + speech_token(65_535) == "<|s_0|><|s_7|><|s_65535|>"
    assert [int(m) for m in SPEECH_TOKEN_RE.findall(text)] == [0, 7, 65_535]
    for cut in range(1, len(speech_token(12))):
        assert PARTIAL_SPEECH_TOKEN_RE.search("ab" + speech_token(12)[:cut]).start() == 2
    assert PARTIAL_SPEECH_TOKEN_RE.search("ab" + speech_token(12)) is None


def test_every_control_token_is_a_marker() -> None:
    assert END_OF_TURN in CONTROL_TOKENS
    for token in (*CONTROL_TOKENS, speech_token(3)):
        assert CONTROL_MARKER_RE.fullmatch(token)
    assert CONTROL_MARKER_RE.search("a < b | c > d") is None


# -- segment streams ---------------------------------------------------------------------------------------------


class StandInService:
    """What `SegmentStream` uses of `SpeechService`: each segment's speech is the tokens 1, 2, 3."""

    streaming = SimpleNamespace(context_max_tokens=100, lookahead_segments=1)

    def __init__(self) -> None:
        self.lane = Admission(1, "requests")
        self.full = False  # every admit a 429
        self.contexts: list[SpeechContext | None] = []
        self.closed: list[str] = []
        self.usage = None  # no usage recorder (app/service/usage.py)

    def admit(self, endpoint: str) -> Slot:
        if self.full:
            raise OverloadedError("server busy", retry_after=1)
        return self.lane.admit()

    async def read(self, text: str, options: TextOptions) -> Mapped:
        out = "".join(c for c in text if c.isalnum() or c == " ").strip()
        return Mapped(out, tuple(carry(text, [(i, i + 1) for i in range(len(text))], out)))

    async def prepare_segment(self, voice, text, gen, *, context=None, param="input") -> SynthesisJob:
        self.contexts.append(context)
        return SynthesisJob(
            request_id=f"tts-{text}", prompt=text, gen=gen, voice=voice.speaker, text=text, context=context
        )

    def synthesis(self, job: SynthesisJob) -> StandInSynthesis:
        return StandInSynthesis(self, job)


class StandInSynthesis:
    """What `SegmentStream` uses of a `Synthesis`: the tokens arrive at `start()`, one chunk of audio."""

    def __init__(self, service: StandInService, job: SynthesisJob) -> None:
        self.service, self.job, self.ended = service, job, False

    def start(self) -> None:
        if not self.job.tokens:
            self.job.tokens.extend([1, 2, 3])

    async def tokens_done(self) -> bool:
        self.start()
        return True

    def cancel(self) -> None:
        pass

    async def aclose(self) -> None:
        if not self.ended:
            self.ended = True
            self.service.closed.append(self.job.text)

    async def chunks(self):
        try:
            self.start()
            self.job.samples_out += 4
            yield np.zeros(4, np.float32)
        finally:
            await self.aclose()


def segment_stream(service: StandInService, *texts: str) -> SegmentStream:
    gen = ResolvedGeneration(
        temperature=0.6, repetition_penalty=1.1, max_tokens=100, playback_speed=1.0, playback_overlap_speed=1.0, seed=None
    )
    stream = SegmentStream(service, "anwar", gen, segmenter=TextSegmenter(max_wait=None), admission=PerSegment(service.admit))
    for text in texts:
        stream.feed.push(text)
        stream.feed.flush()
    return stream


async def test_a_segment_stream_speaks_in_order_each_segment_after_the_previous_one() -> None:
    service = StandInService()
    stream = segment_stream(service, "one", "two", "!!", "three", "four")
    stream.feed.end()
    events = []
    async for event in stream.events():
        events.append((event.kind, event.index, event.text, event.normalized))
        service.full = event.kind == "done" and event.normalized == "one"  # "two" gets a 429
    assert events == [
        ("started", 0, "one", "one"), ("audio", 0, "one", "one"), ("done", 0, "one", "one"),
        ("error", 1, "two", ""),  # a 429, before its text was normalized
        # "!!": nothing to speak, so no event and no number
        ("started", 2, "three", "three"), ("audio", 2, "three", "three"), ("done", 2, "three", "three"),
        ("started", 3, "four", "four"), ("audio", 3, "four", "four"), ("done", 3, "four", "four"),
    ]
    # a failed segment breaks the chain of contexts; a spoken one is the next one's
    assert service.contexts == [None, None, SpeechContext("three", (1, 2, 3), "anwar")]
    u = stream.usage
    assert (u.segments, u.failed_segments, u.speech_tokens, u.context_tokens, u.samples) == (3, 1, 9, 3, 12)
    assert service.lane.in_use == 0 and stream.idle


async def test_closing_a_segment_stream_closes_the_segment_being_spoken() -> None:
    service = StandInService()
    stream = segment_stream(service, "one", "two")
    events = stream.events()
    async for event in events:
        if event.kind == "audio":
            break
    await events.aclose()
    assert service.closed == ["one"] and service.lane.in_use == 0
