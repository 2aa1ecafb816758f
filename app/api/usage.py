"""`GET /v1/usage`: what was used, summed per the groups asked for: a tenant's key sees its tenant's, an admin
key every tenant's (or one's: `tenant`). JSON, or CSV with `format=csv`."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from app.api.auth import caller
from app.api.openapi import error_responses
from app.errors import InvalidRequestError, NotReadyError
from app.service.principal import Principal
from app.service.usage import GROUPS, read_usage

router = APIRouter(prefix="/v1", dependencies=[Depends(caller)])
HOUR_PATTERN = r"^\d{4}(-\d{2}(-\d{2}(T\d{2})?)?)?$"  # an hour, or a day, month or year (their first hour)
HOUR = re.compile(HOUR_PATTERN)
GROUP_PATTERN = rf"^({'|'.join(GROUPS)})(,({'|'.join(GROUPS)}))*$"
COUNTS = ("requests", "characters", "audio_ms")


def _hour(value: str | None, param: str) -> str | None:
    if value is not None and not HOUR.match(value):
        raise InvalidRequestError(f"{param} must be a UTC hour like 2026-12-07T14 (or a day, month, year)", param=param)
    return value


def _groups(value: str) -> tuple[str, ...]:
    groups = tuple(dict.fromkeys(g.strip() for g in value.split(",") if g.strip()))  # each once, in order
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise InvalidRequestError(f"group_by: a comma-separated subset of {', '.join(GROUPS)}", param="group_by")
    return groups


@router.get(
    "/usage",
    operation_id="get_usage",
    responses={
        200: {
            "description": "The usage, summed per `group_by`: JSON, or CSV with `format=csv`",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
        **error_responses(400, 503),
    },
)
async def usage(
    request: Request,
    principal: Principal = Depends(caller),
    start: str | None = Query(None, pattern=HOUR_PATTERN, description="First UTC hour included, e.g. 2026-12-07T00"),
    end: str | None = Query(None, pattern=HOUR_PATTERN, description="First UTC hour excluded"),
    group_by: str = Query("tenant,hour", pattern=GROUP_PATTERN, description=f"Comma-separated: {', '.join(GROUPS)}"),
    tenant: str | None = Query(None, description="Admin keys: one tenant's usage only"),
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Requests, characters billed and audio delivered (milliseconds), per the groups of `group_by`."""
    store = request.app.state.voice_store
    if store is None:
        raise NotReadyError("the store is not open yet")
    if not principal.admin:
        tenant = principal.tenant  # a client key: its tenant's usage only, whatever it asks
    groups = _groups(group_by)
    rows = await asyncio.to_thread(
        read_usage, store.engine, tenant=tenant, start=_hour(start, "start"), end=_hour(end, "end"), group_by=groups
    )
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*groups, *COUNTS], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv")
    return JSONResponse({"object": "list", "group_by": list(groups), "data": rows})
