"""The OpenAPI document says what the service does, strict request types, and the small hardening of issue 13:
docs and metrics behind the API key, `/ready` without the backend URL, unknown fields logged, a capped
`DEBUG_AUDIO`. The whole document is checked against the running service by `test_openapi_schemathesis.py`.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
import soundfile as sf

from app.audio.registry import CONTENT_TYPES
from app.main import Components, create_app
from app.service.debug_audio import DebugAudioWriter
from app.service.requests import NOT_BLANK
from app.settings import Settings
from tools.harness import LocalCodec, PassthroughNormalizer, free_port, serve

TEXT = "Hello there, how are you today?"


def parts() -> Components:
    return Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def assert_400(resp: httpx.Response, param: str) -> None:
    assert resp.status_code == 400, resp.text[:300]
    assert resp.json()["error"]["param"] == param, resp.json()


# -- the document ------------------------------------------------------------------------------------------


def document(**settings: object) -> dict:
    return create_app(Settings(_env_file=None, **settings)).openapi()


def test_document_has_no_422_and_documents_the_error_envelope() -> None:
    doc = document()
    statuses = {s for methods in doc["paths"].values() for op in methods.values() for s in op["responses"]}
    assert "422" not in statuses
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    speech = doc["paths"]["/v1/audio/speech"]["post"]["responses"]
    for status in ("400", "429", "5XX"):
        schema = speech[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, status


def test_audio_operations_document_every_audio_type_and_sse() -> None:
    doc = document()
    for path in ("/v1/audio/speech", "/v1/audio/vc"):
        content = doc["paths"][path]["post"]["responses"]["200"]["content"]
        timed = {"application/json"} if path == "/v1/audio/speech" else set()  # with `timestamps`
        assert set(content) == {*CONTENT_TYPES.values(), "text/event-stream", *timed}, path
        if timed:
            assert content["application/json"]["schema"]["required"][:2] == ["audio", "content_type"]
        else:
            assert "application/json" not in content
    assert set(CONTENT_TYPES.values()) == {"audio/pcm", "audio/wav", "audio/mpeg", "audio/ogg", "audio/aac", "audio/flac"}


def test_voice_clone_documents_its_multipart_body() -> None:
    body = document()["paths"]["/v1/audio/vc"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert body["required"] is True
    assert {"reference_audio", "reference_text", "generate_text"} <= set(schema["required"])
    assert schema["properties"]["reference_audio"]["format"] == "binary"
    assert schema["properties"]["temperature"]["type"] == "number"  # no null: a form cannot send one
    assert schema["properties"]["stream"]["type"] == "boolean"


def test_rates_and_encodings_in_the_schema_are_what_the_service_accepts() -> None:
    """Every response_format x sample_rate x encoding: the schema (fields and `if`/`then` per format) says valid
    exactly when the request model takes it."""
    import jsonschema
    from pydantic import ValidationError

    from app.audio.registry import ENCODING_NAMES, OPENAI_NAMES, RATES
    from app.service.requests import SpeechRequest

    doc = document()
    speech = doc["components"]["schemas"]["SpeechRequest"]
    form = doc["paths"]["/v1/audio/vc"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    fields = ("response_format", "sample_rate", "encoding")
    assert [o.get("enum") for o in speech["properties"]["sample_rate"]["anyOf"]] == [list(RATES), None]
    assert form["properties"]["sample_rate"]["enum"] == list(RATES)
    assert "allOf" not in form  # the form states the per-format rules in the descriptions (see _voice_clone_form)
    assert "opus takes 8000, 16000, 24000, 48000" in form["properties"]["sample_rate"]["description"]
    for schema in (speech,):
        subset = {"type": "object", "properties": {k: schema["properties"][k] for k in fields}, "allOf": schema["allOf"]}
        for fmt in OPENAI_NAMES:
            for rate in [*RATES, 11025, None]:
                for encoding in [*ENCODING_NAMES, "ulaw", None]:
                    body = {"response_format": fmt, "sample_rate": rate, "encoding": encoding}
                    try:
                        SpeechRequest(input="x", **body)
                        accepted = True
                    except ValidationError:
                        accepted = False
                    assert jsonschema.Draft202012Validator(subset).is_valid(body) == accepted, body


def test_document_carries_the_settings_limits_and_voices() -> None:
    doc = document(max_input_chars=123, speakers="anna,ben", default_speaker="ben")
    speech = doc["components"]["schemas"]["SpeechRequest"]["properties"]
    assert speech["input"]["minLength"] == 1 and speech["input"]["maxLength"] == 123
    # "" means the default speaker, as does null or leaving the field out
    assert [o["enum"] for o in speech["voice"]["anyOf"] if o.get("type") == "string"] == [["anna", "ben", ""]]
    assert doc["components"]["schemas"]["VoiceRef"]["properties"]["id"]["enum"] == ["anna", "ben", ""]
    form = doc["paths"]["/v1/audio/vc"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["generate_text"]["maxLength"] == 123


def test_not_blank_pattern_means_what_cleanup_and_strip_mean() -> None:
    import jsonschema_rs

    from app.service.text_input import without_invisible

    schema = jsonschema_rs.validator_for({"type": "string", **NOT_BLANK})  # the validator schemathesis uses
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    samples = [*spaces, "\ufeff", "\x1b", "\u200b", "a", " a ", "\x1f\x1c", "\u3000x", "\x00", "\x00\u202e ", "\x07b"]
    assert len(spaces) == 29
    for text in samples:  # valid exactly when something is left once control and bidi characters are removed
        assert schema.is_valid(text) == bool(without_invisible(text).strip()), repr(text)
    assert not schema.is_valid("\x00") and schema.is_valid("\x07b")


def test_bearer_scheme_and_401s_only_when_an_api_key_is_set() -> None:
    open_doc = document()
    assert "securitySchemes" not in open_doc["components"]
    assert all("401" not in op["responses"] for m in open_doc["paths"].values() for op in m.values())
    doc = document(api_key="k", api_key_protects_metrics=False)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/audio/speech"]["post"]["security"] == [{"bearer": []}]
    assert "401" in doc["paths"]["/v1/models"]["get"]["responses"]
    for path in ("/health", "/ready", "/metrics"):
        assert "security" not in doc["paths"][path]["get"], path
    assert "security" in document(api_key="k")["paths"]["/metrics"]["get"]


# -- strict request types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", True),
        ("normalize_malaysian", 0),
        ("stream", "false"),
        ("seed", "3"),
        ("max_tokens", 2.5),
        ("speed", "1.5"),
        ("input", ""),
        ("input", "   "),
    ],
)
def test_json_types_are_not_coerced(app_url: str, field: str, value: object) -> None:
    body = {"input": TEXT, field: value}
    assert_400(httpx.post(f"{app_url}/v1/audio/speech", json=body, timeout=30), field)


def test_integral_numbers_are_integers(app_url: str) -> None:
    body = {"input": TEXT, "seed": 7.0, "max_tokens": 40.0, "temperature": 1, "stream": False}
    resp = httpx.post(f"{app_url}/v1/audio/speech", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    assert len(resp.content) == 40 * 480 * 2


def test_normalize_is_strict_too(app_url: str) -> None:
    resp = httpx.post(f"{app_url}/v1/audio/normalize", json={"input": "x", "normalize_malaysian": 1})
    assert_400(resp, "normalize_malaysian")


def post_vc(url: str, **fields: str) -> httpx.Response:
    data = {"reference_text": "A reference.", "generate_text": "Say this."} | fields
    files = {"reference_audio": ("ref.wav", wav_bytes(), "audio/wav")}
    return httpx.post(f"{url}/v1/audio/vc", data=data, files=files, timeout=30)


def test_voice_clone_form_values_read_as_their_types(app_url: str) -> None:
    resp = post_vc(app_url, stream="False", max_tokens="30", temperature="0.5", seed="4", normalize_malaysian="true")
    assert resp.status_code == 200, resp.text
    assert "content-length" in resp.headers and len(resp.content) == 30 * 480 * 2  # stream=false: one body
    for field, value in (("temperature", "true"), ("stream", "1"), ("max_tokens", "2.5"), ("seed", "x")):
        assert_400(post_vc(app_url, **{field: value}), field)


# -- unknown fields, /ready ----------------------------------------------------------------------------------


def test_unknown_fields_are_accepted_and_logged(app_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.api.routes")
    body = {"input": TEXT, "stream": False, "max_tokens": 10, "volume": 3, "languge": "ms"}
    assert httpx.post(f"{app_url}/v1/audio/speech", json=body, timeout=30).status_code == 200
    assert post_vc(app_url, stream="false", max_tokens="10", colour="blue").status_code == 200
    messages = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert any("'languge'" in m and "'volume'" in m and "/v1/audio/speech" in m for m in messages), messages
    assert any("'colour'" in m and "/v1/audio/vc" in m for m in messages), messages


def test_ready_does_not_show_the_backend_url(
    settings_for: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    backend = f"http://127.0.0.1:{free_port()}"
    with serve(settings_for(tts_api=backend), parts()) as url:
        caplog.set_level(logging.WARNING, logger="app.api.routes")
        resp = httpx.get(f"{url}/ready")
    assert resp.status_code == 503
    assert "127.0.0.1" not in resp.text and backend not in resp.text
    assert any(backend in r.getMessage() for r in caplog.records)  # ... but the log names it


# -- docs and metrics behind the API key -----------------------------------------------------------------------


@pytest.mark.parametrize("protect", [True, False])
def test_docs_and_metrics_follow_the_api_key_settings(settings_for: Callable[..., Settings], protect: bool) -> None:
    settings = settings_for(api_key="sekret", api_key_protects_docs=protect, api_key_protects_metrics=protect)
    auth = {"Authorization": "Bearer sekret"}
    with serve(settings, parts()) as url:
        for path in ("/openapi.json", "/docs", "/metrics"):
            anonymous = httpx.get(f"{url}{path}")
            assert anonymous.status_code == (401 if protect else 200), path
            if protect:
                assert anonymous.json()["error"]["code"] == "invalid_api_key"
            assert httpx.get(f"{url}{path}", headers=auth).status_code == 200, path
        assert httpx.get(f"{url}/openapi.json", headers=auth).json()["info"]["title"] == "Streamable TTS API"
        for path in ("/health", "/ready"):
            assert httpx.get(f"{url}{path}").status_code == 200, path


def test_docs_and_metrics_are_open_without_an_api_key(app_url: str) -> None:
    for path in ("/openapi.json", "/docs", "/metrics"):
        assert httpx.get(f"{app_url}{path}").status_code == 200, path
    assert "swagger" in httpx.get(f"{app_url}/docs").text.lower()


# -- DEBUG_AUDIO cap ---------------------------------------------------------------------------------------------


def test_debug_audio_keeps_the_newest_files(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    old = tmp_path / "old_0000.wav"
    sf.write(old, np.zeros(480, np.float32), 24000)
    os.utime(old, (time.time() - 60, time.time() - 60))
    writer = DebugAudioWriter(str(tmp_path), max_files=3)
    caplog.set_level(logging.WARNING, logger="app.service.debug_audio")
    for i in range(5):
        writer.write("req", i, np.full(480, 0.1, np.float32), 24000)
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["req_0002.wav", "req_0003.wav", "req_0004.wav"]
    assert len([r for r in caplog.records if "DEBUG_AUDIO_MAX_FILES=3" in r.getMessage()]) == 1


def test_debug_audio_cap_holds_for_a_served_request(settings_for: Callable[..., Settings], tmp_path) -> None:
    settings = settings_for(
        debug_audio=True, debug_audio_dir=str(tmp_path), debug_audio_max_files=2, max_chunk_seconds=0  # regular windows
    )
    with serve(settings, parts()) as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json={"input": TEXT, "stream": False}, timeout=30)
    assert resp.status_code == 200
    rid = resp.headers["x-request-id"]
    names = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert len(names) == 2 and all(n.startswith(rid) for n in names)
    assert names[-1] > f"{rid}_0002.wav"  # 120 tokens in 0.5 s windows: the newest windows were kept


def test_pronunciation_dictionary_routes_are_documented() -> None:
    """ElevenLabs' dictionary API (issue 33), each call an operation; the vc form takes the locators as JSON text."""
    doc = document()
    ops = {op["operationId"] for path, methods in doc["paths"].items() if "pronunciation" in path for op in methods.values()}
    assert ops == {
        "add_pronunciation_dictionary_from_rules", "add_pronunciation_dictionary_from_file",
        "list_pronunciation_dictionaries", "get_pronunciation_dictionary", "update_pronunciation_dictionary",
        "delete_pronunciation_dictionary", "add_pronunciation_rules", "set_pronunciation_rules",
        "remove_pronunciation_rules", "download_pronunciation_dictionary",
    }  # fmt: skip
    speech = doc["components"]["schemas"]["SpeechRequest"]["properties"]["pronunciation_dictionary_locators"]
    assert speech["anyOf"][0]["maxItems"] == 3
    form = doc["paths"]["/v1/audio/vc"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["pronunciation_dictionary_locators"]["type"] == "string" and "$defs" not in form
