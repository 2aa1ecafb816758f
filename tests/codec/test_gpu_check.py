"""benchmarks/gpu_check.py's wheel-list check (issue 11, point 3): it must notice a missing wheel."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from benchmarks import gpu_check


def test_closure_follows_requirements_for_the_gpu_machine() -> None:
    closure = gpu_check.requirement_closure({"fastapi"})
    assert {"fastapi", "starlette", "pydantic", "pydantic-core", "anyio"} <= set(closure)
    assert all(version for version in closure.values())
    assert gpu_check.requirement_closure({"no-such-dist"}) == {"no-such-dist": ""}


def test_wheel_list_is_complete_and_a_missing_pin_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(gpu_check, "WHEEL_DIR", tmp_path / "absent")
    assert gpu_check.check_wheels()
    assert "wheel list: complete" in capsys.readouterr().out
    pins = gpu_check.read_wheel_list()
    assert pins["fastapi"] and "malaya" not in pins
    short = tmp_path / "wheels.txt"
    short.write_text("\n".join(f"{n}=={v}" for n, v in pins.items() if n != "starlette"))
    monkeypatch.setattr(gpu_check, "WHEEL_LIST", short)
    assert not gpu_check.check_wheels()
    out = capsys.readouterr().out
    assert "MISSING" in out and "starlette==" in out and "INCOMPLETE" in out


def test_service_command_is_the_one_the_brief_names() -> None:
    command = gpu_check.service_command("--foo 1")
    assert command[1:] == [
        "-m", "benchmarks.service_bench", "--size", "full", "--concurrency", "50,100,200",
        "--api-workers", "1,2,4", "--foo", "1",
    ]  # fmt: skip


def test_qualify_step_calls_tts_qualify_and_says_when_nothing_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Step 6 is tts-qualify against the running stack; with no service there it says so and is no failure."""
    from tools.harness import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    args = argparse.Namespace(qualify_api=url, qualify_vllm="http://127.0.0.1:9093", qualify_out="q",
                              qualify_args="--gpu-price-per-hour 2.5", dry_run=False, service_reserve_s=0,
                              qualify_limit_s=30)  # fmt: skip
    assert gpu_check.qualify_command(args)[1:] == [
        "-m", "app.qualify", "--api", url, "--vllm", "http://127.0.0.1:9093", "--out", "q",
        "--gpu-price-per-hour", "2.5",
    ]  # fmt: skip
    assert gpu_check.qualify_step(args, deadline=time.monotonic() + 60)
    out = capsys.readouterr().out
    assert "$ -m app.qualify --api" in out and f"qualify: skipped, no service is ready at {url}" in out
