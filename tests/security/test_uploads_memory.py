"""Uploads bounded by what they decode to: the probe was a 43 KB FLAC, 8 channels at 192 kHz for 29 s, accepted
with a +799 MiB peak. Channels and decoded bytes are now read from the header before decoding, and a clip at the
limits decodes block by block.

Memory is watched with tracemalloc in this process: numpy's buffers (every decoded block, the mono array, the
resampler's arrays) are traced, libsndfile's small internal buffers are not."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf

from app.audio.resample import resample_to_16k
from app.errors import InvalidRequestError
from app.service.references import read_reference
from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM

MiB = 1024 * 1024


def flac(channels: int, rate: int, seconds: float, *, tone: bool = False) -> bytes:
    """A FLAC clip written block by block (the test itself never holds the decoded clip)."""
    buf = io.BytesIO()
    frames = int(rate * seconds)
    with sf.SoundFile(buf, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        t = np.arange(rate, dtype=np.float32) / rate
        block = np.repeat((0.1 * np.sin(2 * np.pi * 220 * t) if tone else 0 * t)[:, None], channels, axis=1)
        for start in range(0, frames, rate):
            f.write(block[: min(rate, frames - start)])
    return buf.getvalue()


@pytest.fixture(scope="module")
def probe() -> bytes:
    return flac(8, 192_000, 29)


def peak_while(fn) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result: object = None
        try:
            result = fn()
        except InvalidRequestError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def read(data: bytes) -> np.ndarray:
    return read_reference(
        data, max_bytes=20 * MiB, max_seconds=30.0, resample_to_16k=resample_to_16k,
        max_channels=2, max_decoded_bytes=48 * MiB,
    )


def test_the_probe_is_refused_from_its_header_with_almost_no_memory(probe: bytes) -> None:
    assert len(probe) < 200_000
    result, peak = peak_while(lambda: read(probe))
    assert isinstance(result, InvalidRequestError) and "8 channels" in result.message
    assert peak < 10 * MiB


def test_a_clip_that_decodes_to_too_many_bytes_is_refused_before_decoding() -> None:
    data = flac(1, 192_000, 29)
    with pytest.raises(InvalidRequestError) as exc:
        read_reference(
            data, max_bytes=20 * MiB, max_seconds=30.0, resample_to_16k=resample_to_16k, max_decoded_bytes=8 * MiB
        )
    assert "decodes to" in exc.value.message


def test_the_largest_accepted_clip_peaks_under_150_mib() -> None:
    data = flac(2, 192_000, 29, tone=True)  # 2 channels at 192 kHz for 29 s: 44.5 MB as float32 stereo
    result, peak = peak_while(lambda: read(data))
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    assert abs(len(result) - 16_000 * 29) <= 16
    assert np.abs(result).max() == pytest.approx(0.1, abs=0.01)  # the tone, mixed to mono
    assert peak < 100 * MiB, f"peak {peak / MiB:.0f} MiB"  # the acceptance: under 150 MiB


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with FakeVLLM(n_tokens=40, rate=0) as fake, serve_like_tts_api(limits_settings(fake.url)) as (base, _):
        yield base


def test_the_probe_upload_is_a_400(url: str, probe: bytes) -> None:
    resp = httpx.post(
        f"{url}/v1/audio/vc",
        data={"reference_text": "hello", "generate_text": "hello there", "stream": "false"},
        files={"reference_audio": ("probe.flac", probe, "audio/flac")},
        timeout=60,
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == "reference_audio" and "channels" in error["message"]


@pytest.mark.parametrize("rate", [192_000, 44_100, 48_000])
def test_resampling_a_long_clip_in_pieces_gives_the_whole_clips_samples(rate: int) -> None:
    from app.service.references import _resample_in_pieces

    x = (np.random.default_rng(rate).standard_normal(rate * 25) * 0.1).astype(np.float32)
    np.testing.assert_array_equal(_resample_in_pieces(x, rate, resample_to_16k), resample_to_16k(x[:, None], rate))


RSS_PROBE = """
import sys
from pathlib import Path

import scipy.signal  # noqa: F401  (imported before the baseline: module code is not what decoding costs)
import soundfile  # noqa: F401

from app.audio.resample import resample_to_16k
from app.service.references import read_reference


def kib(name):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])


data = Path(sys.argv[1]).read_bytes()

base = kib("VmRSS")
read_reference(data, max_bytes=20 << 20, max_seconds=30.0, resample_to_16k=resample_to_16k)
print((kib("VmHWM") - base) / 1024)
"""


def test_the_whole_process_peaks_under_150_mib_decoding_the_largest_clip(tmp_path) -> None:
    """The same, watched from outside: a fresh process's resident high-water mark (libsndfile included)."""
    import subprocess
    import sys
    from pathlib import Path

    clip = tmp_path / "clip.flac"
    clip.write_bytes(flac(2, 192_000, 29, tone=True))
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(clip)], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2], check=True,
    )
    grew = float(out.stdout.strip().splitlines()[-1])
    assert grew < 150, f"the process grew by {grew:.0f} MiB"
