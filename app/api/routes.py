"""HTTP routes: thin functions that fetch the service from `app.state`, call it and wrap the result."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import REGISTRY
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app.api.audio_response import speech_response
from app.api.errors import error_response
from app.errors import AuthenticationError, InvalidRequestError, NotReadyError
from app.metrics import CONTENT_TYPE_LATEST, exposition
from app.protocol import NormalizeRequest, SpeechRequest, VoiceCloneRequest
from app.serving import SpeechService

_STARTED = int(time.time())


def get_service(request: Request) -> SpeechService:
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReadyError("the service is still loading its models")
    return service


async def require_api_key(request: Request) -> None:
    """When `API_KEY` is set, `/v1/*` needs `Authorization: Bearer <key>`."""
    expected = request.app.state.settings.api_key
    if not expected:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), expected):
        raise AuthenticationError("missing or invalid API key: send 'Authorization: Bearer <key>'")


public = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


@public.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    """The playground page."""
    return RedirectResponse("playground/")


@public.get("/health")
async def health() -> dict:
    """Answers while the process lives."""
    return {"status": "ok"}


@public.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """200 once the models are loaded and the backend answers; 503 before."""
    service: SpeechService | None = getattr(request.app.state, "service", None)
    if service is None:
        return error_response(NotReadyError("models are loading"))
    if not service.engine.alive:
        return error_response(NotReadyError("the codec worker is not running"))
    if not await service.backend.ready():
        return error_response(NotReadyError(f"the TTS backend at {service.backend.base_url} is not answering"))
    return JSONResponse({"status": "ready"})


@public.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format: every process's values when `PROMETHEUS_MULTIPROC_DIR` is set."""
    registries = [REGISTRY, request.app.state.metrics.registry]  # REGISTRY: prometheus_client's process metrics
    service: SpeechService | None = getattr(request.app.state, "service", None)
    engine_metrics = getattr(service.engine, "metrics", None) if service is not None else None
    if engine_metrics is not None:
        registries.append(engine_metrics.registry)
    return Response(exposition(*registries), media_type=CONTENT_TYPE_LATEST)


@v1.get("/audio/speaker")
async def speakers(request: Request) -> list[str]:
    """The spec's speaker list."""
    return list(request.app.state.settings.speakers)


@v1.get("/audio/voices")
async def voices(request: Request) -> dict:
    """Voice discovery for OpenAI-style clients (Open WebUI); aliases (OpenAI's names) say which voice they are."""
    settings = request.app.state.settings
    voices = [{"id": s, "name": s} for s in settings.speakers]
    voices += [{"id": a, "name": a, "alias_of": v} for a, v in settings.voice_aliases.items()]
    return {"voices": voices}


@v1.get("/models")
async def models(request: Request) -> dict:
    name = request.app.state.settings.model_name
    return {"object": "list", "data": [{"id": name, "object": "model", "created": _STARTED, "owned_by": "tts"}]}


@v1.get("/audio/models")
async def audio_models(request: Request) -> dict:
    return {"models": [{"id": request.app.state.settings.model_name}]}


@v1.post("/audio/speech")
async def speech(req: SpeechRequest, service: SpeechService = Depends(get_service)) -> Response:
    """Text to speech, streamed as the backend generates (or complete with `stream=false`)."""
    job = await service.prepare_speech(req)
    return await speech_response(service, job)


@v1.post("/audio/vc")
async def voice_clone(request: Request, service: SpeechService = Depends(get_service)) -> Response:
    """Clone the voice of `reference_audio` (multipart) and speak `generate_text` with it."""
    limit = service.settings.max_reference_bytes
    try:
        form = await request.form(max_files=1, max_fields=64)
    except Exception as exc:  # malformed multipart bodies raise parser-specific errors
        raise InvalidRequestError(f"expected multipart/form-data: {exc}") from exc
    try:
        upload = form.get("reference_audio")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError("reference_audio (a file) is required", param="reference_audio")
        audio = await upload.read(limit + 1)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()
    try:
        req = VoiceCloneRequest.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = str(err["loc"][0]) if err.get("loc") else None
        raise InvalidRequestError(f"{param}: {err['msg']}" if param else err["msg"], param=param) from exc
    job = await service.prepare_voice_clone(req, audio)
    return await speech_response(service, job)


@v1.post("/audio/normalize")
async def normalize(req: NormalizeRequest, service: SpeechService = Depends(get_service)) -> dict:
    """The text exactly as the speech endpoints would prompt it."""
    return {"input": req.input, "normalized": await service.normalize(req.input, req.normalize_malaysian)}
