"""Service settings: one pydantic-settings class, read from the environment and `.env`.

Nothing here imports torch; the settings object is built once in `create_app()` and passed down.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
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


class Settings(BaseSettings):
    """Every variable of the service. Names are the environment variable names (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- the spec's table -------------------------------------------------------------------
    tts_api: str = Field("http://tts-engine:9093", description="vLLM backend URL")
    model_name: str = Field("TTS-model", description="Model name served by vLLM")
    default_speaker: str = "husein"
    speakers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["husein", "idayu", "jenny"])
    default_temperature: float = Field(0.6, ge=0.0, le=2.0)
    default_repetition_penalty: float = Field(1.15, gt=0.0, le=2.0)
    default_max_tokens: int = Field(3072, ge=1)
    default_playback_speed: float = Field(1.5, gt=0.0, le=10.0)
    default_playback_overlap_speed: float = Field(0.2, ge=0.0, le=5.0)
    dynamic_batching: bool = False
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
    sentry_dsn: str = ""

    # --- deployment settings the spec lacks ---------------------------------------------------
    host: str = "0.0.0.0"
    port: int = Field(9091, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    api_key: str = Field("", description="When set, requests need `Authorization: Bearer <key>`")
    api_key_protects_docs: bool = Field(True, description="With API_KEY: /docs and /openapi.json need the key too")
    api_key_protects_metrics: bool = Field(True, description="With API_KEY: /metrics needs the key too")
    tts_api_key: str = Field("", description="Bearer token sent to vLLM (its --api-key)")
    backend_connect_timeout: float = Field(15.0, gt=0, description="Seconds to connect to vLLM (a dead one refuses at once)")
    backend_read_timeout: float = Field(30.0, gt=0, description="Max seconds between two backend stream events")
    backend_stall_timeout: float = Field(
        15.0, gt=0, description="Max seconds between two backend events once a stream has started"
    )
    backend_max_connections: int = Field(512, ge=1)
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
    codec_threads: int = Field(0, ge=0, description="torch CPU threads for the codec; 0 keeps torch's default")

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
    codec_timeout_seconds: float = Field(30.0, gt=0, description="Max seconds for one codec job (then 503)")
    debug_audio_dir: str = "debug_audio"
    debug_audio_max_files: int = Field(1000, ge=1, description="DEBUG_AUDIO keeps the newest this many files")
    text_normalizer: Literal["malaysian", "none"] = Field(
        "malaysian", description="malaysian (numbers, money, dates... read out) or none (text sent as written)"
    )
    normalizer_overrides_path: str = Field("", description="Pronunciation overrides file; empty = bundled")
    api_workers: int = Field(1, ge=1, le=64, description="Front-end processes sharing one codec engine process")
    engine_endpoint: str = Field("", description="ZMQ endpoint of a running codec engine; empty: start one")
    engine_start_timeout: float = Field(600.0, gt=0, description="Seconds the codec engine may take to load")
    engine_max_restarts: int = Field(5, ge=0, description="Engine deaths tolerated in 5 minutes before exiting")
    engine_heartbeat_timeout: float = Field(
        2.0, gt=0, description="Seconds without a word from the codec engine before /ready is 503 (jobs keep waiting)"
    )
    engine_hang_timeout: float = Field(
        15.0, gt=0, description="Seconds without a word from the codec engine before its waiting jobs fail with 503"
    )
    shutdown_grace_seconds: float = Field(30.0, ge=0, description="On SIGTERM, seconds in-flight streams may finish")
    sentry_traces_sample_rate: float = Field(0.0, ge=0.0, le=1.0)
    sentry_send_default_pii: bool = False
    voice_aliases: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_VOICE_ALIASES), description="alias=voice pairs, e.g. alloy=jenny"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser; empty = none"
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
        15.0, gt=0, description="Seconds one WebSocket send may block (a client not reading) before the session ends"
    )
    stream_idle_timeout: float = Field(180.0, gt=0, description="Seconds a WebSocket may stay silent and idle")

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

    @field_validator("tts_api")
    @classmethod
    def _strip_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

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

    def resolve_voice(self, name: str) -> str | None:
        """A voice or alias name -> the voice in SPEAKERS, or None if it is neither."""
        name = self.voice_aliases.get(name, name)
        return name if name in self.speakers else None

    @cached_property
    def cuda_graph_buckets_tokens(self) -> list[int]:
        """`CUDA_GRAPH_BATCH` in tokens (seconds x 50), ascending."""
        return sorted({max(1, round(s * TOKENS_PER_SECOND)) for s in self.cuda_graph_batch})


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning pydantic's error into one that names each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
