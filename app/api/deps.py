"""What a route depends on, as FastAPI dependencies: the loaded service's collaborators one by one, so a route
names the part it uses (the engine, the backend, the voices) and not the whole service.

While the models load there is no service: `get_service` and the parts a route cannot do without answer 503;
`engine_if_loaded` and `backend_if_loaded` give None (/ready and /metrics answer then, from what exists)."""

from __future__ import annotations

from fastapi import Request

from app.backend.pool import BackendPool
from app.engine.client import EngineClient
from app.errors import NotReadyError
from app.service.speech import SpeechService
from app.service.voices import Voices


def service_if_loaded(request: Request) -> SpeechService | None:
    return getattr(request.app.state, "service", None)


def get_service(request: Request) -> SpeechService:
    service = service_if_loaded(request)
    if service is None:
        raise NotReadyError("the service is still loading its models")
    return service


def engine_if_loaded(request: Request) -> EngineClient | None:
    service = service_if_loaded(request)
    return service.engine if service is not None else None


def backend_if_loaded(request: Request) -> BackendPool | None:
    service = service_if_loaded(request)
    return service.backend if service is not None else None


def saved_voices(request: Request) -> Voices:
    """The voices, saved ones included (503 while the service loads)."""
    return get_service(request).voices


def any_voices(request: Request) -> Voices:
    """The voices; while the service loads, the built-in ones only."""
    service = service_if_loaded(request)
    return service.voices if service is not None else Voices(request.app.state.settings.generation, None)
