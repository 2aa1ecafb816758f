"""A tenant's own limits (issue 34, item 3: "per key or tenant"): held over all its keys together, on top of each
key's, by every process sharing the store; set by an admin (`tts-api keys limit-tenant`, `PUT
/v1/admin/tenants/{tenant}`) and taken by a running service without a restart. On a real SQLite file and the
real PostgreSQL server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.service import migrations
from app.service.leases import DAY, MINUTE, LimitStore, Refusal, Subject, tenant_subject
from app.service.voice_store import open_engine
from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.tenants.test_keys import keys_cli
from tests.tenants.test_limits import BODY, Clock
from tests.voices.test_saved_voices import parts
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

TENANT = tenant_subject("brand-a")


@pytest.fixture
def limit_store(store_url: str):
    engine = open_engine(store_url)
    migrations.upgrade(engine)
    clock = Clock(1_800_000_000.0 - 1_800_000_000.0 % DAY)
    yield LimitStore(engine, clock), clock
    engine.dispose()


def test_a_tenants_streams_are_shared_by_its_keys_and_a_refusal_takes_nothing(limit_store) -> None:
    store, _ = limit_store
    subjects = lambda key: [Subject(key, {"streams": 2}), Subject(TENANT, {"streams": 3}, "tenant")]  # noqa: E731
    taken = [store.admit_all(subjects("k1"), 0, 30) for _ in range(2)] + [store.admit_all(subjects("k2"), 0, 30)]
    assert all(isinstance(t, tuple) and len(t) == 2 for t in taken)  # a lease of the key's, one of the tenant's
    assert isinstance(refused := store.admit_all(subjects("k1"), 0, 30), Refusal) and refused.whose == "key"
    refused = store.admit_all(subjects("k2"), 0, 30)  # k2 has room, its tenant none
    assert isinstance(refused, Refusal) and (refused.whose, refused.what, refused.limit) == ("tenant", "streams", 3)
    assert "this tenant's limit of 3 streams at once" in refused.error().message
    assert store.held("streams:k2") == 1  # the key's lease of the refused admission was rolled back
    assert store.held(f"streams:{TENANT}") == 3
    store.drop(taken[0][1])  # one of the tenant's given back: k2 may start one
    assert isinstance(store.admit_all(subjects("k2"), 0, 30), tuple)


def test_a_tenants_requests_and_characters_per_minute_count_every_key(limit_store) -> None:
    store, clock = limit_store
    tenant = Subject(TENANT, {"requests": 3, "chars": 100}, "tenant")
    for key in ("k1", "k2", "k3"):
        assert store.admit_all([Subject(key, {"requests": 10}), tenant], 30, 0) == ()
    refused = store.admit_all([Subject("k4", {"requests": 10}), tenant], 1, 0)
    assert isinstance(refused, Refusal) and (refused.whose, refused.what) == ("tenant", "requests")
    clock.now += 2 * MINUTE
    assert store.admit_all([tenant], 100, 0) == ()
    refused = store.admit_all([Subject("k1", {"chars": 1000}), tenant], 1, 0)
    assert isinstance(refused, Refusal) and (refused.whose, refused.what) == ("tenant", "tokens")
    assert store.admit_all([Subject("k1", {"chars": 1000})], 1, 0) == ()  # the key alone: its own limit


async def test_an_admin_sets_a_tenants_limits_that_hold_over_its_keys_at_once(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        a1, a2, b = new_key(url, "brand-a"), new_key(url, "brand-a"), new_key(url, "brand-b")
        put = httpx.put(f"{url}/v1/admin/tenants/brand-a", json={"requests_per_minute": 3}, headers=bearer(ADMIN))
        assert put.status_code == 200 and put.json()["requests_per_minute"] == 3, put.text
        statuses = [httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(k["key"]), timeout=30).status_code
                    for k in (a1, a2, a1, a2)]  # fmt: skip
        assert statuses == [200, 200, 200, 429]
        refused = httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(a1["key"]), timeout=30)
        assert refused.status_code == 429 and "this tenant's limit of 3 requests per minute" in refused.text
        assert refused.headers["x-ratelimit-limit-requests"] == "3" and int(refused.headers["retry-after"]) >= 1
        other = httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(b["key"]), timeout=30)
        assert other.status_code == 200  # another tenant: none of brand-a's limits
        listed = httpx.get(f"{url}/v1/admin/tenants", headers=bearer(ADMIN)).json()["data"]
        assert [(r["tenant"], r["requests_per_minute"]) for r in listed] == [("brand-a", 3)]
        assert httpx.put(f"{url}/v1/admin/tenants/brand-a", json={}, headers=bearer(ADMIN)).status_code == 200
        again = httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(a1["key"]), timeout=30)
        assert again.status_code == 200  # every limit left out: none
        assert httpx.get(f"{url}/v1/admin/tenants", headers=bearer(ADMIN)).json()["data"] == []


@pytest.mark.parametrize(
    ("tenant", "body", "status"),
    [("brand-a", {"max_streams": -1}, 400), ("brand-a", {"max_streams": "3"}, 400), ("brand-a", {"nope": 1}, 400),
     ("bad name!", {"max_streams": 1}, 400)],  # fmt: skip
)
def test_bad_tenant_limits_are_400s_and_only_admins_set_them(
    settings_for: Callable[..., Settings], tmp_path: Path, tenant: str, body: dict, status: int
) -> None:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        resp = httpx.put(f"{url}/v1/admin/tenants/{tenant}", json=body, headers=bearer(ADMIN))
        assert resp.status_code == status and set(resp.json()["error"]) == {"message", "type", "param", "code"}
        client = new_key(url, "brand-a")["key"]
        assert httpx.put(f"{url}/v1/admin/tenants/brand-a", json={}, headers=bearer(client)).status_code == 403
        assert httpx.get(f"{url}/v1/admin/tenants", headers=bearer(client)).status_code == 403


def test_the_cli_sets_a_tenants_limits_that_a_running_service_takes_within_5_s(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env_file = tmp_path / "tts.env"
    env_file.write_text(f"VOICE_STORE_URL={store}\n")
    with serve(settings_for(voice_store_url=store, api_key=ADMIN), parts()) as url:
        key = new_key(url, "acme")["key"]
        made = keys_cli(env_file, "limit-tenant", "acme", "--requests-per-minute", "1", "--json")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout) | {"updated_at": ""} == {
            "tenant": "acme", "max_streams": 0, "requests_per_minute": 1, "chars_per_minute": 0,
            "audio_seconds_per_day": 0, "updated_at": "",
        }  # fmt: skip
        listed = keys_cli(env_file, "tenants", "--json")
        assert [r["tenant"] for r in json.loads(listed.stdout)] == ["acme"]
        statuses = []
        for _ in range(30):  # taken at the service's next refresh (every 2 s)
            statuses.append(httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(key), timeout=30).status_code)
            if statuses[-1] == 429:
                break
            time.sleep(0.5)
        assert statuses[-1] == 429 and len(statuses) <= 12, statuses
        bad = keys_cli(env_file, "limit-tenant", "bad name!", "--max-streams", "1")
        assert bad.returncode == 1 and "invalid tenant" in bad.stderr


def test_a_tenants_audio_seconds_per_day_are_filled_by_its_keys_usage(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        a1, a2 = new_key(url, "brand-a")["key"], new_key(url, "brand-a")["key"]
        put = httpx.put(f"{url}/v1/admin/tenants/brand-a", json={"audio_seconds_per_day": 2}, headers=bearer(ADMIN))
        assert put.status_code == 200
        first = httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(a1), timeout=30)
        assert first.status_code == 200 and len(first.content) / 48_000 > 2  # more than the day's 2 s, delivered
        deadline = time.monotonic() + 10  # the usage row (and the day's counter) written after the request
        while (resp := httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(a2), timeout=30)).status_code == 200:
            assert time.monotonic() < deadline, "the tenant's day was not counted"
            time.sleep(0.1)
        assert resp.status_code == 429 and "this tenant's limit of 2 audio seconds per day" in resp.text
        assert resp.headers["x-ratelimit-limit-audio-seconds"] == "2"
        other = new_key(url, "brand-b")["key"]
        assert httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(other), timeout=30).status_code == 200
