"""Written text -> what a Malaysian speaker reads aloud, per sentence in Malay or English.

    normalizer = Normalizer()            # loads malaya and the language model once (seconds)
    normalizer.normalize("Harga RM500.")  # "Harga lima ratus ringgit."

Pipeline: control markers and emoji removed, `clean_markup` (markdown/HTML/whitespace), sentence split,
chat spelling (`rules.chat`), language per sentence (`LanguageDetector`, or the caller's `language`; names
and number signs do not vote: `names.py`, `rules.numbering`), then the rules in `_steps` order, each
`(text, reader) -> text`. The order matters: tokens that contain other tokens go first (an email contains
digits and dots, a date contains dashes).

Chinese: numbers in a sentence with Han characters are read in Mandarin (`chinese.py`); a run of two or
more Latin words inside it goes through the Malay/English pipeline. Other scripts pass through untouched.
Input with nothing speakable left (only markers, emoji, punctuation) normalizes to "".

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
from collections.abc import Callable, Sequence
from itertools import groupby

from app.text.chinese import HAN, ChineseReader, chinese_numbers
from app.text.document import Reading
from app.text.langdetect import ENGLISH, MALAY, Detection, LanguageDetector
from app.text.markup import clean_markup, speakable, strip_unspeakable
from app.text.names import NameFinder
from app.text.offsets import Mapped, Tracker, follow, snapped, sub, tracking, untracked
from app.text.options import LANGUAGES, TextOptions
from app.text.overrides import Overrides
from app.text.readers import EnglishReader, MalayReader, Reader
from app.text.rules import (
    calendar,
    chat,
    contact,
    dates,
    keypad,
    measures,
    money,
    numbering,
    numbers,
    ranges,
    roman,
    times,
    words,
)
from app.text.sentences import SentenceSplitter

__all__ = ["LANGUAGES", "Normalizer", "clean_markup"]

CHINESE = "zh"

logger = logging.getLogger(__name__)

Step = Callable[[str, Reader], str]

_SURE = 1.0  # a detection margin below this is unsure: the paragraph's language is used instead
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "ʼ": "'", "−": "-"})
_SPACES = re.compile(r"\s{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:])")
_DOUBLE_COMMA = re.compile(r",\s*,")
_LATIN = re.compile(r"[A-Za-zÀ-ɏ]")
_LETTER = re.compile(r"[^\W\d_]")
# Chinese sentences are cut at Han characters and CJK punctuation; a piece between them with two or
# more Latin words goes through the Malay/English pipeline, the rest is read with the Chinese rules.
_HAN_SPAN = re.compile(r"([\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+)")
_LATIN_WORD = re.compile(r"(?<![\w])[A-Za-z][a-z']+(?![\w])|(?<![\w])[A-Za-z]{2,}(?![\w])")
_ALIAS = "\ue000"

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

        self._readers: dict[str, Reader] = {
            MALAY: MalayReader(to_cardinal), ENGLISH: EnglishReader(), CHINESE: ChineseReader()
        }  # fmt: skip
        self._overrides = Overrides.load(overrides_path)
        self._splitter = SentenceSplitter(self._overrides.abbreviations)
        malay_words = (*MALAY_WORDS, *DBP_WORDS, *KAMUS_DEWAN_WORDS)
        self._chat = chat.ChatSpelling(rules_normalizer, malay_words, ENGLISH_WORDS)
        names = NameFinder()
        self._detector = LanguageDetector(
            malay_words=(*malay_words, *self._chat.malay_keys), english_words=ENGLISH_WORDS, names=names
        )
        self._steps: tuple[Step, ...] = (
            lambda text, r: self._overrides.apply(text, r.lang),
            lambda text, r: names.patronymics(text),  # before the chat: "Siti bt Ahmad" is "binti", not "buat"
            self._chat,  # after the overrides: "dr Zainal" is a doctor, "dr rumah" is "dari rumah"
            calendar.hijri_years,
            roman.roman_numerals,
            contact.emails,
            contact.urls,
            numbering.labelled_numbers,  # before the numbers it names: "no. IC 850312-10-5521"
            keypad.keys,  # before the numbers: "*100*5#" is read key by key
            contact.ic_numbers,
            contact.phones,
            dates.dates,
            times.parts_of_day,
            ranges.ranges,
            times.times,
            money.money,
            measures.measures,
            numbers.ordinals,
            numbering.number_signs,
            numbers.years,
            numbers.fractions,
            words.reduplication,
            numbers.alphanumerics,
            numbers.plain_numbers,
            words.symbols,
            words.acronyms,
        )

    def warmup(self) -> None:
        """Run every rule once so the first request pays no first-call costs."""
        self.normalize(_WARMUP_TEXT)

    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str:
        """Spoken form of `text`; with `malaysian=False` only markup stripping and whitespace cleanup.

        `language` ("auto", "ms", "en", "zh") overrides detection for the whole input. Returns "" when
        nothing speakable is left (only control markers, emoji, punctuation). Never raises: on an
        internal error it logs and returns the cleaned input.
        """
        return self._spoken(str(text), TextOptions(malaysian, language), None)

    def speak(self, readings: Sequence[Reading], options: TextOptions) -> Mapped:
        """The spoken text of a segment's readings (`app.text.document.readings`), with the map back to the
        source: each spoken word names the source words it came from. Consecutive readings with the same
        language and rules are normalized as one text (a plain text: exactly as `normalize` reads it)."""
        parts = []
        for (language, normalized), group in groupby(readings, key=lambda r: (r.language, r.normalized)):
            text = Mapped.join([r.text for r in group], "")
            tracker = Tracker(text.text, text.spans)
            if normalized:
                tracker.follow(self._spoken(text.text, options.reading(language), tracker))
            else:
                tracker.follow(" ".join(text.text.split()))
            parts.append(snapped(tracker.mapped(), text))
        return Mapped.join([p for p in parts if p.text], " ")

    def _spoken(self, text: str, options: TextOptions, tracker: Tracker | None) -> str:
        """`normalize`'s work; a `tracker` over `text` (None: none) follows every rewrite."""
        try:
            cleaned = clean_markup(strip_unspeakable(text))
        except Exception:
            logger.exception("markup cleanup failed; using the raw text")
            cleaned = " ".join(text.split())
        if tracker is not None:
            tracker.follow(cleaned)
        if not speakable(cleaned) or not options.normalize_malaysian:
            return cleaned if speakable(cleaned) else ""
        saved = (tracker.text, list(tracker.spans)) if tracker is not None else None
        try:
            spoken = self._speak(cleaned, options.language, tracker)
            if speakable(spoken):
                return spoken
        except Exception:
            logger.exception("text normalization failed; using the cleaned text")
        if tracker is not None and saved is not None:
            tracker.text, tracker.spans = saved
        return cleaned

    def _speak(self, text: str, language: str, tracker: Tracker | None) -> str:
        text = text.translate(_QUOTES)  # one character for one: the map holds
        if tracker is not None:
            tracker.text = text
        paragraph: list[Detection] = []
        out, maps, pos = [], [], 0
        for sentence in self._splitter.split(text):
            at = text.find(sentence, pos)
            pos = at + len(sentence)
            inner = Tracker(sentence, tracker.spans[at:pos]) if tracker is not None else None
            with tracking(inner):
                if language == CHINESE or HAN.search(sentence):
                    with untracked():  # its Latin runs are read apart: followed by a diff at the end
                        spoken = self._speak_chinese(sentence, language, text, paragraph)
                elif not _mostly_latin(sentence):
                    spoken = sentence  # Tamil, Arabic, Thai...: passes through untouched
                else:
                    spoken = self._speak_latin(sentence, language, text, paragraph)
            out.append(spoken)
            if inner is not None:
                inner.follow(spoken)
                maps.append(inner.mapped())
        if tracker is not None:
            joined = Mapped.join(maps, " ")
            tracker.text, tracker.spans = joined.text, list(joined.spans)
        with tracking(tracker):
            return _tidy(" ".join(out))

    def _speak_latin(self, sentence: str, language: str, text: str, paragraph: list[Detection]) -> str:
        sentence = self._chat.common(sentence)
        if language in self._readers:
            lang = language
        else:
            found = self._detector.detect(sentence)
            if found.margin < _SURE:
                if not paragraph:
                    with untracked():
                        paragraph.append(self._detector.detect(self._chat.common(text)))
                if paragraph[0].margin >= _SURE:
                    found = paragraph[0]
            lang = found.lang
        reader = self._readers[lang]
        for step in self._steps:
            sentence = follow(step(sentence, reader))
        return sentence

    def _speak_chinese(self, sentence: str, language: str, text: str, paragraph: list[Detection]) -> str:
        """Numbers read in Mandarin; with `language` auto, Latin word runs in their own language."""
        runs: list[str] = []
        if language != CHINESE:
            pieces = _HAN_SPAN.split(sentence)
            for i in range(0, len(pieces), 2):  # even indexes: the pieces without Han
                piece = pieces[i]
                if len(_LATIN_WORD.findall(piece)) >= 2:
                    spoken = self._speak_latin(piece.strip(), language, text, paragraph)
                    runs.append(piece[: len(piece) - len(piece.lstrip())] + spoken + piece[len(piece.rstrip()) :])
                    pieces[i] = f"{_ALIAS}{chr(0xE100 + len(runs) - 1)}"
            sentence = "".join(pieces)
        reader = self._readers[CHINESE]
        sentence = keypad.chinese_keys(sentence, reader)
        pieces = _HAN_SPAN.split(sentence)
        for i in range(0, len(pieces), 2):  # contact rules see each piece alone: Han letters are \w
            for step in (contact.emails, contact.urls, contact.ic_numbers, contact.phones):
                pieces[i] = step(pieces[i], reader)
        sentence = "".join(pieces)
        sentence = chinese_numbers(sentence)
        if runs:
            sentence = re.sub(f"{_ALIAS}(.)", lambda m: runs[ord(m.group(1)) - 0xE100], sentence)
        return sentence


def _mostly_latin(sentence: str) -> bool:
    letters = len(_LETTER.findall(sentence))
    return letters == 0 or len(_LATIN.findall(sentence)) * 2 >= letters


def _tidy(text: str) -> str:
    text = sub(_SPACES, " ", text)
    text = sub(_SPACE_BEFORE_PUNCT, r"\1", text)
    return follow(sub(_DOUBLE_COMMA, ",", text).strip())
