"""`create_app()` and its lifespan, which owns all heavy start-up and shutdown; `run()` is `tts-api`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from app import __version__
from app.api.errors import install_error_handlers
from app.api.routes import public, v1
from app.env import Settings, SettingsError, load_settings

logger = logging.getLogger("app")


@dataclass
class Components:
    """Pre-built parts, for tests and benchmarks; anything left None is loaded from the settings."""

    codec: Any = None  # app.codec.runtime.CodecRuntime or a stand-in with decode/encode/resample_to_16k
    normalizer: Any = None  # app.text.normalizer.Normalizer or a stand-in with normalize()


def _load_codec(settings: Settings) -> Any:
    from app.codec.runtime import CodecRuntime

    codec = CodecRuntime.from_settings(settings)
    codec.warmup()
    return codec


def _load_normalizer(settings: Settings) -> Any:
    from app.text.normalizer import Normalizer

    normalizer = Normalizer(settings.normalizer_overrides_path or None)
    normalizer.warmup()
    return normalizer


def _init_sentry(settings: Settings) -> None:
    if not settings.sentry_dsn.strip():
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn.strip(),
        send_default_pii=settings.sentry_send_default_pii,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        release=f"streamable-tts-api@{__version__}",
    )
    logger.info("Sentry initialised (send_default_pii=%s)", settings.sentry_send_default_pii)


async def start_service(app: FastAPI) -> None:
    """Load the models, start the codec worker and the backend client; publish the service on `app.state`."""
    from app.backend.vllm import VLLMClient
    from app.engine.worker import CodecEngine
    from app.serving import SpeechService

    settings: Settings = app.state.settings
    parts: Components = app.state.components
    logger.info("loading codec %s and the text normalizer", settings.codec_model)
    codec, normalizer = await asyncio.gather(
        asyncio.to_thread(_load_codec, settings) if parts.codec is None else _ready(parts.codec),
        asyncio.to_thread(_load_normalizer, settings) if parts.normalizer is None else _ready(parts.normalizer),
    )
    engine = CodecEngine(
        codec,
        dynamic_batching=settings.dynamic_batching,
        max_batch_size=settings.max_batch_size,
        microsleep=settings.microsleep,
        timeout=settings.codec_timeout_seconds,
    )
    engine.start()
    backend = VLLMClient(
        settings.tts_api,
        settings.model_name,
        api_key=settings.tts_api_key,
        connect_timeout=settings.backend_connect_timeout,
        read_timeout=settings.backend_read_timeout,
        stall_timeout=settings.backend_stall_timeout,
        max_connections=settings.backend_max_connections,
    )
    app.state.service = SpeechService(
        settings,
        backend,
        engine,
        normalizer,
        codec.resample_to_16k,
        has_encoder=bool(getattr(codec, "has_encoder", False)),
    )
    if not await backend.ready():
        logger.warning("TTS backend %s does not answer yet; /ready stays 503 until it does", settings.tts_api)
    logger.info("service ready on model %s via %s", settings.model_name, settings.tts_api)


async def stop_service(app: FastAPI) -> None:
    service = app.state.service
    app.state.service = None
    if service is not None:
        service.engine.stop()
        service.close()
        await service.backend.aclose()
        logger.info("service stopped")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serve `/health` at once; load the models in the background (`/ready` is 503 until they are).

    A failed start-up is fatal: it is logged and the process is asked to stop (`tts-api` then exits 1).
    """
    _init_sentry(app.state.settings)

    async def load() -> None:
        try:
            await start_service(app)
        except Exception as exc:
            logger.exception("start-up failed; stopping")
            app.state.startup_error = exc
            stop = getattr(app.state, "request_shutdown", None)
            if stop is not None:
                stop()
            else:  # served by someone else's uvicorn: ask the process to stop
                os.kill(os.getpid(), signal.SIGTERM)

    app.state.startup_error = None
    loading = asyncio.create_task(load(), name="start-service")
    try:
        yield
    finally:
        loading.cancel()
        with suppress(asyncio.CancelledError):
            await loading
        await stop_service(app)


async def _ready(value: Any) -> Any:
    return value


def create_app(settings: Settings | None = None, components: Components | None = None) -> FastAPI:
    """Build the app; nothing heavy happens until the lifespan starts."""
    settings = settings or load_settings()
    app = FastAPI(title="Streamable TTS API", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.components = components or Components()
    app.state.service = None
    install_error_handlers(app)
    app.include_router(public)
    app.include_router(v1)
    return app


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def run(argv: list[str] | None = None) -> None:
    """`tts-api`: start uvicorn on HOST:PORT (default 0.0.0.0:9091)."""
    parser = argparse.ArgumentParser(prog="tts-api", description=__doc__)
    parser.add_argument("--host", help="overrides HOST")
    parser.add_argument("--port", type=int, help="overrides PORT")
    parser.add_argument("--env-file", default=".env", help="settings file (default .env)")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"_env_file": args.env_file}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"tts-api: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    import uvicorn

    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, timeout_graceful_shutdown=10
    )
    server = uvicorn.Server(config)
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    server.run()
    if app.state.startup_error is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    run()
