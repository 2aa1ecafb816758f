"""The vLLM client: speech tokens out of vLLM's streaming `/v1/completions`.

The hot path, one long-lived stream per request, reads through aiohttp (its HTTP parser is llhttp, in C) and
parses events with orjson. It asks vLLM for each event's token ids (`return_token_ids`) and maps them to speech
codes with the id range learned once at start from `/tokenize` (`<|s_0|>` and `<|s_65535|>` must be 65,535 apart);
a backend without token ids falls back to parsing `<|s_N|>` out of the text. Everything else (`/v1/models`,
`/tokenize`) goes through one shared httpx client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import httpx
import orjson

from app.backend.sse import (
    BackendStreamError,
    SpeechTokenParser,
    StreamFormatError,
    error_message,
)
from app.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
    PromptTooLongError,
    TTSError,
)
from app.observability.tracing import trace_headers
from app.prompts import N_SPEECH_TOKENS, speech_tokens_text

if TYPE_CHECKING:
    from app.settings import BackendSettings

logger = logging.getLogger(__name__)

_CONTEXT_WORDS = ("maximum context length", "max_model_len", "context length", "too long", "exceeds")


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float
    repetition_penalty: float
    seed: int | None = None
    cache_salt: str | None = None  # vLLM's prefix cache salted per tenant (app.service.principal.cache_salt)

    def to_body(self) -> dict:
        body: dict = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "repetition_penalty": self.repetition_penalty,
            "skip_special_tokens": False,
            "return_token_ids": True,  # vLLM >= 0.11; older servers ignore it and we parse the text
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.cache_salt is not None:
            body["cache_salt"] = self.cache_salt
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
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise BackendTimeoutError(f"TTS backend timed out ({type(exc).__name__})") from exc
    except aiohttp.ClientConnectorError as exc:
        raise BackendUnavailableError(f"TTS backend unreachable: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise BackendError(f"TTS backend stream broke: {type(exc).__name__}: {exc}") from exc
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise BackendUnavailableError(f"TTS backend unreachable: {exc}") from exc
    except httpx.HTTPError as exc:
        raise BackendError(f"TTS backend stream broke: {type(exc).__name__}: {exc}") from exc
    except BackendStreamError as exc:
        raise BackendError(f"TTS backend error: {exc}") from exc
    except StreamFormatError as exc:
        raise BackendError(str(exc)) from exc


class BackendRefusedError(BackendError):
    """vLLM refused the request itself (a 4xx but 400 and 429): another backend would refuse it too."""


def status_error(status: int, body: object) -> TTSError:
    """The service error for a backend HTTP error answer."""
    message = error_message(body)
    if status == 400:
        if any(w in message.lower() for w in _CONTEXT_WORDS):
            return PromptTooLongError(f"prompt does not fit the model's context: {message}", param="input")
        return InvalidRequestError(f"TTS backend rejected the request: {message}")
    if 400 < status < 500 and status != 429:
        return BackendRefusedError(f"TTS backend refused the request ({status}): {message}")
    if status in (502, 503):
        return BackendUnavailableError(f"TTS backend unavailable ({status}): {message}")
    if status == 504:
        return BackendTimeoutError(f"TTS backend timed out ({status}): {message}")
    return BackendError(f"TTS backend error ({status}): {message}")


class VLLMClient:
    """Streams speech tokens from a vLLM OpenAI server. `start()` before use, `aclose()` after."""

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
    ) -> None:
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.speech_id_base: int | None = None  # token id of <|s_0|>, when the backend gives token ids
        self._ids_asked = False  # the backend answered the question (a vLLM that starts after us has not yet)
        # once a stream has started, at most this long between two events (never longer than the read timeout)
        self.stall_timeout = min(stall_timeout or read_timeout, read_timeout)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=self._headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: BackendSettings, url: str | None = None) -> VLLMClient:
        """The client of `url` (one of TTS_API's backends; None: the first) with the backend's settings."""
        return cls(
            url or settings.url,
            settings.model_name,
            api_key=settings.api_key,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            stall_timeout=settings.stall_timeout,
            max_connections=settings.max_connections,
        )

    async def start(self) -> None:
        """Open the streaming session and learn the speech tokens' ids (text parsing if that fails)."""
        self._session = aiohttp.ClientSession(
            base_url=self.base_url,
            headers=self._headers | {"Content-Type": "application/json"},
            connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_read=self.read_timeout),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            auto_decompress=False,
        )
        await self.learn_speech_ids()

    async def learn_speech_ids(self) -> int | None:
        """`speech_id_base` from `/tokenize`; None (text parsing) if the backend is down or has no such ids."""
        probe = speech_tokens_text([0, 1, N_SPEECH_TOKENS - 1])
        try:
            resp = await self._client.post(
                "/tokenize", json={"model": self.model, "prompt": probe, "add_special_tokens": False}, timeout=5.0
            )
        except httpx.HTTPError:
            logger.info("the backend is not answering yet; speech token ids will be learned on the first stream")
            return None
        self._ids_asked = resp.status_code < 500
        try:
            ids = resp.json().get("tokens") if resp.status_code == 200 else None
        except (ValueError, AttributeError):
            ids = None
        if isinstance(ids, list) and len(ids) == 3 and ids[1] == ids[0] + 1 and ids[2] == ids[0] + N_SPEECH_TOKENS - 1:
            self.speech_id_base = int(ids[0])
            logger.info("speech tokens are ids %d..%d: reading token ids", ids[0], ids[2])
        else:
            self.speech_id_base = None
            logger.info("the backend gave no contiguous speech token ids: parsing speech tokens from the text")
        return self.speech_id_base

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._session is not None:
            await self._session.close()

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

    def request_headers(self, request_id: str | None) -> dict[str, str]:
        """The headers of one completions request: `X-Request-Id` is vLLM's id for it (unique per attempt)."""
        return {"X-Request-Id": request_id} if request_id else {}

    async def stream_speech_tokens(
        self, prompt: str, params: SamplingParams, stats: StreamStats | None = None, *, request_id: str | None = None
    ) -> AsyncIterator[list[int]]:
        """Yield lists of speech token ids as vLLM streams them. Closing the iterator closes the request.

        `request_id` becomes vLLM's request id: it must be unique among the requests vLLM is running."""
        if self._session is None:
            await self.start()
        elif not self._ids_asked:
            await self.learn_speech_ids()
        assert self._session is not None
        stats = stats if stats is not None else StreamStats()
        body = {
            "model": self.model,
            "prompt": prompt,
            "stream": True,
            "stream_options": {"include_usage": True},  # prompt token count for the SSE `usage`
            **params.to_body(),
        }
        reader = EventReader(self.speech_id_base)
        with map_backend_errors():
            headers = self.request_headers(request_id) | trace_headers()  # its id and trace: one call followed into vLLM
            async with self._session.post("/v1/completions", data=orjson.dumps(body), headers=headers) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    try:
                        err_body: object = json.loads(raw)
                    except ValueError:
                        err_body = raw.decode("utf-8", "replace")
                    raise status_error(resp.status, err_body)
                async with aclosing(self._until_stalled(resp.content.iter_any())) as chunks:
                    async for data in chunks:
                        ids = reader.feed(data, stats)
                        if ids:
                            stats.speech_tokens += len(ids)
                            yield ids
                        if reader.error is not None:
                            raise reader.error  # after the tokens of the events before it
                        if reader.done:
                            break
                stats.other_chars = reader.other_chars
                if not reader.done:
                    raise BackendError("TTS backend closed the stream before it finished")


    async def _until_stalled(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks`, but a gap of more than `stall_timeout` after the first one raises `BackendTimeoutError`.

        The first chunk waits on the client's read timeout (the connect / first-event phase) alone.
        """
        first = True
        while True:
            try:
                if first:
                    chunk = await anext(chunks)
                else:
                    async with asyncio.timeout(self.stall_timeout):
                        chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise BackendTimeoutError(
                    f"TTS backend stalled: no event for {self.stall_timeout:g} s in the middle of a stream"
                ) from None
            first = False
            yield chunk

class EventReader:
    """Bytes of vLLM's SSE stream in, speech codes out (pure; one per stream).

    Events end with a blank line. With `speech_id_base` known, an event's `token_ids` are mapped to codes (ids
    outside the speech range, such as `<|im_end|>`, are skipped); without it, or for an event without token ids,
    `<|s_N|>` is parsed out of the text, a token split across events included.
    """

    def __init__(self, speech_id_base: int | None) -> None:
        self.base = speech_id_base
        self.done = False
        self.error: Exception | None = None  # a bad or error event: the stream ends after the ids before it
        self._buf = b""
        self._text = SpeechTokenParser()

    @property
    def other_chars(self) -> int:
        return self._text.other_text

    def feed(self, data: bytes, stats: StreamStats) -> list[int]:
        buf = self._buf + data if self._buf else data
        ids: list[int] = []
        start = 0
        while (end := buf.find(b"\n\n", start)) >= 0:
            try:
                self._event(buf[start:end], ids, stats)
            except (BackendStreamError, StreamFormatError) as exc:
                self.error, self.done = exc, True
            start = end + 2
            if self.done:
                break
        self._buf = buf[start:]
        return ids

    def _event(self, raw: bytes, ids: list[int], stats: StreamStats) -> None:
        for line in raw.split(b"\n"):
            if not line.startswith(b"data:"):
                continue  # comments, other SSE fields
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                return
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise StreamFormatError(f"malformed event from backend: {payload[:120]!r}") from None
            if not isinstance(obj, dict):
                raise StreamFormatError(f"unexpected event from backend: {payload[:120]!r}")
            if "error" in obj or obj.get("object") == "error":
                raise BackendStreamError(error_message(obj))
            usage = obj.get("usage")
            if usage and usage.get("prompt_tokens") is not None:
                stats.prompt_tokens = usage["prompt_tokens"]
            choices = obj.get("choices")
            if not choices:
                continue
            choice = choices[0]
            if choice.get("finish_reason"):
                stats.finish_reason = choice["finish_reason"]
            token_ids = choice.get("token_ids")
            base = self.base
            if base is not None and token_ids is not None:
                top = base + N_SPEECH_TOKENS
                ids.extend(t - base for t in token_ids if base <= t < top)
            else:
                ids.extend(self._text.feed(choice.get("text") or ""))
