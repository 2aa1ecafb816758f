"""Every rate and sample encoding: G.711 as libsndfile encodes it, anti-aliased rate conversion, streamed equal
to one-shot for every rate and format, and our 8 kHz G.711 WAVs read by libsndfile and sox."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from app.audio.output import AudioWriter
from app.audio.pcm import float_to_int16, int16_to_alaw, int16_to_mulaw, wav_header
from app.audio.registry import FORMATS, RATES
from app.audio.resample import StreamResampler
from tests.audio.test_output import pieces, streamed

SR = 24_000
G711 = {"mulaw": "ULAW", "alaw": "ALAW"}


@pytest.fixture(scope="module")
def speech_like() -> np.ndarray:
    """2 s of a 150 -> 3000 Hz sweep with harmonics and a noise floor, at -6 dBFS peaks."""
    rng = np.random.default_rng(7)
    t = np.arange(2 * SR) / SR
    phase = 2 * np.pi * (150 * t + 712.5 * t**2)
    x = sum(np.sin(k * phase) / k for k in (1, 2, 3)) + 0.05 * rng.standard_normal(len(t))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def libsndfile_raw(pcm: np.ndarray, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, pcm, 8000, format="RAW", subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("encoding", list(G711))
def test_g711_matches_libsndfile_sample_for_sample(encoding, speech_like):
    every = np.arange(-32768, 32768, dtype=np.int16)
    ours = (int16_to_mulaw if encoding == "mulaw" else int16_to_alaw)(every)
    assert ours.dtype == np.uint8 and ours.tobytes() == libsndfile_raw(every, G711[encoding])
    # the whole path: float at 24 kHz -> 8 kHz -> int16 -> G.711
    got = AudioWriter("pcm", source_rate=SR, rate=8000, encoding=encoding, streaming=False).encode_all(speech_like)
    want = libsndfile_raw(float_to_int16(soxr.resample(speech_like, SR, 8000)), G711[encoding])
    assert got == want and len(got) == len(speech_like) // 3


@pytest.mark.parametrize("encoding", list(G711))
def test_g711_is_ffmpegs_g711_within_one_step(encoding, speech_like):
    """A second implementation (FFmpeg's pcm_mulaw/pcm_alaw decoders) reads our bytes back as the signal."""
    data = AudioWriter("pcm", source_rate=SR, rate=8000, encoding=encoding, streaming=False).encode_all(speech_like)
    ctx = av.CodecContext.create(f"pcm_{encoding}", "r")
    ctx.sample_rate, ctx.layout = 8000, "mono"
    decoded = np.concatenate([f.to_ndarray()[0] for f in ctx.decode(av.Packet(data))]).astype(np.float64) / 32768
    ref = soxr.resample(speech_like, SR, 8000).astype(np.float64)
    assert len(decoded) == len(ref)
    snr = 10 * np.log10(np.sum(ref**2) / np.sum((decoded - ref) ** 2))
    assert snr > 35  # G.711's ~38 dB for a loud signal


def _sweep(seconds: float = 4.0, top: float = 11_900.0) -> tuple[np.ndarray, np.ndarray]:
    """A linear sweep 20 Hz -> `top` at the source rate, and its instantaneous frequency per sample."""
    t = np.arange(int(seconds * SR)) / SR
    rate = (top - 20.0) / seconds
    return (0.5 * np.sin(2 * np.pi * (20.0 * t + rate / 2 * t**2))).astype(np.float32), 20.0 + rate * t


EDGE = 0.04
"""Seconds at each end left out: a sweep that starts and stops is a click there, at every frequency."""


def _window_energy(x: np.ndarray, n: int) -> np.ndarray:
    m = len(x) // n
    return np.sum(x[: m * n].astype(np.float64).reshape(m, n) ** 2, axis=1) / n


@pytest.mark.parametrize("rate", [r for r in RATES if r != SR])
def test_swept_sine_keeps_the_passband_and_stops_what_the_new_rate_cannot_carry(rate):
    """20 ms windows of a 20 Hz -> 11.9 kHz sweep, by the frequency the sweep has there: below 0.85 x the new
    Nyquist the energy is kept (within 0.1 dB); above 1.02 x it (downsampling), what comes out of those windows
    (the tone or its alias) is at least 60 dB down. Upsampling adds nothing above the source's Nyquist."""
    x, freq = _sweep()
    out = StreamResampler(SR, rate)
    y = np.concatenate([out.process(p) for p in pieces(x, (4800, 1234, 1, 7000))] + [out.flush()])
    assert len(y) == round(len(x) * rate / SR)
    win_in, win_out = SR // 50, rate // 50
    e_in, e_out = _window_energy(x, win_in), _window_energy(y, win_out)
    n = min(len(e_in), len(e_out))
    f = freq[: n * win_in].reshape(n, win_in).mean(axis=1)
    e_in, e_out = e_in[:n], e_out[:n]
    nyquist = min(rate, SR) / 2
    inside = (np.arange(n) >= EDGE * 50) & (np.arange(n) < n - EDGE * 50)
    passband = (f < 0.85 * nyquist) & (f > 100) & inside
    gain_db = 10 * np.log10(e_out[passband] / e_in[passband])
    assert np.abs(gain_db).max() < 0.1
    if rate < SR:
        stopband = (f > 1.02 * nyquist) & inside
        assert stopband.sum() >= 5
        assert (10 * np.log10(e_out[stopband] / e_in[stopband] + 1e-30)).max() <= -60
    else:
        spectrum = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
        bins = np.fft.rfftfreq(len(y), 1 / rate)
        above = spectrum[bins > 1.02 * SR / 2].sum() / spectrum.sum()
        assert 10 * np.log10(above + 1e-30) <= -60


@pytest.mark.parametrize("rate", RATES)
def test_stream_resampler_equals_one_shot_at_every_rate(rate, speech_like):
    one_shot = soxr.resample(speech_like, SR, rate) if rate != SR else speech_like
    for sizes in ((4800,), (1234, 1, 7000), (480, 17)):
        if rate == SR:
            break
        r = StreamResampler(SR, rate)
        y = np.concatenate([r.process(p) for p in pieces(speech_like, sizes)] + [r.flush()])
        assert len(y) == len(one_shot) and np.abs(y - one_shot).max() <= 1e-4


def _cases() -> list[tuple[str, int, str | None]]:
    return [
        (name, rate, encoding.name)
        for name, fmt in FORMATS.items()
        for rate in fmt.rates
        for encoding in fmt.encodings
    ]


def _decode_lossy(data: bytes, rate: int) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        frames = [g for f in container.decode(audio=0) for g in resampler.resample(f)] + resampler.resample(None)
    return np.concatenate([f.to_ndarray()[0] for f in frames])


@pytest.mark.parametrize(("fmt", "rate", "encoding"), _cases())
def test_streamed_equals_one_shot_for_every_rate_and_format(fmt, rate, encoding, speech_like):
    stream = streamed(AudioWriter(fmt, source_rate=SR, rate=rate, encoding=encoding), speech_like)
    whole = AudioWriter(fmt, source_rate=SR, rate=rate, encoding=encoding, streaming=False).encode_all(speech_like)
    n = round(len(speech_like) * rate / SR)
    if fmt in ("pcm", "wav"):
        head = len(wav_header(rate, bits=16 if encoding == "s16le" else 8, format_tag=1 if encoding == "s16le" else 7))
        skip = head if fmt == "wav" else 0
        assert stream[skip:] == whole[skip:]  # the resampled floats agree to 1e-4; here they quantize the same
        assert len(whole) - skip == n * (2 if encoding == "s16le" else 1)
        return
    a, b = _decode_lossy(stream, rate), _decode_lossy(whole, rate)
    if fmt == "flac":
        np.testing.assert_array_equal(a, b)
        assert len(a) == n
        return
    # lossy: the same encoder fed the same samples gives the same frames; a complete mp3 file has its
    # encoder delay trimmed (LAME tag), a stream does not
    lag = int(np.argmax(np.correlate(a[: 4096 + 4000], b[:4000], mode="valid"))) if fmt == "mp3" else 0
    m = min(len(a) - lag, len(b))
    assert m >= n - 1152 and np.abs(a[lag : lag + m] - b[:m]).max() <= 1e-4


@pytest.mark.parametrize("encoding", list(G711))
@pytest.mark.parametrize("streaming", [True, False])
def test_libsndfile_and_sox_read_our_8khz_g711_wav(encoding, streaming, speech_like, tmp_path):
    writer = AudioWriter("wav", source_rate=SR, rate=8000, encoding=encoding, streaming=streaming)
    data = streamed(writer, speech_like) if streaming else writer.encode_all(speech_like)
    tag = {"mulaw": 7, "alaw": 6}[encoding]
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and struct.unpack("<HHIIHH", data[20:36]) == (
        tag,
        1,
        8000,
        8000,
        1,
        8,
    )
    path = tmp_path / f"{encoding}.wav"
    path.write_bytes(data)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, G711[encoding])
    got, rate = sf.read(str(path), dtype="int16")
    want = np.frombuffer(libsndfile_raw(float_to_int16(soxr.resample(speech_like, SR, 8000)), G711[encoding]), np.uint8)
    assert rate == 8000 and len(got) == len(want) == len(speech_like) // 3
    if shutil.which("soxi") is None:
        pytest.skip("sox is not installed")
    soxi = subprocess.run(["soxi", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Sample Rate    : 8000" in soxi and "Channels       : 1" in soxi
    assert ("u-law" if encoding == "mulaw" else "A-law") in soxi
    if not streaming:
        assert f"= {len(want)} samples" in soxi
        # sox decodes it back to what libsndfile decodes
        raw = subprocess.run(
            ["sox", str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-"], capture_output=True, check=True
        ).stdout
        np.testing.assert_array_equal(np.frombuffer(raw, "<i2"), got)
