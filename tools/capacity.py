"""Capacity and cost model: how many real-time speech streams one GPU serves, and what a call-hour costs.

Three bounds, each from numbers someone can check (docs/capacity.md explains each):

- **KV memory**: vLLM's KV pool (GPU memory x `GPU_MEM_UTIL`, less the weights and a fixed overhead) over the
  KV bytes a stream holds (`tokens_per_call` rounded up to vLLM's 16-token blocks x bytes per token, from the
  model's config.json). With prefix caching, streams of the same saved voice share their reference's blocks.
- **Decode rate**: a stream must get 50 tokens/s. From one aggregate throughput (tokens/s at saturation):
  throughput / 50. From a measured curve (concurrency -> aggregate tokens/s): the largest concurrency whose
  per-stream rate, interpolated linearly, is still >= 50 tokens/s. Unmeasured (a GPU): a memory-bandwidth model,
  each step reading the weights and every stream's KV.
- **Codec**: raw decode throughput in audio-seconds per second over the audio decoded per second of audio
  emitted (windows overlap: 1.35, docs/performance.md section 2).

Calls per GPU = streams / duty cycle (the bot speaks, so generates, only part of a call); cost per call-hour =
GPU price per hour x GPUs / calls.

    python -m tools.capacity --model-config .cache/models/tiny-tts-lm/config.json --kv-cache-gib 1 \\
        --tokens-per-call 3000 --decode-tokens-per-s 1:120,4:300 --codec-audio-s-per-s 600 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

TOKENS_PER_AUDIO_SECOND = 50  # speech tokens per second of audio: a stream's real-time rate
BLOCK_TOKENS = 16  # vLLM's default KV block size (--block-size)
GIB = 1024**3
MIB = 1024**2
DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1}
DEFAULT_DUTY_CYCLE = 0.5  # share of a call the bot speaks: an assumption, not measured
DEFAULT_DECODED_PER_EMITTED = 1.35  # codec tokens decoded per token emitted (docs/performance.md section 2)
DEFAULT_OVERHEAD_GIB = 2.0  # activations and CUDA graphs besides weights and KV: a model, not measured
DEFAULT_BANDWIDTH_EFFICIENCY = 0.6  # share of the GPU's memory bandwidth a decode step achieves: a model


@dataclass(frozen=True)
class ModelShape:
    """What the KV arithmetic needs from a HF config.json."""

    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int
    parameters: int  # weights, counted from the config (embeddings, attention, MLP; norms left out)

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V for every layer and KV head: layers x kv_heads x head_dim x 2 x dtype bytes."""
        return self.layers * self.kv_heads * self.head_dim * 2 * self.dtype_bytes

    @property
    def weight_bytes(self) -> int:
        return self.parameters * self.dtype_bytes


def dtype_bytes(name: str) -> int:
    try:
        return DTYPE_BYTES[name.removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; one of {sorted(DTYPE_BYTES)}") from None


def count_parameters(config: dict) -> int:
    """Transformer weights of a Qwen/Llama-style config: embeddings (+ lm_head unless tied), and per layer the
    q, k, v, o projections and a gated MLP (3 matrices)."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv_heads = config.get("num_key_value_heads", heads)
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
    mlp = 3 * hidden * config["intermediate_size"]
    embeddings = config["vocab_size"] * hidden * (1 if config.get("tie_word_embeddings", False) else 2)
    return config["num_hidden_layers"] * (attention + mlp) + embeddings


def model_shape(config: dict, kv_dtype: str | None = None) -> ModelShape:
    """The shape of a parsed config.json; `kv_dtype` overrides its torch_dtype (vLLM's `--dtype`, or
    `--kv-cache-dtype`)."""
    heads = config["num_attention_heads"]
    return ModelShape(
        layers=config["num_hidden_layers"],
        kv_heads=config.get("num_key_value_heads", heads),
        head_dim=config.get("head_dim") or config["hidden_size"] // heads,
        dtype_bytes=dtype_bytes(kv_dtype or config.get("torch_dtype") or config.get("dtype") or "bfloat16"),
        parameters=count_parameters(config),
    )


def read_model_config(path: Path | str, kv_dtype: str | None = None) -> ModelShape:
    """`path`: a config.json, or a model directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    return model_shape(json.loads(path.read_text()), kv_dtype)


def blocks(tokens: int, block: int = BLOCK_TOKENS) -> int:
    return -(-tokens // block)


def kv_pool_bytes(gpu_mem_bytes: float, gpu_mem_util: float, weight_bytes: float, overhead_bytes: float) -> float:
    """vLLM's KV pool: its share of the GPU less the weights and the activation/graph overhead."""
    if not 0 < gpu_mem_util <= 1:
        raise ValueError(f"gpu_mem_util must be in (0, 1], got {gpu_mem_util}")
    return max(0.0, gpu_mem_bytes * gpu_mem_util - weight_bytes - overhead_bytes)


def streams_by_kv(
    pool_bytes: float,
    bytes_per_token: int,
    tokens_per_call: int,
    *,
    shared_tokens: int = 0,
    voices: int = 0,
    block: int = BLOCK_TOKENS,
) -> int:
    """Streams whose KV fits the pool. Each holds `tokens_per_call` in whole blocks. With prefix caching, the
    first `shared_tokens` (a saved voice's reference; whole blocks only) are held once per voice among `voices`
    distinct voices, not once per stream (voices=0: no sharing)."""
    block_bytes = block * bytes_per_token
    total = blocks(tokens_per_call, block)
    if not voices:
        return int(pool_bytes // (total * block_bytes))
    shared = min(shared_tokens // block, total)  # a partly filled block is not shared
    own = total - shared
    free = pool_bytes - voices * shared * block_bytes
    if free <= 0:
        return 0
    return int(free // (own * block_bytes)) if own else 10**9


def parse_curve(text: str) -> list[tuple[float, float]]:
    """ "1:120,4:300" -> [(1, 120), (4, 300)] (concurrency, aggregate tokens/s); a bare "900" -> [(0, 900)],
    an aggregate throughput at saturation."""
    points = []
    for part in text.split(","):
        if ":" in part:
            c, rate = part.split(":")
            points.append((float(c), float(rate)))
        else:
            points.append((0.0, float(part)))
    return sorted(points)


def throughput_at(curve: Sequence[tuple[float, float]], concurrency: float) -> float:
    """Aggregate tokens/s at `concurrency` on a measured curve: linear between points, proportional below the
    first one (the same per-stream rate), flat beyond the last."""
    pts = [(c, t) for c, t in curve if c > 0]
    if not pts:
        raise ValueError("a decode curve needs concurrency:tokens_per_s points")
    if concurrency <= pts[0][0]:
        return pts[0][1] * concurrency / pts[0][0]
    for (c0, t0), (c1, t1) in zip(pts, pts[1:], strict=False):
        if concurrency <= c1:
            return t0 + (t1 - t0) * (concurrency - c0) / (c1 - c0)
    return pts[-1][1]


def streams_by_decode(curve: Sequence[tuple[float, float]], rate: float = TOKENS_PER_AUDIO_SECOND) -> float:
    """Concurrent streams that each still get `rate` tokens/s. One point (0, T): T / rate. A curve: the largest
    concurrency where throughput(c) / c >= rate, throughput linear between points (and flat beyond the last
    one); fractional, as the bound is."""
    if len(curve) == 1 and curve[0][0] == 0:
        return curve[0][1] / rate
    pts = [(c, t) for c, t in curve if c > 0]
    if not pts:
        raise ValueError("a decode curve needs concurrency:tokens_per_s points")
    if pts[0][1] / pts[0][0] < rate:
        return pts[0][1] / rate  # already short at the lowest measured concurrency
    for (c0, t0), (c1, t1) in zip(pts, pts[1:], strict=False):
        if t1 / c1 < rate:  # crossing between c0 and c1: t0 + s (c - c0) = rate c
            slope = (t1 - t0) / (c1 - c0)
            return c0 + (t0 - rate * c0) / (rate - slope) if rate != slope else c0
    return pts[-1][1] / rate  # throughput flat beyond the last point


def streams_by_bandwidth(
    bandwidth_bytes_per_s: float,
    efficiency: float,
    weight_bytes: float,
    stream_kv_bytes: float,
    rate: float = TOKENS_PER_AUDIO_SECOND,
) -> float:
    """A decode model for a GPU not yet measured: each decode step reads the weights once and every stream's KV;
    a stream gets one token a step, so `rate` steps a second leave (bandwidth x efficiency / rate - weights) bytes
    a step for the streams' KV. `stream_kv_bytes`: a whole call's (conservative: a reply starts with less)."""
    budget = bandwidth_bytes_per_s * efficiency / rate
    return max(0.0, (budget - weight_bytes) / stream_kv_bytes)


def streams_by_codec(audio_s_per_s: float, decoded_per_emitted: float = DEFAULT_DECODED_PER_EMITTED) -> float:
    """Real-time streams the codec keeps up with: its raw decode throughput over the overlap of windows."""
    return audio_s_per_s / decoded_per_emitted


def cost_per_call_hour(price_per_hour: float, gpus: float, streams: float, duty_cycle: float) -> float:
    """A call generates audio `duty_cycle` of the time, so `streams` concurrent streams carry streams /
    duty_cycle calls."""
    if not 0 < duty_cycle <= 1:
        raise ValueError(f"duty_cycle must be in (0, 1], got {duty_cycle}")
    calls = streams / duty_cycle
    return math.inf if calls <= 0 else price_per_hour * gpus / calls


@dataclass(frozen=True)
class Inputs:
    """Every number the model takes; each is on the command line (and in the --json output)."""

    tokens_per_call: int
    gpu_mem_gib: float = 80.0
    gpu_mem_util: float = 0.7
    kv_cache_gib: float | None = None  # the KV pool given directly (vLLM CPU: VLLM_CPU_KVCACHE_SPACE)
    overhead_gib: float = DEFAULT_OVERHEAD_GIB
    decode_curve: tuple[tuple[float, float], ...] = ()
    mem_bandwidth_gbps: float | None = None  # GB/s (10^9), the decode model when no curve was measured
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY
    codec_audio_s_per_s: float | None = None
    decoded_per_emitted: float = DEFAULT_DECODED_PER_EMITTED
    reference_tokens: int = 0
    voices: int = 0
    gpu_price_per_hour: float | None = None
    gpus: float = 1.0
    duty_cycle: float = DEFAULT_DUTY_CYCLE


@dataclass(frozen=True)
class Estimate:
    kv_bytes_per_token: int
    weight_gib: float
    kv_pool_gib: float
    stream_kv_mib: float
    streams_by_kv: int
    streams_by_kv_shared: int | None  # with saved voices' references shared by prefix caching
    streams_by_decode: float | None
    streams_by_codec: float | None
    streams: float
    limit: str
    calls: float
    cost_per_call_hour: float | None


def estimate(shape: ModelShape, inputs: Inputs) -> Estimate:
    """Every bound, the binding one, and the cost."""
    pool = (
        inputs.kv_cache_gib * GIB
        if inputs.kv_cache_gib is not None
        else kv_pool_bytes(inputs.gpu_mem_gib * GIB, inputs.gpu_mem_util, shape.weight_bytes, inputs.overhead_gib * GIB)
    )
    per_token = shape.kv_bytes_per_token
    kv = streams_by_kv(pool, per_token, inputs.tokens_per_call)
    shared = (
        streams_by_kv(pool, per_token, inputs.tokens_per_call, shared_tokens=inputs.reference_tokens,
                      voices=inputs.voices)
        if inputs.voices and inputs.reference_tokens
        else None
    )  # fmt: skip
    stream_bytes = blocks(inputs.tokens_per_call) * BLOCK_TOKENS * per_token
    decode = streams_by_decode(inputs.decode_curve) if inputs.decode_curve else None
    if decode is None and inputs.mem_bandwidth_gbps:
        decode = streams_by_bandwidth(
            inputs.mem_bandwidth_gbps * 1e9, inputs.bandwidth_efficiency, shape.weight_bytes, stream_bytes
        )
    codec = (
        streams_by_codec(inputs.codec_audio_s_per_s, inputs.decoded_per_emitted)
        if inputs.codec_audio_s_per_s is not None
        else None
    )
    bounds = {"KV memory": float(kv if shared is None else shared), "decode rate": decode, "codec": codec}
    limit, streams = min(((k, v) for k, v in bounds.items() if v is not None), key=lambda kv_: kv_[1])
    price = inputs.gpu_price_per_hour
    return Estimate(
        kv_bytes_per_token=per_token,
        weight_gib=shape.weight_bytes / GIB,
        kv_pool_gib=pool / GIB,
        stream_kv_mib=stream_bytes / MIB,
        streams_by_kv=kv,
        streams_by_kv_shared=shared,
        streams_by_decode=decode,
        streams_by_codec=codec,
        streams=streams,
        limit=limit,
        calls=streams / inputs.duty_cycle,
        cost_per_call_hour=None if price is None else cost_per_call_hour(price, inputs.gpus, streams,
                                                                         inputs.duty_cycle),
    )  # fmt: skip


def decode_source(inputs: Inputs, label: str) -> str:
    if inputs.decode_curve:
        return f"{label}: aggregate tokens/s / {TOKENS_PER_AUDIO_SECOND}"
    if inputs.mem_bandwidth_gbps:
        return (f"model: ({inputs.mem_bandwidth_gbps:,.0f} GB/s x {inputs.bandwidth_efficiency} / "
                f"{TOKENS_PER_AUDIO_SECOND} - weights) / KV per stream")  # fmt: skip
    return "-"


def codec_source(inputs: Inputs, label: str) -> str:
    if inputs.codec_audio_s_per_s is None:
        return "-"
    return f"{label}: {inputs.codec_audio_s_per_s:,.1f} audio-s/s / {inputs.decoded_per_emitted} decoded per emitted"


def table(shape: ModelShape, inputs: Inputs, est: Estimate, label: str = "model") -> str:
    """The printed table: one row per figure, with where it comes from (`label`: "model" until measured)."""

    def fmt(v: float | None, spec: str = ",.1f") -> str:
        return "-" if v is None else format(v, spec)

    pool_from = (
        f"given ({inputs.kv_cache_gib} GiB)"
        if inputs.kv_cache_gib is not None
        else f"{inputs.gpu_mem_gib} GiB x {inputs.gpu_mem_util} - weights - {inputs.overhead_gib} GiB overhead"
    )
    rows = [
        ("KV bytes per token", f"{est.kv_bytes_per_token:,}",
         f"{shape.layers} layers x {shape.kv_heads} KV heads x {shape.head_dim} x 2 (K, V) x {shape.dtype_bytes} B"),
        ("weights (GiB)", fmt(est.weight_gib, ".2f"), f"{shape.parameters:,} parameters x {shape.dtype_bytes} B"),
        ("KV pool (GiB)", fmt(est.kv_pool_gib, ".2f"), pool_from),
        ("KV per stream (MiB)", fmt(est.stream_kv_mib),
         f"{inputs.tokens_per_call} tokens in {BLOCK_TOKENS}-token blocks"),
        ("streams by KV memory", f"{est.streams_by_kv:,}", "KV pool / KV per stream (arithmetic)"),
        ("  with shared references", fmt(est.streams_by_kv_shared, ",.0f"),
         f"{inputs.voices} voices x {inputs.reference_tokens}-token references cached once" if inputs.voices else "-"),
        ("streams by decode rate", fmt(est.streams_by_decode), decode_source(inputs, label)),
        ("streams by codec", fmt(est.streams_by_codec), codec_source(inputs, label)),
        ("streams (binding)", fmt(est.streams), est.limit),
        ("calls", fmt(est.calls), f"streams / duty cycle {inputs.duty_cycle} (assumed)"),
        ("cost per call-hour", fmt(est.cost_per_call_hour, ".4f"),
         "-" if inputs.gpu_price_per_hour is None else f"{inputs.gpu_price_per_hour}/h x {inputs.gpus} GPU / calls"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:>12}  {source}" for name, value, source in rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.capacity", description=__doc__.splitlines()[0])
    p.add_argument("--model-config", type=Path, required=True, help="HF config.json (or its directory)")
    p.add_argument("--kv-dtype", default=None, help="KV dtype if not the config's torch_dtype (vLLM --dtype)")
    p.add_argument("--gpu-mem-gib", type=float, default=80.0)
    p.add_argument("--gpu-mem-util", type=float, default=0.7, help="vLLM's GPU_MEM_UTIL")
    p.add_argument("--kv-cache-gib", type=float, default=None, help="the KV pool itself (vLLM CPU's KVCACHE_SPACE)")
    p.add_argument(
        "--overhead-gib",
        type=float,
        default=DEFAULT_OVERHEAD_GIB,
        help="activations and CUDA graphs (a model, not measured)",
    )
    p.add_argument("--tokens-per-call", type=int, default=3000, help="reference + context + reply tokens held")
    p.add_argument(
        "--decode-tokens-per-s", default="", help="aggregate decode tokens/s at saturation (N), or a curve C:N,C:N"
    )
    p.add_argument("--mem-bandwidth-gbps", type=float, default=None, help="GPU memory GB/s: decode model, no curve")
    p.add_argument("--bandwidth-efficiency", type=float, default=DEFAULT_BANDWIDTH_EFFICIENCY)
    p.add_argument("--codec-audio-s-per-s", type=float, default=None, help="codec decode throughput")
    p.add_argument(
        "--codec-windows-per-s", type=float, default=None, help="or: windows per second, with --window-tokens"
    )
    p.add_argument("--window-tokens", type=int, default=75)
    p.add_argument("--decoded-per-emitted", type=float, default=DEFAULT_DECODED_PER_EMITTED)
    p.add_argument("--reference-tokens", type=int, default=0, help="a saved voice's reference (prefix cached)")
    p.add_argument("--voices", type=int, default=0, help="distinct saved voices among the streams (0: no sharing)")
    p.add_argument("--gpu-price-per-hour", type=float, default=None)
    p.add_argument("--gpus", type=float, default=1.0, help="GPUs the price covers (vLLM and codec on one: 1)")
    p.add_argument(
        "--duty-cycle",
        type=float,
        default=DEFAULT_DUTY_CYCLE,
        help=f"share of a call the bot speaks (default {DEFAULT_DUTY_CYCLE}, an assumption)",
    )
    p.add_argument("--label", default="model", help='what the rates are: "model" until measured')
    p.add_argument("--json", action="store_true")
    return p  # fmt: skip


def inputs_from_args(args: argparse.Namespace) -> Inputs:
    codec = args.codec_audio_s_per_s
    if codec is None and args.codec_windows_per_s is not None:
        codec = args.codec_windows_per_s * args.window_tokens / TOKENS_PER_AUDIO_SECOND
    return Inputs(
        tokens_per_call=args.tokens_per_call,
        gpu_mem_gib=args.gpu_mem_gib,
        gpu_mem_util=args.gpu_mem_util,
        kv_cache_gib=args.kv_cache_gib,
        overhead_gib=args.overhead_gib,
        decode_curve=tuple(parse_curve(args.decode_tokens_per_s)) if args.decode_tokens_per_s else (),
        mem_bandwidth_gbps=args.mem_bandwidth_gbps,
        bandwidth_efficiency=args.bandwidth_efficiency,
        codec_audio_s_per_s=codec,
        decoded_per_emitted=args.decoded_per_emitted,
        reference_tokens=args.reference_tokens,
        voices=args.voices,
        gpu_price_per_hour=args.gpu_price_per_hour,
        gpus=args.gpus,
        duty_cycle=args.duty_cycle,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    shape = read_model_config(args.model_config, args.kv_dtype)
    inputs = inputs_from_args(args)
    est = estimate(shape, inputs)
    if args.json:
        print(json.dumps({"model": asdict(shape), "inputs": asdict(inputs), "estimate": asdict(est)}, indent=2))
    else:
        print(table(shape, inputs, est, args.label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
