"""Issue 35, item 5 (the upload and store side): what a voice-cloning upload or a saved voice may carry, and what
the client is told. Before: an unreadable clip's error showed `<_io.BytesIO object at 0x...>` and the audio
library's text; a form field sent twice took its last value (`consent=false` then `consent=true` saved); a voice
the model's context cannot hold was saved, every request with it then a 400; `jenny.` and `Jenny_` were free names;
`consent_by` and transcripts were stored with raw control characters; ElevenLabs' with-timestamps blamed `input`
for an over-long `text`; the SQLite file (it holds the voices' tokens) was created world-readable. Real sockets,
tts-api's own uvicorn options, the fake vLLM, a real SQLite file."""

from __future__ import annotations

import logging
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tests.voices.test_saved_voices import assert_error, wav_bytes
from tools.fake_vllm import FakeVLLM

INVISIBLE = "\x00\x07\x1b\x7f\x9b\u202e\u2066\u200f"
CONTEXT = 400  # MAX_MODEL_LEN here (and the fake's): a 10 s clip (500 tokens) cannot fit, a 2 s one can


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=40, rate=0, max_model_len=CONTEXT) as server:
        yield server


@pytest.fixture(scope="module")
def url(fake: FakeVLLM) -> Iterator[str]:
    with serve_like_tts_api(limits_settings(fake.url, max_model_len=CONTEXT)) as (base, _):
        yield base


def save(url: str, form: dict, audio: bytes | None = None) -> httpx.Response:
    """`POST /v1/audio/voices` with `form` (a list value: that field sent once per item, in order)."""
    files = {"audio": ("clip.wav", wav_bytes() if audio is None else audio, "audio/wav")}
    return httpx.post(f"{url}/v1/audio/voices", data=form, files=files, timeout=30)


def fields(name: str) -> dict:
    return {"name": name, "text": "Saya suka makan nasi lemak.", "consent": "true"}


def not_saved(url: str, name: str) -> bool:
    return httpx.get(f"{url}/v1/audio/voices/{name}", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("path", "field"), [("/v1/audio/vc", "reference_audio"), ("/v1/audio/voices", "audio")]
)
def test_an_unreadable_clip_is_told_without_internals(
    url: str, path: str, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = {"reference_text": "Hello.", "generate_text": "Hi.", "name": "unreadable", "text": "Hi.", "consent": "true"}
    with caplog.at_level(logging.INFO):
        resp = httpx.post(f"{url}{path}", data=data, files={field: ("c.wav", b"RIFF not really a wave file")}, timeout=30)
    err = assert_error(resp, 400, param=field)
    assert err["message"] == f"{field} is not readable audio (WAV, FLAC, OGG or MP3)"
    assert "0x" not in resp.text and "BytesIO" not in resp.text and "Error" not in resp.text
    assert any("not readable audio" in r.getMessage() and "BytesIO" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("path", "form", "field"),
    [
        ("/v1/audio/voices", fields("twice") | {"consent": ["false", "true"]}, "consent"),
        ("/v1/audio/voices", fields("twice") | {"name": ["twice", "other"]}, "name"),
        ("/v1/audio/vc", {"reference_text": "Hello.", "generate_text": ["Hi.", "Bye."]}, "generate_text"),
    ],
)
def test_a_field_sent_twice_is_refused_naming_it(url: str, path: str, form: dict, field: str) -> None:
    file_field = "audio" if path.endswith("voices") else "reference_audio"
    files = {file_field: ("clip.wav", wav_bytes(), "audio/wav")}
    resp = httpx.post(f"{url}{path}", data=form, files=files, timeout=30)
    err = assert_error(resp, 400, param=field, code="duplicate_field")
    assert field in err["message"]
    assert not_saved(url, "twice") and not_saved(url, "other")


def test_an_unknown_field_sent_twice_is_ignored_as_every_unknown_field(url: str) -> None:
    resp = save(url, fields("extra-twice") | {"x_note": ["a", "b"]})
    assert resp.status_code == 201, resp.text


def test_a_voice_the_context_cannot_hold_is_refused_at_save(url: str) -> None:
    resp = save(url, fields("too-long"), audio=wav_bytes(seconds=10.0))  # 500 reference tokens
    err = assert_error(resp, 400, param="audio", code="reference_too_long")
    over = re.search(r"(\d+) tokens over the model's context of (\d+)", err["message"])
    assert over and int(over[1]) > 100 and int(over[2]) == CONTEXT, err["message"]
    assert not_saved(url, "too-long")
    fits = save(url, fields("fits"))  # 2 s: 100 reference tokens
    assert fits.status_code == 201, fits.text
    speech = httpx.post(f"{url}/v1/audio/speech", json={"input": "Terima kasih.", "voice": "fits", "stream": False})
    assert speech.status_code == 200, speech.text


@pytest.mark.parametrize("name", ["jenny.", "Jenny_", "husein-", "NOVA.", "idayu._", "Alloy-"])
def test_a_name_like_a_built_in_voice_is_refused(url: str, name: str) -> None:
    err = assert_error(save(url, fields(name)), 409, param="name", code="voice_name_reserved")
    assert name in err["message"]
    assert not_saved(url, name)


def test_a_name_merely_starting_like_a_built_in_voice_is_free(url: str) -> None:
    assert save(url, fields("jenny.2")).status_code == 201


def test_stored_text_has_no_control_characters(url: str) -> None:
    resp = save(
        url,
        {
            "name": "clean-record",
            "text": f"Saya suka\x1b[2J makan{INVISIBLE} nasi lemak.",
            "consent": "true",
            "consent_by": f"Aminah\x1b[31m binti\r\nAli{INVISIBLE}",
        },
    )
    assert resp.status_code == 201, resp.text
    stored = httpx.get(f"{url}/v1/audio/voices/clean-record", timeout=10).json()
    for text in (stored["transcript"], stored["reference_text"], stored["consent"]["by"]):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]", text), repr(text)
    assert stored["transcript"] == "Saya suka[2J makan nasi lemak."
    assert stored["consent"]["by"] == "Aminah[31m binti Ali"


@pytest.mark.parametrize("route", ["with-timestamps", "stream/with-timestamps"])
def test_the_with_timestamps_length_error_names_text(url: str, route: str) -> None:
    resp = httpx.post(f"{url}/v1/text-to-speech/jenny/{route}", json={"text": "a" * 5000}, timeout=30)
    err = assert_error(resp, 400, param="text")
    assert err["message"].startswith("text is 5000 characters"), err["message"]


def test_a_created_sqlite_store_is_private_and_an_existing_directory_keeps_its_mode(
    fake: FakeVLLM, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)  # the operator's directory: left as it is
    made = tmp_path / "made" / "here" / "voices.db"
    kept = tmp_path / "kept.db"
    kept.touch(mode=0o640)
    kept.chmod(0o640)
    for store in (made, kept):
        with serve_like_tts_api(limits_settings(fake.url, voice_store_url=f"sqlite:///{store}")) as (base, _):
            assert save(base, fields("private")).status_code == 201
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(made.parent.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640  # a file from before keeps its mode
