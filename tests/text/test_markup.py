from __future__ import annotations

import pytest

from app.text.markup import clean_markup

CASES = [
    ("**bold** and __strong__", "bold and strong"),
    ("*italic* and _emphasis_", "italic and emphasis"),
    ("snake_case_name stays", "snake_case_name stays"),
    ("~~old~~ new", "old new"),
    ("# Title\nBody text", "Title. Body text"),
    ("## Heading ##", "Heading"),
    ("Title\n=====\nBody", "Title. Body"),
    ("- one\n- two\n- three", "one. two. three."),
    ("* one\n* two", "one. two."),
    ("1. First\n2) Second", "First. Second."),
    ("- [ ] todo\n- [x] done", "todo. done."),
    ("Steps:\n1. Go\n2. Stop", "Steps: Go. Stop."),
    ("[the docs](https://example.com/a_(b)) here", "the docs here"),
    ('[link](https://example.com "title")', "link"),
    ("![a cat](cat.png)", "a cat"),
    ("See [docs][1].\n\n[1]: https://example.com", "See docs."),
    ("Note[^1] here", "Note here"),
    ("<https://example.com>", "https://example.com"),
    ("<mailto:a@b.com>", "a@b.com"),
    ("Run `make test` now", "Run make test now"),
    ("```python\nprint('hi')\n```\nDone.", "print('hi'). Done."),
    ("> quoted\n> more", "quoted more"),
    ("> Quoted.\n> More", "Quoted. More"),
    ("---\nafter rule", "after rule"),
    ("| a | b |\n|---|---|\n| 1 | 2 |", "a, b. 1, 2."),
    ("<p>Hello <b>world</b></p><p>Again</p>", "Hello world. Again"),
    ("<ul><li>One</li><li>Two</li></ul>", "One. Two"),
    ("Line<br>Break", "Line. Break"),
    ("<script>alert(1)</script>Safe", "Safe"),
    ("<!-- hidden -->Shown", "Shown"),
    ("Fish &amp; chips &lt;3", "Fish & chips <3"),
    ("a < b and c > d", "a < b and c > d"),
    ("Hello   world\n\n\nHow are you?", "Hello world. How are you?"),
    ("wrapped line\ncontinues here", "wrapped line continues here"),
    ("tab\tand\u00a0nbsp", "tab and nbsp"),
    ("zero\u200bwidth", "zerowidth"),
    ("\\*not bold\\*", "not bold"),
    ("", ""),
    ("   \n\t  ", ""),
    ("**", ""),
    ("中文 **粗体** 文本", "中文 粗体 文本"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_clean_markup(text: str, expected: str) -> None:
    assert clean_markup(text) == expected


def test_clean_markup_is_idempotent() -> None:
    for text, _ in CASES:
        once = clean_markup(text)
        assert clean_markup(once) == once
