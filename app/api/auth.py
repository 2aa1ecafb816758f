"""The API key: where clients send it (HTTP headers, WebSocket headers, WebSocket messages), and who it says
the caller is: `Authenticator` turns a presented key into an `app.service.principal.Principal`, the one place
a key is compared.

On HTTP the principal is resolved by `KeyGuard`, an ASGI middleware, before a route runs and so before its body
is read (FastAPI parses a JSON body before the route's dependencies run); it refuses `/v1/` without a valid key
and puts the principal in `scope["principal"]`, where routes get it through the `caller` dependency. WebSockets
resolve it at the handshake (app/api/session.py) or, for a key sent in a message, within `STREAM_AUTH_TIMEOUT`
seconds of the accept.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response
from app.errors import AuthenticationError
from app.service.keys import KEY_PREFIX, KeyRecord, key_hash
from app.service.principal import (
    ANONYMOUS,
    CALLER,
    CONFIGURED_KEY,
    DEFAULT_TENANT,
    NO_QUOTA,
    UNAUTHENTICATED,
    CallerLimits,
    Principal,
    Quota,
)
from app.settings import LimitsSettings, SecuritySettings

MAX_KEY_CHARS = 1024  # a longer key is wrong without being compared
ELEVENLABS_PREFIXES = ("/v1/text-to-speech/", "/v1/voices", "/v1/pronunciation-dictionaries")  # ElevenLabs' routes: its clients send `xi-api-key`
SHARED_PATHS = ("/v1/models",)  # both APIs' clients call it: either header
MISSING_HTTP_KEY = "missing or invalid API key: send 'Authorization: Bearer <key>'"
MISSING_ELEVENLABS_KEY = "missing or invalid API key: send the xi-api-key header"


def bearer(value: object) -> str | None:
    """The key in `Bearer <key>`; None for another scheme, no key, or a value that is not text."""
    if not isinstance(value, str):
        return None
    scheme, _, key = value.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def header_key(headers: Mapping[str, str], *names: str) -> str | None:
    """The key in `Authorization: Bearer <key>`, else in the first present header of `names` (e.g. xi-api-key)."""
    key = bearer(headers.get("authorization"))
    if key is not None:
        return key
    for name in names:
        if headers.get(name):
            return headers[name].strip()
    return None


def message_key(message: Mapping[str, object], *names: str) -> str | None:
    """The key a WebSocket message carries: a text field of `names` (e.g. xi_api_key), else
    `"authorization": "Bearer <key>"`."""
    for name in names:
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return bearer(message.get("authorization"))


def key_ok(expected: str, given: object) -> bool:
    """True when no key is configured (`expected` empty) or `given` is it; compared in constant time.
    Never raises: any text (non-ASCII, lone surrogates, a megabyte) or non-text is simply not the key."""
    if not expected:
        return True
    if not isinstance(given, str) or not given or len(given) > MAX_KEY_CHARS:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def missing_key_message(path: str) -> str:
    """The 401's message: where the routes under `path` read the key."""
    return MISSING_ELEVENLABS_KEY if path.startswith(ELEVENLABS_PREFIXES) else MISSING_HTTP_KEY


class Authenticator:
    """Who presented a key: the configured `API_KEY` is an admin key of the default tenant, with the limits of the
    settings; the keys of the store (`tts-api keys`, app/service/keys.py) are their tenants', with their own
    limits too. No `API_KEY` and no key in the store: everyone is `anonymous` of the default tenant (open, as
    before keys). Everything else asks the `Principal` it returns.

    The store's keys come through `use_keys` (app/service/keys.py `KeyRefresher`, every 2 s), kept by hash: a
    presented key is hashed and looked up, then its hash compared in constant time. Until they first come (the
    store still opening), only `API_KEY` is known.

    `waiting`: the limits of an unauthenticated principal, a WebSocket still waiting for its key (its sockets
    are counted apart from any key's, so that sockets that never authenticate cannot take a keyed client's share;
    its requests are none: it runs nothing)."""

    def __init__(
        self,
        api_key: str,
        limits: CallerLimits,
        tenant: str = DEFAULT_TENANT,
        *,
        waiting: CallerLimits = CallerLimits(requests=0, sockets=0),  # frozen: one default shared safely
    ) -> None:
        self._api_key = api_key  # empty: no key asked
        self.limits = limits
        self.tenant = tenant
        self.waiting = waiting
        self._keys: dict[str, KeyRecord] = {}  # the store's active keys, by hash
        self._quotas: dict[str, Quota] = {}  # the tenants' own limits, by tenant (those that have any)

    def use_keys(self, records: list[KeyRecord], quotas: dict[str, Quota] | None = None) -> None:
        """The store's active keys from now on (the ones not among them are refused from now on), and the
        tenants' own limits (app/service/tenant_limits.py), which every principal of the tenant carries."""
        self._keys = {r.key_hash: r for r in records}
        self._quotas = dict(quotas or {})

    @classmethod
    def from_settings(cls, security: SecuritySettings, limits: LimitsSettings) -> Authenticator:
        return cls(
            security.api_key,
            CallerLimits(requests=limits.max_requests_per_client, sockets=limits.max_sockets_per_client),
            waiting=CallerLimits(requests=0, sockets=limits.max_unauthenticated_sockets),
        )

    def identify(self, key: object, client: str | None) -> Principal:
        """The caller presenting `key` (None: no key) from `client`: `anonymous` when no key is configured, the
        configured key's principal when `key` is it, else an unauthenticated principal. Never raises."""
        keys, quotas = self._keys, self._quotas
        if not self._api_key and not keys:  # open: anyone is everything
            return Principal(ANONYMOUS, self.tenant, self._limits(quotas), client, admin=True)
        if self._api_key and key_ok(self._api_key, key):
            return Principal(CONFIGURED_KEY, self.tenant, self._limits(quotas), client, admin=True)
        record = self._stored(keys, key)
        if record is not None:
            limits = record.limits(self.limits, quotas.get(record.tenant, NO_QUOTA))
            return Principal(record.id, record.tenant, limits, client, admin=record.admin)
        return Principal(UNAUTHENTICATED, "", self.waiting, client, authenticated=False)

    def _limits(self, quotas: dict[str, Quota]) -> CallerLimits:
        """The settings' shares, with the default tenant's own limits where it has any."""
        quota = quotas.get(self.tenant)
        return self.limits if quota is None else replace(self.limits, tenant=quota)

    @staticmethod
    def _stored(keys: dict[str, KeyRecord], key: object) -> KeyRecord | None:
        """The store's key `key` is, or None: looked up by its hash, then the hash compared in constant time."""
        if not keys or not isinstance(key, str) or not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_CHARS:
            return None
        digest = key_hash(key)
        record = keys.get(digest)
        if record is None or not hmac.compare_digest(record.key_hash.encode(), digest.encode()):
            return None
        return record


class KeyGuard:
    """Resolves the `Principal` of every HTTP request (`scope["principal"]`, and `CALLER` while it is served) and
    answers 401 to a request under `/v1/` without a valid key before the app sees it: its body is never read.
    (The docs and `/metrics`, bodiless GETs, ask `caller` through their dependencies.)"""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        principal = self.authenticator.identify(self._presented(scope), peer[0] if peer else None)
        if not principal.authenticated and (scope["path"] + "/").startswith("/v1/"):
            await error_response(AuthenticationError(missing_key_message(scope["path"])))(scope, receive, send)
            return
        scope["principal"] = principal
        token = CALLER.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            CALLER.reset(token)

    @staticmethod
    def _presented(scope: Scope) -> str | None:
        """`Authorization: Bearer`, or ElevenLabs' own `xi-api-key` header on its routes (`/v1/text-to-speech/`,
        `/v1/voices`) and on the model list both APIs' clients call."""
        headers = Headers(scope=scope)
        if scope["path"].startswith(ELEVENLABS_PREFIXES) or scope["path"] in SHARED_PATHS:
            return header_key(headers, "xi-api-key")
        return bearer(headers.get("authorization"))


async def caller(request: Request) -> Principal:
    """The dependency every protected route has: the request's principal, as `KeyGuard` resolved it; 401 when
    it is unauthenticated (the docs and `/metrics`, which `KeyGuard` lets through)."""
    principal = request.scope.get("principal")
    if not isinstance(principal, Principal):
        raise RuntimeError("no principal in the request's scope: the app lacks its KeyGuard middleware")
    if not principal.authenticated:
        raise AuthenticationError(missing_key_message(request.scope["path"]))
    return principal


def caller_if(setting: str) -> Callable[[Request], Awaitable[Principal | None]]:
    """`caller`, when the boolean security setting `setting` (e.g. `metrics_need_key`) is true."""

    async def check(request: Request) -> Principal | None:
        if getattr(request.app.state.settings.security, setting):
            return await caller(request)
        return None

    return check
