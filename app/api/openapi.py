"""The OpenAPI document as the service really behaves, and the routes that serve it (`/openapi.json`, `/docs`).

The routes declare their statuses and media types with the pieces below; `service_openapi()` then removes
FastAPI's 422 entries (validation errors are 400s in OpenAI's envelope, see `app/api/errors.py`) and writes in
what depends on the settings: the voices, the text limits, and the bearer scheme and 401s when `API_KEY` is set.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from app.api.errors import ErrorResponse
from app.audio.registry import CONTENT_TYPES, ENCODING_NAMES, FORMATS, RATES
from app.service.requests import SaveVoiceRequest, VoiceCloneRequest
from app.settings import Settings

_ERROR_DESCRIPTIONS = {
    400: "Invalid request: a field is missing, of the wrong type or out of range (`param` names it)",
    401: "Missing or wrong API key",
    403: "The key may not do this: an admin key's route asked with a client key",
    404: "No saved voice (or, under /v1/admin/, API key) of that name",
    409: "The name is taken: a saved voice, or a built-in voice or alias (which a saved voice may not shadow); under /v1/admin/: the key is revoked",
    413: "The upload is larger than MAX_REFERENCE_BYTES",
    429: "Too many requests in flight; retry later",
    503: "The service is still loading its models or the TTS backend is not answering",
    "5XX": "The TTS backend or the codec failed (500 decode, 502 backend, 503 unavailable, 504 timeout)",
}


def error_responses(*statuses: int | str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these statuses, each with the `ErrorResponse` body."""
    return {s: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[s]} for s in statuses}


_BINARY = {"type": "string", "format": "binary"}

_SECONDS = {"type": "number", "minimum": 0}
_TIMINGS: dict[str, Any] = {
    "source": {"enum": ["estimated", "aligned"], "description": "Where the timings within a segment came from"},
    "text": {"type": "string", "description": "The normalized text that was spoken"},
    "words": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["word", "start", "end"],
            "properties": {
                "word": {"type": "string"}, "start": _SECONDS, "end": _SECONDS,
                "source": {
                    "type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2,
                    "description": "The [start, end) characters of the input it came from, where known",
                },
            },
        },
        "description": "Every word once, in order; seconds from the start of the audio",
    },
    "characters": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["char", "start", "end"],
            "properties": {"char": {"type": "string"}, "start": _SECONDS, "end": _SECONDS},
        },
        "description": "With `timestamps=char`: every character of `text`",
    },
}
_TIMED_JSON: dict[str, Any] = {
    "type": "object",
    "required": ["audio", "content_type", "sample_rate", "encoding", "audio_seconds", "source", "text", "words"],
    "properties": {
        "audio": {"type": "string", "contentEncoding": "base64", "description": "The complete audio file"},
        "content_type": {"type": "string"},
        "sample_rate": {"type": "integer"},
        "encoding": {"type": "string"},
        "audio_seconds": _SECONDS,
        **_TIMINGS,
    },
}

_SSE_EVENT = {
    "description": "One server-sent event (OpenAPI 3.1: the schema of each event); `data` is a JSON object",
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["type", "audio"],
                        "properties": {
                            "type": {"const": "speech.audio.delta"},
                            "audio": {"type": "string", "contentEncoding": "base64"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["type", "usage"],
                        "properties": {
                            "type": {"const": "speech.audio.done"},
                            "usage": {
                                "type": "object",
                                "properties": {
                                    k: {"type": "integer"} for k in ("input_tokens", "output_tokens", "total_tokens")
                                },
                            },
                            "finish_reason": {"enum": ["stop", "length"]},  # length: a segment was cut short
                            "cut_segments": {"type": "array", "items": {"type": "integer"}},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["type", "index", "start", "end", "source", "text", "words"],
                        "properties": {
                            "type": {"const": "speech.audio.timestamps"},
                            "index": {"type": "integer", "description": "The segment's number, from 0"},
                            "start": _SECONDS,
                            "end": _SECONDS,
                            **_TIMINGS,
                        },
                    },
                    {
                        "type": "object",
                        "required": ["type", "error"],
                        "properties": {"type": {"const": "error"}, "error": {"type": "object"}},
                    },
                ]
            },
        },
    },
}

AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "Audio in `response_format` at `sample_rate` (default 24000) in the sample `encoding` (pcm: raw "
            "16-bit little-endian mono, or one G.711 byte a sample for mulaw/alaw; pcm and wav come with "
            "`X-Sample-Rate`, `X-Channels`, `X-Bit-Depth` and `X-Encoding` headers), streamed as generated unless "
            "`stream=false`; or, with "
            "`stream_format=sse`, server-sent events: `speech.audio.delta` (base64 `audio`), then "
            "`speech.audio.done` (`usage`, `finish_reason`, `cut_segments`), or `error`. A complete response "
            "(`stream=false`) says how its generation ended in `X-Finish-Reason` (`length`: a segment was cut at "
            "max_tokens or the model's context; `X-Cut-Segments` lists them)."
        ),
        "headers": {
            "X-Finish-Reason": {"description": "stream=false: stop or length", "schema": {"enum": ["stop", "length"]}},
            "X-Cut-Segments": {
                "description": "stream=false: the segments (from 0) cut short, comma-separated",
                "schema": {"type": "string"},
            },
        },
        "content": {
            **{media_type: {"schema": _BINARY} for media_type in dict.fromkeys(CONTENT_TYPES.values())},
            "text/event-stream": {"schema": _SSE_EVENT},
        },
    },
    **error_responses(400, 429, "5XX"),
}
"""The responses of `/v1/audio/speech` and `/v1/audio/vc`."""


def format_constraints() -> list[dict[str, Any]]:
    """The registry's rates and encodings per format, as `if`/`then` schemas: a format that carries fewer than
    the fields' enums allow (opus' rates; s16le only) narrows them."""
    every_rate, every_encoding = set(RATES), set(ENCODING_NAMES)
    out = []
    for fmt in FORMATS.values():
        narrowed: dict[str, Any] = {}
        if set(fmt.rates) != every_rate:
            narrowed["sample_rate"] = {"enum": [*fmt.rates, None]}
        if {e.name for e in fmt.encodings} != every_encoding:
            narrowed["encoding"] = {"enum": [*(e.name for e in fmt.encodings), None]}
        if narrowed:
            condition = {"properties": {"response_format": {"const": fmt.name}}, "required": ["response_format"]}
            out.append({"if": condition, "then": {"properties": narrowed}})
    return out


def _voice_clone_form() -> dict[str, Any]:
    """The model's schema as form fields: a form cannot carry null (leave a field out for the default).

    The per-format narrowing of `sample_rate` and `encoding` (`format_constraints`) is left to the fields'
    descriptions here: schemathesis 4.32 cannot evaluate `if`/`then` next to a binary field."""
    schema = VoiceCloneRequest.model_json_schema()
    schema.pop("$defs", None)
    for prop in schema["properties"].values():
        options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
    schema["properties"]["pronunciation_dictionary_locators"] = {
        "type": "string",
        "description": 'JSON text: `[{"pronunciation_dictionary_id": ..., "version_id": ... or null}]`, up to 3',
    }  # a form field carries the list as JSON
    schema["properties"] = {
        "reference_audio": {**_BINARY, "description": "The voice to clone: WAV, FLAC, OGG or MP3"},
        **schema["properties"],
    }
    schema["required"] = ["reference_audio", *schema.get("required", [])]
    # Last in the form: with them among the first fields, the seeded schemathesis 4.32.5 run of
    # tests/service/test_openapi_schemathesis.py hits its own "Unsupported type: 'Binary'" in negative generation.
    for name in ("sample_rate", "encoding"):
        schema["properties"][name] = schema["properties"].pop(name)
    return schema


VOICE_CLONE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": _voice_clone_form(),
                "encoding": {"reference_audio": {"contentType": "application/octet-stream"}},
            }
        },
    }
}
"""`openapi_extra` for `/v1/audio/vc`, which parses its multipart form itself to bound the upload."""

def _save_voice_form() -> dict[str, Any]:
    """`SaveVoiceRequest` as form fields, with the clip (`audio`) first."""
    schema = SaveVoiceRequest.model_json_schema()
    for prop in schema["properties"].values():
        options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
    schema["properties"]["consent"]["enum"] = ["true", "yes"]
    schema["properties"] = {
        "audio": {**_BINARY, "description": "The voice's clip: WAV, FLAC, OGG or MP3 (as /v1/audio/vc takes)"},
        **schema["properties"],
    }
    schema["required"] = ["audio", *schema.get("required", [])]
    return schema


SAVE_VOICE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": _save_voice_form(),
                "encoding": {"audio": {"contentType": "application/octet-stream"}},
            }
        },
    }
}
"""`openapi_extra` for `POST /v1/audio/voices`, which parses its multipart form itself to bound the upload."""

_BLANK_TEXT_FIELDS = {
    "/v1/audio/speech": ("application/json", ("input",)),
    "/v1/audio/vc": ("multipart/form-data", ("reference_text", "generate_text")),
    "/v1/audio/voices": ("multipart/form-data", ("text",)),
}


def service_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The document for this app and these settings (built once, then cached on the app)."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _drop_422(doc)
        _document_timestamps(doc)
        _apply_settings(doc, settings)
        app.openapi_schema = doc
    return app.openapi_schema


def _drop_422(doc: dict[str, Any]) -> None:
    for methods in doc.get("paths", {}).values():
        for op in methods.values():
            op.get("responses", {}).pop("422", None)
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _document_timestamps(doc: dict[str, Any]) -> None:
    """`/v1/audio/speech` with `timestamps`: a JSON body (or the SSE event, in `_SSE_EVENT`)."""
    op = doc.get("paths", {}).get("/v1/audio/speech", {}).get("post")
    if op is None:
        return
    ok = op["responses"]["200"]
    ok["description"] += (
        " With `timestamps` (word or char): JSON, the complete audio in base64 and its `words`; or, with "
        "`stream_format=sse`, a `speech.audio.timestamps` event per segment (`index`, `start`, `end`) as soon as "
        "its audio is complete, before `speech.audio.done`."
    )
    ok["content"] = {**ok["content"], "application/json": {"schema": _TIMED_JSON}}


def _apply_settings(doc: dict[str, Any], settings: Settings) -> None:
    schemas = doc.get("components", {}).get("schemas", {})
    voices = [*settings.generation.speakers, ""]  # empty: the default speaker
    if "SpeechRequest" in schemas:
        voice = schemas["SpeechRequest"]["properties"]["voice"]
        for option in voice.get("anyOf", []):
            if option.get("type") == "string":
                option["enum"] = voices
        voice["description"] = (
            f"One of the server's speakers (SPEAKERS); left out, null or empty: {settings.generation.default_speaker}."
            " The server also takes the aliases and saved voices that GET /v1/audio/voices lists"
        )
        schemas["SpeechRequest"]["allOf"] = format_constraints()
    if "VoiceRef" in schemas:
        schemas["VoiceRef"]["properties"]["id"]["enum"] = voices
    for path, (media_type, fields) in _BLANK_TEXT_FIELDS.items():
        op = doc.get("paths", {}).get(path, {}).get("post")
        if op is None:
            continue
        schema = op["requestBody"]["content"][media_type]["schema"]
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        for field in fields:
            schema["properties"][field]["maxLength"] = settings.limits.max_input_chars
    if settings.security.key_required:
        _require_bearer(doc, settings)


def _require_bearer(doc: dict[str, Any], settings: Settings) -> None:
    """Declare the bearer scheme on every operation that `API_KEY` protects, with its 401."""
    doc.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <API_KEY>`",
    }
    protected = ["/v1/", "/metrics"] if settings.security.metrics_need_key else ["/v1/"]
    unauthorized = error_responses(401)[401]
    for path, methods in doc.get("paths", {}).items():
        if not path.startswith(tuple(protected)):
            continue
        for op in methods.values():
            op["security"] = [{"bearer": []}]
            op.setdefault("responses", {})["401"] = {
                "description": unauthorized["description"],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
            }


def docs_router(protect: Any) -> APIRouter:
    """`/openapi.json` and `/docs`; `protect` is the dependency that asks for the API key when so configured."""
    router = APIRouter(dependencies=[Depends(protect)])

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(service_openapi(request.app, request.app.state.settings))

    @router.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")

    return router
