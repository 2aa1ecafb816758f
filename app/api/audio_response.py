"""Stitched float chunks -> (time stretch) -> encoded bytes -> a streamed, SSE or complete HTTP response."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

import numpy as np
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from app.admission import Slot
from app.api.errors import describe
from app.audio.formats import encode_wav_file, make_encoder
from app.audio.pcm import CONTENT_TYPES, float_to_int16
from app.audio.stretch import TimeStretcher
from app.errors import StreamAborted, TTSError
from app.serving import SpeechService, SynthesisJob

logger = logging.getLogger(__name__)
T = TypeVar("T")

_INLINE_FORMATS = ("pcm", "wav")  # cheap enough to encode on the event loop


def audio_headers(job: SynthesisJob) -> dict[str, str]:
    headers = {"X-Request-Id": job.request_id}
    if job.gen.response_format == "pcm":
        fmt = {"Sample-Rate": str(job.sample_rate), "Channels": "1", "Bit-Depth": "16"}
        # ours, and the original service's names (its clients read X-Audio-*)
        headers |= {f"X-{k}": v for k, v in fmt.items()} | {f"X-Audio-{k}": v for k, v in fmt.items()}
    return headers


async def _prime(chunks: AsyncIterator[np.ndarray]) -> np.ndarray | None:
    """Wait for the first audio chunk so that backend/codec errors still become HTTP errors."""
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None
    except BaseException:
        await chunks.aclose()
        raise


async def _with_first(first: np.ndarray | None, chunks: AsyncIterator[np.ndarray]) -> AsyncIterator[np.ndarray]:
    try:
        if first is not None:
            yield first
            async for chunk in chunks:
                yield chunk
    finally:
        await chunks.aclose()


async def encoded_bytes(
    chunks: AsyncIterator[np.ndarray], fmt: str, speed: float, sample_rate: int
) -> AsyncIterator[bytes]:
    """Encoded audio as it is produced; `speed != 1` time-stretches without changing pitch."""
    encoder = make_encoder(fmt, sample_rate, streaming=True)
    stretcher = TimeStretcher(speed, sample_rate) if speed != 1.0 else None
    inline = fmt in _INLINE_FORMATS and stretcher is None

    lock = threading.Lock()  # a cancelled stream may close the encoder while a worker thread still uses it

    def convert(x: np.ndarray, last: bool = False) -> bytes:
        with lock:
            if stretcher is not None:
                x = stretcher.process(x) if not last else stretcher.flush()
            data = encoder.encode(float_to_int16(x)) if len(x) else b""
            return data + encoder.finish() if last else data

    def close() -> None:
        with lock:
            encoder.close()

    empty = np.zeros(0, np.float32)
    try:
        try:
            async for chunk in chunks:
                data = convert(chunk) if inline else await asyncio.to_thread(convert, chunk)
                if data:
                    yield data
        except Exception:
            # the audio already handed to the encoder (and stretcher) still goes out before the error
            with suppress(Exception):
                # flushed with the container's end: harmless, the response is aborted after it
                held = convert(empty, last=True) if inline else await asyncio.to_thread(convert, empty, True)
                if held:
                    yield held
            raise
        tail = convert(empty, last=True) if inline else await asyncio.to_thread(convert, empty, True)
        if tail:
            yield tail
    finally:
        if inline:
            close()
        else:
            asyncio.get_running_loop().run_in_executor(None, close)
        await chunks.aclose()  # type: ignore[attr-defined]  # closing the response closes the backend request


async def complete_audio(chunks: AsyncIterator[np.ndarray], fmt: str, speed: float, sample_rate: int) -> bytes:
    """The whole response body for `stream=false`: a WAV with correct sizes, raw PCM, or a full encoded file."""
    parts = [c async for c in chunks]
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def encode() -> bytes:
        x = audio
        if speed != 1.0:
            st = TimeStretcher(speed, sample_rate)
            x = np.concatenate([st.process(x), st.flush()])
        pcm = float_to_int16(x)
        if fmt == "wav":
            return encode_wav_file(pcm, sample_rate)
        enc = make_encoder(fmt, sample_rate, streaming=False)
        try:
            return enc.encode(pcm) + enc.finish()
        finally:
            enc.close()

    return await asyncio.to_thread(encode)


def _sse(event: dict) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


async def sse_events(data: AsyncIterator[bytes], job: SynthesisJob) -> AsyncIterator[bytes]:
    """OpenAI's `stream_format=sse`: `speech.audio.delta` events, then `speech.audio.done` with usage."""
    try:
        async for piece in data:
            yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()})
    except TTSError as exc:
        logger.warning("%s failed after the stream started: %s", job.request_id, exc.message)
        info = describe(exc)
        yield _sse({"type": "error", "error": {"message": info.message, "type": info.type, "code": info.code}})
        return
    except Exception:
        logger.exception("%s failed after the stream started", job.request_id)
        yield _sse({"type": "error", "error": {"message": "internal error", "type": "server_error", "code": None}})
        return
    finally:
        await data.aclose()  # type: ignore[attr-defined]
    input_tokens = job.stats.prompt_tokens or 0
    output_tokens = job.stats.speech_tokens
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    yield _sse({"type": "speech.audio.done", "usage": usage})


async def _abort_on_error(data: AsyncIterator[bytes], job: SynthesisJob) -> AsyncIterator[bytes]:
    """Raw audio streams cannot carry an error once started: log it and abort the response, so the chunked
    body never gets its final chunk and the client sees an incomplete response (curl exit 18, httpx
    `RemoteProtocolError`) instead of a clean end."""
    try:
        async for piece in data:
            yield piece
    except TTSError as exc:
        logger.warning("%s aborted after the stream started: %s", job.request_id, exc.message)
        raise StreamAborted(exc.message) from exc
    except Exception as exc:
        logger.exception("%s aborted after the stream started", job.request_id)
        raise StreamAborted("internal error") from exc
    finally:
        await data.aclose()  # type: ignore[attr-defined]


async def speech_response(service: SpeechService, job: SynthesisJob) -> Response:
    """The HTTP response for a prepared job, per its `stream`, `stream_format` and `response_format`."""
    gen = job.gen
    fmt = gen.response_format
    chunks = service.synthesize(job)
    if not gen.stream and gen.stream_format != "sse":
        body = await complete_audio(chunks, fmt, gen.speed, job.sample_rate)
        return Response(body, media_type=CONTENT_TYPES[fmt], headers=audio_headers(job))
    first = await _prime(chunks)
    data = encoded_bytes(_with_first(first, chunks), fmt, gen.speed, job.sample_rate)
    if gen.stream_format == "sse":
        return StreamingResponse(
            sse_events(data, job),
            media_type="text/event-stream",
            headers={"X-Request-Id": job.request_id, "Cache-Control": "no-cache"},
        )
    return StreamingResponse(_abort_on_error(data, job), media_type=CONTENT_TYPES[fmt], headers=audio_headers(job))


# -- one place for a synthesis request's lifetime ------------------------------------------------------------


class ClientGone(Exception):
    """The client disconnected before its response started."""


async def until_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """`work`, cancelled (and awaited, so its cleanup closes the backend request) if the client leaves first.

    Only call this once the request body has been read: it reads `receive` for `http.disconnect`.
    """
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise ClientGone
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))  # its `finally` blocks run now, not at some later GC
            if not task.cancelled():
                task.exception()  # retrieved: nobody is left to see it


class AdmittedResponse(Response):
    """Sends `inner`, then gives back the request's slot: on completion, abort or disconnect alike."""

    def __init__(self, inner: Response, slot: Slot) -> None:
        self.inner = inner
        self.slot = slot
        self.status_code = inner.status_code
        self.raw_headers = inner.raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            body = getattr(self.inner, "body_iterator", None)
            try:
                if body is not None:
                    await body.aclose()  # a disconnect left it suspended: close the backend request now
            finally:
                self.slot.release()


async def admitted_response(
    request: Request,
    service: SpeechService,
    prepare: Callable[[], Awaitable[SynthesisJob]],
    *,
    body_read: bool = True,
    endpoint: str = "speech",
) -> Response:
    """Admit (or 429) before any work, prepare the job, and answer, all while watching for the client leaving.

    `body_read=False`: `prepare` reads the request body itself (an upload), so the disconnect watch starts
    only once it is done. The slot is released when the response ends, whichever way it ends.
    """
    slot = service.admit(endpoint)
    try:
        job = await (until_disconnected(request.receive, prepare()) if body_read else prepare())
        response = await until_disconnected(request.receive, speech_response(service, job))
    except (ClientGone, ClientDisconnect):
        slot.release()
        return Response(status_code=499)  # nobody reads it: the connection is gone
    except BaseException:
        slot.release()
        raise
    return AdmittedResponse(response, slot)
