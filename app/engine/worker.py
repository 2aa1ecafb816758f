"""The codec worker: one thread decodes, another encodes; `submit` queues a job, `deliver` hands back its result.

With dynamic batching, jobs that arrive within `MICROSLEEP` of each other (up to `MAX_BATCH_SIZE`) are
decoded as one batch; without it, one job at a time. Before a batch starts, the worker also waits (at most
`BATCH_WAIT_FRACTION` of a recent batch's time) for the next window of every stream that has just had audio
back from the previous batch: those streams send it a few milliseconds later, through their front-end, and a
worker that started at the first window to arrive would split them into small batches round after round (on a
CPU a batch of 8 windows costs little more than a batch of 3). Either way the I/O thread never runs the codec.
Encodes (voice-cloning references) have their own queue and thread, so they never delay decode windows; so do
alignments (the opt-in forced aligner, batched up to `align_batch_size` segments of about one length), whose
failures and long batches never make the engine unhealthy: the aligner is an extra, speech goes on without it.
A failing batch fails only its own requests; the threads keep serving, and a run of failures makes the engine
unhealthy until the next success (so does a batch that runs past `timeout`: a hung device).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TypeVar

import numpy as np

from app.codec.interface import Codec, CodecStats
from app.engine.batcher import BatchQueue, Job
from app.engine.errors import CodecFailed, EngineStopping, InvalidInput
from app.engine.messages import JobKind, WorkerStats
from app.engine.threads import run_on_fresh_thread
from app.observability.metrics import CodecMetrics, padding_ratio

logger = logging.getLogger(__name__)

K = TypeVar("K")
CODEC_KINDS = (JobKind.DECODE, JobKind.ENCODE)


class Aligner(Protocol):
    """`app.align.model.CTCAligner`: per request, its spans, or the ValueError that request alone met."""

    def align(self, requests: list[Any]) -> list[Any]: ...


class CodecEngine:
    """Runs codec jobs on a decode thread and an encode thread; `submit` queues a job from any thread."""

    def __init__(
        self,
        codec: Codec,
        *,
        max_batch_size: int,
        microsleep: float,
        batch_wait_fraction: float = 0.0,
        name: str = "codec-worker",
        metrics: CodecMetrics | None = None,
        timeout: float | None = None,
        unhealthy_after: int = 3,
        aligner: Aligner | None = None,
        align_batch_size: int = 8,
    ) -> None:
        self.codec = codec
        self.aligner = aligner  # None: no ALIGN thread, ALIGN jobs refused
        self.align_batch_size = align_batch_size
        self.max_batch_size = max_batch_size  # 1: no dynamic batching (the settings derive it from DYNAMIC_BATCHING)
        self.microsleep = microsleep
        self.batch_wait_fraction = batch_wait_fraction
        self._returning: set = set()  # streams of the last decode batch that will send another window
        self._batch_seconds = 0.0  # moving average of a decode batch's time: bounds that wait
        self.timeout = timeout  # seconds a batch may run before the engine counts as hung; None: no limit
        self.unhealthy_after = unhealthy_after  # consecutive failed jobs that make it unhealthy
        self.stats = WorkerStats()
        self.metrics = metrics or CodecMetrics()
        self._recompiles_seen = 0
        self._queues = {kind: BatchQueue() for kind in JobKind}
        self._busy_since: dict[JobKind, float | None] = dict.fromkeys(JobKind)  # the running batch's start
        self._cond = threading.Condition()
        self._stopping = False
        self._consecutive_failures = 0
        self._threads = {
            JobKind.DECODE: threading.Thread(target=self._run, args=(JobKind.DECODE,), name=name, daemon=True),
            JobKind.ENCODE: threading.Thread(
                target=self._run, args=(JobKind.ENCODE,), name=f"{name}-encode", daemon=True
            ),
        }
        if aligner is not None:
            self._threads[JobKind.ALIGN] = threading.Thread(
                target=self._run, args=(JobKind.ALIGN,), name=f"{name}-align", daemon=True
            )

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        for thread in self._threads.values():
            thread.start()
        logger.info(
            "codec worker started (max_batch_size=%d, microsleep=%g s, batch_wait_fraction=%g)",
            self.max_batch_size,
            self.microsleep,
            self.batch_wait_fraction,
        )

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads.values():
            if thread.is_alive():
                thread.join(timeout)

    @property
    def kinds(self) -> list[JobKind]:
        """The kinds of job this worker runs."""
        return list(self._threads)

    @property
    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads.values())

    @property
    def healthy(self) -> bool:
        """Alive, fewer than `unhealthy_after` jobs in a row have failed (a success resets it), and no batch has
        been running for longer than `timeout` (a hung device)."""
        if not self.alive or self._consecutive_failures >= self.unhealthy_after:
            return False
        if self.timeout is not None:
            now = time.perf_counter()
            return all(t is None or now - t <= self.timeout for k, t in self._busy_since.items() if k in CODEC_KINDS)
        return True

    def queue_depth(self, kind: JobKind) -> int:
        with self._cond:
            return len(self._queues[kind])

    def _record_outcome(self, ok: bool) -> None:
        with self._cond:
            was_healthy = self._consecutive_failures < self.unhealthy_after
            self._consecutive_failures = 0 if ok else self._consecutive_failures + 1
            now_healthy = self._consecutive_failures < self.unhealthy_after
        if was_healthy != now_healthy:
            if now_healthy:
                logger.warning("codec healthy again after a successful job")
            else:
                logger.error("codec unhealthy: %d jobs in a row failed", self._consecutive_failures)

    # -- submission ---------------------------------------------------------------------------------
    def submit(
        self,
        kind: JobKind,
        payload: Any,
        deliver: Callable[[Any, BaseException | None], None],
        is_cancelled: Callable[[], bool] = lambda: False,
        *,
        stream: Hashable | None = None,
        final: bool = False,
        slack: float = 0.0,
    ) -> None:
        """Queue one job from any thread; `deliver(result, error)` is called on the worker thread.

        `stream` names the stream a decode window belongs to and `final` marks its last window: with them the
        worker waits for the next windows of the streams it has just served (`BATCH_WAIT_FRACTION`); `slack`
        (seconds until the window's listener runs out of audio) orders the queue, most urgent first.
        Raises `EngineStopping` once the worker stops, ValueError for a non-finite slack or a kind it does not run
        (ALIGN without an aligner)."""
        if not math.isfinite(slack):
            raise ValueError(f"slack must be a finite number of seconds, got {slack}")
        if kind not in self._threads:
            raise ValueError(f"this engine runs no {kind} jobs")
        size = job_size(kind, payload)
        job = Job(kind, payload, deliver, is_cancelled=is_cancelled, stream=stream, final=final, slack=slack, size=size)
        with self._cond:
            if self._stopping or not self._threads[kind].is_alive():
                raise EngineStopping("the codec worker is not running")
            self._queues[kind].append(job)
            _add(self.stats.jobs, kind, 1)
            self.metrics.jobs.labels(kind).inc()
            self.metrics.queue_depth.labels(kind).set(len(self._queues[kind]))
            self._cond.notify_all()

    # -- the thread ------------------------------------------------------------------------------
    def _run(self, kind: JobKind) -> None:
        queue = self._queues[kind]
        while True:
            with self._cond:
                while not len(queue) and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    pending, _ = queue.next_batch(len(queue) or 1)
                    while pending:
                        for job in pending:
                            job.deliver(None, EngineStopping("the service is shutting down"))
                        pending, _ = queue.next_batch(len(queue) or 1)
                    return
            if self.microsleep > 0:
                time.sleep(self.microsleep)  # let concurrent requests join this batch
            if kind is JobKind.DECODE:
                self._fill_wait(queue)
            with self._cond:
                batch, dropped = queue.next_batch(self.align_batch_size if kind is JobKind.ALIGN else self.max_batch_size)
                depth = len(queue)
                self.metrics.queue_depth.labels(kind).set(depth)
            self.stats.dropped += len(dropped)
            self.metrics.dropped.inc(len(dropped))
            if batch:
                self._process(batch, depth)

    def _fill_wait(self, queue: BatchQueue) -> None:
        """Hold the next decode batch until every stream served by the last one has its next window queued (or
        the batch is full), for at most `batch_wait_fraction` of a recent batch's time."""
        limit = self.batch_wait_fraction * self._batch_seconds
        if not self._returning or limit <= 0:
            return

        def ready() -> bool:
            return (
                self._stopping
                or queue.depth(JobKind.DECODE) >= self.max_batch_size
                or self._returning <= queue.streams(JobKind.DECODE)
            )

        with self._cond:
            if ready():
                return
            start = time.perf_counter()
            self._cond.wait_for(ready, timeout=limit)
        waited = time.perf_counter() - start
        self.stats.fill_wait_seconds += waited
        self.metrics.fill_wait.inc(waited)

    def _process(self, batch: list[Job], depth_after: int) -> None:
        kind = batch[0].kind
        started = time.perf_counter()
        self.stats.wait_seconds += sum(started - j.enqueued_at for j in batch)
        for j in batch:
            self.metrics.queue_wait.labels(kind).observe(started - j.enqueued_at)
        codec_stats = self.codec.stats
        tokens_before = (codec_stats.tokens, codec_stats.padded_tokens)
        self._busy_since[kind] = started
        payloads = [j.payload for j in batch]
        try:
            results = run_batch(self.codec, self.aligner, kind, payloads)
        except Exception as exc:
            self._busy_since[kind] = None
            self._failed(batch, depth_after, exc)
            return
        self._busy_since[kind] = None
        elapsed = time.perf_counter() - started
        self._account(batch, payloads, elapsed, codec_stats, tokens_before)
        logger.debug(
            "codec %s batch size=%d took %.1f ms, queue depth %d", kind, len(batch), elapsed * 1e3, depth_after
        )
        deliver_results(batch, results)

    def _failed(self, batch: list[Job], depth_after: int, exc: Exception) -> None:
        """A batch raised: count it, then retry each job alone (one bad input must not fail its neighbours), or
        fail the one job it held."""
        kind = batch[0].kind
        self.stats.failures += 1
        self.metrics.failures.labels(kind).inc()
        if len(batch) > 1:
            logger.warning("codec %s batch of %d failed (%s); retrying one by one", kind, len(batch), exc)
            for job in batch:
                self._process([job], depth_after)
            return
        logger.exception("codec %s of one job failed", kind)
        if kind in CODEC_KINDS:
            self._record_outcome(ok=False)
        batch[0].deliver(None, CodecFailed(f"audio {kind} failed: {type(exc).__name__}: {exc}"))

    def _account(
        self, batch: list[Job], payloads: list[Any], elapsed: float, codec_stats: CodecStats, before: tuple[int, int]
    ) -> None:
        """A batch succeeded in `elapsed` seconds: health, stats and metrics; for a decode batch also the streams
        to wait for next time, the batch time that bounds that wait, tokens and padding."""
        kind, m = batch[0].kind, self.metrics
        if kind in CODEC_KINDS:
            self._record_outcome(ok=True)
        _add(self.stats.batches, kind, 1)
        _add(self.stats.busy_seconds, kind, elapsed)
        self.stats.max_batch = max(self.stats.max_batch, len(batch))
        m.batch_size.labels(kind).observe(len(batch))
        m.batch_seconds.labels(kind).observe(elapsed)
        if kind is JobKind.DECODE:
            self._returning = {j.stream for j in batch if j.stream is not None and not j.final}
            self._batch_seconds = elapsed if not self._batch_seconds else 0.8 * self._batch_seconds + 0.2 * elapsed
            _add(self.stats.batch_sizes, len(batch), 1)
            self.stats.tokens_decoded += sum(len(p) for p in payloads)
            m.tokens.inc(sum(len(p) for p in payloads))
            m.padding.observe(decode_padding(codec_stats, before, payloads))
        recompiles = codec_stats.recompiles  # the runtime counts torch.compile recompilations
        if recompiles > self._recompiles_seen:
            m.recompiles.inc(recompiles - self._recompiles_seen)
            self._recompiles_seen = recompiles


def job_size(kind: JobKind, payload: Any) -> int:
    """The size the queue groups a job by: a decode window's tokens, an alignment's audio samples (segments of
    about one length share a padded forward pass); 0 for an encode."""
    if kind is JobKind.DECODE:
        return int(np.size(payload))
    if kind is JobKind.ALIGN:
        return int(np.size(payload.audio))
    return 0


def run_batch(codec: Codec, aligner: Aligner | None, kind: JobKind, payloads: list[Any]) -> list[Any]:
    """One batch on the codec (or the aligner): a result per payload; raises what the batch raised."""
    if kind is JobKind.DECODE:
        results = codec.decode(payloads)
    elif kind is JobKind.ALIGN:
        assert aligner is not None
        results = run_on_fresh_thread(aligner.align, payloads, name="aligner-batch")
    else:  # on a thread that ends with the batch: a second live OpenMP team slows decoding (threads.py)
        results = run_on_fresh_thread(codec.encode, payloads, name="codec-encode-batch")
    if len(results) != len(payloads):
        raise RuntimeError(f"codec returned {len(results)} results for {len(payloads)} inputs")
    return results


def decode_padding(codec_stats: CodecStats, before: tuple[int, int], payloads: list[Any]) -> float:
    """Padding share of the decode batch run since the codec counted `before` (valid, padded) tokens: the runtime's
    own count includes CUDA-graph bucket padding; a stand-in codec counts nothing, so the batch's own then."""
    valid = codec_stats.tokens - before[0]
    padded = codec_stats.padded_tokens - before[1]
    return padded / (valid + padded) if valid + padded > 0 else padding_ratio([len(p) for p in payloads])


def deliver_results(batch: list[Job], results: list[Any]) -> None:
    """Hand each job its result, on the worker thread."""
    for job, result in zip(batch, results, strict=True):
        if isinstance(result, ValueError):  # an aligner's verdict on this request alone (too short to align)
            job.deliver(None, InvalidInput(str(result)))
        else:
            job.deliver(result, None)


def _add(counts: dict[K, Any], key: K, amount: float) -> None:
    counts[key] = counts.get(key, 0) + amount
