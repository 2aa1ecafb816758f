"""SSML in over HTTP (issue 33, item 2), with the real normalizer and the fake vLLM: documents in the style of the
Polly and Google docs' examples, each checked for the prompts the backend received, the silence inserted (exactly
round(rate * seconds) zero samples, where the break is) and the timings. Plain text that holds `<` stays text."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest

from app.main import Components
from app.prompts import speech_prompt
from app.settings import Settings
from app.text.normalizer import Normalizer
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, serve

VOICE = "jenny"


@pytest.fixture(scope="module")
def real_url(module_settings_for: Callable[..., Settings]) -> Iterator[str]:
    settings = module_settings_for(stream_context=False)
    with serve(settings, Components(codec=LocalCodec(), normalizer=Normalizer())) as url:
        yield url


@pytest.fixture
def url(real_url: str, fake: FakeVLLM) -> str:
    return real_url


# (document, what each segment's prompt says, the breaks in seconds after which segment, X-SSML-Ignored)
SUITE = [
    pytest.param(  # Polly's <break> example
        '<speak>Mary had a little lamb <break time="3s"/>Whose fleece was white as snow.</speak>',
        ["Mary had a little lamb", "Whose fleece was white as snow."], {1: 3.0}, "", id="polly-break",
    ),
    pytest.param(  # Google's <break> strengths
        '<speak>Step 1, take a deep breath. <break strength="strong"/> Step 2, exhale.'
        '<break time="200ms"/> Step 3, take a deep breath again.</speak>',
        ["Step one, take a deep breath.", "Step two, exhale.", "Step three, take a deep breath again."],
        {1: 1.0, 2: 0.2}, "", id="google-break-strength",
    ),
    pytest.param(  # Polly's <sub>
        '<speak>My favorite chemical element is <sub alias="mercury">Hg</sub>, because it looks so shiny.</speak>',
        ["My favorite chemical element is mercury, because it looks so shiny."], {}, "", id="polly-sub",
    ),
    pytest.param(  # Google's <say-as> cardinal, ordinal, characters
        '<speak xml:lang="en-US"><s>It costs <say-as interpret-as="cardinal">12345</say-as> today.</s>'
        '<s>You came <say-as interpret-as="ordinal">1</say-as>.</s>'
        '<s>Spell <say-as interpret-as="characters">can</say-as>.</s></speak>',
        ["It costs twelve thousand three hundred and forty five today.", "You came first.", "Spell c a n."],
        {}, "", id="google-say-as",
    ),
    pytest.param(  # Polly's <say-as> date and digits; <p> boundaries; a Malay <lang>
        '<speak><p>Born on <say-as interpret-as="date" format="mdy">12/03/2024</say-as>.</p>'
        '<p xml:lang="en-US">Code <say-as interpret-as="digits">4021</say-as>.</p>'
        '<p><lang xml:lang="ms-MY">Harga RM5.50 sahaja.</lang></p></speak>',
        ["Born on the third of December twenty twenty four.", "Code four zero two one.",
         "Harga lima ringgit lima puluh sen sahaja."],
        {}, "", id="polly-date-digits-lang",
    ),
    pytest.param(  # elements we do not apply: spoken, and named
        '<speak><prosody rate="slow">Slowly</prosody> and <emphasis level="strong">loudly</emphasis>'
        '<mark name="here"/> <amazon:effect name="whispered">quietly</amazon:effect>.</speak>',
        ["Slowly and loudly quietly."], {}, "prosody,emphasis,mark,amazon:effect", id="unapplied",
    ),
]


def _pcm(resp: httpx.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text[:500]
    return np.frombuffer(resp.content, np.int16)


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
@pytest.mark.parametrize(("ssml", "said", "breaks", "ignored"), SUITE)
def test_ssml_document_prompts_and_silence(
    url: str, fake: FakeVLLM, ssml: str, said: list[str], breaks: dict[int, float], ignored: str, rate: int
) -> None:
    body = {"input": ssml, "voice": VOICE, "response_format": "pcm", "sample_rate": rate}
    resp = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120)
    pcm = _pcm(resp)
    prompts = [r.prompt for r in fake.requests]
    assert prompts == [speech_prompt(VOICE, s) for s in said]
    assert resp.headers.get("X-SSML-Ignored", "") == ignored
    per_token = rate * 480 // 24_000  # the stand-in codec: 480 samples a token at 24 kHz
    at = 0
    for i, prompt in enumerate(prompts, start=1):
        at += len(fake.expected_tokens(prompt)) * per_token
        if i in breaks:
            silence = round(rate * breaks[i])
            assert np.all(pcm[at : at + silence] == 0) and pcm[at - 1] != 0  # the silence, exactly where it is
            assert np.any(pcm[at + silence : at + silence + 8] != 0)  # and the speech after it at once
            at += silence
    assert len(pcm) == at


def test_input_format_text_reads_the_markup_as_text(url: str, fake: FakeVLLM) -> None:
    body = {"input": '<speak>Hi <break time="1s"/> there</speak>', "input_format": "text", "response_format": "pcm"}
    _pcm(httpx.post(f"{url}/v1/audio/speech", json=body | {"voice": VOICE}, timeout=60))
    assert len(fake.requests) == 1  # one segment: no pause, the tags stripped as markup


def test_input_format_ssml_without_speak_and_plain_text_with_a_less_than(url: str, fake: FakeVLLM) -> None:
    body = {"input": 'Wait <break time="500ms"/> now', "input_format": "ssml", "voice": VOICE, "response_format": "pcm"}
    pcm = _pcm(httpx.post(f"{url}/v1/audio/speech", json=body, timeout=60))
    prompts = [r.prompt for r in fake.requests]
    assert prompts == [speech_prompt(VOICE, "Wait"), speech_prompt(VOICE, "now")]
    first = len(fake.expected_tokens(prompts[0])) * 480
    assert np.all(pcm[first : first + 12_000] == 0) and len(pcm) == first + 12_000 + len(
        fake.expected_tokens(prompts[1])
    ) * 480
    plain = {"input": "If a < b then 3 > 2", "voice": VOICE, "response_format": "pcm"}
    resp = httpx.post(f"{url}/v1/audio/speech", json=plain, timeout=60)
    _pcm(resp)
    assert len(fake.requests) == 3 and "X-SSML-Ignored" not in resp.headers
    assert "a < b" in fake.requests[2].prompt or "a b" in fake.requests[2].prompt  # read as text, not refused


@pytest.mark.parametrize(
    ("ssml", "where"),
    [
        ("<speak>Hello <break time='1s'></speak>", "line 1, column"),
        ("<speak>\n  <p>One\n</speak>", "line 3, column"),
        ('<!DOCTYPE speak [<!ENTITY x "boom">]><speak>&x;</speak>', "refused"),
        ('<speak><break time="soon"/></speak>', "break time"),
        ("<speak>" + "<s>" * 40 + "deep" + "</s>" * 40 + "</speak>", "deeper"),
        ("<speak>" + "<s/>" * 1001 + "</speak>", "elements"),
        ('<speak><break time="10s"/>' * 13 + "</speak>", "breaks add up"),
    ],
)
def test_bad_ssml_is_a_400_naming_where(url: str, fake: FakeVLLM, ssml: str, where: str) -> None:
    body = {"input": ssml, "voice": VOICE, "input_format": "ssml"}
    resp = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=60)
    assert resp.status_code == 400, ssml[:80]
    error = resp.json()["error"]
    assert error["param"] == "input" and error["code"] == "invalid_ssml" and where in error["message"]
    assert not fake.requests


def test_word_timings_name_the_words_as_sent(url: str, fake: FakeVLLM) -> None:
    ssml = '<speak>Visit <sub alias="World Wide Web">WWW</sub> on <say-as interpret-as="date" format="dmy">5/3/2025</say-as></speak>'
    body = {"input": ssml, "voice": VOICE, "response_format": "pcm", "timestamps": "word", "language": "en"}
    resp = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    sent = {w["word"]: ssml[slice(*w["source"])] for w in resp.json()["words"]}
    assert sent["Visit"] == "Visit" and sent["World"] == sent["Web"] == "WWW" and sent["on"] == "on"
    assert sent["March"] == "5/3/2025"  # each word of the date names the date as sent


def test_word_timings_shift_by_the_break(url: str, fake: FakeVLLM) -> None:
    ssml = '<speak>Hello there <break time="2s"/> good friend</speak>'
    body = {"input": ssml, "voice": VOICE, "response_format": "pcm", "sample_rate": 16000, "timestamps": "word"}
    resp = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    words = {w["word"]: w for w in out["words"]}
    first = len(fake.expected_tokens(fake.requests[0].prompt)) * 480 / 24_000
    assert words["there"]["end"] <= first + 1e-3
    assert words["good"]["start"] == pytest.approx(first + 2.0, abs=1e-3)  # the silence before it
    pcm = np.frombuffer(base64.b64decode(out["audio"]), np.int16)
    assert out["audio_seconds"] == pytest.approx(len(pcm) / 16000, abs=1e-3)


def test_elevenlabs_http_alignment_with_ssml(url: str, fake: FakeVLLM) -> None:
    ssml = '<speak>Call <sub alias="World Wide Web">WWW</sub> <break time="1s"/> now</speak>'
    resp = httpx.post(
        f"{url}/v1/text-to-speech/{VOICE}/with-timestamps?output_format=pcm_16000&enable_ssml_parsing=true",
        json={"text": ssml}, timeout=60,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    sent, spoken = body["alignment"], body["normalized_alignment"]
    assert "".join(sent["characters"]) == ssml  # the text as sent
    assert "".join(spoken["characters"]) == "Call World Wide Web now"  # the text as spoken
    assert [r.prompt for r in fake.requests] == [speech_prompt(VOICE, "Call World Wide Web"), speech_prompt(VOICE, "now")]
    s0, e0 = spoken["character_start_times_seconds"], spoken["character_end_times_seconds"]
    ss, se = sent["character_start_times_seconds"], sent["character_end_times_seconds"]
    w = ssml.index("WWW")
    said = "".join(spoken["characters"])
    assert ss[w] == s0[said.index("World")] and se[w + 2] == e0[said.index("Web") + 2]  # the alias' audio
    first = len(fake.expected_tokens(fake.requests[0].prompt)) * 480 / 24_000
    assert ss[ssml.index("now")] == pytest.approx(first + 1.0, abs=1e-3) == s0[said.index("now")]
    pcm = np.frombuffer(base64.b64decode(body["audio_base64"]), np.int16)
    n1 = len(fake.expected_tokens(fake.requests[0].prompt)) * 320
    assert np.all(pcm[n1 : n1 + 16_000] == 0) and pcm[n1 - 1] != 0 and np.any(pcm[n1 + 16_000 : n1 + 16_008] != 0)


@pytest.mark.parametrize(("ssml", "said", "breaks", "ignored"), SUITE)
def test_ssml_document_timings_and_silence_at_22khz(
    url: str, fake: FakeVLLM, ssml: str, said: list[str], breaks: dict[int, float], ignored: str
) -> None:
    """The same documents with word timings (the complete file at 22.05 kHz in JSON): each segment's first word
    starts where its audio starts, after the silence before it; every word names characters of the text as sent."""
    rate = 22_050
    body = {"input": ssml, "voice": VOICE, "response_format": "pcm", "sample_rate": rate, "timestamps": "word"}
    resp = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120)
    assert resp.status_code == 200, resp.text[:300]
    out = resp.json()
    pcm = np.frombuffer(base64.b64decode(out["audio"]), np.int16)
    prompts = [r.prompt for r in fake.requests]
    assert prompts == [speech_prompt(VOICE, s) for s in said]
    words = out["words"]
    assert [w["word"] for w in words] == " ".join(said).split()
    assert all(w["source"][0] < w["source"][1] and ssml[slice(*w["source"])].strip() for w in words)
    at, first_word = 0, 0
    for i, (prompt, text) in enumerate(zip(prompts, said, strict=True), start=1):
        assert words[first_word]["start"] == round(at / rate, 3)  # where this segment's audio starts
        at += len(fake.expected_tokens(prompt)) * 441
        first_word += len(text.split())
        if i in breaks:
            silence = round(rate * breaks[i])
            assert np.all(pcm[at : at + silence] == 0) and pcm[at - 1] != 0
            at += silence
    assert len(pcm) == at and words[-1]["end"] <= round(at / rate, 3)


def test_voice_cloning_reads_ssml_generate_text(url: str, fake: FakeVLLM) -> None:
    from tests.service.test_api import post_vc, wav_bytes

    resp = post_vc(
        url, wav_bytes(2.0), generate_text='<speak>Ye encik <break time="250ms"/> apa khabar?</speak>',
        response_format="pcm", stream="false",
    )  # fmt: skip
    pcm = _pcm(resp)
    prompts = [r.prompt for r in fake.requests]
    assert len(prompts) == 2 and prompts[0].endswith("Ye encik<|speech_start|>")
    assert prompts[1].endswith("apa khabar?<|speech_start|>")
    first = len(fake.expected_tokens(prompts[0])) * 480
    assert np.all(pcm[first : first + 6000] == 0) and pcm[first - 1] != 0
    assert len(pcm) == first + 6000 + len(fake.expected_tokens(prompts[1])) * 480
    bad = post_vc(url, wav_bytes(2.0), generate_text="<speak>unclosed", input_format="ssml")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "generate_text"


def test_the_elevenlabs_sdk_convert_gets_the_pause(url: str, fake: FakeVLLM) -> None:
    from elevenlabs.client import ElevenLabs

    client = ElevenLabs(api_key="secret", base_url=url, timeout=60)
    text = '<speak>One moment <break time="1.5s"/> please.</speak>'
    pcm = np.frombuffer(b"".join(client.text_to_speech.convert(VOICE, text=text, output_format="pcm_8000")), np.int16)
    prompts = [r.prompt for r in fake.requests]
    assert prompts == [speech_prompt(VOICE, "One moment"), speech_prompt(VOICE, "please.")]
    first = len(fake.expected_tokens(prompts[0])) * 160
    assert np.all(pcm[first : first + 12_000] == 0) and len(pcm) == first + 12_000 + len(
        fake.expected_tokens(prompts[1])
    ) * 160
