"""Request and response models. Requests own their validation; settings fill the spec's defaults."""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.audio.output import OutputSpec
from app.audio.registry import ENCODING_NAMES, FORMATS, OPENAI_NAMES, RATES
from app.service.text_input import INVISIBLE, unpaired_surrogate, without_invisible
from app.settings import GenerationSettings, StreamingSettings
from app.text.options import TextFields

AudioFormat = Literal[OPENAI_NAMES]  # type: ignore[valid-type]  # the registry's formats: pcm, wav, mp3, ...
SampleEncodingName = Literal[ENCODING_NAMES]  # type: ignore[valid-type]  # s16le, mulaw, alaw
Language = Literal["auto", "ms", "en", "zh"]  # text normalization language; auto = detect per sentence
Timestamps = Literal["word", "char"]  # what timings a response carries: words, or words and characters
TIMESTAMPS_DESCRIPTION = (
    "Word timings (`word`), or word and character timings (`char`), in seconds from the start of the audio; "
    "estimated within each segment (`source`: estimated), segment boundaries exact"
)

# Python's whitespace (`str.isspace`, what `strip()` removes), spelled out: regex `\s` differs between Python,
# ECMAScript and Rust (0x1c-0x1f, U+FEFF), and the schema must mean what the validators below do.
WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK: dict[str, Any] = {"minLength": 1, "pattern": f"[^{WHITESPACE}{INVISIBLE}]"}
"""The schema of a text that must hold something besides whitespace and the characters cleanup removes."""


def _clean_text(cls: type, v: Any) -> Any:
    """A text field as the service takes it: unpaired surrogates refused, control and bidi characters removed."""
    if isinstance(v, str):
        if unpaired_surrogate(v):
            raise ValueError("must be valid Unicode text: it holds an unpaired surrogate (U+D800-U+DFFF)")
        return without_invisible(v)
    return v


class GenerationFields(BaseModel):
    """Fields shared by `/v1/audio/speech` and `/v1/audio/vc`; None means "the server's default"."""

    # unknown fields are accepted and kept in `model_extra` so that the route can log them (as vLLM does)
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, max_length=256, description="Logged; the backend's served model is used")
    response_format: AudioFormat = "pcm"
    sample_rate: Annotated[int, Field(strict=True, json_schema_extra={"enum": list(RATES)})] | None = Field(
        None,
        description=(
            "Output sample rate in Hz, resampled from the model's 24000 (None: 24000). One of "
            f"{', '.join(map(str, RATES))}; opus takes {', '.join(map(str, FORMATS['opus'].rates))}"
        ),
    )
    encoding: SampleEncodingName | None = Field(
        None,
        description=(
            "Sample encoding of pcm and wav: s16le (the default), mulaw or alaw (G.711, 8 bits a sample; "
            "raw bytes for pcm, WAV format 7 or 6 for wav). The other formats carry s16le only"
        ),
    )
    temperature: float | None = Field(None, ge=0.0, le=2.0, strict=True)
    repetition_penalty: float | None = Field(None, gt=0.0, le=2.0, strict=True)
    max_tokens: int | None = Field(None, ge=1, le=32768, strict=True)
    stream: bool = Field(True, strict=True)
    playback_speed: float | None = Field(
        None, ge=0.02, le=10.0, strict=True, description="Seconds of audio per decode chunk"
    )
    playback_overlap_speed: float | None = Field(
        None, ge=0.0, le=5.0, strict=True, description="Crossfade seconds; must be smaller than playback_speed"
    )
    speed: float = Field(
        1.0, ge=0.25, le=4.0, strict=True, description="Playback rate (time stretch, pitch kept)"
    )
    stream_format: Literal["audio", "sse"] = "audio"
    seed: int | None = Field(None, ge=0, le=2**31 - 1, strict=True)

    _clean_model = field_validator("model", mode="before")(_clean_text)

    # Numbers and booleans are strict fields: `temperature: true` or `stream: 0` are 400s, as the schema says.
    @field_validator("max_tokens", "seed", mode="before")
    @classmethod
    def _json_integer(cls, v: Any) -> Any:
        """JSON Schema's integer: `3` and `3.0`, never `true` or `"3"`."""
        return int(v) if isinstance(v, float) and v.is_integer() else v

    @field_validator("response_format", mode="before")
    @classmethod
    def _lower_format(cls, v: Any) -> Any:
        return v.lower().strip() if isinstance(v, str) else v

    @field_validator("sample_rate", mode="before")
    @classmethod
    def _json_rate(cls, v: Any) -> Any:
        return int(v) if isinstance(v, float) and v.is_integer() else v

    # The registry says which rates and encodings each format carries; its message lists them.
    @field_validator("sample_rate")
    @classmethod
    def _offered_rate(cls, v: int | None, info: ValidationInfo) -> int | None:
        fmt = FORMATS.get(info.data.get("response_format", ""))
        if v is not None and fmt is not None:
            fmt.check_rate(v)
        return v

    @field_validator("encoding")
    @classmethod
    def _offered_encoding(cls, v: str | None, info: ValidationInfo) -> str | None:
        fmt = FORMATS.get(info.data.get("response_format", ""))
        if v is not None and fmt is not None:
            fmt.encoding(v)
        return v

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> GenerationFields:
        if (
            self.playback_speed is not None
            and self.playback_overlap_speed is not None
            and self.playback_overlap_speed >= self.playback_speed
        ):
            raise ValueError("playback_overlap_speed must be smaller than playback_speed")
        return self

    def resolved(self, generation: GenerationSettings, streaming: StreamingSettings) -> ResolvedGeneration:
        """The sampling and chunking of these fields, the server's defaults filled in."""
        speed = self.playback_speed if self.playback_speed is not None else streaming.chunk_seconds
        overlap = self.playback_overlap_speed if self.playback_overlap_speed is not None else streaming.crossfade_seconds
        return ResolvedGeneration(
            temperature=self.temperature if self.temperature is not None else generation.temperature,
            repetition_penalty=(
                self.repetition_penalty if self.repetition_penalty is not None else generation.repetition_penalty
            ),
            max_tokens=self.max_tokens if self.max_tokens is not None else generation.max_tokens,
            playback_speed=speed,
            playback_overlap_speed=min(overlap, speed * 0.99),
            seed=self.seed,
        )

    def output_spec(self, bit_rate: int | None = None) -> OutputSpec:
        """How the audio leaves: format, rate, sample encoding, speed (and a lossy codec's bit rate)."""
        return OutputSpec(self.response_format, self.sample_rate, self.encoding, self.speed, bit_rate)

    def delivery(self) -> Delivery:
        return Delivery(stream=self.stream, stream_format=self.stream_format)


class ResolvedGeneration(BaseModel):
    """How a segment is generated (sampling) and decoded (chunking); how its audio leaves is an `OutputSpec`."""

    temperature: float
    repetition_penalty: float
    max_tokens: int
    seed: int | None = None
    playback_speed: float
    playback_overlap_speed: float


class Delivery(BaseModel):
    """How an HTTP response carries the audio: streamed or complete, raw or SSE, with timings or without."""

    stream: bool = True
    stream_format: str = "audio"
    timestamps: str | None = None
    """None: audio only; word or char: the response carries timings (JSON or SSE)."""

    @property
    def timed(self) -> bool:
        return self.timestamps is not None

    @property
    def complete(self) -> bool:
        """One whole body (raw audio cannot carry timings: a timed request that is not SSE is one JSON body)."""
        return (not self.stream or self.timed) and self.stream_format != "sse"


class VoiceRef(BaseModel):
    id: str

    _clean = field_validator("id", mode="before")(_clean_text)


class ContextRef(BaseModel):
    """`/v1/audio/speech` `context`: continue the voice of the previous request made with the same `id`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=128, description="Chosen by the client, one per conversation")
    previous_text: str | None = Field(
        None, max_length=100_000, description="The previous request's input; the context is used only if it matches"
    )

    _clean = field_validator("id", "previous_text", mode="before")(_clean_text)


class DictionaryLocator(BaseModel):
    """One of `pronunciation_dictionary_locators` (ElevenLabs' shape): a dictionary of the caller's, and a version
    of it (None: its latest)."""

    pronunciation_dictionary_id: str = Field(..., min_length=1, max_length=64)
    version_id: str | None = Field(None, min_length=1, max_length=64)


class DictionaryFields(BaseModel):
    """`pronunciation_dictionary_locators`: up to 3 dictionaries, applied in order (the first wins) before the
    normalizer's rules (app/text/dictionary.py)."""

    pronunciation_dictionary_locators: list[DictionaryLocator] | None = Field(
        None,
        max_length=3,
        description="Up to 3 pronunciation dictionaries (`/v1/pronunciation-dictionaries`), each at a version or its "
        "latest (`version_id` null), applied in order before normalization; the first that matches a place wins",
    )

    @field_validator("pronunciation_dictionary_locators", mode="before")
    @classmethod
    def _form_json(cls, v: Any) -> Any:
        """A form field (`/v1/audio/vc`) carries the list as JSON text."""
        if isinstance(v, str):
            try:
                return json.loads(v)
            except ValueError:
                raise ValueError("must be a JSON list of locators") from None
        return v


def _input_not_blank(cls: type, v: str) -> str:
    """`input` of the speech and normalize requests: something besides white space."""
    if not v.strip():
        raise ValueError("input must not be empty")
    return v


InputFormat = Literal["text", "ssml"]
INPUT_FORMAT_DESCRIPTION = (
    "`ssml`: the input is SSML (docs/ssml.md); `text`: plain text, never parsed; not given: SSML when the input "
    "starts with `<speak>`"
)


class SpeechRequest(GenerationFields, DictionaryFields, TextFields):
    """`POST /v1/audio/speech`: the spec's fields plus OpenAI's."""

    input: str = Field(..., description="Text to synthesize", json_schema_extra=NOT_BLANK)
    input_format: InputFormat | None = Field(None, description=INPUT_FORMAT_DESCRIPTION)
    voice: str | VoiceRef | None = None
    normalize_malaysian: bool = Field(True, strict=True)
    language: Language = Field("auto", description="Reading language: auto (detect per sentence), ms, en or zh")
    instructions: str | None = Field(None, max_length=4096, description="Accepted and logged; not used")
    context: ContextRef | None = None
    timestamps: Timestamps | None = Field(
        None,
        description=TIMESTAMPS_DESCRIPTION
        + ". The response is then JSON (the complete audio in base64, and its `words`), or with "
        "`stream_format=sse` a `speech.audio.timestamps` event per segment, once its audio is complete",
    )

    _input_not_blank = field_validator("input")(_input_not_blank)
    _clean = field_validator("input", "voice", "instructions", mode="before")(_clean_text)

    @property
    def voice_name(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice

    def delivery(self) -> Delivery:
        return super().delivery().model_copy(update={"timestamps": self.timestamps})


class VoiceCloneRequest(GenerationFields, DictionaryFields, TextFields):
    """`POST /v1/audio/vc` form fields (the clip travels separately as `reference_audio`)."""

    reference_text: str = Field(..., description="What the reference clip says", json_schema_extra=NOT_BLANK)
    generate_text: str = Field(..., description="Text to synthesize in the cloned voice", json_schema_extra=NOT_BLANK)
    input_format: InputFormat | None = Field(None, description=INPUT_FORMAT_DESCRIPTION.replace("input", "generate_text"))
    normalize_malaysian: bool = Field(True, strict=True)
    language: Language = Field("auto", description="Reading language: auto (detect per sentence), ms, en or zh")

    @model_validator(mode="before")
    @classmethod
    def _form_values(cls, data: Any) -> Any:
        """Form fields arrive as text: read the number and boolean ones as JSON (`0.7`, `12`, `true`)."""
        if not isinstance(data, dict):
            return data
        values = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is None or not isinstance(value, str) or not _is_number_or_bool(field.annotation):
                continue
            text = value.strip()
            with suppress(ValueError):  # not JSON: left as text, and the field's validation names it
                values[name] = json.loads(text.lower() if text.lower() in ("true", "false") else text)
        return values

    _clean = field_validator("reference_text", "generate_text", mode="before")(_clean_text)

    @field_validator("reference_text", "generate_text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


def _is_number_or_bool(annotation: Any) -> bool:
    types = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
    types = [get_args(t)[0] if get_origin(t) is Annotated else t for t in types]
    return bool(types) and all(t in (int, float, bool) for t in types)


CONSENT_VALUES = ("true", "yes")  # `consent` of POST /v1/audio/voices, in any case


class SaveVoiceRequest(BaseModel, TextFields):
    """`POST /v1/audio/voices` form fields (the clip travels separately as `audio`)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        ..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The voice's name: letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
    text: str = Field(..., description="What the clip says", json_schema_extra=NOT_BLANK)
    consent: str = Field(
        ...,
        description="`true` or `yes`: the uploader confirms that the person speaking in the clip agreed to this voice"
        " being saved and used; anything else is refused",
    )
    consent_by: str | None = Field(
        None, max_length=256, description="Who gave that consent (a name, or the id of a consent record); stored"
    )
    normalize_malaysian: bool = Field(True, strict=True)
    language: Language = Field("auto", description="Reading language of `text`: auto, ms, en or zh")

    @model_validator(mode="before")
    @classmethod
    def _form_values(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("normalize_malaysian"), str):
            text = data["normalize_malaysian"].strip().lower()
            if text in ("true", "false"):
                data = {**data, "normalize_malaysian": text == "true"}
        return data

    _clean = field_validator("text", "consent", "consent_by", mode="before")(_clean_text)  # stored as sent

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("consent_by")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        """A name or a record id: one line, its white space runs made single spaces."""
        return " ".join(v.split()) if v is not None else None

    @field_validator("consent")
    @classmethod
    def _consent_given(cls, v: str) -> str:
        if v.strip().lower() not in CONSENT_VALUES:
            raise ValueError(
                "the speaker's consent must be given explicitly: consent=true (or yes) confirms that the person"
                " speaking in the clip agreed to this voice being saved and used"
            )
        return v


class StreamConfig(GenerationFields, DictionaryFields, TextFields):
    """The first message of `/v1/audio/speech/stream`: `{"type": "config", ...}`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["config"] = "config"
    voice: str | VoiceRef | None = None
    normalize_malaysian: bool = Field(True, strict=True)
    language: Language = Field("auto", description="Reading language: auto (detect per sentence), ms, en or zh")
    context: bool | None = Field(None, description="Prompt each segment with the previous one; None: STREAM_CONTEXT")
    audio_frames: Literal["binary", "base64"] | None = Field(
        None, description="Audio as binary frames (the default), or base64 in `audio` events"
    )
    api_key: str | None = Field(None, max_length=512, description="When API_KEY is set and no header carries it")
    timestamps: Timestamps | None = Field(None, description=TIMESTAMPS_DESCRIPTION + ": a `timestamps` event per segment")
    input_format: InputFormat = Field(
        "text", description="`ssml`: the text messages are SSML as it comes (docs/ssml.md); `text`: plain text"
    )

    _clean = field_validator("voice", mode="before")(_clean_text)

    @property
    def voice_name(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice


class NormalizeRequest(DictionaryFields, TextFields):
    model_config = ConfigDict(extra="allow")

    input: str = Field(..., max_length=100_000, description="Text to normalize", json_schema_extra=NOT_BLANK)
    normalize_malaysian: bool = Field(True, strict=True)
    language: Language = Field("auto", description="Reading language: auto (detect per sentence), ms, en or zh")

    _input_not_blank = field_validator("input")(_input_not_blank)
    _clean = field_validator("input", mode="before")(_clean_text)
