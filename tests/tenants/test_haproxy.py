"""Behind a real proxy on loopback (Debian's haproxy, `option forwardfor`), per-client limits apply per forwarded
address when the proxy is listed in FORWARDED_ALLOW_IPS, and not at all per client when it is not (issue 34,
item 5). The clients are told apart by their loopback source address (127.0.0.2, 127.0.0.3): haproxy names
each in `X-Forwarded-For`; the service sees haproxy's 127.0.0.1 as its peer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM
from tools.harness import free_port
from tools.proxy import haproxy, haproxy_binary

pytestmark = pytest.mark.skipif(haproxy_binary() is None, reason="no haproxy (apt-get install haproxy)")
BODY = {"input": "Terima kasih kerana menghubungi kami.", "voice": "jenny", "stream": True, "response_format": "pcm"}


async def first_answers(url: str) -> dict[str, list[int]]:
    """Two streams at once from each of two client addresses: the status codes each client got."""
    got: dict[str, list[int]] = {}
    clients = {ip: httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=ip), timeout=30)
               for ip in ("127.0.0.2", "127.0.0.3")}  # fmt: skip
    try:
        streams = []
        for ip, client in clients.items():
            for _ in range(2):
                request = client.build_request("POST", f"{url}/v1/audio/speech", json=BODY)
                resp = await client.send(request, stream=True)
                streams.append(resp)
                got.setdefault(ip, []).append(resp.status_code)
        for resp in streams:
            await resp.aclose()
    finally:
        await asyncio.gather(*(c.aclose() for c in clients.values()))
    return got


@pytest.mark.parametrize("listed", [True, False], ids=["listed-proxy", "unlisted-proxy"])
async def test_per_client_limits_follow_the_forwarded_address_only_from_a_listed_proxy(
    fake: FakeVLLM, tmp_path: Path, listed: bool
) -> None:
    fake.rate = 20  # a stream lasts seconds: each client's first still holds its slot when its second comes
    settings = limits_settings(
        fake.url, max_requests_per_client=1, forwarded_allow_ips="127.0.0.1" if listed else "192.0.2.1"
    )
    with serve_like_tts_api(settings) as (app_url, _), haproxy(
        free_port(), [app_url.removeprefix("http://")], forwardfor=True
    ) as url:
        got = await first_answers(url)
    if listed:  # each client its own share: one stream each, the second a 429
        assert got == {"127.0.0.2": [200, 429], "127.0.0.3": [200, 429]}
    else:  # the header ignored: every client is haproxy's 127.0.0.1, one share for them all
        assert got == {"127.0.0.2": [200, 429], "127.0.0.3": [429, 429]}
