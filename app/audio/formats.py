"""Audio output encoders: mono integer chunks in (int16; for `pcm` and `wav` also G.711 bytes), bytes of one
container out, as soon as they exist.

Which format uses which encoder is said in app/audio/registry.py. `pcm` and `wav` are written here; `mp3`, `opus` (in Ogg), `aac` (ADTS) and `flac` go through FFmpeg's encoders
and muxers as bundled in the PyAV wheel. For a stream, the muxer writes into a write-only sink, so FFmpeg
treats the output as non-seekable: it writes each packet as it comes and never goes back to patch a header.
For a complete file (`streaming=False`) it writes into a seekable buffer instead, so it can finish the
headers (MP3 LAME/Xing gapless info, FLAC total samples and MD5) before `finish()` returns the file.

Decoded lengths (input of N samples at 24 kHz; FFmpeg 8.1 in av 18.1.0):

* pcm, wav, flac: exactly N samples, bit-exact.
* opus: exactly N (Ogg pre-skip and end granule trim the codec delay and padding); decoded at 48 kHz.
* mp3 stream: 1105 leading samples (LAME's 576 encoder + 529 decoder delay) and the last 576-sample frame
  padded out; as a complete file the LAME tag lets FFmpeg trim both, giving exactly N.
* aac: 1024 leading samples (one frame of priming) and the last 1024-sample frame padded out; ADTS has no
  field to signal either.

While streaming, an encoder holds back at most about 145 ms of input (mp3: LAME's lookahead), 130 ms (aac),
96 ms (flac: one block) or 46 ms (opus: one packet plus lookahead); `pcm` and `wav` hold back nothing.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import ClassVar

import av
import numpy as np

from app.audio.pcm import S16LE, SampleEncoding, wav_header


def _check_pcm(pcm: np.ndarray, encoding: SampleEncoding = S16LE) -> np.ndarray:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != encoding.dtype or pcm.ndim != 1:
        raise ValueError(
            f"expected a 1-D {encoding.dtype} array (mono {encoding.name}); convert with its `from_float`"
        )
    return pcm


class StreamEncoder:
    """Turns mono chunks of `encoding`'s samples into bytes of one format. Not thread-safe: one encoder per
    response.

    `encode()` returns the bytes that are ready (possibly `b""` while the codec buffers), `finish()` the tail.
    With `streaming=False` the output is one complete file and may all come from `finish()`. Call `close()`
    when a stream is abandoned before `finish()` (it is a no-op afterwards). `bit_rate`: bits per second for
    the lossy codecs (None: the encoder's default); `complexity`: the effort of an encoder that has that knob
    (opus: 0-10, None: 10); the others ignore them.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        streaming: bool = True,
        encoding: SampleEncoding = S16LE,
        bit_rate: int | None = None,
        complexity: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.streaming = streaming
        self.encoding = encoding
        self.bit_rate = bit_rate
        self.complexity = complexity
        self._open()

    def _open(self) -> None:
        """Set up a subclass's own state once the settings are in place; raise `ValueError` for a bad one."""

    def encode(self, pcm: np.ndarray) -> bytes:
        """`(T,) samples -> bytes`."""
        raise NotImplementedError

    def finish(self) -> bytes:
        return b""

    def close(self) -> None:
        """Release codec resources without flushing."""


class PcmEncoder(StreamEncoder):
    """Raw samples, no header: signed 16-bit little-endian, or one G.711 byte each."""

    def encode(self, pcm: np.ndarray) -> bytes:
        return _check_pcm(pcm, self.encoding).tobytes()


class WavEncoder(PcmEncoder):
    """Streaming: a header with placeholder sizes, then raw samples. Complete file: exact sizes at `finish()`."""

    def _open(self) -> None:
        self._header_sent = False
        self._parts: list[bytes] = []

    def encode(self, pcm: np.ndarray) -> bytes:
        data = super().encode(pcm)
        if not self.streaming:
            self._parts.append(data)
            return b""
        if not self._header_sent:
            self._header_sent = True
            return self._header() + data
        return data

    def finish(self) -> bytes:
        if not self.streaming:
            data, self._parts = b"".join(self._parts), []
            return self._header(len(data)) + data
        if not self._header_sent:  # an empty stream is still a valid WAV
            self._header_sent = True
            return self._header()
        return b""

    def _header(self, data_bytes: int | None = None) -> bytes:
        e = self.encoding
        return wav_header(self.sample_rate, bits=e.bits, data_bytes=data_bytes, format_tag=e.wav_tag)


class _Sink:
    """Write-only file object: without `seek`, PyAV gives FFmpeg a non-seekable output."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class AVEncoder(StreamEncoder):
    """An FFmpeg encoder and muxer through PyAV; subclasses only name them and set their options."""

    container_format: ClassVar[str]
    codec_name: ClassVar[str]
    default_bit_rate: ClassVar[int | None] = None
    container_options: ClassVar[dict[str, str]] = {}
    complexity_range: ClassVar[tuple[int, int] | None] = None
    """The encoder's `compression_level` range, where `complexity` applies."""

    def _open(self) -> None:
        if self.encoding is not S16LE:
            raise ValueError(f"{type(self).__name__} takes s16le samples, not {self.encoding.name}")
        complexity, streaming, sample_rate = self.complexity, self.streaming, self.sample_rate
        options = {}
        if complexity is not None and self.complexity_range is not None:
            low, high = self.complexity_range
            if not low <= complexity <= high:
                raise ValueError(f"{type(self).__name__}: complexity must be {low}-{high}, not {complexity}")
            options["compression_level"] = str(complexity)
        self._sink = _Sink() if streaming else io.BytesIO()
        self._container = av.open(
            self._sink, mode="w", format=self.container_format, options=dict(self.container_options)
        )
        self._closed = False
        try:
            self._stream = self._container.add_stream(
                self.codec_name, rate=sample_rate, layout="mono", options=options
            )
            if (rate := self.bit_rate or self.default_bit_rate) is not None:
                self._stream.bit_rate = rate
            # Open the codec and write the container header now, so a bad setting fails before the stream starts.
            self._container.start_encoding()
        except BaseException:
            self.close()
            raise
        self._samples = 0

    def encode(self, pcm: np.ndarray) -> bytes:
        pcm = _check_pcm(pcm)
        if self._closed:
            raise RuntimeError("encoder already finished or closed")
        if len(pcm):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm).reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.time_base = Fraction(1, self.sample_rate)
            frame.pts = self._samples
            self._samples += len(pcm)
            self._container.mux(self._stream.encode(frame))
        return self._sink.take() if self.streaming else b""

    def finish(self) -> bytes:
        if self._closed:
            raise RuntimeError("encoder already finished or closed")
        self._container.mux(self._stream.encode(None))
        self.close()
        return self._sink.take() if self.streaming else self._sink.getvalue()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()


class Mp3Encoder(AVEncoder):
    """MPEG Layer III (LAME), CBR, no ID3 tag: the stream is bare MP3 frames (MPEG-2 at 16-24 kHz, MPEG-2.5 at
    8 kHz, MPEG-1 at 32-48 kHz)."""

    container_format = "mp3"
    codec_name = "libmp3lame"
    default_bit_rate = 64_000
    container_options = {"id3v2_version": "0"}


class OpusEncoder(AVEncoder):
    """Opus (libopus takes 8, 12, 16, 24 or 48 kHz input natively; decoders output 48 kHz) in Ogg.

    The Ogg muxer holds packets until a page's duration is reached (default 1 s). One 20 ms packet per page
    sends each packet at once, for about 11 kbit/s of page headers.
    """

    container_format = "ogg"
    codec_name = "libopus"
    default_bit_rate = 32_000
    complexity_range = (0, 10)  # libopus' effort: 10 is FFmpeg's default, 0 costs about a fifth (performance.md)
    container_options = {"page_duration": "20000"}  # microseconds


class AacEncoder(AVEncoder):
    """AAC-LC (FFmpeg's native encoder) in ADTS frames."""

    container_format = "adts"
    codec_name = "aac"
    default_bit_rate = 64_000


class FlacEncoder(AVEncoder):
    """FLAC, 16-bit. A stream's STREAMINFO has total samples 0 (\"unknown\") and no MD5."""

    container_format = "flac"
    codec_name = "flac"
    container_options = {"metadata_header_padding": "0"}  # FFmpeg reserves 8 KiB by default
