"""AudioWriter: one object from float32 windows to delivered bytes, streamed or as a complete file."""

from __future__ import annotations

import asyncio
import io
import struct
import threading

import av
import numpy as np
import pytest
import soxr

from app.audio.formats import StreamEncoder
from app.audio.output import AudioWriter
from app.audio.pcm import float_to_int16, wav_header
from app.audio.registry import OPENAI_NAMES, UnsupportedFormat
from app.audio.resample import StreamResampler
from app.audio.stretch import TimeStretcher
from tests.audio.test_formats import CODEC_PADDING, align, decode

SR = 24_000
CHUNK = 4800
SIZES = (CHUNK, 1234, 1, 7000)


@pytest.fixture(scope="module")
def chirp() -> np.ndarray:
    """1.5 s float sweep 200 -> 2000 Hz."""
    t = np.arange(int(1.5 * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (200 * t + 600 * t**2))).astype(np.float32)


def pieces(x: np.ndarray, sizes=SIZES) -> list[np.ndarray]:
    out, i, k = [], 0, 0
    while i < len(x):
        out.append(x[i : i + sizes[k % len(sizes)]])
        i, k = i + sizes[k % len(sizes)], k + 1
    return out


def streamed(writer: AudioWriter, x: np.ndarray, sizes=SIZES) -> bytes:
    data = b"".join(writer.write(p) for p in pieces(x, sizes)) + writer.finish()
    writer.close()
    return data


def complete(fmt: str, x: np.ndarray, **kw) -> bytes:
    writer = AudioWriter(fmt, source_rate=SR, streaming=False, **kw)
    try:
        return writer.encode_all(x)
    finally:
        writer.close()


def test_pcm_streamed_equals_complete_equals_int16(chirp):
    want = float_to_int16(chirp).tobytes()
    assert streamed(AudioWriter("pcm", source_rate=SR), chirp) == want
    assert complete("pcm", chirp) == want


def test_wav_stream_and_complete_file_carry_the_same_samples(chirp):
    pcm = float_to_int16(chirp).tobytes()
    stream = streamed(AudioWriter("wav", source_rate=SR), chirp)
    assert stream == wav_header(SR) + pcm  # placeholder sizes, one header for the whole stream
    whole = complete("wav", chirp)
    assert whole == wav_header(SR, data_bytes=len(pcm)) + pcm  # the bytes `encode_wav_file` made
    assert struct.unpack_from("<I", whole, 40)[0] == len(pcm)


def test_empty_audio():
    assert complete("wav", np.zeros(0, np.float32)) == wav_header(SR, data_bytes=0)
    assert streamed(AudioWriter("wav", source_rate=SR), np.zeros(0, np.float32)) == wav_header(SR)
    assert complete("pcm", np.zeros(0, np.float32)) == b""


def test_flac_streamed_and_complete_decode_bit_exact(chirp):
    want = float_to_int16(chirp)
    for data in (streamed(AudioWriter("flac", source_rate=SR), chirp), complete("flac", chirp)):
        np.testing.assert_array_equal(np.rint(decode(data) * 32768).astype(np.int16), want)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac"])
def test_lossy_streamed_and_complete_decode_to_the_same_audio(fmt, chirp):
    ref = float_to_int16(chirp)
    lead, max_tail = CODEC_PADDING[fmt]
    s = decode(streamed(AudioWriter(fmt, source_rate=SR), chirp))
    c = decode(complete(fmt, chirp))
    lag_s, corr_s = align(s, ref)
    lag_c, corr_c = align(c, ref)
    assert lag_s == lead and 0 <= len(s) - lead - len(ref) <= max_tail
    assert lag_c == (lead if fmt == "aac" else 0)  # mp3's LAME tag and Ogg trim a complete file's padding
    assert corr_s > 0.99 and corr_c > 0.99
    n = len(ref)
    assert np.corrcoef(s[lag_s : lag_s + n], c[lag_c : lag_c + n])[0, 1] > 0.99


@pytest.mark.parametrize("fmt", OPENAI_NAMES)
def test_every_format_encodes_streamed_and_complete(fmt, chirp):
    for data in (streamed(AudioWriter(fmt, source_rate=SR), chirp), complete(fmt, chirp)):
        y = np.frombuffer(data, "<i2") if fmt == "pcm" else decode(data)
        assert len(chirp) <= len(y) <= len(chirp) + 2200


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_speed_is_the_stretcher_and_nothing_else(speed, chirp):
    """Streamed: the stretcher fed the same chunks; complete: the stretcher run once on all of it."""
    st = TimeStretcher(speed, SR)
    want = np.concatenate([st.process(p) for p in pieces(chirp)] + [st.flush()])
    writer = AudioWriter("pcm", source_rate=SR, speed=speed)
    assert not writer.inline
    assert streamed(writer, chirp) == float_to_int16(want).tobytes()
    st = TimeStretcher(speed, SR)
    whole = np.concatenate([st.process(chirp), st.flush()])
    assert complete("pcm", chirp, speed=speed) == float_to_int16(whole).tobytes()
    assert len(whole) == round(len(chirp) / speed)
    assert len(decode(complete("wav", chirp, speed=speed))) == len(whole)


def test_stream_resampler_equals_one_shot(chirp):
    for out_rate in (8000, 16_000, 44_100, 48_000):
        r = StreamResampler(SR, out_rate)
        y = np.concatenate([r.process(p) for p in pieces(chirp)] + [r.flush()])
        one = soxr.resample(chirp, SR, out_rate)
        assert len(y) == len(one)
        np.testing.assert_allclose(y, one, atol=1e-4)


def test_other_rates_only_where_the_registry_offers_them(chirp):
    with pytest.raises(UnsupportedFormat, match="not 11025"):
        AudioWriter("pcm", source_rate=SR, rate=11_025)
    with pytest.raises(UnsupportedFormat, match="opus is offered at 8000, 16000, 24000, 48000 Hz, not 22050"):
        AudioWriter("opus", source_rate=SR, rate=22_050)
    with pytest.raises(UnsupportedFormat, match="flac carries the encodings s16le, not 'alaw'"):
        AudioWriter("flac", source_rate=SR, encoding="alaw")
    assert AudioWriter("pcm", source_rate=SR, rate=SR).inline  # asking for the source rate: no resampling
    writer = AudioWriter("pcm", source_rate=SR, rate=16_000)
    assert writer.rate == 16_000 and writer.inline  # resampling is cheap enough for the event loop
    assert not AudioWriter("pcm", source_rate=SR, rate=16_000, speed=1.5).inline  # a stretch is not
    got = np.frombuffer(streamed(writer, chirp), "<i2").astype(np.int32)
    want = float_to_int16(soxr.resample(chirp, SR, 16_000)).astype(np.int32)
    assert len(got) == len(want) and np.abs(got - want).max() <= 4  # 1e-4 of full scale
    whole = AudioWriter("wav", source_rate=SR, rate=16_000, streaming=False).encode_all(chirp)
    assert whole[:44] == wav_header(16_000, data_bytes=2 * len(want))


@pytest.mark.parametrize("fmt", ["pcm", "opus"])
def test_finish_after_an_error(fmt, chirp):
    writer = AudioWriter(fmt, source_rate=SR)
    sent = writer.write(chirp[:CHUNK]) + writer.write(chirp[CHUNK : 3 * CHUNK])
    with pytest.raises(ValueError, match="mono"):
        writer.write(np.zeros((2, 10), np.float32))
    sent += writer.finish()
    writer.close()
    y = np.frombuffer(sent, "<i2") if fmt == "pcm" else np.rint(decode(sent) * 32768).astype(np.int16)
    assert len(y) == 3 * CHUNK
    if fmt == "pcm":
        np.testing.assert_array_equal(y, float_to_int16(chirp[: 3 * CHUNK]))


def test_finished_and_closed_writers():
    writer = AudioWriter("mp3", source_rate=SR)
    writer.write(np.zeros(CHUNK, np.float32))
    assert writer.finish()
    with pytest.raises(RuntimeError, match="finished"):
        writer.write(np.zeros(CHUNK, np.float32))
    writer.close()
    writer.close()
    closed = AudioWriter("opus", source_rate=SR)
    closed.close()
    assert closed.write(np.zeros(CHUNK, np.float32)) == b"" and closed.finish() == b""


class _Gate:
    """Wraps an encoder so that its next `encode` waits until released, and records `close()`."""

    def __init__(self, encoder: StreamEncoder) -> None:
        self.encoder = encoder
        self.entered = threading.Event()
        self.release = threading.Event()
        self.closed_on: list[str] = []

    def encode(self, pcm: np.ndarray) -> bytes:
        self.entered.set()
        assert self.release.wait(10)
        return self.encoder.encode(pcm)

    def finish(self) -> bytes:
        return self.encoder.finish()

    def close(self) -> None:
        self.closed_on.append(threading.current_thread().name)
        self.encoder.close()


def test_close_while_a_thread_encodes(chirp):
    async def main() -> None:
        writer = AudioWriter("mp3", source_rate=SR)
        assert not writer.inline
        gate = _Gate(writer._encoder)
        writer._encoder = gate
        task = asyncio.ensure_future(writer.awrite(chirp[:CHUNK]))
        assert await asyncio.to_thread(gate.entered.wait, 10)
        with pytest.raises(RuntimeError, match="one call at a time"):
            writer.write(chirp[:CHUNK])
        writer.close()  # returns at once: the encoding thread still owns the encoder
        writer.close()
        assert gate.closed_on == []
        gate.release.set()
        await task
        assert len(gate.closed_on) == 1 and gate.closed_on[0] != threading.current_thread().name
        assert await writer.awrite(chirp[:CHUNK]) == b"" and await writer.afinish() == b""
        assert len(gate.closed_on) == 1

    asyncio.run(main())


@pytest.mark.parametrize(("fmt", "speed"), [("pcm", 1.0), ("wav", 1.0), ("opus", 1.0), ("mp3", 1.5)])
def test_driven_like_a_websocket_session(fmt, speed, chirp):
    """What the WebSocket sessions do: several segments' chunks into one continuous
    stream, then `finish`, then `close`; the result is the stream of all the segments' audio."""
    segments = [chirp[:9000], chirp[9000:20000], np.zeros(0, np.float32), chirp[20000:]]

    async def session() -> bytes:
        out = AudioWriter(fmt, source_rate=SR, speed=speed)
        try:
            data = b""
            for segment in segments:
                for chunk in pieces(segment, (CHUNK,)):
                    data += await out.awrite(chunk)
            return data + await out.afinish()
        finally:
            out.close()

    data = asyncio.run(session())
    if fmt in ("pcm", "wav"):
        head = wav_header(SR) if fmt == "wav" else b""
        assert data == head + float_to_int16(chirp).tobytes()
        return
    y = decode(data)
    if speed == 1.0:
        lag, corr = align(y, float_to_int16(chirp))
        assert lag == 0 and len(y) == len(chirp) and corr > 0.99
    else:
        lead, max_tail = CODEC_PADDING[fmt]
        assert 0 <= len(y) - lead - round(len(chirp) / speed) <= max_tail


def test_opus_complexity_is_the_encoders_effort() -> None:
    rng = np.random.default_rng(3)
    x = (0.3 * np.sin(np.arange(24_000) / 24_000 * 2 * np.pi * 180) + 0.05 * rng.standard_normal(24_000)).astype(np.float32)

    def opus_samples(complexity: int | None) -> np.ndarray:  # decoded: the Ogg serial number differs per stream
        w = AudioWriter("opus", source_rate=24_000, rate=48_000, complexity=complexity)
        data = b"".join(w.write(x[i : i + 2400]) for i in range(0, len(x), 2400)) + w.finish()
        with av.open(io.BytesIO(data)) as container:
            return np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])

    low, high, default = opus_samples(0), opus_samples(10), opus_samples(None)
    assert len(low) == len(high) == 48_000  # every sample, whatever the effort
    assert not np.array_equal(low, high)  # the setting reaches libopus
    assert np.array_equal(default, high)  # None: FFmpeg's default, 10
    for bad in (-1, 11):
        with pytest.raises(ValueError, match="complexity must be 0-10"):
            AudioWriter("opus", source_rate=24_000, complexity=bad)
    assert AudioWriter("mp3", source_rate=24_000, complexity=3).write(x)  # formats without the knob ignore it
