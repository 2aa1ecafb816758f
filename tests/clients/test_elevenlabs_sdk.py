"""The official ElevenLabs Python SDK (`elevenlabs` on PyPI), unchanged, pointed at the service: its first calls
(`text_to_speech.convert`, `stream`, `convert_with_timestamps`, `stream_with_timestamps`, `voices.get_all`,
`voices.get`, `models.list`) in several output formats, with the key it sends (`xi-api-key`)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import av
import httpx
import pytest
import soundfile as sf
from elevenlabs.client import ElevenLabs
from elevenlabs.core import ApiError

from app.prompts import speech_prompt
from tools.fake_vllm import FakeVLLM

TEXT = "Terima kasih kerana menghubungi kami."


@pytest.fixture
def client(url: str) -> Iterator[ElevenLabs]:
    yield ElevenLabs(api_key="secret", base_url=url, timeout=60)


def tokens(fake: FakeVLLM, voice: str = "jenny", text: str = TEXT) -> int:
    return len(fake.expected_tokens(speech_prompt(voice, text)))


@pytest.mark.parametrize(("output_format", "rate", "width"), [("pcm_16000", 16_000, 2), ("ulaw_8000", 8_000, 1), ("pcm_24000", 24_000, 2)])
def test_convert_and_stream_give_every_token_s_audio(
    client: ElevenLabs, fake: FakeVLLM, output_format: str, rate: int, width: int
) -> None:
    whole = b"".join(client.text_to_speech.convert("jenny", text=TEXT, output_format=output_format))
    streamed = b"".join(client.text_to_speech.stream("jenny", text=TEXT, output_format=output_format))
    samples = tokens(fake) * 480 * rate // 24_000  # every token, resampled; nothing dropped
    assert len(whole) == len(streamed) == samples * width


def test_convert_defaults_to_mp3_and_takes_wav(client: ElevenLabs, fake: FakeVLLM) -> None:
    mp3 = b"".join(client.text_to_speech.convert("jenny", text=TEXT))  # ElevenLabs' default: mp3_44100_128
    with av.open(io.BytesIO(mp3)) as container:
        stream = container.streams.audio[0]
        assert stream.rate == 44_100 and stream.bit_rate == 128_000
    wav = b"".join(client.text_to_speech.convert("jenny", text=TEXT, output_format="wav_22050"))
    data, rate = sf.read(io.BytesIO(wav), dtype="int16")
    assert rate == 22_050 and len(data) == tokens(fake) * 480 * 22_050 // 24_000


def test_settings_we_do_not_apply_are_named(url: str, fake: FakeVLLM) -> None:
    body = {
        "text": TEXT, "model_id": "eleven_flash_v2_5", "seed": 4_000_000_000, "language_code": "ms",
        "voice_settings": {"stability": 0.4, "similarity_boost": 0.7, "speed": 1.0}, "previous_text": "Hello.",
    }  # fmt: skip
    r = httpx.post(f"{url}/v1/text-to-speech/jenny?output_format=pcm_24000&optimize_streaming_latency=3",
                   json=body, headers={"xi-api-key": "secret"}, timeout=60)  # fmt: skip
    assert r.status_code == 200 and len(r.content) == tokens(fake) * 960
    unused = r.headers["x-unused-settings"].split(",")
    assert set(unused) == {"voice_settings.stability", "voice_settings.similarity_boost", "model_id",
                           "previous_text", "optimize_streaming_latency"}  # fmt: skip
    assert fake.requests[-1].body["seed"] == 4_000_000_000 % 2**31  # ElevenLabs' 32-bit seed, folded into ours


def test_with_timestamps_one_object_and_lines(client: ElevenLabs, fake: FakeVLLM) -> None:
    timed = client.text_to_speech.convert_with_timestamps("jenny", text=TEXT, output_format="pcm_16000")
    assert len(base64.b64decode(timed.audio_base_64)) == tokens(fake) * 480 * 2 * 16_000 // 24_000
    assert "".join(timed.alignment.characters) == TEXT
    chunks = list(client.text_to_speech.stream_with_timestamps("jenny", text=TEXT, output_format="ulaw_8000"))
    audio = b"".join(base64.b64decode(c.audio_base_64) for c in chunks if c.audio_base_64)
    assert len(audio) == tokens(fake) * 160
    final = [c for c in chunks if c.alignment is not None]
    assert len(final) == 1 and "".join(final[0].alignment.characters) == TEXT


def test_voices_and_models(client: ElevenLabs) -> None:
    voices = client.voices.get_all().voices
    ids = {v.voice_id for v in voices}
    assert {"jenny", "husein"} <= ids and all(v.category == "premade" for v in voices)
    assert client.voices.get("jenny").name == "jenny"
    with pytest.raises(ApiError) as err:
        client.voices.get("nobody-by-this-name")
    assert err.value.status_code == 404
    assert [m.model_id for m in client.models.list()]


def test_an_unknown_voice_and_a_wrong_key_are_clear_errors(client: ElevenLabs, url: str) -> None:
    with pytest.raises(ApiError) as err:
        b"".join(client.text_to_speech.convert("nobody-by-this-name", text=TEXT))
    assert err.value.status_code == 400 and err.value.body["error"]["param"] == "voice_id"
    with pytest.raises(ApiError) as err:
        b"".join(ElevenLabs(api_key="wrong", base_url=url).text_to_speech.convert("jenny", text=TEXT))
    assert err.value.status_code == 401
