"""Several vLLM backends behind one token source: a stream that breaks resumes on the next live backend.

`TTS_API` may list several backends (a k8s Service name is one entry: it sends each new connection to a live
pod). A new request goes to the least-loaded live backend, ties taken in turn. When its stream breaks (refused,
reset, a 5xx, an error event, a stall past `BACKEND_STALL_TIMEOUT`), before or after its first token, it is sent
again to the next live backend with the prompt plus exactly the speech tokens received so far as the start of
the answer, and `max_tokens` less by as many: the caller reads one stream of tokens, none lost or repeated.
At most `BACKEND_RETRIES` resends, none later than `BACKEND_FAILOVER_TIMEOUT` after the request's first break;
past them the last error is raised and the stream ends broken, as with one backend and no failover.

A backend whose stream broke is out of rotation until a health check (`/v1/models` lists the model) passes;
they run every `BACKEND_HEALTH_INTERVAL`. While none is live, the one out longest is tried (a single entry
keeps serving), after a pause that doubles with each resend of the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from app.backend.vllm import BackendRefusedError, SamplingParams, StreamStats, VLLMClient
from app.errors import BackendError, TTSError
from app.prompts import speech_tokens_text

if TYPE_CHECKING:
    from app.observability.metrics import ServiceMetrics
    from app.settings import BackendSettings

logger = logging.getLogger(__name__)

RESEND_PAUSE = 0.2  # seconds a resend first waits for a live backend while none is; doubled at each resend


def continuation(prompt: str, params: SamplingParams, received: Sequence[int]) -> tuple[str, SamplingParams]:
    """The request that goes on with a generation after `received` speech tokens: the prompt with them as the
    start of the model's answer, and `max_tokens` less by as many."""
    if not received:
        return prompt, params
    return prompt + speech_tokens_text(received), replace(params, max_tokens=params.max_tokens - len(received))


def resumable(exc: BaseException) -> bool:
    """A break another attempt may get past: the backend failed, not the request (a 4xx would fail anywhere)."""
    return isinstance(exc, BackendError) and not isinstance(exc, BackendRefusedError)


def attempt_id(request_id: str | None, attempt: int) -> str | None:
    """vLLM's request id for one attempt: unique per attempt (a resend may reach the same vLLM)."""
    if request_id is None or attempt == 0:
        return request_id
    return f"{request_id}-r{attempt}"


@dataclass(eq=False)
class Member:
    """One `TTS_API` entry and what the pool knows of it."""

    client: VLLMClient
    live: bool = True
    out_since: float = 0.0  # when it was taken out of rotation
    streams: int = 0  # streams open on it now

    @property
    def url(self) -> str:
        return self.client.base_url


@dataclass
class Attempt:
    """Where one request stands: the tokens it received, its resends, when it first broke."""

    request_id: str | None
    received: list[int]
    number: int = 0
    first_break: float | None = None


class BackendPool:
    """The vLLM backends of `TTS_API`, one `VLLMClient` each. `start()` before use, `aclose()` after."""

    def __init__(
        self,
        clients: Sequence[VLLMClient],
        *,
        retries: int = 3,
        failover_timeout: float = 30.0,
        health_interval: float = 2.0,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        if not clients:
            raise ValueError("a backend pool needs at least one backend")
        self.members = [Member(c) for c in clients]
        self.retries = retries
        self.failover_timeout = failover_timeout
        self.health_interval = health_interval
        self.metrics = metrics
        self._turn = 0
        self._health: asyncio.Task | None = None

    @classmethod
    def from_settings(cls, settings: BackendSettings, metrics: ServiceMetrics | None = None) -> BackendPool:
        clients = [VLLMClient.from_settings(settings, url) for url in settings.urls]
        return cls(
            clients,
            retries=settings.retries,
            failover_timeout=settings.failover_timeout,
            health_interval=settings.health_interval,
            metrics=metrics,
        )

    # -- what the service reads ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return ",".join(m.url for m in self.members)

    @property
    def model(self) -> str:
        return self.members[0].client.model

    @property
    def live(self) -> list[str]:
        """The URLs of the backends in rotation."""
        return [m.url for m in self.members if m.live]

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.gather(*(m.client.start() for m in self.members))
        self._health = asyncio.create_task(self._check_health(), name="backend-health")

    async def aclose(self) -> None:
        if self._health is not None:
            self._health.cancel()
            with suppress(asyncio.CancelledError):
                await self._health
            self._health = None
        await asyncio.gather(*(m.client.aclose() for m in self.members))

    async def ready(self, timeout: float = 2.0) -> bool:
        """True if a backend lists our model (each one's answer puts it in or out of rotation)."""
        answers = await asyncio.gather(*(m.client.ready(timeout) for m in self.members))
        for member, ok in zip(self.members, answers, strict=True):
            self._mark(member, ok, "its health check failed")
        return any(answers)

    async def count_prompt_tokens(self, prompt: str) -> tuple[int, int | None] | None:
        """`VLLMClient.count_prompt_tokens` on a live backend, the next one if that one fails."""
        error: TTSError | None = None
        for member in self._in_order():
            try:
                return await member.client.count_prompt_tokens(prompt)
            except BackendError as exc:
                if not resumable(exc):
                    raise
                self._mark(member, False, str(exc))
                error = exc
        assert error is not None
        raise error

    # -- the stream ------------------------------------------------------------------------------------
    async def stream_speech_tokens(
        self, prompt: str, params: SamplingParams, stats: StreamStats | None = None, *, request_id: str | None = None
    ) -> AsyncIterator[list[int]]:
        """Speech token ids as the backends stream them: one generation, resumed on the next live backend each
        time a stream breaks, within the retry budget and the failover deadline."""
        stats = stats if stats is not None else StreamStats()
        state = Attempt(request_id, [])
        member = self._pick()
        while True:
            resumed = len(state.received)
            body_prompt, body_params = continuation(prompt, params, state.received)
            try:
                async with aclosing(self._stream_on(member, body_prompt, body_params, stats, state)) as ids_in:
                    async for ids in ids_in:
                        yield ids  # closing this generator closes the backend request at once
            except Exception as exc:
                if not resumable(exc) or not self._may_resend(state, member, exc):
                    raise
                if len(state.received) >= params.max_tokens:
                    stats.finish_reason = "length"  # it broke after its last token: nothing is left to generate
                    return
                member = await self._resend_to(state)
                continue
            if resumed and stats.prompt_tokens is not None:
                stats.prompt_tokens -= resumed  # the caller's prompt, not the resumed one
            self._mark(member, True)
            return

    async def _stream_on(
        self, member: Member, prompt: str, params: SamplingParams, stats: StreamStats, state: Attempt
    ) -> AsyncIterator[list[int]]:
        member.streams += 1
        try:
            rid = attempt_id(state.request_id, state.number)
            async with aclosing(member.client.stream_speech_tokens(prompt, params, stats, request_id=rid)) as ids_in:
                async for ids in ids_in:
                    state.received.extend(ids)
                    yield ids
        finally:
            member.streams -= 1

    def _may_resend(self, state: Attempt, member: Member, exc: Exception) -> bool:
        """Note a break; False (counted and logged) when the retry budget or the deadline is spent."""
        self._mark(member, False, str(exc))
        now = time.monotonic()
        state.first_break = state.first_break if state.first_break is not None else now
        late = now - state.first_break >= self.failover_timeout
        if state.number >= self.retries or late:
            self._count("exhausted")
            logger.warning(
                "%s: backend %s broke after %d speech tokens (%s); no resend left (%s): the stream ends broken",
                state.request_id, member.url, len(state.received), exc,
                "failover timeout" if late else f"{self.retries} resends",
            )
            return False
        logger.warning(
            "%s: backend %s broke after %d speech tokens (%s); resending with them (resend %d of %d)",
            state.request_id, member.url, len(state.received), exc, state.number + 1, self.retries,
        )
        return True

    async def _resend_to(self, state: Attempt) -> Member:
        """The backend for the next attempt (after a pause while none is live)."""
        state.number += 1
        self._count("resent")
        if not any(m.live for m in self.members):
            assert state.first_break is not None
            left = state.first_break + self.failover_timeout - time.monotonic()
            await asyncio.sleep(max(0.0, min(RESEND_PAUSE * 2 ** (state.number - 1), left)))
        member = self._pick()
        logger.info("%s: resend %d goes to %s", state.request_id, state.number, member.url)
        return member

    # -- rotation --------------------------------------------------------------------------------------
    def _pick(self) -> Member:
        """The least-loaded live backend (ties in turn); the one out longest while none is live."""
        return self._in_order()[0]

    def _in_order(self) -> list[Member]:
        n = len(self.members)
        turn, self._turn = self._turn, self._turn + 1
        rank = {id(m): (i - turn) % n for i, m in enumerate(self.members)}
        live = sorted((m for m in self.members if m.live), key=lambda m: (m.streams, rank[id(m)]))
        out = sorted((m for m in self.members if not m.live), key=lambda m: m.out_since)
        return live + out

    def _mark(self, member: Member, live: bool, why: str = "") -> None:
        if member.live == live:
            return
        member.live = live
        if live:
            logger.info("backend %s is back in rotation", member.url)
        else:
            member.out_since = time.monotonic()
            logger.warning("backend %s out of rotation until a health check passes: %s", member.url, why)

    async def _check_health(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            out = [m for m in self.members if not m.live]
            if out:
                answers = await asyncio.gather(*(m.client.ready() for m in out))
                for member, ok in zip(out, answers, strict=True):
                    if ok:
                        self._mark(member, True)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.backend_failovers.labels(outcome).inc()
