"""The service's errors: a flat hierarchy that says what went wrong, not how HTTP says it.

The codec engine's errors (`app.engine.errors`) share the base. `app/api/errors.py` maps every class to its HTTP
status, OpenAI error type and default code, and turns them into `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations


class TTSError(Exception):
    """Base class: a failure the client should see with its own message.

    `param` names the request field at fault; `code` overrides the class's default code (app/api/errors.py)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequestError(TTSError):
    """The request is malformed or names something that does not exist."""


class PromptTooLongError(InvalidRequestError):
    """The prompt (text, reference tokens) cannot fit the model's context."""


class NotFoundError(InvalidRequestError):
    """What the request names (a saved voice) does not exist."""


class ConflictError(InvalidRequestError):
    """What the request would create exists already, or would shadow a name that does (a built-in voice)."""


class AuthenticationError(TTSError):
    """Missing or wrong API key."""


class PermissionDeniedError(TTSError):
    """A valid key that may not do this (an admin route asked with a client key)."""


class PayloadTooLargeError(InvalidRequestError):
    """An upload is larger than its limit (refused while it streams in)."""


class OverloadedError(TTSError):
    """Too many requests in flight; the client may retry after `retry_after` seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: int = 1,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message, param=param, code=code)
        self.retry_after = retry_after
        self.headers = headers or {}  # more headers for the 429: a key's limit's `x-ratelimit-*`


class BackendError(TTSError):
    """vLLM answered with an error or a malformed stream."""


class NoAudioError(BackendError):
    """The model finished without a single speech token."""


class BackendUnavailableError(BackendError):
    """vLLM cannot be reached."""


class BackendTimeoutError(BackendError):
    """vLLM did not answer in time."""


class NotReadyError(TTSError):
    """The service is still loading its models, or a part it needs is off or failing."""


class StoreUnavailableError(TTSError):
    """The voice store (SQLite or PostgreSQL) cannot be reached or failed."""


class StreamAborted(Exception):
    """Raised out of a started response body so that the server drops the connection without ending the
    chunked body: the client sees an incomplete response instead of a clean, truncated one."""


class SendTimedOut(StreamAborted):
    """A client did not take a piece of its HTTP stream within the send timeout (`STREAM_SEND_TIMEOUT`): the
    stream ends and its connection is dropped."""
