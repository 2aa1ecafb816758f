"""Number signs: "No. 5" and "#12", and the number of an identity, account or document with its label.

"No." before a number is read "nombor"/"number" ("Rumah No. 5" -> "Rumah nombor lima"), and so is "No."/"no"
next to a label, on either side: "no. IC 850312-10-5521", "IC no. ...", "no kp 900101-14-5678", "No. Akaun:
1234", "No. IC anda 850312-...", "your account no. is 1234", and, with its dot, before a label with no number
after it ("Sila berikan no. akaun anda"). Malay says "nombor I C ...", English "I C number ...", whichever
order it was written in. The labels and how each is said are in `app/data/number_labels.tsv` ("kp" -> "K P",
"tel" -> "telefon"/"telephone"); a label is up to three of them ("No. Kad Pengenalan"). Lower-case "no"
without its dot is a number sign only next to a label ("no tel 012...": English "no 5 year old" stays), and
in English only next to a label that is no English word ("IC", "tel"): "I have no account 12345" stays.

`labelled_numbers` runs before the contact rules, which read the number itself (an IC number in three groups,
a phone number in its groups); `number_signs` reads the plain "No. 5" after the ranges rule (which reads
"No. 12-3" as an address: "dash"). `without_signs` blanks the signs and the abbreviated labels for the
language detector: "No.", "IC" and "a/c" are no English words; "akaun" and "account" still vote.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from app.text.offsets import sub
from app.text.readers import Reader


def bundled_path() -> Path:
    return Path(str(resources.files("app").joinpath("data/number_labels.tsv")))


def _load(path: Path) -> dict[str, tuple[str, str]]:
    """Label -> (Malay spoken form, English spoken form); "" reads the label as written."""
    labels: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) > 3 or not cols[0]:
            raise ValueError(f"{path}:{number}: expected 'written[<TAB>spoken ms[<TAB>spoken en]]', got {line!r}")
        ms = cols[1] if len(cols) > 1 else ""
        labels[cols[0].lower()] = (ms, cols[2] if len(cols) > 2 else ms)
    return labels


_LABELS = _load(bundled_path())
_KEY = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in sorted(_LABELS, key=len, reverse=True))
_KEY_RE = re.compile(rf"(?<![\w/])(?:{_KEY})(?![\w/])", re.IGNORECASE)
_LABEL = rf"(?<![\w/])(?i:{_KEY})(?:\s+(?i:{_KEY})){{0,2}}(?![\w/])"
_CODE = r"(?=[A-Za-z]{0,3}-?[0-9])"  # a number, or a code that starts with one to three letters ("A1234567")
_SIGN = r"(?:\b(?:No|NO|no)\.|\bNo\b|\bNO\b|#)"
_SIGN_NEAR_LABEL = r"\b(?:No|NO|no)\b\.?"
_CONTACT = r"(?=[0-9]{6}-[0-9]{2}-[0-9]{4}|\+?[0-9]{2,3}[ -]?[0-9]{3,4}[ -]?[0-9]{3,4}(?![0-9]))"  # an IC or a phone
# Words that may stand between the label and its number: "No. IC anda 850312-...", "account no. is 1234".
_BETWEEN = (  # noqa: SIM905
    "anda saya sy aku awak kamu dia beliau kami kita your my his her our their is ialah adalah ini this"
).split()
# A plain number after a label is a code, read digit by digit ("no. pelajar 12345"); a phone number (0...) or an
# IC number is left to the contact rules, which read it in groups.
_DIGITS = r"(?:[0-9]{6} [0-9]{2} [0-9]{4}(?![\w-])|[1-9][0-9]{2,}(?![\w-]|[.,/][0-9]|\s[0-9]))?"
# Labels of a MyKad number: its twelve digits, written without dashes ("no. kp 850312105521", "850312 10 5521"),
# are read in the three groups of the dashed form.
_IDENTITY = frozenset({"ic", "i/c", "kp", "k/p", "mykad", "my kad", "pengenalan"})
_FILLER = rf"(?:\s+(?i:{'|'.join(_BETWEEN)})){{0,2}}"
_LABELLED = re.compile(
    # "IC no. 850312-...", "Acc no: 1234", "account no. is 1234"
    rf"(?P<before>{_LABEL})\.?\s*{_SIGN_NEAR_LABEL}(?P<filler_b>{_FILLER})\s*:?\s*{_CODE}(?P<digits_b>{_DIGITS})"
    # "no. IC 850312-...", "no tel sy 012...", "No. IC anda 850312-..."
    rf"|{_SIGN_NEAR_LABEL}\s*(?P<after>{_LABEL})\.?(?P<filler_a>{_FILLER})\s*[:-]?\s*{_CODE}(?P<digits_a>{_DIGITS})"
    # "Sila berikan no. akaun bank anda": with its dot, "no." before a label is a number sign with no number after it
    rf"|\b(?:No|NO|no)\.\s*(?P<bare>{_LABEL})"
    rf"|{_SIGN}\s?:?\s?{_CONTACT}"  # "No. 850312-10-5521", "no. 012-3456789": before the contact rules read them
    # "your passport no.", "IC no. anda": with its dot, "no." after a label is its number sign with the number elsewhere
    rf"|(?P<tail>{_LABEL})\.?\s*(?:No|NO|no)\.(?!\w)"
    r"|\b(?P<whose>[Yy]our|[Mm]y|[Hh]is|[Hh]er|[Oo]ur|[Tt]heir)\s+(?:No|no)\.(?=\s+(?:is|was)\b)"  # "your no. is 012..."
)
_PLAIN = re.compile(rf"{_SIGN}\s?(?=[0-9])|#(?=[A-Z]{{1,3}}-?[0-9])")  # "No. 5", "#12", "#A12345"
_NUMBER_SIGN = re.compile(rf"{_LABELLED.pattern}|{_PLAIN.pattern}")
_SIGN_WORD = re.compile(r"\b[Nn][Oo]\b\.?|#")
_ANY_SIGN = re.compile(r"\b[Nn][Oo]\b|#").search  # most sentences have none: the long patterns are not run


def _label(written: str, r: Reader) -> str:
    """Each label word as it is said in the reader's language ("kp" -> "K P"), or as written."""
    spoken = []
    for m in _KEY_RE.finditer(written):
        ms, en = _LABELS[" ".join(m.group().lower().split())]
        spoken.append((ms if r.lang == "ms" else en) or m.group())
    return " ".join(spoken)


def _abbreviation(label: str) -> bool:
    """A label that is no English word: "IC", "kp", "tel", "a/c" (not "account", "phone")."""
    first = _KEY_RE.match(label)
    return first is not None and (first.group().isupper() or _LABELS[" ".join(first.group().lower().split())] != ("", ""))


def without_signs(text: str) -> str:
    """`text` with its number signs and abbreviated labels blanked (same length): what the language detector reads."""

    def blank(m: re.Match[str]) -> str:
        inside = _SIGN_WORD.sub(lambda s: " " * len(s.group()), m.group())
        return _KEY_RE.sub(lambda k: " " * len(k.group()) if _abbreviation(k.group()) else k.group(), inside)

    return _NUMBER_SIGN.sub(blank, text) if _ANY_SIGN(text) else text


def labelled_numbers(text: str, r: Reader) -> str:
    """ "No." with a label, or before an IC or phone number: "no. kp 900101-..." -> "nombor K P 900101-..."."""
    if not _ANY_SIGN(text):
        return text
    number = r.word("number")

    def said(written: str, filler: str, digits: str | None = "") -> str:
        label = _label(written, r)
        words = f"{number} {label}{filler}" if r.lang == "ms" else f"{label} {number}{filler}"
        if not digits:
            return words
        digits = digits.replace(" ", "")
        last = " ".join(written.lower().split()[-2:])
        if len(digits) == 12 and (last in _IDENTITY or last.split()[-1] in _IDENTITY):
            return f"{words} " + ", ".join(r.digits(g) for g in (digits[:6], digits[6:8], digits[8:]))
        return f"{words} {r.digits(digits)}"

    def speak(m: re.Match[str]) -> str:
        if m.group("before"):
            return said(m.group("before"), m.group("filler_b"), m.group("digits_b")) + " "
        if m.group("after"):
            if r.lang == "en" and not m.group().lower().startswith("no.") and not _abbreviation(m.group("after")):
                return m.group()  # "I have no account 12345": "no" here is no number sign
            return said(m.group("after"), m.group("filler_a"), m.group("digits_a")) + " "
        if m.group("tail"):  # its dot at the very end also ends the sentence
            return said(m.group("tail"), "") + ("." if m.end() == len(text) else "")
        if m.group("whose"):
            return f"{m.group('whose')} {number}"
        if m.group("bare"):
            if r.lang == "en" and not _abbreviation(m.group("bare")):
                return m.group()  # "He said no. Account closed."
            return said(m.group("bare"), "")
        return f"{number} "

    return sub(_LABELLED, speak, text)


def number_signs(text: str, r: Reader) -> str:
    """ "No. 5", "#12": after the ranges rule, which reads "No. 12-3" as an address ("dash")."""
    if not _ANY_SIGN(text):
        return text
    return sub(_PLAIN, f"{r.word('number')} ", text)
