"""The PrometheusRule of deploy/k8s/monitoring, made from deploy/prometheus/tts-alerts.yaml (the one source).

python -m tools.alert_rules --write   # after editing tts-alerts.yaml
python -m tools.alert_rules --check   # exit 1 when the committed PrometheusRule differs (tests do this too)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "deploy" / "prometheus" / "tts-alerts.yaml"
TARGET = REPO / "deploy" / "k8s" / "monitoring" / "prometheus-rule.yaml"
NAME = "tts-alerts"
# vLLM's own metrics that the rules and the dashboard may read (vLLM 0.32, vllm/v1/metrics/loggers.py; counters
# get `_total` on /metrics); every other name they read is one of app/observability/metrics.py's.
VLLM_METRICS = frozenset(
    {
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:num_preemptions_total",
    }
)
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
HEADER = """\
# GENERATED from deploy/prometheus/tts-alerts.yaml by `python -m tools.alert_rules --write`: edit that file.
# The TTS alerts for the Prometheus operator (kube-prometheus-stack). Its Prometheus picks PrometheusRules by
# its ruleSelector: add the labels it wants (kube-prometheus-stack: `release: <its Helm release>`) in an overlay.
"""


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (functions, keywords, labels, durations, strings and Grafana's
    variables removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables outside ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"(?<![\w:])\d+(\.\d+)?(e[-+]?\d+)?\b", "", expr)  # numbers
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        following = expr[m.end() :].lstrip()
        if following.startswith("(") or m.group() in PROMQL_WORDS:
            continue  # a function or a keyword
        names.add(m.group())
    return names


def prometheus_rule(groups: list[dict]) -> dict:
    """A monitoring.coreos.com/v1 PrometheusRule holding `groups` unchanged."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": NAME,
            "labels": {"app.kubernetes.io/name": "tts-api", "app.kubernetes.io/part-of": "streamable-tts"},
        },
        "spec": {"groups": groups},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as `|` blocks, as they are written in the source."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(source: Path = SOURCE) -> str:
    groups = yaml.safe_load(source.read_text())["groups"]
    body = yaml.dump(prometheus_rule(groups), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    text = render()
    if args.write:
        TARGET.write_text(text)
        return 0
    if not TARGET.exists() or TARGET.read_text() != text:
        print(f"{TARGET} is stale: run `python -m tools.alert_rules --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
