"""Random and hostile XML as SSML (issue 33), property-based (hypothesis): the parser raises nothing but `SsmlError`
and its documents cut into valid segments; through the HTTP route no input is a 500, every refusal is a 400 in the
OpenAI shape, and no accepted input makes a backend request over the input limit or more silence than its bound."""

from __future__ import annotations

import httpx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.prompts import speech_prompt
from app.text.document import readings
from app.text.segmenter import iter_document_segments
from app.text.ssml import SsmlError, SsmlLimits, parse_ssml
from app.text.ssml_stream import SsmlStream
from tools.fake_vllm import FakeVLLM

NAMES = ["break", "say-as", "sub", "lang", "p", "s", "prosody", "emphasis", "mark", "phoneme", "audio", "amazon:effect",
         "voice", "speak", "w", "x-unknown"]  # fmt: skip
ATTRS = {
    "time": ["1s", "500ms", "abc", "99s", "-1s", ".5s", "1e9s", "10s", ""],
    "strength": ["none", "x-weak", "weak", "medium", "strong", "x-strong", "loud"],
    "interpret-as": ["characters", "spell-out", "digits", "telephone", "cardinal", "ordinal", "date", "time",
                     "currency", "nonsense"],  # fmt: skip
    "format": ["mdy", "dmy", "ymd", "md", "y", "zzz", ""],
    "alias": ["World Wide Web", "", "<&>", "a" * 50],
    "xml:lang": ["en-US", "ms-MY", "zh-CN", "cmn", "fr", ""],
    "rate": ["slow", "150%"],
}
HOSTILE = [
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><speak>&lol2;</speak>',
    '<?xml version="1.0"?><!DOCTYPE speak SYSTEM "http://127.0.0.1:9/x.dtd"><speak>x</speak>',
    '<!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak>&x;</speak>',
    '<speak><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/></speak>',
    "<speak>" + "<s>" * 200 + "deep" + "</s>" * 200 + "</speak>",
    "<speak>" + "<mark/>" * 3000 + "</speak>",
    '<speak><break time="10s"/>' * 30 + "</speak>",
    "<speak><![CDATA[a < b & c]]> and &amp; &lt; &#65; &#x1F600; &#0;</speak>",
    "<speak><?php echo 1; ?><!-- comment --> hi</speak>",
    "<speak>unclosed <sub alias='x'>y",
    "<speak></speak>",
    "<speak>   </speak>",
    '<speak><break time="1s"/></speak>',
    "<speak>\u202eevil\u202c text</speak>",
]
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",), max_codepoint=0x2FFF), max_size=12)


def _element(name: str, attrs: dict[str, str], children: list[str]) -> str:
    attrs_text = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"<{name}{attrs_text}/>" if not children else f"<{name}{attrs_text}>{''.join(children)}</{name}>"


ESCAPED = TEXT.map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;"))
ELEMENTS = st.recursive(
    ESCAPED,
    lambda children: st.builds(
        _element,
        st.sampled_from(NAMES),
        st.dictionaries(st.sampled_from(sorted(ATTRS)), st.sampled_from(sum(ATTRS.values(), [])), max_size=2),
        st.lists(children, max_size=4),
    ),
    max_leaves=20,
)
DOCUMENTS = st.one_of(
    st.lists(ELEMENTS, max_size=5).map(lambda parts: "<speak>" + "".join(parts) + "</speak>"),
    st.builds(lambda doc, cut: doc[:cut], st.lists(ELEMENTS, min_size=1, max_size=3).map("".join), st.integers(0, 80)),
    st.sampled_from(HOSTILE),
    TEXT,
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_the_parser_raises_only_ssml_errors_and_cuts_valid_segments(text: str) -> None:
    try:
        doc = parse_ssml(text, SsmlLimits(max_chars=4096))
    except SsmlError:
        return
    for seg in iter_document_segments(doc.document, max_chars=60, first_max_chars=30):
        assert all(0 <= o < len(text) for o in seg.offsets)
        for reading in readings(seg):
            assert all(0 <= a <= b <= len(text) for a, b in reading.text.spans)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=DOCUMENTS)
def test_no_input_is_a_500_or_over_its_limits(app_url: str, fake: FakeVLLM, text: str) -> None:
    before = len(fake.requests)
    body = {"input": text or " ", "input_format": "ssml", "voice": "jenny", "response_format": "pcm"}
    resp = httpx.post(f"{app_url}/v1/audio/speech", json=body, timeout=60)
    assert resp.status_code in (200, 400), resp.text[:300]
    if resp.status_code == 400:
        error = resp.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
        return
    prompts = [r.prompt for r in fake.requests[before:]]
    assert all(len(p) <= len(speech_prompt("jenny", "")) + 4096 for p in prompts)
    speech = sum(len(fake.expected_tokens(p)) for p in prompts) * 480
    silence = len(np.frombuffer(resp.content, np.int16)) - speech
    assert 0 <= silence <= SsmlLimits().max_total_break_s * 24_000


def _pieces(text: str, cuts: list[int]) -> list[tuple[str, int]] | None:
    stream = SsmlStream(max_chars=4096)
    out, at = [], 0
    try:
        for cut in [*sorted(cuts), len(text)]:
            out += stream.push(text[at:cut])
            at = max(at, cut)
        out += stream.end()
    except SsmlError:
        return None
    merged: list[tuple[str, int]] = []  # text pieces joined: how text is split does not matter
    for p in out:
        if merged and p.kind == merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + p.size)
        else:
            merged.append((p.kind, p.size))
    return merged


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, st.lists(st.integers(0, 200), max_size=8))
def test_streamed_ssml_is_cut_the_same_however_it_arrives(text: str, cuts: list[int]) -> None:
    whole = _pieces(text, [])
    if whole is None:
        return
    assert sum(size for _, size in whole) == len(text)
    split = _pieces(text, [c for c in cuts if c <= len(text)])
    assert split == whole
