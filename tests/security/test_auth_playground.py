"""The playground under the service's security headers (issue 24), in a real headless Chromium: a strict CSP
(no inline script) that the page works under, no framing, no sniffing, and the key kept for the tab only."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from app.main import Components
from app.settings import Settings
from tests.service.test_playground import CHROMIUM, CHROMIUM_ARGS
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

KEY = "pg-tab-secret-8080"
TEXT = "Selamat pagi."

pytestmark = pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (make system-deps)")

# every CSP violation of the page, as the browser reports it
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with FakeVLLM(n_tokens=50, rate=200) as fake:
        settings = Settings(_env_file=None, tts_api=fake.url, api_key=KEY)
        with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as u:
            yield u


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_every_response_carries_the_security_headers(url: str) -> None:
    for path in ("/playground/", "/playground/app.js", "/health", "/v1/models"):
        r = httpx.get(f"{url}{path}", timeout=10)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
    docs = httpx.get(f"{url}/docs", headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == "frame-ancestors 'none'"


def wait_done(pg: object) -> dict:
    pg.wait_for_function("() => ['done', 'error'].includes(window.playground.state)", timeout=120_000)
    return pg.evaluate("() => ({...window.playground})")


def test_the_playground_works_under_its_csp_and_keeps_the_key_for_the_tab(browser: object, url: str) -> None:
    context = browser.new_context()
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 401" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/playground/")
    page.fill("#api-key", KEY)
    page.dispatch_event("#api-key", "change")
    page.wait_for_function("() => window.playground.voicesLoaded", timeout=30_000)
    for fmt in ("pcm", "wav"):  # streamed through Web Audio; a whole file in the <audio> element (a blob: URL)
        page.fill("#text", TEXT)
        page.select_option("#format", fmt)
        page.click("#speak")
        s = wait_done(page)
        assert s["state"] == "done", s["lastError"]
        assert s["playedSeconds"] > 0
    assert page.evaluate("() => window.cspViolations") == []
    assert not errors, errors

    # the key: in this tab's sessionStorage, never in localStorage; a reload keeps it, another tab has none
    assert page.evaluate("() => sessionStorage.getItem('tts-api-key')") == KEY
    assert page.evaluate("() => localStorage.getItem('tts-api-key')") is None
    assert page.evaluate("() => JSON.stringify(localStorage)").find(KEY) == -1
    page.reload()
    assert page.input_value("#api-key") == KEY
    other = context.new_page()
    other.goto(f"{url}/playground/")
    assert other.input_value("#api-key") == ""
    assert other.evaluate("() => sessionStorage.getItem('tts-api-key')") is None
    context.close()


def test_another_site_cannot_frame_the_playground(browser: object, url: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_content(f'<iframe id="f" src="{url}/playground/"></iframe>')
    page.wait_for_timeout(1500)
    framed = [f for f in page.frames if f is not page.main_frame]
    assert framed, "the iframe was not created"
    # a refused frame never runs the playground's script
    assert all(f.evaluate("() => typeof window.playground") == "undefined" for f in framed)
    context.close()
