"""HTTP routes: thin functions that fetch the service from `app.state`, call it and wrap the result."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app.api.audio_response import admitted_response, until_disconnected
from app.api.errors import error_response
from app.api.uploads import read_limited_form
from app.errors import AuthenticationError, InvalidRequestError, NotReadyError
from app.protocol import NormalizeRequest, SpeechRequest, VoiceCloneRequest
from app.serving import SpeechService, SynthesisJob

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
    if not service.engine.healthy:
        return error_response(NotReadyError("the codec is failing: its last jobs failed or timed out"))
    if not await service.backend.ready():
        return error_response(NotReadyError(f"the TTS backend at {service.backend.base_url} is not answering"))
    return JSONResponse({"status": "ready"})


@public.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    """Counters in the Prometheus text format."""
    service: SpeechService | None = getattr(request.app.state, "service", None)
    lines: list[str] = []
    if service is not None:
        st = service.engine.stats
        for name, value in service.counters.items():
            lines.append(f'tts_requests_total{{outcome="{name}"}} {value}')
        lines.append(f"tts_requests_in_flight {service.in_flight}")
        lines.append(f'tts_codec_queue_depth{{kind="decode"}} {service.engine.queue_depth("decode")}')
        lines.append(f'tts_codec_queue_depth{{kind="encode"}} {service.engine.queue_depth("encode")}')
        for kind in ("decode", "encode"):
            lines.append(f'tts_codec_jobs_total{{kind="{kind}"}} {st.jobs[kind]}')
            lines.append(f'tts_codec_batches_total{{kind="{kind}"}} {st.batches[kind]}')
            lines.append(f'tts_codec_busy_seconds_total{{kind="{kind}"}} {st.busy_seconds[kind]:.6f}')
        for size, count in sorted(st.batch_sizes.items()):
            lines.append(f'tts_codec_decode_batches_by_size{{size="{size}"}} {count}')
        lines.append(f"tts_codec_tokens_decoded_total {st.tokens_decoded}")
        lines.append(f"tts_codec_queue_wait_seconds_total {st.wait_seconds:.6f}")
        lines.append(f"tts_codec_failures_total {st.failures}")
        lines.append(f"tts_codec_dropped_jobs_total {st.dropped}")
        lines.append(f"tts_codec_max_batch_size {st.max_batch}")
    return PlainTextResponse("\n".join(lines) + "\n")


@v1.get("/audio/speaker")
async def speakers(request: Request) -> list[str]:
    """The spec's speaker list."""
    return list(request.app.state.settings.speakers)


@v1.get("/audio/voices")
async def voices(request: Request) -> dict:
    """Voice discovery for OpenAI-style clients (Open WebUI)."""
    return {"voices": [{"id": s, "name": s} for s in request.app.state.settings.speakers]}


@v1.get("/models")
async def models(request: Request) -> dict:
    name = request.app.state.settings.model_name
    return {"object": "list", "data": [{"id": name, "object": "model", "created": _STARTED, "owned_by": "tts"}]}


@v1.get("/audio/models")
async def audio_models(request: Request) -> dict:
    return {"models": [{"id": request.app.state.settings.model_name}]}


@v1.post("/audio/speech")
async def speech(req: SpeechRequest, request: Request, service: SpeechService = Depends(get_service)) -> Response:
    """Text to speech, streamed as the backend generates (or complete with `stream=false`)."""
    return await admitted_response(request, service, lambda: service.prepare_speech(req))


@v1.post("/audio/vc")
async def voice_clone(request: Request, service: SpeechService = Depends(get_service)) -> Response:
    """Clone the voice of `reference_audio` (multipart) and speak `generate_text` with it."""

    async def prepare() -> SynthesisJob:
        with service.reference_lane.admit():  # its own lane: uploads, reference decodes and encodes
            form = await read_limited_form(request, service.settings.max_reference_bytes)
            try:
                upload = form.get("reference_audio")
                if not isinstance(upload, UploadFile):
                    raise InvalidRequestError("reference_audio (a file) is required", param="reference_audio")
                audio = await upload.read()
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
            finally:
                await form.close()
            try:
                req = VoiceCloneRequest.model_validate(fields)
            except ValidationError as exc:
                err = exc.errors()[0]
                param = str(err["loc"][0]) if err.get("loc") else None
                raise InvalidRequestError(f"{param}: {err['msg']}" if param else err["msg"], param=param) from exc
            return await until_disconnected(request.receive, service.prepare_voice_clone(req, audio))

    return await admitted_response(request, service, prepare, body_read=False)


@v1.post("/audio/normalize")
async def normalize(req: NormalizeRequest, service: SpeechService = Depends(get_service)) -> dict:
    """The text exactly as the speech endpoints would prompt it."""
    return {"input": req.input, "normalized": await service.normalize_tool(req.input, req.normalize_malaysian)}
