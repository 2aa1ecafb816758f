from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from app.audio.formats import WavEncoder
from app.audio.pcm import STREAMING_SIZE, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, float_to_int16, wav_header


def test_float_to_int16_clips_rounds_and_is_symmetric():
    x = np.array([0.0, 1.0, -1.0, 2.0, -3.0, 0.5, -0.5, 1.4 / 32767, 1.6 / 32767], np.float32)
    y = float_to_int16(x)
    assert y.dtype == np.int16 and y.shape == x.shape
    np.testing.assert_array_equal(y, [0, 32767, -32767, 32767, -32767, 16384, -16384, 1, 2])
    z = np.random.default_rng(0).uniform(-1.2, 1.2, 1000).astype(np.float32)
    np.testing.assert_array_equal(float_to_int16(-z), -float_to_int16(z))


def test_streaming_wav_header_has_placeholder_sizes():
    h = wav_header(24000)
    assert len(h) == 44 and h[:4] == b"RIFF" and h[8:16] == b"WAVEfmt " and h[36:40] == b"data"
    riff_size, data_size = struct.unpack_from("<I", h, 4)[0], struct.unpack_from("<I", h, 40)[0]
    assert riff_size == data_size == STREAMING_SIZE == 0xFFFFFFFF
    fmt, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", h, 20)
    assert (fmt, channels, rate, byte_rate, align, bits) == (1, 1, 24000, 48000, 2, 16)


def test_complete_wav_file_has_exact_sizes_and_reads_back():
    pcm = np.random.default_rng(1).integers(-32768, 32767, 12345, dtype=np.int16)
    enc = WavEncoder(24000, streaming=False)
    data = enc.encode(pcm) + enc.finish()
    assert len(data) == 44 + 2 * len(pcm)
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert struct.unpack_from("<I", data, 40)[0] == 2 * len(pcm)
    y, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 24000
    np.testing.assert_array_equal(y, pcm)


def test_wav_header_rejects_partial_frames():
    with pytest.raises(ValueError):
        wav_header(data_bytes=3)


def test_g711_wav_header_has_its_format_tag_cbsize_and_fact_chunk():
    h = wav_header(8000, bits=8, data_bytes=16000, format_tag=WAVE_FORMAT_MULAW)
    assert len(h) == 58
    assert struct.unpack("<4sI4s", h[:12]) == (b"RIFF", 50 + 16000, b"WAVE")
    assert struct.unpack("<4sIHHIIHHH", h[12:38]) == (b"fmt ", 18, 7, 1, 8000, 8000, 1, 8, 0)
    assert struct.unpack("<4sII4sI", h[38:58]) == (b"fact", 4, 16000, b"data", 16000)
    stream = wav_header(8000, bits=8, format_tag=WAVE_FORMAT_ALAW)
    assert struct.unpack("<H", stream[20:22])[0] == 6
    assert struct.unpack("<I", stream[4:8])[0] == struct.unpack("<I", stream[54:58])[0] == STREAMING_SIZE
    with pytest.raises(ValueError, match="8 bits"):
        wav_header(8000, bits=16, format_tag=WAVE_FORMAT_MULAW)
    with pytest.raises(ValueError, match="format_tag"):
        wav_header(8000, format_tag=3)
