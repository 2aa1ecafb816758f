"""The vLLM client: one shared `httpx.AsyncClient`, streaming `/v1/completions`, speech tokens out."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass

import httpx

from app.backend.sse import (
    BackendStreamError,
    SpeechTokenParser,
    StreamFormatError,
    error_message,
    parse_sse_data,
)
from app.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
    PromptTooLongError,
    TTSError,
)

logger = logging.getLogger(__name__)

_CONTEXT_WORDS = ("maximum context length", "max_model_len", "context length", "too long", "exceeds")


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float
    repetition_penalty: float
    seed: int | None = None

    def to_body(self) -> dict:
        body: dict = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "repetition_penalty": self.repetition_penalty,
            "skip_special_tokens": False,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        return body


@dataclass
class StreamStats:
    speech_tokens: int = 0
    other_chars: int = 0
    finish_reason: str | None = None
    prompt_tokens: int | None = None


@contextmanager
def map_backend_errors() -> Iterator[None]:
    """Turn httpx's exceptions into the service's backend errors."""
    try:
        yield
    except TTSError:
        raise
    except httpx.TimeoutException as exc:
        raise BackendTimeoutError(f"TTS backend timed out ({type(exc).__name__})") from exc
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise BackendUnavailableError(f"TTS backend unreachable: {exc}") from exc
    except httpx.HTTPError as exc:
        raise BackendError(f"TTS backend stream broke: {type(exc).__name__}: {exc}") from exc
    except BackendStreamError as exc:
        raise BackendError(f"TTS backend error: {exc}") from exc
    except StreamFormatError as exc:
        raise BackendError(str(exc)) from exc


def status_error(status: int, body: object) -> TTSError:
    """The service error for a backend HTTP error answer."""
    message = error_message(body)
    if status == 400:
        if any(w in message.lower() for w in _CONTEXT_WORDS):
            return PromptTooLongError(f"prompt does not fit the model's context: {message}", param="input")
        return InvalidRequestError(f"TTS backend rejected the request: {message}")
    if status in (502, 503):
        return BackendUnavailableError(f"TTS backend unavailable ({status}): {message}")
    if status == 504:
        return BackendTimeoutError(f"TTS backend timed out ({status}): {message}")
    return BackendError(f"TTS backend error ({status}): {message}")


class VLLMClient:
    """Streams speech tokens from a vLLM OpenAI server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        stall_timeout: float | None = None,
        max_connections: int = 512,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self.base_url = base_url
        # once a stream has started, at most this long between two events (never longer than the read timeout)
        self.stall_timeout = min(stall_timeout or read_timeout, read_timeout)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=64),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ready(self, timeout: float = 2.0) -> bool:
        """True if the backend lists our model."""
        try:
            resp = await self._client.get("/v1/models", timeout=timeout)
            if resp.status_code != 200:
                return False
            return any(m.get("id") == self.model for m in resp.json().get("data", []))
        except (httpx.HTTPError, ValueError):
            return False

    async def count_prompt_tokens(self, prompt: str) -> tuple[int, int | None] | None:
        """(prompt tokens, max_model_len) from vLLM's `/tokenize`, or None if the backend lacks it."""
        with map_backend_errors():
            resp = await self._client.post("/tokenize", json={"model": self.model, "prompt": prompt})
        if resp.status_code != 200:
            logger.debug("backend /tokenize answered %s; skipping the exact context check", resp.status_code)
            return None
        body = resp.json()
        return int(body["count"]), body.get("max_model_len")

    async def stream_speech_tokens(
        self, prompt: str, params: SamplingParams, stats: StreamStats | None = None
    ) -> AsyncIterator[list[int]]:
        """Yield lists of speech token ids as vLLM streams them. Closing the iterator closes the request."""
        stats = stats if stats is not None else StreamStats()
        body = {
            "model": self.model,
            "prompt": prompt,
            "stream": True,
            "stream_options": {"include_usage": True},  # prompt token count for the SSE `usage`
            **params.to_body(),
        }
        parser = SpeechTokenParser()
        with map_backend_errors():
            async with self._client.stream("POST", "/v1/completions", json=body) as resp:
                if resp.status_code != 200:
                    raw = await resp.aread()
                    try:
                        err_body: object = json.loads(raw)
                    except ValueError:
                        err_body = raw.decode("utf-8", "replace")
                    raise status_error(resp.status_code, err_body)
                done = False
                async with aclosing(self._until_stalled(resp.aiter_lines())) as events:
                    async for line in events:
                        if line.strip() == "data: [DONE]":
                            done = True
                            break
                        event = parse_sse_data(line)
                        if event is None:
                            continue
                        if event.usage and event.usage.get("prompt_tokens") is not None:
                            stats.prompt_tokens = event.usage["prompt_tokens"]
                        ids = parser.feed(event.text)
                        if event.finish_reason:
                            stats.finish_reason = event.finish_reason
                        if ids:
                            stats.speech_tokens += len(ids)
                            yield ids
                stats.other_chars = parser.other_text
                if not done:
                    raise BackendError("TTS backend closed the stream before it finished")

    async def _until_stalled(self, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        """`lines`, but a gap of more than `stall_timeout` after the first one raises `BackendTimeoutError`.

        The first line waits on the client's read timeout (the connect / first-event phase) alone.
        """
        first = True
        while True:
            try:
                if first:
                    line = await anext(lines)
                else:
                    async with asyncio.timeout(self.stall_timeout):
                        line = await anext(lines)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise BackendTimeoutError(
                    f"TTS backend stalled: no event for {self.stall_timeout:g} s in the middle of a stream"
                ) from None
            first = False
            yield line
