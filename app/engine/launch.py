"""Where a front-end's codec engine comes from, and its client.

- a codec object handed in (tests, benchmarks): `EngineCore` serves it on a thread of this process (with the
  aligner of ALIGNER_MODEL, if set, loaded here);
- `ENGINE_ENDPOINT` set (a front-end worker of `tts-api` with `API_WORKERS` > 1): the parent runs the engine;
- otherwise: this process spawns and supervises the engine process.

Every front-end talks to the engine through the same ZMQ client (`EngineClient`) either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.codec.interface import Codec
from app.engine.client import EngineClient
from app.settings import EngineSettings

logger = logging.getLogger(__name__)


class EngineHost(Protocol):
    """What runs the engine for this process: an `EngineCore` thread or a supervised `EngineProcess`."""

    def stop(self) -> None: ...


@dataclass
class Engine:
    client: EngineClient
    host: EngineHost | None  # None: another process runs it


async def start_engine(
    settings: EngineSettings, *, codec: Codec | None = None, log_level: str = "info", on_fatal: Callable[[], None]
) -> Engine:
    """Start (or reach) the codec engine and connect to it; `on_fatal` is called if a supervised engine keeps dying."""
    from app.engine.process import EngineProcess, load_aligner, new_endpoint

    host: EngineHost | None = None
    if codec is not None:
        from app.engine.core import EngineCore

        aligner = await asyncio.to_thread(load_aligner, settings, codec.device)
        core = EngineCore.from_settings(codec, new_endpoint(), settings, aligner=aligner)
        core.start_thread()
        host, endpoint = core, core.endpoint
    elif settings.endpoint:
        endpoint = settings.endpoint
    else:
        logger.info("starting the codec engine process (%s)", settings.codec_model)
        proc = EngineProcess(settings, log_level=log_level, on_fatal=on_fatal)
        await asyncio.to_thread(proc.start)
        host, endpoint = proc, proc.endpoint
    client = EngineClient(
        endpoint,
        heartbeat_timeout=settings.heartbeat_timeout,
        hang_timeout=settings.hang_timeout,
        job_timeout=settings.job_timeout,
        restart_wait=settings.restart_wait,
    )
    try:
        await client.start(timeout=settings.start_timeout)
    except BaseException:
        if host is not None:
            await asyncio.to_thread(host.stop)
        raise
    return Engine(client, host)
