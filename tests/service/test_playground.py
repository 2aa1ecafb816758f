"""The playground page in a real headless Chromium (Debian's `chromium`, driven by Playwright).

The service runs with the fake vLLM and the tiny random-weight NeuCodec (encoder included, for cloning).
The page exposes its counters on `window.playground`; the test reads them to check that audio arrived and was
played for as long as it lasts.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.prompts import speech_prompt
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]
KEY = "pg-secret"
TEXT = "Selamat pagi, the meeting is at three."
N_TOKENS = 100  # 2 s of audio per request

pytestmark = pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (make system-deps)")


@pytest.fixture(scope="module")
def fake_backend() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=N_TOKENS, rate=200) as server:
        yield server


@pytest.fixture(scope="module")
def url(fake_backend: FakeVLLM) -> Iterator[str]:
    codec = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny"))
    if not (codec / "config.json").exists():
        pytest.skip(f"the tiny codec is not built at {codec} (make models)")
    settings = Settings(
        _env_file=None,
        tts_api=fake_backend.url,
        codec_model=str(codec),
        semantic_model=str(codec / "semantic"),
        codec_device="cpu",
        codec_threads=1,
        api_key=KEY,
    )
    with serve(settings) as u:
        yield u


@pytest.fixture(scope="module")
def playwright() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: object) -> Iterator[object]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: object, url: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1000, "height": 1100})
    pg = context.new_page()
    pg.console_messages = []  # (type, text)
    pg.on("console", lambda m: pg.console_messages.append((m.type, m.text)))
    pg.on("pageerror", lambda e: pg.console_messages.append(("pageerror", str(e))))
    pg.goto(url)  # `/` redirects to the playground
    yield pg
    context.close()


def console_errors(pg: object, allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        text
        for kind, text in pg.console_messages
        if kind in ("error", "pageerror") and not any(a in text for a in allowed)
    ]


def stats(pg: object) -> dict:
    return pg.evaluate("() => ({...window.playground})")


def enter_key(pg: object) -> None:
    pg.fill("#api-key", KEY)
    pg.dispatch_event("#api-key", "change")
    pg.wait_for_function("() => window.playground.voicesLoaded", timeout=30_000)


def wait_done(pg: object, timeout_ms: int = 120_000) -> dict:
    pg.wait_for_function("() => ['done', 'error'].includes(window.playground.state)", timeout=timeout_ms)
    return stats(pg)


def test_speak_streams_and_plays_every_sample(page: object, fake_backend: FakeVLLM) -> None:
    assert page.url.endswith("/playground/")
    # the server wants a key: the page says so in the API's words, then works once it is given
    page.wait_for_function("() => window.playground.lastError !== null", timeout=30_000)
    assert "missing or invalid API key" in page.inner_text("#error")
    enter_key(page)
    assert page.is_hidden("#error")
    voices = page.eval_on_selector_all("#voice option", "els => els.map(e => e.value)")
    assert voices[:3] == ["husein", "idayu", "jenny"] and "alloy" in voices

    page.fill("#text", TEXT)
    page.click("#preview")
    page.wait_for_selector("#normalized:not([hidden])")
    assert page.inner_text("#normalized").strip() == TEXT  # the dev normalizer keeps this sentence

    page.select_option("#voice", "jenny")
    page.select_option("#format", "pcm")
    page.click("#speak")
    s = wait_done(page)
    assert s["state"] == "done", s["lastError"]
    assert fake_backend.requests[-1].body["prompt"] == speech_prompt("jenny", TEXT)
    expected = N_TOKENS * 480
    assert s["samplesReceived"] == expected and s["bytesReceived"] == 2 * expected
    assert s["samplesScheduled"] == expected
    assert s["playedSeconds"] >= expected / 24000 - 1e-6  # every scheduled buffer played to its end
    assert s["chunks"] >= 2  # streamed: playback started before the last chunk
    assert s["ttfaMs"] > 0 and s["rtf"] > 0
    assert page.inner_text("#ttfa").endswith("ms") and page.inner_text("#rtf") != "–"
    assert page.inner_text("#audio-seconds") == f"{expected / 24000:.2f} s"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    assert not console_errors(page, allowed=("status of 401",)), page.console_messages


@pytest.mark.parametrize(("rate", "encoding"), [(8000, "mulaw"), (16000, "s16le"), (8000, "alaw")])
def test_speak_at_another_rate_and_encoding(page: object, url: str, rate: int, encoding: str) -> None:
    """The page asks for the rate and encoding chosen, reads them from the headers, and plays every sample."""
    import httpx

    enter_key(page)
    page.fill("#text", TEXT)
    page.select_option("#voice", "jenny")
    page.select_option("#format", "pcm")
    page.select_option("#sample-rate", str(rate))
    page.select_option("#encoding", encoding)
    page.click("#speak")
    s = wait_done(page)
    assert s["state"] == "done", s["lastError"]
    expected = N_TOKENS * 480 * rate // 24000
    width = 2 if encoding == "s16le" else 1
    assert (s["sampleRate"], s["encoding"]) == (rate, encoding)
    assert s["samplesReceived"] == s["samplesScheduled"] == expected and s["bytesReceived"] == width * expected
    assert page.inner_text("#audio-seconds") == f"{N_TOKENS / 50:.2f} s"
    assert s["playedSeconds"] >= N_TOKENS / 50 - 1e-6
    # the page's G.711 expansion is libsndfile's: the same loudest sample as the same request decoded here
    body = {"input": TEXT, "voice": "jenny", "response_format": "pcm", "sample_rate": rate, "encoding": encoding}
    data = httpx.post(f"{url}/v1/audio/speech", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60).content
    if encoding == "s16le":
        ours = np.frombuffer(data, np.int16) / 32768
    else:
        subtype = {"mulaw": "ULAW", "alaw": "ALAW"}[encoding]
        ours = sf.read(io.BytesIO(data), samplerate=rate, channels=1, format="RAW", subtype=subtype, dtype="int16")[0]
        ours = ours / 32768
    assert len(ours) == expected and s["peak"] == pytest.approx(np.abs(ours).max(), abs=1e-6)
    assert not console_errors(page, allowed=("status of 401",)), page.console_messages


def test_a_combination_a_format_lacks_is_the_apis_400(page: object) -> None:
    enter_key(page)
    page.fill("#text", TEXT)
    page.select_option("#format", "opus")
    page.select_option("#sample-rate", "44100")
    page.click("#speak")
    s = wait_done(page)
    assert s["state"] == "error" and s["samplesReceived"] == 0
    assert "opus is offered at 8000, 16000, 24000, 48000 Hz, not 44100" in page.inner_text("#error")
    assert not console_errors(page, allowed=("status of 401", "status of 400")), page.console_messages


def test_a_whole_file_format_plays_in_the_audio_element(page: object) -> None:
    enter_key(page)
    page.fill("#text", TEXT)
    page.select_option("#format", "wav")
    page.fill("#speed", "2")  # the range input: the API time-stretches to half the duration
    page.dispatch_event("#speed", "input")
    page.click("#speak")
    s = wait_done(page)
    assert s["state"] == "done", s["lastError"]
    assert page.is_visible("#player")
    assert abs(s["audioSeconds"] - N_TOKENS / 50 / 2) < 0.05
    assert s["playedSeconds"] >= s["audioSeconds"] - 1e-6
    assert not console_errors(page, allowed=("status of 401",)), page.console_messages


def test_voice_cloning_with_an_uploaded_clip(page: object, fake_backend: FakeVLLM, tmp_path: Path) -> None:
    enter_key(page)
    t = np.arange(2 * 16000) / 16000
    clip = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, clip, 16000, format="WAV")
    path = tmp_path / "reference.wav"
    path.write_bytes(buf.getvalue())

    page.fill("#text", "This is my cloned voice.")
    page.set_input_files("#ref-file", str(path))
    page.fill("#ref-text", "hello there")
    page.select_option("#format", "pcm")
    page.click("#clone")
    s = wait_done(page)
    assert s["state"] == "done", s["lastError"]
    prompt = fake_backend.requests[-1].body["prompt"]
    assert "hello there" in prompt and "This is my cloned voice." in prompt
    assert s["samplesReceived"] == N_TOKENS * 480
    assert s["playedSeconds"] >= N_TOKENS / 50 - 1e-6
    assert not console_errors(page, allowed=("status of 401",)), page.console_messages


def test_errors_are_shown_as_the_api_words_them(page: object) -> None:
    enter_key(page)
    page.fill("#text", "x" * 5000)  # over MAX_INPUT_CHARS
    page.click("#speak")
    s = wait_done(page)
    assert s["state"] == "error" and s["samplesReceived"] == 0
    assert page.inner_text("#error") == "input is 5000 characters; the limit is 4096"
    # an unreadable clip: the server's 400 message, not a generic failure
    page.fill("#text", TEXT)
    page.set_input_files("#ref-file", files=[{"name": "clip.wav", "mimeType": "audio/wav", "buffer": b"not audio"}])
    page.fill("#ref-text", "hello")
    page.click("#clone")
    page.wait_for_function("() => window.playground.lastError && window.playground.lastError.includes('reference_audio')")
    assert page.inner_text("#error").startswith("reference_audio is not readable audio")
    # the only console errors are Chromium's notes on the 400 responses
    assert not console_errors(page, allowed=("status of 401", "status of 400")), page.console_messages


def test_voice_cloning_from_the_microphone(playwright: object, url: str, fake_backend: FakeVLLM, tmp_path: Path) -> None:
    """Chromium's fake capture device plays a generated clip as the microphone; the page records it with
    MediaRecorder, re-encodes it as WAV and clones the voice."""
    t = np.arange(3 * 48000) / 48000
    clip = (0.4 * np.sin(2 * np.pi * 200 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2).astype(np.float32)
    wav = tmp_path / "mic.wav"
    sf.write(wav, clip, 48000, subtype="PCM_16")
    mic_args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    mic_browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + mic_args)
    try:
        pg = mic_browser.new_page()
        messages = []
        pg.on("console", lambda m: messages.append((m.type, m.text)))
        pg.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
        pg.goto(f"{url}/playground/")
        pg.fill("#api-key", KEY)
        pg.dispatch_event("#api-key", "change")
        pg.wait_for_function("() => window.playground.voicesLoaded", timeout=30_000)
        pg.click("#record")
        pg.wait_for_function("() => document.querySelector('#record-state').textContent === 'recording…'")
        pg.wait_for_timeout(1500)  # record about 1.5 s of the fake microphone
        pg.click("#record")
        pg.wait_for_function("() => document.querySelector('#record-state').textContent.startsWith('recorded')")
        recorded = float(pg.inner_text("#record-state").split()[1])
        assert recorded >= 0.5
        pg.fill("#text", "Spoken in the recorded voice.")
        pg.fill("#ref-text", "hello")
        pg.click("#clone")
        pg.wait_for_function("() => ['done', 'error'].includes(window.playground.state)", timeout=120_000)
        s = pg.evaluate("() => ({...window.playground})")
    finally:
        mic_browser.close()
    assert s["state"] == "done", s["lastError"]
    assert "Spoken in the recorded voice." in fake_backend.requests[-1].body["prompt"]
    assert s["samplesReceived"] == N_TOKENS * 480 and s["playedSeconds"] >= N_TOKENS / 50 - 1e-6
    # the page's first voices request had no key yet: Chromium notes that 401, nothing else may fail
    assert not [m for m in messages if m[0] in ("error", "pageerror") and "status of 401" not in m[1]], messages


def test_words_light_up_as_they_are_played_over_the_waveform(page: object) -> None:
    """Timed words (on by default for pcm): the request goes as SSE with word timings; each word lights up once
    playback reaches its start, in order, over a waveform of every sample received."""
    enter_key(page)
    page.fill("#text", TEXT)
    page.select_option("#voice", "jenny")
    page.select_option("#format", "pcm")
    assert page.is_checked("#timed-words")
    page.click("#speak")
    page.wait_for_selector("#words span.current", timeout=60_000)  # a word is lit while audio still plays
    during = stats(page)
    assert during["state"] == "playing"
    s = wait_done(page)
    assert s["state"] == "done", s["lastError"]
    words = s["words"]
    assert [w["word"] for w in words] == TEXT.split()
    assert words[-1]["end"] <= s["samplesReceived"] / 24000
    lit = [w["litAt"] for w in words]
    assert all(t is not None for t in lit) and lit == sorted(lit)
    assert all(t >= w["start"] - 1e-6 for t, w in zip(lit, words, strict=True))  # never before its time
    assert page.eval_on_selector_all("#words span", "els => els.map(e => e.className)") == ["spoken"] * len(words)
    # the waveform holds every sample received, and shows them
    assert s["waveformSamples"] == s["samplesReceived"] == N_TOKENS * 480
    inked = page.evaluate(
        """() => { const c = document.querySelector('#waveform');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert inked > 800  # at least a column of ink per pixel of width
    page.screenshot(path=str(ARTIFACTS / "playground-words.png"), full_page=True)
    assert not console_errors(page, allowed=("status of 401",)), page.console_messages


def test_without_timed_words_pcm_streams_raw_and_shows_no_words(page: object) -> None:
    enter_key(page)
    page.fill("#text", TEXT)
    page.select_option("#format", "pcm")
    page.uncheck("#timed-words")
    page.click("#speak")
    s = wait_done(page)
    assert s["state"] == "done", s["lastError"]
    assert s["words"] == [] and page.is_hidden("#words")
    assert s["waveformSamples"] == s["samplesReceived"] == N_TOKENS * 480
    assert not console_errors(page, allowed=("status of 401",)), page.console_messages
