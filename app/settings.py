"""Service settings: one pydantic-settings class reads and checks the environment and `.env`; typed, frozen
groups built from it (`settings.backend`, `settings.engine`, ...) are what each part of the service receives.

Nothing here imports torch; the settings object is built once in `create_app()` and passed down.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The codec's frame rate, to turn CUDA_GRAPH_BATCH's seconds into tokens; the audio geometry itself (24 kHz, 480
# samples per token) is what the loaded codec reports (the engine's heartbeat).
TOKENS_PER_SECOND = 50

# OpenAI's voice names -> the spec's voices, so clients that only allow OpenAI's names (pipecat) work unchanged
DEFAULT_VOICE_ALIASES = {
    "alloy": "jenny",
    "ash": "husein",
    "ballad": "husein",
    "cedar": "husein",
    "coral": "idayu",
    "echo": "husein",
    "fable": "husein",
    "marin": "jenny",
    "nova": "idayu",
    "onyx": "husein",
    "sage": "jenny",
    "shimmer": "idayu",
    "verse": "husein",
}


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the variable."""


class Secret(SecretStr):
    """A secret setting (API keys, the Sentry DSN): masked in repr, str, dumps and validation errors; equal to the
    plain text it holds, so that `settings.api_key == ""` reads as before. `get_secret_value()` gives it."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.get_secret_value() == other
        return super().__eq__(other)

    __hash__ = SecretStr.__hash__


SECRET_FIELDS = ("api_key", "tts_api_key", "sentry_dsn")  # every `Secret` field of `Settings`


class Settings(BaseSettings):
    """Every variable of the service. Names are the environment variable names (case-insensitive; `env_names()`
    adds the old names still read)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, hide_input_in_errors=True
    )

    # --- the spec's table -------------------------------------------------------------------
    tts_api: str = Field(
        "http://tts-engine:9093",
        description="vLLM backend URL, or a comma-separated list of them (a broken stream resumes on the next one)",
    )
    model_name: str = Field("TTS-model", description="Model name served by vLLM")
    default_speaker: str = "husein"
    speakers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["husein", "idayu", "jenny"])
    default_temperature: float = Field(0.6, ge=0.0, le=2.0)
    default_repetition_penalty: float = Field(1.15, gt=0.0, le=2.0)
    default_max_tokens: int = Field(3072, ge=1)
    default_playback_speed: float = Field(1.5, gt=0.0, le=10.0)
    default_playback_overlap_speed: float = Field(0.2, ge=0.0, le=5.0)
    dynamic_batching: bool = Field(False, description="Off: MAX_BATCH_SIZE 1, MICROSLEEP 0, BATCH_WAIT_FRACTION 0")
    microsleep: float = Field(1e-4, ge=0.0, le=1.0)
    batch_wait_fraction: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="After a batch of several windows, wait up to this fraction of a recent batch's time for as many"
        " windows before decoding the next (0: start at once)",
    )
    max_batch_size: int = Field(16, ge=1, le=256)
    cuda_graph_batch: Annotated[list[float], NoDecode] = Field(default_factory=list)
    torch_compile: bool = False
    torch_compile_cache_dir: str = Field(
        "", description="Directory of torch.compile's kernel caches; a second start reuses them. Empty: torch's default"
    )
    debug_audio: bool = False
    sentry_dsn: Secret = Secret("")

    # --- deployment settings the spec lacks ---------------------------------------------------
    host: str = "0.0.0.0"
    port: int = Field(9091, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    api_key: Secret = Field(Secret(""), description="When set, requests need `Authorization: Bearer <key>`")
    api_key_protects_docs: bool = Field(True, description="With API_KEY: /docs and /openapi.json need the key too")
    api_key_protects_metrics: bool = Field(True, description="With API_KEY: /metrics needs the key too")
    tts_api_key: Secret = Field(Secret(""), description="Bearer token sent to vLLM (its --api-key)")
    backend_connect_timeout: float = Field(15.0, gt=0, description="Seconds to connect to vLLM (a dead one refuses at once)")
    backend_read_timeout: float = Field(30.0, gt=0, description="Max seconds between two backend stream events")
    backend_stall_timeout: float = Field(
        15.0, gt=0, description="Max seconds between two backend events once a stream has started"
    )
    backend_max_connections: int = Field(512, ge=1)
    backend_retries: int = Field(
        3, ge=0, description="Times one backend request is resent (resumed) after its stream broke; 0: never"
    )
    backend_failover_timeout: float = Field(
        30.0, gt=0, description="Seconds one backend request may spend failing over, from its first break"
    )
    backend_health_interval: float = Field(
        2.0, gt=0, description="Seconds between two health checks of a backend taken out of rotation"
    )
    max_model_len: int = Field(4096, ge=64, description="Context length of the vLLM model (--max-model-len)")

    codec_model: str = Field("neuphonic/neucodec", description="NeuCodec hub id or local directory")
    codec_device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    codec_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on a CPU with AVX512_BF16 or AMX, else float32 (app.codec.precision)"
    )
    codec_load_encoder: bool = Field(True, description="Load the encoder (needed by /v1/audio/vc)")
    semantic_model: str = Field(
        "facebook/w2v-bert-2.0", description="w2v-bert-2.0 hub id or local directory (encoder only)"
    )
    codec_threads: int = Field(
        1, ge=0, description="torch CPU threads for the codec; 0 keeps torch's default (every core)"
    )

    first_chunk_seconds: float = Field(0.5, gt=0.0, le=10.0, description="Audio in the first decoded chunk")
    decode_left_context_seconds: float = Field(0.3, ge=0.0, le=10.0, description="Left context per window")
    max_chunk_seconds: float = Field(
        3.0,
        ge=0.0,
        le=10.0,
        description="Longest chunk one window may emit once a stream's tokens have piled up (the codec is behind):"
        " fewer, longer windows under load; at most DEFAULT_PLAYBACK_SPEED turns it off",
    )
    fade_in_ms: float = Field(5.0, ge=0.0, le=100.0, description="Fade-in at the very start of a stream")

    max_input_chars: int = Field(4096, ge=1)
    max_reference_seconds: float = Field(30.0, gt=0)
    max_reference_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_concurrent_requests: int = Field(256, ge=1, description="Requests in flight before 429")
    max_concurrent_references: int = Field(
        4, ge=1, description="Voice-cloning uploads read, decoded and encoded at once before 429"
    )
    max_concurrent_normalize: int = Field(2, ge=1, description="/v1/audio/normalize calls at once before 429")
    codec_job_timeout_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=AliasChoices("codec_job_timeout_seconds", "codec_timeout_seconds"),
        description="Max seconds a front-end waits for one codec job, queueing included (then 503);"
        " CODEC_TIMEOUT_SECONDS, its old name, is read too",
    )
    debug_audio_dir: str = "debug_audio"
    debug_audio_max_files: int = Field(1000, ge=1, description="DEBUG_AUDIO keeps the newest this many files")
    text_normalizer: Literal["malaysian", "none"] = Field(
        "malaysian", description="malaysian (numbers, money, dates... read out) or none (text sent as written)"
    )
    normalizer_overrides_path: str = Field("", description="Pronunciation overrides file; empty = bundled")
    api_workers: int = Field(1, ge=1, le=64, description="Front-end processes sharing one codec engine process")
    engine_endpoint: str = Field("", description="ZMQ endpoint of a running codec engine; empty: start one")
    gpu_mem_util: float | None = Field(
        0.7,
        gt=0,
        lt=1,
        description="vLLM's share of the GPU the codec engine shares with it (vLLM's --gpu-memory-utilization, "
        "vllm.yaml's default): the engine keeps its CUDA memory to the rest; empty: no cap (a GPU of its own)",
    )
    engine_start_timeout: float = Field(600.0, gt=0, description="Seconds the codec engine may take to load")
    engine_max_restarts: int = Field(5, ge=0, description="Engine deaths tolerated in 5 minutes before exiting")
    engine_batch_hang_seconds: float | None = Field(
        None,
        gt=0,
        description="Seconds one codec batch may run before the engine reports itself unhealthy (a hung device);"
        " empty: CODEC_JOB_TIMEOUT_SECONDS",
    )
    engine_heartbeat_timeout: float = Field(
        2.0, gt=0, description="Seconds without a word from the codec engine before /ready is 503 (jobs keep waiting)"
    )
    engine_hang_timeout: float = Field(
        15.0, gt=0, description="Seconds without a word from the codec engine before its waiting jobs fail with 503"
    )
    engine_restart_wait: float = Field(
        20.0,
        ge=0,
        description="Seconds a running stream's windows wait for a restarted codec engine (then sent again to it);"
        " 0: the streams a death catches end broken",
    )
    aligner_model: str = Field(
        "", description="CTC wav2vec2 forced aligner (hub id or local directory) run in the codec engine; empty: off"
    )
    aligner_max_batch: int = Field(8, ge=1, le=256, description="Segments aligned in one forward pass at most")
    drain_grace_seconds: float = Field(
        5.0, ge=0, description="On SIGTERM, seconds the API keeps serving new work while /ready says 503"
    )
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, seconds in-flight requests and WebSocket contexts may take to finish"
    )
    sentry_traces_sample_rate: float = Field(0.0, ge=0.0, le=1.0)
    sentry_send_default_pii: bool = False
    otel_exporter_otlp_endpoint: str = Field(
        "", description="OTLP/HTTP collector (spans go to <endpoint>/v1/traces); empty: no tracing, nothing imported"
    )
    voice_aliases: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_VOICE_ALIASES), description="alias=voice pairs, e.g. alloy=jenny"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser; empty = none"
    )
    stream_auth_timeout: float = Field(
        5.0, gt=0, le=60, description="With API_KEY: seconds a WebSocket may stay open without a valid key"
    )

    # --- streaming text input (WebSocket) and context across segments ------------------------------------
    stream_context: bool = Field(True, description="Prompt each segment with the previous segment's speech")
    stream_context_max_tokens: int = Field(
        250, ge=1, le=8192, description="Speech tokens of the previous segment kept as context (50 per second)"
    )
    speech_context_ttl: float = Field(120.0, gt=0, description="Seconds /v1/audio/speech keeps a context id")
    stream_segment_max_chars: int = Field(250, ge=20, description="Longest segment before it is cut at a clause")
    stream_first_segment_chars: int = Field(100, ge=10, description="Longest first segment (first audio sooner)")
    stream_segment_max_wait: float = Field(
        0.6, gt=0, le=30, description="Seconds buffered text waits for its sentence end before it is cut"
    )
    stream_send_timeout: float = Field(
        15.0,
        gt=0,
        description="Seconds one send to a client may block (a client not reading) before its WebSocket session or"
        " HTTP stream ends",
    )
    stream_idle_timeout: float = Field(180.0, gt=0, description="Seconds a WebSocket may stay silent and idle")
    stream_lookahead_segments: int = Field(
        1, ge=0, le=8, description="Segments whose generation starts before the one being spoken is delivered"
    )
    opus_complexity: int = Field(10, ge=0, le=10, description="libopus' effort for opus output (0-10)")
    # --- limits that keep one client from holding the event loop, the normalizer or the pod ------------
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest JSON request body (413 beyond)")
    ws_max_message_bytes: int = Field(256 * 1024, ge=1024, description="Largest WebSocket message from a client")
    stream_max_pending_chars: int = Field(
        16384, ge=100, description="Characters one WebSocket context may have waiting to be synthesized"
    )
    stream_max_contexts: int = Field(16, ge=1, description="Contexts open at once on one multi-stream WebSocket")
    max_sockets_per_client: int = Field(256, ge=0, description="WebSockets open at once per client address; 0: off")
    max_unauthenticated_sockets: int = Field(
        32,
        ge=0,
        description="With API_KEY: WebSockets per client address still waiting for their key (none in the handshake);"
        " counted apart from MAX_SOCKETS_PER_CLIENT; 0: off",
    )
    max_requests_per_client: int = Field(
        0, ge=0, description="Request slots one client address may hold at once (429 beyond); 0: no share"
    )
    max_reference_channels: int = Field(2, ge=1, le=64, description="Most channels of a reference clip")
    max_reference_decoded_bytes: int = Field(
        48 * 1024 * 1024, ge=1024 * 1024, description="Most bytes a reference clip may decode to (float32)"
    )
    header_timeout: float = Field(10.0, gt=0, description="Seconds a client may take to send a request's headers")
    max_header_bytes: int = Field(64 * 1024, ge=4096, description="Largest request line plus headers (431 beyond)")
    keep_alive_timeout: float = Field(5.0, gt=0, description="Seconds an idle keep-alive connection stays open")
    max_connections: int = Field(2048, ge=16, description="Connections and tasks at once before uvicorn answers 503")
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxies (comma list of addresses or networks, * = any) whose X-Forwarded-For and"
        " X-Forwarded-Proto are believed; empty: none, every client is its peer address",
    )

    # --- saved voices and reference encodings -----------------------------------------------------
    voice_store_url: str = Field(
        "sqlite:///data/voices.db",
        description="Where saved voices live: sqlite:///relative.db, sqlite:////absolute.db, sqlite:// (in memory,"
        " lost on restart) or postgresql://user:password@host:5432/db (several API replicas sharing voices)",
    )
    reference_cache_size: int = Field(
        64, ge=0, description="Reference encodings /v1/audio/vc keeps (same clip and transcript: no encoder); 0: off"
    )
    stream_lease_seconds: float = Field(
        30.0, ge=1.0, le=3600.0,
        description="A key's stream leases (its --max-streams, held across workers and replicas) expire this long"
        " after a killed process renewed them last; renewed every third of it while the stream runs",
    )  # fmt: skip

    @field_validator("speakers", mode="before")
    @classmethod
    def _split_speakers(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("speakers")
    @classmethod
    def _speakers_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one speaker, e.g. 'husein,idayu,jenny'")
        return value

    @field_validator("voice_aliases", mode="before")
    @classmethod
    def _parse_aliases(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = {}
            for item in filter(None, (p.strip() for p in value.split(","))):
                alias, sep, voice = (x.strip() for x in item.partition("="))
                if not sep or not alias or not voice:
                    raise ValueError(f"must be a comma list of alias=voice pairs like 'alloy=jenny', got {item!r}")
                pairs[alias] = voice
            return pairs
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, list | tuple):
            for item in value:
                if item != "*":
                    try:
                        ipaddress.ip_network(str(item), strict=False)
                    except ValueError:
                        raise ValueError(
                            f"must be a comma list of IP addresses or networks (10.0.0.0/8), or *, got {item!r}"
                        ) from None
        return value

    @field_validator("cuda_graph_batch", mode="before")
    @classmethod
    def _parse_graph_batch(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON list of seconds like [0.5, 1.0, 2.0], got {text!r}") from exc
            if not isinstance(value, list):
                raise ValueError(f"must be a JSON list of seconds like [0.5, 1.0, 2.0], got {text!r}")
        return value

    @field_validator("cuda_graph_batch")
    @classmethod
    def _graph_batch_positive(cls, value: list[float]) -> list[float]:
        if any(v <= 0 for v in value):
            raise ValueError("every bucket must be a positive number of seconds")
        return sorted(set(value))

    @field_validator("engine_batch_hang_seconds", "gpu_mem_util", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("voice_store_url")
    @classmethod
    def _store_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(f"must be a sqlite:// or postgresql:// URL, got {value!r}")
        return value

    @field_validator("tts_api")
    @classmethod
    def _strip_url(cls, value: str) -> str:
        urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
        if not urls:
            raise ValueError("must name at least one http(s) URL")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"must be an http(s) URL or a comma-separated list of them, got {url!r}")
        return ",".join(urls)

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.default_speaker not in self.speakers:
            raise ValueError(f"DEFAULT_SPEAKER {self.default_speaker!r} is not one of SPEAKERS {self.speakers}")
        if self.default_playback_overlap_speed >= self.default_playback_speed:
            raise ValueError("DEFAULT_PLAYBACK_OVERLAP_SPEED must be smaller than DEFAULT_PLAYBACK_SPEED")
        if "voice_aliases" not in self.model_fields_set:  # the default mapping follows a changed SPEAKERS
            self.voice_aliases = {
                a: v if v in self.speakers else self.default_speaker
                for a, v in self.voice_aliases.items()
                if a not in self.speakers
            }
        for alias, voice in self.voice_aliases.items():
            if alias in self.speakers:
                raise ValueError(f"VOICE_ALIASES: {alias!r} is already a voice in SPEAKERS")
            if voice not in self.speakers:
                raise ValueError(f"VOICE_ALIASES: {alias}={voice} names a voice not in SPEAKERS {self.speakers}")
        return self

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Every environment variable read (upper case, old names included) -> its field."""
        names = {}
        for field, info in cls.model_fields.items():
            alias = info.validation_alias
            for name in alias.choices if isinstance(alias, AliasChoices) else [field]:
                names[str(name).upper()] = field
        return names

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy with `update` (field names) applied and validated again, so that its groups follow it."""
        return type(self).model_validate({**self.model_dump(), **(update or {})})

    # --- the groups: each part of the service receives its own -------------------------------------
    @cached_property
    def backend(self) -> BackendSettings:
        return BackendSettings(
            url=self.tts_api,
            urls=tuple(self.tts_api.split(",")),
            model_name=self.model_name,
            api_key=self.tts_api_key.get_secret_value(),
            connect_timeout=self.backend_connect_timeout,
            read_timeout=self.backend_read_timeout,
            stall_timeout=min(self.backend_stall_timeout, self.backend_read_timeout),
            max_connections=self.backend_max_connections,
            max_model_len=self.max_model_len,
            retries=self.backend_retries,
            failover_timeout=self.backend_failover_timeout,
            health_interval=self.backend_health_interval,
        )

    @cached_property
    def engine(self) -> EngineSettings:
        batching = self.dynamic_batching
        longest_chunk = max(self.default_playback_speed, self.max_chunk_seconds)
        window_seconds = longest_chunk + self.default_playback_overlap_speed + self.decode_left_context_seconds
        return EngineSettings(
            codec_model=self.codec_model,
            semantic_model=self.semantic_model,
            load_encoder=self.codec_load_encoder,
            device=self.codec_device,
            dtype=self.codec_dtype,
            threads=self.codec_threads,
            cuda_graph_buckets=tuple(sorted({max(1, round(s * TOKENS_PER_SECOND)) for s in self.cuda_graph_batch})),
            torch_compile=self.torch_compile,
            compile_cache_dir=self.torch_compile_cache_dir,
            warmup_window_seconds=window_seconds,
            dynamic_batching=batching,
            max_batch_size=self.max_batch_size if batching else 1,
            microsleep=self.microsleep if batching else 0.0,
            batch_wait_fraction=self.batch_wait_fraction if batching else 0.0,
            batch_hang_seconds=self.engine_batch_hang_seconds or self.codec_job_timeout_seconds,
            endpoint=self.engine_endpoint,
            start_timeout=self.engine_start_timeout,
            max_restarts=self.engine_max_restarts,
            job_timeout=self.codec_job_timeout_seconds,
            heartbeat_timeout=self.engine_heartbeat_timeout,
            hang_timeout=self.engine_hang_timeout,
            restart_wait=self.engine_restart_wait,
            aligner_model=self.aligner_model.strip(),
            aligner_max_batch=self.aligner_max_batch,
            gpu_mem_util=self.gpu_mem_util,
        )

    @cached_property
    def streaming(self) -> StreamingSettings:
        return StreamingSettings(
            chunk_seconds=self.default_playback_speed,
            crossfade_seconds=self.default_playback_overlap_speed,
            first_chunk_seconds=self.first_chunk_seconds,
            left_context_seconds=self.decode_left_context_seconds,
            max_chunk_seconds=self.max_chunk_seconds,
            fade_in_ms=self.fade_in_ms,
            max_window_tokens=max(self.engine.cuda_graph_buckets, default=None),
            context=self.stream_context,
            context_max_tokens=self.stream_context_max_tokens,
            context_ttl=self.speech_context_ttl,
            segment_max_chars=min(self.stream_segment_max_chars, self.max_input_chars),
            first_segment_chars=min(self.stream_first_segment_chars, self.max_input_chars),
            segment_max_wait=self.stream_segment_max_wait,
            send_timeout=self.stream_send_timeout,
            idle_timeout=self.stream_idle_timeout,
            lookahead_segments=self.stream_lookahead_segments,
            opus_complexity=self.opus_complexity,
        )

    @cached_property
    def generation(self) -> GenerationSettings:
        return GenerationSettings(
            default_speaker=self.default_speaker,
            speakers=tuple(self.speakers),
            voice_aliases=MappingProxyType(dict(self.voice_aliases)),
            temperature=self.default_temperature,
            repetition_penalty=self.default_repetition_penalty,
            max_tokens=self.default_max_tokens,
            text_normalizer=self.text_normalizer,
            normalizer_overrides_path=self.normalizer_overrides_path,
            voice_store_url=self.voice_store_url,
        )

    @cached_property
    def limits(self) -> LimitsSettings:
        return LimitsSettings(
            max_input_chars=self.max_input_chars,
            max_reference_seconds=self.max_reference_seconds,
            max_reference_bytes=self.max_reference_bytes,
            max_concurrent_requests=self.max_concurrent_requests,
            max_concurrent_references=self.max_concurrent_references,
            max_concurrent_normalize=self.max_concurrent_normalize,
            max_body_bytes=self.max_body_bytes,
            ws_max_message_bytes=self.ws_max_message_bytes,
            stream_max_pending_chars=self.stream_max_pending_chars,
            stream_max_contexts=self.stream_max_contexts,
            max_sockets_per_client=self.max_sockets_per_client,
            max_unauthenticated_sockets=self.max_unauthenticated_sockets,
            max_requests_per_client=self.max_requests_per_client,
            max_reference_channels=self.max_reference_channels,
            max_reference_decoded_bytes=self.max_reference_decoded_bytes,
            reference_cache_size=self.reference_cache_size,
            stream_lease_seconds=self.stream_lease_seconds,
        )

    @cached_property
    def security(self) -> SecuritySettings:
        api_key = self.api_key.get_secret_value()
        keyed = bool(api_key)
        return SecuritySettings(
            api_key=api_key,
            docs_need_key=keyed and self.api_key_protects_docs,
            metrics_need_key=keyed and self.api_key_protects_metrics,
            cors_origins=tuple(self.cors_origins),
            auth_timeout=self.stream_auth_timeout,
        )

    @cached_property
    def observability(self) -> ObservabilitySettings:
        return ObservabilitySettings(
            log_level=self.log_level,
            sentry_dsn=self.sentry_dsn.get_secret_value().strip(),
            sentry_traces_sample_rate=self.sentry_traces_sample_rate,
            sentry_send_default_pii=self.sentry_send_default_pii,
            otlp_endpoint=self.otel_exporter_otlp_endpoint.strip(),
            debug_audio=self.debug_audio,
            debug_audio_dir=self.debug_audio_dir,
            debug_audio_max_files=self.debug_audio_max_files,
        )

    @cached_property
    def server(self) -> ServerSettings:
        return ServerSettings(
            host=self.host,
            port=self.port,
            workers=self.api_workers,
            drain_grace_seconds=min(self.drain_grace_seconds, self.shutdown_grace_seconds),
            shutdown_grace_seconds=self.shutdown_grace_seconds,
            header_timeout=self.header_timeout,
            max_header_bytes=self.max_header_bytes,
            keep_alive_timeout=self.keep_alive_timeout,
            max_connections=self.max_connections,
            ws_max_message_bytes=self.ws_max_message_bytes,
            forwarded_allow_ips=tuple(self.forwarded_allow_ips),
        )


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning pydantic's error into one that names each bad variable (and shows the value
    given, except for a secret, or for a check across settings, whose input is all of them)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        fields = Settings.env_names()
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            shown = bool(err["loc"]) and fields.get(name) not in SECRET_FIELDS
            if name in fields:  # a field read under several names: name them all
                name = " / ".join(n for n, f in fields.items() if f == fields[name])
            problems.append(f"{name}: {err['msg']}" + (f" (got {err.get('input')!r})" if shown else ""))
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


# --- the groups -------------------------------------------------------------------------------------
# Built once from `Settings` (its cached properties); the comment after a field names its variable when the
# two differ, or how the field is derived.


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """The vLLM backend, and the front-ends' connections to it."""

    url: str  # TTS_API as given (one URL or a comma list)
    urls: tuple[str, ...]  # TTS_API's entries: one client each (a k8s Service name is one entry)
    model_name: str
    api_key: str = dataclasses.field(repr=False)  # TTS_API_KEY
    connect_timeout: float
    read_timeout: float
    stall_timeout: float  # BACKEND_STALL_TIMEOUT, never above BACKEND_READ_TIMEOUT
    max_connections: int
    max_model_len: int
    retries: int  # BACKEND_RETRIES: resends of one backend request after its stream broke
    failover_timeout: float  # BACKEND_FAILOVER_TIMEOUT: from a request's first break, then it ends broken
    health_interval: float  # BACKEND_HEALTH_INTERVAL: between health checks of a backend out of rotation


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The codec engine: its models and device, batching and compilation (the engine process), and how a
    front-end finds it, waits for it and supervises it."""

    codec_model: str
    semantic_model: str
    load_encoder: bool  # CODEC_LOAD_ENCODER
    device: str  # CODEC_DEVICE
    dtype: str  # CODEC_DTYPE
    threads: int  # CODEC_THREADS
    cuda_graph_buckets: tuple[int, ...]  # CUDA_GRAPH_BATCH in tokens (seconds x 50), ascending
    torch_compile: bool
    compile_cache_dir: str  # TORCH_COMPILE_CACHE_DIR
    warmup_window_seconds: float  # the longest window of the default chunking (catching up included)
    dynamic_batching: bool
    max_batch_size: int  # 1 without DYNAMIC_BATCHING
    microsleep: float  # 0 without DYNAMIC_BATCHING
    batch_wait_fraction: float  # 0 without DYNAMIC_BATCHING
    batch_hang_seconds: float  # ENGINE_BATCH_HANG_SECONDS, else CODEC_JOB_TIMEOUT_SECONDS
    endpoint: str  # ENGINE_ENDPOINT
    start_timeout: float  # ENGINE_START_TIMEOUT
    max_restarts: int  # ENGINE_MAX_RESTARTS
    job_timeout: float  # CODEC_JOB_TIMEOUT_SECONDS (a front-end's wait for one job)
    heartbeat_timeout: float  # ENGINE_HEARTBEAT_TIMEOUT: silence after which /ready is 503
    hang_timeout: float  # ENGINE_HANG_TIMEOUT: silence after which waiting jobs fail (a hung engine)
    restart_wait: float  # ENGINE_RESTART_WAIT: how long a running stream's lost windows wait for a new engine
    aligner_model: str = ""  # ALIGNER_MODEL: the forced aligner, on the codec's device; empty: none loaded
    aligner_max_batch: int = 8  # ALIGNER_MAX_BATCH
    gpu_mem_util: float | None = None  # GPU_MEM_UTIL: vLLM's share of the GPU; the engine keeps to the rest


@dataclass(frozen=True, slots=True)
class StreamingSettings:
    """How audio is cut into chunks and stitched, and how streamed text is cut into segments (WebSocket)."""

    chunk_seconds: float  # DEFAULT_PLAYBACK_SPEED (a request's default playback_speed)
    crossfade_seconds: float  # DEFAULT_PLAYBACK_OVERLAP_SPEED (a request's default playback_overlap_speed)
    first_chunk_seconds: float
    left_context_seconds: float  # DECODE_LEFT_CONTEXT_SECONDS
    max_chunk_seconds: float
    fade_in_ms: float
    max_window_tokens: int | None  # the largest CUDA graph: a window that catches up stops there; None: no graphs
    context: bool  # STREAM_CONTEXT
    context_max_tokens: int  # STREAM_CONTEXT_MAX_TOKENS
    context_ttl: float  # SPEECH_CONTEXT_TTL
    segment_max_chars: int  # STREAM_SEGMENT_MAX_CHARS, never above MAX_INPUT_CHARS
    first_segment_chars: int  # STREAM_FIRST_SEGMENT_CHARS, never above MAX_INPUT_CHARS
    segment_max_wait: float  # STREAM_SEGMENT_MAX_WAIT
    send_timeout: float  # STREAM_SEND_TIMEOUT: a WebSocket send or a piece of an HTTP stream
    idle_timeout: float  # STREAM_IDLE_TIMEOUT
    lookahead_segments: int  # STREAM_LOOKAHEAD_SEGMENTS: one request holds at most 1 + this many segments
    opus_complexity: int  # OPUS_COMPLEXITY: libopus' effort, 0-10


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """What a request gets when it names nothing: voice, sampling, length, text normalization."""

    default_speaker: str
    speakers: tuple[str, ...]
    voice_aliases: Mapping[str, str]  # read-only
    temperature: float  # DEFAULT_TEMPERATURE
    repetition_penalty: float  # DEFAULT_REPETITION_PENALTY
    max_tokens: int  # DEFAULT_MAX_TOKENS
    text_normalizer: str
    normalizer_overrides_path: str
    voice_store_url: str  # where saved voices live (sqlite:// or postgresql:// URL)

    def resolve_voice(self, name: str) -> str | None:
        """A voice or alias name -> the voice in SPEAKERS, or None if it is neither."""
        name = self.voice_aliases.get(name, name)
        return name if name in self.speakers else None


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """Request sizes and the admission lanes (429 beyond them)."""

    max_input_chars: int
    max_reference_seconds: float
    max_reference_bytes: int
    max_concurrent_requests: int
    max_concurrent_references: int
    max_concurrent_normalize: int
    max_body_bytes: int  # JSON bodies; multipart ones: MAX_REFERENCE_BYTES and the form around it
    ws_max_message_bytes: int
    stream_max_pending_chars: int
    stream_max_contexts: int
    max_sockets_per_client: int  # 0: no limit
    max_unauthenticated_sockets: int  # waiting for their key, per address, apart from the above; 0: no limit
    max_requests_per_client: int  # 0: no share
    max_reference_channels: int
    max_reference_decoded_bytes: int
    reference_cache_size: int  # reference encodings kept (same clip + transcript: no encoder); 0: off
    stream_lease_seconds: float  # a key's stream lease outlives a killed process by at most this


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """The API key, what it protects, and CORS."""

    api_key: str = dataclasses.field(repr=False)  # empty: no key asked
    docs_need_key: bool  # API_KEY set and API_KEY_PROTECTS_DOCS
    metrics_need_key: bool  # API_KEY set and API_KEY_PROTECTS_METRICS
    cors_origins: tuple[str, ...]
    auth_timeout: float  # STREAM_AUTH_TIMEOUT

    @property
    def key_required(self) -> bool:
        """Whether `API_KEY` is set: its value is for app.api.auth's `Authenticator` (and Sentry's scrubber) only."""
        return bool(self.api_key)


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """Logs, Sentry and the debug audio files."""

    log_level: str
    sentry_dsn: str = dataclasses.field(repr=False)  # stripped; empty: Sentry off
    sentry_traces_sample_rate: float
    sentry_send_default_pii: bool
    otlp_endpoint: str  # OTEL_EXPORTER_OTLP_ENDPOINT; empty: no OpenTelemetry spans
    debug_audio: bool
    debug_audio_dir: str
    debug_audio_max_files: int


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The `tts-api` command: where it listens, its front-end workers, its drain on SIGTERM."""

    host: str
    port: int
    workers: int  # API_WORKERS
    drain_grace_seconds: float  # DRAIN_GRACE_SECONDS (at most the deadline)
    shutdown_grace_seconds: float  # the drain's deadline, counted from SIGTERM
    header_timeout: float
    max_header_bytes: int
    keep_alive_timeout: float
    max_connections: int  # uvicorn's limit_concurrency
    ws_max_message_bytes: int  # uvicorn's ws_max_size
    forwarded_allow_ips: tuple[str, ...] = ()  # FORWARDED_ALLOW_IPS; empty: proxy headers are not read
