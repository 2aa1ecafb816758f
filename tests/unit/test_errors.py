"""The one table that gives every service and engine error its HTTP status, OpenAI type and code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.api.errors import describe, error_response
from app.engine.errors import CodecFailed, EngineStopping, EngineUnavailable, InvalidInput, JobTimedOut
from app.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
    NoAudioError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    PromptTooLongError,
    TTSError,
)

# what clients have been told for each error (status, type, code)
CASES = [
    (EngineUnavailable("the codec engine stopped answering"), 503, "api_error", "engine_unavailable"),
    (EngineStopping("the service is shutting down"), 503, "api_error", "engine_unavailable"),
    (JobTimedOut("audio decode did not finish within 5 s"), 503, "api_error", "codec_timeout"),
    (CodecFailed("audio decode failed: RuntimeError: boom"), 500, "server_error", "decode_failed"),
    (InvalidInput("the codec rejected the input: slack must be finite"), 400, "invalid_request_error", None),
    (TTSError("internal error"), 500, "server_error", None),
    (InvalidRequestError("bad"), 400, "invalid_request_error", None),
    (PromptTooLongError("long"), 400, "invalid_request_error", "context_length_exceeded"),
    (PayloadTooLargeError("big"), 413, "invalid_request_error", "payload_too_large"),
    (AuthenticationError("who"), 401, "invalid_request_error", "invalid_api_key"),
    (OverloadedError("full"), 429, "rate_limit_error", "overloaded"),
    (BackendError("odd"), 502, "api_error", "backend_error"),
    (NoAudioError("silent"), 502, "api_error", "no_audio"),
    (BackendUnavailableError("down"), 503, "api_error", "backend_unavailable"),
    (BackendTimeoutError("slow"), 504, "api_error", "backend_timeout"),
    (NotReadyError("loading"), 503, "api_error", "not_ready"),
]


# backend and codec failures: clients get a generic message (the error's own, with addresses and exception
# text, is only logged)
GENERIC = {
    CodecFailed: "the codec failed; see the service's log",
    BackendError: "the TTS backend failed; see the service's log",
    BackendUnavailableError: "the TTS backend is unavailable; try again later",
    BackendTimeoutError: "the TTS backend did not answer in time",
}


@pytest.mark.parametrize(("exc", "status", "type_", "code"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_error_has_the_status_type_and_code_clients_get(exc: TTSError, status: int, type_: str, code: str) -> None:
    info = describe(exc)
    message = GENERIC.get(type(exc), exc.message)
    assert (info.status, info.type, info.code, info.message) == (status, type_, code, message)
    response = error_response(exc)
    body = json.loads(response.body)
    assert response.status_code == status
    assert body == {"error": {"message": message, "type": type_, "param": None, "code": code}}


def test_a_code_or_param_given_with_the_error_wins() -> None:
    info = describe(InvalidRequestError("no config message received", code="idle_timeout", param="type"))
    assert (info.status, info.code, info.param) == (400, "idle_timeout", "type")


def test_an_unlisted_subclass_takes_its_nearest_base() -> None:
    class Odd(JobTimedOut):
        pass

    assert (describe(Odd("x")).status, describe(Odd("x")).code) == (503, "codec_timeout")


def test_headers_for_auth_and_overload() -> None:
    assert error_response(AuthenticationError("who")).headers["www-authenticate"] == "Bearer"
    assert error_response(OverloadedError("full", retry_after=3)).headers["retry-after"] == "3"


def test_the_engine_knows_no_http() -> None:
    """The engine's modules import neither the web framework nor the API layer; its errors carry no status."""
    code = (
        "import sys, app.engine.client, app.engine.core, app.engine.process, app.engine.errors\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette') or m.startswith('app.api')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for cls in (EngineUnavailable, EngineStopping, JobTimedOut, CodecFailed, InvalidInput):
        assert not {"status_code", "error_type"} & set(dir(cls))
