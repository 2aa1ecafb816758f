"""Request and response models. Requests own their validation; settings fill the spec's defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.env import Settings

AudioFormat = Literal["pcm", "wav", "mp3", "opus", "aac", "flac"]
AUDIO_FORMATS: tuple[str, ...] = ("pcm", "wav", "mp3", "opus", "aac", "flac")


class GenerationFields(BaseModel):
    """Fields shared by `/v1/audio/speech` and `/v1/audio/vc`; None means "the server's default"."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, max_length=256, description="Logged; the backend's served model is used")
    response_format: AudioFormat = "pcm"
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    stream: bool = True
    playback_speed: float | None = Field(None, ge=0.02, le=10.0, description="Seconds of audio per decode chunk")
    playback_overlap_speed: float | None = Field(None, ge=0.0, le=5.0, description="Crossfade seconds")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="Playback rate (time stretch, pitch kept)")
    stream_format: Literal["audio", "sse"] = "audio"
    seed: int | None = Field(None, ge=0, le=2**31 - 1)

    @field_validator("response_format", mode="before")
    @classmethod
    def _lower_format(cls, v: Any) -> Any:
        return v.lower().strip() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> GenerationFields:
        if (
            self.playback_speed is not None
            and self.playback_overlap_speed is not None
            and self.playback_overlap_speed >= self.playback_speed
        ):
            raise ValueError("playback_overlap_speed must be smaller than playback_speed")
        return self

    def resolved(self, settings: Settings) -> ResolvedGeneration:
        """These fields with the server's defaults filled in."""
        speed = self.playback_speed if self.playback_speed is not None else settings.default_playback_speed
        overlap = (
            self.playback_overlap_speed
            if self.playback_overlap_speed is not None
            else settings.default_playback_overlap_speed
        )
        return ResolvedGeneration(
            response_format=self.response_format,
            temperature=self.temperature if self.temperature is not None else settings.default_temperature,
            repetition_penalty=(
                self.repetition_penalty
                if self.repetition_penalty is not None
                else settings.default_repetition_penalty
            ),
            max_tokens=self.max_tokens if self.max_tokens is not None else settings.default_max_tokens,
            stream=self.stream,
            playback_speed=speed,
            playback_overlap_speed=min(overlap, speed * 0.99),
            speed=self.speed,
            stream_format=self.stream_format,
            seed=self.seed,
        )


class ResolvedGeneration(BaseModel):
    response_format: str
    temperature: float
    repetition_penalty: float
    max_tokens: int
    stream: bool
    playback_speed: float
    playback_overlap_speed: float
    speed: float
    stream_format: str
    seed: int | None


class VoiceRef(BaseModel):
    id: str


class ContextRef(BaseModel):
    """`/v1/audio/speech` `context`: continue the voice of the previous request made with the same `id`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=128, description="Chosen by the client, one per conversation")
    previous_text: str | None = Field(
        None, max_length=100_000, description="The previous request's input; the context is used only if it matches"
    )


class SpeechRequest(GenerationFields):
    """`POST /v1/audio/speech`: the spec's fields plus OpenAI's."""

    input: str = Field(..., description="Text to synthesize")
    voice: str | VoiceRef | None = None
    normalize_malaysian: bool = True
    instructions: str | None = Field(None, max_length=4096, description="Accepted and logged; not used")
    context: ContextRef | None = None

    @field_validator("input")
    @classmethod
    def _input_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("input must not be empty")
        return v

    @property
    def voice_name(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


class VoiceCloneRequest(GenerationFields):
    """`POST /v1/audio/vc` form fields (the clip travels separately as `reference_audio`)."""

    reference_text: str
    generate_text: str
    normalize_malaysian: bool = True

    @field_validator("reference_text", "generate_text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class StreamConfig(GenerationFields):
    """The first message of `/v1/audio/speech/stream`: `{"type": "config", ...}`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["config"] = "config"
    voice: str | VoiceRef | None = None
    normalize_malaysian: bool = True
    language: str | None = Field(None, max_length=16, description="Accepted and logged; the normalizer detects it")
    context: bool | None = Field(None, description="Prompt each segment with the previous one; None: STREAM_CONTEXT")
    audio_frames: Literal["binary", "base64"] | None = Field(
        None, description="Audio as binary frames (the default), or base64 in `audio` events"
    )
    api_key: str | None = Field(None, max_length=512, description="When API_KEY is set and no header carries it")

    @property
    def voice_name(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


class NormalizeRequest(BaseModel):
    input: str = Field(..., max_length=100_000)
    normalize_malaysian: bool = True


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
