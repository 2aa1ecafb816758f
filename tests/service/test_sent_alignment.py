"""ElevenLabs `with-timestamps` with the real normalizer: `alignment` over the text as sent is exact where the
words are known (issue 30): each sent word starts where the spoken words it became start, "RM5.50" spans the
audio of "five ringgit fifty sen", while `normalized_alignment` stays on the spoken text. On main the alignment
was an estimate spread over the sent text's characters, which this test refuses."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.main import Components
from app.settings import Settings
from app.text.normalizer import Normalizer
from tools.harness import LocalCodec, serve

TEXT = "Dr. Tan owes RM5.50 on 3/4, thank you."


@pytest.fixture(scope="module")
def real_url(module_settings_for: Callable[..., Settings]) -> Iterator[str]:
    normalizer = Normalizer()
    with serve(module_settings_for(), Components(codec=LocalCodec(), normalizer=normalizer)) as url:
        yield url


def starts_of_words(a: dict) -> list[tuple[str, float, float]]:
    text = "".join(a["characters"])
    s, e = a["character_start_times_seconds"], a["character_end_times_seconds"]
    return [(m.group(), s[m.start()], e[m.end() - 1]) for m in re.finditer(r"\S+", text)]


def test_alignment_names_the_text_as_sent_exactly(real_url: str) -> None:
    resp = httpx.post(
        f"{real_url}/v1/text-to-speech/jenny/with-timestamps?output_format=pcm_24000", json={"text": TEXT}, timeout=60
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    sent, spoken = body["alignment"], body["normalized_alignment"]
    assert "".join(sent["characters"]) == TEXT
    spoken_text = "".join(spoken["characters"])
    assert "RM" not in spoken_text and "ringgit" in spoken_text  # normalized: money read out
    said = starts_of_words(spoken)
    words = {w: (s, e) for w, s, e in starts_of_words(sent)}
    by_word = {w.strip(",."): (s, e) for w, s, e in said}
    assert words["Tan"][0] == by_word["Tan"][0] and words["owes"][0] == by_word["owes"][0]
    assert words["on"][0] == by_word["on"][0]
    money = [i for i, (w, _, _) in enumerate(said) if w == "owes"][0] + 1
    assert words["RM5.50"][0] == said[money][1]  # the first word it became
    on = [i for i, (w, _, _) in enumerate(said) if w == "on"][0]
    assert words["RM5.50"][1] <= said[on][1] and words["RM5.50"][1] >= said[on - 1][1]  # up to "sen"
    starts = sent["character_start_times_seconds"]
    assert starts == sorted(starts) and starts[0] == 0
