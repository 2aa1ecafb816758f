"""The serving unit's autoscaler reads vLLM's own series (deploy/k8s/prometheus-adapter-values.yaml): a real vLLM of
the image's version (the dev backend) exports each of them on /metrics, as a number, under the name the rule's
seriesQuery asks for (issue 31, item 2)."""

from __future__ import annotations

import re

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.test_k8s_unit import K8S, VLLM_METRICS


def test_vllm_exports_every_series_the_adapter_rules_ask_for(vllm_url: str) -> None:
    rules = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())["rules"]["custom"]
    wanted = {re.match(r"[a-z_:]+", rule["seriesQuery"]).group() for rule in rules}
    assert wanted == set(VLLM_METRICS.values())
    text = httpx.get(f"{vllm_url}/metrics", timeout=10).text
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    for series in wanted:
        assert series in samples, f"vLLM's /metrics has no {series}"
        assert samples[series] >= 0
    assert samples["vllm:kv_cache_usage_perc"] <= 1  # a share, as the HPA's 750m target assumes
