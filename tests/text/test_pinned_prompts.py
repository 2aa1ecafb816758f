"""A request with plain text sends the backend exactly today's prompt (issue 30: text as spans changes nothing a
client sees). The prompts in pinned_prompts.json were recorded from main before the change (6ce5edb), through the
same path: the real normalizer, the real SpeechService and SegmentStream, a scripted backend that records them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.service.requests import SpeechRequest
from app.text.normalizer import Normalizer
from tests.unit.test_longform import Script, service_for

PINNED = json.loads((Path(__file__).parent / "pinned_prompts.json").read_text(encoding="utf-8"))
TEXTS = {
    "malay": "Dr. Tan berhutang RM5.50 pada 3/4, sila bayar sebelum 12/03/2024.",
    "english": "The meeting is at 3pm on March 5, 2024 and costs USD 1.2M (about 25%).",
    "chinese": "你好，我是客服。请问有什么可以帮您？我们的营业时间是早上9点到晚上6点。",
    "code_switched": "Saya nak order 2 cups of coffee, boleh hantar ke Jln. Ampang No. 15 before 5.30pm?",
    "numbers": "Harga rumah RM500,000 naik 2.5% kepada 61.2 kg, hubungi 012-345 6789 atau emel info@contoh.com.my sekarang.",
}


@pytest.mark.parametrize("name", sorted(TEXTS))
async def test_plain_text_sends_todays_prompts(normalizer: Normalizer, name: str) -> None:
    backend = Script()
    service = service_for(backend)  # segments of at most 40 characters (20 for the first): several per text
    service.text_input.normalizer = normalizer
    stream = (await service.prepare_speech(SpeechRequest(input=TEXTS[name], voice="husein"))).stream
    async for event in stream.events():
        assert event.kind != "error", event.error
    assert [c.prompt for c in backend.calls] == PINNED[name]
