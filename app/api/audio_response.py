"""A request's segment stream -> stitched float chunks -> `AudioWriter` bytes -> a streamed, SSE or complete HTTP
response (with word timings when the request asks for `timestamps`: JSON, or an SSE event). A segment cut short by
the backend (finish_reason `length`) is reported: `X-Finish-Reason` and `X-Cut-Segments` on a complete response,
`finish_reason` and `cut_segments` in SSE's `speech.audio.done`; a streamed raw response has sent its headers by
then (the log line and `tts_generations_total` say it)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from functools import partial
from typing import TypeVar

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from app.api.errors import describe
from app.api.limits import ABORT_CONNECTION
from app.audio.output import AudioWriter
from app.audio.pcm import SampleEncoding
from app.audio.registry import output_format
from app.errors import SendTimedOut, StreamAborted, TTSError
from app.service.admission import Slot
from app.service.leases import lease_for
from app.service.segments import SegmentStream, StreamUsage
from app.service.speech import SpeechService
from app.service.timeline import Timeline
from app.service.timing import SegmentTimings

logger = logging.getLogger(__name__)
T = TypeVar("T")


def audio_headers(req: SegmentStream, rate: int, encoding: SampleEncoding) -> dict[str, str]:
    """The request id; for pcm and wav the samples' rate, channels, bits and (`X-Encoding`) sample encoding, and
    for pcm the original service's names for them too (its clients read X-Audio-* of raw audio only)."""
    headers = {"X-Request-Id": req.request_id}
    fmt = req.gen.response_format
    if fmt in ("pcm", "wav"):
        values = {"Sample-Rate": str(rate), "Channels": "1", "Bit-Depth": str(encoding.bits)}
        headers |= {f"X-{k}": v for k, v in values.items()} | {"X-Encoding": encoding.name}
        if fmt == "pcm":
            headers |= {f"X-Audio-{k}": v for k, v in values.items()}
    return headers


def finish_headers(usage: StreamUsage) -> dict[str, str]:
    """A complete response's end: `X-Finish-Reason` (`length` when a segment was cut short at max_tokens or the
    model's context, else `stop`), `X-Cut-Segments` (their numbers, from 0) and `X-Segments`."""
    headers = {"X-Finish-Reason": usage.finish_reason, "X-Segments": str(usage.segments)}
    if usage.cut_segments:
        headers["X-Cut-Segments"] = ",".join(map(str, usage.cut_segments))
    return headers


def finish_fields(usage: StreamUsage) -> dict:
    """The same, as fields of a final event: `finish_reason`, and `cut_segments` when any was cut."""
    fields: dict = {"finish_reason": usage.finish_reason}
    if usage.cut_segments:
        fields["cut_segments"] = list(usage.cut_segments)
    return fields


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
    chunks: AsyncIterator[np.ndarray], new_writer: Callable[[], AudioWriter]
) -> AsyncIterator[bytes]:
    """The audio in `new_writer()`'s format as it is produced; closes the writer and `chunks` however it ends.

    The writer is made when the response starts, so a response that is never sent holds no encoder.
    """
    writer = None
    try:
        writer = new_writer()
        try:
            async for chunk in chunks:
                if data := await writer.awrite(chunk):
                    yield data
        except Exception:
            # the audio already handed to the writer still goes out before the error
            with suppress(Exception):
                # flushed with the container's end: harmless, the response is aborted after it
                if held := await writer.afinish():
                    yield held
            raise
        if tail := await writer.afinish():
            yield tail
    finally:
        if writer is not None:
            writer.close()
        await chunks.aclose()  # type: ignore[attr-defined]  # closing the response closes the backend request


async def complete_audio(chunks: AsyncIterator[np.ndarray], new_writer: Callable[[], AudioWriter]) -> bytes:
    """The whole response body for `stream=false`: a WAV with correct sizes, raw PCM, or a full encoded file."""
    parts = [c async for c in chunks]
    writer = new_writer()
    try:
        return await writer.aencode_all(np.concatenate(parts) if parts else np.zeros(0, np.float32))
    finally:
        writer.close()


def _sse(event: dict) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def timings_body(t: SegmentTimings, detail: str | None) -> dict:
    """`source`, the normalized `text`, `words` (and `characters` for `char`), in seconds from the audio's start."""
    body = {"source": t.source, "text": t.text, "words": t.word_dicts()}
    if detail == "char":
        body["characters"] = t.char_dicts()
    return body


def segment_timings_event(index: int, t: SegmentTimings, detail: str | None) -> dict:
    """SSE's `speech.audio.timestamps` for one segment, sent once its audio is complete."""
    return {"type": "speech.audio.timestamps", "index": index, "start": t.seconds(t.start), "end": t.seconds(t.end),
            **timings_body(t, detail)}  # fmt: skip


async def timed_json(req: SegmentStream, timeline: Timeline) -> JSONResponse:
    """`timestamps` without SSE: the whole audio (base64, a complete file) and its words in one JSON body."""
    writer = timeline.writer
    try:
        parts = [c async for c in req.audio(timeline)]
        audio = await writer.aencode_all(np.concatenate(parts) if parts else np.zeros(0, np.float32))
        t = SegmentTimings.join(timeline.segments, writer.rate)
    finally:
        writer.close()
    body = {
        "audio": base64.b64encode(audio).decode(),
        "content_type": writer.content_type,
        "sample_rate": writer.rate,
        "encoding": writer.encoding.name,
        "audio_seconds": t.seconds(t.end),
        **timings_body(t, req.gen.timestamps),
    }
    return JSONResponse(body, headers={"X-Request-Id": req.request_id} | finish_headers(req.usage))


async def sse_events(
    data: AsyncIterator[bytes], req: SegmentStream, timeline: Timeline | None = None
) -> AsyncIterator[bytes]:
    """OpenAI's `stream_format=sse`: `speech.audio.delta` events (with `timeline`, the request asked for
    `timestamps`: each segment's `speech.audio.timestamps` as soon as its audio is complete, before the next
    segment's audio), then `speech.audio.done` with usage (and `finish_reason`, `cut_segments`)."""
    sent = 0  # segments whose timings went out

    def timings() -> Iterator[bytes]:
        nonlocal sent
        while timeline is not None and sent < len(timeline.segments):
            yield _sse(segment_timings_event(sent, timeline.segments[sent], req.gen.timestamps))
            sent += 1

    try:
        async for piece in data:
            for event in timings():
                yield event
            yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()})
    except TTSError as exc:
        logger.warning("%s failed after the stream started: %s", req.request_id, exc.message)
        info = describe(exc)
        yield _sse({"type": "error", "error": {"message": info.message, "type": info.type, "code": info.code}})
        return
    except Exception:
        logger.exception("%s failed after the stream started", req.request_id)
        yield _sse({"type": "error", "error": {"message": "internal error", "type": "server_error", "code": None}})
        return
    finally:
        await data.aclose()  # type: ignore[attr-defined]
    for event in timings():
        yield event
    input_tokens = req.usage.prompt_tokens
    output_tokens = req.usage.speech_tokens
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    yield _sse({"type": "speech.audio.done", "usage": usage, **finish_fields(req.usage)})


async def _abort_on_error(data: AsyncIterator[bytes], req: SegmentStream) -> AsyncIterator[bytes]:
    """Raw audio streams cannot carry an error once started: log it and abort the response, so the chunked
    body never gets its final chunk and the client sees an incomplete response (curl exit 18, httpx
    `RemoteProtocolError`) instead of a clean end."""
    try:
        async for piece in data:
            yield piece
    except TTSError as exc:
        logger.warning("%s aborted after the stream started: %s", req.request_id, exc.message)
        raise StreamAborted(exc.message) from exc
    except Exception as exc:
        logger.exception("%s aborted after the stream started", req.request_id)
        raise StreamAborted("internal error") from exc
    finally:
        await data.aclose()  # type: ignore[attr-defined]


async def speech_response(service: SpeechService, req: SegmentStream) -> Response:
    """The HTTP response for a prepared request (its segment stream), per its `stream`, `stream_format` and
    `response_format`."""
    gen = req.gen
    fmt = output_format(gen.response_format)
    timed = gen.timestamps is not None  # raw audio cannot carry timings: JSON, or SSE
    complete = (not gen.stream or timed) and gen.stream_format != "sse"
    rate = gen.sample_rate or service.sample_rate
    encoding = fmt.encoding(gen.encoding)
    new_writer = partial(
        AudioWriter,
        fmt,
        source_rate=service.sample_rate,
        speed=gen.speed,
        rate=rate,
        encoding=encoding.name,
        complexity=service.streaming.opus_complexity,
        streaming=not complete,
    )
    timeline = None
    if timed:  # the writer made now: the timeline places each segment in the audio it delivers
        timeline = Timeline(service, new_writer())

        def new_writer() -> AudioWriter:
            return timeline.writer
        if complete:
            return await timed_json(req, timeline)
    chunks = req.audio(timeline)
    if complete:
        body = await complete_audio(chunks, new_writer)
        headers = audio_headers(req, rate, encoding) | finish_headers(req.usage)
        return Response(body, media_type=fmt.content_type, headers=headers)
    first = await _prime(chunks)
    data = encoded_bytes(_with_first(first, chunks), new_writer)
    if gen.stream_format == "sse":
        return StreamingResponse(
            sse_events(data, req, timeline),
            media_type="text/event-stream",
            headers={"X-Request-Id": req.request_id, "Cache-Control": "no-cache"},
        )
    return StreamingResponse(_abort_on_error(data, req), media_type=fmt.content_type, headers=audio_headers(req, rate, encoding))


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


def send_within(send: Send, timeout: float, abort: Callable[[], None] | None = None) -> Send:
    """`send`, each call of which may wait at most `timeout` seconds for the client to take earlier bytes (the
    server's flow control waits while its buffers are full); then `abort()` drops the connection, when the server
    offers it, and `SendTimedOut` ends the stream."""

    async def timed(message: Message) -> None:
        try:
            async with asyncio.timeout(timeout):
                await send(message)
        except TimeoutError:
            if abort is not None:
                abort()
            raise SendTimedOut(f"the client did not read its stream for {timeout:g} s") from None

    return timed


class AdmittedResponse(Response):
    """Sends `inner`, then gives back the request's slot: on completion, abort or disconnect alike.

    Every HTTP stream goes through here, so here is its send timeout: a client that takes none of its bytes for
    `STREAM_SEND_TIMEOUT` seconds is dropped, its stream closed (and its backend request with it), its slot given
    back and the drop counted (`tts_stream_send_timeouts_total{endpoint}`).
    """

    def __init__(self, inner: Response, slot: Slot) -> None:
        self.inner = inner
        self.slot = slot
        self.status_code = inner.status_code
        self.raw_headers = inner.raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service: SpeechService = scope["app"].state.service
        timeout = service.streaming.send_timeout
        abort = scope.get("extensions", {}).get(ABORT_CONNECTION)  # tts-api's protocol offers it
        try:
            await self.inner(scope, receive, send_within(send, timeout, abort))
        except SendTimedOut as exc:
            service.metrics.send_timeouts.labels(self.slot.endpoint).inc()
            logger.warning("%s dropped: %s", self.inner.headers.get("x-request-id", "-"), exc)
            raise
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
    prepare: Callable[[], Awaitable[SegmentStream]],
    *,
    body_read: bool = True,
    endpoint: str = "speech",
) -> Response:
    """Admit (or 429) before any work, prepare the request, and answer, all while watching for the client leaving.

    One slot for the whole request, however many segments its text has: a long text is never 429'd midway.
    `body_read=False`: `prepare` reads the request body itself (an upload), so the disconnect watch starts
    only once it is done. The slot is released when the response ends, whichever way it ends.
    """
    slot = service.admit(endpoint)
    try:
        await lease_for(request.app.state.key_limits, request.scope.get("principal"), slot)  # the key's own limits
        req = await (until_disconnected(request.receive, prepare()) if body_read else prepare())
        response = await until_disconnected(request.receive, speech_response(service, req))
    except (ClientGone, ClientDisconnect):
        slot.release()
        return Response(status_code=499)  # nobody reads it: the connection is gone
    except BaseException:
        slot.release()
        raise
    return AdmittedResponse(response, slot)
