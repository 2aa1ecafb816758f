"""A real server for the limits tests: the app with tts-api's own uvicorn options (app/cli.py `server_options`:
the guarded httptools protocol, keep-alive, connection and WebSocket message limits), on a loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from app.cli import server_options
from app.main import Components, create_app
from app.settings import Settings
from tests.conftest import SETTINGS
from tools.harness import LocalCodec, PassthroughNormalizer, free_port


def limits_settings(backend_url: str, **overrides: object) -> Settings:
    return Settings(_env_file=None, **({"tts_api": backend_url} | SETTINGS | overrides))


@contextmanager
def serve_like_tts_api(settings: Settings, normalizer: object | None = None) -> Iterator[tuple[str, FastAPI]]:
    """The app (stand-in codec, pass-through normalizer unless given) served as `tts-api` serves it."""
    port = free_port()
    app = create_app(settings, Components(codec=LocalCodec(), normalizer=normalizer or PassthroughNormalizer()))
    options = server_options(settings) | {"host": "127.0.0.1", "port": port, "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (server.started and app.state.service is not None):
        if not thread.is_alive() or getattr(app.state, "startup_error", None) is not None:
            raise RuntimeError(f"the app failed to start: {getattr(app.state, 'startup_error', None)!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not start within 120 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)
