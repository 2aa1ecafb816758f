"""A tenant's own limits (`tts-api keys limit-tenant`, `PUT /v1/admin/tenants/{tenant}`): streams at once,
requests and characters per minute, audio seconds per day, held over all the tenant's keys together, by every
worker and replica (app/service/leases.py counts them like a key's, under `tenant/<name>`). A request must pass
both its key's limits and its tenant's. Read again with the keys every 2 s (app/service/keys.py `KeyRefresher`):
a change holds everywhere within 5 s, no restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.service.keys import LIMIT_FIELDS, check_limits, check_tenant, utc_now
from app.service.principal import Quota
from app.service.tables import tenant_limits_table


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """One tenant's limits as stored (0: no limit)."""

    tenant: str
    max_streams: int = 0
    requests_per_minute: int = 0
    chars_per_minute: int = 0
    audio_seconds_per_day: int = 0
    updated_at: str = ""

    def quota(self) -> Quota:
        return Quota(**{f: getattr(self, f) for f in LIMIT_FIELDS})

    def public(self) -> dict:
        return asdict(self)


class TenantLimitStore:
    """The tenant limits table of the store at `engine` (sync: the CLI calls it directly, the service in
    threads)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def set(self, tenant: str, **limits: int) -> TenantLimits:
        """The tenant's limits from now on, every one of them: a limit left out is none (0); all 0 removes the
        tenant's row."""
        check_tenant(tenant)
        check_limits(limits)
        record = TenantLimits(tenant, **{f: limits.get(f, 0) for f in LIMIT_FIELDS}, updated_at=utc_now())
        t = tenant_limits_table
        with self.engine.begin() as conn:
            if not any(limits.values()):
                conn.execute(t.delete().where(t.c.tenant == tenant))
                return record
            insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(t)
            values = asdict(record)
            conn.execute(insert.values(**values).on_conflict_do_update(index_elements=["tenant"], set_=values))
        return record

    def list(self) -> list[TenantLimits]:
        """Every tenant with a limit, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(tenant_limits_table.select().order_by(tenant_limits_table.c.tenant))
            return [TenantLimits(**r._mapping) for r in rows]

    def quotas(self) -> dict[str, Quota]:
        """What the authenticator gives each tenant's principals (`KeyRefresher`)."""
        return {r.tenant: r.quota() for r in self.list()}
