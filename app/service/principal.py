"""Who is asking: the `Principal` every request and WebSocket is served for, resolved once at the edge.

`app.api.auth.Authenticator` makes it (the one place a key is compared); the HTTP middleware puts it in the
request's `scope["principal"]`, a WebSocket's session holds it, and both set `CALLER` so that the service below
(admission's shares) asks it. Nothing below reads a key header or the configured key.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass

DEFAULT_TENANT = "default"  # one configured API_KEY (or none) is one tenant
ANONYMOUS = "anonymous"  # the key id of every caller when no API_KEY is configured
CONFIGURED_KEY = "api-key"  # the key id of the configured API_KEY
UNAUTHENTICATED = "unauthenticated"  # a key is needed and none valid was presented (yet)


@dataclass(frozen=True, slots=True)
class Quota:
    """A tenant's own limits, held across every worker and replica like a key's (0: no limit); set by an admin
    (`tts-api keys limit-tenant`, `PUT /v1/admin/tenants/{tenant}`) and shared by every key of the tenant."""

    max_streams: int = 0
    requests_per_minute: int = 0
    chars_per_minute: int = 0
    audio_seconds_per_day: int = 0


NO_QUOTA = Quota()


@dataclass(frozen=True, slots=True)
class CallerLimits:
    """What one caller may hold at once (0: no limit): today MAX_REQUESTS_PER_CLIENT and MAX_SOCKETS_PER_CLIENT
    (a socket still waiting for its key: no requests, MAX_UNAUTHENTICATED_SOCKETS)."""

    requests: int  # request slots of the speech lane
    sockets: int  # WebSockets open
    # a key's own limits (`tts-api keys create`), held across every worker and replica (app/service/leases.py)
    max_streams: int = 0  # streams at once
    requests_per_minute: int = 0
    chars_per_minute: int = 0
    audio_seconds_per_day: int = 0
    tenant: Quota = NO_QUOTA  # the caller's tenant's limits, on top of its key's


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: which key vouched for it (a stable, non-secret id, never the key), its tenant, its limits and
    its address (the peer, as the server reports it; None when unknown).

    `authenticated` is False only where a key is needed and none valid came: such a principal may reach nothing
    under `/v1/` (the middleware and the `caller` dependency refuse it) and a WebSocket holding it runs no command
    until a message brings a key (starlette's `UnauthenticatedUser`)."""

    key_id: str
    tenant: str
    limits: CallerLimits
    client: str | None
    authenticated: bool = True
    admin: bool = False  # may manage every tenant's keys and read every tenant's usage (`/v1/admin/`)

    @property
    def share_key(self) -> str | None:
        """Who a per-caller share counts (admission's slots, the open WebSockets): the client address, as before
        keys had ids; None when the address is unknown."""
        return self.client


CALLER: ContextVar[Principal | None] = ContextVar("tts_caller", default=None)
"""The principal of the request or WebSocket being served: set by app/api/auth.py `KeyGuard` per HTTP request and
by app/api/session.py `Session` per WebSocket (tasks a socket starts inherit it); read by a lane with a share per
caller (`admission.py`)."""


def caller_tenant() -> str:
    """The tenant of the caller being served (`CALLER`): the default tenant where none is set (a test, a tool),
    none ("", which owns nothing) for a caller still without a valid key."""
    caller = CALLER.get()
    if caller is None:
        return DEFAULT_TENANT
    return caller.tenant if caller.authenticated else ""


def cache_salt(tenant: str) -> str:
    """vLLM's `cache_salt` for `tenant`'s requests: prefix-cache blocks are shared within a tenant only, so that
    one tenant cannot tell from another's timings which prompts (a cloned voice's reference) are cached. vLLM is
    reached by this service only (its clients never set a salt), so a salt that names the tenant through a hash
    is enough; 32 hex characters, within vLLM's rules."""
    return hashlib.sha256(b"tts-cache-salt\0" + tenant.encode()).hexdigest()[:32]
