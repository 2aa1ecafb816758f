"""`/v1/admin/`: the API keys of every tenant and the tenants' own limits, for admin keys only (`API_KEY`, or one
made with `--admin`): the same operations as `tts-api keys`. A change holds in this process at once, in every other within 5 s."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.auth import caller
from app.api.openapi import error_responses
from app.errors import NotReadyError, PermissionDeniedError
from app.service.keys import TENANT_PATTERN, KeyRefresher, KeyStore
from app.service.principal import Principal
from app.service.tenant_limits import TenantLimitStore


async def admin_caller(principal: Principal = Depends(caller)) -> Principal:
    """`caller`, when its key is an admin key; else 403."""
    if not principal.admin:
        raise PermissionDeniedError("this route needs an admin key (API_KEY, or `tts-api keys create --admin`)")
    return principal


router = APIRouter(prefix="/v1/admin", dependencies=[Depends(admin_caller)], tags=["admin"])


class LimitFields(BaseModel):
    """A key's or a tenant's limits, each optional (0: no limit)."""

    model_config = ConfigDict(extra="forbid")

    max_streams: int = Field(0, ge=0, le=2**31 - 1, strict=True)  # each: 0 is no limit
    requests_per_minute: int = Field(0, ge=0, le=2**31 - 1, strict=True)
    chars_per_minute: int = Field(0, ge=0, le=2**31 - 1, strict=True)
    audio_seconds_per_day: int = Field(0, ge=0, le=2**31 - 1, strict=True)

    @field_validator("max_streams", "requests_per_minute", "chars_per_minute", "audio_seconds_per_day", mode="before")
    @classmethod
    def _json_integer(cls, v: Any) -> Any:
        """JSON Schema's integer: `3` and `3.0`, never `true` or `"3"` (as app/service/requests.py reads them)."""
        return int(v) if isinstance(v, float) and v.is_integer() else v


TENANT_SCHEMA = f"^{TENANT_PATTERN.pattern}$"  # what the store takes, said in the OpenAPI document


class NewKeyRequest(LimitFields):
    tenant: str = Field(pattern=TENANT_SCHEMA)
    name: str = Field("", max_length=128)
    admin: bool = Field(False, strict=True)


def key_store(request: Request) -> KeyStore:
    store = request.app.state.voice_store
    if store is None:
        raise NotReadyError("the store is not open yet")
    return KeyStore(store.engine)


async def _changed(request: Request) -> None:
    """This process takes the change now, not at its next refresh."""
    refresher: KeyRefresher | None = getattr(request.app.state, "key_refresher", None)
    if refresher is not None:
        await refresher.load()


@router.get("/keys", operation_id="list_keys", responses=error_responses(403, 503))
async def list_keys(store: KeyStore = Depends(key_store), tenant: str | None = None) -> dict:
    """Every key (revoked ones too) of every tenant, or of `tenant`; never a secret."""
    return {"data": [r.public() for r in await asyncio.to_thread(store.list, tenant)]}


@router.post(
    "/keys",
    status_code=201,
    operation_id="create_key",
    responses={
        201: {
            "description": "The new key, its secret (`key`) shown this once",
            "links": {
                op: {"operationId": op, "parameters": {"key_id": "$response.body#/id"}}
                for op in ("revoke_key", "rotate_key")
            },
        },
        **error_responses(400, 403, 503),
    },
)
async def create_key(body: NewKeyRequest, request: Request, store: KeyStore = Depends(key_store)) -> JSONResponse:
    """A new key; its secret (`key`) is in this answer only."""
    limits = body.model_dump(exclude={"tenant", "name", "admin"})
    new = await asyncio.to_thread(lambda: store.create(body.tenant, body.name, admin=body.admin, **limits))
    await _changed(request)
    return JSONResponse(new.shown(), status_code=201)


@router.delete("/keys/{key_id}", operation_id="revoke_key", responses=error_responses(403, 404, 503))
async def revoke_key(key_id: str, request: Request, store: KeyStore = Depends(key_store)) -> dict:
    """Revoke the key: refused here at once, by every process within 5 s."""
    record = await asyncio.to_thread(store.revoke, key_id)
    await _changed(request)
    return record.public()


@router.post(
    "/keys/{key_id}/rotate",
    status_code=201,
    operation_id="rotate_key",
    responses=error_responses(403, 404, 409, 503),
)
async def rotate_key(key_id: str, request: Request, store: KeyStore = Depends(key_store)) -> JSONResponse:
    """A new secret (and id) with the key's tenant, name and limits; the old key revoked."""
    new = await asyncio.to_thread(store.rotate, key_id)
    await _changed(request)
    return JSONResponse(new.shown(), status_code=201)


def tenant_store(request: Request) -> TenantLimitStore:
    return TenantLimitStore(key_store(request).engine)


@router.get("/tenants", operation_id="list_tenant_limits", responses=error_responses(403, 503))
async def list_tenant_limits(store: TenantLimitStore = Depends(tenant_store)) -> dict:
    """Every tenant with limits of its own (over all its keys)."""
    return {"data": [r.public() for r in await asyncio.to_thread(store.list)]}


@router.put("/tenants/{tenant}", operation_id="set_tenant_limits", responses=error_responses(400, 403, 503))
async def set_tenant_limits(
    body: LimitFields,
    request: Request,
    tenant: str = Path(pattern=TENANT_SCHEMA),
    store: TenantLimitStore = Depends(tenant_store),
) -> dict:
    """The tenant's own limits from now on (a limit left out: none), held over all its keys together, here at
    once and by every process within 5 s."""
    record = await asyncio.to_thread(lambda: store.set(tenant, **body.model_dump()))
    await _changed(request)
    return record.public()
