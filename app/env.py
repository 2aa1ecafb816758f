"""Service settings: one pydantic-settings class, read from the environment and `.env`.

Nothing here imports torch; the settings object is built once in `create_app()` and passed down.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKENS_PER_SECOND = 50
SAMPLE_RATE = 24_000
SAMPLES_PER_TOKEN = SAMPLE_RATE // TOKENS_PER_SECOND  # 480


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
    tts_api_key: str = Field("", description="Bearer token sent to vLLM (its --api-key)")
    backend_connect_timeout: float = Field(5.0, gt=0)
    backend_read_timeout: float = Field(30.0, gt=0, description="Max seconds between two backend stream events")
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

    first_chunk_seconds: float = Field(0.4, gt=0.0, le=10.0, description="Audio in the first decoded chunk")
    decode_left_context_seconds: float = Field(0.3, ge=0.0, le=10.0, description="Left context per window")
    fade_in_ms: float = Field(5.0, ge=0.0, le=100.0, description="Fade-in at the very start of a stream")

    max_input_chars: int = Field(4096, ge=1)
    max_reference_seconds: float = Field(30.0, gt=0)
    max_reference_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_concurrent_requests: int = Field(256, ge=1, description="Requests in flight before 429")
    debug_audio_dir: str = "debug_audio"
    normalizer_overrides_path: str = Field("", description="Pronunciation overrides file; empty = bundled")
    sentry_traces_sample_rate: float = Field(0.0, ge=0.0, le=1.0)
    sentry_send_default_pii: bool = False

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
        return self

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
