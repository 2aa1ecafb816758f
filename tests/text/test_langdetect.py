from __future__ import annotations

import pytest

from app.text.sentences import SentenceSplitter

MALAY = [
    "Saya ada dua ekor kucing.",
    "Tempahan anda telah disahkan.",
    "Kereta tu laju gila",
    "You nak makan apa?",
    "I pun tak tahu lah",
    "Boleh tolong check email saya?",
    "Nanti I call you balik",
    "Terima kasih!",
    # issue 33: short sentences made mostly of a title, a name and a number
    "Encik Ahmad bin Ali, no. IC 850312-10-5521.",
    "Puan Siti no. kp 900101-14-5678",
    "Cik Lim a/p Muthu, no. akaun 1234567890.",
    "Tuan Haji Ismail, no. tel 012-3456789.",
    "En. Zul, no. a/c 1234",
    "Dato' Lee Chong Wei",
    "tkasih",
]
ENGLISH = [
    "I have two cats.",
    "Your booking is confirmed.",
    "Can you send me the report by tomorrow?",
    "Thank you!",
    "I don't know lah, maybe tomorrow.",
    "Please click this link",
    # issue 33: the same names and numbers in English sentences
    "Mr. John Smith, IC no. 850312-10-5521.",
    "Puan Siti said the meeting is at 3pm.",
    "Please call Encik Ahmad at 012-3456789.",
    "Datuk Seri Anwar said the budget is ready.",
    "No. 5 is fine.",
    "I have no account 12345 here.",
]


@pytest.mark.parametrize("sentence", MALAY)
def test_malay(normalizer, sentence: str) -> None:
    assert normalizer._detector.detect(sentence).lang == "ms"


@pytest.mark.parametrize("sentence", ENGLISH)
def test_english(normalizer, sentence: str) -> None:
    assert normalizer._detector.detect(sentence).lang == "en"


def test_no_words_is_malay_and_unsure(normalizer) -> None:
    found = normalizer._detector.detect("RM500,000")
    assert found.lang == "ms"
    assert found.margin < 1.0


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Jumpa Dr. Ahmad esok. Ok!", ["Jumpa Dr. Ahmad esok.", "Ok!"]),
        ("Pi is 3.14. Nice.", ["Pi is 3.14.", "Nice."]),
        ("Use e.g. this one.", ["Use e.g. this one."]),
        ("Rumah No. 5 di sini.", ["Rumah No. 5 di sini."]),
        ("Wow! Really? Yes.", ["Wow!", "Really?", "Yes."]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ("no stop at end", ["no stop at end"]),
    ],
)
def test_sentence_split(text: str, sentences: list[str]) -> None:
    assert SentenceSplitter().split(text) == sentences
