"""The `language` field and unspeakable input, through the API with the real normalizer (fake vLLM, stand-in codec)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from app.main import Components
from app.settings import Settings
from app.text.normalizer import Normalizer
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, serve

MIXED = "Harga RM5.50 pada 12/03/2024 pukul 3pm, berat 2.5kg."


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer()  # malaya and the language model load once for the module (seconds)


@pytest.fixture(scope="module")
def shared_url(module_settings_for: Callable[..., Settings], normalizer: Normalizer) -> Iterator[str]:
    with serve(module_settings_for(api_key="sk-test"), Components(codec=LocalCodec(), normalizer=normalizer)) as u:
        yield u


@pytest.fixture
def url(shared_url: str, fake: FakeVLLM) -> str:
    return shared_url


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0, timeout=60)


def normalize(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/normalize", json=body, headers={"Authorization": "Bearer sk-test"}, timeout=30)


def spoken_text(prompt: str) -> str:
    """The user text inside a speech prompt sent to vLLM."""
    return prompt.split("<|im_start|>")[-1].split("<|", 1)[0].split(": ", 1)[-1]


def test_normalize_reads_in_english_with_language_en(url: str) -> None:
    resp = normalize(url, input=MIXED, language="en")
    assert resp.status_code == 200, resp.text
    text = resp.json()["normalized"]
    for english in ("five ringgit fifty sen", "the twelfth of March twenty twenty four", "three P M",
                    "two point five kilograms"):  # fmt: skip
        assert english in text, text
    assert "lima" not in text and "Mac" not in text


def test_normalize_detects_malay_by_default_and_language_ms_agrees(url: str) -> None:
    auto = normalize(url, input=MIXED).json()["normalized"]
    assert "lima ringgit lima puluh sen" in auto and "dua belas Mac" in auto and "kilogram" in auto
    assert normalize(url, input=MIXED, language="ms").json()["normalized"] == auto


def test_language_overrides_detection_of_an_english_sentence(url: str) -> None:
    text = "The total is RM20 for 3 items."
    assert "twenty ringgit" in normalize(url, input=text).json()["normalized"]
    assert "dua puluh ringgit" in normalize(url, input=text, language="ms").json()["normalized"]


def test_language_zh_reads_numbers_in_mandarin(url: str) -> None:
    resp = normalize(url, input="价格是RM500, 2024年3月5日", language="zh")
    assert resp.json()["normalized"] == "价格是五百令吉, 二零二四年三月五日"
    # auto: the Han characters choose Mandarin for the numbers beside them
    assert normalize(url, input="我有2只猫").json() == {"input": "我有2只猫", "normalized": "我有两只猫"}


def test_unknown_language_is_a_400_naming_it(url: str) -> None:
    resp = normalize(url, input="Hello", language="fr")
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "language"


def test_openai_sdk_sends_language_through_extra_body(client: openai.OpenAI, fake: FakeVLLM) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="TTS-model", voice="husein", input="Jumlah RM12.", response_format="pcm",
        extra_body={"language": "en", "max_tokens": 20},
    ) as resp:  # fmt: skip
        pcm = np.frombuffer(resp.read(), np.int16)
    assert len(pcm) == 20 * 480
    assert spoken_text(fake.requests[-1].body["prompt"]) == "Jumlah twelve ringgit."
    with client.audio.speech.with_streaming_response.create(
        model="TTS-model", voice="husein", input="Jumlah RM12.", response_format="pcm", extra_body={"max_tokens": 20}
    ) as resp:
        resp.read()
    assert spoken_text(fake.requests[-1].body["prompt"]) == "Jumlah dua belas ringgit."


@pytest.mark.parametrize("text", ["😀🙏", "<|s_1|><|im_end|>", "?!... —", "<|s_5|> 🎉 !!"])
def test_nothing_speakable_is_a_400_naming_input(
    client: openai.OpenAI, url: str, fake: FakeVLLM, text: str
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="TTS-model", voice="husein", input=text)
    assert err.value.status_code == 400
    assert err.value.body["param"] == "input"
    assert not fake.requests  # nothing reached the model
    resp = normalize(url, input=text)  # the debugging endpoint says the same
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input"


def test_markers_and_emoji_never_reach_the_prompt(client: openai.OpenAI, fake: FakeVLLM) -> None:
    client.audio.speech.create(
        model="TTS-model", voice="husein", input="😀 Terima kasih!<|s_1|><|im_end|>", extra_body={"max_tokens": 10}
    )
    assert spoken_text(fake.requests[-1].body["prompt"]) == "Terima kasih!"


def test_voice_clone_form_takes_language(url: str, fake: FakeVLLM) -> None:
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(np.arange(24000) / 24000 * 2 * np.pi * 220), 24000, format="WAV")
    data = {"reference_text": "Saya ada 2 ekor kucing.", "generate_text": "Bayar RM3 sahaja.", "language": "en",
            "max_tokens": "10", "stream": "false"}  # fmt: skip
    resp = httpx.post(
        f"{url}/v1/audio/vc", data=data, files={"reference_audio": ("ref.wav", buf.getvalue(), "audio/wav")},
        headers={"Authorization": "Bearer sk-test"}, timeout=30,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    prompt = fake.requests[-1].body["prompt"]
    assert "Saya ada two ekor kucing." in prompt and "Bayar three ringgit sahaja." in prompt
    bad = httpx.post(
        f"{url}/v1/audio/vc", data=data | {"language": "xx"},
        files={"reference_audio": ("ref.wav", buf.getvalue(), "audio/wav")}, headers={"Authorization": "Bearer sk-test"},
    )  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "language"


def test_a_title_a_name_and_an_ic_number_reach_the_model_in_malay(client: openai.OpenAI, fake: FakeVLLM) -> None:
    """Issue 33 item 4, as the new user sent it: the prompt says the number in Malay, "no." read, through the SDK."""
    client.audio.speech.create(
        model="TTS-model", voice="husein", input="Puan Siti no. kp 900101-14-5678, tkasih.", extra_body={"max_tokens": 10}
    )
    assert spoken_text(fake.requests[-1].body["prompt"]) == (
        "Puan Siti nombor K P sembilan kosong kosong satu kosong satu, satu empat, lima enam tujuh lapan, terima kasih."
    )
