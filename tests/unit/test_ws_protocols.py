"""The WebSocket protocol adapters alone (no server): client messages -> commands, session events -> messages."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from app.api.protocols.adapter import (
    Audio,
    Auth,
    CancelContext,
    CloseSocket,
    ContextFinal,
    ContextStarted,
    EndContext,
    Flush,
    KeepAlive,
    Open,
    Rejected,
    Segment,
    SessionEnded,
    Text,
)
from app.api.protocols.elevenlabs import ElevenLabsProtocol, Options
from app.api.protocols.speech_stream import SpeechStreamProtocol
from app.audio.output import OutputSpec
from app.audio.registry import elevenlabs_format
from app.errors import AuthenticationError, BackendError, InvalidRequestError
from app.service.context import SpeechContext
from app.service.requests import GenerationFields
from app.service.segment_policy import StreamUsage
from app.service.segments import SegmentEvent, SegmentStream
from app.service.synthesis import SynthesisJob
from app.service.voice import Voice
from app.settings import Settings
from app.text.dictionary import Dictionary, Rule


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, stream_idle_timeout=7, max_input_chars=100)


HUSEIN = Voice.builtin("husein")


async def resolve(name: str | None) -> Voice:
    if name not in (None, "husein"):
        raise InvalidRequestError(f"unknown voice {name!r}", param="voice", code="invalid_voice")
    return HUSEIN


async def collect(commands: AsyncIterator) -> list:
    return [c async for c in commands]


def ours(settings: Settings, config: dict | None = None) -> SpeechStreamProtocol:
    p = SpeechStreamProtocol(settings.generation, settings.streaming, settings.max_input_chars, resolve)
    if config is not None:
        asyncio.run(collect(p.parse({"type": "config", **config}, (), closing=False)))
    return p


def eleven(settings: Settings, *, multi: bool, output_format: str = "pcm_24000") -> ElevenLabsProtocol:
    opts = Options(HUSEIN, "eleven_turbo_v2_5", True, 20.0, elevenlabs_format(output_format))
    return ElevenLabsProtocol(settings.generation, settings.streaming, opts, multi=multi)


def parse(p, message: dict, contexts=("default",), closing: bool = False) -> list:
    return asyncio.run(collect(p.parse(message, contexts, closing=closing)))


# -- our protocol: messages -> commands ------------------------------------------------------------


def test_ours_config_authorizes_then_opens_the_one_context(settings: Settings) -> None:
    p = ours(settings)
    assert p.awaiting_config and p.idle_timeout == 7 and p.pending_text_limit == 400
    auth, open_ = parse(p, {"type": "config", "api_key": "k", "speed": 1.5, "language": "ms", "context": False}, ())
    assert auth == Auth("k")
    assert isinstance(open_, Open) and open_.context == "default" and open_.voice == HUSEIN
    assert (open_.output.speed, open_.text.language, open_.use_context) == (1.5, "ms", False)
    assert not p.awaiting_config


def test_ours_first_message_must_be_a_valid_config(settings: Settings) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse(ours(settings), {"type": "text", "text": "hi"}, ())
    assert info.value.param == "type"
    with pytest.raises(InvalidRequestError) as info:
        parse(ours(settings), {"type": "config", "speed": 9}, ())
    assert info.value.param == "speed" and info.value.message.startswith("speed: ")
    p = ours(settings)

    async def first_then_error() -> tuple[object, InvalidRequestError]:
        commands = p.parse({"type": "config", "voice": "nobody"}, (), closing=False)
        first = await anext(commands)
        with pytest.raises(InvalidRequestError) as info:
            await anext(commands)
        return first, info.value

    first, error = asyncio.run(first_then_error())
    assert first == Auth(None)  # the key is checked before the voice is looked up
    assert error.code == "invalid_voice" and p.awaiting_config


def test_ours_text_flush_close(settings: Settings) -> None:
    p = ours(settings, {})
    assert parse(p, {"type": "text", "text": "Hi "}) == [Text("default", "Hi ")]
    assert parse(p, {"type": "text", "text": "there.", "flush": True}) == [Text("default", "there."), Flush("default")]
    assert parse(p, {"type": "flush"}) == [Flush("default")]
    assert parse(p, {"type": "close"}) == [CloseSocket()]
    with pytest.raises(InvalidRequestError) as info:
        parse(p, {"type": "text", "text": "late"})
    assert info.value.code == "closed"


@pytest.mark.parametrize(
    ("message", "param", "code"),
    [
        ({"type": "text", "text": 3}, "text", None),
        ({"type": "config"}, "type", None),
        ({"type": "speak"}, "type", "invalid_message"),
    ],
)
def test_ours_refuses_bad_messages(settings: Settings, message: dict, param: str, code: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse(ours(settings, {}), message)
    assert (info.value.param, info.value.code) == (param, code)


def test_ours_idle_errors(settings: Settings) -> None:
    assert ours(settings).idle_error().message == "no config message received"
    err = ours(settings, {}).idle_error()
    assert err.code == "idle_timeout" and err.message == "no message for 7 s; session closed"


# -- our protocol: events -> messages --------------------------------------------------------------


def job(settings: Settings) -> SynthesisJob:
    gen = GenerationFields().resolved(settings.generation, settings.streaming)
    return SynthesisJob("r", "p", gen, tokens=[1, 2, 3], samples_out=12_000, context=SpeechContext("a", (4, 5)))


def test_ours_renders_every_event(settings: Settings) -> None:
    p = ours(settings, {"response_format": "mp3"})
    service = SimpleNamespace(streaming=settings.streaming)  # all a SegmentStream reads before it streams
    stream = SegmentStream(
        service, HUSEIN, GenerationFields().resolved(settings.generation, settings.streaming), OutputSpec("mp3"),
        use_context=True,
    )
    assert p.render(ContextStarted("tts-ws-1", "default", stream, 24_000)) == {
        "type": "session.started",
        "id": "tts-ws-1",
        "voice": "husein",
        "response_format": "mp3",
        "sample_rate": 24_000,
        "audio_frames": "binary",
        "context": True,
    }
    j = job(settings)
    started = p.render(Segment("default", SegmentEvent("started", 0, "Hi.", "hi.", job=j)))
    assert started == {"type": "segment.started", "index": 0, "text": "Hi.", "normalized": "hi.", "context_tokens": 2}
    done = p.render(Segment("default", SegmentEvent("done", 0, "Hi.", "hi.", job=j)))
    assert done == {"type": "segment.done", "index": 0, "text": "Hi.", "speech_tokens": 3, "audio_seconds": 0.5}
    failed = p.render(Segment("default", SegmentEvent("error", 1, "Oops.", error=BackendError("boom"))))
    assert failed["type"] == "error" and failed["index"] == 1 and failed["text"] == "Oops."
    generic = "the TTS backend failed; see the service's log"  # "boom" is only logged
    assert failed["error"] == {"message": generic, "type": "api_error", "param": None, "code": "backend_error"}
    assert p.render(Audio("default", b"\x01\x02", 0)) == b"\x01\x02"
    assert p.render(ContextFinal("default", StreamUsage(segments=1)))["type"] == "done"
    rejected = p.render(Rejected(InvalidRequestError("text must be a string", param="text"), None))
    assert rejected["index"] is None and rejected["error"]["param"] == "text"
    ended = p.render(SessionEnded(AuthenticationError("no key")))
    assert "index" not in ended and ended["error"]["code"] == "invalid_api_key"


def test_ours_base64_audio_frames(settings: Settings) -> None:
    p = ours(settings, {"audio_frames": "base64"})
    assert p.render(Audio("default", b"\x01\x02", 3)) == {"type": "audio", "index": 3, "audio": "AQI="}
    assert p.render(Audio("default", b"\x01", None))["index"] is None


# -- ElevenLabs: messages -> commands --------------------------------------------------------------


def test_eleven_every_message_carries_its_key_first(settings: Settings) -> None:
    p = eleven(settings, multi=True)
    assert parse(p, {"text": " ", "xi_api_key": "k"}, ())[0] == Auth("k")
    assert parse(p, {"text": " ", "authorization": "Bearer k2"}, ())[0] == Auth("k2")
    assert parse(p, {"text": " "}, ())[0] == Auth(None)


def test_eleven_single_context(settings: Settings) -> None:
    p = eleven(settings, multi=False)
    assert parse(p, {"text": ""}, ())[1:] == [KeepAlive()]  # no context yet: not an end, nothing to open
    (open_,) = parse(p, {"text": " "}, ())[1:]  # ElevenLabs' first message opens the context, speaks nothing
    assert isinstance(open_, Open)
    _, open_, text, flush = parse(p, {"text": "Hello ", "voice_settings": {"speed": 1.2}, "flush": True}, ())
    assert isinstance(open_, Open) and open_.context == "default" and open_.output.speed == 1.2
    assert open_.output.format == "pcm" and open_.text.normalize_malaysian is True
    assert (text, flush) == (Text("default", "Hello "), Flush("default"))
    assert parse(p, {"text": "world.", "try_trigger_generation": True})[1:] == [
        Text("default", "world."),
        Flush("default"),
    ]
    assert parse(p, {"text": " "})[1:] == []  # whitespace is not spoken
    assert parse(p, {"text": ""})[1:] == [CloseSocket()]  # an empty text ends the input
    assert p.context_of({"context_id": "x"}) == "default"


@pytest.mark.parametrize(
    ("output_format", "fmt", "rate", "encoding", "bit_rate"),
    [
        ("pcm_24000", "pcm", 24000, "s16le", None),
        ("pcm_8000", "pcm", 8000, "s16le", None),
        ("ulaw_8000", "pcm", 8000, "mulaw", None),
        ("alaw_8000", "pcm", 8000, "alaw", None),
        ("mp3_22050_32", "mp3", 22050, "s16le", 32_000),
        ("opus_48000_128", "opus", 48000, "s16le", 128_000),
    ],
)
def test_eleven_opens_contexts_in_the_output_format(
    settings: Settings, output_format: str, fmt: str, rate: int, encoding: str, bit_rate: int | None
) -> None:
    p = eleven(settings, multi=True, output_format=output_format)
    _, open_, _ = parse(p, {"text": "Hello ", "context_id": "a"}, ())
    assert (open_.output.format, open_.output.rate, open_.output.encoding) == (fmt, rate, encoding)
    assert open_.output.bit_rate == bit_rate


def test_ours_config_asks_for_a_rate_and_encoding(settings: Settings) -> None:
    p = ours(settings)
    _, open_ = parse(p, {"type": "config", "sample_rate": 8000, "encoding": "alaw"}, ())
    assert (open_.output.rate, open_.output.encoding, open_.output.bit_rate) == (8000, "alaw", None)


def test_eleven_multi_contexts(settings: Settings) -> None:
    p = eleven(settings, multi=True)
    assert p.context_of({"context_id": "a"}) == "a" and p.context_of({"contextId": "b"}) == "b"
    assert p.context_of({}) == "default"
    cmds = parse(p, {"text": "Hi.", "context_id": "a"}, ())
    assert isinstance(cmds[1], Open) and cmds[1].context == "a" and cmds[2] == Text("a", "Hi.")
    assert parse(p, {"text": "More.", "context_id": "a"}, ("a",))[1:] == [Text("a", "More.")]
    assert parse(p, {"text": "", "context_id": "a"}, ("a",))[1:] == []  # not an end in multi-stream
    # text after the last flush: an interrupted reply, stopped now (ElevenLabs: only a flushed context goes on)
    assert parse(p, {"close_context": True, "context_id": "a"}, ("a",))[1:] == [CancelContext("a")]
    assert parse(p, {"text": "Next.", "context_id": "c"}, ())[2:] == [Text("c", "Next.")]
    assert parse(p, {"text": "", "context_id": "c", "flush": True}, ("c",))[1:] == [Flush("c")]
    assert parse(p, {"close_context": True, "context_id": "c"}, ("c",))[1:] == [EndContext("c")]
    # a second close_context (an interruption after the reply's end) stops it too
    assert parse(p, {"close_context": True, "context_id": "c"}, ("c",))[1:] == [CancelContext("c")]
    assert parse(p, {"close_socket": True}, ("a",))[1:] == [CloseSocket()]
    assert parse(p, {"text": "Late.", "context_id": "b"}, ("a",), closing=True)[1:] == [KeepAlive()]


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"text": 5}, "text"),
        ({"text": "Hi", "pronunciation_dictionary_locators": [{"pronunciation_dictionary_id": "d"}]}, None),  # no store
        ({"text": "Hi", "voice_settings": "fast"}, "voice_settings"),
        ({"text": "Hi", "voice_settings": {"speed": 9}}, "voice_settings.speed"),
    ],
)
def test_eleven_refuses_what_it_does_not_support(settings: Settings, message: dict, param: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse(eleven(settings, multi=True), message, ())
    assert info.value.param == (param or "pronunciation_dictionary_locators")
    assert info.value.message.startswith(info.value.param)


def test_eleven_reads_a_context_with_the_dictionaries_of_its_first_message(settings: Settings) -> None:
    """`pronunciation_dictionary_locators` in the message that opens a context: resolved (the caller's tenant's),
    that context's text read with them; in a later message of an open context, refused."""
    brands = Dictionary("d", "v1", (Rule("KL", alias="Kuala Lumpur"),))
    asked: list = []

    async def resolve(locators: list) -> tuple[Dictionary, ...]:
        asked.append([(loc.pronunciation_dictionary_id, loc.version_id) for loc in locators])
        return (brands,)

    opts = Options(HUSEIN, "eleven_turbo_v2_5", True, 20.0, elevenlabs_format("pcm_24000"))
    p = ElevenLabsProtocol(settings.generation, settings.streaming, opts, multi=True, dictionaries=resolve)
    locator = {"pronunciation_dictionary_id": "d", "version_id": None}
    commands = parse(p, {"text": " ", "context_id": "a", "pronunciation_dictionary_locators": [locator]}, ())
    opened = [c for c in commands if isinstance(c, Open)]
    assert asked == [[("d", None)]] and [o.text.dictionaries for o in opened] == [(brands,)]
    plain = [c for c in parse(p, {"text": " ", "context_id": "b"}, ("a",)) if isinstance(c, Open)]
    assert [o.text.dictionaries for o in plain] == [()]  # another context: none
    with pytest.raises(InvalidRequestError) as info:
        parse(p, {"text": "Hi", "context_id": "a", "pronunciation_dictionary_locators": [locator]}, ("a", "b"))
    assert info.value.param == "pronunciation_dictionary_locators"


@pytest.mark.parametrize(
    ("field", "value"),
    [("context_id", {"a": 1}), ("contextId", ["c"]), ("flush", "yes"), ("close_context", 1), ("close_socket", "y"),
     ("try_trigger_generation", "y"), ("generation_config", 7), ("xi_api_key", 5), ("voice_settings", [1])],
)  # fmt: skip
def test_eleven_a_field_of_the_wrong_type_is_an_invalid_message(settings: Settings, field: str, value: object) -> None:
    p = eleven(settings, multi=True)
    message = {"text": "Hi", field: value}
    assert p.context_of(message) in ("default", None)  # never the client's object (the session hashes it)
    with pytest.raises(InvalidRequestError) as info:
        parse(p, message, ())
    assert (info.value.param, info.value.code) == (field, "invalid_message")


def test_eleven_looks_the_voice_up_only_after_the_key(settings: Settings) -> None:
    asked: list[str] = []

    async def voices(name: str, param: str = "voice") -> Voice:
        asked.append(name)
        return await resolve(name)

    opts = Options(None, "m", True, 20.0, elevenlabs_format("pcm_24000"), voice_id="husein")
    p = ElevenLabsProtocol(settings.generation, settings.streaming, opts, multi=True, voices=voices)
    assert p.awaiting_config and "voice=husein" in p.describe()

    async def first() -> object:
        return await anext(p.parse({"text": "Hi", "context_id": "a"}, (), closing=False))

    assert asyncio.run(first()) == Auth(None) and asked == []  # the key is checked before anything is looked up
    auth, open_, text = parse(p, {"text": "Hi", "context_id": "a"}, ())
    assert asked == ["husein"] and open_.voice == HUSEIN and not p.awaiting_config
    parse(p, {"text": "More", "context_id": "a"}, ("a",))
    assert asked == ["husein"]  # once
    unresolved = Options(None, "m", True, 20.0, elevenlabs_format("pcm_24000"), voice_id="husein")
    with pytest.raises(ValueError):  # neither a voice nor how to look it up
        ElevenLabsProtocol(settings.generation, settings.streaming, unresolved, multi=True)


# -- ElevenLabs: events -> messages ----------------------------------------------------------------


def test_eleven_renders_audio_finals_and_errors(settings: Settings) -> None:
    multi, single = eleven(settings, multi=True), eleven(settings, multi=False)
    audio = multi.render(Audio("a", b"\x01\x02", 0))
    assert audio == {
        "audio": "AQI=",
        "isFinal": False,
        "normalizedAlignment": None,
        "alignment": None,
        "contextId": "a",
    }
    assert base64.b64decode(single.render(Audio("default", b"\x01\x02", 0))["audio"]) == b"\x01\x02"
    assert "contextId" not in single.render(Audio("default", b"\x01", 0))
    assert multi.render(ContextFinal("a", StreamUsage())) == {"isFinal": True, "contextId": "a"}
    assert single.render(ContextFinal("default", StreamUsage())) == {"isFinal": True}
    err = multi.render(Segment("a", SegmentEvent("error", 0, "x", error=BackendError("boom"))))
    generic = "the TTS backend failed; see the service's log"  # "boom" is only logged
    assert err == {"error": generic, "message": generic, "code": "backend_error", "contextId": "a"}
    rejected = multi.render(Rejected(InvalidRequestError("bad", param="text"), "b"))
    assert rejected == {"error": "bad", "message": "bad", "code": "invalid_request_error", "contextId": "b"}
    ended = multi.render(SessionEnded(AuthenticationError("no key")))
    assert ended == {"error": "no key", "message": "no key", "code": "invalid_api_key"}
    assert multi.idle_error() is None  # inactivity closes the socket normally


def test_eleven_sends_nothing_for_segment_starts_and_ends(settings: Settings) -> None:
    p = eleven(settings, multi=True)
    j = job(settings)
    assert p.render(Segment("a", SegmentEvent("started", 0, "Hi.", job=j))) is None
    assert p.render(Segment("a", SegmentEvent("done", 0, "Hi.", job=j))) is None
