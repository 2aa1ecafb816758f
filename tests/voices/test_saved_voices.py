"""Saved voices end to end, on a real SQLite file and a real PostgreSQL server: saved once through
`POST /v1/audio/voices`, spoken by name through the OpenAI SDK (unchanged), our WebSocket and ElevenLabs'
`voice_id`, before and after a restart and from a second app sharing the store; the 4xx cases."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
import websockets

from app.main import Components
from app.prompts import speech_prompt, voice_clone_prompt
from app.settings import Settings
from tools.fake_vllm import FakeVLLM, speech_tokens
from tools.harness import LocalCodec, PassthroughNormalizer, serve

TRANSCRIPT = "Saya suka makan nasi lemak pada waktu pagi."
TEXT = "Terima kasih kerana menghubungi kami."


def wav_bytes(seconds: float = 2.0, rate: int = 22050, freq: float = 220.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * freq * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)), rate, format="WAV")
    return buf.getvalue()


def parts() -> Components:
    return Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())


def save(url: str, name: str = "my-voice", audio: bytes | None = None, **fields: str) -> httpx.Response:
    data = {"name": name, "text": TRANSCRIPT, "consent": "true", "consent_by": "Aminah binti Ali"} | fields
    files = {"audio": ("clip.wav", wav_bytes() if audio is None else audio, "audio/wav")}
    return httpx.post(f"{url}/v1/audio/voices", data=data, files=files, timeout=30)


def vc_prompt(url: str, fake: FakeVLLM, audio: bytes, transcript: str, text: str) -> str:
    """The prompt /v1/audio/vc sends for this clip: what a saved voice of it must prompt too."""
    data = {"reference_text": transcript, "generate_text": text, "stream": "false"}
    resp = httpx.post(f"{url}/v1/audio/vc", data=data, files={"reference_audio": ("c.wav", audio)}, timeout=30)
    assert resp.status_code == 200, resp.text
    return fake.requests[-1].body["prompt"]


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-any", max_retries=0)


def speak_with_sdk(url: str, fake: FakeVLLM, voice: str) -> tuple[bytes, str]:
    audio = sdk(url).audio.speech.create(model="tts-1", voice=voice, input=TEXT, response_format="pcm").content
    return audio, fake.requests[-1].body["prompt"]


def assert_error(resp: httpx.Response, status: int, *, param: str | None = None, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    if param is not None:
        assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    return err


# -- the OpenAI SDK, before and after a restart, on both stores ------------------------------------------


def test_the_openai_sdk_speaks_a_saved_voice_before_and_after_a_restart(
    settings_for: Callable[..., Settings], fake: FakeVLLM, store_url: str
) -> None:
    settings = settings_for(voice_store_url=store_url)
    clip = wav_bytes()
    with serve(settings, parts()) as url:
        saved = save(url, audio=clip)
        assert saved.status_code == 201, saved.text
        meta = saved.json()
        assert meta["id"] == "my-voice" and meta["type"] == "saved" and meta["reference_text"] == TRANSCRIPT
        assert 95 <= meta["reference_tokens"] <= 101  # 2 s at 50 tokens/s
        assert meta["consent"]["given"] == "true" and meta["consent"]["by"] == "Aminah binti Ali"
        assert meta["consent"]["from"] == "127.0.0.1" and meta["consent"]["at"].endswith("Z")
        expected = vc_prompt(url, fake, clip, TRANSCRIPT, TEXT)
        audio, prompt = speak_with_sdk(url, fake, "my-voice")
        # the saved reference tokens, prompted as /v1/audio/vc prompts the same clip
        assert prompt == expected
        assert len(speech_tokens(prompt)) == meta["reference_tokens"]
        assert len(audio) == len(fake.expected_tokens(prompt)) * 960
        ids = [v["id"] for v in httpx.get(f"{url}/v1/audio/voices").json()["voices"]]
        assert ids[-1] == "my-voice" and ids[:3] == ["husein", "idayu", "jenny"]
    with serve(settings, parts()) as url:  # a new process would see the same: the store is all that is kept
        assert httpx.get(f"{url}/v1/audio/voices/my-voice").json() == meta
        audio_again, prompt_again = speak_with_sdk(url, fake, "my-voice")
        assert prompt_again == expected and audio_again == audio
        assert httpx.delete(f"{url}/v1/audio/voices/my-voice").status_code == 204
        with pytest.raises(openai.BadRequestError) as info:
            speak_with_sdk(url, fake, "my-voice")
        assert info.value.body["code"] == "invalid_voice"
    with serve(settings, parts()) as url:  # the delete was stored too
        assert_error(httpx.get(f"{url}/v1/audio/voices/my-voice"), 404, code="voice_not_found")


def test_two_apps_on_one_store_see_each_others_voices(
    settings_for: Callable[..., Settings], fake: FakeVLLM, store_url: str
) -> None:
    settings = settings_for(voice_store_url=store_url)
    with serve(settings, parts()) as a, serve(settings, parts()) as b:
        assert save(a, "agent-a", audio=wav_bytes(freq=300)).status_code == 201
        assert save(b, "agent-b", audio=wav_bytes(freq=500)).status_code == 201
        for url in (a, b):
            saved = [v["id"] for v in httpx.get(f"{url}/v1/audio/voices").json()["voices"] if v.get("type") == "saved"]
            assert saved == ["agent-a", "agent-b"]
        _, from_b = speak_with_sdk(b, fake, "agent-a")
        _, from_a = speak_with_sdk(a, fake, "agent-a")
        assert from_a == from_b and "<|s_" in from_a.split(TEXT)[0]
        assert_error(save(b, "agent-a"), 409, param="name", code="voice_exists")  # taken on the other app
        assert httpx.delete(f"{b}/v1/audio/voices/agent-a").status_code == 204
        resp = httpx.post(f"{a}/v1/audio/speech", json={"input": TEXT, "voice": "agent-a"}, timeout=30)
        assert_error(resp, 400, param="voice", code="invalid_voice")


# -- every other path that names a voice ---------------------------------------------------------------


async def test_our_websocket_and_elevenlabs_voice_id_speak_a_saved_voice(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path
) -> None:
    settings = settings_for(voice_store_url=f"sqlite:///{tmp_path / 'v.db'}")
    clip = wav_bytes()
    with serve(settings, parts()) as url:
        assert save(url, "support.v2", audio=clip).status_code == 201
        expected = vc_prompt(url, fake, clip, TRANSCRIPT, TEXT)
        ws_url = url.replace("http://", "ws://")
        async with websockets.connect(f"{ws_url}/v1/audio/speech/stream") as ws:
            await ws.send(json.dumps({"type": "config", "voice": "support.v2", "response_format": "pcm"}))
            await ws.send(json.dumps({"type": "text", "text": TEXT}))
            await ws.send(json.dumps({"type": "close"}))
            messages = [m async for m in ws]
        events = [json.loads(m) for m in messages if isinstance(m, str)]
        assert events[0]["type"] == "session.started" and events[0]["voice"] == "support.v2"
        assert events[-1]["type"] == "done", events
        assert fake.requests[-1].body["prompt"] == expected
        assert sum(len(m) for m in messages if isinstance(m, bytes)) == len(fake.expected_tokens(expected)) * 960

        query = "model_id=eleven_turbo_v2_5&output_format=pcm_24000"
        eleven = f"{ws_url}/v1/text-to-speech/support.v2/multi-stream-input?{query}"
        async with websockets.connect(eleven, additional_headers={"xi-api-key": "k"}) as ws:
            await ws.send(json.dumps({"text": " ", "context_id": "c1"}))
            await ws.send(json.dumps({"text": TEXT, "context_id": "c1", "flush": True}))
            await ws.send(json.dumps({"close_socket": True}))
            replies = [json.loads(m) async for m in ws]
        assert not [r for r in replies if "error" in r], replies
        audio = b"".join(base64.b64decode(r["audio"]) for r in replies if r.get("audio"))
        assert fake.requests[-1].body["prompt"] == expected
        assert len(audio) == len(fake.expected_tokens(expected)) * 960

        # unknown names keep today's errors: a denied handshake for ElevenLabs, an error event for ours
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(eleven.replace("support.v2", "nobody"), additional_headers={"xi-api-key": "k"}):
                pass
        assert info.value.response.status_code == 400
        assert json.loads(info.value.response.body)["error"]["code"] == "invalid_voice"
        async with websockets.connect(f"{ws_url}/v1/audio/speech/stream") as ws:
            await ws.send(json.dumps({"type": "config", "voice": "nobody"}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["type"] == "error" and error["error"]["code"] == "invalid_voice"


def test_built_in_voices_and_aliases_are_unchanged(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    with serve(settings_for(), parts()) as url:
        _, prompt = speak_with_sdk(url, fake, "alloy")
        assert prompt == speech_prompt("jenny", TEXT)
        _, prompt = speak_with_sdk(url, fake, "idayu")
        assert prompt == speech_prompt("idayu", TEXT)
        err = assert_error(httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "nobody"}), 400)
        assert err["param"] == "voice" and err["code"] == "invalid_voice" and "saved voice" in err["message"]


# -- what is refused --------------------------------------------------------------------------------


@pytest.fixture
def url(settings_for: Callable[..., Settings], tmp_path) -> str:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 'v.db'}"), parts()) as base:
        yield base


@pytest.mark.parametrize("name", ["husein", "Husein", "alloy", "NOVA"])
def test_a_saved_voice_never_shadows_a_built_in_voice_or_alias(url: str, name: str) -> None:
    err = assert_error(save(url, name), 409, param="name", code="voice_name_reserved")
    assert name in err["message"]


def test_a_taken_name_is_a_409_and_the_first_voice_stays(url: str, fake: FakeVLLM) -> None:
    assert save(url, audio=wav_bytes(freq=300)).status_code == 201
    _, before = speak_with_sdk(url, fake, "my-voice")
    assert_error(save(url, audio=wav_bytes(freq=900)), 409, param="name", code="voice_exists")
    _, after = speak_with_sdk(url, fake, "my-voice")
    assert after == before


@pytest.mark.parametrize(
    ("name", "audio", "fields", "param", "code"),
    [
        ("bad name", None, {}, "name", "invalid_value"),
        ("-dash-first", None, {}, "name", "invalid_value"),
        ("x" * 65, None, {}, "name", "invalid_value"),
        ("ok", None, {"consent": "false"}, "consent", "consent_required"),
        ("ok", None, {"consent": ""}, "consent", "consent_required"),
        ("ok", None, {"text": "  "}, "text", "invalid_value"),
        ("ok", None, {"language": "fr"}, "language", "invalid_value"),
        ("ok", b"not audio at all" * 20, {}, "audio", None),
        ("ok", b"", {}, "audio", None),
    ],
)
def test_bad_uploads_are_400s_that_name_the_field(
    url: str, name: str, audio: bytes | None, fields: dict, param: str, code: str | None
) -> None:
    assert_error(save(url, name, audio=audio, **fields), 400, param=param, code=code)
    assert [v for v in httpx.get(f"{url}/v1/audio/voices").json()["voices"] if v.get("type") == "saved"] == []


def test_missing_fields_are_400s(url: str) -> None:
    no_consent = httpx.post(
        f"{url}/v1/audio/voices", data={"name": "a", "text": TRANSCRIPT}, files={"audio": ("c.wav", wav_bytes())}
    )
    assert_error(no_consent, 400, param="consent")
    no_audio = httpx.post(f"{url}/v1/audio/voices", data={"name": "a", "text": TRANSCRIPT, "consent": "yes"})
    assert_error(no_audio, 400, param="audio")


def test_unknown_saved_voices_are_404s(url: str) -> None:
    assert_error(httpx.get(f"{url}/v1/audio/voices/nobody"), 404, param="name", code="voice_not_found")
    assert_error(httpx.delete(f"{url}/v1/audio/voices/nobody"), 404, code="voice_not_found")
    assert_error(httpx.get(f"{url}/v1/audio/voices/husein"), 404)  # a built-in voice is not a saved one
    assert_error(httpx.delete(f"{url}/v1/audio/voices/bad%20name"), 404)


def test_consent_yes_in_any_case_is_accepted_and_recorded(url: str) -> None:
    resp = save(url, "v1", consent="YES", consent_by="")
    assert resp.status_code == 201, resp.text
    consent = {"given": "yes", "by": "", "from": "127.0.0.1", "at": resp.json()["created_at"], "key": "anonymous"}
    assert resp.json()["consent"] == consent  # `key`: the id of the key it was saved under (no API_KEY: anonymous)


def test_the_routes_need_the_api_key(settings_for: Callable[..., Settings], tmp_path) -> None:
    settings = settings_for(api_key="sekret", voice_store_url=f"sqlite:///{tmp_path / 'v.db'}")
    with serve(settings, parts()) as base:
        assert_error(save(base), 401)
        assert_error(httpx.get(f"{base}/v1/audio/voices"), 401)
        assert_error(httpx.delete(f"{base}/v1/audio/voices/my-voice"), 401)
        auth = {"Authorization": "Bearer sekret"}
        data = {"name": "my-voice", "text": TRANSCRIPT, "consent": "true"}
        ok = httpx.post(f"{base}/v1/audio/voices", data=data, files={"audio": ("c.wav", wav_bytes())}, headers=auth)
        assert ok.status_code == 201, ok.text
        assert httpx.get(f"{base}/v1/audio/voices/my-voice", headers=auth).status_code == 200


def test_a_clone_prompt_is_what_voice_clone_prompt_spells(url: str, fake: FakeVLLM) -> None:
    """The saved transcript is the normalized one; the stored tokens are the clip's, unchanged."""
    meta = save(url, text="  Saya   suka makan nasi lemak pada waktu pagi. ").json()
    assert meta["reference_text"] == TRANSCRIPT  # PassthroughNormalizer collapses the spaces
    _, prompt = speak_with_sdk(url, fake, "my-voice")
    tokens = speech_tokens(prompt.split(TEXT)[0])
    assert prompt == voice_clone_prompt(TRANSCRIPT, tokens, TEXT)


def test_the_openapi_document_describes_the_routes(url: str) -> None:
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert set(paths["/v1/audio/voices"]) == {"get", "post"}
    assert set(paths["/v1/audio/voices/{name}"]) == {"get", "delete"}
    post = paths["/v1/audio/voices"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["audio", "name", "text", "consent"]
    assert form["properties"]["consent"]["enum"] == ["true", "yes"]
    assert {"201", "400", "409", "413", "429"} <= set(post["responses"])
    assert "404" in paths["/v1/audio/voices/{name}"]["delete"]["responses"]
    # a 405 names every method of the path
    assert httpx.request("OPTIONS", f"{url}/v1/audio/voices").headers["allow"] == "GET, POST"
    assert httpx.put(f"{url}/v1/audio/voices/x").headers["allow"] == "DELETE, GET"
