"""The format registry: the one list of formats, rates, encodings and ElevenLabs names every path reads."""

from __future__ import annotations

import dataclasses
from typing import get_args

import pytest

from app.audio import formats
from app.audio.pcm import ALAW, MULAW, S16LE
from app.audio.registry import (
    CONTENT_TYPES,
    ELEVENLABS_NAMES,
    ENCODING_NAMES,
    FORMATS,
    OPENAI_NAMES,
    RATES,
    ElevenLabsName,
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
        assert 24_000 in fmt.rates and set(fmt.rates) <= set(RATES)
    assert len(set(CONTENT_TYPES.values())) == len(FORMATS)
    assert [n for n, f in FORMATS.items() if f.inline] == ["pcm", "wav"]


def test_what_each_format_carries():
    assert RATES == (8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
    for name in ("pcm", "wav"):
        assert FORMATS[name].encodings == (S16LE, MULAW, ALAW) and FORMATS[name].rates == RATES
    for name in ("mp3", "aac", "flac"):
        assert FORMATS[name].encodings == (S16LE,) and FORMATS[name].rates == RATES
    assert FORMATS["opus"].encodings == (S16LE,) and FORMATS["opus"].rates == (8_000, 16_000, 24_000, 48_000)
    assert ENCODING_NAMES == ("s16le", "mulaw", "alaw")


def test_unknown_openai_name_lists_the_allowed_ones():
    with pytest.raises(UnsupportedFormat, match="'ogg'.*pcm, wav, mp3, opus, aac, flac") as exc:
        output_format("ogg")
    assert exc.value.accepted == OPENAI_NAMES
    assert isinstance(exc.value, ValueError)


# ElevenLabs' documented output formats (https://elevenlabs.io/docs/api-reference/text-to-speech/convert; the
# list its SDKs' `AllowedOutputFormats` carry: pcm and wav at seven rates, G.711, mp3 and opus at listed bit rates)
ELEVENLABS_DOCUMENTED = {
    **{f"pcm_{r}": ("pcm", r, S16LE, None) for r in (8000, 16000, 22050, 24000, 32000, 44100, 48000)},
    **{f"wav_{r}": ("wav", r, S16LE, None) for r in (8000, 16000, 22050, 24000, 32000, 44100, 48000)},
    "ulaw_8000": ("pcm", 8000, MULAW, None),
    "alaw_8000": ("pcm", 8000, ALAW, None),
    "mp3_22050_32": ("mp3", 22050, S16LE, 32_000),
    "mp3_24000_48": ("mp3", 24000, S16LE, 48_000),
    **{f"mp3_44100_{k}": ("mp3", 44100, S16LE, k * 1000) for k in (32, 64, 96, 128, 192)},
    **{f"opus_48000_{k}": ("opus", 48000, S16LE, k * 1000) for k in (32, 64, 96, 128, 192)},
}


@pytest.mark.parametrize("name", list(ELEVENLABS_DOCUMENTED))
def test_every_documented_elevenlabs_name(name):
    fmt_name, rate, encoding, bit_rate = ELEVENLABS_DOCUMENTED[name]
    fmt, got_rate, got_encoding, got_bit_rate = elevenlabs_format(name)
    assert (fmt.name, got_rate, got_encoding, got_bit_rate) == (fmt_name, rate, encoding, bit_rate)


def test_elevenlabs_names_are_exactly_the_documented_ones():
    assert set(ELEVENLABS_NAMES) == set(ELEVENLABS_DOCUMENTED) and len(ELEVENLABS_NAMES) == len(ELEVENLABS_DOCUMENTED)


@pytest.mark.parametrize("name", ["mp3_44100_320", "pcm_96000", "ulaw_16000", "opus_24000_32", "PCM_24000", "", None])
def test_elevenlabs_names_not_offered_list_the_accepted_ones(name):
    with pytest.raises(UnsupportedFormat) as exc:
        elevenlabs_format(name)
    assert str(exc.value) == f"output_format {name!r} is not supported; accepted: {', '.join(ELEVENLABS_NAMES)}"
    assert exc.value.accepted == ELEVENLABS_NAMES and "ulaw_8000" in str(exc.value)


def test_rates_and_encodings_are_checked():
    pcm, opus = FORMATS["pcm"], FORMATS["opus"]
    assert pcm.check_rate(8000) == 8000 and pcm.encoding() is S16LE and pcm.encoding("mulaw") is MULAW
    with pytest.raises(UnsupportedFormat, match="8000, 16000, 22050, 24000, 32000, 44100, 48000 Hz, not 11025"):
        pcm.check_rate(11_025)
    with pytest.raises(UnsupportedFormat, match="opus is offered at 8000, 16000, 24000, 48000 Hz, not 44100") as exc:
        opus.check_rate(44_100)
    assert exc.value.accepted == ("8000", "16000", "24000", "48000")
    with pytest.raises(UnsupportedFormat, match="mp3 carries the encodings s16le, not 'mulaw'"):
        FORMATS["mp3"].encoding("mulaw")


def test_a_new_rate_is_a_data_change():
    """One entry gains a rate and an ElevenLabs name; a name for a rate it lacks is refused."""
    opus = dataclasses.replace(FORMATS["opus"], rates=(*FORMATS["opus"].rates, 12_000))
    assert opus.check_rate(12_000) == 12_000
    with pytest.raises(ValueError, match="opus_44100_64 asks for 44100 Hz"):
        dataclasses.replace(opus, elevenlabs={"opus_44100_64": ElevenLabsName(44_100, bit_rate=64_000)})


def test_entries_are_read_only():
    with pytest.raises(TypeError):
        FORMATS["ogg"] = FORMATS["opus"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        FORMATS["pcm"].inline = False  # type: ignore[misc]
    assert isinstance(FORMATS["pcm"], OutputFormat)
