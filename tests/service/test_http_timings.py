"""`timestamps` on `/v1/audio/speech` (and `/v1/audio/vc`): a JSON body with the audio and its words, or a
`speech.audio.timestamps` SSE event; the words span the delivered audio to the sample."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
import soundfile as sf

from tools.fake_vllm import FakeVLLM

TEXT = "Hello there, this is a test. Harga dia lima ringgit sahaja."


def post(url: str, **fields: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "husein"} | fields, timeout=30)


def _check_words(body: dict, end: float) -> None:
    words = body["words"]
    assert [w["word"] for w in words] == TEXT.split() and body["text"] == TEXT and body["source"] == "estimated"
    assert all(0 <= w["start"] <= w["end"] <= end for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert words[0]["start"] == 0


@pytest.mark.parametrize(("fields", "rate"), [({}, 24000), ({"sample_rate": 8000, "speed": 1.5}, 8000)])
def test_timestamps_make_the_complete_response_json_with_its_words(app_url: str, fields: dict, rate: int) -> None:
    plain = post(app_url, response_format="wav", stream=False, **fields)
    resp = post(app_url, response_format="wav", timestamps="word", **fields)  # stream=true: still JSON
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    body = resp.json()
    audio = base64.b64decode(body["audio"])
    assert audio == plain.content  # the same complete file the audio response is
    samples, sr = sf.read(io.BytesIO(audio))
    assert sr == rate == body["sample_rate"] and body["content_type"] == "audio/wav" and body["encoding"] == "s16le"
    assert body["audio_seconds"] == round(len(samples) / rate, 3)
    _check_words(body, body["audio_seconds"])
    assert "characters" not in body


def test_char_timestamps_cover_every_character(app_url: str, fake: FakeVLLM) -> None:
    body = post(app_url, response_format="pcm", stream=False, timestamps="char").json()
    chars = body["characters"]
    assert "".join(c["char"] for c in chars) == TEXT
    assert chars[-1]["end"] == body["audio_seconds"] == len(base64.b64decode(body["audio"])) / 2 / 24000
    assert all(a["end"] == b["start"] for a, b in zip(chars, chars[1:], strict=False))


def test_sse_timestamps_come_before_done_and_span_the_deltas(app_url: str) -> None:
    resp = post(app_url, response_format="pcm", stream_format="sse", timestamps="word")
    events = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[-2:]] == ["speech.audio.timestamps", "speech.audio.done"]
    samples = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "speech.audio.delta") // 2
    _check_words(events[-2], samples / 24000)
    assert events[-2]["words"][-1]["end"] <= round(samples / 24000, 3)


def test_without_timestamps_nothing_changes(app_url: str) -> None:
    resp = post(app_url, response_format="pcm", stream_format="sse")
    types = {json.loads(line[6:])["type"] for line in resp.text.splitlines() if line.startswith("data: ")}
    assert types == {"speech.audio.delta", "speech.audio.done"}
    assert post(app_url, response_format="pcm").headers["content-type"] == "audio/pcm"


def test_a_bad_timestamps_value_is_a_400(app_url: str) -> None:
    resp = post(app_url, timestamps="sentence")
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "timestamps"


def eleven(url: str, path: str, body: dict, query: str = "output_format=pcm_24000", **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/text-to-speech/jenny/{path}?{query}", json=body, headers=headers, timeout=30)


def _check_eleven_alignment(a: dict, text: str, end: float) -> None:
    assert "".join(a["characters"]) == text
    starts, ends = a["character_start_times_seconds"], a["character_end_times_seconds"]
    assert len(starts) == len(ends) == len(text) and starts[0] == 0 and ends[-1] == end
    assert all(s <= e for s, e in zip(starts, ends, strict=True)) and starts == sorted(starts)


def test_elevenlabs_with_timestamps_is_the_audio_and_its_alignment(app_url: str, fake: FakeVLLM) -> None:
    resp = eleven(app_url, "with-timestamps", {"text": TEXT, "model_id": "eleven_flash_v2_5"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    audio = base64.b64decode(body["audio_base64"])
    assert len(audio) == len(fake.expected_tokens(fake.requests[-1].prompt)) * 960
    end = round(len(audio) / 2 / 24000, 3)
    _check_eleven_alignment(body["alignment"], TEXT, end)
    _check_eleven_alignment(body["normalized_alignment"], TEXT, end)  # the dev normalizer keeps this text


@pytest.mark.parametrize(("query", "rate"), [("output_format=pcm_16000", 16000), ("output_format=pcm_44100", 44100)])
def test_elevenlabs_stream_with_timestamps_sends_json_lines(app_url: str, fake: FakeVLLM, query: str, rate: int) -> None:
    resp = eleven(app_url, "stream/with-timestamps", {"text": TEXT, "voice_settings": {"speed": 1.2}}, query)
    assert resp.status_code == 200, resp.text
    lines = [json.loads(line) for line in resp.text.splitlines() if line]
    assert all(set(m) == {"audio_base64", "alignment", "normalized_alignment"} for m in lines)
    assert all(m["alignment"] is None for m in lines[:-1]) and lines[-1]["alignment"] is not None
    samples = sum(len(base64.b64decode(m["audio_base64"])) for m in lines) // 2
    _check_eleven_alignment(lines[-1]["normalized_alignment"], TEXT, round(samples / rate, 3))


def test_elevenlabs_with_timestamps_refuses_what_it_cannot_do(app_url: str) -> None:
    assert eleven(app_url, "with-timestamps", {"text": TEXT}, "output_format=mp3_44100_320").status_code == 400
    assert eleven(app_url, "with-timestamps", {"text": "  "}).json()["error"]["param"] == "text"
    assert eleven(app_url, "with-timestamps", {"model_id": "m"}).status_code == 400
    resp = httpx.post(f"{app_url}/v1/text-to-speech/nobody/with-timestamps", json={"text": TEXT}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "voice_id"
