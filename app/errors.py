"""The service's errors: a flat hierarchy, each mapped to an HTTP status and an OpenAI error type.

`app/api/errors.py` turns them into `{"error": {"message", "type", "param", "code"}}` in one place.
"""

from __future__ import annotations


class TTSError(Exception):
    """Base class: a failure the client should see with its own status and message."""

    status_code = 500
    error_type = "server_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code


class InvalidRequestError(TTSError):
    """The request is malformed or names something that does not exist."""

    status_code = 400
    error_type = "invalid_request_error"


class PromptTooLongError(InvalidRequestError):
    """The prompt (text, reference tokens) cannot fit the model's context."""

    default_code = "context_length_exceeded"


class AuthenticationError(TTSError):
    """Missing or wrong API key."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class NotFoundError(TTSError):
    """Unknown route or resource."""

    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class PayloadTooLargeError(InvalidRequestError):
    """An upload is larger than its limit (refused while it streams in)."""

    status_code = 413
    default_code = "payload_too_large"


class OverloadedError(TTSError):
    """Too many requests in flight; `retry_after` seconds becomes the `Retry-After` header."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param, code=code)
        self.retry_after = retry_after


class BackendError(TTSError):
    """vLLM answered with an error or a malformed stream."""

    status_code = 502
    error_type = "api_error"
    default_code = "backend_error"


class NoAudioError(BackendError):
    """The model finished without a single speech token."""

    default_code = "no_audio"


class BackendUnavailableError(BackendError):
    """vLLM cannot be reached."""

    status_code = 503
    default_code = "backend_unavailable"


class BackendTimeoutError(BackendError):
    """vLLM did not answer in time."""

    status_code = 504
    default_code = "backend_timeout"


class NotReadyError(TTSError):
    """The service is still loading its models."""

    status_code = 503
    error_type = "api_error"
    default_code = "not_ready"


class DecodeError(TTSError):
    """The codec failed on a batch this request was part of."""

    status_code = 500
    error_type = "server_error"
    default_code = "decode_failed"


class EngineUnavailableError(NotReadyError):
    """The codec engine process is down or restarting."""

    default_code = "engine_unavailable"


class CodecTimeoutError(DecodeError):
    """A codec job did not finish within `CODEC_TIMEOUT_SECONDS`."""

    status_code = 503
    error_type = "api_error"
    default_code = "codec_timeout"


class StreamAborted(Exception):
    """Raised out of a started response body so that the server drops the connection without ending the
    chunked body: the client sees an incomplete response instead of a clean, truncated one."""
