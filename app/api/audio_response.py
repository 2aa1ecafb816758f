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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from app.api.errors import describe
from app.api.limits import ABORT_CONNECTION
from app.audio.output import AudioWriter
from app.errors import SendTimedOut, StreamAborted, TTSError
from app.service.admission import Slot
from app.service.leases import lease_for
from app.service.render import Piece, Prepared, Renderer, Whole
from app.service.segment_policy import StreamUsage
from app.service.segments import SegmentStream
from app.service.speech import SpeechService
from app.service.ssml_input import ignored_headers
from app.service.timing import SegmentTimings

logger = logging.getLogger(__name__)
T = TypeVar("T")


def audio_headers(stream: SegmentStream, writer: AudioWriter) -> dict[str, str]:
    """The request id; for pcm and wav the samples' rate, channels, bits and (`X-Encoding`) sample encoding, and
    for pcm the original service's names for them too (its clients read X-Audio-* of raw audio only)."""
    headers = request_headers(stream)
    fmt = writer.format.name
    if fmt in ("pcm", "wav"):
        values = {"Sample-Rate": str(writer.rate), "Channels": "1", "Bit-Depth": str(writer.encoding.bits)}
        headers |= {f"X-{k}": v for k, v in values.items()} | {"X-Encoding": writer.encoding.name}
        if fmt == "pcm":
            headers |= {f"X-Audio-{k}": v for k, v in values.items()}
    return headers


def request_headers(stream: SegmentStream) -> dict[str, str]:
    """Every response's: the request id, `X-SSML-Ignored` when its SSML held what was not applied, and
    `X-Unused-Settings` when it asked what was accepted but not applied."""
    return {"X-Request-Id": stream.request_id} | ignored_headers(stream.ssml_ignored) | unused_header(stream.unused)


def unused_header(names: list[str]) -> dict[str, str]:
    """`X-Unused-Settings`: what the request asked that this server accepted but did not apply (a voice setting,
    a dictionary's `phoneme:<string>` rule its text met), comma-separated, each percent-encoded (a header is
    Latin-1); none when all was applied."""
    return {"X-Unused-Settings": ",".join(quote(n, safe=":._-[]") for n in names)} if names else {}


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


async def primed(pieces: AsyncGenerator[Piece, None]) -> AsyncGenerator[Piece, None]:
    """`pieces`, its first audio (or its end) already waited for: a backend or codec error before any audio is
    raised here, while the response can still be an HTTP error. Closing the result closes `pieces`."""
    head: list[Piece] = []
    try:
        async for piece in pieces:
            head.append(piece)
            if piece.event is None or piece.event.kind in ("audio", "pause"):
                break
    except BaseException:
        await pieces.aclose()
        raise

    async def rest() -> AsyncGenerator[Piece, None]:
        try:
            for piece in head:
                yield piece
            async for piece in pieces:
                yield piece
        finally:
            await pieces.aclose()

    return rest()


async def audio_bytes(pieces: AsyncGenerator[Piece, None]) -> AsyncGenerator[bytes, None]:
    """The bytes of rendered pieces, as they come."""
    try:
        async for piece in pieces:
            if piece.data:
                yield piece.data
    finally:
        await pieces.aclose()


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


def timed_json(prepared: Prepared, whole: Whole) -> JSONResponse:
    """`timestamps` without SSE: the whole audio (base64, a complete file) and its words in one JSON body."""
    t, writer, stream = whole.timings, whole.writer, prepared.stream
    assert t is not None
    body = {
        "audio": base64.b64encode(whole.audio).decode(),
        "content_type": writer.content_type,
        "sample_rate": writer.rate,
        "encoding": writer.encoding.name,
        "audio_seconds": t.seconds(t.end),
        **timings_body(t, prepared.delivery.timestamps),
    }
    return JSONResponse(body, headers=request_headers(stream) | finish_headers(stream.usage))


async def sse_events(pieces: AsyncGenerator[Piece, None], prepared: Prepared) -> AsyncGenerator[bytes, None]:
    """OpenAI's `stream_format=sse`: `speech.audio.delta` events (when the request asked for `timestamps`: each
    segment's `speech.audio.timestamps` as soon as its audio is complete, before the next segment's audio), then
    `speech.audio.done` with usage (and `finish_reason`, `cut_segments`)."""
    stream, detail = prepared.stream, prepared.delivery.timestamps
    sent = 0  # segments whose timings went out
    try:
        async for piece in pieces:
            if piece.data:
                yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(piece.data).decode()})
            if piece.timings is not None:
                yield _sse(segment_timings_event(sent, piece.timings, detail))
                sent += 1
    except TTSError as exc:
        logger.warning("%s failed after the stream started: %s", stream.request_id, exc.message)
        info = describe(exc)
        yield _sse({"type": "error", "error": {"message": info.message, "type": info.type, "code": info.code}})
        return
    except Exception:
        logger.exception("%s failed after the stream started", stream.request_id)
        yield _sse({"type": "error", "error": {"message": "internal error", "type": "server_error", "code": None}})
        return
    finally:
        await pieces.aclose()
    u = stream.usage
    usage = {"input_tokens": u.prompt_tokens, "output_tokens": u.speech_tokens, "total_tokens": u.prompt_tokens + u.speech_tokens}
    yield _sse({"type": "speech.audio.done", "usage": usage, **finish_fields(u)})


async def abort_on_error(data: AsyncIterator[bytes], request_id: str) -> AsyncGenerator[bytes, None]:
    """Raw audio streams cannot carry an error once started: log it and abort the response, so the chunked
    body never gets its final chunk and the client sees an incomplete response (curl exit 18, httpx
    `RemoteProtocolError`) instead of a clean end."""
    try:
        async for piece in data:
            yield piece
    except TTSError as exc:
        logger.warning("%s aborted after the stream started: %s", request_id, exc.message)
        raise StreamAborted(exc.message) from exc
    except Exception as exc:
        logger.exception("%s aborted after the stream started", request_id)
        raise StreamAborted("internal error") from exc
    finally:
        await data.aclose()  # type: ignore[attr-defined]


async def speech_response(renderer: Renderer, prepared: Prepared) -> Response:
    """The HTTP response for a prepared request, per its delivery (`stream`, `stream_format`, `timestamps`) and
    its output spec."""
    stream, delivery = prepared.stream, prepared.delivery
    if delivery.complete:
        whole = await renderer.whole(stream, renderer.writer(stream.output, streaming=False), timed=delivery.timed)
        if delivery.timed:
            return timed_json(prepared, whole)
        headers = audio_headers(stream, whole.writer) | finish_headers(stream.usage)
        return Response(whole.audio, media_type=whole.writer.content_type, headers=headers)
    writer = renderer.writer(stream.output)
    pieces = await primed(renderer.pieces(stream, writer, timed=delivery.timed, one_request=True))
    if delivery.stream_format == "sse":
        return StreamingResponse(
            sse_events(pieces, prepared),
            media_type="text/event-stream",
            headers=request_headers(stream) | {"Cache-Control": "no-cache"},
        )
    body = abort_on_error(audio_bytes(pieces), stream.request_id)
    headers = audio_headers(stream, writer)
    return StreamingResponse(body, media_type=writer.content_type, headers=headers)


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

    def __init__(self, inner: Response, slot: Slot, service: SpeechService) -> None:
        self.inner = inner
        self.slot = slot
        self.send_timeout = service.streaming.send_timeout
        self.send_timeouts = service.metrics.send_timeouts
        self.status_code = inner.status_code
        self.raw_headers = inner.raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        timeout = self.send_timeout
        abort = scope.get("extensions", {}).get(ABORT_CONNECTION)  # tts-api's protocol offers it
        try:
            await self.inner(scope, receive, send_within(send, timeout, abort))
        except SendTimedOut as exc:
            self.send_timeouts.labels(self.slot.endpoint).inc()
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
    prepare: Callable[[], Awaitable[Prepared]],
    *,
    body_read: bool = True,
    endpoint: str = "speech",
    respond: Callable[[Renderer, Prepared], Awaitable[Response]] = speech_response,
) -> Response:
    """Admit (or 429) before any work, prepare the request, and answer, all while watching for the client leaving.

    One slot for the whole request, however many segments its text has: a long text is never 429'd midway.
    `body_read=False`: `prepare` reads the request body itself (an upload), so the disconnect watch starts
    only once it is done. `respond` renders the prepared request (default: OpenAI's speech response). The slot is released when the response ends, whichever way it ends.
    """
    slot = service.admit(endpoint)
    try:
        await lease_for(request.app.state.key_limits, request.scope.get("principal"), slot)  # key and tenant limits
        req = await (until_disconnected(request.receive, prepare()) if body_read else prepare())
        response = await until_disconnected(request.receive, respond(service.renderer, req))
    except (ClientGone, ClientDisconnect):
        slot.release()
        return Response(status_code=499)  # nobody reads it: the connection is gone
    except BaseException:
        slot.release()
        raise
    return AdmittedResponse(response, slot, service)
