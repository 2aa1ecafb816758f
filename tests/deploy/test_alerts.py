"""The alert rules (deploy/prometheus/tts-alerts.yaml), their PrometheusRule, the runbook and the dashboard.

promtool (Debian's `prometheus` package; the Makefile's system-deps installs it) checks the rules and runs their
unit tests (tts-alerts.test.yaml); without promtool these two skip, except in CI (`CI` set), where they fail.
The rest needs nothing: the PrometheusRule is the rules file, unchanged; every alert has its runbook section;
every metric the rules and the dashboard name is one that app/observability/metrics.py exports or one of the
vLLM metrics listed here (checked against the dev vLLM's source when it is installed).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from app.observability.metrics import CodecMetrics, ServiceMetrics
from tools import alert_rules
from tools.alert_rules import VLLM_METRICS
from tools.alert_rules import promql_metric_names as metric_names
from tools.vllm_server import default_venv

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "tts-alerts.yaml"
RULES_TEST = REPO / "deploy" / "prometheus" / "tts-alerts.test.yaml"
MONITORING = REPO / "deploy" / "k8s" / "monitoring"
RUNBOOK = REPO / "docs" / "runbook.md"
DASHBOARD = REPO / "deploy" / "grafana" / "tts-dashboard.json"

Obj = dict[str, Any]


def rules() -> list[Obj]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[Obj]:
    return [rule for rule in rules() if "alert" in rule]


def exported_names() -> set[str]:
    """Every series name the service's registries can expose (counters' _total, histograms' parts)."""
    names: set[str] = set()
    for group in (ServiceMetrics(), CodecMetrics()):
        for family in group.registry.collect():
            names.add(family.name)
            names |= {s.name for s in family.samples}
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed: `apt-get install prometheus` (the Makefile's system-deps does)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the rule checks")
        pytest.skip(message)
    return path


# --- promtool --------------------------------------------------------------------------------------------


def test_promtool_checks_the_rules() -> None:
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules())} rules found" in proc.stdout


def test_promtool_unit_tests_of_the_alerts() -> None:
    proc = subprocess.run(
        [promtool(), "test", "rules", RULES_TEST.name],
        cwd=RULES_TEST.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
    assert len(tested & {a["alert"] for a in alerts()}) >= 2


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: an alert whose PromQL does not parse."""
    broken = yaml.safe_load(RULES.read_text())
    broken["groups"][1]["rules"][0]["expr"] = "sum by (namespace (rate(tts_requests_total[5m]))"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0


# --- one source ------------------------------------------------------------------------------------------


def test_the_prometheus_rule_is_generated_from_the_rules_file() -> None:
    committed = (MONITORING / "prometheus-rule.yaml").read_text()
    assert committed == alert_rules.render(), "stale: run `python -m tools.alert_rules --write`"
    assert yaml.safe_load(committed)["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


# A subset of the operator's CRD schema (monitoring.coreos.com/v1 PrometheusRule), closed: a misspelt field fails.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
RULE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": "string", "minLength": 1},
        "for": {"type": "string", "pattern": DURATION},
        "keep_firing_for": {"type": "string", "pattern": DURATION},
        "labels": STRINGS,
        "annotations": STRINGS,
    },
}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": STRINGS},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "rules": {"type": "array", "items": RULE_SCHEMA},
                        },
                    },
                }
            },
        },
    },
}


@pytest.fixture(scope="module")
def monitoring_objects() -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `apt-get install kubernetes-client`")
    proc = subprocess.run([kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def test_the_monitoring_kustomization_renders_one_valid_prometheus_rule(monitoring_objects: list[Obj]) -> None:
    (rule,) = monitoring_objects
    jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)
    assert rule["metadata"]["namespace"] == "tts"  # beside the pods it watches
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_the_schema_rejects_a_misspelt_field(monitoring_objects: list[Obj]) -> None:
    broken = copy.deepcopy(monitoring_objects[0])
    rule = broken["spec"]["groups"][1]["rules"][0]
    rule["annotation"] = rule.pop("annotations")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, PROMETHEUS_RULE_SCHEMA)


# --- runbook and metric names ----------------------------------------------------------------------------


def test_every_alert_has_a_runbook_section_and_links_to_it() -> None:
    headings = re.findall(r"^#{2,4} (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    anchors = {github_anchor(h) for h in headings}
    for alert in alerts():
        name = alert["alert"]
        assert any(name in h.split() for h in headings), f"docs/runbook.md has no heading naming {name}"
        link = alert["annotations"]["runbook"]
        assert link.startswith("docs/runbook.md#") and link.partition("#")[2] in anchors, f"{name}: {link}"
        assert alert["labels"]["severity"] in ("page", "warning")


def test_every_metric_in_the_rules_is_exported_or_a_listed_vllm_metric() -> None:
    known = exported_names() | VLLM_METRICS | recorded_names()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} names unknown metrics {sorted(unknown)}"


def test_the_metric_name_check_can_fail() -> None:
    assert metric_names('sum by (le) (rate(tts_ttfa_bucket{le="1.0"}[5m])) > 1e-9') == {"tts_ttfa_bucket"}
    assert "tts_ttfa_bucket" not in exported_names()
    assert "tts_time_to_first_audio_seconds_bucket" in exported_names()
    assert "tts_engine_process_cpu_seconds_total" in exported_names()


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_every_metric_on_the_dashboard_is_exported_or_a_listed_vllm_metric() -> None:
    known = exported_names() | VLLM_METRICS | recorded_names()
    for title, expr in dashboard_exprs():
        unknown = metric_names(expr) - known
        assert not unknown, f"dashboard panel {title!r} names unknown metrics {sorted(unknown)}"


def test_the_dashboard_shows_every_metric_the_alerts_watch() -> None:
    """Through the recording rules too; the panels use the raw metrics, so they work without these rules."""
    recorded = {rule["record"]: metric_names(rule["expr"]) for rule in rules() if "record" in rule}
    used = set().union(*(metric_names(expr) for _, expr in dashboard_exprs()))
    for rule in alerts():
        names = metric_names(rule["expr"])
        for name in names & set(recorded):
            names = (names - {name}) | recorded[name]
        assert names <= used, f"{rule['alert']} watches {sorted(names - used)}, which no dashboard panel shows"


def vllm_loggers_source() -> str:
    found = sorted(default_venv().glob("lib/python3*/site-packages/vllm/v1/metrics/loggers.py"))
    if not found:
        pytest.skip(f"the dev vLLM is not installed at {default_venv()} (`make vllm` installs it)")
    return found[0].read_text()


def test_the_listed_vllm_metrics_exist_in_the_dev_vllm() -> None:
    source = vllm_loggers_source()
    for name in VLLM_METRICS:
        assert f'name="{name.removesuffix("_total")}"' in source, f"vLLM defines no metric {name}"
