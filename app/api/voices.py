"""`/v1/audio/voices`: the voices a request may name, and saved voices (a clip encoded once, then used by name)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from app.api.auth import caller
from app.api.deps import any_voices, get_service, saved_voices
from app.api.errors import invalid_request
from app.api.openapi import SAVE_VOICE_BODY, error_responses
from app.api.routes import log_ignored_fields
from app.api.uploads import read_clip_form
from app.errors import TTSError
from app.service.principal import Principal
from app.service.requests import SaveVoiceRequest
from app.service.speech import SpeechService
from app.service.voices import Voices

router = APIRouter(prefix="/v1", dependencies=[Depends(caller)])


@router.get("/audio/voices", operation_id="list_voices", responses=error_responses(503))
async def list_voices(voices: Voices = Depends(any_voices)) -> dict:
    """Every voice a request may name: built-in voices, aliases (OpenAI's names, with the voice they are) and
    saved voices (`type: saved`; while the service is still loading, the built-in ones only)."""
    return {"voices": await voices.catalogue()}


@router.post(
    "/audio/voices",
    status_code=201,
    operation_id="save_voice",
    responses={
        201: {
            "description": "The saved voice's metadata",
            "links": {
                op: {"operationId": op, "parameters": {"name": "$response.body#/id"}}
                for op in ("get_voice", "delete_voice")
            },
        },
        **error_responses(400, 409, 413, 429, 503),
    },
    openapi_extra=SAVE_VOICE_BODY,
)
async def save_voice(
    request: Request, service: SpeechService = Depends(get_service), principal: Principal = Depends(caller)
) -> JSONResponse:
    """Save a voice: `audio` (a clip, checked as `/v1/audio/vc` checks it) is encoded once and its `text`
    normalized; both are stored under `name`, which `voice` (speech, WebSocket) and ElevenLabs' `voice_id` accept."""
    with service.reference_lane.admit():  # uploads, reference decodes and encodes share one lane
        try:
            audio, fields = await read_clip_form(
                request, "audio", service.limits.max_reference_bytes, SaveVoiceRequest.model_fields
            )
            try:
                req = SaveVoiceRequest.model_validate(fields)
            except ValidationError as exc:
                error = invalid_request(exc)
                if error.param == "consent":
                    error.code = "consent_required"
                raise error from exc
            log_ignored_fields(req, "/v1/audio/voices")
            voice = await service.save_voice(req, audio, principal)
        except TTSError as exc:
            _as_audio_field(exc)
            raise
    return JSONResponse(voice.metadata(), status_code=201)


@router.get("/audio/voices/{name}", operation_id="get_voice", responses=error_responses(404, 503))
async def get_voice(name: str, voices: Voices = Depends(saved_voices)) -> dict:
    """A saved voice's metadata (transcript, consent record, length; not its tokens)."""
    return (await voices.saved(name)).metadata()


@router.delete(
    "/audio/voices/{name}", status_code=204, operation_id="delete_voice", responses=error_responses(404, 503)
)
async def delete_voice(name: str, voices: Voices = Depends(saved_voices)) -> Response:
    """Delete a saved voice; requests naming it get 400 `invalid_voice` from then on."""
    await voices.delete(name)
    return Response(status_code=204)


def _as_audio_field(exc: TTSError) -> None:
    """The clip checks of `/v1/audio/vc` name its field `reference_audio`; here the field is `audio`."""
    if exc.param == "reference_audio":
        exc.param = "audio"
        exc.message = exc.message.replace("reference_audio", "audio")
        exc.args = (exc.message,)
