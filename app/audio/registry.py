"""Every audio output format in one table: what each path (HTTP, SSE, WebSocket, ElevenLabs) and the OpenAPI
schema may offer. A new format, rate or sample encoding is one entry here.

A format is a container (or none: raw samples) carrying samples in one of its sample encodings, at one of its
rates. OpenAI's `response_format` names a format and leaves the rate to the source (the codec's, 24 kHz);
ElevenLabs' `output_format` (`pcm_24000`) names all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from app.audio import formats
from app.audio.pcm import float_to_int16


@dataclass(frozen=True)
class SampleEncoding:
    """How float samples become the integers a container carries: `(T,) float32 -> (T,) integers`."""

    name: str
    bits: int
    from_float: Callable[[np.ndarray], np.ndarray]


S16LE = SampleEncoding("s16le", 16, float_to_int16)
"""Signed 16-bit little-endian linear PCM: what every format carries today."""

ENCODINGS: MappingProxyType[str, SampleEncoding] = MappingProxyType({e.name: e for e in (S16LE,)})


@dataclass(frozen=True)
class OutputFormat:
    """One `response_format`: its OpenAI name, HTTP media type, container and encoder, what it can carry, and
    the ElevenLabs `output_format` names (name -> (rate, encoding name)) it answers to."""

    name: str
    content_type: str
    container: str
    encoder: type[formats.StreamEncoder]
    inline: bool
    """Cheap enough to encode on the event loop (when no time stretch or resampling runs before it)."""
    encodings: tuple[SampleEncoding, ...] = (S16LE,)
    rates: tuple[int, ...] = (24_000,)
    """Rates a client may ask for by name; the source's own rate is always what a request without one gets."""
    elevenlabs: MappingProxyType[str, tuple[int, str]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        names = [e.name for e in self.encodings]
        for el_name, (rate, encoding) in self.elevenlabs.items():
            if rate not in self.rates or encoding not in names:
                raise ValueError(f"{self.name}: {el_name} asks for {rate} Hz {encoding}, which it does not carry")

    def encoding(self, name: str | None = None) -> SampleEncoding:
        """The named sample encoding (None: the first, the default)."""
        for e in self.encodings:
            if name is None or e.name == name:
                return e
        accepted = tuple(e.name for e in self.encodings)
        raise UnsupportedFormat(f"{self.name} carries {', '.join(accepted)}, not {name!r}", accepted)

    def check_rate(self, rate: int) -> int:
        if rate not in self.rates:
            accepted = tuple(str(r) for r in self.rates)
            raise UnsupportedFormat(f"{self.name} is offered at {', '.join(accepted)} Hz, not {rate}", accepted)
        return rate


def _el(**names: tuple[int, str]) -> MappingProxyType[str, tuple[int, str]]:
    return MappingProxyType(names)


FORMATS: MappingProxyType[str, OutputFormat] = MappingProxyType(
    {
        f.name: f
        for f in (
            OutputFormat(
                "pcm", "audio/pcm", "raw", formats.PcmEncoder, inline=True, elevenlabs=_el(pcm_24000=(24_000, "s16le"))
            ),
            OutputFormat("wav", "audio/wav", "wav", formats.WavEncoder, inline=True),
            OutputFormat("mp3", "audio/mpeg", "mp3", formats.Mp3Encoder, inline=False),
            OutputFormat("opus", "audio/ogg", "ogg", formats.OpusEncoder, inline=False),
            OutputFormat("aac", "audio/aac", "adts", formats.AacEncoder, inline=False),
            OutputFormat("flac", "audio/flac", "flac", formats.FlacEncoder, inline=False),
        )
    }
)
"""OpenAI `response_format` name -> format, in the order the API documents them."""

OPENAI_NAMES: tuple[str, ...] = tuple(FORMATS)
CONTENT_TYPES: MappingProxyType[str, str] = MappingProxyType({f.name: f.content_type for f in FORMATS.values()})
"""OpenAI name -> HTTP media type."""


class UnsupportedFormat(ValueError):
    """A format, rate or encoding that no registry entry offers; the message lists what is accepted."""

    def __init__(self, message: str, accepted: tuple[str, ...]) -> None:
        super().__init__(message)
        self.accepted = accepted


def output_format(name: str) -> OutputFormat:
    """The format for an OpenAI `response_format` name."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UnsupportedFormat(
            f"unsupported response_format {name!r}; allowed: {', '.join(OPENAI_NAMES)}", OPENAI_NAMES
        ) from None


class ElevenLabsFormat(NamedTuple):
    format: OutputFormat
    rate: int
    encoding: SampleEncoding


ELEVENLABS_NAMES: tuple[str, ...] = tuple(n for f in FORMATS.values() for n in f.elevenlabs)


def elevenlabs_format(name: str | None) -> ElevenLabsFormat:
    """What an ElevenLabs `output_format` (`pcm_24000`) asks for; `UnsupportedFormat` lists the accepted names."""
    for fmt in FORMATS.values():
        if name in fmt.elevenlabs:
            rate, encoding = fmt.elevenlabs[name]
            return ElevenLabsFormat(fmt, rate, ENCODINGS[encoding])
    raise UnsupportedFormat(
        f"output_format {name!r} is not supported; accepted: {', '.join(ELEVENLABS_NAMES)}", ELEVENLABS_NAMES
    )
