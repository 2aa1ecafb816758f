"""Settings: the spec's variables and defaults, parsing, start-up failures that name the variable, and the
groups that every documented variable reaches."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from functools import cached_property
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings
from tools.harness import free_port

REPO = Path(__file__).resolve().parents[2]

SPEC_DEFAULTS = {
    "TTS_API": "http://tts-engine:9093",
    "MODEL_NAME": "TTS-model",
    "DEFAULT_SPEAKER": "husein",
    "SPEAKERS": ["husein", "idayu", "jenny"],
    "DEFAULT_TEMPERATURE": 0.6,
    "DEFAULT_REPETITION_PENALTY": 1.15,
    "DEFAULT_MAX_TOKENS": 3072,
    "DEFAULT_PLAYBACK_SPEED": 1.5,
    "DEFAULT_PLAYBACK_OVERLAP_SPEED": 0.2,
    "DYNAMIC_BATCHING": False,
    "MICROSLEEP": 1e-4,
    "MAX_BATCH_SIZE": 16,
    "CUDA_GRAPH_BATCH": [],
    "TORCH_COMPILE": False,
    "DEBUG_AUDIO": False,
    "SENTRY_DSN": "",
}


# Every variable -> (a value other than its default, {"group.field": what that field then holds}), with the
# variables it needs beside it in CONTEXT. A documented variable missing here, or not reaching its field, fails.
WIRING: dict[str, tuple[str, dict[str, object]]] = {
    "TTS_API": (
        "http://vllm-a.example:8000/, http://vllm-b.example:8000",
        {"backend.url": "http://vllm-a.example:8000,http://vllm-b.example:8000",
         "backend.urls": ("http://vllm-a.example:8000", "http://vllm-b.example:8000")},
    ),
    "MODEL_NAME": ("other-model", {"backend.model_name": "other-model"}),
    "TTS_API_KEY": ("vllm-key", {"backend.api_key": "vllm-key"}),
    "BACKEND_CONNECT_TIMEOUT": ("2.5", {"backend.connect_timeout": 2.5}),
    "BACKEND_READ_TIMEOUT": ("60", {"backend.read_timeout": 60.0}),
    "BACKEND_STALL_TIMEOUT": ("20", {"backend.stall_timeout": 20.0}),
    "BACKEND_MAX_CONNECTIONS": ("64", {"backend.max_connections": 64}),
    "BACKEND_RETRIES": ("0", {"backend.retries": 0}),
    "BACKEND_FAILOVER_TIMEOUT": ("12.5", {"backend.failover_timeout": 12.5}),
    "BACKEND_HEALTH_INTERVAL": ("0.5", {"backend.health_interval": 0.5}),
    "MAX_MODEL_LEN": ("8192", {"backend.max_model_len": 8192}),
    "CODEC_MODEL": ("/models/codec", {"engine.codec_model": "/models/codec"}),
    "SEMANTIC_MODEL": ("/models/w2v", {"engine.semantic_model": "/models/w2v"}),
    "CODEC_LOAD_ENCODER": ("false", {"engine.load_encoder": False}),
    "CODEC_DEVICE": ("cuda:1", {"engine.device": "cuda:1"}),
    "CODEC_DTYPE": ("bfloat16", {"engine.dtype": "bfloat16"}),
    "CODEC_THREADS": ("4", {"engine.threads": 4}),
    "CUDA_GRAPH_BATCH": ("[1.0, 0.5]", {"engine.cuda_graph_buckets": (25, 50), "streaming.max_window_tokens": 50}),
    "TORCH_COMPILE": ("true", {"engine.torch_compile": True}),
    "TORCH_COMPILE_CACHE_DIR": ("/tmp/inductor", {"engine.compile_cache_dir": "/tmp/inductor"}),
    "DYNAMIC_BATCHING": ("true", {"engine.dynamic_batching": True, "engine.max_batch_size": 16}),
    "MICROSLEEP": ("0.01", {"engine.microsleep": 0.01}),
    "BATCH_WAIT_FRACTION": ("0.5", {"engine.batch_wait_fraction": 0.5}),
    "MAX_BATCH_SIZE": ("8", {"engine.max_batch_size": 8}),
    "CODEC_JOB_TIMEOUT_SECONDS": ("5", {"engine.job_timeout": 5.0, "engine.batch_hang_seconds": 5.0}),
    "CODEC_TIMEOUT_SECONDS": ("6", {"engine.job_timeout": 6.0, "engine.batch_hang_seconds": 6.0}),
    "ENGINE_BATCH_HANG_SECONDS": ("90", {"engine.batch_hang_seconds": 90.0}),
    "ENGINE_ENDPOINT": ("tcp://engine:5555", {"engine.endpoint": "tcp://engine:5555"}),
    "ENGINE_START_TIMEOUT": ("60", {"engine.start_timeout": 60.0}),
    "ENGINE_MAX_RESTARTS": ("2", {"engine.max_restarts": 2}),
    "ENGINE_HEARTBEAT_TIMEOUT": ("4", {"engine.heartbeat_timeout": 4.0}),
    "ENGINE_HANG_TIMEOUT": ("30", {"engine.hang_timeout": 30.0}),
    "ENGINE_RESTART_WAIT": ("0", {"engine.restart_wait": 0.0}),
    "ALIGNER_MODEL": (" /models/mms-fa ", {"engine.aligner_model": "/models/mms-fa"}),
    "ALIGNER_MAX_BATCH": ("4", {"engine.aligner_max_batch": 4}),
    "DEFAULT_PLAYBACK_SPEED": ("2.0", {"streaming.chunk_seconds": 2.0}),
    "DEFAULT_PLAYBACK_OVERLAP_SPEED": ("0.3", {"streaming.crossfade_seconds": 0.3}),
    "FIRST_CHUNK_SECONDS": ("0.25", {"streaming.first_chunk_seconds": 0.25}),
    "DECODE_LEFT_CONTEXT_SECONDS": ("0.5", {"streaming.left_context_seconds": 0.5}),
    # 1.5 x (5 s chunk + 0.2 s crossfade + 0.3 s left context) x 50 tokens per second
    "MAX_CHUNK_SECONDS": ("5", {"streaming.max_chunk_seconds": 5.0, "engine.warmup_window_seconds": 5.5}),
    "FADE_IN_MS": ("10", {"streaming.fade_in_ms": 10.0}),
    "STREAM_CONTEXT": ("false", {"streaming.context": False}),
    "STREAM_CONTEXT_MAX_TOKENS": ("100", {"streaming.context_max_tokens": 100}),
    "SPEECH_CONTEXT_TTL": ("30", {"streaming.context_ttl": 30.0}),
    "STREAM_SEGMENT_MAX_CHARS": ("300", {"streaming.segment_max_chars": 300}),
    "STREAM_FIRST_SEGMENT_CHARS": ("50", {"streaming.first_segment_chars": 50}),
    "STREAM_SEGMENT_MAX_WAIT": ("1.0", {"streaming.segment_max_wait": 1.0}),
    "STREAM_SEND_TIMEOUT": ("5", {"streaming.send_timeout": 5.0}),
    "STREAM_IDLE_TIMEOUT": ("60", {"streaming.idle_timeout": 60.0}),
    "STREAM_LOOKAHEAD_SEGMENTS": ("2", {"streaming.lookahead_segments": 2}),
    "OPUS_COMPLEXITY": ("3", {"streaming.opus_complexity": 3}),
    "DEFAULT_SPEAKER": ("idayu", {"generation.default_speaker": "idayu"}),
    "SPEAKERS": ("husein,idayu,jenny,zed", {"generation.speakers": ("husein", "idayu", "jenny", "zed")}),
    "VOICE_ALIASES": ("alloy=idayu", {"generation.voice_aliases": {"alloy": "idayu"}}),
    "DEFAULT_TEMPERATURE": ("0.9", {"generation.temperature": 0.9}),
    "DEFAULT_REPETITION_PENALTY": ("1.3", {"generation.repetition_penalty": 1.3}),
    "DEFAULT_MAX_TOKENS": ("1000", {"generation.max_tokens": 1000}),
    "TEXT_NORMALIZER": ("none", {"generation.text_normalizer": "none"}),
    "NORMALIZER_OVERRIDES_PATH": ("/tmp/overrides.txt", {"generation.normalizer_overrides_path": "/tmp/overrides.txt"}),
    "VOICE_STORE_URL": (
        "postgresql://tts:pw@db:5432/tts", {"generation.voice_store_url": "postgresql://tts:pw@db:5432/tts"}
    ),
    "MAX_INPUT_CHARS": ("60", {"limits.max_input_chars": 60, "streaming.first_segment_chars": 60}),
    "MAX_REFERENCE_SECONDS": ("10", {"limits.max_reference_seconds": 10.0}),
    "MAX_REFERENCE_BYTES": ("2048", {"limits.max_reference_bytes": 2048}),
    "MAX_CONCURRENT_REQUESTS": ("8", {"limits.max_concurrent_requests": 8}),
    "MAX_CONCURRENT_REFERENCES": ("2", {"limits.max_concurrent_references": 2}),
    "MAX_CONCURRENT_NORMALIZE": ("1", {"limits.max_concurrent_normalize": 1}),
    "REFERENCE_CACHE_SIZE": ("0", {"limits.reference_cache_size": 0}),
    "STREAM_LEASE_SECONDS": ("5", {"limits.stream_lease_seconds": 5.0}),
    "API_KEY": ("secret", {"security.api_key": "secret", "security.docs_need_key": True}),
    "API_KEY_PROTECTS_DOCS": ("false", {"security.docs_need_key": False}),
    "API_KEY_PROTECTS_METRICS": ("false", {"security.metrics_need_key": False}),
    "CORS_ORIGINS": ("https://a.example/,https://b", {"security.cors_origins": ("https://a.example", "https://b")}),
    "LOG_LEVEL": ("debug", {"observability.log_level": "debug"}),
    "SENTRY_DSN": (" https://k@sentry.example/1 ", {"observability.sentry_dsn": "https://k@sentry.example/1"}),
    "SENTRY_TRACES_SAMPLE_RATE": ("0.5", {"observability.sentry_traces_sample_rate": 0.5}),
    "SENTRY_SEND_DEFAULT_PII": ("true", {"observability.sentry_send_default_pii": True}),
    "GPU_MEM_UTIL": ("0.8", {"engine.gpu_mem_util": 0.8}),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("http://otel:4318", {"observability.otlp_endpoint": "http://otel:4318"}),
    "DEBUG_AUDIO": ("true", {"observability.debug_audio": True}),
    "DEBUG_AUDIO_DIR": ("/tmp/debug", {"observability.debug_audio_dir": "/tmp/debug"}),
    "DEBUG_AUDIO_MAX_FILES": ("10", {"observability.debug_audio_max_files": 10}),
    "HOST": ("127.0.0.1", {"server.host": "127.0.0.1"}),
    "PORT": ("9000", {"server.port": 9000}),
    "API_WORKERS": ("4", {"server.workers": 4}),
    "SHUTDOWN_GRACE_SECONDS": ("5", {"server.shutdown_grace_seconds": 5.0}),
    "DRAIN_GRACE_SECONDS": ("2", {"server.drain_grace_seconds": 2.0}),
    "STREAM_AUTH_TIMEOUT": ("2", {"security.auth_timeout": 2.0}),
    "MAX_BODY_BYTES": ("4096", {"limits.max_body_bytes": 4096}),
    "WS_MAX_MESSAGE_BYTES": ("4096", {"limits.ws_max_message_bytes": 4096, "server.ws_max_message_bytes": 4096}),
    "STREAM_MAX_PENDING_CHARS": ("500", {"limits.stream_max_pending_chars": 500}),
    "STREAM_MAX_CONTEXTS": ("3", {"limits.stream_max_contexts": 3}),
    "MAX_SOCKETS_PER_CLIENT": ("0", {"limits.max_sockets_per_client": 0}),
    "MAX_UNAUTHENTICATED_SOCKETS": ("4", {"limits.max_unauthenticated_sockets": 4}),
    "MAX_REQUESTS_PER_CLIENT": ("16", {"limits.max_requests_per_client": 16}),
    "MAX_REFERENCE_CHANNELS": ("8", {"limits.max_reference_channels": 8}),
    "MAX_REFERENCE_DECODED_BYTES": ("2097152", {"limits.max_reference_decoded_bytes": 2097152}),
    "HEADER_TIMEOUT": ("2.5", {"server.header_timeout": 2.5}),
    "MAX_HEADER_BYTES": ("8192", {"server.max_header_bytes": 8192}),
    "KEEP_ALIVE_TIMEOUT": ("30", {"server.keep_alive_timeout": 30.0}),
    "MAX_CONNECTIONS": ("100", {"server.max_connections": 100}),
    "FORWARDED_ALLOW_IPS": ("10.0.0.0/8, 192.168.1.5", {"server.forwarded_allow_ips": ("10.0.0.0/8", "192.168.1.5")}),
}
CONTEXT = {
    "MICROSLEEP": {"DYNAMIC_BATCHING": "true"},
    "BATCH_WAIT_FRACTION": {"DYNAMIC_BATCHING": "true"},
    "MAX_BATCH_SIZE": {"DYNAMIC_BATCHING": "true"},
    "API_KEY_PROTECTS_DOCS": {"API_KEY": "secret"},
    "API_KEY_PROTECTS_METRICS": {"API_KEY": "secret"},
}
GROUPS = [name for name, value in vars(Settings).items() if isinstance(value, cached_property)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.env_names():
        monkeypatch.delenv(name, raising=False)


def documented_variables() -> set[str]:
    """The names of the README's settings table and the assignments of .env_example."""
    readme = (REPO / "README.md").read_text()
    table = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, re.M))
    example = set(re.findall(r"^([A-Z0-9_]+)=", (REPO / ".env_example").read_text(), re.M))
    assert rows and example
    return rows | example


def group_value(settings: Settings, target: str) -> object:
    group, field = target.split(".")
    return getattr(getattr(settings, group), field)


def test_spec_defaults() -> None:
    s = Settings(_env_file=None)
    for name, default in SPEC_DEFAULTS.items():
        assert getattr(s, name.lower()) == default, name


def test_environment_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERS", "a, b ,c")
    monkeypatch.setenv("DEFAULT_SPEAKER", "b")
    monkeypatch.setenv("CUDA_GRAPH_BATCH", "[0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0]")
    monkeypatch.setenv("DYNAMIC_BATCHING", "true")
    monkeypatch.setenv("TTS_API", "http://localhost:9093/")
    s = load_settings(_env_file=None)
    assert s.speakers == ["a", "b", "c"]
    assert s.engine.cuda_graph_buckets == (5, 10, 25, 50, 75, 100, 150, 500)
    assert s.dynamic_batching is True
    assert s.tts_api == "http://localhost:9093"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CUDA_GRAPH_BATCH", "oops"),
        ("CUDA_GRAPH_BATCH", "__import__('os').system('true')"),
        ("CUDA_GRAPH_BATCH", "[0, 1]"),
        ("MAX_BATCH_SIZE", "0"),
        ("MICROSLEEP", "-1"),
        ("DEFAULT_TEMPERATURE", "warm"),
        ("TTS_API", "tts-engine:9093"),
        ("TTS_API", "http://a:9395,b:9396"),
        ("TTS_API", " , "),
        ("SPEAKERS", " , "),
        ("CODEC_DTYPE", "int8"),
        ("CODEC_TIMEOUT_SECONDS", "0"),
        ("CODEC_JOB_TIMEOUT_SECONDS", "-1"),
        ("ENGINE_BATCH_HANG_SECONDS", "soon"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1,proxy.example"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings(_env_file=None)


def test_default_speaker_must_be_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERS", "a,b")
    with pytest.raises(SettingsError, match="DEFAULT_SPEAKER"):
        load_settings(_env_file=None)


def run_tts_api(env: dict[str, str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    """`tts-api` in a fresh interpreter with only `env` (no .env file)."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--env-file", str(tmp_path / "none.env")],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_setting_stops_tts_api_with_a_message(tmp_path: Path) -> None:
    proc = run_tts_api({"CUDA_GRAPH_BATCH": "oops", "MAX_BATCH_SIZE": "0"}, tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "CUDA_GRAPH_BATCH" in proc.stderr and "MAX_BATCH_SIZE" in proc.stderr


def test_every_setting_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    example = (REPO / ".env_example").read_text()
    for name in Settings.env_names():  # old names too
        assert re.search(rf"`{name}`", readme), f"{name} missing from the README table"
    for name in Settings.model_fields:
        assert re.search(rf"^#?\s*{name.upper()}=", example, re.M), f"{name.upper()} missing from .env_example"


def test_every_documented_variable_reaches_its_group_field(monkeypatch: pytest.MonkeyPatch) -> None:
    documented = documented_variables()
    unwired = sorted(documented - set(WIRING))
    assert not unwired, f"documented, but WIRING does not say which group field they reach: {unwired}"
    assert set(WIRING) == set(Settings.env_names()), "WIRING names a variable that app/settings.py does not read"
    default = load_settings(_env_file=None)
    for name, (value, targets) in WIRING.items():
        base = load_settings(_env_file=None, **{k.lower(): v for k, v in CONTEXT.get(name, {}).items()})
        with monkeypatch.context() as env:
            for other, other_value in {**CONTEXT.get(name, {}), name: value}.items():
                env.setenv(other, other_value)
            settings = load_settings(_env_file=None)
        for target, expected in targets.items():
            assert group_value(settings, target) == expected, f"{name}={value} -> {target}"
            assert group_value(base, target) != expected, f"{name}: {target} holds {expected!r} without it"
    assert group_value(default, "engine.max_batch_size") == 1


def test_every_group_field_is_fed_by_a_variable() -> None:
    assert GROUPS == ["backend", "engine", "streaming", "generation", "limits", "security", "observability", "server"]
    s = Settings(_env_file=None)
    every = {f"{g}.{f.name}" for g in GROUPS for f in dataclasses.fields(getattr(s, g))}
    fed = {target for _, targets in WIRING.values() for target in targets}
    assert every == fed


def test_groups_are_frozen_and_built_once() -> None:
    s = Settings(_env_file=None)
    assert s.engine is s.engine
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.engine.max_batch_size = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.generation.voice_aliases["alloy"] = "husein"  # type: ignore[index]
    assert s.generation.resolve_voice("alloy") == "jenny"
    assert s.generation.resolve_voice("husein") == "husein" and s.generation.resolve_voice("nobody") is None


@pytest.mark.parametrize("dynamic", [False, True])
def test_dynamic_batching_off_is_one_window_no_wait(dynamic: bool) -> None:
    """DYNAMIC_BATCHING=false is MAX_BATCH_SIZE=1, MICROSLEEP=0 and BATCH_WAIT_FRACTION=0, whatever those say."""
    s = Settings(_env_file=None, dynamic_batching=dynamic, max_batch_size=8, microsleep=0.01, batch_wait_fraction=0.5)
    batching = (s.engine.max_batch_size, s.engine.microsleep, s.engine.batch_wait_fraction)
    assert batching == ((8, 0.01, 0.5) if dynamic else (1, 0.0, 0.0))


def test_codec_timeout_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """CODEC_TIMEOUT_SECONDS, the old name, is the front-end's job timeout; the engine's hang limit follows it
    unless ENGINE_BATCH_HANG_SECONDS is set; the new name wins over the old one."""
    monkeypatch.setenv("CODEC_TIMEOUT_SECONDS", "45")
    s = load_settings(_env_file=None)
    assert (s.codec_job_timeout_seconds, s.engine.job_timeout, s.engine.batch_hang_seconds) == (45.0, 45.0, 45.0)
    monkeypatch.setenv("ENGINE_BATCH_HANG_SECONDS", "120")
    monkeypatch.setenv("CODEC_JOB_TIMEOUT_SECONDS", "10")
    s = load_settings(_env_file=None)
    assert (s.engine.job_timeout, s.engine.batch_hang_seconds) == (10.0, 120.0)
    monkeypatch.setenv("ENGINE_BATCH_HANG_SECONDS", "")  # as .env_example leaves it
    assert load_settings(_env_file=None).engine.batch_hang_seconds == 10.0
    assert load_settings(_env_file=None, codec_timeout_seconds=3).engine.job_timeout == 3.0  # a keyword wins


def test_knobs_that_depend_on_another() -> None:
    s = Settings(_env_file=None, backend_read_timeout=5.0, backend_stall_timeout=10.0, max_input_chars=80)
    assert s.backend.stall_timeout == 5.0
    assert (s.streaming.segment_max_chars, s.streaming.first_segment_chars) == (80, 80)
    assert not s.security.docs_need_key and not s.security.metrics_need_key  # no API_KEY, nothing to protect
    keyed = Settings(_env_file=None, api_key="k", api_key_protects_metrics=False)
    assert keyed.security.docs_need_key and not keyed.security.metrics_need_key


def test_copies_and_the_worker_json_keep_every_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """`model_copy(update=...)` validates again (its groups follow it); `TTS_WORKER_SETTINGS` (JSON) and the
    engine process's `model_dump()` give the same groups back."""
    monkeypatch.setenv("CODEC_TIMEOUT_SECONDS", "12")
    monkeypatch.setenv("DYNAMIC_BATCHING", "true")
    monkeypatch.setenv("CUDA_GRAPH_BATCH", "[0.5]")
    parent = load_settings(_env_file=None)
    assert parent.engine.endpoint == ""
    copy = parent.model_copy(update={"engine_endpoint": "ipc:///tmp/engine.sock"})
    assert copy.engine.endpoint == "ipc:///tmp/engine.sock" and parent.engine.endpoint == ""
    monkeypatch.delenv("CODEC_TIMEOUT_SECONDS")
    worker = Settings.model_validate_json(copy.model_dump_json())
    engine = Settings(_env_file=None, **copy.model_dump())
    for rebuilt in (worker, engine):
        for group in GROUPS:
            assert getattr(rebuilt, group) == getattr(copy, group), group
    assert worker.engine.job_timeout == 12.0 and worker.engine.batch_hang_seconds == 12.0


def test_import_is_light() -> None:
    code = "import sys, app.main, app.settings; print('torch' in sys.modules, 'malaya' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False False", out.stderr


def test_failed_start_up_exits_1(tmp_path: Path) -> None:
    """A codec that cannot load is logged and stops the process with status 1 (models load after start)."""
    env = {
        "CODEC_MODEL": str(tmp_path / "no-such-codec"),
        "PORT": str(free_port()),
        "HOST": "127.0.0.1",
        "HOME": str(tmp_path),
    }
    proc = run_tts_api(env, tmp_path, timeout=180)
    assert proc.returncode == 1
    assert "start-up failed" in proc.stderr and "no-such-codec" in proc.stderr


@pytest.mark.parametrize("values", [{}, {"max_chunk_seconds": 0}, {"default_playback_speed": 4.0}])
def test_engine_warmup_window_is_the_runtimes(values: dict) -> None:
    """The engine group's compile warm-up window is the longest window the default chunking plans."""
    s = Settings(_env_file=None, **values)
    chunk = max(s.default_playback_speed, s.max_chunk_seconds)
    seconds = chunk + s.default_playback_overlap_speed + s.decode_left_context_seconds
    assert s.engine.warmup_window_seconds == pytest.approx(seconds)
