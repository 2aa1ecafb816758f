"""ElevenLabs' HTTP API as its SDKs and integrations call it: `POST /v1/text-to-speech/{voice_id}` (`convert`:
the whole file) and `.../stream` (`stream`: the audio as it is made), `.../with-timestamps` (one JSON object) and
`.../stream/with-timestamps` (JSON lines: pipecat's `ElevenLabsHttpTTSService`), the audio in base64 with its
alignment once the audio is complete; `GET /v1/voices` and `/v1/voices/{voice_id}` (built-in and saved voices in
ElevenLabs' shape) and ElevenLabs' model list (`GET /v1/models` from its SDK).

Every `output_format` of the registry is offered; `optimize_streaming_latency`, `enable_logging`, `model_id`,
`previous_text`/`next_text` and the voice settings we cannot honour are accepted, and named in the
`X-Unused-Settings` header (never silently). `seed` is our seed (ElevenLabs' 32-bit range folded into ours),
`language_code` ms / en / zh our reading language, `apply_text_normalization: off` reads the text as written.

On the common admitted lifecycle (app.api.audio_response): the key checked once by the middleware, a slot taken
before any work (the body's parsing, the voice's lookup), the client's disconnect watched until the response
starts, and the stream's backend requests closed when it goes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.audio_response import (
    abort_on_error,
    admitted_response,
    finish_headers,
    primed,
    request_headers,
    speech_response,
    until_disconnected,
    unused_header,
)
from app.api.auth import caller
from app.api.deps import any_voices, get_service
from app.api.errors import invalid_request
from app.audio.registry import ElevenLabsFormat, UnsupportedFormat, elevenlabs_format
from app.errors import InvalidRequestError, NotFoundError
from app.service.principal import Principal
from app.service.render import Piece, Prepared, Renderer
from app.service.requests import NOT_BLANK, Delivery, SpeechRequest
from app.service.sent_timing import sent_timings
from app.service.speech import SpeechService
from app.service.text_input import cleaned_offsets
from app.service.timing import SegmentTimings, elevenlabs_http_alignment

router = APIRouter()


LANGUAGES = {"ms": "ms", "msa": "ms", "zsm": "ms", "en": "en", "eng": "en", "zh": "zh", "zho": "zh", "cmn": "zh"}
"""ElevenLabs' `language_code` (ISO 639-1 or -3) -> our reading language; another code reads as `auto`."""
APPLIED_VOICE_SETTINGS = {"speed"}


class SpeechBody(BaseModel):
    """The body of ElevenLabs' text-to-speech requests (every route: convert, stream, with timestamps)."""

    model_config = ConfigDict(extra="allow")

    text: str = Field(..., json_schema_extra=NOT_BLANK)
    model_id: str | None = Field(None, max_length=256)
    language_code: str | None = Field(None, max_length=16)
    voice_settings: dict[str, Any] | None = None
    pronunciation_dictionary_locators: list[Any] | None = None
    seed: int | None = Field(None, ge=0, le=4_294_967_295, strict=True)
    previous_text: str | None = Field(None, max_length=100_000)
    next_text: str | None = Field(None, max_length=100_000)
    apply_text_normalization: Literal["auto", "on", "off"] | None = None
    enable_ssml_parsing: bool | None = None  # also a query parameter, as on ElevenLabs' WebSocket

    def unused(self) -> list[str]:
        """The settings given that this server does not apply (its `X-Unused-Settings`)."""
        names = [f"voice_settings.{k}" for k, v in (self.voice_settings or {}).items() if v is not None and k not in APPLIED_VOICE_SETTINGS]
        names += [k for k in ("model_id", "previous_text", "next_text") if getattr(self, k)]
        if self.language_code and self.language_code.lower() not in LANGUAGES:
            names.append("language_code")
        names += sorted(k for k, v in (self.model_extra or {}).items() if v is not None)
        return names


def unused_settings(body: SpeechBody, request: Request) -> list[str]:
    """What the request asked that is accepted but not applied, body and query alike."""
    query = [k for k in ("optimize_streaming_latency", "enable_logging") if k in request.query_params]
    return body.unused() + query


def output_of(request: Request) -> ElevenLabsFormat:
    """The query's `output_format` (ElevenLabs' default: mp3_44100_128), or a 400 naming what is offered."""
    try:
        return elevenlabs_format(request.query_params.get("output_format") or "mp3_44100_128")
    except UnsupportedFormat as exc:
        raise InvalidRequestError(str(exc), param="output_format", code="unsupported_output_format") from None


def speech_request(
    raw: Any, voice_id: str, output: ElevenLabsFormat, *, ssml: bool = False
) -> tuple[SpeechRequest, SpeechBody]:
    """An ElevenLabs body as our speech request; its errors name ElevenLabs' fields (`text`). `ssml` (the query's
    `enable_ssml_parsing`) or the body's `enable_ssml_parsing`: the text is SSML (else: when it starts with
    `<speak>`)."""
    try:
        body = SpeechBody.model_validate(raw)
        if not body.text.strip():
            raise InvalidRequestError("text must not be empty", param="text")
        speed = (body.voice_settings or {}).get("speed")
        req = SpeechRequest(
            input=body.text,
            voice=voice_id,
            response_format=output.format.name,
            sample_rate=output.rate,
            encoding=output.encoding.name,
            speed=1.0 if speed is None else speed,
            normalize_malaysian=body.apply_text_normalization != "off",
            language=LANGUAGES.get((body.language_code or "").lower(), "auto"),
            seed=None if body.seed is None else body.seed % 2**31,
            input_format="ssml" if ssml or body.enable_ssml_parsing else None,
            pronunciation_dictionary_locators=body.pronunciation_dictionary_locators,
        )
        return req, body
    except ValidationError as exc:
        error = invalid_request(exc)
        if error.param == "input":  # SpeechRequest's name for this API's `text`
            error.param, error.message = "text", "text" + error.message.removeprefix("input")
            error.args = (error.message,)
        raise error from None


async def prepare(
    request: Request, service: SpeechService, voice_id: str, principal: Principal, output: ElevenLabsFormat
) -> tuple[Prepared, SpeechBody]:
    """The body read and checked, the voice resolved (the store, for a saved one) and the text queued."""
    try:
        raw = await request.json()
    except ValueError:
        raise InvalidRequestError("the body must be JSON", code="invalid_json") from None
    ssml = request.query_params.get("enable_ssml_parsing", "").lower() in ("true", "1")
    req, body = speech_request(raw, voice_id, output, ssml=ssml)
    try:
        work = service.prepare_speech(req, principal, text_param="text", bit_rate=output.bit_rate)
        return await until_disconnected(request.receive, work), body
    except InvalidRequestError as exc:
        if exc.param == "voice":
            exc.param = "voice_id"  # what this API calls it
        raise


def alignments(segments: list[SegmentTimings], rate: int, text: str) -> dict:
    """`normalized_alignment` over the spoken text (each segment placed where its audio is: the aligner's or the
    estimate), `alignment` over the text as sent: each word over the time of the spoken words it became."""
    spoken = SegmentTimings.join(segments, rate)
    sent = sent_timings(text, cleaned_offsets(text), spoken)  # the offsets name the input as cleaned
    return {"alignment": elevenlabs_http_alignment(sent), "normalized_alignment": elevenlabs_http_alignment(spoken)}


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _audio(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def timed_lines(pieces: AsyncGenerator[Piece, None], rate: int, text: str) -> AsyncGenerator[bytes, None]:
    """JSON lines: `{"audio_base64", "alignment": null, "normalized_alignment": null}` as audio comes, then the
    encoder's tail with both alignments once the audio is complete."""
    segments: list[SegmentTimings] = []
    try:
        async for piece in pieces:
            if piece.timings is not None:
                segments.append(piece.timings)
            if piece.event is None:
                yield _line({"audio_base64": _audio(piece.data), **alignments(segments, rate, text)})
            elif piece.data:
                yield _line({"audio_base64": _audio(piece.data), "alignment": None, "normalized_alignment": None})
    finally:
        await pieces.aclose()


async def timed(renderer: Renderer, prepared: Prepared, *, text: str, stream: bool) -> Response:
    """`with-timestamps`: the audio in base64 with both alignments, in one object or as JSON lines."""
    s = prepared.stream
    if not stream:
        whole = await renderer.whole(s, renderer.writer(s.output, streaming=False), timed=True)
        body = {"audio_base64": _audio(whole.audio), **alignments(list(whole.segments), whole.writer.rate, text)}
        return JSONResponse(body, headers=request_headers(s) | finish_headers(s.usage))
    writer = renderer.writer(s.output)
    pieces = await primed(renderer.pieces(s, writer, timed=True, one_request=True))
    lines = abort_on_error(timed_lines(pieces, writer.rate, text), s.request_id)
    return StreamingResponse(lines, media_type="application/json", headers=request_headers(s))


async def _speak(request: Request, voice_id: str, principal: Principal, *, stream: bool, timestamps: bool) -> Response:
    service = get_service(request)
    output = output_of(request)
    asked: SpeechBody | None = None

    async def prepared() -> Prepared:
        nonlocal asked
        job, asked = await prepare(request, service, voice_id, principal, output)
        if not timestamps:
            job = replace(job, delivery=Delivery(stream=stream))
        return job

    async def answer(renderer: Renderer, job: Prepared) -> Response:
        assert asked is not None
        if timestamps:
            response = await timed(renderer, job, text=asked.text, stream=stream)
        else:
            response = await speech_response(renderer, job)
        if unused := unused_settings(asked, request) + job.stream.unused:
            response.headers.update(unused_header(unused))
        return response

    return await admitted_response(request, service, prepared, body_read=False, respond=answer)


@router.post("/v1/text-to-speech/{voice_id}", include_in_schema=False)
async def convert(request: Request, voice_id: str, principal: Principal = Depends(caller)) -> Response:
    """ElevenLabs' `convert`: the whole file in `output_format` (default mp3_44100_128)."""
    return await _speak(request, voice_id, principal, stream=False, timestamps=False)


@router.post("/v1/text-to-speech/{voice_id}/stream", include_in_schema=False)
async def stream(request: Request, voice_id: str, principal: Principal = Depends(caller)) -> Response:
    """ElevenLabs' `stream`: the audio as it is made."""
    return await _speak(request, voice_id, principal, stream=True, timestamps=False)


@router.post("/v1/text-to-speech/{voice_id}/with-timestamps", include_in_schema=False)
async def with_timestamps(request: Request, voice_id: str, principal: Principal = Depends(caller)) -> Response:
    """ElevenLabs' `convert_with_timestamps`: the whole audio and its alignment in one JSON object."""
    return await _speak(request, voice_id, principal, stream=False, timestamps=True)


@router.post("/v1/text-to-speech/{voice_id}/stream/with-timestamps", include_in_schema=False)
async def stream_with_timestamps(request: Request, voice_id: str, principal: Principal = Depends(caller)) -> Response:
    """ElevenLabs' `stream_with_timestamps`: JSON lines of audio, the alignment once the audio is complete."""
    return await _speak(request, voice_id, principal, stream=True, timestamps=True)


# -- voices and models, in ElevenLabs' shape -----------------------------------------------------------------------


def voice_object(entry: dict) -> dict:
    """One entry of our voice catalogue as an ElevenLabs voice: built-in voices and aliases are `premade`, saved
    voices `cloned`."""
    saved = entry.get("type") == "saved"
    labels = {"alias_of": entry["alias_of"]} if "alias_of" in entry else {}
    return {
        "voice_id": entry["id"], "name": entry["name"], "category": "cloned" if saved else "premade",
        "labels": labels, "description": None, "preview_url": None, "settings": None,
        "created_at_unix": None, "is_owner": saved,
    }  # fmt: skip


@router.get("/v1/voices", include_in_schema=False)
async def voices(request: Request) -> dict:
    """ElevenLabs' `voices.get_all`: every voice a request may name."""
    return {"voices": [voice_object(v) for v in await catalogue(request)]}


@router.get("/v1/voices/{voice_id}", include_in_schema=False)
async def voice(request: Request, voice_id: str) -> dict:
    """ElevenLabs' `voices.get`: one voice, or 404 `voice_not_found`."""
    for entry in await catalogue(request):
        if entry["id"] == voice_id:
            return voice_object(entry)
    raise NotFoundError(f"voice {voice_id[:80]!r} not found", param="voice_id", code="voice_not_found")


async def catalogue(request: Request) -> list[dict]:
    return await any_voices(request).catalogue()


def from_elevenlabs_sdk(request: Request) -> bool:
    """An ElevenLabs client: its SDKs name themselves (`X-Fern-SDK-Name`), its key header is its own."""
    return request.headers.get("x-fern-sdk-name", "").lower() == "elevenlabs" or "xi-api-key" in request.headers


def models(name: str) -> list[dict]:
    """ElevenLabs' `models.list`: the one model this server serves, under ElevenLabs' model ids too (its clients
    name `eleven_turbo_v2_5` and its kind; every id is this model)."""
    languages = [{"language_id": c, "name": n} for c, n in (("ms", "Malay"), ("en", "English"), ("zh", "Chinese"))]
    return [{
        "model_id": name, "name": name, "can_do_text_to_speech": True, "can_do_voice_conversion": False,
        "can_use_style": False, "can_use_speaker_boost": False, "serves_pro_voices": False,
        "token_cost_factor": 1.0, "description": "the served TTS model", "requires_alpha_access": False,
        "max_characters_request_free_user": 0, "max_characters_request_subscribed_user": 0,
        "maximum_text_length_per_request": 0, "languages": languages,
    }]  # fmt: skip
