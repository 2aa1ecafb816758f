"""Every error leaves as OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`; handlers live here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import InvalidRequestError, OverloadedError, StreamAborted, TTSError
from app.protocol import ErrorDetail, ErrorResponse

logger = logging.getLogger(__name__)


def error_body(message: str, type_: str, param: str | None = None, code: str | int | None = None) -> dict:
    return ErrorResponse(error=ErrorDetail(message=message, type=type_, param=param, code=code)).model_dump()


def error_response(exc: TTSError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    if isinstance(exc, OverloadedError):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        error_body(exc.message, exc.error_type, exc.param, exc.code),
        status_code=exc.status_code,
        headers=headers or None,
    )


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


def install_error_handlers(app: FastAPI) -> None:
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietAbortFilter) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_QuietAbortFilter())

    @app.exception_handler(TTSError)
    async def _tts_error(request: Request, exc: TTSError) -> JSONResponse:
        if exc.status_code >= 500:
            logger.warning("%s %s -> %d %s", request.method, request.url.path, exc.status_code, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_request(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(
            error_body(str(exc.detail), type_, None, code), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StreamAborted):  # already logged; the response has started, nothing is sent
            logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal server error", "server_error", None, "internal_error"), 500)
