"""Schemathesis hooks for `test_openapi_schemathesis.py` (loaded through `SCHEMATHESIS_HOOKS`).

They only touch *positive* cases (requests the document says are valid), and only where a JSON schema cannot
say what the service needs: a reference clip that is real audio (`/v1/audio/vc`, `POST /v1/audio/voices`) and a PLS lexicon that is one (`add-from-file`), the rules between two fields
(`playback_overlap_speed` < `playback_speed`; in the `/v1/audio/vc` form, the rates and encodings each format
carries: both stated in the fields' descriptions), and text with something to speak (text made only of `<|...|>` markers is a documented 400 that no pattern can express), and
no pronunciation dictionary in a speech request, while a route of one dictionary or API key names one that exists
(which ids exist is the store's, not the schema's).
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import schemathesis
import soundfile as sf

from app.audio.registry import FORMATS
from app.prompts import strip_control_tokens


def _reference_clip() -> bytes:
    t = np.arange(16_000) / 16_000
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000, format="WAV")
    return buffer.getvalue()


CLIP = _reference_clip()
PLS = (
    b'<?xml version="1.0" encoding="UTF-8"?><lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"'
    b' alphabet="ipa" xml:lang="en-US"><lexeme><grapheme>KL</grapheme><alias>Kuala Lumpur</alias></lexeme></lexicon>'
)


# A route of one thing (a dictionary, an API key) is given one that exists, made for the case (a case may delete or
# revoke it), as a client names only the ids it was given; a random id is a documented 404, seen in the negative and
# the fuzzed cases. What makes one: (path, body) of the call, {path parameter: field of its answer}.
MADE_FOR = {
    "/v1/pronunciation-dictionaries/{dictionary_id}": (
        ("/v1/pronunciation-dictionaries/add-from-rules",
         {"name": "hook", "rules": [{"type": "alias", "string_to_replace": "KL", "alias": "Kuala Lumpur"}]}),
        {"dictionary_id": "id", "version_id": "version_id"},
    ),
    "/v1/admin/keys/{key_id}": (("/v1/admin/keys", {"tenant": "hook"}), {"key_id": "id"}),
}  # fmt: skip


def _name_one_that_exists(case: schemathesis.Case, prefix: str) -> None:
    from tests.service.test_openapi_schemathesis import KEY

    (path, body), params = MADE_FOR[prefix]
    base = case.operation.schema.get_base_url().rstrip("/")
    made = httpx.post(f"{base}{path}", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    made.raise_for_status()
    for name, field in params.items():
        if name in case.path_parameters:
            case.path_parameters[name] = made.json()[field]


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    for prefix in MADE_FOR:
        if case.operation.path.startswith(prefix):
            _name_one_that_exists(case, prefix)
    if not isinstance(case.body, dict):
        return case
    body = case.body
    speed, overlap = body.get("playback_speed"), body.get("playback_overlap_speed")
    if isinstance(speed, int | float) and isinstance(overlap, int | float) and overlap >= speed:
        body["playback_overlap_speed"] = speed / 2
    if case.operation.path == "/v1/audio/voices" and case.operation.method.upper() == "POST":
        body["audio"] = CLIP
    if case.operation.path == "/v1/pronunciation-dictionaries/add-from-file":
        body["file"] = PLS  # a schema cannot say "a PLS lexicon"
    if case.operation.path == "/v1/audio/vc":
        body["reference_audio"] = CLIP
        fmt = FORMATS.get(body.get("response_format", "pcm"))
        if fmt is not None and body.get("sample_rate") not in (None, *fmt.rates):
            del body["sample_rate"]
        if fmt is not None and body.get("encoding") not in (None, *(e.name for e in fmt.encodings)):
            del body["encoding"]
    if body.get("input_format") == "ssml":  # a schema cannot say "well-formed SSML": random text is a 400
        body["input_format"] = "text"
    if body.get("pronunciation_dictionary_locators") is not None:  # ids the store has not: a documented 400
        del body["pronunciation_dictionary_locators"]
    for name in ("input", "reference_text", "generate_text", "text"):
        text = body.get(name)
        if isinstance(text, str) and text.strip() and not strip_control_tokens(text):
            body[name] = text + " a"  # still schema-valid (the length limits leave room), now speakable
    return case
