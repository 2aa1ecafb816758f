"""HTTP routes: thin functions that fetch the service from `app.state`, call it and wrap the result."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import REGISTRY
from pydantic import BaseModel, ValidationError

from app.api.audio_response import admitted_response, until_disconnected
from app.api.auth import caller, caller_if
from app.api.deps import backend_if_loaded, engine_if_loaded, get_service
from app.api.errors import error_response, invalid_request
from app.api.openapi import AUDIO_RESPONSES, VOICE_CLONE_BODY, error_responses
from app.api.protocols import elevenlabs_http
from app.api.uploads import read_clip_form
from app.backend.pool import BackendPool
from app.engine.client import EngineClient
from app.errors import NotReadyError
from app.observability.logs import clip
from app.observability.metrics import CONTENT_TYPE_LATEST, exposition
from app.service.principal import Principal
from app.service.render import Prepared
from app.service.requests import NormalizeRequest, SpeechRequest, VoiceCloneRequest
from app.service.speech import SpeechService

logger = logging.getLogger(__name__)

_STARTED = int(time.time())


def log_ignored_fields(req: BaseModel, path: str) -> None:
    """Unknown request fields are accepted but not used: say so, as vLLM does."""
    if req.model_extra:
        names = [clip(name, 40) for name in sorted(req.model_extra)[:20]]
        logger.warning("%s: the request's fields %s are not known and were ignored", path, names)


public = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(caller)])  # KeyGuard has refused a request without the key


@public.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    """The playground page."""
    return RedirectResponse("playground/")


@public.get("/health")
async def health() -> dict:
    """Answers while the process lives."""
    return {"status": "ok"}


@public.get("/ready", responses=error_responses(503))
async def ready(
    engine: EngineClient | None = Depends(engine_if_loaded), backend: BackendPool | None = Depends(backend_if_loaded)
) -> JSONResponse:
    """200 once the models are loaded and the backend answers; 503 before."""
    if engine is None or backend is None:
        return error_response(NotReadyError("models are loading"))
    await engine.refresh()  # its health as of now, not of its last heartbeat
    if not engine.alive:
        return error_response(NotReadyError("the codec engine is not running"))
    if not engine.healthy:
        return error_response(NotReadyError("the codec is failing: its last jobs failed or timed out"))
    if not await backend.ready():
        logger.warning("/ready: the TTS backend at %s is not answering", backend.base_url)
        return error_response(NotReadyError("the TTS backend is not answering"))
    return JSONResponse({"status": "ready"})


@public.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(caller_if("metrics_need_key"))],
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request, engine: EngineClient | None = Depends(engine_if_loaded)) -> Response:
    """Prometheus text format: every front-end's values when `PROMETHEUS_MULTIPROC_DIR` is set, and the codec
    engine's (as its last heartbeat reported them)."""
    registries = [REGISTRY, request.app.state.metrics.registry]  # REGISTRY: prometheus_client's process metrics
    engine_registry = None
    if engine is not None:
        await engine.refresh()  # the engine's counters as of now, not of its last heartbeat
        engine_registry = engine.metrics_registry
    return Response(exposition(*registries, engine=engine_registry), media_type=CONTENT_TYPE_LATEST)


@v1.get("/audio/speaker")
async def speakers(request: Request) -> list[str]:
    """The spec's speaker list (built-in voices only; `GET /v1/audio/voices` adds aliases and saved voices)."""
    return list(request.app.state.settings.generation.speakers)


@v1.get("/models")
async def models(request: Request) -> dict | list:
    """OpenAI's model list; to an ElevenLabs client (its SDK names itself), ElevenLabs' list of models."""
    name = request.app.state.settings.backend.model_name
    if elevenlabs_http.from_elevenlabs_sdk(request):
        return elevenlabs_http.models(name)
    return {"object": "list", "data": [{"id": name, "object": "model", "created": _STARTED, "owned_by": "tts"}]}


@v1.get("/audio/models")
async def audio_models(request: Request) -> dict:
    return {"models": [{"id": request.app.state.settings.backend.model_name}]}


@v1.post("/audio/speech", response_class=Response, responses=AUDIO_RESPONSES)
async def speech(
    req: SpeechRequest,
    request: Request,
    service: SpeechService = Depends(get_service),
    principal: Principal = Depends(caller),
) -> Response:
    """Text to speech, streamed as the backend generates (or complete with `stream=false`)."""
    log_ignored_fields(req, "/v1/audio/speech")
    return await admitted_response(request, service, lambda: service.prepare_speech(req, principal))


@v1.post("/audio/vc", response_class=Response, responses=AUDIO_RESPONSES, openapi_extra=VOICE_CLONE_BODY)
async def voice_clone(
    request: Request, service: SpeechService = Depends(get_service), principal: Principal = Depends(caller)
) -> Response:
    """Clone the voice of `reference_audio` (multipart) and speak `generate_text` with it."""

    async def prepare() -> Prepared:
        with service.reference_lane.admit():  # its own lane: uploads, reference decodes and encodes
            audio, fields = await read_clip_form(
                request, "reference_audio", service.limits.max_reference_bytes, VoiceCloneRequest.model_fields
            )
            try:
                req = VoiceCloneRequest.model_validate(fields)
            except ValidationError as exc:
                raise invalid_request(exc) from exc
            log_ignored_fields(req, "/v1/audio/vc")
            return await until_disconnected(request.receive, service.prepare_voice_clone(req, audio, principal))

    return await admitted_response(request, service, prepare, body_read=False, endpoint="vc")


@v1.post("/audio/normalize", responses=error_responses(400, 503))
async def normalize(req: NormalizeRequest, service: SpeechService = Depends(get_service)) -> dict:
    """The text exactly as the speech endpoints would prompt it."""
    log_ignored_fields(req, "/v1/audio/normalize")
    normalized = await service.normalize_tool(req.input, await service.dictionaries.read_with(req))
    return {"input": req.input, "normalized": normalized}
