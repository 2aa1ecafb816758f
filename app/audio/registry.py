"""Every audio output format in one table: what each path (HTTP, SSE, WebSocket, ElevenLabs) and the OpenAPI
schema may offer. A new format, rate or sample encoding is one entry here.

A format is a container (or none: raw samples) carrying samples in one of its sample encodings, at one of its
rates. OpenAI's `response_format` names a format and leaves the rate to the source (the codec's, 24 kHz) unless
a request asks for another (`sample_rate`, `encoding`); ElevenLabs' `output_format` (`pcm_24000`,
`mp3_44100_128`) names the format, the rate and the sample encoding or bit rate at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from app.audio import formats
from app.audio.pcm import ALAW, MULAW, S16LE, SampleEncoding

ENCODINGS: MappingProxyType[str, SampleEncoding] = MappingProxyType({e.name: e for e in (S16LE, MULAW, ALAW)})
"""Sample encoding name -> encoding: `s16le` (the default), `mulaw` and `alaw` (G.711)."""
ENCODING_NAMES: tuple[str, ...] = tuple(ENCODINGS)

RATES: tuple[int, ...] = (8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
"""Every rate a client may ask for; each format offers these or a subset."""
OPUS_RATES: tuple[int, ...] = (8_000, 16_000, 24_000, 48_000)
"""libopus' own input rates among RATES (it takes no other)."""


class ElevenLabsName(NamedTuple):
    """What one ElevenLabs `output_format` name asks of a format."""

    rate: int
    encoding: str = "s16le"
    bit_rate: int | None = None


@dataclass(frozen=True)
class OutputFormat:
    """One `response_format`: its OpenAI name, HTTP media type, container and encoder, what it can carry, and
    the ElevenLabs `output_format` names it answers to."""

    name: str
    content_type: str
    container: str
    encoder: type[formats.StreamEncoder]
    inline: bool
    """Cheap enough to encode on the event loop (when no time stretch runs before it)."""
    encodings: tuple[SampleEncoding, ...] = (S16LE,)
    rates: tuple[int, ...] = RATES
    """Rates a client may ask for by name; the source's own rate is what a request without one gets."""
    elevenlabs: MappingProxyType[str, ElevenLabsName] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        names = [e.name for e in self.encodings]
        for el_name, (rate, encoding, _) in self.elevenlabs.items():
            if rate not in self.rates or encoding not in names:
                raise ValueError(f"{self.name}: {el_name} asks for {rate} Hz {encoding}, which it does not carry")

    def encoding(self, name: str | None = None) -> SampleEncoding:
        """The named sample encoding (None: the first, the default)."""
        for e in self.encodings:
            if name is None or e.name == name:
                return e
        accepted = tuple(e.name for e in self.encodings)
        raise UnsupportedFormat(f"{self.name} carries the encodings {', '.join(accepted)}, not {name!r}", accepted)

    def check_rate(self, rate: int) -> int:
        if rate not in self.rates:
            accepted = tuple(str(r) for r in self.rates)
            raise UnsupportedFormat(f"{self.name} is offered at {', '.join(accepted)} Hz, not {rate}", accepted)
        return rate


def _el(**names: ElevenLabsName) -> MappingProxyType[str, ElevenLabsName]:
    return MappingProxyType(names)


_G711 = (S16LE, MULAW, ALAW)

BUILT_IN: tuple[OutputFormat, ...] = (
    OutputFormat(
        "pcm",
        "audio/pcm",
        "raw",
        formats.PcmEncoder,
        inline=True,
        encodings=_G711,
        elevenlabs=_el(
            **{f"pcm_{r}": ElevenLabsName(r) for r in RATES},
            ulaw_8000=ElevenLabsName(8_000, "mulaw"),
            alaw_8000=ElevenLabsName(8_000, "alaw"),
        ),
    ),
    OutputFormat(
        "wav",
        "audio/wav",
        "wav",
        formats.WavEncoder,
        inline=True,
        encodings=_G711,
        elevenlabs=_el(**{f"wav_{r}": ElevenLabsName(r) for r in RATES}),
    ),
    OutputFormat(
        "mp3",
        "audio/mpeg",
        "mp3",
        formats.Mp3Encoder,
        inline=False,
        elevenlabs=_el(
            mp3_22050_32=ElevenLabsName(22_050, bit_rate=32_000),
            mp3_24000_48=ElevenLabsName(24_000, bit_rate=48_000),
            **{f"mp3_44100_{k}": ElevenLabsName(44_100, bit_rate=k * 1000) for k in (32, 64, 96, 128, 192)},
        ),
    ),
    OutputFormat(
        "opus",
        "audio/ogg",
        "ogg",
        formats.OpusEncoder,
        inline=False,
        rates=OPUS_RATES,
        elevenlabs=_el(
            **{f"opus_48000_{k}": ElevenLabsName(48_000, bit_rate=k * 1000) for k in (32, 64, 96, 128, 192)}
        ),
    ),
    OutputFormat("aac", "audio/aac", "adts", formats.AacEncoder, inline=False),
    OutputFormat("flac", "audio/flac", "flac", formats.FlacEncoder, inline=False),
)
"""The formats every server offers, in the order the API documents them."""

_FORMATS: dict[str, OutputFormat] = {}
FORMATS: MappingProxyType[str, OutputFormat] = MappingProxyType(_FORMATS)
"""OpenAI `response_format` name -> format, in the order the API documents them."""
OPENAI_NAMES: tuple[str, ...] = ()
CONTENT_TYPES: MappingProxyType[str, str] = MappingProxyType({})
"""OpenAI name -> HTTP media type."""
ELEVENLABS_NAMES: tuple[str, ...] = ()


def register(*formats: OutputFormat) -> None:
    """Offer `formats` on every path (HTTP, SSE, both WebSockets, ElevenLabs, the OpenAPI schema): the one place a
    format is added. The request models read the names when they are imported, so register before the app is
    imported (a plugin module; the tests register one in a fresh interpreter)."""
    global OPENAI_NAMES, CONTENT_TYPES, ELEVENLABS_NAMES
    for fmt in formats:
        if fmt.name in _FORMATS:
            raise ValueError(f"the format {fmt.name!r} is already registered")
        _FORMATS[fmt.name] = fmt
    OPENAI_NAMES = tuple(_FORMATS)
    CONTENT_TYPES = MappingProxyType({f.name: f.content_type for f in _FORMATS.values()})
    ELEVENLABS_NAMES = tuple(n for f in _FORMATS.values() for n in f.elevenlabs)


class UnsupportedFormat(ValueError):
    """A format, rate or encoding that no registry entry offers; the message lists what is accepted."""

    def __init__(self, message: str, accepted: tuple[str, ...]) -> None:
        super().__init__(message)
        self.accepted = accepted


register(*BUILT_IN)


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
    bit_rate: int | None = None


def elevenlabs_format(name: str | None) -> ElevenLabsFormat:
    """What an ElevenLabs `output_format` (`pcm_24000`) asks for; `UnsupportedFormat` lists the accepted names."""
    for fmt in FORMATS.values():
        if name in fmt.elevenlabs:
            rate, encoding, bit_rate = fmt.elevenlabs[name]
            return ElevenLabsFormat(fmt, rate, ENCODINGS[encoding], bit_rate)
    raise UnsupportedFormat(
        f"output_format {name!r} is not supported; accepted: {', '.join(ELEVENLABS_NAMES)}", ELEVENLABS_NAMES
    )
