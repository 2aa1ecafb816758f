"""The API key parser and check (app/api/auth.py) and validation errors as 400s (app/api/errors.py), alone."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.api.auth import bearer, header_key, key_ok, message_key
from app.api.errors import describe, invalid_request
from app.service.requests import StreamConfig, VoiceCloneRequest


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("Bearer k1", "k1"),
        ("bearer  k1 ", "k1"),
        ("BEARER k1", "k1"),
        ("Bearer ", None),
        ("Bearer", None),
        ("Basic dXNlcg==", None),
        ("Bearerk1", None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_bearer(value: object, key: str | None) -> None:
    assert bearer(value) == key


def test_header_key_prefers_authorization_then_the_named_headers() -> None:
    assert header_key({"authorization": "Bearer a", "xi-api-key": "b"}, "xi-api-key") == "a"
    assert header_key({"authorization": "Basic x", "xi-api-key": " b "}, "xi-api-key") == "b"
    assert header_key({"xi-api-key": "b"}) is None  # only the headers named count
    assert header_key({}, "xi-api-key") is None


def test_message_key() -> None:
    assert message_key({"xi_api_key": "a", "authorization": "Bearer b"}, "xi_api_key") == "a"
    assert message_key({"xi_api_key": "", "authorization": "Bearer b"}, "xi_api_key") == "b"
    assert message_key({"xi_api_key": 5}, "xi_api_key") is None
    assert message_key({"text": "hi"}, "xi_api_key") is None


def test_key_ok() -> None:
    assert key_ok("", None) and key_ok("", "anything")  # no key configured: everyone
    assert key_ok("k1", "k1")
    assert not key_ok("k1", None) and not key_ok("k1", "") and not key_ok("k1", "k2") and not key_ok("k1", "k1 ")
    assert not key_ok("k1", "kéy") and key_ok("kéy", "kéy")  # any text compares, never an error


def test_invalid_request_names_the_first_field_and_every_error() -> None:
    with pytest.raises(ValidationError) as info:
        StreamConfig.model_validate({"type": "config", "speed": 9, "colour": "red"})
    err = invalid_request(info.value)
    info = describe(err)
    assert info.status == 400 and info.type == "invalid_request_error" and info.code == "invalid_value"
    assert err.param == "speed"
    assert err.message.startswith("speed: ") and "; colour: " in err.message


def test_invalid_request_with_a_prefix() -> None:
    with pytest.raises(ValidationError) as info:
        VoiceCloneRequest.model_validate({"reference_text": "hi"})
    err = invalid_request(info.value, prefix="form.")
    assert err.param == "form.generate_text" and err.message.startswith("form.generate_text: ")
