"""OpenAI compatibility, with the real `openai` package as the client (fake vLLM, stand-in codec)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator

import av
import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
import soxr

from app.main import Components
from app.prompts import speech_prompt
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

TEXT = "Selamat pagi, the meeting is at three."

# decoded length - input length tolerated per format (encoder priming and frame padding, measured)
PADDING = {"pcm": (0, 0), "wav": (0, 0), "flac": (0, 0), "opus": (0, 0), "mp3": (0, 1105 + 576), "aac": (0, 2048)}


def decode(data: bytes, fmt: str) -> np.ndarray:
    """Any of the six formats -> mono float32 at 24 kHz."""
    if fmt == "pcm":
        return np.frombuffer(data, np.int16).astype(np.float32) / 32767
    container = av.open(io.BytesIO(data), format={"aac": "aac", "opus": "ogg"}.get(fmt, fmt))
    resampler = av.AudioResampler(format="flt", layout="mono", rate=24000)
    parts = []
    for frame in container.decode(audio=0):
        for out in resampler.resample(frame):
            parts.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        parts.append(out.to_ndarray().reshape(-1))
    container.close()
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@pytest.fixture(scope="module")
def shared_url(module_settings_for: Callable[..., Settings]) -> Iterator[str]:
    parts = Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())
    with serve(module_settings_for(api_key="sk-test"), parts) as u:
        yield u


@pytest.fixture
def url(shared_url: str, fake: FakeVLLM) -> str:
    return shared_url


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=60)


def n_samples(fake: FakeVLLM, text: str = TEXT) -> int:
    return len(fake.expected_tokens(speech_prompt("husein", text))) * 480


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_create_returns_decodable_audio_of_the_right_length(client: openai.OpenAI, fake: FakeVLLM, fmt: str) -> None:
    resp = client.audio.speech.create(model="tts-1", voice="husein", input=TEXT, response_format=fmt)
    audio = decode(resp.content, fmt)
    lo, hi = PADDING[fmt]
    assert n_samples(fake) + lo <= len(audio) <= n_samples(fake) + hi
    assert np.abs(audio).max() > 0.01


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_streaming_response_returns_the_same_audio(client: openai.OpenAI, fake: FakeVLLM, fmt: str) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="husein", input=TEXT, response_format=fmt
    ) as resp:
        assert resp.headers["content-type"].startswith({"mp3": "audio/mpeg", "opus": "audio/ogg"}.get(fmt, f"audio/{fmt}"))
        pieces = list(resp.iter_bytes())
    data = b"".join(pieces)
    if fmt == "flac":  # a streamed FLAC header cannot carry the length; FFmpeg decodes it all the same
        assert data[:4] == b"fLaC"
    audio = decode(data, fmt)
    lo, hi = PADDING[fmt]
    assert n_samples(fake) + lo <= len(audio) <= n_samples(fake) + hi


def test_sse_like_livekit(url: str, fake: FakeVLLM) -> None:
    """Parse `stream_format=sse` the way LiveKit's OpenAI plugin does and compare with the raw stream."""
    headers = {"Authorization": "Bearer sk-test"}
    body = {"model": "gpt-4o-mini-tts", "voice": "husein", "input": TEXT, "response_format": "pcm"}
    raw = httpx.post(f"{url}/v1/audio/speech", json=body, headers=headers, timeout=60).content
    pcm = bytearray()
    done = None
    with httpx.stream(
        "POST", f"{url}/v1/audio/speech", json=body | {"stream_format": "sse"}, headers=headers, timeout=60
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:].strip())
            if event["type"] == "speech.audio.delta":
                pcm += base64.b64decode(event["audio"])
            elif event["type"] == "speech.audio.done":
                done = event
    assert bytes(pcm) == raw and len(raw) == n_samples(fake) * 2
    assert done is not None and done["usage"]["output_tokens"] == n_samples(fake) // 480


def test_sdk_gets_8khz_mulaw_through_extra_body(client: openai.OpenAI, fake: FakeVLLM) -> None:
    """A phone line's audio straight from the SDK: raw G.711 mu-law at 8 kHz, one byte a sample."""
    ask = {"sample_rate": 8000, "encoding": "mulaw"}
    resp = client.audio.speech.create(model="tts-1", voice="husein", input=TEXT, response_format="pcm", extra_body=ask)
    assert resp.response.headers["x-sample-rate"] == "8000" and resp.response.headers["x-encoding"] == "mulaw"
    assert len(resp.content) == n_samples(fake) // 3
    plain = client.audio.speech.create(model="tts-1", voice="husein", input=TEXT, response_format="pcm")
    linear = decode(plain.content, "pcm")
    mulaw = sf.read(io.BytesIO(resp.content), samplerate=8000, channels=1, format="RAW", subtype="ULAW")[0]
    ref = soxr.resample(linear, 24000, 8000)
    assert np.corrcoef(mulaw, ref)[0, 1] > 0.999
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="husein", input=TEXT, response_format="wav", extra_body=ask
    ) as streamed:
        wav = streamed.read()
    info = sf.info(io.BytesIO(wav))
    assert (info.samplerate, info.subtype) == (8000, "ULAW") and wav.endswith(resp.content)
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.speech.create(
            model="tts-1", voice="husein", input=TEXT, response_format="mp3", extra_body={"encoding": "mulaw"}
        )
    assert refused.value.body["param"] == "encoding" and "s16le" in refused.value.body["message"]


def test_speed_two_halves_the_duration(client: openai.OpenAI, fake: FakeVLLM) -> None:
    normal = client.audio.speech.create(model="tts-1", voice="husein", input=TEXT, response_format="pcm")
    fast = client.audio.speech.create(model="tts-1", voice="husein", input=TEXT, response_format="pcm", speed=2.0)
    ratio = len(fast.content) / len(normal.content)
    assert abs(ratio - 0.5) <= 0.5 * 0.02


def test_voice_object_and_instructions_are_accepted(url: str) -> None:
    r = httpx.post(
        f"{url}/v1/audio/speech",
        json={"model": "tts-1", "voice": {"id": "jenny"}, "input": TEXT, "instructions": "cheerful"},
        headers={"Authorization": "Bearer sk-test"},
        timeout=60,
    )
    assert r.status_code == 200 and len(r.content) > 0


def test_sdk_raises_its_typed_errors(client: openai.OpenAI, url: str) -> None:
    with pytest.raises(openai.BadRequestError) as bad_voice:
        client.audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    assert bad_voice.value.body["param"] == "voice"
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="husein", input=TEXT, speed=9.0)
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="husein", input="")
    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.audio.speech.create(model="tts-1", voice="husein", input=TEXT)


def test_discovery_for_chat_uis(client: openai.OpenAI, url: str) -> None:
    assert [m.id for m in client.models.list()] == ["TTS-model"]
    voices = httpx.get(f"{url}/v1/audio/voices", headers={"Authorization": "Bearer sk-test"}).json()
    assert {"id": "husein", "name": "husein"} in voices["voices"]
