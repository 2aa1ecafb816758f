"""A deployment closed by default (issue 24): the rendered Kubernetes manifests of the split layout (`kubectl
kustomize deploy/k8s/overlays/split`, checked by kubernetes-validate; the default layout's in
tests/deploy/test_k8s_unit.py) require their Secret, run both Deployments locked down, and let only the API reach vLLM and
only the ingress (and Prometheus) reach the API; the compose files lock the containers down as far as they can."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.deploy.test_compose_files import Compose, config, implementations, project  # noqa: F401 (fixtures)
from tests.deploy.test_k8s import (
    API,
    ENGINE,
    OLDEST_KUBERNETES,
    SECRET,
    Obj,
    container,
    find,
    objects,  # noqa: F401 (the fixture: the rendered manifests, as test_k8s renders them)
    of_kind,
    pod_spec,
)

INGRESS_NAMESPACE = {"kubernetes.io/metadata.name": "ingress-nginx"}  # README, "Kubernetes"
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
NAMESPACE = {"kubernetes.io/metadata.name": "tts"}
API_POD = {"app.kubernetes.io/name": API}
ENGINE_POD = {"app.kubernetes.io/name": ENGINE}



@pytest.mark.parametrize("name", [API, ENGINE])
def test_both_deployments_are_locked_down(objects: list[Obj], name: str) -> None:  # noqa: F811
    deployment = find(objects, "Deployment", name)
    pod = pod_spec(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod.get("automountServiceAccountToken") is False
    sc = container(deployment)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in sc and "add" not in sc["capabilities"]


@pytest.mark.parametrize("name", [API, ENGINE])
def test_what_must_be_writable_is_a_volume(objects: list[Obj], name: str) -> None:  # noqa: F811
    """A read-only root: /tmp and the caches are volumes (the engine socket, workers' files, model caches)."""
    deployment = find(objects, "Deployment", name)
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["mountPath"]: m for m in container(deployment)["volumeMounts"]}
    assert "/tmp" in mounts
    for path, mount in mounts.items():
        volume = volumes[mount["name"]]
        assert "emptyDir" in volume or "persistentVolumeClaim" in volume, path
        assert not mount.get("readOnly"), path
    if name == ENGINE:  # vLLM as uid 1000: its HOME and model cache are writable volumes
        env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        assert env["HOME"] in mounts and env["HF_HOME"] in mounts


def test_the_secret_is_required(objects: list[Obj]) -> None:  # noqa: F811
    """A missing Secret (or a Secret without API_KEY) keeps the pods from starting: never "no auth"."""
    api = container(find(objects, "Deployment", API))
    assert {"secretRef": {"name": SECRET}} in api["envFrom"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in api["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs["API_KEY"] == {"name": SECRET, "key": "API_KEY"}  # no `optional`
    engine = container(find(objects, "Deployment", ENGINE))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in engine["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs["VLLM_API_KEY"] == {"name": SECRET, "key": "TTS_API_KEY"}  # vLLM never runs without its key
    assert refs["HF_TOKEN"].get("optional") is True  # only for gated models


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and not selector.get(
        "matchExpressions"
    )


def admitted(policies: list[Obj], src_ns: dict, src_pod: dict, dst_pod: dict, port: int) -> bool:
    """NetworkPolicy's ingress rule: allowed when no policy selects the pod, else when one of them admits the peer."""
    mine = [p for p in policies if selects(p["spec"]["podSelector"], dst_pod) and "Ingress" in p["spec"]["policyTypes"]]
    if not mine:
        return True
    for policy in mine:
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and port not in [p["port"] for p in rule["ports"]]:
                continue
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:
                    ok = selects(peer["namespaceSelector"], src_ns) and selects(peer.get("podSelector", {}), src_pod)
                else:  # a podSelector alone: pods of the policy's own namespace
                    ok = src_ns == NAMESPACE and selects(peer["podSelector"], src_pod)
                if ok:
                    return True
    return False


def test_only_the_api_reaches_vllm_and_only_the_ingress_reaches_the_api(objects: list[Obj]) -> None:  # noqa: F811
    policies = of_kind(objects, "NetworkPolicy")
    assert len(policies) == 3
    for policy in policies:  # raises on an invalid or unknown field
        kubernetes_validate.validate(policy, OLDEST_KUBERNETES, strict=True)
    other_pod = {"app": "something-else"}
    elsewhere = {"kubernetes.io/metadata.name": "default"}
    assert admitted(policies, NAMESPACE, API_POD, ENGINE_POD, 9093)
    assert not admitted(policies, NAMESPACE, other_pod, ENGINE_POD, 9093)
    assert not admitted(policies, elsewhere, API_POD, ENGINE_POD, 9093)  # the same labels in another namespace
    assert not admitted(policies, INGRESS_NAMESPACE, {}, ENGINE_POD, 9093)
    assert not admitted(policies, NAMESPACE, API_POD, ENGINE_POD, 8080)
    assert admitted(policies, INGRESS_NAMESPACE, {}, API_POD, 9091)
    assert admitted(policies, MONITORING_NAMESPACE, {}, API_POD, 9091)  # /metrics for the autoscaler
    assert not admitted(policies, elsewhere, {}, API_POD, 9091)
    assert not admitted(policies, NAMESPACE, other_pod, API_POD, 9091)
    assert not admitted(policies, NAMESPACE, other_pod, other_pod, 1234)  # the default: nothing comes in


@pytest.mark.parametrize("name", ["docker-compose.yaml", "docker-compose-cpu.yaml"])
def test_the_compose_api_container_is_locked_down(implementations: list[Compose], project, name: str) -> None:  # noqa: F811
    for compose in implementations:
        services = config(compose, project, name)["services"]
        api = services["tts-api"]
        assert api["read_only"] is True
        assert any(str(t).startswith("/tmp") for t in api["tmpfs"])
        assert api["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in api["security_opt"]
        for vllm in [s for n, s in services.items() if n == "tts-engine"]:
            assert vllm["cap_drop"] == ["ALL"] and "no-new-privileges:true" in vllm["security_opt"]


def test_the_compose_vllm_container_drops_its_capabilities(implementations: list[Compose], project) -> None:  # noqa: F811
    for compose in implementations:
        vllm = config(compose, project, "vllm.yaml")["services"]["tts-engine"]
        assert vllm["cap_drop"] == ["ALL"] and "no-new-privileges:true" in vllm["security_opt"]
