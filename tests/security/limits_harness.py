"""A real server for the limits tests: the app with tts-api's own uvicorn options (app/cli.py `server_options`:
the guarded httptools protocol, keep-alive, connection and WebSocket message limits), on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from app.cli import server_options
from app.main import Components
from app.settings import Settings
from tests.conftest import SETTINGS
from tools.harness import LocalCodec, PassthroughNormalizer, serve_app


def limits_settings(backend_url: str, **overrides: object) -> Settings:
    return Settings(_env_file=None, **({"tts_api": backend_url} | SETTINGS | overrides))


@contextmanager
def serve_like_tts_api(settings: Settings, normalizer: object | None = None) -> Iterator[tuple[str, FastAPI]]:
    """The app (stand-in codec, pass-through normalizer unless given) served as `tts-api` serves it."""
    components = Components(codec=LocalCodec(), normalizer=normalizer or PassthroughNormalizer())
    with serve_app(settings, components, options=server_options(settings)) as served:
        yield served
