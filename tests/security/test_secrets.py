"""Secrets and client values where they must not be (issue 24): validation errors, reprs, other processes'
environments, the logs of a real `tts-api` run (access lines, forged lines), and backend details told to clients."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets

from app.cli import warn_if_open
from app.main import Components
from app.observability.logs import SafeFormatter, clip, escape, redact_query
from app.settings import Settings, SettingsError, load_settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, free_port, serve, tts_api_process

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()
API_KEY = "sk-client-5f0c1d2e3a"
VLLM_KEY = "sk-vllm-9b8a7c6d5e"
DSN = "http://dsnpublickey4242@127.0.0.1:9/1"  # nothing listens: no report is sent, but it must not leak
QUERY_KEY = "sk-in-the-url-77aa"


def test_validation_errors_never_show_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check across settings has all of them as its input: the error must not print it (it did, keys included)."""
    monkeypatch.setenv("API_KEY", API_KEY)
    monkeypatch.setenv("TTS_API_KEY", VLLM_KEY)
    monkeypatch.setenv("DEFAULT_SPEAKER", "nobody")
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert "DEFAULT_SPEAKER" in str(info.value)
    assert API_KEY not in str(info.value) and VLLM_KEY not in str(info.value)
    with pytest.raises(ValueError) as raw:  # pydantic's own error, for a caller that builds Settings itself
        Settings(_env_file=None, api_key=API_KEY, sentry_dsn=DSN, default_speaker="nobody")
    assert API_KEY not in str(raw.value) and DSN not in str(raw.value)
    monkeypatch.setenv("DEFAULT_SPEAKER", "husein")
    monkeypatch.setenv("MAX_BATCH_SIZE", "many")  # a plain field still shows what it was given
    with pytest.raises(SettingsError, match="MAX_BATCH_SIZE.*'many'"):
        load_settings(_env_file=None)


def test_settings_and_groups_do_not_print_their_secrets() -> None:
    s = Settings(_env_file=None, api_key=API_KEY, tts_api_key=VLLM_KEY, sentry_dsn=DSN)
    for text in (repr(s), str(s), repr(s.security), repr(s.backend), repr(s.observability), s.model_dump_json()):
        assert API_KEY not in text and VLLM_KEY not in text and DSN not in text, text
    assert s.security.api_key == API_KEY and s.backend.api_key == VLLM_KEY and s.observability.sentry_dsn == DSN


def test_tts_api_with_a_bad_setting_prints_no_secret(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "API_KEY": API_KEY, "DEFAULT_SPEAKER": "nobody"}
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--env-file", "/dev/null"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "DEFAULT_SPEAKER" in proc.stderr
    assert API_KEY not in proc.stderr + proc.stdout


def test_log_values_are_escaped_bounded_and_redacted() -> None:
    assert escape("a\nb\r\x1b[31m\u202e") == "a\\nb\\r\\x1b[31m\\u202e"
    assert clip("x" * 500, 10) == "xxxxxxxxxx...(+490)"
    assert clip("id\n2026-01-01 INFO forged") == "id\\n2026-01-01 INFO forged"
    assert redact_query("/v1/x?output_format=pcm_16000&xi_api_key=sk-1&authorization=Bearer%20k&Token=t") == (
        "/v1/x?output_format=pcm_16000&xi_api_key=***&authorization=***&Token=***"
    )
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "model=%s", ("m\nFORGED",), None)
    assert "\n" not in SafeFormatter("%(message)s").format(record)


def test_the_open_service_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app"):
        warn_if_open(Settings(_env_file=None, host="0.0.0.0"))
        assert any("NO API_KEY IS SET" in r.getMessage() for r in caplog.records)
        caplog.clear()
        for quiet in (
            Settings(_env_file=None, host="0.0.0.0", api_key=API_KEY),
            Settings(_env_file=None, host="127.0.0.1"),
            Settings(_env_file=None, host="::1"),
            Settings(_env_file=None, host="localhost"),
        ):
            warn_if_open(quiet)
        assert not caplog.records


def descendants(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    found = [int(c) for c in children]
    for child in list(found):
        found += descendants(child)
    return found


def environ_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


async def ws_with_query_key(base: str) -> int | None:
    url = base.replace("http://", "ws://") + (
        f"/v1/text-to-speech/husein/multi-stream-input?output_format=pcm_16000&xi_api_key={QUERY_KEY}"
    )
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
    return ws.close_code


def test_a_tts_api_run_keeps_its_secrets(tmp_path: Path) -> None:
    """`tts-api` with API_WORKERS=2 and every secret set: no child's environment holds one, the workers still
    serve with both keys, the secrets file is private and removed at exit, and the whole log (access lines
    included) holds no secret, no key sent in a query string, no line a client forged."""
    temp = Path(tempfile.mkdtemp(prefix="as-", dir="/tmp"))  # short: the engine's socket lives there too
    with FakeVLLM(n_tokens=40, rate=0, api_key=VLLM_KEY) as fake:
        env = {
            "HOME": str(tmp_path),
            "TMPDIR": str(temp),
            "TTS_API": fake.url,
            "API_WORKERS": "2",
            "API_KEY": API_KEY,
            "tts_api_key": VLLM_KEY,  # any case is read, and removed
            "SENTRY_DSN": DSN,
            "STREAM_AUTH_TIMEOUT": "1",
            "CODEC_MODEL": str(CODEC_DIR),
            "CODEC_LOAD_ENCODER": "false",
            "CODEC_THREADS": "1",
            "LOG_LEVEL": "info",
            "SHUTDOWN_GRACE_SECONDS": "2",
        }
        log = tmp_path / "tts-api.log"
        keyed = {"authorization": f"Bearer {API_KEY}"}
        with tts_api_process(env, cwd=tmp_path, log=log) as (url, proc):
            children = descendants(proc.pid)
            assert len(children) >= 3, children  # the engine and two front-ends
            for pid in children:
                environ = environ_of(pid)
                for secret in (API_KEY, VLLM_KEY, DSN):
                    assert secret.encode() not in environ, f"process {pid} has a secret in its environment"
            secrets_files = list(temp.glob("tts-secrets-*/secrets.json"))
            assert len(secrets_files) == 1
            assert stat.S_IMODE(secrets_files[0].stat().st_mode) == 0o600
            assert stat.S_IMODE(secrets_files[0].parent.stat().st_mode) == 0o700

            for i in range(4):  # both workers: each read the client key and the backend key
                r = httpx.post(f"{url}/v1/audio/speech", json={"input": f"hello {i}"}, headers=keyed, timeout=60)
                assert r.status_code == 200, r.text
            assert fake.requests[-1].headers["authorization"] == f"Bearer {VLLM_KEY}"
            assert httpx.post(f"{url}/v1/audio/speech", json={"input": "x"}, timeout=10).status_code == 401
            assert httpx.get(f"{url}/v1/models?api_key={QUERY_KEY}&x=1", timeout=10).status_code == 401
            forged = {"input": "hi", "model": "tts-1\n2026-12-02 00:00:00 ERROR FORGED: fake line"}
            assert httpx.post(f"{url}/v1/audio/speech", json=forged, headers=keyed, timeout=60).status_code == 200
            assert asyncio.run(ws_with_query_key(url)) == 1008  # the query key is no key: closed after 1 s
        assert not list(temp.glob("tts-secrets-*")), "the secrets directory outlived tts-api"
        shutil.rmtree(temp, ignore_errors=True)
        text = log.read_text()
        for secret in (API_KEY, VLLM_KEY, DSN, QUERY_KEY):
            assert secret not in text, f"{secret} is in the log"
        assert "xi_api_key=***" in text and "api_key=***&x=1" in text  # the access lines, redacted
        assert not any(line.startswith("2026-12-02 00:00:00 ERROR FORGED") for line in text.splitlines())
        assert "FORGED" in text  # the value was logged, escaped on its own line
        assert "NO API_KEY IS SET" not in text


def test_backend_details_stay_in_the_log(
    settings_for: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """A vLLM that cannot be reached: the client learns it is unavailable, not where it lives."""
    dead = free_port()
    settings = settings_for(tts_api=f"http://127.0.0.1:{dead}", backend_connect_timeout=2.0)
    parts = Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())
    with serve(settings, parts) as url, caplog.at_level(logging.WARNING):
        r = httpx.post(f"{url}/v1/audio/speech", json={"input": "hello"}, timeout=30)
    assert r.status_code == 503 and r.json()["error"]["code"] == "backend_unavailable"
    assert str(dead) not in r.text and "127.0.0.1" not in r.text
    assert any(str(dead) in rec.getMessage() for rec in caplog.records)  # the operator still sees it
