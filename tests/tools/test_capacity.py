"""tools/capacity.py: the KV arithmetic from a config.json file, the decode and codec bounds, and the cost.

Expected values are worked out by hand in the comments (from the published Qwen3-1.7B config and the
constants of tools/tiny_lm.py), not by calling the functions under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import capacity, tiny_lm

REPO = Path(__file__).resolve().parents[2]
TINY_BUILT = REPO / ".cache" / "models" / "tiny-tts-lm" / "config.json"

# Qwen/Qwen3-1.7B's config.json (the fields that matter, as published)
QWEN3_1_7B = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "max_position_embeddings": 40960,
}
# tools/tiny_lm.py's Qwen3: what `build` writes (float32 weights, no head_dim in older transformers' files)
TINY = {
    "model_type": "qwen3",
    "hidden_size": tiny_lm.HIDDEN,
    "intermediate_size": tiny_lm.INTERMEDIATE,
    "num_hidden_layers": tiny_lm.LAYERS,
    "num_attention_heads": tiny_lm.HEADS,
    "num_key_value_heads": tiny_lm.KV_HEADS,
    "head_dim": tiny_lm.HEAD_DIM,
    "vocab_size": 65856,
    "tie_word_embeddings": False,
    "dtype": "float32",
}


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_qwen3_1_7b_kv_bytes_per_token_from_its_config_file(tmp_path: Path) -> None:
    shape = capacity.read_model_config(write_config(tmp_path, QWEN3_1_7B))
    # 28 layers x 8 KV heads x 128 x 2 (K and V) x 2 bytes = 114,688 B = 112 KiB
    assert shape.kv_bytes_per_token == 114_688
    # 28 x (2048 x 128 x (2 x 16 + 2 x 8) + 3 x 2048 x 6144) + 151,936 x 2048 (tied) = 1,720,451,072
    assert shape.parameters == 1_720_451_072
    # a directory works too
    assert capacity.read_model_config(tmp_path) == shape


def test_head_dim_falls_back_to_hidden_over_heads(tmp_path: Path) -> None:
    config = {k: v for k, v in QWEN3_1_7B.items() if k != "head_dim"}
    config["num_attention_heads"] = 32  # 2048 / 32 = 64
    shape = capacity.read_model_config(write_config(tmp_path, config))
    assert shape.head_dim == 64
    assert shape.kv_bytes_per_token == 28 * 8 * 64 * 2 * 2


def test_qwen3_1_7b_streams_bound_by_kv_on_an_80_gib_gpu(tmp_path: Path) -> None:
    shape = capacity.read_model_config(write_config(tmp_path, QWEN3_1_7B))
    est = capacity.estimate(shape, capacity.Inputs(tokens_per_call=3000, gpu_mem_gib=80, gpu_mem_util=0.7))
    # pool: 80 GiB x 0.7 = 60,129,542,144 - weights 3,440,902,144 - overhead 2 GiB 2,147,483,648 = 54,541,156,352
    assert est.kv_pool_gib * capacity.GIB == pytest.approx(54_541_156_352)
    # a stream: 3000 tokens -> 188 blocks of 16 = 3008 tokens x 114,688 = 344,981,504 B (329 MiB)
    assert est.stream_kv_mib * capacity.MIB == 344_981_504
    # 54,541,156,352 / 344,981,504 = 158.1
    assert est.streams_by_kv == 158
    assert (est.limit, est.streams) == ("KV memory", 158)


def test_tiny_model_kv_arithmetic(tmp_path: Path) -> None:
    shape = capacity.read_model_config(write_config(tmp_path, TINY))
    assert shape.kv_bytes_per_token == 2 * 2 * 64 * 2 * 4  # float32 as configured: 2,048 B
    served = capacity.read_model_config(tmp_path, kv_dtype="bfloat16")  # the dev backend's --dtype bfloat16
    assert served.kv_bytes_per_token == 1024
    # the dev backend's 1 GiB pool (VLLM_CPU_KVCACHE_SPACE=1): 1,073,741,824 / (3008 x 1024) = 348.6
    est = capacity.estimate(served, capacity.Inputs(tokens_per_call=3000, kv_cache_gib=1))
    assert est.streams_by_kv == 348


@pytest.mark.skipif(not TINY_BUILT.exists(), reason="the tiny model is not built (`make models` builds it)")
def test_the_built_tiny_model_has_the_shape_of_the_fixture(tmp_path: Path) -> None:
    assert capacity.read_model_config(TINY_BUILT) == capacity.read_model_config(write_config(tmp_path, TINY))


def test_prefix_caching_shares_a_saved_voices_reference() -> None:
    per_token, block = 1000, 16
    block_bytes = per_token * block
    pool = 1000 * block_bytes  # 1000 blocks
    # 320 tokens = 20 blocks a stream: 50 streams without sharing
    assert capacity.streams_by_kv(pool, per_token, 320) == 50
    # 160 of them a reference (10 blocks) shared by 2 voices: (1000 - 2 x 10) / 10 = 98 streams
    assert capacity.streams_by_kv(pool, per_token, 320, shared_tokens=160, voices=2) == 98
    # a partly filled block is not shared: 170 tokens share 10 blocks, as 160 do
    assert capacity.streams_by_kv(pool, per_token, 320, shared_tokens=170, voices=2) == 98


def test_decode_bound_from_one_throughput_and_from_a_curve() -> None:
    assert capacity.streams_by_decode([(0, 900)]) == 18  # 900 tokens/s / 50
    # per stream: 100 at 1, 60 at 4, 40 at 8: crosses 50 between 4 and 8;
    # throughput 240 + 20 (c - 4) = 50 c -> c = 160 / 30 = 5.33
    assert capacity.streams_by_decode(capacity.parse_curve("1:100,4:240,8:320")) == pytest.approx(16 / 3)
    # never reaches 50 a stream: the lowest point's throughput / 50
    assert capacity.streams_by_decode([(1, 40), (2, 60)]) == pytest.approx(0.8)
    # still above 50 at the last point: throughput taken flat beyond it
    assert capacity.streams_by_decode([(1, 100), (2, 180)]) == pytest.approx(3.6)


def test_throughput_between_and_beyond_the_measured_points() -> None:
    curve = [(1, 100), (4, 240), (8, 320)]
    assert capacity.throughput_at(curve, 0.5) == 50  # the first point's per-stream rate
    assert capacity.throughput_at(curve, 2) == pytest.approx(100 + 140 / 3)
    assert capacity.throughput_at(curve, 6) == 280
    assert capacity.throughput_at(curve, 16) == 320
    # at the decode bound, each stream gets exactly 50 tokens/s
    bound = capacity.streams_by_decode(curve)
    assert capacity.throughput_at(curve, bound) / bound == pytest.approx(50)


def test_bandwidth_model_of_the_decode_rate(tmp_path: Path) -> None:
    # 1e12 B/s x 0.5 / 50 steps/s = 10 GB a step; less 2 GB of weights, 8 GB / 0.1 GB a stream = 80 streams
    assert capacity.streams_by_bandwidth(1e12, 0.5, 2e9, 1e8) == pytest.approx(80)
    assert capacity.streams_by_bandwidth(1e12, 0.5, 20e9, 1e8) == 0  # the weights alone take longer
    shape = capacity.read_model_config(write_config(tmp_path, QWEN3_1_7B))
    inputs = capacity.Inputs(tokens_per_call=3000, mem_bandwidth_gbps=3350, bandwidth_efficiency=0.6)
    est = capacity.estimate(shape, inputs)
    # 3.35e12 x 0.6 / 50 = 40,200,000,000 B a step - 3,440,902,144 of weights = 36,759,097,856 / 344,981,504 = 106.55
    assert est.streams_by_decode == pytest.approx(106.554, abs=1e-3)
    assert (est.limit, round(est.streams, 2)) == ("decode rate", 106.55)


def test_codec_bound_and_cost_per_call_hour() -> None:
    assert capacity.streams_by_codec(135.0, 1.35) == pytest.approx(100)
    # 100 streams at a duty cycle of 0.5 carry 200 calls: $2.50 / 200 = $0.0125 per call-hour
    assert capacity.cost_per_call_hour(2.5, 1, 100, 0.5) == pytest.approx(0.0125)
    with pytest.raises(ValueError):
        capacity.cost_per_call_hour(2.5, 1, 100, 0)


def test_the_smallest_bound_binds_and_the_cli_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_config(tmp_path, QWEN3_1_7B)
    argv = ["--model-config", str(path), "--tokens-per-call", "3000", "--decode-tokens-per-s", "5000",
            "--codec-windows-per-s", "270", "--window-tokens", "50", "--gpu-price-per-hour", "2.5",
            "--json"]  # fmt: skip
    assert capacity.main(argv) == 0
    out = json.loads(capsys.readouterr().out)["estimate"]
    # decode 5000 / 50 = 100; codec 270 x 50 / 50 = 270 audio-s/s / 1.35 = 200; KV 158
    assert out["streams_by_decode"] == 100 and out["streams_by_codec"] == pytest.approx(200)
    assert (out["limit"], out["streams"]) == ("decode rate", 100)
    assert out["cost_per_call_hour"] == pytest.approx(2.5 / 200)  # duty cycle 0.5 by default
    assert capacity.main(argv[:-1]) == 0
    assert "streams (binding)" in capsys.readouterr().out


def test_unknown_dtype_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dtype"):
        capacity.read_model_config(write_config(tmp_path, {**QWEN3_1_7B, "torch_dtype": "int3"}))


def test_the_capacity_check_compares_a_prediction_with_runs_around_it() -> None:
    from benchmarks.capacity_check import verify

    curve = [(1.0, 100.0), (4.0, 240.0), (8.0, 320.0)]  # predicts 5.33 streams (above)
    runs = [
        {"concurrency": 5, "median": 60.0, "min": 58.0},  # 300 tok/s: real time
        {"concurrency": 6, "median": 45.0, "min": 44.0},  # 270 tok/s: not
    ]
    v = verify(curve, capacity.streams_by_decode(curve), runs)
    # measured: 300 + (270 - 300)(c - 5) = 50 c -> c = 450 / 80 = 5.625; predicted 5.333: -5.2 %
    assert v["measured_streams"] == pytest.approx(5.625)
    assert v["streams_diff_pct"] == pytest.approx(100 * (16 / 3 - 5.625) / 5.625)
    # per stream at 5: predicted 260 / 5 = 52 against 60 measured
    first = v["rows"][0]
    assert first["predicted_per_stream"] == pytest.approx(52) and first["per_stream_diff_pct"] == pytest.approx(
        -100 * 8 / 60
    )
    assert [r["real_time"] for r in v["rows"]] == [True, False]
