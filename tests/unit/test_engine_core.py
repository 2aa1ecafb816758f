"""The engine's socket protocol: a job the engine refuses fails alone, the engine serves on; the client raises the
engine's errors; the heartbeat is typed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from app.codec.interface import TOKEN_DTYPE, CodecStats, Geometry
from app.engine import messages as m
from app.engine.client import EngineClient
from app.engine.core import EngineCore
from app.engine.errors import CodecFailed, InvalidInput
from tools.harness import LocalCodec


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[str]:
    endpoint = f"ipc://{tmp_path}/engine.sock"
    core = EngineCore(LocalCodec(), endpoint, max_batch_size=4, microsleep=0.0)
    core.start_thread()
    try:
        yield endpoint
    finally:
        core.stop()


def result(sock: zmq.Socket) -> tuple[m.Result, list[bytes]]:
    assert sock.poll(5000), "the engine did not answer"
    while True:
        frames = sock.recv_multipart()
        msg = m.decode_to_frontend(frames[0])
        if isinstance(msg, m.Result):
            return msg, frames[1:]


@pytest.mark.parametrize("slack", [float("nan"), float("inf")])
def test_a_window_with_a_non_finite_slack_fails_alone(engine: str, slack: float) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(engine)
    try:
        tokens = np.arange(10, dtype=TOKEN_DTYPE)
        decode = m.JobKind.DECODE
        sock.send_multipart([m.encode(m.Submit(1, decode, tokens.dtype.str, 7, False, slack)), tokens.tobytes()])
        bad, payload = result(sock)
        assert (bad.id, bad.error_kind, payload) == (1, m.ErrorKind.INVALID, []) and "slack" in bad.error
        sock.send_multipart([m.encode(m.Submit(2, decode, tokens.dtype.str, 7, True, -0.5)), tokens.tobytes()])
        good, payload = result(sock)
        assert good.id == 2 and good.error is None
        assert m.frame_array(good.dtype, payload[0]).shape == (10 * 480,)
    finally:
        sock.close(0)


def test_a_window_of_another_dtype_fails_alone(engine: str) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(engine)
    try:
        tokens = np.arange(10, dtype=np.int32)
        sock.send_multipart([m.encode(m.Submit(1, m.JobKind.DECODE, tokens.dtype.str)), tokens.tobytes()])
        bad, payload = result(sock)
        assert (bad.error_kind, payload) == (m.ErrorKind.INVALID, []) and str(TOKEN_DTYPE) in bad.error
    finally:
        sock.close(0)


async def test_the_client_raises_the_engine_errors_and_reports_the_geometry(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/engine.sock"
    core = EngineCore(LocalCodec(), endpoint, max_batch_size=1, microsleep=0.0)
    core.start_thread()
    client = EngineClient(endpoint)
    try:
        await client.start(timeout=10)
        assert client.geometry == Geometry(24_000, 480) and client.geometry.tokens_per_second == 50
        assert (await client.decode(np.arange(3))).shape == (3 * 480,)
        with pytest.raises(InvalidInput, match="slack"):
            await client.decode(np.arange(3), slack=float("nan"))
        with pytest.raises(CodecFailed, match="bad window"):
            await client.decode(np.array([70_000]))  # outside LocalCodec's ids
    finally:
        await client.close()
        core.stop()


def test_the_heartbeat_carries_the_counters_typed(tmp_path: Path) -> None:
    core = EngineCore(LocalCodec(), f"ipc://{tmp_path}/engine.sock", max_batch_size=1,
                      microsleep=0.0)
    core.worker.stats.jobs[m.JobKind.DECODE] = 3
    core.worker.stats.batch_sizes[2] = 1
    beat = m.decode_to_frontend(m.encode(core.heartbeat()))
    assert isinstance(beat, m.Heartbeat)
    assert beat.geometry == Geometry(24_000, 480) and beat.device == "cpu" and beat.has_encoder
    assert beat.queue_depth == {m.JobKind.DECODE: 0, m.JobKind.ENCODE: 0}
    assert beat.worker.jobs == {m.JobKind.DECODE: 3} and beat.worker.batch_sizes == {2: 1}
    assert isinstance(beat.codec, CodecStats) and beat.codec.windows == 0
