"""Every error leaves as OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`; handlers live here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import TTSError
from app.protocol import ErrorDetail, ErrorResponse

logger = logging.getLogger(__name__)


def error_body(message: str, type_: str, param: str | None = None, code: str | int | None = None) -> dict:
    return ErrorResponse(error=ErrorDetail(message=message, type=type_, param=param, code=code)).model_dump()


def error_response(exc: TTSError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.message, exc.error_type, exc.param, exc.code),
        status_code=exc.status_code,
        headers={"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None,
    )


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts = []
    param = None
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form")]
        # pydantic puts the union member tag in the location (e.g. voice.str); keep the field name only
        name = loc[0] if loc else None
        param = param or name
        parts.append(f"{name}: {err.get('msg')}" if name else str(err.get("msg")))
    return "; ".join(parts) or "invalid request", param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TTSError)
    async def _tts_error(request: Request, exc: TTSError) -> JSONResponse:
        if exc.status_code >= 500:
            logger.warning("%s %s -> %d %s", request.method, request.url.path, exc.status_code, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return JSONResponse(error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(
            error_body(str(exc.detail), type_, None, code), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal server error", "server_error", None, "internal_error"), 500)
