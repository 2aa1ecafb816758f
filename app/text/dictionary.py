"""Pronunciation dictionaries, as ElevenLabs keeps them: rules that say how a written string is read, applied to a
request's text before the normalizer's rules and the bundled overrides (issue 33).

A rule is an alias (`string_to_replace` -> `alias`: the text the model reads instead) or a phoneme (a
pronunciation in an alphabet such as IPA). Our model reads text, not phonemes: phoneme rules are stored and given
back (get, download), and a request whose text meets one is told they were not applied (`phonemes_met`).

`case_sensitive` (default true) and `word_boundaries` (default true: the string matches as whole words only) are
ElevenLabs' options. Several dictionaries apply in the order given and the first wins: at each place in the text,
the earliest dictionary's rule that matches there is used (within one dictionary, the longest string). One pass:
what a rule put in is never read by another rule.

PLS (W3C Pronunciation Lexicon Specification 1.0) in and out: `parse_pls` reads `<lexeme>`s of `<grapheme>`s with
an `<alias>` or a `<phoneme>`, through defusedxml (a DTD, an entity or an external reference is refused), after
the size checks; `write_pls` writes a version back. Everything is bounded (`LIMITS`) and a bad value is a 400
naming it (`DictionaryError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from app.text.offsets import replace_spans

PLS_NS = "http://www.w3.org/2005/01/pronunciation-lexicon"
ALPHABETS = ("ipa", "x-sampa", "cmu-arpabet")  # what a PLS may name; any other is kept as given


@dataclass(frozen=True)
class Limits:
    file_bytes: int = 1_048_576  # a PLS upload
    rules: int = 5_000  # one version's rules
    string_chars: int = 200  # `string_to_replace`
    replacement_chars: int = 500  # an alias or a phoneme
    name_chars: int = 255  # a dictionary's name
    description_chars: int = 1_000
    locators: int = 3  # dictionaries per request (ElevenLabs' limit)


LIMITS = Limits()


@dataclass(frozen=True)
class Rule:
    """One rule: `alias` for an alias rule, `phoneme` and `alphabet` for a phoneme rule."""

    string_to_replace: str
    type: str = "alias"  # "alias" or "phoneme"
    alias: str = ""
    phoneme: str = ""
    alphabet: str = ""
    case_sensitive: bool = True
    word_boundaries: bool = True

    @classmethod
    def from_json(cls, obj: Any, param: str = "rules") -> Rule:
        """A rule as ElevenLabs' API sends it, checked; a 400 naming `param` otherwise."""
        if not isinstance(obj, dict):
            raise _bad(f"{param} must be an object", param)
        kind = obj.get("type")
        if kind not in ("alias", "phoneme"):
            raise _bad(f"{param}.type must be 'alias' or 'phoneme'", param)
        flags = {k: obj.get(k) for k in ("case_sensitive", "word_boundaries")}
        for k, v in flags.items():
            if v is not None and not isinstance(v, bool):
                raise _bad(f"{param}.{k} must be true or false", param)
        text = {k: obj.get(k) for k in ("string_to_replace", "alias", "phoneme", "alphabet")}
        needed = ("string_to_replace", "alias") if kind == "alias" else ("string_to_replace", "phoneme", "alphabet")
        for k in needed:
            if not isinstance(text[k], str) or not text[k].strip():
                raise _bad(f"{param}.{k} must be a non-empty string", param)
        return cls(
            string_to_replace=text["string_to_replace"], type=kind,
            alias=text["alias"] if kind == "alias" else "",
            phoneme=text["phoneme"] if kind == "phoneme" else "",
            alphabet=text["alphabet"] if kind == "phoneme" else "",
            case_sensitive=flags["case_sensitive"] is not False, word_boundaries=flags["word_boundaries"] is not False,
        ).checked(param)  # fmt: skip

    def checked(self, param: str = "rules") -> Rule:
        """This rule, if every string fits its limit and holds no control character; else a 400."""
        if len(self.string_to_replace) > LIMITS.string_chars:
            raise _bad(f"{param}.string_to_replace is over {LIMITS.string_chars} characters", param)
        for name in ("string_to_replace", "alias", "phoneme", "alphabet"):
            value = getattr(self, name)
            if len(value) > LIMITS.replacement_chars:
                raise _bad(f"{param}.{name} is over {LIMITS.replacement_chars} characters", param)
            if _CONTROL.search(value):
                raise _bad(f"{param}.{name} holds a control character", param)
        return self

    def to_json(self) -> dict[str, Any]:
        """The rule as ElevenLabs' API gives it back."""
        out: dict[str, Any] = {"type": self.type, "string_to_replace": self.string_to_replace}
        if self.type == "alias":
            out["alias"] = self.alias
        else:
            out |= {"phoneme": self.phoneme, "alphabet": self.alphabet}
        return out | {"case_sensitive": self.case_sensitive, "word_boundaries": self.word_boundaries}


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class DictionaryError(ValueError):
    """A rule, a list of rules or a PLS file that cannot be taken; `param` names the field at fault (the service
    answers it with a 400)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _bad(message: str, param: str) -> DictionaryError:
    return DictionaryError(message, param)


def rules_from_json(items: Any, param: str = "rules") -> tuple[Rule, ...]:
    """A request's list of rules, checked (at most `LIMITS.rules`); a later rule for the same string replaces an
    earlier one, as ElevenLabs' add-rules does."""
    if not isinstance(items, list):
        raise _bad(f"{param} must be a list of rules", param)
    if len(items) > LIMITS.rules:
        raise _bad(f"{param} holds {len(items)} rules; the limit is {LIMITS.rules}", param)
    return merged((), [Rule.from_json(item, f"{param}[{i}]") for i, item in enumerate(items)])


def merged(rules: Sequence[Rule], added: Iterable[Rule]) -> tuple[Rule, ...]:
    """`rules` with `added`: a rule for a string already there replaces it (in its place), a new one goes last."""
    out = {r.string_to_replace: r for r in rules}
    for r in added:
        out[r.string_to_replace] = r
    if len(out) > LIMITS.rules:
        raise _bad(f"the dictionary would hold {len(out)} rules; the limit is {LIMITS.rules}", "rules")
    return tuple(out.values())


def removed(rules: Sequence[Rule], strings: Iterable[str]) -> tuple[Rule, ...]:
    gone = set(strings)
    return tuple(r for r in rules if r.string_to_replace not in gone)


@dataclass(frozen=True)
class Dictionary:
    """One version of a dictionary, as a request applies it (hashable: it travels in `TextOptions`; its hash is
    its id and version's, so that thousands of rules are not hashed per use)."""

    id: str
    version_id: str
    rules: tuple[Rule, ...] = field(hash=False)


# -- applying ---------------------------------------------------------------------------------------------------


_WORD_CHAR = re.compile(r"\w")
_LEADING_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class _Candidate:
    key: tuple[int, int, int]  # its priority: its dictionary's place, the longest string first, then its place
    rule: Rule
    folded: str  # `string_to_replace` lowercased (`_lowered`): how a rule of any case is compared


class _Matcher:
    """Where the rules of some dictionaries match, found in one left-to-right pass. A rule that matches whole
    words is looked up by the word it starts with (a dict lookup at each word's start), any other by its first
    character; at each place the candidates are tried in priority order, as a regex alternation would be, but
    without trying every rule at every place (thousands of rules cost no more than a few)."""

    def __init__(self, dictionaries: tuple[Dictionary, ...]) -> None:
        self.by_word: dict[str, list[_Candidate]] = {}
        self.by_char: dict[str, list[_Candidate]] = {}
        for n, d in enumerate(dictionaries):
            for k, r in enumerate(d.rules):
                folded = _lowered(r.string_to_replace)
                c = _Candidate((n, -len(r.string_to_replace), k), r, folded)
                first = _LEADING_WORD.match(folded)
                if r.word_boundaries and first is not None:
                    self.by_word.setdefault(first.group(), []).append(c)
                else:
                    self.by_char.setdefault(folded[0], []).append(c)
        for table in (self.by_word, self.by_char):
            for found in table.values():
                found.sort(key=lambda c: c.key)

    def matches(self, text: str) -> list[tuple[int, int, Rule]]:
        """Each match, leftmost first, apart: `(start, end, rule)`."""
        out: list[tuple[int, int, Rule]] = []
        lower, i = _lowered(text), 0
        while i < len(text):
            candidates = self.by_char.get(lower[i], [])
            if (i == 0 or not _WORD_CHAR.match(text, i - 1)) and (word := _LEADING_WORD.match(lower, i)):
                candidates = sorted([*candidates, *self.by_word.get(word.group(), [])], key=lambda c: c.key)
            found = next((c for c in candidates if _at(text, lower, i, c)), None)
            if found is None:
                i += 1
                continue
            end = i + len(found.rule.string_to_replace)
            out.append((i, end, found.rule))
            i = end
        return out


def _lowered(text: str) -> str:
    """`text` lowercased one character for one (the few letters whose lowercase is longer, "İ", kept)."""
    lower = text.lower()
    return lower if len(lower) == len(text) else "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _at(text: str, lower: str, i: int, c: _Candidate) -> bool:
    """Whether candidate `c` matches `text` at `i` (its case, its word boundaries)."""
    r = c.rule
    end = i + len(r.string_to_replace)
    hit = text.startswith(r.string_to_replace, i) if r.case_sensitive else lower.startswith(c.folded, i)
    if not hit or not r.word_boundaries:
        return hit
    return (i == 0 or not _WORD_CHAR.match(text, i - 1)) and (end >= len(text) or not _WORD_CHAR.match(text, end))


@lru_cache(maxsize=64)
def _matcher(dictionaries: tuple[Dictionary, ...]) -> _Matcher:
    return _Matcher(dictionaries)


def apply(dictionaries: Sequence[Dictionary], text: str) -> str:
    """`text` with every alias rule's string replaced by its alias (phoneme rules leave theirs as written). Each
    replacement is recorded (`offsets.replace_spans`), so an active tracker maps an alias back to the string it
    replaced."""
    if not dictionaries:
        return text
    edits = [(s, e, r.alias) for s, e, r in _matcher(tuple(dictionaries)).matches(text) if r.type == "alias"]
    return replace_spans(text, edits)


def phonemes_met(dictionaries: Sequence[Dictionary], text: str) -> list[Rule]:
    """The phoneme rules that `apply` meets in `text` (and leaves as written: our model reads text), in order of
    their first place, each once."""
    if not dictionaries:
        return []
    met: dict[Rule, None] = {}
    for _, _, rule in _matcher(tuple(dictionaries)).matches(text):
        if rule.type == "phoneme":
            met.setdefault(rule)
    return list(met)


# -- PLS ---------------------------------------------------------------------------------------------------------


def parse_pls(data: bytes, param: str = "file") -> tuple[Rule, ...]:
    """The rules of a PLS lexicon: each `<lexeme>`'s graphemes, each with the lexeme's first `<alias>` (an alias
    rule) or else its first `<phoneme>` (a phoneme rule, in the lexeme's or the lexicon's alphabet). PLS matches
    graphemes as written: case-sensitive, whole words. A 400 naming `param` for anything else."""
    if len(data) > LIMITS.file_bytes:
        raise _bad(f"{param} is {len(data)} bytes; the limit is {LIMITS.file_bytes}", param)
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise _bad(
            f"{param}: DTDs, entities and external references are refused ({type(exc).__name__})", param
        ) from None
    except SafeET.ParseError as exc:
        line, column = exc.position
        raise _bad(f"{param} is not well-formed XML at line {line}, column {column + 1}", param) from None
    if _local(root.tag) != "lexicon":
        raise _bad(f"{param} is not a PLS lexicon: its root element is <{_local(root.tag)}>", param)
    alphabet = root.get("alphabet") or "ipa"
    rules: list[Rule] = []
    for lexeme in root:
        if _local(lexeme.tag) != "lexeme":
            continue
        rules += _lexeme_rules(lexeme, alphabet, param)
        if len(rules) > LIMITS.rules:
            raise _bad(f"{param} holds more than {LIMITS.rules} rules", param)
    return merged((), rules)


def _lexeme_rules(lexeme: Any, alphabet: str, param: str) -> list[Rule]:
    children = [(_local(c.tag), (c.text or "").strip(), c) for c in lexeme]
    graphemes = [t for tag, t, _ in children if tag == "grapheme" and t]
    alias = next((t for tag, t, _ in children if tag == "alias" and t), None)
    phoneme = next(((t, c.get("alphabet")) for tag, t, c in children if tag == "phoneme" and t), None)
    if not graphemes or (alias is None and phoneme is None):
        return []
    if alias is not None:
        return [Rule(g, "alias", alias=alias).checked(param) for g in graphemes]
    assert phoneme is not None
    kind = phoneme[1] or lexeme.get("alphabet") or alphabet
    return [Rule(g, "phoneme", phoneme=phoneme[0], alphabet=kind).checked(param) for g in graphemes]


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def write_pls(rules: Sequence[Rule], language: str = "en-US") -> bytes:
    """A PLS 1.0 lexicon of `rules` (UTF-8): an alias rule as a lexeme's `<alias>`, a phoneme rule as its
    `<phoneme alphabet=...>`."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<lexicon version="1.0" xmlns="{PLS_NS}" alphabet="ipa" xml:lang={quoteattr(language)}>',
    ]
    for r in rules:
        lines.append(f"  <lexeme><grapheme>{escape(r.string_to_replace)}</grapheme>")
        if r.type == "alias":
            lines.append(f"    <alias>{escape(r.alias)}</alias></lexeme>")
        else:
            lines.append(f"    <phoneme alphabet={quoteattr(r.alphabet)}>{escape(r.phoneme)}</phoneme></lexeme>")
    lines.append("</lexicon>")
    return ("\n".join(lines) + "\n").encode()
