from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.text.markup import speakable, strip_unspeakable
from app.text.normalizer import Normalizer, clean_markup

ROOT = Path(__file__).resolve().parents[2]


def test_malaysian_false_only_cleans(normalizer: Normalizer) -> None:
    text = "# Total\n**RM500** for 2 cats at 3pm"
    assert normalizer.normalize(text, malaysian=False) == "Total. RM500 for 2 cats at 3pm"
    assert normalizer.normalize(text, malaysian=False) == clean_markup(text)


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t", "**", "<p></p>", "---"])
def test_empty_after_cleanup_gives_empty(normalizer: Normalizer, text: str) -> None:
    assert normalizer.normalize(text) == ""
    assert normalizer.normalize(text, malaysian=False) == ""


def test_internal_error_falls_back_to_cleaned_text(
    normalizer: Normalizer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(text: str, reader: object) -> str:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(normalizer, "_steps", (boom,))
    with caplog.at_level(logging.ERROR, logger="app.text.normalizer"):
        assert normalizer.normalize("**Harga** RM500") == "Harga RM500"
    assert "text normalization failed" in caplog.text
    assert caplog.records[-1].exc_info is not None


def test_markup_error_falls_back_to_collapsed_text(
    normalizer: Normalizer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(text: str) -> str:
        raise RuntimeError("markup bug")

    monkeypatch.setattr("app.text.normalizer.clean_markup", boom)
    with caplog.at_level(logging.ERROR, logger="app.text.normalizer"):
        assert normalizer.normalize("  I have   2 cats ") == "I have two cats"
    assert "markup cleanup failed" in caplog.text


ODD_INPUTS = [
    "RM" * 50,
    "1" * 200,
    "a - b -- c --- d",
    "@@@ ### $$$ %%% ^^^",
    "12/34/5678 99:99 0-0-0 +++ 1-",
    "RM1.2.3.4 USD$5 $$5 5%% 10-20-30-40",
    "\x00\x01 control \x7f chars",
    "😀" * 30,
    "ke- ke-0 0th 00:00 24:00 12:60pm",
    "9" * 40 + " ringgit",
    "RM" + "9" * 40,
    "a" * 5000,
]


@pytest.mark.parametrize("text", ODD_INPUTS)
def test_odd_inputs_never_raise_or_log(normalizer: Normalizer, text: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="app.text.normalizer"):
        result = normalizer.normalize(text)
    assert isinstance(result, str)
    # Empty exactly when nothing is speakable (emoji, punctuation only): the API answers that with a 400.
    assert bool(result.strip()) == speakable(strip_unspeakable(text))
    assert not caplog.records, caplog.text


def test_no_network_per_request(normalizer: Normalizer, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert normalizer.normalize("Visit https://example.com at 3pm, RM5.") == (
        "Visit example dot com at three P M, five ringgit."
    )


def test_loading_makes_no_network_calls() -> None:
    """A fresh interpreter with sockets refused: construction, warmup and a request all work offline."""
    script = textwrap.dedent(
        """
        import socket
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(args)
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.getaddrinfo = refuse
        socket.create_connection = refuse
        from app.text.normalizer import Normalizer
        n = Normalizer()
        n.warmup()
        print(n.normalize("Saya ada 2 ekor kucing."))
        print("attempts", len(attempts))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["Saya ada dua ekor kucing.", "attempts 0"]
