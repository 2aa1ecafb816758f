"""Roman numerals where one is meant, never in "I" (the pronoun) or "Mix" (a word).

- "ke-XII" -> "kedua belas"; after a word that numbers things ("Bab IV", "Chapter IV", "Jilid II",
  "Tingkatan V", "Part III") -> the cardinal: "Bab empat", "Chapter four".
- "Perang Dunia II" / "World War II" -> "Perang Dunia Kedua" / "World War two".
- A ruler's name and a numeral of I, V and X letters ("Elizabeth II", "Sultan Ibrahim IV", "Henry VIII")
  -> Malay "Elizabeth Kedua", English "Elizabeth the second".
Only upper-case numerals in valid Roman form are read; one letter ("I", "V", "X") only after a numbering word.
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader

_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}
_VALID = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_NUMBERING = (
    "Bab|Jilid|Bahagian|Fasal|Perkara|Seksyen|Tingkatan|Darjah|Tahap|Fasa|Siri|Musim|Peringkat|Jadual|Lampiran|"
    "Rajah|Unit|Modul|Kelas|Buku|Chapter|Part|Volume|Vol\\.|Book|Section|Phase|Season|Level|Form|Grade|Stage|"
    "Appendix|Schedule|Article|Act|Episode|Round|Pusingan|Kategori|Category|Class|Type|Jenis|Gred|Zon|Zone"
)
_KE = re.compile(r"\b([Kk])e-([IVXLCDM]+)\b")
_AFTER_WORD = re.compile(rf"\b({_NUMBERING})\s+([IVXLCDM]+)\b(?!['’-])")
_WAR = re.compile(r"\b(Perang Dunia|World War)\s+(I{1,2})\b")
_REGNAL = re.compile(r"\b((?:Sultan|Raja|Ratu|Queen|King|Pope|Paus|Tuanku|Yang di-Pertuan Agong)\s+)?"
                     r"([A-Z][a-z]{2,})\s+(?=[IVX])((?:X{0,3})(?:IX|IV|V?I{0,3}))\b(?!['’.-]\w)")


def roman_value(numeral: str) -> int | None:
    """The value of a valid upper-case Roman numeral, else None."""
    if not numeral or not _VALID.fullmatch(numeral):
        return None
    total = 0
    for i, c in enumerate(numeral):
        value = _VALUES[c]
        total += -value if i + 1 < len(numeral) and _VALUES[numeral[i + 1]] > value else value
    return total


def _malay_ordinal(n: int, r: Reader) -> str:
    return "Pertama" if n == 1 else "Ke" + r.cardinal(n)


def roman_numerals(text: str, r: Reader) -> str:
    if not re.search(r"[IVXLCDM]", text):
        return text

    def ke(m: re.Match[str]) -> str:
        n = roman_value(m.group(2))
        if n is None:
            return m.group()
        word = r.ordinal(n)
        return word.capitalize() if m.group(1) == "K" else word

    def numbered(m: re.Match[str]) -> str:
        n = roman_value(m.group(2))
        return m.group() if n is None else f"{m.group(1)} {r.cardinal(n)}"

    def war(m: re.Match[str]) -> str:
        n = len(m.group(2))
        return f"{m.group(1)} {_malay_ordinal(n, r) if r.lang == 'ms' else r.cardinal(n)}"

    def regnal(m: re.Match[str]) -> str:
        n = roman_value(m.group(3))
        title = m.group(1) or ""
        if n is None or n == 0 or (len(m.group(3)) == 1 and not title):
            return m.group()
        spoken = _malay_ordinal(n, r) if r.lang == "ms" else f"the {r.ordinal(n)}"
        return f"{title}{m.group(2)} {spoken}"

    text = sub(_KE, ke, text)
    text = sub(_WAR, war, text)
    text = sub(_AFTER_WORD, numbered, text)
    return sub(_REGNAL, regnal, text)
