"""Markdown and HTML stripping plus whitespace collapse: what a voice should not read.

`clean_markup` keeps the words (link and image text, code, list items, table cells) and drops the
syntax. Block structure becomes sentence punctuation: a heading, list item, table row or paragraph
that ends without punctuation gets a "." so the voice pauses there; a line that continues in
lowercase is joined with a space (a hard-wrapped sentence).
"""

from __future__ import annotations

import html
import re

from app.prompts import CONTROL_MARKER_RE
from app.text.rules.keypad import KEEP as _KEYS

_TERMINAL = ".!?:;,。！？…"

_HTML_DROP = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_BLOCK = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|thead|tbody|blockquote|pre|section|article|header|footer|hr|dd|dt)\b[^>]*>",
    re.IGNORECASE,
)
_HTML_CELL = re.compile(r"</t[dh]\s*>\s*<t[dh]\b[^>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_LIST = re.compile(r"^\s*(?:[-*+•●▪‣◦]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+.*$")

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^>\s]+|[^@>\s]+@[^>\s]+)>")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STAR_EM = re.compile(r"\*(?=\S)([^*\n]+?)(?<=\S)\*(?![0-9#])")  # not "*100*5#", a USSD code
_UNDER_EM = re.compile(r"(?<![\w])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w])")
_STRIKE = re.compile(r"~~(.+?)~~")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_STRAY = re.compile(rf"((?:{_KEYS.pattern}))|\*+|(?<!\w)_{{2,}}|_{{2,}}(?!\w)|~~")  # a phone key stays: "Press * to"

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None) | dict.fromkeys(
    map(ord, "\u00a0\u2007\u202f\t\f\v"), " "
)
# Emoji and pictographs, their joiners, variation selectors, skin tones and keycaps: nothing to speak.
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U00002B00-\U00002BFF\U0001F1E6-\U0001F1FF"
    "\u2300-\u23FF\u3030\u303D\u3297\u3299\uFE0E\uFE0F\u20E3\u200D"
    "\U000E0020-\U000E007F]+"
)
# Text emoticons: ":)", ":-(", ";)", ":D", ":P" (not "Note:(see below)", not a time "10:30").
_EMOTICON = re.compile(r"(?<![\w:;])[:;]-?[()DPp](?![\w()])")
_SPEAKABLE = re.compile(r"[^\W_]")
_SPACES = re.compile(r"[ ]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.!?;:])")


def _inline(line: str) -> str:
    line = _ESCAPE.sub(r"\1", line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _REF_LINK.sub(r"\1", line)
    line = _FOOTNOTE.sub("", line)
    line = _AUTOLINK.sub(lambda m: m.group(1).removeprefix("mailto:"), line)
    line = _INLINE_CODE.sub(lambda m: m.group(2).strip(), line)
    line = _BOLD.sub(r"\2", line)
    line = _STAR_EM.sub(r"\1", line)
    line = _UNDER_EM.sub(r"\1", line)
    line = _STRIKE.sub(r"\1", line)
    line = _STRAY.sub(lambda m: m.group(1) or "", line)
    return line


def _strip_html(text: str) -> str:
    if "<" not in text and "&" not in text:
        return text
    text = _HTML_DROP.sub("\n", text)
    text = _HTML_COMMENT.sub("", text)
    text = _HTML_CELL.sub(", ", text)
    text = _HTML_BLOCK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    return html.unescape(text)


def _end_sentence(line: str) -> str:
    if not line or line[-1] in _TERMINAL:
        return line
    if len(line) > 1 and line[-1] in "\"')]”’" and line[-2] in _TERMINAL:
        return line
    return line + "."


def _blocks(text: str) -> list[list]:
    """Lines without block syntax, as [line, is_item, needs_stop]; items are headings, list items, table rows."""
    out: list[list] = []

    def stop_previous() -> None:
        if out:
            out[-1][2] = True

    in_fence = False
    for raw in text.split("\n"):
        if _FENCE.match(raw):
            in_fence = not in_fence
            stop_previous()
            continue
        if in_fence:
            if raw.strip():
                out.append([raw.strip(), True, True])
            continue
        if not raw.strip() or _RULE.match(raw) or _TABLE_SEP.match(raw) or _REF_DEF.match(raw):
            stop_previous()
            continue
        if _SETEXT.match(raw) and out:
            stop_previous()
            continue
        line = _QUOTE.sub("", raw)
        heading = _HEADING.match(line)
        is_item = True
        if heading:
            line = heading.group(1)
        elif _LIST.match(line):
            line = _LIST.sub("", line, count=1)
        elif line.strip().startswith("|") or line.count("|") >= 2:
            line = ", ".join(c for c in (c.strip() for c in line.strip().strip("|").split("|")) if c)
        else:
            is_item = False
        line = _inline(line).strip()
        if not line:
            continue
        if is_item:
            stop_previous()
        out.append([line, is_item, is_item])
    return out


def strip_unspeakable(text: str) -> str:
    """Control markers, emoji and text emoticons removed (each leaves a space). Pure."""
    if "<|" in text:
        text = CONTROL_MARKER_RE.sub(" ", text)
    if ":" in text or ";" in text:
        text = _EMOTICON.sub(" ", text)
    return _EMOJI.sub(" ", text)


def speakable(text: str) -> bool:
    """True when `text` has a letter or digit in any script: something a voice can say."""
    return _SPEAKABLE.search(text) is not None


def clean_markup(text: str) -> str:
    """Markdown/HTML stripped, whitespace collapsed, block ends turned into sentence stops. Pure."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    lines = _blocks(_strip_html(text))
    parts: list[str] = []
    for i, (line, is_item, needs_stop) in enumerate(lines):
        if i + 1 < len(lines):
            # A line followed by one in lowercase continues the sentence (hard-wrapped text).
            if needs_stop or not (lines[i + 1][0][:1].islower() or line[-1] in ",;:"):
                line = _end_sentence(line)
        elif is_item and len(lines) > 1:
            line = _end_sentence(line)
        parts.append(line)
    out = _SPACES.sub(" ", " ".join(parts))
    return _SPACE_BEFORE_PUNCT.sub(r"\1", out).strip()
