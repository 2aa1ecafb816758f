"""What existing clients expect: OpenAI voice names (aliases), the original service's headers, CORS."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from app.main import Components
from app.prompts import speech_prompt
from app.settings import DEFAULT_VOICE_ALIASES, Settings, SettingsError, load_settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

TEXT = "Selamat pagi, the meeting is at three."
ORIGIN = "http://playground.example"


def parts() -> Components:
    return Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())


# -- voice aliases --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", sorted(DEFAULT_VOICE_ALIASES))
def test_every_openai_voice_name_speaks_with_its_mapped_voice(app_url: str, fake: FakeVLLM, alias: str) -> None:
    resp = httpx.post(f"{app_url}/v1/audio/speech", json={"input": TEXT, "voice": alias}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert fake.requests[-1].body["prompt"] == speech_prompt(DEFAULT_VOICE_ALIASES[alias], TEXT)
    n_tokens = len(fake.expected_tokens(speech_prompt(DEFAULT_VOICE_ALIASES[alias], TEXT)))
    assert len(resp.content) == n_tokens * 960


def test_voices_lists_the_aliases_with_their_voice(app_url: str) -> None:
    voices = httpx.get(f"{app_url}/v1/audio/voices").json()["voices"]
    aliases = {v["id"]: v["alias_of"] for v in voices if "alias_of" in v}
    assert aliases == DEFAULT_VOICE_ALIASES
    assert all(v["name"] == v["id"] for v in voices)


def test_custom_aliases_and_unknown_names(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    with serve(settings_for(voice_aliases="narrator=idayu"), parts()) as url:
        ok = httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "narrator"}, timeout=30)
        assert ok.status_code == 200
        assert fake.requests[-1].body["prompt"] == speech_prompt("idayu", TEXT)
        bad = httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT, "voice": "alloy"}, timeout=30)
        assert bad.status_code == 400
        err = bad.json()["error"]
        assert err["param"] == "voice" and err["code"] == "invalid_voice"
        assert "narrator" in err["message"] and "husein" in err["message"]
        ids = [v["id"] for v in httpx.get(f"{url}/v1/audio/voices").json()["voices"]]
        assert ids == ["husein", "idayu", "jenny", "narrator"]


def test_alias_settings_parse_and_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("VOICE_ALIASES", " alloy = jenny , echo=husein ")
    assert load_settings(_env_file=None).voice_aliases == {"alloy": "jenny", "echo": "husein"}
    monkeypatch.setenv("VOICE_ALIASES", "")
    assert load_settings(_env_file=None).voice_aliases == {}
    for bad, words in (("alloy", "alias=voice"), ("alloy=nobody", "not in SPEAKERS"), ("jenny=husein", "already")):
        monkeypatch.setenv("VOICE_ALIASES", bad)
        with pytest.raises(SettingsError, match=words):
            load_settings(_env_file=None)
    monkeypatch.delenv("VOICE_ALIASES")
    # the default mapping follows SPEAKERS: names that left point at the default speaker
    monkeypatch.setenv("SPEAKERS", "anna,husein")
    monkeypatch.setenv("DEFAULT_SPEAKER", "anna")
    s = load_settings(_env_file=None)
    assert s.voice_aliases["onyx"] == "husein" and s.voice_aliases["nova"] == "anna"
    g = s.generation
    assert g.resolve_voice("nova") == "anna" and g.resolve_voice("anna") == "anna" and g.resolve_voice("x") is None


# -- the original service's headers -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_pcm_responses_carry_the_original_headers(app_url: str, stream: bool) -> None:
    body = {"input": TEXT, "voice": "husein", "response_format": "pcm", "stream": stream}
    resp = httpx.post(f"{app_url}/v1/audio/speech", json=body, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["X-Audio-Sample-Rate"] == "24000"
    assert resp.headers["X-Audio-Channels"] == "1"
    assert resp.headers["X-Audio-Bit-Depth"] == "16"
    wav = httpx.post(f"{app_url}/v1/audio/speech", json=body | {"response_format": "wav"}, timeout=30)
    assert "x-audio-sample-rate" not in wav.headers  # a WAV says it in its own header


# -- CORS -------------------------------------------------------------------------------------------------


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{url}/v1/audio/speech",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-lang",
        },
    )


def test_no_cors_by_default(app_url: str) -> None:
    resp = preflight(app_url, ORIGIN)
    assert "access-control-allow-origin" not in resp.headers
    speech = httpx.post(f"{app_url}/v1/audio/speech", json={"input": TEXT}, headers={"Origin": ORIGIN}, timeout=30)
    assert speech.status_code == 200 and "access-control-allow-origin" not in speech.headers


def test_cors_allows_the_configured_origins_only(settings_for: Callable[..., Settings]) -> None:
    with serve(settings_for(cors_origins=f"{ORIGIN}/, http://other.example", api_key="k"), parts()) as url:
        ok = preflight(url, ORIGIN)
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        allowed = ok.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "x-stainless-lang" in allowed
        assert "POST" in ok.headers["access-control-allow-methods"]

        denied = preflight(url, "http://evil.example")
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers

        body = {"input": TEXT, "response_format": "pcm"}
        speech = httpx.post(
            f"{url}/v1/audio/speech",
            json=body,
            headers={"Origin": ORIGIN, "Authorization": "Bearer k"},
            timeout=30,
        )
        assert speech.status_code == 200
        assert speech.headers["access-control-allow-origin"] == ORIGIN
        exposed = speech.headers["access-control-expose-headers"].lower()
        assert "x-audio-sample-rate" in exposed and "x-request-id" in exposed
        # errors carry the header too, so the page can read the API's message
        unauthorised = httpx.post(f"{url}/v1/audio/speech", json=body, headers={"Origin": ORIGIN}, timeout=30)
        assert unauthorised.status_code == 401
        assert unauthorised.headers["access-control-allow-origin"] == ORIGIN
