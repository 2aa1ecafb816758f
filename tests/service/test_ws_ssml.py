"""Streamed SSML on our WebSocket (`input_format: "ssml"` in the config, issue 33): elements split across text
messages wait for their end, an alias is prompted for its text, a break is exact silence in the binary audio, what
was not applied is named on the `done` event, bad SSML is an error event and the session goes on."""

from __future__ import annotations

import numpy as np

from app.prompts import speech_prompt
from tests.service.test_ws_stream import run_session, serve_with, url  # noqa: F401  (the module's fixtures)
from tools.fake_vllm import FakeVLLM

WORDS = ["<speak>Please", "call", "<sub", 'alias="World Wide Web">WWW</sub>', "now.", "<break", 'time="500ms"/>',
         "<prosody", 'rate="slow">Bye', "bye.</prosody></speak>"]  # fmt: skip


async def test_streamed_ssml_prompts_pauses_and_names_what_it_ignored(url: str, fake: FakeVLLM) -> None:  # noqa: F811
    config = {"input_format": "ssml", "response_format": "pcm", "sample_rate": 16000, "voice": "jenny", "context": False}
    events, audio, _ = await run_session(url, config, WORDS)
    prompts = [r.prompt for r in fake.requests]
    assert prompts == [speech_prompt("jenny", "Please call World Wide Web now."), speech_prompt("jenny", "Bye bye.")]
    pcm = np.frombuffer(audio, np.int16)
    first = len(fake.expected_tokens(prompts[0])) * 320
    assert np.all(pcm[first : first + 8000] == 0) and pcm[first - 1] != 0
    assert len(pcm) == first + 8000 + len(fake.expected_tokens(prompts[1])) * 320
    done = [e for e in events if e.get("type") == "done"][-1]
    assert done["ssml_ignored"] == ["prosody"]
    pause = [e for e in events if e.get("type") == "segment.done" and "pause" in e]
    assert pause and pause[0]["pause"] == 0.5 and pause[0]["text"] == '<break time="500ms"/>'


async def test_bad_streamed_ssml_is_an_error_event_and_the_session_goes_on(url: str, fake: FakeVLLM) -> None:  # noqa: F811
    config = {"input_format": "ssml", "response_format": "pcm", "voice": "jenny"}
    events, _, _ = await run_session(url, config, ['<break time="soon"/>', "Still", "here."])
    errors = [e for e in events if e.get("type") == "error"]
    assert errors and errors[0]["error"]["code"] == "invalid_ssml" and "break time" in errors[0]["error"]["message"]
    assert [r.prompt for r in fake.requests] == [speech_prompt("jenny", "Still here.")]


async def test_streamed_inline_elements_keep_the_spacing_they_were_sent_with(url: str, fake: FakeVLLM) -> None:  # noqa: F811
    config = {"input_format": "ssml", "response_format": "pcm", "voice": "jenny", "context": False}
    words = ['<speak>It is <sub alias="ten">10</sub><sub alias="K">k</sub>', "and",
             '<say-as interpret-as="characters">ab</say-as>.', "Done", "<emphasis>now</emphasis>.</speak>"]  # fmt: skip
    await run_session(url, config, words)
    assert [r.prompt for r in fake.requests] == [
        speech_prompt("jenny", "It is tenK and a b."), speech_prompt("jenny", "Done now.")
    ]
