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
