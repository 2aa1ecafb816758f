"""Every error leaves as OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`; handlers live here.

`describe(exc)` is the one place where a service or engine error gets its HTTP status, type and code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.engine.errors import CodecFailed, EngineUnavailable, InvalidInput, JobTimedOut
from app.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConflictError,
    InvalidRequestError,
    NoAudioError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PromptTooLongError,
    StoreUnavailableError,
    StreamAborted,
    TTSError,
)
from app.observability.logs import clip

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail

# class -> (HTTP status, OpenAI error type, default code); a subclass not listed takes its nearest listed base's
HTTP_ERRORS: dict[type[TTSError], tuple[int, str, str | None]] = {
    TTSError: (500, "server_error", None),
    InvalidRequestError: (400, "invalid_request_error", None),
    PromptTooLongError: (400, "invalid_request_error", "context_length_exceeded"),
    PayloadTooLargeError: (413, "invalid_request_error", "payload_too_large"),
    AuthenticationError: (401, "invalid_request_error", "invalid_api_key"),
    PermissionDeniedError: (403, "invalid_request_error", "permission_denied"),
    OverloadedError: (429, "rate_limit_error", "overloaded"),
    BackendError: (502, "api_error", "backend_error"),
    NoAudioError: (502, "api_error", "no_audio"),
    BackendUnavailableError: (503, "api_error", "backend_unavailable"),
    BackendTimeoutError: (504, "api_error", "backend_timeout"),
    NotReadyError: (503, "api_error", "not_ready"),
    EngineUnavailable: (503, "api_error", "engine_unavailable"),  # EngineStopping too
    JobTimedOut: (503, "api_error", "codec_timeout"),
    CodecFailed: (500, "server_error", "decode_failed"),
    InvalidInput: (400, "invalid_request_error", None),
    NotFoundError: (404, "invalid_request_error", "not_found"),
    ConflictError: (409, "invalid_request_error", "conflict"),
    StoreUnavailableError: (503, "api_error", "store_unavailable"),
}


# What a client is told instead of the error's own message, which may name internal addresses or exception text
# (the message itself is logged); looked up like HTTP_ERRORS, None keeps the error's message.
PUBLIC_MESSAGES: dict[type[TTSError], str | None] = {
    TTSError: None,
    BackendError: "the TTS backend failed; see the service's log",
    NoAudioError: None,
    BackendUnavailableError: "the TTS backend is unavailable; try again later",
    BackendTimeoutError: "the TTS backend did not answer in time",
    CodecFailed: "the codec failed; see the service's log",
}


@dataclass(frozen=True)
class ErrorInfo:
    """What a client is told about an error: HTTP status and OpenAI's error fields."""

    status: int
    type: str
    message: str
    param: str | None
    code: str | None

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


def describe(exc: TTSError) -> ErrorInfo:
    """The status, type, code and public message of `exc` (its own `code` wins over its class's default)."""
    status, type_, code = next(HTTP_ERRORS[c] for c in type(exc).__mro__ if c in HTTP_ERRORS)
    public = next(PUBLIC_MESSAGES[c] for c in type(exc).__mro__ if c in PUBLIC_MESSAGES)
    return ErrorInfo(status, type_, public or exc.message, exc.param, exc.code or code)


def error_body(message: str, type_: str, param: str | None = None, code: str | int | None = None) -> dict:
    return ErrorResponse(error=ErrorDetail(message=message, type=type_, param=param, code=code)).model_dump()


def error_response(exc: TTSError) -> JSONResponse:
    info = describe(exc)
    headers = {"WWW-Authenticate": "Bearer"} if info.status == 401 else {}
    if isinstance(exc, OverloadedError):
        headers["Retry-After"] = str(exc.retry_after)
        headers.update(exc.headers)
    return JSONResponse(info.body(), status_code=info.status, headers=headers or None)


class _QuietAbortFilter(logging.Filter):
    """A deliberately aborted stream (`StreamAborted`) was already logged once; uvicorn need not add a trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StreamAborted))


def invalid_request(exc: ValidationError | RequestValidationError, prefix: str = "") -> InvalidRequestError:
    """A validation failure as our 400: every error as `name: message`, the first field named as `param`.
    `prefix` places the fields inside an object of the message (e.g. `voice_settings.`)."""
    parts = []
    param = None
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form")]
        # pydantic puts the union member tag in the location (e.g. voice.str); keep the field name only
        name = f"{prefix}{loc[0]}" if loc else None
        param = param or name
        parts.append(f"{name}: {err.get('msg')}" if name else str(err.get("msg")))
    return InvalidRequestError("; ".join(parts) or "invalid request", param=param, code="invalid_value")


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route serves at this request's path (each one tried against the app's routes)."""
    routes = request.app.router.routes
    return [m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]


def install_error_handlers(app: FastAPI) -> None:
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietAbortFilter) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_QuietAbortFilter())

    @app.exception_handler(TTSError)
    async def _tts_error(request: Request, exc: TTSError) -> JSONResponse:
        status = describe(exc).status
        if status >= 500:
            logger.warning("%s %s -> %d %s", request.method, clip(request.url.path, 200), status, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_request(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        headers = exc.headers
        if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return JSONResponse(error_body(str(exc.detail), type_, None, code), status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StreamAborted):  # already logged; the response has started, nothing is sent
            logger.exception("unhandled error on %s %s", request.method, clip(request.url.path, 200))
        return JSONResponse(error_body("internal server error", "server_error", None, "internal_error"), 500)
