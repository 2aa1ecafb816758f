"""Keys in the store (issue 34, item 1): made, listed, revoked and rotated through `tts-api keys` (a real process)
and `/v1/admin/keys`, stored hashed, taken by a running service within 5 s without a restart; `API_KEY` is an
admin key of the default tenant; a server with no key at all stays open."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.service.voice_store import open_engine
from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.voices.test_saved_voices import parts
from tools.harness import serve

REPO = Path(__file__).resolve().parents[2]


def keys_cli(env_file: Path, *argv: str) -> subprocess.CompletedProcess:
    """`tts-api keys ...` as an operator runs it: its own process, the service's settings file."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "--env-file", str(env_file), *argv],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def status_within(url: str, key: str, status: int, seconds: float) -> float:
    """How long until `GET /v1/audio/voices` with `key` answers `status` (fails after `seconds`)."""
    start = time.monotonic()
    while True:
        got = httpx.get(f"{url}/v1/audio/voices", headers=bearer(key), timeout=10).status_code
        if got == status:
            return time.monotonic() - start
        assert time.monotonic() - start < seconds, f"still {got} after {seconds} s"
        time.sleep(0.1)


def test_the_cli_makes_lists_rotates_and_revokes_keys_that_a_running_service_takes_within_5_s(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env_file = tmp_path / "tts.env"
    env_file.write_text(f"VOICE_STORE_URL={store}\n")
    with serve(settings_for(voice_store_url=store, api_key=ADMIN), parts()) as url:
        made = keys_cli(env_file, "create", "--tenant", "acme", "--name", "bot-1", "--max-streams", "3", "--json")
        assert made.returncode == 0, made.stderr
        shown = json.loads(made.stdout)
        key, key_id = shown["key"], shown["id"]
        assert shown["tenant"] == "acme" and shown["max_streams"] == 3 and key.startswith("tts-")
        assert status_within(url, key, 200, 5) < 5  # no restart

        listed = keys_cli(env_file, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [record] = json.loads(listed.stdout)
        assert record["id"] == key_id and record["name"] == "bot-1" and record["revoked_at"] is None
        assert key not in listed.stdout and "key_hash" not in record  # the secret was shown once, never again

        engine = open_engine(store)  # stored hashed: the secret is nowhere in the table
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM tts_api_keys"))]
        engine.dispose()
        assert key not in repr(rows) and hashlib.sha256(key.encode()).hexdigest() in repr(rows)

        rotated = keys_cli(env_file, "rotate", key_id, "--json")
        assert rotated.returncode == 0, rotated.stderr
        new = json.loads(rotated.stdout)
        assert new["tenant"] == "acme" and new["max_streams"] == 3 and new["key"] != key
        assert status_within(url, new["key"], 200, 5) < 5
        assert status_within(url, key, 401, 5) < 5  # the old secret is revoked by the rotation

        revoked = keys_cli(env_file, "revoke", new["id"])
        assert revoked.returncode == 0 and new["id"] in revoked.stdout, revoked.stderr
        assert status_within(url, new["key"], 401, 5) < 5
        missing = keys_cli(env_file, "revoke", "key_nope")
        assert missing.returncode == 1 and "no API key" in missing.stderr


def test_admin_routes_are_for_admin_keys_and_api_key_is_one(settings_for: Callable[..., Settings], tmp_path: Path):
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        client = new_key(url, "acme")
        assert client["admin"] is False
        for method, path in (("GET", "keys"), ("POST", "keys"), ("DELETE", f"keys/{client['id']}"),
                             ("POST", f"keys/{client['id']}/rotate")):  # fmt: skip
            resp = httpx.request(method, f"{url}/v1/admin/{path}", headers=bearer(client["key"]), json={"tenant": "x"})
            assert resp.status_code == 403, resp.text
            assert resp.json()["error"]["code"] == "permission_denied"
            assert httpx.request(method, f"{url}/v1/admin/{path}", json={"tenant": "x"}).status_code == 401
        other_admin = new_key(url, "ops", admin=True)
        made_by_other = new_key(url, "beta", admin_key=other_admin["key"], requests_per_minute=60)
        listed = httpx.get(f"{url}/v1/admin/keys", headers=bearer(other_admin["key"])).json()["data"]
        assert sorted(k["tenant"] for k in listed) == ["acme", "beta", "ops"]  # every tenant's
        [beta] = [k for k in listed if k["tenant"] == "beta"]
        assert beta["requests_per_minute"] == 60 and all("key" not in k and "key_hash" not in k for k in listed)
        only_beta = httpx.get(f"{url}/v1/admin/keys", params={"tenant": "beta"}, headers=bearer(ADMIN)).json()["data"]
        assert [k["id"] for k in only_beta] == [made_by_other["id"]]

        rotated = httpx.post(f"{url}/v1/admin/keys/{client['id']}/rotate", headers=bearer(ADMIN))
        assert rotated.status_code == 201
        assert httpx.get(f"{url}/v1/audio/voices", headers=bearer(client["key"])).status_code == 401  # here: at once
        assert httpx.get(f"{url}/v1/audio/voices", headers=bearer(rotated.json()["key"])).status_code == 200
        gone = httpx.delete(f"{url}/v1/admin/keys/{rotated.json()['id']}", headers=bearer(ADMIN))
        assert gone.status_code == 200 and gone.json()["revoked_at"]
        assert httpx.get(f"{url}/v1/audio/voices", headers=bearer(rotated.json()["key"])).status_code == 401
        assert httpx.delete(f"{url}/v1/admin/keys/key_nope", headers=bearer(ADMIN)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"tenant": ""}, {"tenant": "bad tenant"}, {"tenant": "a", "max_streams": -1}, {"tenant": "a", "speed": 1}, {}],
)
def test_a_bad_new_key_is_a_400(settings_for: Callable[..., Settings], body: dict) -> None:
    with serve(settings_for(api_key=ADMIN), parts()) as url:
        resp = httpx.post(f"{url}/v1/admin/keys", json=body, headers=bearer(ADMIN))
        assert resp.status_code == 400, resp.text
        assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_a_server_with_no_key_stays_open_until_its_store_has_one(settings_for: Callable[..., Settings], tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env_file = tmp_path / "tts.env"
    env_file.write_text(f"VOICE_STORE_URL={store}\n")
    with serve(settings_for(voice_store_url=store), parts()) as url:
        assert httpx.get(f"{url}/v1/audio/voices").status_code == 200  # open, as before keys
        assert httpx.get(f"{url}/v1/admin/keys").status_code == 200  # anonymous is the default tenant's admin
        made = keys_cli(env_file, "create", "--tenant", "acme", "--json")
        key = json.loads(made.stdout)["key"]
        start = time.monotonic()
        while httpx.get(f"{url}/v1/audio/voices").status_code != 401:  # a key exists: keys are asked for now
            assert time.monotonic() - start < 5
            time.sleep(0.1)
        assert httpx.get(f"{url}/v1/audio/voices", headers=bearer(key)).status_code == 200
