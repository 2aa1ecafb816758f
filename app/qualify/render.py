"""A fixed contact-centre set through the RUNNING service's HTTP API, as a listener gets it: each item streamed as
a 24 kHz WAV and as an 8 kHz mu-law WAV (the telephone line), timed, and written into the listening folder."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import soundfile as sf


@dataclass(frozen=True)
class Item:
    id: str
    language: str  # what the CER is grouped by: ms, en, zh, ms-en (code-switched)
    text: str
    clone: bool = False  # spoken in the cloned voice (POST /v1/audio/vc)


CONTACT_SET: tuple[Item, ...] = (
    Item("malay", "ms", "Terima kasih kerana menghubungi kami. Boleh saya dapatkan nombor akaun anda?"),
    Item("english", "en", "Thank you for calling. Your appointment is confirmed for Tuesday morning."),
    Item("chinese", "zh", "您好，感谢您的来电。请问有什么可以帮您？"),
    Item("code-switched", "ms-en", "Okay encik, saya dah check account you, payment tu dah masuk semalam."),
    Item("numbers", "ms", "Baki anda RM1,250.50, tarikh akhir 15/08/2025, nombor rujukan 0123456789."),
    Item("cloned-voice", "ms", "Baik, saya akan hantar resit ke emel anda sekarang.", clone=True),
)
LINES = {
    "24k": {"response_format": "wav"},
    "8k-mulaw": {"response_format": "wav", "sample_rate": 8000, "encoding": "mulaw"},
}
REFERENCE_TEXT = "Thank you for waiting, I will check your account for you now."


@dataclass
class Rendered:
    """One item on one line: where its audio is and how long it took."""

    item: str
    line: str
    ok: bool
    file: str | None = None  # relative to the folder
    listen_file: str | None = None  # a PCM copy browsers play (mu-law decoded)
    ttfa_s: float | None = None
    total_s: float | None = None
    audio_s: float | None = None
    error: str | None = None

    @property
    def rtf(self) -> float | None:
        return self.total_s / self.audio_s if self.total_s and self.audio_s else None


@dataclass(frozen=True)
class Reference:
    """The clip the cloned voice is made from."""

    audio: bytes
    text: str
    source: str


def espeak_reference(text: str = REFERENCE_TEXT) -> Reference:
    """A speech clip made with espeak-ng (no clip given): a real voice to clone, if a robotic one."""
    if not shutil.which("espeak-ng"):
        raise RuntimeError("no --reference-audio given and espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reference.wav"
        subprocess.run(["espeak-ng", "-w", str(out), text], check=True, capture_output=True)
        return Reference(out.read_bytes(), text, "espeak-ng")


def wav_data_offset(head: bytes) -> int | None:
    """Where the samples of a (streamed) WAV start: after the `data` chunk's header; None until it has come."""
    at = head.find(b"data", 12)
    return None if at < 0 or len(head) < at + 8 else at + 8


def _stream(client: httpx.Client, method_kwargs: dict) -> tuple[bytes, float | None, float]:
    """POST and read the body as it streams: (body, seconds to the first audio sample byte, total seconds)."""
    start = time.perf_counter()
    body = bytearray()
    ttfa = None
    with client.stream("POST", **method_kwargs) as resp:
        if resp.status_code != 200:
            resp.read()
            raise httpx.HTTPStatusError(
                f"HTTP {resp.status_code}: {resp.text[:300]}", request=resp.request, response=resp
            )
        for chunk in resp.iter_bytes():
            body += chunk
            offset = wav_data_offset(body[:4096]) if ttfa is None else None
            if ttfa is None and offset is not None and len(body) > offset:
                ttfa = time.perf_counter() - start
    return bytes(body), ttfa, time.perf_counter() - start


def request_for(item: Item, line: str, common: dict, voice: str, reference: Reference | None) -> dict:
    fields = {**common, **LINES[line], "stream": True}
    if not item.clone:
        return {"url": "/v1/audio/speech", "json": {**fields, "input": item.text, "voice": voice}}
    if reference is None:
        raise ValueError("no clip to clone: give --reference-audio and --reference-text (or install espeak-ng)")
    form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
    form |= {"reference_text": reference.text, "generate_text": item.text}
    return {
        "url": "/v1/audio/vc",
        "data": form,
        "files": {"reference_audio": ("reference.wav", reference.audio, "audio/wav")},
    }


def with_sizes(body: bytes) -> bytes:
    """A streamed WAV (its sizes unknown when it was sent: the 0xFFFFFFFF placeholders) with the real sizes, the
    header rewritten by the service's own writer, so that every player reads it to the end."""
    from app.audio.pcm import wav_header

    offset = wav_data_offset(body[:4096])
    if offset is None or body[12:16] != b"fmt ":
        raise ValueError("no WAV fmt and data chunks in the response")
    tag, channels, rate = (
        int.from_bytes(body[20:22], "little"),
        int.from_bytes(body[22:24], "little"),
        int.from_bytes(body[24:28], "little"),
    )
    bits = int.from_bytes(body[34:36], "little")
    samples = body[offset:]
    samples = samples[: len(samples) - len(samples) % (channels * bits // 8)]
    return wav_header(rate, channels, bits, len(samples), tag) + samples


def write_audio(folder: Path, name: str, body: bytes) -> tuple[str, str, float]:
    """The WAV as received (its sizes filled in), and a 16-bit PCM copy to listen to (a browser may not play
    mu-law); (file, listen file, seconds)."""
    body = with_sizes(body)
    (folder / f"{name}.wav").write_bytes(body)
    audio, rate = sf.read(io.BytesIO(body), dtype="float32")
    if sf.info(io.BytesIO(body)).subtype == "PCM_16":
        return f"{name}.wav", f"{name}.wav", len(audio) / rate
    sf.write(folder / f"{name}.listen.wav", audio, rate, subtype="PCM_16")
    return f"{name}.wav", f"{name}.listen.wav", len(audio) / rate


def render_one(client: httpx.Client, folder: Path, item: Item, line: str, **kwargs: object) -> Rendered:
    try:
        body, ttfa, total = _stream(client, request_for(item, line, **kwargs))  # type: ignore[arg-type]
        file, listen, seconds = write_audio(folder, f"{item.id}.{line}", body)
    except (httpx.HTTPError, RuntimeError, ValueError, sf.LibsndfileError) as exc:
        return Rendered(item.id, line, False, error=str(exc)[:400])
    ok = seconds > 0
    return Rendered(item.id, line, ok, file, listen, ttfa, total, seconds, None if ok else "no audio")


def render_set(
    client: httpx.Client,
    folder: Path,
    items: tuple[Item, ...],
    *,
    voice: str,
    common: dict,
    reference: Reference | None,
) -> list[Rendered]:
    """Every item on every line, one at a time (timings of one request alone)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for item in items:
        for line in LINES:
            out.append(render_one(client, folder, item, line, common=common, voice=voice, reference=reference))
    return out


def normalized_texts(client: httpx.Client, items: tuple[Item, ...]) -> dict[str, str]:
    """What the service reads aloud (`/v1/audio/normalize`): the reference an ASR transcript is scored against."""
    out = {}
    for item in items:
        resp = client.post("/v1/audio/normalize", json={"input": item.text})
        out[item.id] = resp.json().get("normalized", item.text) if resp.status_code == 200 else item.text
    return out
