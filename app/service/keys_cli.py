"""`tts-api keys`: API keys in the store the service uses (VOICE_STORE_URL), made and revoked without a restart.

    tts-api keys create --tenant NAME [--name N] [--max-streams N] [--requests-per-minute N]
                        [--chars-per-minute N] [--audio-seconds-per-day N] [--admin] [--json]
    tts-api keys list [--json]
    tts-api keys revoke ID [--json]
    tts-api keys rotate ID [--json]

A new key's secret is printed once (with --json: an object with `id`, `key`, `tenant`, on stdout). Every process
of the service takes a change within 5 seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.errors import TTSError
from app.service import migrations
from app.service.keys import KeyRecord, KeyStore, NewKey
from app.service.voice_store import open_engine
from app.settings import SettingsError, load_settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tts-api keys", description=__doc__.split("\n\n")[0])
    p.add_argument("--env-file", default=".env", help="settings file (default .env): VOICE_STORE_URL")
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="a new key; its secret is printed once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    for limit in ("max-streams", "requests-per-minute", "chars-per-minute", "audio-seconds-per-day"):
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
        return _run(KeyStore(engine), args)
    except TTSError as exc:
        print(f"tts-api keys: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _run(store: KeyStore, args: argparse.Namespace) -> int:
    if args.command == "create":
        limits = {f: getattr(args, f) for f in ("max_streams", "requests_per_minute", "chars_per_minute",
                                                "audio_seconds_per_day")}  # fmt: skip
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
