"""Schemathesis hooks for `test_openapi_schemathesis.py` (loaded through `SCHEMATHESIS_HOOKS`).

They only touch *positive* cases (requests the document says are valid), and only where a JSON schema cannot
say what the service needs: a reference clip that is real audio (`/v1/audio/vc`, `POST /v1/audio/voices`) and a PLS lexicon that is one (`add-from-file`), the rules between two fields
(`playback_overlap_speed` < `playback_speed`; in the `/v1/audio/vc` form, the rates and encodings each format
carries: both stated in the fields' descriptions), and text with something to speak (text made only of `<|...|>` markers is a documented 400 that no pattern can express), and
no pronunciation dictionary in a speech request, while a dictionary route names one that exists (which ids exist is
the store's, not the schema's).
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


DICTIONARY_PATH = "/v1/pronunciation-dictionaries/{dictionary_id}"


def _name_a_dictionary(case: schemathesis.Case) -> None:
    """A dictionary that exists for the case to name (one made now: a case may delete it), as a client names only
    the ids it was given; a random id is a documented 404, seen in the negative and the fuzzed cases."""
    from tests.service.test_openapi_schemathesis import KEY

    base = case.operation.schema.get_base_url().rstrip("/")
    rules = [{"type": "alias", "string_to_replace": "KL", "alias": "Kuala Lumpur"}]
    made = httpx.post(f"{base}/v1/pronunciation-dictionaries/add-from-rules", json={"name": "hook", "rules": rules},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=30)  # fmt: skip
    made.raise_for_status()
    made = made.json()
    case.path_parameters["dictionary_id"] = made["id"]
    if "version_id" in case.path_parameters:
        case.path_parameters["version_id"] = made["version_id"]


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if case.operation.path.startswith(DICTIONARY_PATH):
        _name_a_dictionary(case)
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
    if body.get("pronunciation_dictionary_locators") is not None:  # ids the store has not: a documented 400
        del body["pronunciation_dictionary_locators"]
    for name in ("input", "reference_text", "generate_text", "text"):
        text = body.get(name)
        if isinstance(text, str) and text.strip() and not strip_control_tokens(text):
            body[name] = text + " a"  # still schema-valid (the length limits leave room), now speakable
    return case
