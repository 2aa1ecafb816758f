"""One command for a lent GPU machine (at most 8 minutes on one H100/H200): everything a GPU can tell us.

    python benchmarks/gpu_check.py               # on the GPU machine (carry .whl/ with the repository)
    python benchmarks/gpu_check.py --dry-run     # here, on CPU: every step wired, the wheel list complete
    python benchmarks/gpu_check.py --download-wheels   # here, with network: fill .whl/ from gpu_wheels.txt

Steps, printed as they run (each in its own process with its own time limit, so one slow step cannot eat the
others' time; the whole run keeps to `--budget-s`, default 470 s):

1. machine: GPU, memory, torch, CUDA.
2. wheels: check `benchmarks/gpu_wheels.txt` against the service's import closure; on the GPU machine unpack
   `.whl/*.whl` into `.gpu_site/` (no network, no pip) when the service's packages are missing.
3. cuda tests: `pytest -m cuda tests/codec/test_cuda.py` (graph replay vs eager per (batch, bucket), two
   threads, graph memory budget, compile vs eager and no recompiles, bf16).
4. decode throughput of the full-size random NeuCodec: eager, CUDA graphs and torch.compile x float32 and
   bfloat16 x batch 1, 4, 16, 64 x windows 25, 50, 100, 150 tokens (audio-s/s), with capture/compile time,
   graphs compiled, and GPU memory (peak allocated, reserved, graph pool).
5. aligner: `python -m benchmarks.aligner --size mms-300m --seconds 10 --batches 1,4,16` (the forced
   aligner's forward and Viterbi per audio-second, random weights of the MMS forced aligner's shape); needs
   transformers, which the GPU machine lacks unless carried (it is not in `.whl/`): then it says so and skips.
6. qualify: `tts-qualify` (`python -m app.qualify`, app/qualify/) against the stack already running with the real
   model (`--qualify-api`, `--qualify-vllm`; `--qualify-args` for more, e.g. `--gpu-price-per-hour 2.5 --asr
   MODEL`): the model checks, the contact-centre set at 24 kHz and 8 kHz mu-law into `--qualify-out`, the sweep and
   the cost per call-hour. Skipped, saying so, when no service answers there (a lent machine without the weights).
7. service: `python -m benchmarks.service_bench --size full --concurrency 50,100,200 --api-workers 1,2,4`
   (+ `--service-args`), its output printed as is, with whatever time is left (at least `--service-reserve-s`).

`--dry-run` runs steps 1 to 5 on CPU in miniature (tiny codec, eager and compile, one cell each; the CUDA tests
are collected and skip; CUDA graphs are listed as skipped) and prints the commands of steps 6 and 7, so a GPU session
only spends device time on measurements.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WHEEL_LIST = REPO / "benchmarks" / "gpu_wheels.txt"
WHEEL_DIR = REPO / ".whl"
SITE_DIR = REPO / ".gpu_site"  # where the wheels are unpacked on the GPU machine
WHEEL_LIMIT_BYTES = 64 * 2**20
GPU_BOX = ("torch", "numpy", "httpx", "prometheus-client", "pytest")  # what the GPU machine already has
SERVICE_MODULES = (  # what the service part imports (the service process, the fake vLLM, the benchmark)
    "app.cli",
    "app.main",
    "app.api.routes",
    "app.service.speech",
    "app.engine.worker",
    "app.backend.vllm",
    "app.codec.runtime",
    "app.codec.pretrained",
    "app.codec.checkpoint",
    "tools.fake_vllm",
    "benchmarks.service_bench",
    "app.qualify.cli",  # tts-qualify (step 6)
    "uvicorn",
    "uvloop",  # tts-api runs uvicorn with loop="uvloop", http="httptools"
    "httptools",
)
TARGET_ENV = {  # markers of the GPU machine, for the wheel closure
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}
DOWNLOAD = (
    "pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "
    "--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl"
)
MODES = ("eager", "graphs", "compile")
DTYPES = ("float32", "bfloat16")
BATCHES = (1, 4, 16, 64)
WINDOWS = (25, 50, 100, 150)


def say(text: str = "") -> None:
    print(text, flush=True)


def header(title: str, deadline: float) -> None:
    say(f"\n=== {title} (budget left {max(0.0, deadline - time.monotonic()):.0f} s) ===")


# --- step 1: machine ---------------------------------------------------------------------------------------
def machine() -> None:
    import torch

    say(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        say(f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB, capability {props.major}.{props.minor}")
        say(f"bf16 supported: {torch.cuda.is_bf16_supported()}")
    else:
        from app.codec.precision import cpu_bf16_features, torch_cpu_capability

        say(
            f"no CUDA; CPU {os.cpu_count()} cores, bf16 flags {cpu_bf16_features() or 'none'}, "
            f"torch kernels {torch_cpu_capability()}"
        )


# --- step 2: wheels ----------------------------------------------------------------------------------------
def read_wheel_list(path: Path | None = None) -> dict[str, str]:
    """`name==version` lines of `path` (default `WHEEL_LIST`; comments skipped) -> {canonical name: version}."""
    pins = {}
    for line in (path or WHEEL_LIST).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def requirement_closure(roots: set[str]) -> dict[str, str]:
    """Installed distributions reachable from `roots` through their (non-extra) requirements whose markers hold
    on the GPU machine -> {canonical name: installed version}. Missing distributions map to ""."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    seen: dict[str, str] = {}
    todo = [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            seen[name] = ""
            continue
        seen[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(TARGET_ENV):
                continue
            todo.append(canonical(req.name))
    return seen


def declared_dependencies() -> set[str]:
    """The names in pyproject.toml's `[project] dependencies` (extras and markers dropped)."""
    import tomllib

    from packaging.requirements import Requirement

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {canonical(Requirement(r).name) for r in data["project"]["dependencies"]}


def imported_distributions(modules: tuple[str, ...]) -> set[str]:
    """Distributions whose top-level packages a fresh interpreter holds after importing `modules` (the
    repository's own packages excluded: other distributions may also ship a top-level `tests` or `tools`; a
    virtual environment inside the repository is not "own")."""
    code = (
        "import importlib, importlib.metadata as md, json, sys\n"
        f"for m in {list(modules)!r}:\n"
        "    importlib.import_module(m)\n"
        "dists = md.packages_distributions()\n"
        f"own = {[str(REPO / d) for d in ('app', 'tools', 'tests', 'benchmarks', 'stress_test')]!r}\n"
        "local = {m.split('.')[0] for m, mod in list(sys.modules.items())\n"
        "         if (getattr(mod, '__file__', None) or '').startswith(tuple(own))}\n"
        "tops = {m.split('.')[0] for m in list(sys.modules)} - local\n"
        "print(json.dumps(sorted({d for m in tops for d in dists.get(m, [])})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"importing the service modules failed:\n{out.stderr[-2000:]}")
    return {canonical(d) for d in json.loads(out.stdout.strip().splitlines()[-1])}


def check_wheels() -> bool:
    """The wheel list covers the service's closure minus the GPU machine's packages; sizes fit. Prints why not."""
    pins = read_wheel_list()
    box = requirement_closure(set(GPU_BOX))
    project = {"streamable-tts-api"}
    # Roots: the project's direct dependencies that the service path imports; then what they require. Optional
    # imports of other packages (httpx's CLI imports rich, torch.hub tqdm, fastapi orjson) are not needed.
    roots = (imported_distributions(SERVICE_MODULES) - project) & declared_dependencies()
    say("service roots (direct dependencies it imports): " + ", ".join(sorted(roots)))
    needed = requirement_closure(roots) if roots else {}
    missing = sorted(n for n in needed if n not in box and n not in pins and n not in project)
    say(
        f"service import closure: {len(needed)} distributions; on the GPU machine already: "
        f"{len(set(needed) & set(box))}; in {WHEEL_LIST.name}: {len(pins)} pins"
    )
    ok = True
    if missing:
        ok = False
        say(f"MISSING from {WHEEL_LIST.name}: " + ", ".join(f"{n}=={needed[n] or '?'}" for n in missing))
    stale = sorted(
        f"{n} (list {v}, installed {needed[n]})"
        for n, v in pins.items()
        if n in needed and needed[n] and needed[n] != v
    )
    if stale:
        say("version differs from the tested one: " + ", ".join(stale))
    unused = sorted(n for n in pins if n not in needed)
    if unused:
        say("listed but not imported here (kept for newer versions the GPU machine may lack): " + ", ".join(unused))
    if WHEEL_DIR.is_dir():
        wheels = sorted(WHEEL_DIR.glob("*.whl"))
        total = sum(w.stat().st_size for w in wheels)
        names = {canonical(w.name.split("-")[0]) for w in wheels}
        absent = sorted(set(pins) - names)
        say(
            f".whl/: {len(wheels)} wheels, {total / 2**20:.1f} MiB (limit {WHEEL_LIMIT_BYTES / 2**20:.0f} MiB)"
            + (f"; not downloaded: {', '.join(absent)}" if absent else "")
        )
        ok = ok and total <= WHEEL_LIMIT_BYTES and not absent
    else:
        say(".whl/ not present: run `python benchmarks/gpu_check.py --download-wheels` before carrying it over")
    say("wheel list: " + ("complete" if ok else "INCOMPLETE"))
    return ok


def install_wheels(dry_run: bool) -> None:
    """Unpack `.whl/*.whl` into `.gpu_site/` and put it on PYTHONPATH (for this process and its children).

    Unpacking is what installing a wheel does for importable code and its `.dist-info` metadata; it needs no
    pip and leaves the machine's own Python untouched (no externally-managed-environment refusal)."""
    import zipfile

    if importlib.util.find_spec("fastapi") is not None:
        say("service packages already importable; nothing to install")
        return
    wheels = sorted(WHEEL_DIR.glob("*.whl")) if WHEEL_DIR.is_dir() else []
    if dry_run or not wheels:
        say(
            ("would unpack" if dry_run else "NO .whl/ to unpack: the service part will fail;")
            + f" {len(wheels)} wheels into {SITE_DIR.name}/"
        )
        return
    SITE_DIR.mkdir(exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(SITE_DIR)
    for so in SITE_DIR.rglob("*.so*"):
        so.chmod(0o755)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE_DIR), os.environ.get("PYTHONPATH", "")]))
    sys.path.insert(0, str(SITE_DIR))
    importlib.invalidate_caches()
    say(
        f"unpacked {len(wheels)} wheels into {SITE_DIR.name}/; fastapi importable: {importlib.util.find_spec('fastapi') is not None}"
    )


def download_wheels() -> int:
    pins = read_wheel_list()
    command = shlex.split(DOWNLOAD.replace("pip ", f"{shlex.quote(sys.executable)} -m pip ", 1))
    command += [f"{n}=={v}" for n, v in sorted(pins.items())]
    say(shlex.join(command))
    return subprocess.call(command, cwd=REPO)


# --- step 3: cuda tests ------------------------------------------------------------------------------------
def cuda_tests(dry_run: bool, timeout: float) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "cuda",
        "tests/codec/test_cuda.py",
        "-q",
        "-rA",
        "-p",
        "no:cacheprovider",
    ]
    say("$ " + shlex.join(command[1:]))
    run_child(command, timeout)


# --- step 4: decode ----------------------------------------------------------------------------------------
def decode_worker(mode: str, dtype: str, size: str, batches: list[int], windows: list[int], out: Path) -> None:
    """One (mode, dtype): build, warm up (capture / compile), time every (batch, window); JSON to `out`."""
    import numpy as np
    import torch

    from app.codec.config import CodecConfig
    from app.codec.decoder import NeuCodecDecoder
    from app.codec.precision import DTYPES, apply_precision
    from app.codec.runtime import CodecRuntime

    cuda = torch.cuda.is_available()
    device = torch.device("cuda:0" if cuda else "cpu")
    torch.manual_seed(0)
    decoder = apply_precision(NeuCodecDecoder(CodecConfig.named(size)), DTYPES[dtype]).to(device).eval()
    runtime = CodecRuntime(
        decoder,
        device=device,
        max_batch_size=max(batches),
        torch_compile=mode == "compile",
        max_window_tokens=max(windows),
    )
    result: dict[str, Any] = {"mode": mode, "dtype": dtype, "rows": []}
    start = time.perf_counter()
    graphs = None
    with torch.inference_mode():
        if mode == "graphs":
            from app.codec.graphs import CudaGraphDecoder

            graphs = CudaGraphDecoder(decoder, device, batches, windows)
            graphs.capture()
            result["graphs"] = len(graphs)
            result["graph_pool_mib"] = graphs.pool_bytes / 2**20
        else:
            runtime.warmup()
            result["graphs"] = runtime.stats.compiles
        result["warmup_s"] = time.perf_counter() - start
        rng = np.random.default_rng(0)
        for window in windows:
            for batch in batches:
                codes = torch.from_numpy(rng.integers(0, 65_536, (batch, window), dtype=np.int64))
                lengths = torch.full((batch,), window, dtype=torch.int64)
                arrays = list(codes.numpy())
                times = []
                for rep in range(4):  # the first call warms up (allocator, cuDNN plans)
                    t0 = time.perf_counter()
                    if graphs is not None:
                        graphs.run(codes, lengths)  # returns host memory: synchronised
                    else:
                        runtime.decode(arrays)
                    if rep:
                        times.append(time.perf_counter() - t0)
                median = float(np.median(times))
                result["rows"].append(
                    {
                        "batch": batch,
                        "window": window,
                        "audio_s_per_s": batch * window / 50 / median,
                        "ms": 1e3 * median,
                    }
                )
    result["recompiles"] = runtime.stats.recompiles
    if cuda:
        result["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["reserved_mib"] = torch.cuda.memory_reserved() / 2**20
    out.write_text(json.dumps(result))


def decode_step(args: argparse.Namespace, deadline: float) -> None:
    import torch

    cuda = torch.cuda.is_available()
    size = "full" if cuda else "tiny"
    batches = BATCHES if cuda else (1, 2)
    windows = WINDOWS if cuda else (25,)
    plan = [(m, d) for m in MODES for d in (DTYPES[::-1] if m == "compile" else DTYPES)]  # compile bf16 first
    if not cuda:
        say("no CUDA: a miniature on CPU (tiny codec, batch 1-2, 25 tokens); CUDA graphs skipped")
        plan = [("eager", "float32"), ("eager", "bfloat16"), ("compile", "bfloat16")]
    results = []
    for mode, dtype in plan:
        left = deadline - time.monotonic() - args.service_reserve_s
        if left < 20:
            say(f"{mode} {dtype}: skipped, the budget is kept for the service part")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--decode-worker",
                mode,
                dtype,
                size,
                ",".join(map(str, batches)),
                ",".join(map(str, windows)),
                str(out),
            ]
            say(f"--- {mode} {dtype} ({size}; limit {min(left, args.step_limit_s):.0f} s)")
            rc = run_child(command, min(left, args.step_limit_s), quiet=True)
            if rc == 0 and out.exists():
                result = json.loads(out.read_text())
                results.append(result)
                extra = "".join(
                    f", {k} {result[k]:.0f} MiB"
                    for k in ("peak_allocated_mib", "reserved_mib", "graph_pool_mib")
                    if k in result
                )
                say(
                    f"{mode} {dtype}: warm-up {result['warmup_s']:.1f} s, {result['graphs']} graphs, "
                    f"recompiles after warm-up {result['recompiles']}{extra}"
                )
            else:
                say(f"{mode} {dtype}: FAILED or timed out (rc {rc})")
    if results:
        say("\ndecode throughput, audio-s/s (valid audio; graphs: replay incl. host copies)")
        labels = [f"{r['mode']} {r['dtype']}" for r in results]
        say(f"{'window':>6} {'batch':>5} " + " ".join(f"{label:>17}" for label in labels))
        for window in windows:
            for batch in batches:
                cells = []
                for r in results:
                    row = next((x for x in r["rows"] if x["batch"] == batch and x["window"] == window), None)
                    cells.append(f"{row['audio_s_per_s']:>17.1f}" if row else f"{'-':>17}")
                say(f"{window:>6} {batch:>5} " + " ".join(cells))


# --- step 5: aligner ---------------------------------------------------------------------------------------
def aligner_command(cuda: bool) -> list[str]:
    size, seconds, batches = ("mms-300m", "10", "1,4,16") if cuda else ("tiny", "2", "1,2")
    return [sys.executable, "-m", "benchmarks.aligner", "--size", size, "--seconds", seconds, "--batches", batches]


def aligner_step(args: argparse.Namespace, deadline: float) -> None:
    import torch

    if importlib.util.find_spec("transformers") is None:
        say("aligner: skipped, transformers is not installed here (not in .whl/: carry its wheels to measure it)")
        return
    cuda = torch.cuda.is_available()
    left = deadline - time.monotonic() - args.service_reserve_s
    if left < 20:
        say("aligner: skipped, the budget is kept for the service part")
        return
    command = aligner_command(cuda)
    say("$ " + shlex.join(command[1:]) + ("" if cuda else "   (no CUDA: the tiny model on CPU)"))
    rc = run_child(command, min(left, args.aligner_limit_s))
    if rc != 0:
        say(f"aligner: FAILED or timed out (rc {rc})")


# --- step 6: qualify ---------------------------------------------------------------------------------------
def qualify_command(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "app.qualify", "--api", args.qualify_api, "--vllm", args.qualify_vllm,
        "--out", args.qualify_out, *shlex.split(args.qualify_args),
    ]  # fmt: skip


def answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


def qualify_step(args: argparse.Namespace, deadline: float) -> bool:
    """tts-qualify against the running stack; False when it ran and failed (a broken assumption, a failed render)."""
    command = qualify_command(args)
    say("$ " + shlex.join(command[1:]))
    if args.dry_run:
        say("(dry run: not started)")
        return True
    if not answers(f"{args.qualify_api}/ready"):
        say(f"qualify: skipped, no service is ready at {args.qualify_api} (start the stack with the real model, then "
            "rerun with --skip wheels,tests,decode,aligner,service)")  # fmt: skip
        return True
    left = deadline - time.monotonic() - args.service_reserve_s
    rc = run_child(command, max(30.0, min(left, args.qualify_limit_s)))
    say(f"qualify: {'ok' if rc == 0 else f'FAILED (exit {rc})'}; the listening folder: {args.qualify_out}/index.html")
    return rc == 0


# --- step 7: service ---------------------------------------------------------------------------------------
def service_command(extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.service_bench",
        "--size",
        "full",
        "--concurrency",
        "50,100,200",
        "--api-workers",
        "1,2,4",
        *shlex.split(extra),
    ]


def service_step(args: argparse.Namespace, deadline: float) -> None:
    extra = args.service_args
    if importlib.util.find_spec("malaya") is None:
        say(
            "malaya (the text normalizer) is not installed here: its closure does not fit the 64 MiB of wheels "
            "(benchmarks/gpu_wheels.txt); the service runs with TEXT_NORMALIZER=none (the fake backend ignores "
            "the text anyway)."
        )
        extra = f"--text-normalizer none {extra}"
    command = service_command(extra)
    say("$ " + shlex.join(command[1:]))
    if args.dry_run:
        say("(dry run: not started)")
        return
    run_child(command, max(30.0, deadline - time.monotonic()))


# --- plumbing ----------------------------------------------------------------------------------------------
def run_child(command: list[str], timeout: float, quiet: bool = False) -> int:
    """Run `command` in the repository, printing its output (the tail when `quiet`); -1 on timeout."""
    env = os.environ | {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        say(text[-3000:])
        say(f"TIMED OUT after {timeout:.0f} s")
        return -1
    text = out.stdout + out.stderr
    lines = [line for line in text.splitlines() if "UserWarning" not in line and "warnings.warn" not in line]
    say("\n".join(lines[-12:] if quiet and out.returncode == 0 else lines[-200:]))
    return out.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="on CPU: wire every step, check the wheel list")
    parser.add_argument("--download-wheels", action="store_true", help="fill .whl/ from gpu_wheels.txt (network)")
    parser.add_argument("--budget-s", type=float, default=470.0, help="the whole run's wall-clock budget")
    parser.add_argument("--service-reserve-s", type=float, default=150.0, help="kept for the service part")
    parser.add_argument("--step-limit-s", type=float, default=100.0, help="limit of one decode (mode, dtype)")
    parser.add_argument("--tests-limit-s", type=float, default=120.0, help="limit of the cuda tests")
    parser.add_argument("--aligner-limit-s", type=float, default=60.0, help="limit of the aligner benchmark")
    parser.add_argument("--service-args", default="", help="extra arguments for service_bench")
    parser.add_argument("--qualify-api", default="http://127.0.0.1:9091", help="the running service (step 6)")
    parser.add_argument("--qualify-vllm", default="http://127.0.0.1:9093", help="the running vLLM (step 6)")
    parser.add_argument("--qualify-out", default="gpu-qualify", help="tts-qualify's listening folder")
    parser.add_argument("--qualify-args", default="", help="more tts-qualify arguments")
    parser.add_argument("--qualify-limit-s", type=float, default=300.0, help="limit of tts-qualify")
    parser.add_argument("--skip", default="", help="steps to skip: wheels,tests,decode,aligner,qualify,service")
    parser.add_argument("--decode-worker", nargs=6, metavar=("MODE", "DTYPE", "SIZE", "BATCHES", "WINDOWS", "OUT"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.decode_worker:
        mode, dtype, size, batches, windows, out = args.decode_worker
        decode_worker(
            mode, dtype, size, [int(b) for b in batches.split(",")], [int(w) for w in windows.split(",")], Path(out)
        )
        return 0
    if args.download_wheels:
        return download_wheels()
    start = time.monotonic()
    deadline = start + args.budget_s
    skip = set(filter(None, args.skip.split(",")))
    ok = True
    header("1. machine", deadline)
    machine()
    if "wheels" not in skip:
        header("2. wheels", deadline)
        ok = check_wheels()
        install_wheels(args.dry_run)
    if "tests" not in skip:
        header("3. cuda tests", deadline)
        cuda_tests(args.dry_run, min(args.tests_limit_s, deadline - time.monotonic() - args.service_reserve_s))
    if "decode" not in skip:
        header("4. decode throughput", deadline)
        decode_step(args, deadline)
    if "aligner" not in skip:
        header("5. aligner", deadline)
        aligner_step(args, deadline)
    if "qualify" not in skip:
        header("6. qualify", deadline)
        qualified = qualify_step(args, deadline)
        ok = ok and qualified
    if "service" not in skip:
        header("7. service", deadline)
        service_step(args, deadline)
    say(
        f"\ngpu_check done in {time.monotonic() - start:.0f} s"
        + ("" if ok else " (wheel list INCOMPLETE or tts-qualify FAILED)")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
