"""The engine's socket protocol from a raw peer: a job the worker refuses fails alone, the engine serves on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from app.engine import messages as m
from app.engine.core import EngineCore
from tools.harness import LocalCodec


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[str]:
    endpoint = f"ipc://{tmp_path}/engine.sock"
    core = EngineCore(LocalCodec(), endpoint, dynamic_batching=True, max_batch_size=4, microsleep=0.0)
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
        tokens = np.arange(10, dtype=np.int32)
        sock.send_multipart([m.encode(m.Submit(1, "decode", tokens.dtype.str, 7, False, slack)), tokens.tobytes()])
        bad, payload = result(sock)
        assert (bad.id, bad.error_kind, payload) == (1, "invalid", []) and "slack" in bad.error
        sock.send_multipart([m.encode(m.Submit(2, "decode", tokens.dtype.str, 7, True, -0.5)), tokens.tobytes()])
        good, payload = result(sock)
        assert good.id == 2 and good.error is None
        assert m.frame_array(good.dtype, payload[0]).shape == (10 * 480,)
    finally:
        sock.close(0)
