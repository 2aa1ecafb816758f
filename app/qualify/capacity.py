"""Streams per GPU and cost per call-hour: the sweep's measured answer beside tools/capacity.py's model, fed with
the model's config and the sweep's aggregate rate (docs/capacity.md explains every row)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict

from app.qualify import sweep
from tools import capacity


def gpu_memory_gib(given: float | None) -> float:
    """--gpu-mem-gib, else this machine's first GPU, else capacity's default (80)."""
    if given is not None:
        return given
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).total_memory / capacity.GIB
    except ImportError:
        pass
    return capacity.Inputs(tokens_per_call=1).gpu_mem_gib


def summary(args: argparse.Namespace, config: dict | None, levels: Sequence[sweep.Level]) -> tuple[str, dict]:
    """The printed lines and the report's `capacity` object."""
    best = sweep.best(levels)
    price = args.gpu_price_per_hour
    measured_cost = capacity.cost_per_call_hour(price, args.gpus, best, args.duty_cycle) if price else None
    lines = [
        f"streams per GPU, measured: {best / args.gpus:g} (p95 first audio <= {args.ttfa_target_s} s, no underrun; "
        f"{best} streams on {args.gpus:g} GPU)",
        f"calls per GPU at duty cycle {args.duty_cycle}: {best / args.duty_cycle / args.gpus:g}",
        "cost per call-hour, measured: "
        + (f"${measured_cost:.4f} at ${price}/GPU-hour" if measured_cost is not None and best else
           "- (give --gpu-price-per-hour)" if not price else "- (no level met the target)"),
    ]  # fmt: skip
    data: dict = {"measured_streams": best, "measured_cost_per_call_hour": measured_cost}
    curve = sweep.decode_curve(levels)
    if config is None or not curve:
        lines.append("capacity model: skipped (needs the model's config (step model) and a measured level)")
        return "\n".join(lines), data
    shape = capacity.model_shape(config, args.kv_dtype)
    inputs = capacity.Inputs(
        tokens_per_call=args.tokens_per_call, gpu_mem_gib=gpu_memory_gib(args.gpu_mem_gib),
        gpu_mem_util=args.gpu_mem_util, kv_cache_gib=args.kv_cache_gib, decode_curve=curve,
        gpu_price_per_hour=price, gpus=args.gpus, duty_cycle=args.duty_cycle,
    )  # fmt: skip
    est = capacity.estimate(shape, inputs)
    table = capacity.table(shape, inputs, est, label="measured (the sweep: service audio-s/s x 50)")
    lines += ["", "capacity model (tools/capacity.py), the sweep's rates as its decode curve:", table]
    data |= {"model": asdict(shape), "inputs": asdict(inputs), "estimate": asdict(est), "table": table}
    return "\n".join(lines), data
