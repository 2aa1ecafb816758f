"""`tts-qualify`: check the model against the service's assumptions, render the contact-centre set through the
running service, optionally score it with an ASR model, sweep concurrency, and price a call-hour.

    tts-qualify --api http://127.0.0.1:9091 --vllm http://127.0.0.1:9093 --out qualify/ \\
        --gpu-price-per-hour 2.50 [--asr openai/whisper-large-v3] [--model PATH_OR_HUB_ID]

Exit status: 0 when every check passed and every item rendered; 1 when the model breaks an assumption (the
message names it; nothing is rendered then) or an item failed to render; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from app.qualify import assumptions, backend, render, report, sweep
from app.qualify.assumptions import BrokenAssumption, Check

STEPS = ("model", "backend", "render", "asr", "sweep")
DEFAULT_LEVELS = "1,2,4,8,16,32,48,64,96,128,160"


def say(text: str = "") -> None:
    print(text, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tts-qualify", description=__doc__.splitlines()[0])
    p.add_argument("--api", default="http://127.0.0.1:9091", help="the running service")
    p.add_argument("--api-key", default=os.environ.get("API_KEY", ""), help="the service's API_KEY, if set")
    p.add_argument("--vllm", default="http://127.0.0.1:9093", help="the running vLLM")
    p.add_argument("--model", default=None, help="the TTS LM (hub id or directory); default: what vLLM loaded")
    p.add_argument("--served-model-name", default=None, help="vLLM's model name (default: the service's)")
    p.add_argument("--codec-model", default=os.environ.get("CODEC_MODEL", "neuphonic/neucodec"))
    p.add_argument("--out", type=Path, default=None, help="the listening folder (default qualify-<UTC time>)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"which of {','.join(STEPS)} to run")
    p.add_argument("--voice", default=None, help="built-in voice (default: the service's first speaker)")
    p.add_argument("--reference-audio", type=Path, default=None, help="clip to clone (default: espeak-ng)")
    p.add_argument("--reference-text", default=render.REFERENCE_TEXT, help="what --reference-audio says")
    p.add_argument("--max-tokens", type=int, default=None, help="cap each item's speech (default: the service's)")
    p.add_argument("--seed", type=int, default=7, help="sampling seed (the same audio run after run)")
    p.add_argument("--asr", default=None, help="ASR model (hub id, directory) or module:function; off by default")
    p.add_argument("--ttfa-target-s", type=float, default=1.0, help="p95 time to first audio a level must meet")
    p.add_argument("--underrun-tolerance-s", type=float, default=0.0, help="silence a listener may hear")
    p.add_argument("--concurrency", default=DEFAULT_LEVELS, help="levels of the sweep, in order")
    p.add_argument("--requests-per-level", type=int, default=0, help="default: 2 x the level, at least 4")
    p.add_argument("--gpu-price-per-hour", type=float, default=None)
    p.add_argument("--gpus", type=float, default=1.0, help="GPUs the stack under test runs on")
    p.add_argument("--gpu-mem-gib", type=float, default=None, help="default: this machine's GPU, else 80")
    p.add_argument("--gpu-mem-util", type=float, default=float(os.environ.get("GPU_MEM_UTIL", 0.7)))
    p.add_argument("--kv-cache-gib", type=float, default=None, help="vLLM's KV pool, when known (its log)")
    p.add_argument("--kv-dtype", default=None, help="vLLM's --dtype / --kv-cache-dtype (default: the config's)")
    p.add_argument("--tokens-per-call", type=int, default=3000, help="reference + context + reply tokens")
    p.add_argument("--duty-cycle", type=float, default=0.5, help="share of a call the bot speaks (assumption)")
    return p


def service_info(client: httpx.Client) -> tuple[str | None, list[str]]:
    """The service's served model name and speakers; (None, []) when it does not answer."""
    try:
        name = client.get("/v1/models").json()["data"][0]["id"]
        return name, list(client.get("/v1/audio/speaker").json())
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return None, []


def check_model(args: argparse.Namespace, steps: set[str], state: dict) -> list[Check]:
    """The model files' and the running vLLM's checks, in the report; raises BrokenAssumption on a failure."""
    checks: list[Check] = []
    base = eos = None
    if "model" in steps:
        say(f"model: {state['model']}")
        files = assumptions.load_model(state["model"])
        checks += assumptions.check_tokenizer(files)
        base = assumptions.token_id(files.tokenizer, assumptions.speech_token(0))
        eos = assumptions.token_id(files.tokenizer, assumptions.END_OF_TURN)
        state["config"] = files.config.to_dict()
        say(f"codec: {args.codec_model}")
        checks += assumptions.check_codec(*assumptions.codec_geometry(args.codec_model))
    if "backend" in steps:
        found, _ = backend.check_backend(args.vllm, state["name"], state["voice"], base, eos)
        checks += found
    for check in checks:
        say(check.line())
    state["report"]["checks"] = [asdict(c) for c in checks]
    if assumptions.failed(checks):
        raise BrokenAssumption(assumptions.failed(checks))
    return checks


def model_to_check(args: argparse.Namespace, name: str) -> str:
    """--model, else the path or hub id the running vLLM loaded."""
    if args.model:
        return args.model
    with httpx.Client(base_url=args.vllm, timeout=10.0) as client:
        _, served = backend.served_model(client, name)
    if served is None or not served.root:
        raise SystemExit(f"tts-qualify: vLLM at {args.vllm} does not say which model it serves; give --model")
    return served.root


def reference(args: argparse.Namespace) -> render.Reference | None:
    """--reference-audio, else a clip made with espeak-ng; None (the cloned-voice item then fails, saying why)
    without either."""
    if args.reference_audio is not None:
        return render.Reference(args.reference_audio.read_bytes(), args.reference_text, str(args.reference_audio))
    try:
        return render.espeak_reference(args.reference_text)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        say(f"no clip to clone: {exc}")
        return None


def render_step(args: argparse.Namespace, client: httpx.Client, state: dict) -> list[render.Rendered]:
    items = render.CONTACT_SET
    texts = render.normalized_texts(client, items)
    ref = reference(args) if any(i.clone for i in items) else None
    state["report"]["items"] = [asdict(i) | {"normalized": texts[i.id]} for i in items]
    state["report"]["reference"] = None if ref is None else {"text": ref.text, "source": ref.source}
    say(f"\nrendering {len(items)} items x {len(render.LINES)} lines into {state['out']}")
    rendered = render.render_set(client, state["out"], items, voice=state["voice"], common=state["common"],
                                 reference=ref)  # fmt: skip
    for r in rendered:
        timing = f"first audio {r.ttfa_s:.3f} s, total {r.total_s:.3f} s, {r.audio_s:.2f} s of audio" if r.ok else ""
        say(f"  {r.item:<14} {r.line:<9} {'ok' if r.ok else 'FAILED: ' + (r.error or '')} {timing}")
    state["report"]["renders"] = [asdict(r) for r in rendered]
    return rendered


def asr_step(args: argparse.Namespace, state: dict) -> None:
    from app.qualify import asr

    transcribe = asr.load_transcriber(args.asr)
    items = {i["id"]: i for i in state["report"]["items"]}
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for r in state["report"]["renders"]:
        if not r["ok"]:
            continue
        item = items[r["item"]]
        r["transcript"] = asr.transcribe_file(transcribe, state["out"] / r["file"], item["language"])
        r["cer"] = asr.cer(item["normalized"], r["transcript"])
        groups.setdefault(r["line"], []).append((item["language"], item["normalized"], r["transcript"]))
    cer = {line: asr.cer_by_group(rows) for line, rows in groups.items()}
    state["report"]["asr"] = {"model": args.asr, "cer": cer}
    say(f"\ncharacter error rate ({args.asr}; per line and language):")
    for line, by_language in cer.items():
        say(f"  {line:<9} " + ", ".join(f"{lang} {v:.3f}" for lang, v in by_language.items()))


def sweep_step(args: argparse.Namespace, state: dict) -> list[sweep.Level]:
    bodies = [
        {**state["common"], "input": i.text, "voice": state["voice"], "response_format": "pcm", "stream": True}
        for i in render.CONTACT_SET
        if not i.clone
    ]
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    per_level = (lambda c: args.requests_per_level) if args.requests_per_level else None
    say(f"\nsweep: p95 time to first audio <= {args.ttfa_target_s} s, underrun <= {args.underrun_tolerance_s} s")
    say(sweep.HEADER)
    measured = asyncio.run(sweep.sweep(args.api, bodies, levels, requests_per_level=per_level,
                                       ttfa_target_s=args.ttfa_target_s, underrun_tolerance_s=args.underrun_tolerance_s,
                                       headers=state["headers"], say=say))  # fmt: skip
    state["report"]["sweep"] = {"ttfa_target_s": args.ttfa_target_s, "underrun_tolerance_s": args.underrun_tolerance_s,
                                "best": sweep.best(measured), "levels": sweep.as_dicts(measured)}  # fmt: skip
    return measured


def capacity_step(args: argparse.Namespace, state: dict, levels: list[sweep.Level]) -> None:
    from app.qualify.capacity import summary

    text, data = summary(args, state.get("config"), levels)
    say("\n" + text)
    state["report"]["capacity"] = data


def run(args: argparse.Namespace, steps: set[str], state: dict) -> bool:
    check_model(args, steps, state)
    ok = True
    with httpx.Client(base_url=args.api, headers=state["headers"], timeout=600.0) as client:
        if "render" in steps:
            ok = all(r.ok for r in render_step(args, client, state))
    if "asr" in steps and args.asr and "renders" in state["report"]:
        asr_step(args, state)
    if "sweep" in steps:
        capacity_step(args, state, sweep_step(args, state))
    return ok


def setup(args: argparse.Namespace) -> dict:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with httpx.Client(base_url=args.api, headers=headers, timeout=10.0) as client:
        api_name, speakers = service_info(client)
    name = args.served_model_name or api_name or "TTS-model"
    out = args.out or Path(f"qualify-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    common = {"seed": args.seed} | ({"max_tokens": args.max_tokens} if args.max_tokens else {})
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return {
        "name": name, "voice": args.voice or (speakers[0] if speakers else "husein"), "out": out, "headers": headers,
        "common": common,
        "report": {"started": started, "api": args.api, "vllm": args.vllm, "served_model_name": name, "ok": False},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    steps = {s.strip() for s in args.steps.split(",") if s.strip()}
    if steps - set(STEPS):
        parser().error(f"--steps: unknown {sorted(steps - set(STEPS))}; choose from {','.join(STEPS)}")
    state = setup(args)
    state["model"] = state["report"]["model"] = model_to_check(args, state["name"]) if steps & {"model"} else args.model
    try:
        ok = run(args, steps, state)
    except BrokenAssumption as exc:
        report.write(state["out"], state["report"])
        print("tts-qualify: the model breaks what the service assumes:\n  " + "\n  ".join(
            c.line() for c in exc.checks), file=sys.stderr)  # fmt: skip
        return 1
    state["report"]["ok"] = ok
    data, index = report.write(state["out"], state["report"])
    say(f"\n{'ok' if ok else 'FAILED (see above)'}: {index} (listen), {data}")
    return 0 if ok else 1
