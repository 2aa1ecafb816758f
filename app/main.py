"""`create_app()` and its lifespan, which owns all heavy start-up and shutdown; `run()` is `tts-api`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.api import elevenlabs, ws
from app.api.errors import install_error_handlers
from app.api.openapi import docs_router, service_openapi
from app.api.routes import public, require_api_key_if, v1
from app.env import Settings, SettingsError, load_settings
from app.logs import configure_logging
from app.metrics import ServiceMetrics

logger = logging.getLogger("app")

PLAYGROUND_DIR = Path(__file__).parent / "static" / "playground"

# response headers a browser page on another origin may read
EXPOSED_HEADERS = [
    "X-Request-Id",
    "X-Sample-Rate",
    "X-Channels",
    "X-Bit-Depth",
    "X-Audio-Sample-Rate",
    "X-Audio-Channels",
    "X-Audio-Bit-Depth",
]


@dataclass
class Components:
    """Pre-built parts, for tests and benchmarks; anything left None is loaded from the settings."""

    codec: Any = None  # app.codec.runtime.CodecRuntime or a stand-in with decode/encode/resample_to_16k
    normalizer: Any = None  # app.text.normalizer.Normalizer or a stand-in with normalize()


def _load_normalizer(settings: Settings) -> Any:
    if settings.text_normalizer == "none":
        from app.text.plain import PlainNormalizer

        return PlainNormalizer()
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


async def _start_engine(app: FastAPI) -> Any:
    """Connect to the codec engine, starting it first where this process owns it. Returns its client.

    - `Components.codec` given (tests, benchmarks): the engine serves that object on a thread of this process.
    - `ENGINE_ENDPOINT` set (a front-end of `tts-api` with `API_WORKERS` > 1): the parent runs the engine.
    - otherwise: this process spawns and supervises the engine process.
    Every front-end talks to the engine through the same ZMQ client either way.
    """
    from app.engine.client import EngineClient
    from app.engine.process import EngineProcess, new_endpoint

    settings: Settings = app.state.settings
    parts: Components = app.state.components
    if parts.codec is not None:
        from app.engine.core import EngineCore

        core = EngineCore.from_settings(parts.codec, new_endpoint(), settings)
        core.start_thread()
        app.state.engine_host = core
        endpoint = core.endpoint
    elif settings.engine_endpoint:
        endpoint = settings.engine_endpoint
    else:
        logger.info("starting the codec engine process (%s)", settings.codec_model)
        proc = EngineProcess(
            settings, on_fatal=lambda: _request_shutdown(app), max_restarts=settings.engine_max_restarts
        )
        app.state.engine_host = proc
        await asyncio.to_thread(proc.start)
        endpoint = proc.endpoint
    client = EngineClient(
        endpoint,
        heartbeat_timeout=settings.engine_heartbeat_timeout,
        hang_timeout=settings.engine_hang_timeout,
        job_timeout=settings.codec_timeout_seconds,
    )
    await client.start(timeout=settings.engine_start_timeout)
    return client


async def start_service(app: FastAPI) -> None:
    """Start (or reach) the codec engine, load the normalizer, open the backend client; publish the service."""
    from app.audio.resample import resample_to_16k
    from app.backend.vllm import VLLMClient
    from app.serving import SpeechService

    settings: Settings = app.state.settings
    parts: Components = app.state.components
    logger.info("loading the text normalizer and the codec engine (%s)", settings.codec_model)
    engine, normalizer = await asyncio.gather(
        _start_engine(app),
        asyncio.to_thread(_load_normalizer, settings) if parts.normalizer is None else _ready(parts.normalizer),
    )
    backend = VLLMClient(
        settings.tts_api,
        settings.model_name,
        api_key=settings.tts_api_key,
        connect_timeout=settings.backend_connect_timeout,
        read_timeout=settings.backend_read_timeout,
        stall_timeout=settings.backend_stall_timeout,
        max_connections=settings.backend_max_connections,
    )
    await backend.start()
    app.state.service = SpeechService(
        settings, backend, engine, normalizer, resample_to_16k, has_encoder=engine.has_encoder, metrics=app.state.metrics
    )
    if not await backend.ready():
        logger.warning("TTS backend %s does not answer yet; /ready stays 503 until it does", settings.tts_api)
    logger.info("service ready on model %s via %s", settings.model_name, settings.tts_api)


async def stop_service(app: FastAPI) -> None:
    service = app.state.service
    app.state.service = None
    if service is not None:
        service.close()
        await service.engine.close()
        await service.backend.aclose()
    host = getattr(app.state, "engine_host", None)
    app.state.engine_host = None
    if host is not None:
        await asyncio.to_thread(host.stop)
    logger.info("service stopped")


def _request_shutdown(app: FastAPI) -> None:
    stop = getattr(app.state, "request_shutdown", None)
    if stop is not None:
        stop()
    else:  # served by someone else's uvicorn: ask the process to stop
        os.kill(os.getpid(), signal.SIGTERM)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serve `/health` at once; load the models in the background (`/ready` is 503 until they are).

    A failed start-up is fatal: it is logged and the process is asked to stop (`tts-api` then exits 1).
    A front-end worker of several (`API_WORKERS` > 1) loads before it serves instead: its siblings share the
    listening socket, so a worker that accepted connections while still loading would answer 503 to requests
    that a ready sibling could serve (the engine, the slow part, is already up in the parent by then).
    """
    _init_sentry(app.state.settings)
    if getattr(app.state, "load_before_serving", False):
        try:
            await start_service(app)
        except BaseException:
            logger.exception("start-up failed")
            await stop_service(app)
            raise
        app.state.startup_error = None
        try:
            yield
        finally:
            await stop_service(app)
        return

    async def load() -> None:
        try:
            await start_service(app)
        except Exception as exc:
            logger.exception("start-up failed; stopping")
            app.state.startup_error = exc
            _request_shutdown(app)

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
    app = FastAPI(
        title="Streamable TTS API",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,  # served by docs_router, behind the API key when API_KEY_PROTECTS_DOCS
        docs_url=None,
        redoc_url=None,
    )
    app.openapi = lambda: service_openapi(app, settings)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.components = components or Components()
    app.state.service = None
    app.state.engine_host = None
    app.state.metrics = ServiceMetrics()
    install_error_handlers(app)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],  # OpenAI SDKs send their own x-stainless-* headers
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    app.include_router(public)
    app.include_router(v1)
    app.include_router(docs_router(require_api_key_if("api_key_protects_docs")))
    app.include_router(ws.router)  # WebSockets check API_KEY themselves (header or first message)
    app.include_router(elevenlabs.router)
    app.mount("/playground", StaticFiles(directory=PLAYGROUND_DIR, html=True), name="playground")
    return app


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

    server_options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        "loop": "uvloop",  # libuv event loop
        "http": "httptools",  # llhttp (C) request parsing
    }
    if settings.api_workers > 1:
        _run_workers(settings, server_options)
        return
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, **server_options))
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    server.run()
    if app.state.startup_error is not None:
        raise SystemExit(1)


_WORKER_SETTINGS = "TTS_WORKER_SETTINGS"  # the parent's resolved settings, as JSON, for its front-end workers


def _run_workers(settings: Settings, server_options: dict[str, Any]) -> None:
    """`API_WORKERS` > 1: this process runs the codec engine; uvicorn runs the front-ends on one shared socket."""
    import uvicorn

    from app.engine.process import EngineProcess, EngineStartError

    fatal = False

    def give_up() -> None:
        nonlocal fatal
        fatal = True
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's supervisor stops the workers gracefully

    engine = EngineProcess(settings, on_fatal=give_up, max_restarts=settings.engine_max_restarts)
    try:
        engine.start()
    except EngineStartError as exc:
        logger.error("start-up failed: %s", exc)
        raise SystemExit(1) from None
    os.environ[_WORKER_SETTINGS] = settings.model_copy(update={"engine_endpoint": engine.endpoint}).model_dump_json()
    own_metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the workers' /metrics add up all workers through it
        own_metrics_dir = tempfile.mkdtemp(prefix="tts-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    logger.info("starting %d API workers on %s:%d", settings.api_workers, settings.host, settings.port)
    try:
        uvicorn.run("app.main:create_worker_app", factory=True, workers=settings.api_workers, **server_options)
    finally:
        engine.stop()
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    if fatal:
        raise SystemExit(1)


def create_worker_app() -> FastAPI:
    """The app of one front-end worker of `tts-api` (settings from its parent, engine already running)."""
    settings = Settings.model_validate_json(os.environ[_WORKER_SETTINGS])
    configure_logging(settings.log_level)
    app = create_app(settings)
    app.state.load_before_serving = True
    return app


if __name__ == "__main__":
    run()
