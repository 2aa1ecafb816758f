"""Usage metering: every request (an HTTP request, a WebSocket context) is recorded when it ends, cancelled and
cut ones too, with the characters it was given and the audio it delivered (what its consumer took), per tenant,
key, voice, endpoint and UTC hour; `GET /v1/usage` reads it back. Also the Prometheus counters per tenant, and
the day's audio seconds of a key or tenant with such a limit (app/service/leases.py).

`record` is called once, when a segment stream ends (its `UsageObserver`), on the event loop: it counts the metrics at once and writes
the row in a worker thread (an upsert that adds to the hour's row), never delaying the request's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.observability.metrics import ServiceMetrics
from app.service.leases import DAY, LimitStore, subjects_of
from app.service.principal import CALLER, DEFAULT_TENANT, Principal
from app.service.segment_policy import StreamObserver
from app.service.tables import usage_table

if TYPE_CHECKING:
    from app.service.segments import SegmentStream

logger = logging.getLogger(__name__)

MAX_TENANT_LABELS = 100  # tenants named in the Prometheus counters; the rest are "other" (bounded series)
GROUPS = ("tenant", "key_id", "voice", "endpoint", "hour")


@dataclass(frozen=True, slots=True)
class UsageRow:
    tenant: str
    key_id: str
    voice: str
    endpoint: str
    hour: str  # UTC, 2026-12-07T14
    requests: int
    characters: int
    audio_ms: int


def utc_hour(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H")


def delivered_ms(samples: int, sample_rate: int, speed: float) -> int:
    """The delivered audio's length in milliseconds: codec samples at `sample_rate`, played at `speed`."""
    return round(samples * 1000 / sample_rate / speed)


class UsageRecorder:
    """Records each ended stream's usage into the store (`engine`) and the per-tenant counters."""

    def __init__(
        self,
        engine: sa.Engine,
        metrics: ServiceMetrics,
        limits: LimitStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.limits = limits
        self.clock = clock
        self._labels: set[str] = set()
        self._writes: set[asyncio.Task] = set()

    def record(self, stream: SegmentStream, *, websocket: bool = False) -> None:
        """The stream's usage, as its caller (`CALLER`) ran it (`websocket`: a WebSocket context); never raises."""
        try:
            caller = CALLER.get()
            u = stream.usage
            row = UsageRow(
                tenant=caller.tenant if caller is not None else DEFAULT_TENANT,
                key_id=caller.key_id if caller is not None else "",
                voice=str(stream.voice)[:64], endpoint="websocket" if websocket else stream.endpoint,
                hour=utc_hour(self.clock()), requests=1,
                characters=u.input_chars,
                audio_ms=delivered_ms(u.delivered_samples, u.sample_rate, stream.output.speed),
            )  # fmt: skip
            self._count(row)
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._write, row, caller))
            self._writes.add(task)
            task.add_done_callback(self._written)
        except Exception:
            logger.exception("usage not recorded")

    def _count(self, row: UsageRow) -> None:
        label = row.tenant
        if label not in self._labels:
            if len(self._labels) >= MAX_TENANT_LABELS:
                label = "other"
            else:
                self._labels.add(label)
        self.metrics.tenant_requests.labels(label).inc()
        self.metrics.tenant_characters.labels(label).inc(row.characters)
        self.metrics.tenant_audio_seconds.labels(label).inc(row.audio_ms / 1000)

    def _write(self, row: UsageRow, caller: Principal | None) -> None:
        add_row(self.engine, row)
        if self.limits is not None and row.audio_ms:  # the day's audio of a key or tenant with such a limit
            for subject in subjects_of(caller):
                if subject.limits.get("audio"):
                    self.limits.add(f"audio:{subject.id}", DAY, row.audio_ms / 1000)

    def _written(self, task: asyncio.Task) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("usage not written: %s", task.exception())

    async def flush(self) -> None:
        """Every write begun so far, done (the end of the service; tests)."""
        await asyncio.gather(*list(self._writes), return_exceptions=True)


def add_row(engine: sa.Engine, row: UsageRow) -> None:
    """`row`'s counts added to its (tenant, key, voice, endpoint, hour) row, made if missing: one statement."""
    insert = (pg_insert if engine.dialect.name == "postgresql" else sqlite_insert)(usage_table)
    more = {n: getattr(usage_table.c, n) + getattr(insert.excluded, n) for n in ("requests", "characters", "audio_ms")}
    with engine.begin() as conn:
        conn.execute(
            insert.values(**{f: getattr(row, f) for f in UsageRow.__slots__}).on_conflict_do_update(
                index_elements=list(GROUPS), set_=more
            )
        )


def read_usage(
    engine: sa.Engine, *, tenant: str | None, start: str | None, end: str | None, group_by: tuple[str, ...]
) -> list[dict]:
    """Summed usage, of `tenant` (None: every tenant), for hours in [start, end) (UTC, `2026-12-07T14` or any
    prefix of one), grouped by `group_by` (a subset of GROUPS), sorted by them."""
    t = usage_table.c
    columns = [getattr(t, g) for g in group_by]
    sums = [sa.func.sum(getattr(t, n)).label(n) for n in ("requests", "characters", "audio_ms")]
    query = sa.select(*columns, *sums).group_by(*columns).order_by(*columns)
    if tenant is not None:
        query = query.where(t.tenant == tenant)
    if start:
        query = query.where(t.hour >= start)
    if end:
        query = query.where(t.hour < end)
    with engine.connect() as conn:
        return [
            {
                **{g: r._mapping[g] for g in group_by},
                **{n: int(r._mapping[n] or 0) for n in ("requests", "characters", "audio_ms")},
            }
            for r in conn.execute(query)
        ]


class UsageObserver(StreamObserver):
    """Records a stream's usage when it ends, whichever way (completed, cancelled, cut, failed)."""

    def __init__(self, recorder: UsageRecorder, *, websocket: bool = False) -> None:
        self.recorder = recorder
        self.websocket = websocket

    def ended(self, stream: SegmentStream) -> None:  # type: ignore[override]
        self.recorder.record(stream, websocket=self.websocket)
