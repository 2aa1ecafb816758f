"""The format registry: the one list of formats, rates, encodings and ElevenLabs names every path reads."""

from __future__ import annotations

import dataclasses
from typing import get_args

import pytest

from app.audio import formats
from app.audio.registry import (
    CONTENT_TYPES,
    ELEVENLABS_NAMES,
    FORMATS,
    OPENAI_NAMES,
    S16LE,
    OutputFormat,
    UnsupportedFormat,
    elevenlabs_format,
    output_format,
)
from app.service.requests import AudioFormat, SpeechRequest, StreamConfig


def test_openai_names_in_documented_order():
    assert OPENAI_NAMES == ("pcm", "wav", "mp3", "opus", "aac", "flac")
    assert get_args(AudioFormat) == OPENAI_NAMES
    for model in (SpeechRequest, StreamConfig):
        assert model.model_json_schema()["properties"]["response_format"]["enum"] == list(OPENAI_NAMES)


def test_every_entry_names_its_encoder_and_media_type():
    for name, fmt in FORMATS.items():
        assert fmt.name == name and issubclass(fmt.encoder, formats.StreamEncoder)
        assert CONTENT_TYPES[name] == fmt.content_type and fmt.content_type.startswith("audio/")
        assert fmt.encodings == (S16LE,) and fmt.rates == (24_000,)  # today's offer; telephony opens more
    assert len(set(CONTENT_TYPES.values())) == len(FORMATS)
    assert [n for n, f in FORMATS.items() if f.inline] == ["pcm", "wav"]


def test_unknown_openai_name_lists_the_allowed_ones():
    with pytest.raises(UnsupportedFormat, match="'ogg'.*pcm, wav, mp3, opus, aac, flac") as exc:
        output_format("ogg")
    assert exc.value.accepted == OPENAI_NAMES
    assert isinstance(exc.value, ValueError)


def test_elevenlabs_pcm_24000():
    fmt, rate, encoding = elevenlabs_format("pcm_24000")
    assert fmt is FORMATS["pcm"] and rate == 24_000 and encoding is S16LE
    assert ELEVENLABS_NAMES == ("pcm_24000",)


@pytest.mark.parametrize("name", ["mp3_44100_128", "pcm_16000", "ulaw_8000", "PCM_24000", "", None])
def test_elevenlabs_names_not_offered_list_the_accepted_ones(name):
    with pytest.raises(UnsupportedFormat) as exc:
        elevenlabs_format(name)
    assert str(exc.value) == f"output_format {name!r} is not supported; accepted: pcm_24000"
    assert exc.value.accepted == ("pcm_24000",)


def test_rates_and_encodings_are_checked():
    pcm = FORMATS["pcm"]
    assert pcm.check_rate(24_000) == 24_000 and pcm.encoding() is S16LE and pcm.encoding("s16le") is S16LE
    with pytest.raises(UnsupportedFormat, match="24000 Hz, not 8000"):
        pcm.check_rate(8000)
    with pytest.raises(UnsupportedFormat, match="s16le, not 'mulaw'"):
        pcm.encoding("mulaw")


def test_a_new_rate_is_a_data_change():
    """What the telephony issue does: one entry gains a rate and an ElevenLabs name."""
    pcm = dataclasses.replace(FORMATS["pcm"], rates=(24_000, 8000))
    assert pcm.check_rate(8000) == 8000
    with pytest.raises(ValueError, match="pcm_16000 asks for 16000 Hz"):
        dataclasses.replace(pcm, elevenlabs={"pcm_16000": (16_000, "s16le")})


def test_entries_are_read_only():
    with pytest.raises(TypeError):
        FORMATS["ogg"] = FORMATS["opus"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        FORMATS["pcm"].inline = False  # type: ignore[misc]
    assert isinstance(FORMATS["pcm"], OutputFormat)
