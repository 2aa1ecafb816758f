"""The Principal and who makes it (app/api/auth.py `Authenticator`, `KeyGuard`, `caller`), and the parts that ask it:
admission's per-caller share, the open WebSockets per caller, the HTTP context ids by tenant. No server."""

from __future__ import annotations

import dataclasses
import json

import pytest
from starlette.requests import Request

from app.api.auth import MAX_KEY_CHARS, MISSING_ELEVENLABS_KEY, MISSING_HTTP_KEY, Authenticator, KeyGuard, caller
from app.api.session import ClientSockets
from app.errors import AuthenticationError, OverloadedError
from app.service.admission import Admission
from app.service.context import ContextStore
from app.service.keys import key_hash
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
from app.service.speech import context_key
from app.settings import Settings

LIMITS = CallerLimits(requests=2, sockets=3)
PEER = "198.51.100.7"


def principal(client: str | None = PEER, *, requests: int = 0, sockets: int = 0, tenant: str = "t") -> Principal:
    return Principal("key-1", tenant, CallerLimits(requests=requests, sockets=sockets), client)


# -- the authenticator -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "anything", "k1", 7, b"k1"])
def test_without_a_configured_key_every_caller_is_anonymous(key: object) -> None:
    assert Authenticator("", LIMITS).identify(key, PEER) == Principal(
        ANONYMOUS, DEFAULT_TENANT, LIMITS, PEER, admin=True
    )  # open: anyone may do anything, /v1/admin/ included


def test_the_right_key_is_the_configured_keys_principal_named_by_its_id_not_its_value() -> None:
    found = Authenticator("s3cret-key", LIMITS).identify("s3cret-key", PEER)
    assert found == Principal(CONFIGURED_KEY, DEFAULT_TENANT, LIMITS, PEER, admin=True) and found.authenticated
    assert "s3cret" not in repr(found) and "s3cret" not in found.key_id


@pytest.mark.parametrize(
    "key",
    [None, "", "k2", "k1 ", " k1", "K1", "k1" + "x" * MAX_KEY_CHARS, "x" * (MAX_KEY_CHARS + 1), "kéy", "\ud800", b"k1", 1, ["k1"]],
)
def test_a_wrong_overlong_or_non_text_key_is_refused(key: object) -> None:
    found = Authenticator("k1", LIMITS).identify(key, PEER)
    assert not found.authenticated
    assert (found.key_id, found.tenant, found.client) == (UNAUTHENTICATED, "", PEER)


def test_a_tenants_own_limits_go_with_every_principal_of_the_tenant() -> None:
    from app.service.keys import KeyRecord
    from app.service.leases import subjects_of

    records = [KeyRecord(f"key_{t}", t, "", key_hash(f"tts-{t}"), False, max_streams=1) for t in ("a", "b")]
    quotas = {DEFAULT_TENANT: Quota(max_streams=2), "a": Quota(requests_per_minute=5)}
    authenticator = Authenticator("k1", LIMITS)
    authenticator.use_keys(records, quotas)
    configured, a, b = (authenticator.identify(k, PEER) for k in ("k1", "tts-a", "tts-b"))
    assert configured.limits == dataclasses.replace(LIMITS, tenant=Quota(max_streams=2))
    assert a.limits.tenant == Quota(requests_per_minute=5) and a.limits.max_streams == 1
    assert b.limits.tenant == NO_QUOTA  # no limits of its tenant's
    assert [(s.id, s.limits, s.whose) for s in subjects_of(a)] == [
        ("key_a", {"streams": 1}, "key"), ("tenant/a", {"requests": 5}, "tenant")
    ]  # fmt: skip
    assert [s.whose for s in subjects_of(b)] == ["key"] and subjects_of(authenticator.identify("x", PEER)) == []
    authenticator.use_keys(records)  # the limits removed: gone at the next refresh
    assert authenticator.identify("tts-a", PEER).limits.tenant == NO_QUOTA


def test_the_settings_give_the_key_and_each_callers_limits() -> None:
    settings = Settings(_env_file=None, api_key="k1", max_requests_per_client=4, max_sockets_per_client=9)
    authenticator = Authenticator.from_settings(settings.security, settings.limits)
    assert authenticator.identify("k1", None) == Principal(
        CONFIGURED_KEY, DEFAULT_TENANT, CallerLimits(4, 9), None, admin=True
    )
    assert not authenticator.identify("k2", None).authenticated


def test_a_principal_cannot_be_changed() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal().key_id = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        principal().limits.requests = 99  # type: ignore[misc]


# -- KeyGuard and the caller dependency -----------------------------------------------------------------------


async def guarded(path: str, headers: dict[str, str], api_key: str = "k1") -> tuple[list[dict], dict | None]:
    """What the app behind `KeyGuard` saw (its principal and `CALLER`), or the answer KeyGuard sent instead."""
    seen: dict = {}

    async def app(scope: dict, receive: object, send: object) -> None:
        seen.update(principal=scope.get("principal"), caller=CALLER.get())

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": path, "query_string": b"", "client": (PEER, 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    await KeyGuard(app, Authenticator(api_key, LIMITS))(scope, receive, send)
    assert CALLER.get() is None  # reset once the request is served
    return sent, seen or None


async def test_the_key_guard_puts_the_principal_in_the_scope_and_in_caller() -> None:
    sent, seen = await guarded("/v1/models", {"authorization": "Bearer k1"})
    assert not sent and seen is not None
    assert seen["principal"] == Principal(CONFIGURED_KEY, DEFAULT_TENANT, LIMITS, PEER, admin=True) == seen["caller"]
    _, seen = await guarded("/v1/text-to-speech/jenny/with-timestamps", {"xi-api-key": "k1"})
    assert seen is not None and seen["principal"].key_id == CONFIGURED_KEY  # ElevenLabs' header on its routes
    for path in ("/v1/voices", "/v1/voices/jenny", "/v1/models"):  # its voice list; the model list both APIs call
        _, seen = await guarded(path, {"xi-api-key": "k1"})
        assert seen is not None and seen["principal"].key_id == CONFIGURED_KEY, path


@pytest.mark.parametrize(
    ("path", "headers", "message"),
    [
        ("/v1/models", {}, MISSING_HTTP_KEY),
        ("/v1/models", {"authorization": "Bearer k2"}, MISSING_HTTP_KEY),
        ("/v1/audio/voices", {"xi-api-key": "k1"}, MISSING_HTTP_KEY),  # not read outside ElevenLabs' routes
        ("/v1/audio/speech", {"xi-api-key": "k1"}, MISSING_HTTP_KEY),
        ("/v1/text-to-speech/jenny/with-timestamps", {"xi-api-key": "k2"}, MISSING_ELEVENLABS_KEY),
    ],
)
async def test_the_key_guard_refuses_v1_without_the_key_unseen(path: str, headers: dict, message: str) -> None:
    sent, seen = await guarded(path, headers)
    assert seen is None
    assert sent[0]["status"] == 401 and json.loads(sent[1]["body"])["error"]["message"] == message


async def test_the_key_guard_lets_open_paths_through_unauthenticated() -> None:
    _, seen = await guarded("/health", {})
    assert seen is not None and not seen["principal"].authenticated and seen["principal"].client == PEER
    _, seen = await guarded("/v1/models", {}, api_key="")
    assert seen is not None and seen["principal"].key_id == ANONYMOUS


def request_with(principal: object, path: str = "/metrics") -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    if principal is not None:
        scope["principal"] = principal
    return Request(scope)


async def test_the_caller_dependency_returns_the_scopes_principal_or_refuses() -> None:
    known = principal()
    assert await caller(request_with(known)) is known
    refused = Authenticator("k1", LIMITS).identify(None, PEER)
    with pytest.raises(AuthenticationError) as exc:
        await caller(request_with(refused))
    assert exc.value.message == MISSING_HTTP_KEY
    with pytest.raises(AuthenticationError) as exc:
        await caller(request_with(refused, "/v1/text-to-speech/jenny/with-timestamps"))
    assert exc.value.message == MISSING_ELEVENLABS_KEY
    with pytest.raises(RuntimeError, match="KeyGuard"):  # an app without its middleware fails closed
        await caller(request_with(None))


# -- what asks it ------------------------------------------------------------------------------------------------


def admit_as(lane: Admission, who: Principal | None):
    token = CALLER.set(who)
    try:
        return lane.admit()
    finally:
        CALLER.reset(token)


def test_admission_gives_each_caller_the_share_its_principal_carries() -> None:
    lane = Admission(10, "requests", shared=True)
    one, two = principal("10.0.0.1", requests=1), principal("10.0.0.2", requests=2)
    first = admit_as(lane, one)
    with pytest.raises(OverloadedError) as exc:
        admit_as(lane, one)
    assert "limit 1 per client" in exc.value.message
    admit_as(lane, two), admit_as(lane, two)
    with pytest.raises(OverloadedError, match="limit 2 per client"):
        admit_as(lane, two)
    first.release()
    admit_as(lane, one)  # its slot came back
    for who in (None, principal("10.0.0.3", requests=0), principal(None, requests=1)):  # no share
        admit_as(lane, who), admit_as(lane, who)
    assert lane.in_use == 9  # one, two twice, one again, and six without a share


def test_a_lane_without_shares_ignores_the_caller() -> None:
    lane = Admission(3, "uploads")
    one = principal(requests=1)
    admit_as(lane, one), admit_as(lane, one), admit_as(lane, one)
    assert lane.in_use == 3


def test_open_sockets_are_counted_per_caller_up_to_its_principals_limit() -> None:
    sockets = ClientSockets()
    one, other = principal("10.0.0.1", sockets=1), principal("10.0.0.2", sockets=2)
    assert sockets.take(one) and not sockets.take(one)
    assert sockets.take(other) and sockets.take(other) and not sockets.take(other)
    sockets.give_back(one)
    assert sockets.take(one)
    unknown = principal(None, sockets=1)  # no address: counted together, as "-"
    assert sockets.take(unknown) and not sockets.take(principal(None, sockets=1))
    assert all(sockets.take(principal("10.0.0.4", sockets=0)) for _ in range(5))  # 0: no limit


def test_sockets_waiting_for_their_key_are_counted_apart_with_their_own_limit() -> None:
    settings = Settings(_env_file=None, api_key="k1", max_sockets_per_client=2, max_unauthenticated_sockets=1)
    authenticator = Authenticator.from_settings(settings.security, settings.limits)
    waiting, keyed = authenticator.identify(None, PEER), authenticator.identify("k1", PEER)
    assert waiting.limits == CallerLimits(requests=0, sockets=1) and keyed.limits == CallerLimits(0, 2)
    sockets = ClientSockets()
    assert sockets.take(waiting) and not sockets.take(waiting)  # its own small limit
    assert sockets.take(keyed) and sockets.take(keyed) and not sockets.take(keyed)  # untouched by the waiting one
    sockets.give_back(waiting)
    assert sockets.take(authenticator.identify("wrong", PEER))


async def test_http_context_ids_are_kept_apart_per_tenant() -> None:
    store = ContextStore(ttl=10)
    mine, theirs = principal(tenant="a"), principal(tenant="b")
    assert context_key(None, "conv") == context_key(principal(tenant=DEFAULT_TENANT), "conv")
    claim = store.claim(context_key(mine, "conv"))
    store.resolve(context_key(mine, "conv"), claim, None)
    assert len(store) == 1
    assert await store.previous(context_key(theirs, "conv"), timeout=0) is None
    assert context_key(mine, "conv") != context_key(theirs, "conv")
