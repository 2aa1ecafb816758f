"""ALIGN jobs in the codec engine: run in the engine process on a real model, batched, failing alone, never
making the engine unhealthy; an engine without an aligner refuses them and reports nothing new."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zmq

from app.align.model import CTCAligner
from app.align.result import AlignRequest, AlignResult
from app.engine import messages as m
from app.engine.client import EngineClient
from app.engine.core import EngineCore
from app.engine.errors import AlignerUnavailable, CodecFailed, InvalidInput
from app.engine.launch import start_engine
from app.engine.worker import CodecEngine
from app.main import Components, create_app
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()
TEXTS = ["selamat pagi", "good morning, everyone", "早上好", "apa khabar", "terima kasih banyak", "ok"]


def requests() -> list[AlignRequest]:
    rng = np.random.default_rng(5)
    return [AlignRequest((0.1 * rng.standard_normal(int(24_000 * (0.8 + 0.1 * i)))).astype(np.float32), 24_000, t)
            for i, t in enumerate(TEXTS)]


def align_batches(client: EngineClient) -> tuple[float, float]:
    """(ALIGN jobs, ALIGN batches) as the engine's heartbeat last reported them."""
    reg = client.metrics_registry
    return (reg.get_sample_value("tts_codec_jobs_total", {"kind": "align"}) or 0.0,
            reg.get_sample_value("tts_codec_batch_size_count", {"kind": "align"}) or 0.0)


@pytest.mark.skipif(not (CODEC_DIR / "pytorch_model.bin").exists(), reason=f"no tiny codec at {CODEC_DIR}")
async def test_align_jobs_run_batched_in_the_engine_process(
    settings_for: Callable[..., Settings], tiny_aligner_dir: Path
) -> None:
    settings = settings_for(codec_model=str(CODEC_DIR), codec_load_encoder=False, codec_threads=1,
                            aligner_model=str(tiny_aligner_dir), dynamic_batching=True, microsleep=0.05)
    engine = await start_engine(settings.engine, on_fatal=lambda: None)
    try:
        assert engine.host is not None and engine.host.pid != os.getpid()
        assert engine.client.has_aligner and engine.client.healthy
        reqs = requests()
        results = await asyncio.gather(*(engine.client.align(r.audio, r.sample_rate, r.text) for r in reqs))
        expected = CTCAligner.from_pretrained(str(tiny_aligner_dir)).align(reqs)
        for result, want, req in zip(results, expected, reqs, strict=True):
            assert isinstance(result, AlignResult) and result.source == "aligned"
            assert (result.text, result.sample_rate) == (req.text, 24_000)
            np.testing.assert_array_equal(result.spans, want)
        await engine.client.refresh()
        jobs, batches = align_batches(engine.client)
        assert jobs == len(reqs) and batches < jobs  # several segments per forward pass
        # the codec serves on beside it
        assert (await engine.client.decode(np.arange(5))).shape == (5 * 480,)
    finally:
        await engine.client.close()
        assert engine.host is not None
        await asyncio.to_thread(engine.host.stop)


async def test_a_segment_too_short_for_its_text_fails_alone(tmp_path: Path, tiny_aligner_dir: Path) -> None:
    aligner = CTCAligner.from_pretrained(str(tiny_aligner_dir))
    core = EngineCore(LocalCodec(), f"ipc://{tmp_path}/e.sock", max_batch_size=1, microsleep=0.05, aligner=aligner)
    core.start_thread()
    client = EngineClient(core.endpoint)
    try:
        await client.start(timeout=10)
        good, short = requests()[0], np.zeros(800, np.float32)
        ok, bad, ok2 = await asyncio.gather(
            client.align(good.audio, 24_000, good.text),
            client.align(short, 24_000, "far too much text for 33 ms"),
            client.align(good.audio, 24_000, good.text),
            return_exceptions=True,
        )
        assert isinstance(bad, InvalidInput) and "too short" in str(bad)
        assert isinstance(ok, AlignResult) and isinstance(ok2, AlignResult)
        np.testing.assert_array_equal(ok.spans, ok2.spans)
        for _ in range(4):  # more failures than make a codec unhealthy
            with pytest.raises(InvalidInput):
                await client.align(short, 24_000, "far too much text")
        await client.refresh()
        assert client.healthy
        with pytest.raises(InvalidInput, match="sample_rate"):
            await client.align(good.audio, 0, good.text)
    finally:
        await client.close()
        core.stop()


async def test_without_an_aligner_align_is_refused_and_the_heartbeat_unchanged(tmp_path: Path) -> None:
    core = EngineCore(LocalCodec(), f"ipc://{tmp_path}/e.sock", max_batch_size=1, microsleep=0.0)
    beat = core.heartbeat()
    assert not beat.has_aligner and set(beat.queue_depth) == {m.JobKind.DECODE, m.JobKind.ENCODE}
    assert set(core.worker.kinds) == {m.JobKind.DECODE, m.JobKind.ENCODE}
    core.start_thread()
    client = EngineClient(core.endpoint)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        await client.start(timeout=10)
        assert not client.has_aligner
        with pytest.raises(AlignerUnavailable):
            await client.align(np.zeros(24_000, np.float32), 24_000, "hello")
        # a front-end that sends one all the same gets a typed refusal; so does an ALIGN sent as a plain Submit
        sock.connect(core.endpoint)
        audio = np.zeros(2400, np.float32)
        sock.send_multipart([m.encode(m.Align(1, audio.dtype.str, 24_000, "hi")), audio.tobytes()])
        sock.send_multipart([m.encode(m.Submit(2, m.JobKind.ALIGN, audio.dtype.str)), audio.tobytes()])
        answers = {}
        while len(answers) < 2:
            assert sock.poll(5000), "the engine did not answer"
            msg = m.decode_to_frontend(sock.recv_multipart()[0])
            if isinstance(msg, m.Result):
                answers[msg.id] = msg
        assert answers[1].error_kind is m.ErrorKind.INVALID and "ALIGNER_MODEL" in answers[1].error
        assert answers[2].error_kind is m.ErrorKind.INVALID and "Align" in answers[2].error
        assert (await client.decode(np.arange(3))).shape == (3 * 480,)
    finally:
        sock.close(0)
        await client.close()
        core.stop()


@pytest.mark.parametrize("on", [True, False])
async def test_the_service_aligns_or_says_none(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tiny_aligner_dir: Path, on: bool
) -> None:
    settings = settings_for(aligner_model=str(tiny_aligner_dir) if on else "")
    app = create_app(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer()))
    async with app.router.lifespan_context(app):
        for _ in range(600):  # the models load after start-up
            if app.state.service is not None or getattr(app.state, "startup_error", None) is not None:
                break
            await asyncio.sleep(0.05)
        service = app.state.service
        assert service is not None, getattr(app.state, "startup_error", None)
        req = requests()[1]
        spans = await service.timings.align(req.audio, req.text)
        if not on:
            assert spans is None
            return
        assert [s.char for s in spans] == list(req.text)
        assert all(0 <= s.start_sample <= s.end_sample <= len(req.audio) for s in spans)
        assert all(a.end_sample <= b.start_sample for a, b in zip(spans, spans[1:], strict=False))
        assert await service.timings.align(np.zeros(100, np.float32), "too short for this") is None  # logged, not raised


def test_a_slow_or_failing_aligner_never_makes_the_engine_unhealthy() -> None:
    class BrokenAligner:
        def __init__(self) -> None:
            self.started, self.release = threading.Event(), threading.Event()

        def align(self, requests: list) -> list:
            self.started.set()
            self.release.wait(10)
            raise RuntimeError("aligner broke")

    aligner = BrokenAligner()
    worker = CodecEngine(LocalCodec(), max_batch_size=1, microsleep=0.0, timeout=0.05, unhealthy_after=1,
                         aligner=aligner)
    worker.start()
    try:
        errors: queue.Queue = queue.Queue()
        for _ in range(3):
            worker.submit(m.JobKind.ALIGN, AlignRequest(np.zeros(10, np.float32), 24_000, "a"),
                          lambda result, exc: errors.put(exc))
        assert aligner.started.wait(10)
        time.sleep(0.2)
        assert worker.healthy  # an align batch running past the hang timeout
        aligner.release.set()
        assert all(isinstance(errors.get(timeout=10), CodecFailed) for _ in range(3))
        assert worker.healthy  # three failures, one more than unhealthy_after
        worker.submit(m.JobKind.DECODE, np.array([70_000]), lambda result, exc: errors.put(exc))  # a codec failure
        assert isinstance(errors.get(timeout=10), CodecFailed)
        assert not worker.healthy  # does count
    finally:
        worker.stop()


async def test_websocket_timestamps_come_from_the_aligner_when_it_is_on(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tiny_aligner_dir: Path
) -> None:
    """Our WebSocket's `timestamps` events: `source` "aligned" with ALIGNER_MODEL set, each segment still tiling
    the delivered audio to the sample, every word once and in order inside it."""
    import json

    import websockets

    from tools.harness import serve

    sentences = ["selamat pagi semua.", "good morning, everyone."]
    settings = settings_for(aligner_model=str(tiny_aligner_dir))
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        async with websockets.connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream") as ws:
            await ws.send(json.dumps({"type": "config", "voice": "jenny", "timestamps": "word"}))
            for s in sentences:
                await ws.send(json.dumps({"type": "text", "text": s + " "}))
            await ws.send(json.dumps({"type": "close"}))
            stamps, samples = [], 0
            async for message in ws:
                if isinstance(message, bytes):
                    samples += len(message) // 2
                elif (ev := json.loads(message))["type"] == "timestamps":
                    stamps.append(ev)
    seg = [len(fake.expected_tokens(r.prompt)) * 480 for r in fake.requests]  # one backend request per segment
    assert stamps and [e["source"] for e in stamps] == ["aligned"] * len(seg)
    assert [round(e["end"] * 24000) for e in stamps] == [sum(seg[: k + 1]) for k in range(len(seg))]
    assert stamps[-1]["end"] == round(samples / 24000, 3)
    words = [w["word"] for e in stamps for w in e["words"]]
    assert words == " ".join(sentences).split()
    for e in stamps:
        assert all(e["start"] <= w["start"] <= w["end"] <= e["end"] for w in e["words"])
        assert [w["start"] for w in e["words"]] == sorted(w["start"] for w in e["words"])
