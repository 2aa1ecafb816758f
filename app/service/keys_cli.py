"""`tts-api keys`: API keys in the store the service uses (VOICE_STORE_URL), made and revoked without a restart.

    tts-api keys create --tenant NAME [--name N] [--max-streams N] [--requests-per-minute N]
                        [--chars-per-minute N] [--audio-seconds-per-day N] [--admin] [--json]
    tts-api keys list [--json]
    tts-api keys revoke ID [--json]
    tts-api keys rotate ID [--json]
    tts-api keys limit-tenant TENANT [--max-streams N] [--requests-per-minute N] [--chars-per-minute N]
                        [--audio-seconds-per-day N] [--json]
    tts-api keys tenants [--json]

A new key's secret is printed once (with --json: an object with `id`, `key`, `tenant`, on stdout). A tenant's
own limits (`limit-tenant`: every limit at once, one left out is none) hold over all its keys together, on top of
each key's. Every process of the service takes a change within 5 seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.errors import TTSError
from app.service import migrations
from app.service.keys import LIMIT_FIELDS, KeyRecord, KeyStore, NewKey
from app.service.tenant_limits import TenantLimitStore
from app.service.voice_store import open_engine
from app.settings import SettingsError, load_settings

LIMIT_OPTIONS = ("max-streams", "requests-per-minute", "chars-per-minute", "audio-seconds-per-day")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tts-api keys", description=__doc__.split("\n\n")[0])
    p.add_argument("--env-file", default=".env", help="settings file (default .env): VOICE_STORE_URL")
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="a new key; its secret is printed once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    for limit in LIMIT_OPTIONS:
        create.add_argument(f"--{limit}", type=int, default=0, help="0: no limit (the default)")
    create.add_argument("--admin", action="store_true", help="may manage every tenant's keys and read all usage")
    create.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="every key, revoked ones too (never a secret)")
    listing.add_argument("--json", action="store_true")
    revoke = sub.add_parser("revoke", help="refused by every process within 5 s")
    revoke.add_argument("id")
    revoke.add_argument("--json", action="store_true")
    rotate = sub.add_parser("rotate", help="a new secret for the key (a new id); the old one revoked")
    rotate.add_argument("id")
    rotate.add_argument("--json", action="store_true")
    tenant = sub.add_parser("limit-tenant", help="a tenant's own limits, over all its keys (replaces the last ones)")
    tenant.add_argument("tenant")
    for limit in LIMIT_OPTIONS:
        tenant.add_argument(f"--{limit}", type=int, default=0, help="0: no limit (the default)")
    tenant.add_argument("--json", action="store_true")
    tenants = sub.add_parser("tenants", help="every tenant with limits of its own")
    tenants.add_argument("--json", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        url = load_settings(_env_file=args.env_file).generation.voice_store_url
    except SettingsError as exc:
        print(f"tts-api keys: {exc}", file=sys.stderr)
        return 2
    engine = open_engine(url)
    try:
        migrations.upgrade(engine)  # the keys table, as the service would make it
        if args.command in ("limit-tenant", "tenants"):
            return _run_tenants(TenantLimitStore(engine), args)
        return _run(KeyStore(engine), args)
    except TTSError as exc:
        print(f"tts-api keys: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _run(store: KeyStore, args: argparse.Namespace) -> int:
    if args.command == "create":
        limits = {f: getattr(args, f) for f in LIMIT_FIELDS}
        _print_new(store.create(args.tenant, args.name, admin=args.admin, **limits), args.json)
    elif args.command == "rotate":
        _print_new(store.rotate(args.id), args.json)
    elif args.command == "revoke":
        record = store.revoke(args.id)
        print(
            json.dumps(record.public())
            if args.json
            else f"revoked {record.id} (tenant {record.tenant}) at {record.revoked_at}"
        )
    else:
        _print_list(store.list(), args.json)
    return 0


def _run_tenants(store: TenantLimitStore, args: argparse.Namespace) -> int:
    if args.command == "limit-tenant":
        limits = {f: getattr(args, f) for f in LIMIT_FIELDS}
        records = [store.set(args.tenant, **limits)]
    else:
        records = store.list()
    if args.json:
        shown = [r.public() for r in records]
        print(json.dumps(shown[0] if args.command == "limit-tenant" else shown))
        return 0
    for r in records:
        limits = {f: getattr(r, f) for f in LIMIT_FIELDS if getattr(r, f)}
        print(f"tenant={r.tenant}  {limits or 'no limits'}")
    return 0


def _print_new(new: NewKey, as_json: bool) -> None:
    if as_json:
        print(json.dumps(new.shown()))
        return
    r = new.record
    print(f"{r.id}  tenant={r.tenant}{'  admin' if r.admin else ''}\n{new.key}")
    print("(the key is shown this once; it is stored hashed)", file=sys.stderr)


def _print_list(records: list[KeyRecord], as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.public() for r in records]))
        return
    for r in records:
        limits: dict[str, Any] = {k: v for k, v in r.public().items() if k.endswith(("streams", "minute", "day")) and v}
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        print(f"{r.id}  tenant={r.tenant}  name={r.name or '-'}  {'admin  ' if r.admin else ''}{state}  {limits or ''}")
