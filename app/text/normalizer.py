"""Written text -> what a Malaysian speaker reads aloud, per sentence in Malay or English.

    normalizer = Normalizer()            # loads malaya and the language model once (seconds)
    normalizer.normalize("Harga RM500.")  # "Harga lima ratus ringgit."

Pipeline: `clean_markup` (markdown/HTML/whitespace), sentence split, language per sentence
(`LanguageDetector`), then the rules in `_steps` order, each `(text, reader) -> text`. The order matters:
tokens that contain other tokens go first (an email contains digits and dots, a date contains dashes).

malaya supplies the Malay number words (`malaya.num2word.to_cardinal`), the Malay shortform dictionary
and the Malay/English word lists for language detection. Its own `Normalizer.normalize` is not used: it
translates English words into Malay ("I have" -> "Saya have"), reads "01/12/2001" month-first, takes
9-25 ms for a 500-character paragraph (over half of it in dateparser; this pipeline takes about 1.5 ms),
and fails outright without PySastrawi on any word starting with "se"/"ter".
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable

from app.text.langdetect import ENGLISH, MALAY, Detection, LanguageDetector
from app.text.markup import clean_markup
from app.text.overrides import Overrides
from app.text.readers import EnglishReader, MalayReader, Reader
from app.text.rules import contact, dates, measures, money, numbers, ranges, times, words
from app.text.sentences import SentenceSplitter

__all__ = ["Normalizer", "clean_markup"]

logger = logging.getLogger(__name__)

Step = Callable[[str, Reader], str]

_SURE = 1.0  # a detection margin below this is unsure: the paragraph's language is used instead
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "ʼ": "'", "−": "-"})
_SPACES = re.compile(r"\s{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:])")
_DOUBLE_COMMA = re.compile(r",\s*,")
_LATIN = re.compile(r"[A-Za-zÀ-ɏ]")
_LETTER = re.compile(r"[^\W\d_]")

_WARMUP_TEXT = (
    "Harga rumah RM500,000 pada 12/03/2024, hubungi 012-345 6789 atau emel info@contoh.com.my sebelum "
    "pukul 5.30 petang. The meeting is at 3pm on March 5, 2024 and costs USD 1.2M (about 25%). "
    "Caruman KWSP ke-3 naik 2.5% kepada 61.2 kg, 100-200 ringgit. Visit https://www.jpj.gov.my/a-b now."
)


class Normalizer:
    """Loads malaya's tables and the language model once; `normalize` is pure CPU work and thread-safe."""

    def __init__(self, overrides_path: str | None = None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # malaya's regexes raise FutureWarnings on import
            from malaya.dictionary import DBP_WORDS, ENGLISH_WORDS, KAMUS_DEWAN_WORDS, MALAY_WORDS
            from malaya.num2word import to_cardinal
            from malaya.text.rules import rules_normalizer

        self._readers: dict[str, Reader] = {MALAY: MalayReader(to_cardinal), ENGLISH: EnglishReader()}
        self._overrides = Overrides.load(overrides_path)
        self._splitter = SentenceSplitter(self._overrides.abbreviations)
        self._detector = LanguageDetector(
            malay_words=(*MALAY_WORDS, *DBP_WORDS, *KAMUS_DEWAN_WORDS), english_words=ENGLISH_WORDS
        )
        self._steps: tuple[Step, ...] = (
            lambda text, r: self._overrides.apply(text, r.lang),
            contact.emails,
            contact.urls,
            contact.ic_numbers,
            contact.phones,
            dates.dates,
            ranges.ranges,
            times.times,
            money.money,
            measures.measures,
            numbers.ordinals,
            numbers.years,
            numbers.fractions,
            words.reduplication,
            numbers.alphanumerics,
            numbers.plain_numbers,
            words.symbols,
            words.MalayShortforms(rules_normalizer),
            words.acronyms,
        )

    def warmup(self) -> None:
        """Run every rule once so the first request pays no first-call costs."""
        self.normalize(_WARMUP_TEXT)

    def normalize(self, text: str, malaysian: bool = True) -> str:
        """Spoken form of `text`; with `malaysian=False` only markup stripping and whitespace cleanup.

        Never raises: on an internal error it logs and returns the cleaned input.
        """
        try:
            cleaned = clean_markup(text)
        except Exception:
            logger.exception("markup cleanup failed; using the raw text")
            cleaned = " ".join(str(text).split())
        if not malaysian or not cleaned:
            return cleaned
        try:
            spoken = self._speak(cleaned)
        except Exception:
            logger.exception("text normalization failed; using the cleaned text")
            return cleaned
        return spoken or cleaned

    def _speak(self, text: str) -> str:
        text = text.translate(_QUOTES)
        paragraph: Detection | None = None
        out = []
        for sentence in self._splitter.split(text):
            if not _mostly_latin(sentence):
                out.append(sentence)  # Chinese, Tamil, Arabic...: passes through untouched
                continue
            found = self._detector.detect(sentence)
            if found.margin < _SURE:
                paragraph = paragraph or self._detector.detect(text)
                if paragraph.margin >= _SURE:
                    found = paragraph
            reader = self._readers[found.lang]
            for step in self._steps:
                sentence = step(sentence, reader)
            out.append(sentence)
        return _tidy(" ".join(out))


def _mostly_latin(sentence: str) -> bool:
    letters = len(_LETTER.findall(sentence))
    return letters == 0 or len(_LATIN.findall(sentence)) * 2 >= letters


def _tidy(text: str) -> str:
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _DOUBLE_COMMA.sub(",", text).strip()
