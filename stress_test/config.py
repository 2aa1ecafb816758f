"""The stress test's knobs: environment variables, each overridden by its command-line flag."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from stress_test.stats import ResponseFormat

DEFAULT_API = "http://localhost:9091"

# Sentences of the kind the service is built for (Malaysian English and Malay), about 4-7 s of speech each.
DEFAULT_TEXTS = (
    "Hello! How can I help you? can I get your passport number sir.",
    "Ye encik, apa yang saya boleh tolong? Boleh saya dapatkan nombor kad pengenalan encik?",
    "Your appointment is confirmed for Tuesday at ten thirty in the morning, see you then.",
    "Terima kasih kerana menghubungi kami, sila tunggu sebentar sementara saya semak akaun anda.",
    "The weather in Kuala Lumpur today is hot and humid, with a chance of thunderstorms in the evening.",
    "Baik, saya sudah kemas kini alamat baru encik. Ada apa-apa lagi yang saya boleh bantu?",
)


class ConfigError(ValueError):
    """A knob has an invalid value; the message names it."""


@dataclass(frozen=True)
class StressConfig:
    api: str = DEFAULT_API
    concurrency: tuple[int, ...] = (50,)
    total_requests: int = 50  # per concurrency level
    warmup_count: int = 3
    texts: tuple[str, ...] = DEFAULT_TEXTS
    voice: str | None = None  # None: leave the field out, the server's default applies
    model: str | None = None
    response_format: ResponseFormat = "pcm"
    stream: bool = True
    temperature: float | None = None
    repetition_penalty: float | None = None
    max_tokens: int | None = None
    playback_speed: float | None = None
    playback_overlap_speed: float | None = None
    normalize_malaysian: bool | None = None
    seed: int | None = None
    request_timeout: float = 120.0  # whole request, first byte to last
    max_duration: float = 1800.0  # per level: no new request starts after this
    wait_ready: float = 0.0  # seconds to wait for GET /ready to answer 200 before starting
    api_key: str = ""
    json_out: Path | None = None
    allow_remote: bool = False

    def payload(self, text: str) -> dict[str, object]:
        """The JSON body of POST /v1/audio/speech; unset knobs are left out so the server's defaults apply."""
        body: dict[str, object] = {"input": text, "response_format": self.response_format, "stream": self.stream}
        optional = {
            "voice": self.voice,
            "model": self.model,
            "temperature": self.temperature,
            "repetition_penalty": self.repetition_penalty,
            "max_tokens": self.max_tokens,
            "playback_speed": self.playback_speed,
            "playback_overlap_speed": self.playback_overlap_speed,
            "normalize_malaysian": self.normalize_malaysian,
            "seed": self.seed,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def public_dict(self) -> dict[str, object]:
        """For the JSON result file: everything but the API key."""
        data = asdict(self)
        data["api_key"] = "***" if self.api_key else ""
        data["json_out"] = str(self.json_out) if self.json_out else None
        return data


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- parsing --------------------------------------------------------------------------------------


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _concurrency(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,4,8, got {text!r}") from None
    if not levels or any(level < 1 for level in levels):
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,4,8, got {text!r}")
    return levels


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# (flag, environment variable, parser, help). The flag wins over the variable; an empty variable is unset.
_KNOBS: tuple[tuple[str, str, object, str], ...] = (
    ("--api", "LOCAL_TTS_API", str, f"base URL of the API (default {DEFAULT_API})"),
    ("--concurrency", "CONCURRENCY", _concurrency, "requests in flight; several levels run in turn, e.g. 1,4,8"),
    ("--total-requests", "TOTAL_REQUESTS", _positive_int, "requests per concurrency level (default 50)"),
    ("--warmup-count", "WARMUP_COUNT", _non_negative_int, "sequential requests sent first, not measured (default 3)"),
    ("--text", "TEXT", str, "one text to send for every request (default: a built-in list)"),
    ("--texts-file", "TEXTS_FILE", Path, "file of texts, one per line, sent in turn"),
    ("--voice", "VOICE", str, "speaker (default: the server's)"),
    ("--model", "MODEL", str, "model name (default: the server's)"),
    ("--response-format", "RESPONSE_FORMAT", str, "pcm or wav (default pcm)"),
    ("--stream", "STREAM", _bool, "ask for a streamed response (default true)"),
    ("--temperature", "TEMPERATURE", float, "sampling temperature (default: the server's)"),
    ("--repetition-penalty", "REPETITION_PENALTY", float, "repetition penalty (default: the server's)"),
    ("--max-tokens", "MAX_TOKENS", _positive_int, "max output tokens (default: the server's)"),
    ("--playback-speed", "PLAYBACK_SPEED", float, "playback speed (default: the server's)"),
    ("--playback-overlap-speed", "PLAYBACK_OVERLAP_SPEED", float, "crossfade overlap (default: the server's)"),
    ("--normalize-malaysian", "NORMALIZE_MALAYSIAN", _bool, "Malaysian text normalization (default: the server's)"),
    ("--seed", "SEED", _non_negative_int, "sampling seed, for the same audio lengths run after run (default none)"),
    ("--request-timeout", "REQUEST_TIMEOUT", _positive_float, "seconds one request may take in all (default 120)"),
    ("--max-duration", "MAX_DURATION", _positive_float, "seconds per level after which no request starts (1800)"),
    ("--wait-ready", "WAIT_READY", _non_negative_float, "seconds to wait for GET /ready first (default 0)"),
    ("--api-key", "API_KEY", str, "bearer token, when the API has API_KEY set"),
    ("--json-out", "JSON_OUT", Path, "write every result to this JSON file"),
    ("--allow-remote", "ALLOW_REMOTE", _bool, "allow a target other than loopback (default false)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stress_test",
        description="Load generator for POST /v1/audio/speech. Each flag defaults to its environment variable.",
    )
    for flag, env, kind, help_text in _KNOBS:
        parser.add_argument(flag, type=kind, default=None, metavar=env, help=f"{help_text} [env {env}]")
    return parser


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> StressConfig:
    """Flags first, then environment variables, then the defaults. Raises ConfigError on a bad value."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    values: dict[str, object] = {}
    for flag, env, kind, _ in _KNOBS:
        name = flag[2:].replace("-", "_")
        value = args[name]
        if value is None and environ.get(env, "").strip():
            try:
                value = kind(environ[env].strip())  # type: ignore[operator]
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise ConfigError(f"{env}: {exc}") from None
        if value is not None:
            values[name] = value

    text = values.pop("text", None)
    texts_file = values.pop("texts_file", None)
    if texts_file is not None:
        try:
            lines = Path(str(texts_file)).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"TEXTS_FILE: cannot read {texts_file}: {exc.strerror}") from None
        values["texts"] = tuple(line.strip() for line in lines if line.strip())
        if not values["texts"]:
            raise ConfigError(f"TEXTS_FILE: {texts_file} holds no text")
    elif text is not None:
        values["texts"] = (str(text),)
    if "api" in values:
        values["api"] = str(values["api"]).rstrip("/")

    config = StressConfig(**values)  # type: ignore[arg-type]
    if config.response_format not in {"pcm", "wav"}:
        raise ConfigError(f"RESPONSE_FORMAT: must be pcm or wav, got {config.response_format!r}")
    if urlsplit(config.api).scheme not in {"http", "https"} or not urlsplit(config.api).hostname:
        raise ConfigError(f"LOCAL_TTS_API: must be an http(s) URL, got {config.api!r}")
    if not config.allow_remote and not is_loopback(config.api):
        raise ConfigError(
            f"LOCAL_TTS_API: {config.api} is not a loopback address; set ALLOW_REMOTE=true (--allow-remote true) "
            "to load a server you run elsewhere"
        )
    return config
