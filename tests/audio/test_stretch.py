from __future__ import annotations

import numpy as np
import pytest

from app.audio.stretch import TimeStretcher

SR = 24000
CHUNKS = (4800, 7331, 1200, 36000)  # 0.2 s, odd, 50 ms, 1.5 s: cycled


def tone(seconds: float = 3.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stretch_chunked(speed: float, x: np.ndarray, sizes=CHUNKS) -> tuple[np.ndarray, list[np.ndarray]]:
    st = TimeStretcher(speed, SR)
    outs, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        outs.append(st.process(x[i : i + n]))
        i, k = i + n, k + 1
    outs.append(st.flush())
    return np.concatenate(outs), outs


def dominant_frequency(y: np.ndarray) -> float:
    """Peak of a Hann-windowed spectrum, refined by parabolic interpolation on the log magnitude."""
    mag = np.log(np.abs(np.fft.rfft(y * np.hanning(len(y)))) + 1e-12)
    k = int(np.argmax(mag))
    a, b, c = mag[k - 1 : k + 2]
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / len(y)


@pytest.mark.parametrize("speed", [0.25, 0.5, 0.8, 1.25, 2.0, 4.0])
def test_duration_scales_and_pitch_is_kept(speed):
    x = tone()
    y, _ = stretch_chunked(speed, x)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) / speed) <= 0.02 * len(x) / speed
    middle = y[len(y) // 4 : 3 * len(y) // 4]
    assert dominant_frequency(middle) == pytest.approx(440.0, rel=0.02)
    rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(middle**2))
    assert rms_out == pytest.approx(rms_in, rel=0.2)


def test_speed_two_halves_and_half_doubles():
    x = tone(2.0)
    assert len(stretch_chunked(2.0, x)[0]) == pytest.approx(len(x) / 2, rel=0.02)
    assert len(stretch_chunked(0.5, x)[0]) == pytest.approx(len(x) * 2, rel=0.02)


def test_speed_one_is_bit_identical():
    x = np.random.default_rng(0).uniform(-1, 1, 20000).astype(np.float32)
    y, outs = stretch_chunked(1.0, x)
    np.testing.assert_array_equal(y, x)
    assert len(outs[-1]) == 0


@pytest.mark.parametrize("speed", [0.5, 2.0, 4.0])
def test_chunked_matches_one_shot(speed):
    x = tone(2.0, freq=300.0) + 0.5 * tone(2.0, freq=1234.0)
    chunked, _ = stretch_chunked(speed, x)
    whole, _ = stretch_chunked(speed, x, sizes=(len(x),))
    assert len(chunked) == len(whole) == round(len(x) / speed)
    assert np.corrcoef(chunked, whole)[0, 1] > 0.99


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_output_streams_with_bounded_latency(speed):
    """Output follows input chunk by chunk, at most ~0.15 s of input behind (Rubber Band R3's window)."""
    x = tone(2.0)
    st = TimeStretcher(speed, SR)
    fed = produced = 0
    for i in range(0, len(x), 4800):
        produced += len(st.process(x[i : i + 4800]))
        fed += len(x[i : i + 4800])
        assert produced >= (fed - 0.15 * SR) / speed


@pytest.mark.parametrize("speed", [0.2, 4.5, 0.0, -1.0])
def test_rejects_speed_out_of_range(speed):
    with pytest.raises(ValueError, match="0.25 and 4.0"):
        TimeStretcher(speed)


def test_rejects_multichannel_input():
    with pytest.raises(ValueError):
        TimeStretcher(2.0).process(np.zeros((2, 100), np.float32))


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_flush_ends_the_stream(speed):
    st = TimeStretcher(speed)
    st.process(tone(0.5))
    st.flush()
    with pytest.raises(RuntimeError):
        st.process(tone(0.1))
