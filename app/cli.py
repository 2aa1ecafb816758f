"""`tts-api`: the command that serves the app on HOST:PORT, with `API_WORKERS` front-end processes.

With one worker the app's lifespan starts and supervises the codec engine process. With several, this process
runs the engine and uvicorn's supervisor runs the front-ends on one shared listening socket; each is a fresh
interpreter that gets this process's resolved settings (`TTS_WORKER_SETTINGS`, secrets left out) and connects to
the engine. Secrets (API keys, the Sentry DSN) never reach another process's environment: they are removed from
this one's before any child starts, and the workers read them from a 0600 file in a private directory that lives
as long as the supervisor (`TTS_WORKER_SECRETS` names it).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

from fastapi import FastAPI

from app.api.limits import GuardedHttpToolsProtocol
from app.api.ws_protocol import ClosingWebSocketsProtocol
from app.main import create_app
from app.observability.logs import configure_logging
from app.settings import SECRET_FIELDS, Settings, SettingsError, load_settings

logger = logging.getLogger("app")

AFTER_DRAIN_SECONDS = 2.0  # what uvicorn still waits for once the drain is done or past its deadline
WORKER_HEALTHCHECK_SECONDS = 60.0  # how long a front-end worker may take to answer uvicorn's supervisor


def run(argv: list[str] | None = None) -> None:
    """`tts-api`: start uvicorn on HOST:PORT (default 0.0.0.0:9091); `tts-api keys ...`: the API keys."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:  # API keys in the store (app/service/keys_cli.py)
        from app.service.keys_cli import main as keys_main

        raise SystemExit(keys_main(argv[1:]))
    parser = argparse.ArgumentParser(prog="tts-api", description=__doc__)
    parser.add_argument("--host", help="overrides HOST")
    parser.add_argument("--port", type=int, help="overrides PORT")
    parser.add_argument("--env-file", default=".env", help="settings file (default .env)")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"_env_file": args.env_file}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"tts-api: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.observability.log_level)
    _drop_secrets_from_environment()
    warn_if_open(settings)
    import uvicorn

    server = settings.server
    options = server_options(settings)
    if server.workers > 1:
        _run_workers(settings, options)
        return
    app = create_app(settings)
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, **options))
    app.state.request_shutdown = lambda: setattr(uvicorn_server, "should_exit", True)
    uvicorn_server.run()
    if app.state.startup_error is not None:
        raise SystemExit(1)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for `tts-api`: where it listens, the limits that keep slow or greedy clients from
    holding it (head read time and size, keep-alive, connections, WebSocket message size), and whose proxy
    headers it believes: only `FORWARDED_ALLOW_IPS`' (uvicorn's default believes 127.0.0.1, or its own reading
    of that variable, so both are set here)."""
    server = settings.server
    return {
        "host": server.host,
        "port": server.port,
        "log_level": settings.observability.log_level,
        # uvicorn's own wait, after the app's drain (app/api/drain.py) has had SHUTDOWN_GRACE_SECONDS
        "timeout_graceful_shutdown": AFTER_DRAIN_SECONDS,
        "loop": "uvloop",  # libuv event loop
        "http": GuardedHttpToolsProtocol.configured(server),  # llhttp (C) parsing, with a head deadline and cap
        "h11_max_incomplete_event_size": server.max_header_bytes,  # the same cap, were h11 chosen
        "timeout_keep_alive": server.keep_alive_timeout,
        "limit_concurrency": server.max_connections,
        "ws": ClosingWebSocketsProtocol,  # uvicorn's, with each connection's end known to the drain
        "ws_max_size": server.ws_max_message_bytes,
        "proxy_headers": bool(server.forwarded_allow_ips),
        "forwarded_allow_ips": list(server.forwarded_allow_ips),
    }


_WORKER_SETTINGS = "TTS_WORKER_SETTINGS"  # the parent's resolved settings but its secrets, as JSON, for its workers
_WORKER_SECRETS = "TTS_WORKER_SECRETS"  # the path of the file that holds the secrets, as JSON


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_open(settings: Settings) -> None:
    """A loud warning when the service listens beyond loopback with no API_KEY: anyone who reaches it may use it."""
    if not settings.security.key_required and not _is_loopback(settings.server.host):
        logger.warning(
            "NO API_KEY IS SET and the service listens on %s:%d: anyone who can reach it may use it. "
            "Set API_KEY, or HOST=127.0.0.1 for local use only.",
            settings.server.host,
            settings.server.port,
        )


def _drop_secrets_from_environment() -> None:
    """Remove the secret variables from this process's environment, so that no child inherits them (they were
    read into the settings already)."""
    names = {n for n, f in Settings.env_names().items() if f in SECRET_FIELDS}
    for name in [n for n in os.environ if n.upper() in names]:
        del os.environ[name]


def _write_worker_secrets(settings: Settings) -> str:
    """The secrets in a new 0600 file inside a new 0700 directory; returns its path (the caller removes both)."""
    directory = tempfile.mkdtemp(prefix="tts-secrets-")
    path = os.path.join(directory, "secrets.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({name: getattr(settings, name).get_secret_value() for name in SECRET_FIELDS}, f)
    return path


def _run_workers(settings: Settings, server_options: dict[str, Any]) -> None:
    """`API_WORKERS` > 1: this process runs the codec engine; uvicorn runs the front-ends on one shared socket."""
    import uvicorn

    from app.engine.process import EngineProcess, EngineStartError

    fatal = False

    def give_up() -> None:
        nonlocal fatal
        fatal = True
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's supervisor stops the workers gracefully

    engine = EngineProcess(settings.engine, log_level=settings.observability.log_level, on_fatal=give_up)
    try:
        engine.start()
    except EngineStartError as exc:
        logger.error("start-up failed: %s", exc)
        raise SystemExit(1) from None
    worker_settings = settings.model_copy(update={"engine_endpoint": engine.endpoint})
    os.environ[_WORKER_SETTINGS] = worker_settings.model_dump_json(exclude=set(SECRET_FIELDS))
    secrets_path = os.environ[_WORKER_SECRETS] = _write_worker_secrets(worker_settings)
    own_metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the workers' /metrics add up all workers through it
        own_metrics_dir = tempfile.mkdtemp(prefix="tts-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    server = settings.server
    logger.info("starting %d API workers on %s:%d", server.workers, server.host, server.port)
    options = server_options | {"http": GuardedHttpToolsProtocol}  # by name: each worker configures it
    # a worker that takes longer than uvicorn's 5 s to answer its supervisor's ping (a fresh interpreter importing
    # torch on a busy box) is not hung: killed and restarted over and over, it never served (seen at load 10)
    options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    try:
        uvicorn.run("app.cli:create_worker_app", factory=True, workers=server.workers, **options)
    finally:
        engine.stop()
        shutil.rmtree(os.path.dirname(secrets_path), ignore_errors=True)
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    if fatal:
        raise SystemExit(1)


def create_worker_app() -> FastAPI:
    """The app of one front-end worker of `tts-api` (settings from its parent, engine already running)."""
    with open(os.environ[_WORKER_SECRETS]) as f:
        secrets = json.load(f)
    settings = Settings.model_validate({**json.loads(os.environ[_WORKER_SETTINGS]), **secrets})
    configure_logging(settings.observability.log_level)
    GuardedHttpToolsProtocol.configure(settings.server)  # this worker's connections are made after this
    app = create_app(settings)
    app.state.load_before_serving = True
    return app


if __name__ == "__main__":
    run()
