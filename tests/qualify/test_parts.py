"""tts-qualify's parts without a model: the CER arithmetic, the ASR callable path, the sweep's verdict and its
listener clock over a real socket, and the listening folder."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from app.qualify import asr, report, sweep
from tests.qualify import stand_in_asr
from tools.harness import free_port


def test_cer_counts_characters_after_normalizing() -> None:
    assert asr.cer("Terima kasih, encik!", "terima  kasih encik") == 0.0
    assert asr.cer("abc", "abd") == pytest.approx(1 / 3)
    assert asr.cer("abc", "") == 1.0 and asr.cer("ab", "abab") == 1.0
    assert asr.cer("您好，感谢您", "您 好 感 谢 你") == pytest.approx(1 / 5)  # 5 characters, the comma dropped
    assert asr.edit_distance("kitten", "sitting") == 3


def test_cer_by_group_weights_by_reference_length() -> None:
    rows = [("ms", "abcd", "abcd"), ("ms", "ab", ""), ("en", "hello", "hallo")]
    assert asr.cer_by_group(rows) == {"en": pytest.approx(0.2), "ms": pytest.approx(2 / 6)}


def test_a_named_callable_transcribes_a_mulaw_file(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 8000, subtype="ULAW")
    transcribe = asr.load_transcriber("tests.qualify.stand_in_asr:transcribe")
    assert asr.transcribe_file(transcribe, path, "ms") == ""
    assert stand_in_asr.CALLS[-1] == (8000, 8000, "ms")


def test_resample_keeps_the_duration() -> None:
    assert len(asr.resample(np.zeros(8000, dtype=np.float32), 8000, 16000)) == 16000


def stream(ok: bool = True, ttfa: float | None = 0.1, underrun: float = 0.0) -> sweep.Stream:
    return sweep.Stream(ok, ttfa, 2.0, 1.0 if ok else 0.0, underrun, None if ok else "HTTP 503")


def test_a_level_passes_only_within_the_target_and_without_underruns() -> None:
    def verdict(streams: list[sweep.Stream]) -> bool:
        return sweep.summarize(4, streams, 2.0, ttfa_target_s=0.5, underrun_tolerance_s=0.0).passed

    assert verdict([stream(ttfa=0.1)] * 19 + [stream(ttfa=0.4)])
    assert not verdict([stream(ttfa=0.1)] * 18 + [stream(ttfa=0.9)] * 2)  # p95 over the target
    assert not verdict([stream()] * 9 + [stream(underrun=0.02)])
    assert not verdict([stream()] * 9 + [stream(ok=False)])
    level = sweep.summarize(4, [stream()] * 4, 2.0, ttfa_target_s=0.5, underrun_tolerance_s=0.0)
    assert level.audio_s_per_s == 2.0 and level.tokens_per_s == 100.0


def test_best_and_the_decode_curve() -> None:
    levels = [sweep.summarize(c, [stream(ttfa=t)] * 4, 1.0, ttfa_target_s=0.5, underrun_tolerance_s=0.0)
              for c, t in ((1, 0.1), (2, 0.2), (4, 0.9))]  # fmt: skip
    assert sweep.best(levels) == 2
    assert sweep.decode_curve(levels) == ((1.0, 200.0), (2.0, 200.0), (4.0, 200.0))
    assert sweep.best(levels[2:]) == 0


@pytest.fixture(scope="module")
def pcm_server() -> Iterator[str]:
    """Streams 24 kHz PCM: /v1/audio/speech sends 0.1 s of audio, waits `gap` s (the body's `max_tokens` / 100),
    and sends 0.1 s more: a gap longer than 0.1 s is silence for the listener."""
    app = FastAPI()

    @app.post("/v1/audio/speech")
    async def speech(body: dict) -> StreamingResponse:
        gap = body["max_tokens"] / 100

        async def chunks() -> Iterator[bytes]:
            yield b"\0\0" * 2400
            await asyncio.sleep(gap)
            yield b"\0\0" * 2400

        return StreamingResponse(chunks(), media_type="audio/pcm")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_the_listener_clock_hears_a_late_chunk(pcm_server: str) -> None:
    async def run(gap_tokens: int) -> sweep.Stream:
        import httpx

        async with httpx.AsyncClient(base_url=pcm_server) as client:
            return await sweep.one_stream(client, {"max_tokens": gap_tokens})

    late, on_time = asyncio.run(run(40)), asyncio.run(run(2))
    assert late.ok and late.audio_s == pytest.approx(0.2) and 0.25 <= late.underrun_s <= 0.6
    assert on_time.ok and on_time.underrun_s == 0.0


def test_the_listening_folder(tmp_path: Path) -> None:
    data = {
        "model": "m", "ok": True, "checks": [{"name": "speech tokens", "ok": True, "detail": "d", "assumption": "a"}],
        "items": [{"id": "malay", "language": "ms", "text": "Baki <anda>", "normalized": "baki anda"}],
        "renders": [
            {"item": "malay", "line": "24k", "ok": True, "file": "malay.24k.wav", "listen_file": "malay.24k.wav",
             "ttfa_s": 0.2, "total_s": 1.0, "audio_s": 2.0, "cer": 0.5, "transcript": "baki"},
            {"item": "malay", "line": "8k-mulaw", "ok": False, "error": "HTTP 500"},
        ],
        "sweep": {"ttfa_target_s": 1.0, "best": 0, "levels": []},
    }  # fmt: skip
    data_path, index = report.write(tmp_path, data)
    html = index.read_text()
    assert "<audio controls preload=none src='malay.24k.wav'>" in html and "Baki &lt;anda&gt;" in html
    assert "first audio 0.200 s" in html and "CER 0.50" in html and "HTTP 500" in html
    assert json.loads(data_path.read_text())["renders"][0]["cer"] == 0.5


def test_a_streamed_wav_gets_its_sizes(tmp_path: Path) -> None:
    from app.audio.pcm import WAVE_FORMAT_MULAW, wav_header
    from app.qualify.render import with_sizes

    streamed = wav_header(8000, bits=8, format_tag=WAVE_FORMAT_MULAW) + b"\x01\x02" * 100
    assert int.from_bytes(streamed[4:8], "little") == 0xFFFFFFFF  # what the service streams
    fixed = with_sizes(streamed)
    assert fixed == wav_header(8000, bits=8, data_bytes=200, format_tag=WAVE_FORMAT_MULAW) + b"\x01\x02" * 100
    (tmp_path / "a.wav").write_bytes(fixed)
    info = sf.info(tmp_path / "a.wav")
    assert (info.samplerate, info.subtype, info.frames) == (8000, "ULAW", 200)
    with pytest.raises(ValueError, match="no WAV fmt and data chunks"):
        with_sizes(b"RIFF")
