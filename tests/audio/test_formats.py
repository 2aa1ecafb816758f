"""Every format decodes back (with FFmpeg through PyAV) to the input's length, up to each codec's measured
priming and padding, and to its content; compressed streams emit bytes while the stream goes on."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest

from app.audio.formats import StreamEncoder
from app.audio.registry import CONTENT_TYPES, FORMATS, output_format

SR = 24000
CHUNK = 4800  # 0.2 s, the service's smallest chunk
LOSSY = ("mp3", "opus", "aac")


def make_encoder(fmt: str, sample_rate: int = SR, *, streaming: bool = True) -> StreamEncoder:
    return FORMATS[fmt].encoder(sample_rate, streaming=streaming)


@pytest.fixture(scope="module")
def chirp() -> np.ndarray:
    """1.5 s sweep 200 -> 2000 Hz: not periodic, so cross-correlation finds the codec delay unambiguously."""
    t = np.arange(int(1.5 * SR)) / SR
    return np.rint(0.3 * 32767 * np.sin(2 * np.pi * (200 * t + 600 * t**2))).astype(np.int16)


def encode_chunks(enc: StreamEncoder, pcm: np.ndarray, sizes=(CHUNK,)) -> list[bytes]:
    """Encoded pieces, one per chunk (sizes cycle), then `finish()`'s tail as the last piece."""
    out, i, k = [], 0, 0
    while i < len(pcm):
        n = sizes[k % len(sizes)]
        out.append(enc.encode(pcm[i : i + n]))
        i, k = i + n, k + 1
    out.append(enc.finish())
    return out


def decode(data: bytes) -> np.ndarray:
    """Any container/codec -> float32 mono at 24 kHz (Opus decodes at 48 kHz)."""
    with av.open(io.BytesIO(data)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
        frames = [g for f in container.decode(audio=0) for g in resampler.resample(f)]
        frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray()[0] for f in frames]) if frames else np.zeros(0, np.float32)


def align(y: np.ndarray, x: np.ndarray) -> tuple[int, float]:
    """(delay of x in y in samples, correlation of the aligned overlap)."""
    ref = x[:4000].astype(np.float32) / 32768
    lag = int(np.argmax(np.correlate(y[: 4000 + 4096], ref, mode="valid")))
    n = min(len(x), len(y) - lag)
    return lag, float(np.corrcoef(y[lag : lag + n], x[:n])[0, 1])


# Measured with av 18.1.0 (FFmpeg 8.1): leading samples (codec priming) and the most trailing samples
# (last frame padded out) that a decoder returns around N input samples.
CODEC_PADDING = {
    "mp3": (1105, 576),  # 576 LAME encoder delay + 529 decoder delay; 576-sample frames (MPEG-2 at 24 kHz)
    "aac": (1024, 1024),  # one frame of priming; 1024-sample frames; ADTS cannot signal either
    "opus": (0, 0),  # Ogg pre-skip and the last page's granule position trim both
}


@pytest.mark.parametrize("fmt", ["pcm", "wav", "flac"])
def test_lossless_formats_are_bit_exact(fmt, chirp):
    data = b"".join(encode_chunks(make_encoder(fmt, SR), chirp, sizes=(CHUNK, 1234, 1)))
    y = np.frombuffer(data, "<i2") if fmt == "pcm" else np.rint(decode(data) * 32768).astype(np.int16)
    np.testing.assert_array_equal(y, chirp)


@pytest.mark.parametrize("fmt", LOSSY)
def test_lossy_formats_keep_length_and_content(fmt, chirp):
    y = decode(b"".join(encode_chunks(make_encoder(fmt, SR), chirp, sizes=(CHUNK, 1234, 1))))
    lead, max_tail = CODEC_PADDING[fmt]
    lag, corr = align(y, chirp)
    assert lag == lead
    assert 0 <= len(y) - lead - len(chirp) <= max_tail
    assert corr > 0.99


# Measured: the most input samples an encoder holds back at any point of a stream (lookahead and unfinished
# frames; for Opus also the Ogg page), with a little margin.
STREAM_HOLDBACK = {
    "mp3": 3456,  # 144 ms: LAME's lookahead and bit reservoir; measured up to 3407
    "aac": 3200,  # 133 ms: one frame of lookahead plus the frame being filled; measured up to 3070
    "flac": 2304,  # 96 ms: one FLAC block
    "opus": 1200,  # 50 ms: one 20 ms packet and libopus' 6.5 ms lookahead; measured up to 1114
}


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_compressed_streams_emit_bytes_as_they_go(fmt, chirp):
    """After each 0.2 s chunk there are new bytes, and the bytes sent so far decode to all the audio fed so
    far but for what the encoder holds back (STREAM_HOLDBACK)."""
    enc = make_encoder(fmt, SR)
    lead = CODEC_PADDING.get(fmt, (0, 0))[0]
    sent = b""
    for i in range(0, len(chirp), CHUNK):
        piece = enc.encode(chirp[i : i + CHUNK])
        assert piece, f"{fmt}: no bytes after chunk {i // CHUNK}"
        sent += piece
        fed = min(i + CHUNK, len(chirp))
        assert fed - (len(decode(sent)) - lead) <= STREAM_HOLDBACK[fmt]
    tail = enc.finish()
    assert len(tail) < 0.15 * len(sent + tail)


def test_streaming_wav_has_placeholder_sizes_and_decodes(chirp):
    pieces = encode_chunks(make_encoder("wav", SR), chirp)
    data = b"".join(pieces)
    assert pieces[0][:4] == b"RIFF" and len(pieces[0]) == 44 + 2 * CHUNK
    assert struct.unpack_from("<I", data, 4)[0] == struct.unpack_from("<I", data, 40)[0] == 0xFFFFFFFF
    assert pieces[-1] == b""
    np.testing.assert_array_equal(np.rint(decode(data) * 32768).astype(np.int16), chirp)


def test_empty_wav_stream_is_a_header():
    data = make_encoder("wav", SR).finish()
    assert len(data) == 44 and data[:4] == b"RIFF"


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_complete_files_come_from_finish(fmt, chirp):
    enc = make_encoder(fmt, SR, streaming=False)
    pieces = encode_chunks(enc, chirp)
    if fmt != "pcm":
        assert not any(pieces[:-1])
    y = np.frombuffer(b"".join(pieces), "<i2") / 32768 if fmt == "pcm" else decode(b"".join(pieces))
    lag, corr = align(y, chirp)
    if fmt in ("mp3", "opus", "flac", "wav", "pcm"):  # the MP3 file's LAME tag lets the decoder trim the padding
        assert lag == 0 and len(y) == len(chirp)
    assert corr > 0.99


def test_flac_stream_reports_unknown_length_file_reports_exact(chirp):
    def total_samples(data: bytes) -> int:
        # fLaC, 4-byte block header, STREAMINFO: total samples are the low 36 bits of bytes 13..17 of its body
        return int.from_bytes(data[8 + 13 : 8 + 18], "big") & 0xFFFFFFFFF

    streamed = b"".join(encode_chunks(make_encoder("flac", SR), chirp))
    whole = b"".join(encode_chunks(make_encoder("flac", SR, streaming=False), chirp))
    assert streamed[:4] == whole[:4] == b"fLaC"
    assert total_samples(streamed) == 0 and total_samples(whole) == len(chirp)


def test_content_types():
    expected = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac"}
    expected |= {"wav": "audio/wav", "pcm": "audio/pcm"}
    assert dict(CONTENT_TYPES) == expected
    for fmt, ctype in expected.items():
        assert output_format(fmt).content_type == ctype
        make_encoder(fmt, SR).close()


def test_unknown_format_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="pcm, wav, mp3, opus, aac, flac"):
        output_format("ogg")


@pytest.mark.parametrize("fmt", ["mp3", "pcm"])
def test_rejects_float_input(fmt):
    with pytest.raises(ValueError, match="int16"):
        make_encoder(fmt, SR).encode(np.zeros(10, np.float32))


def test_close_is_idempotent_and_ends_the_encoder(chirp):
    enc = make_encoder("opus", SR)
    enc.encode(chirp[:CHUNK])
    enc.close()
    enc.close()
    with pytest.raises(RuntimeError):
        enc.encode(chirp[:CHUNK])
