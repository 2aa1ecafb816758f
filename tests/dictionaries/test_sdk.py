"""Pronunciation dictionaries through the official ElevenLabs Python SDK (`elevenlabs` on PyPI), unchanged, on a
real SQLite file and the real PostgreSQL server (issue 33, item 1): created from a PLS file and from rules, rules
added and removed (each a new version), listed, got, downloaded as PLS, renamed and archived; `convert` and
`convert_with_timestamps` with their locators speak the aliases (the prompt vLLM received), `alignment` over the
text as sent and `normalized_alignment` over the aliases; a phoneme rule met is named in `X-Unused-Settings`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from elevenlabs.client import ElevenLabs
from elevenlabs.core import ApiError

from app.prompts import speech_prompt
from app.text.dictionary import Rule, parse_pls
from tests.tenants.helpers import ADMIN
from tools.fake_vllm import FakeVLLM
from tools.harness import PassthroughNormalizer, serve

PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en-GB">
  <lexeme><grapheme>KL</grapheme><alias>Kuala Lumpur</alias></lexeme>
  <lexeme><grapheme>tomato</grapheme><phoneme>təˈmɑːtəʊ</phoneme></lexeme>
</lexicon>""".encode()
TEXT = "Welcome to KL, said Dr. Tan."


@pytest.fixture
def url(fake: FakeVLLM, store_url: str) -> Iterator[str]:
    from app.main import Components
    from app.settings import Settings
    from tools.harness import LocalCodec

    settings = Settings(
        _env_file=None, tts_api=fake.url, api_key=ADMIN, backend_read_timeout=5.0, voice_store_url=store_url
    )
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as base:
        yield base


@pytest.fixture
def client(url: str) -> ElevenLabs:
    return ElevenLabs(api_key=ADMIN, base_url=url, timeout=60)


def alias(s: str, a: str) -> dict:
    return {"type": "alias", "string_to_replace": s, "alias": a}


def locator(dictionary_id: str, version_id: str | None = None) -> dict:
    return {"pronunciation_dictionary_id": dictionary_id, "version_id": version_id}


def test_the_sdk_manages_dictionaries_and_its_requests_speak_their_aliases(
    client: ElevenLabs, url: str, fake: FakeVLLM
) -> None:
    dicts = client.pronunciation_dictionaries
    lexicon = dicts.create_from_file(name="brands", file=("brands.pls", PLS, "application/pls+xml"), description="ours")
    assert lexicon.version_rules_num == 2 and lexicon.name == "brands" and lexicon.description == "ours"
    people = dicts.create_from_rules(name="people", rules=[alias("Dr. Tan", "Doctor Tan")])
    first = people.version_id

    added = dicts.rules.add(people.id, rules=[alias("PJ", "Petaling Jaya"), alias("Dr. Tan", "Doktor Tan")])
    assert added.version_id != first and added.version_rules_num == 2
    gone = dicts.rules.remove(people.id, rule_strings=["PJ"])
    assert gone.version_id not in (first, added.version_id) and gone.version_rules_num == 1

    got = dicts.get(people.id)
    assert got.latest_version_id == gone.version_id
    assert [(r.string_to_replace, r.alias) for r in got.rules] == [("Dr. Tan", "Doktor Tan")]
    pls = b"".join(dicts.download(lexicon.id, lexicon.version_id))
    assert parse_pls(pls) == (
        Rule("KL", alias="Kuala Lumpur"),
        Rule("tomato", "phoneme", phoneme="təˈmɑːtəʊ", alphabet="ipa"),
    )
    assert parse_pls(b"".join(dicts.download(people.id, added.version_id))) == (
        Rule("Dr. Tan", alias="Doktor Tan"), Rule("PJ", alias="Petaling Jaya"),
    )  # fmt: skip

    # convert: the first dictionary wins ("Dr. Tan" of people), both apply, in order
    locators = [locator(people.id), locator(lexicon.id, lexicon.version_id)]
    b"".join(
        client.text_to_speech.convert(
            "jenny", text=TEXT, output_format="pcm_16000", pronunciation_dictionary_locators=locators
        )
    )
    assert fake.requests[-1].prompt == speech_prompt("jenny", "Welcome to Kuala Lumpur, said Doktor Tan.")
    # an older version, by its id: its rules
    old = [locator(people.id, added.version_id)]
    b"".join(
        client.text_to_speech.convert(
            "jenny", text="From PJ.", output_format="pcm_16000", pronunciation_dictionary_locators=old
        )
    )
    assert fake.requests[-1].prompt == speech_prompt("jenny", "From Petaling Jaya.")

    timed = client.text_to_speech.convert_with_timestamps(
        "jenny", text=TEXT, output_format="pcm_16000", pronunciation_dictionary_locators=locators
    )
    sent, spoken = timed.alignment, timed.normalized_alignment
    assert "".join(sent.characters) == TEXT
    assert "".join(spoken.characters) == "Welcome to Kuala Lumpur, said Doktor Tan."
    # the written form spans the alias's audio: "KL," from "Kuala"'s start to the end of "Lumpur,"
    k, alias_at = TEXT.index("KL,"), "Welcome to Kuala Lumpur,".index("Kuala")
    assert sent.character_start_times_seconds[k] == spoken.character_start_times_seconds[alias_at]
    comma = len("Welcome to Kuala Lumpur,") - 1
    assert sent.character_end_times_seconds[k + 2] == spoken.character_end_times_seconds[comma]
    assert (
        sent.character_start_times_seconds[k]
        < sent.character_end_times_seconds[k + 1]
        < spoken.character_end_times_seconds[comma]
    )

    # a phoneme rule met is named, never silent; one not met is not
    body = {"text": "One tomato in KL.", "pronunciation_dictionary_locators": [locator(lexicon.id)]}
    r = httpx.post(
        f"{url}/v1/text-to-speech/jenny?output_format=pcm_16000", json=body, headers={"xi-api-key": ADMIN}, timeout=60
    )
    assert r.status_code == 200 and r.headers["x-unused-settings"] == "phoneme:tomato"
    assert fake.requests[-1].prompt == speech_prompt("jenny", "One tomato in Kuala Lumpur.")
    body["text"] = "In KL."
    r = httpx.post(
        f"{url}/v1/text-to-speech/jenny?output_format=pcm_16000", json=body, headers={"xi-api-key": ADMIN}, timeout=60
    )
    assert r.status_code == 200 and "x-unused-settings" not in r.headers


def test_list_rename_archive_and_delete(client: ElevenLabs, url: str) -> None:
    dicts = client.pronunciation_dictionaries
    made = [dicts.create_from_rules(name=f"d{i}", rules=[alias("KL", f"K{i}")]) for i in range(3)]
    page = dicts.list(page_size=2, sort="name", sort_direction="ascending")
    assert [d.name for d in page.pronunciation_dictionaries] == ["d0", "d1"] and page.has_more
    rest = dicts.list(page_size=2, sort="name", sort_direction="ascending", cursor=page.next_cursor)
    assert [d.name for d in rest.pronunciation_dictionaries] == ["d2"] and not rest.has_more

    renamed = dicts.update(made[0].id, name="brands", archived=True)
    assert renamed.name == "brands" and renamed.archived_time_unix is not None
    assert renamed.latest_version_id == made[0].version_id  # renaming keeps the version
    assert {d.id for d in dicts.list().pronunciation_dictionaries} == {made[1].id, made[2].id}
    assert len(dicts.list(include_archived=True).pronunciation_dictionaries) == 3

    headers = {"xi-api-key": ADMIN}
    assert httpx.delete(f"{url}/v1/pronunciation-dictionaries/{made[1].id}", headers=headers).status_code == 204
    with pytest.raises(ApiError) as err:
        dicts.get(made[1].id)
    assert err.value.status_code == 404
    with pytest.raises(ApiError) as err:
        b"".join(
            client.text_to_speech.convert("jenny", text="KL", pronunciation_dictionary_locators=[locator(made[1].id)])
        )
    assert err.value.status_code == 400
    assert err.value.body["error"]["param"] == "pronunciation_dictionary_locators[0]"
    assert made[1].id in err.value.body["error"]["message"]


def test_bad_dictionaries_are_clear_400s(client: ElevenLabs, url: str) -> None:
    dicts = client.pronunciation_dictionaries
    hostile = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY e SYSTEM "file:///etc/passwd">]><lexicon>&e;</lexicon>'
    for data, says in ((hostile, "DTDs"), (b"<lexicon><lexeme>", "not well-formed")):
        with pytest.raises(ApiError) as err:
            dicts.create_from_file(name="x", file=("x.pls", data, "application/pls+xml"))
        assert err.value.status_code == 400 and says in err.value.body["error"]["message"]
    with pytest.raises(ApiError) as err:
        dicts.create_from_rules(name="x", rules=[{"type": "alias", "string_to_replace": "KL", "alias": ""}])
    assert err.value.status_code == 400 and err.value.body["error"]["param"] == "rules[0]"
    too_many = [locator("a"), locator("b"), locator("c"), locator("d")]
    r = httpx.post(f"{url}/v1/text-to-speech/jenny", json={"text": "KL", "pronunciation_dictionary_locators": too_many},
                   headers={"xi-api-key": ADMIN}, timeout=30)  # fmt: skip
    assert r.status_code == 400 and "pronunciation_dictionary_locators" in r.json()["error"]["param"]
