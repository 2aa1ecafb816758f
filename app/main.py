"""`create_app()` and its lifespan, which owns all heavy start-up and shutdown (the `tts-api` command is app/cli.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.api.admin import router as admin_router
from app.api.auth import Authenticator, KeyGuard, caller_if
from app.api.dictionaries import router as dictionaries_router
from app.api.drain import Drain, DrainGuard, take_sigterm
from app.api.errors import describe, install_error_handlers
from app.api.limits import MULTIPART_SLACK, BodySizeLimit
from app.api.openapi import docs_router, service_openapi
from app.api.protocols import elevenlabs, elevenlabs_http, speech_stream
from app.api.request_id import RequestIdentity
from app.api.routes import public, v1
from app.api.security import SecurityHeaders
from app.api.session import ClientSockets
from app.api.uploads import FORM_OVERHEAD
from app.api.usage import router as usage_router
from app.api.voices import router as voices_router
from app.errors import TTSError
from app.observability.logs import install_log_filters
from app.observability.metrics import ServiceMetrics
from app.observability.sentry import init_sentry
from app.observability.tracing import configure_tracing, shutdown_tracing
from app.settings import GenerationSettings, Settings, load_settings

logger = logging.getLogger("app")

PLAYGROUND_DIR = Path(__file__).parent / "static" / "playground"

# response headers a browser page on another origin may read
EXPOSED_HEADERS = [
    "X-Request-Id",
    "X-SSML-Ignored",
    "traceparent",
    "X-Sample-Rate",
    "X-Channels",
    "X-Bit-Depth",
    "X-Audio-Sample-Rate",
    "X-Audio-Channels",
    "X-Audio-Bit-Depth",
    "X-Encoding",
]


@dataclass
class Components:
    """Pre-built parts, for tests and benchmarks; anything left None is loaded from the settings."""

    codec: Any = None  # app.codec.runtime.CodecRuntime or a stand-in (app.codec.interface.Codec)
    normalizer: Any = None  # app.text.normalizer.Normalizer or a stand-in with normalize()
    authenticator: Any = None  # app.api.auth.Authenticator or one with its identify(): key -> Principal


def _load_normalizer(settings: GenerationSettings) -> Any:
    if settings.text_normalizer == "none":
        from app.text.plain import PlainNormalizer

        return PlainNormalizer()
    from app.text.normalizer import Normalizer

    normalizer = Normalizer(settings.normalizer_overrides_path or None)
    normalizer.warmup()
    return normalizer


async def start_service(app: FastAPI) -> None:
    """Start (or reach) the codec engine, load the normalizer, open the backend client; publish the service."""
    from app.audio.resample import resample_to_16k
    from app.backend.pool import BackendPool
    from app.engine.launch import start_engine
    from app.observability.heap import freeze_startup_heap
    from app.service.leases import KeyLimits, LimitStore
    from app.service.shared_context import SharedContextStore
    from app.service.speech import SpeechService
    from app.service.usage import UsageRecorder
    from app.service.voice_store import VoiceStore

    settings: Settings = app.state.settings
    parts: Components = app.state.components
    logger.info("loading the text normalizer and the codec engine (%s)", settings.engine.codec_model)
    store = VoiceStore(settings.generation.voice_store_url)
    app.state.voice_store = store
    engine, normalizer, _ = await asyncio.gather(
        start_engine(
            settings.engine,
            codec=parts.codec,
            log_level=settings.observability.log_level,
            on_fatal=lambda: _request_shutdown(app),
        ),
        asyncio.to_thread(_load_normalizer, settings.generation) if parts.normalizer is None else _ready(parts.normalizer),
        _open_store(app, store),  # first done: the store's API keys are known from then on
    )
    app.state.engine_host = engine.host
    backend = BackendPool.from_settings(settings.backend, app.state.metrics)
    await backend.start()
    app.state.service = SpeechService.from_settings(
        settings,
        backend,
        engine.client,
        normalizer,
        resample_to_16k,
        has_encoder=engine.client.has_encoder,
        metrics=app.state.metrics,
        store=store,
    )
    limit_store = LimitStore(store.engine)
    app.state.key_limits = app.state.service.key_limits = KeyLimits(
        limit_store, settings.limits.stream_lease_seconds
    )  # a key's own limits, held with every other process of the store
    app.state.service.usage = UsageRecorder(store.engine, app.state.metrics, limit_store)
    app.state.service.contexts = SharedContextStore(store.engine, settings.streaming.context_ttl)  # every worker's
    app.state.dictionaries = app.state.service.dictionaries  # the dictionary routes' (app/api/dictionaries.py)
    freeze_startup_heap("front-end")  # no full collection walks the models again (app/observability/heap.py)
    if not await backend.ready():
        logger.warning("TTS backend %s does not answer yet; /ready stays 503 until it does", settings.backend.url)
    logger.info("service ready on model %s via %s", settings.backend.model_name, settings.backend.url)


async def _open_store(app: FastAPI, store: Any) -> None:
    """The store's schema brought to head, then its API keys and tenants' limits read, and read again every 2 s
    (app/service/keys.py)."""
    from app.service.keys import KeyRefresher, KeyStore
    from app.service.tenant_limits import TenantLimitStore

    await store.open()
    use_keys = getattr(app.state.authenticator, "use_keys", None)  # a test's stand-in may have none
    if use_keys is not None:
        tenants = TenantLimitStore(store.engine).quotas
        app.state.key_refresher = KeyRefresher(KeyStore(store.engine), use_keys, tenants=tenants)
        await app.state.key_refresher.start()


def _take(app: FastAPI, name: str) -> Any:
    """`app.state.<name>`, which is None from now on (a second stop finds nothing to stop)."""
    value = getattr(app.state, name, None)
    setattr(app.state, name, None)
    return value


async def stop_service(app: FastAPI) -> None:
    from app.observability.heap import thaw_heap
    from app.service.shared_context import SharedContextStore

    thaw_heap()
    service = app.state.service
    app.state.service = None
    if service is not None:
        if service.usage is not None:
            await service.usage.flush()
        if isinstance(getattr(service, "contexts", None), SharedContextStore):
            await service.contexts.close()
        service.close()
        await service.engine.close()
        await service.backend.aclose()
    if (key_limits := _take(app, "key_limits")) is not None:
        await key_limits.stop()
    if (refresher := _take(app, "key_refresher")) is not None:
        await refresher.stop()
    if (store := _take(app, "voice_store")) is not None:
        await store.close()
    if (host := _take(app, "engine_host")) is not None:
        await asyncio.to_thread(host.stop)
    shutdown_tracing()
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
    settings: Settings = app.state.settings
    init_sentry(
        settings.observability,
        secrets=(settings.security.api_key, settings.backend.api_key),
        is_client_error=lambda exc: isinstance(exc, TTSError) and describe(exc).status < 500,
    )
    configure_tracing(settings.observability)
    if getattr(app.state, "load_before_serving", False):
        try:
            await start_service(app)
        except BaseException:
            logger.exception("start-up failed")
            await stop_service(app)
            raise
        app.state.startup_error = None
        restore = take_sigterm(app.state.drain)
        try:
            yield
        finally:
            restore()
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
    restore = take_sigterm(app.state.drain)  # SIGTERM drains first (app/api/drain.py), then uvicorn stops
    try:
        yield
    finally:
        restore()
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
    app.state.voice_store = None
    app.state.dictionaries = None
    app.state.key_refresher = None
    app.state.key_limits = None
    app.state.metrics = ServiceMetrics()
    # who a key is: the one place a key is compared; KeyGuard (HTTP) and the WebSocket sessions ask it
    app.state.authenticator = app.state.components.authenticator or Authenticator.from_settings(
        settings.security, settings.limits
    )
    app.state.client_sockets = ClientSockets()
    app.state.drain = Drain(settings.server.drain_grace_seconds, settings.server.shutdown_grace_seconds)
    install_error_handlers(app)
    install_log_filters()
    _add_middleware(app, settings)
    app.include_router(public)
    app.include_router(v1)
    app.include_router(voices_router)
    app.include_router(dictionaries_router)
    app.include_router(admin_router)
    app.include_router(usage_router)
    app.include_router(docs_router(caller_if("docs_need_key")))
    app.include_router(speech_stream.router)  # WebSockets ask the authenticator themselves (header or a message)
    app.include_router(elevenlabs.router)
    app.include_router(elevenlabs_http.router)
    app.mount("/playground", StaticFiles(directory=PLAYGROUND_DIR, html=True), name="playground")
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware stack, innermost first (each added one wraps those before it)."""
    limits = settings.limits
    app.add_middleware(  # before CORS is added, so that CORS wraps its 413s too
        BodySizeLimit,
        max_bytes=limits.max_body_bytes,
        max_multipart_bytes=limits.max_reference_bytes + FORM_OVERHEAD + MULTIPART_SLACK,
    )
    # outside the body limit: a wrong key is never read; it resolves every request's Principal
    app.add_middleware(KeyGuard, authenticator=app.state.authenticator)
    app.add_middleware(SecurityHeaders)
    if settings.security.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.security.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],  # OpenAI SDKs send their own x-stainless-* headers
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    # counts every request and socket for the drain on SIGTERM, and refuses new ones once it refuses
    app.add_middleware(DrainGuard, drain=app.state.drain)
    # outermost: every response, refusals included, carries the request's id and trace
    app.add_middleware(RequestIdentity)
