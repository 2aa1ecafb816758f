"""What the tenants' tests share: an app with a store and an admin `API_KEY`, keys made through the admin routes."""

from __future__ import annotations

import httpx

ADMIN = "admin-secret-key"  # the configured API_KEY: an admin key of the default tenant


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(url: str, tenant: str, admin_key: str = ADMIN, **fields: object) -> dict:
    resp = httpx.post(f"{url}/v1/admin/keys", json={"tenant": tenant, **fields}, headers=bearer(admin_key), timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()
