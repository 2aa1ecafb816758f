"""The default Kubernetes layout (deploy/k8s, issue 31 item 2): serving units of one pod and one GPU holding vLLM and
the API (front-ends + codec engine), autoscaled on vLLM's own metrics.

`kubectl kustomize deploy/k8s` renders it; kubernetes-validate checks every object strictly against the first
Kubernetes with Dynamic Resource Allocation's resource.k8s.io/v1 (1.34) and the newest it knows. The rest: exactly
one GPU per unit and both containers on it, the HPA on vLLM's series through the adapter's rules (and those series
on a real vLLM's /metrics: tests/integration/test_autoscaling_metrics.py), a rollout without a spare GPU, vLLM's
arguments parsed by vLLM itself, and the unit as locked down and as closed as the split layout.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from app.settings import Settings, load_settings
from tests.deploy.test_k8s import (
    API_CONFIG,
    ENGINE_CONFIG,
    PARSE_VLLM_ARGS,
    REPO,
    SECRET,
    Obj,
    config_data,
    env_file_keys,
    find,
    of_kind,
    pod_spec,
    render,
    selects,
)
from tools.vllm_server import default_venv

K8S = REPO / "deploy" / "k8s"
UNIT = "tts-unit"
FIRST_DRA_KUBERNETES = "1.34.0"  # resource.k8s.io/v1 (DRA's GA)
GPU_CLASS = "gpu.nvidia.com"  # NVIDIA's DRA driver's device class
VLLM_METRICS = {  # the adapter's name -> vLLM's series (vLLM 0.32)
    "vllm_num_requests_running": "vllm:num_requests_running",
    "vllm_num_requests_waiting": "vllm:num_requests_waiting",
    "vllm_kv_cache_usage_perc": "vllm:kv_cache_usage_perc",
}
FIELDS = set(Settings.model_fields)
H100_GIB = 80.0
# What the codec engine needs of the unit's GPU at most (a model until benchmarks/gpu_check.py measures it): the
# NeuCodec decoder and w2v-bert-2.0 in float32 (under 3 GiB of weights), two CUDA contexts' worth of slack, a batch.
CODEC_NEED_GIB = 8.0


@pytest.fixture(scope="module")
def unit_objects() -> list[Obj]:
    return render(K8S)


@pytest.fixture(scope="module")
def split_objects() -> list[Obj]:
    return render(K8S / "overlays" / "split")


def containers(deployment: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in pod_spec(deployment)["containers"]}


def unit(objects: list[Obj]) -> Obj:
    return find(objects, "Deployment", UNIT)


def env_of(objects: list[Obj], c: Obj) -> dict[str, str]:
    """A container's variables from ConfigMaps and literal values (Secrets left out)."""
    by_name = {o["metadata"]["name"]: o.get("data", {}) for o in of_kind(objects, "ConfigMap")}
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[source["configMapRef"]["name"]])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = by_name[ref["name"]][ref["key"]]
    return env


def vllm_args_of(objects: list[Obj], c: Obj) -> dict[str, str]:
    env = env_of(objects, c)
    out = {}
    for arg in c["args"]:
        flag, _, value = arg.partition("=")
        out[flag] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], value)
    return out


def port_of(c: Obj, port: int | str) -> int:
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    return ports[port] if isinstance(port, str) else port


# --- rendering and schemas -------------------------------------------------------------------------


def test_renders_the_serving_unit(unit_objects: list[Obj]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in unit_objects if o["kind"] != "ConfigMap")
    assert kinds == [
        ("Deployment", UNIT),
        ("HorizontalPodAutoscaler", UNIT),
        ("Namespace", "tts"),
        ("NetworkPolicy", "default-deny-ingress"),
        ("NetworkPolicy", "tts-unit-from-ingress"),
        ("PersistentVolumeClaim", "tts-api-voices"),
        ("PodDisruptionBudget", UNIT),
        ("ResourceClaimTemplate", "tts-unit-gpu"),
        ("Service", "tts-api"),
        ("Service", "tts-vllm"),
    ]
    find(unit_objects, "ConfigMap", API_CONFIG)
    find(unit_objects, "ConfigMap", ENGINE_CONFIG)
    for o in unit_objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "tts", f"{o['kind']} {o['metadata']['name']}: no namespace"


@pytest.mark.parametrize("version", [FIRST_DRA_KUBERNETES, kubernetes_validate.latest_version()])
def test_every_object_validates_strictly(unit_objects: list[Obj], version: str) -> None:
    problems = []
    for o in unit_objects:
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{o['kind']} {o['metadata']['name']}: {exc.message} at {where or 'the top'}")
    assert not problems, f"invalid against Kubernetes {version}:\n" + "\n".join(problems)


def test_the_validator_rejects_a_misspelt_claim(unit_objects: list[Obj]) -> None:
    broken = copy.deepcopy(unit(unit_objects))
    pod_spec(broken)["resourceClaim"] = pod_spec(broken).pop("resourceClaims")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


# --- one GPU per unit ------------------------------------------------------------------------------


def test_a_unit_holds_vllm_and_the_codec_engine_on_exactly_one_gpu(unit_objects: list[Obj]) -> None:
    deployment = unit(unit_objects)
    c = containers(deployment)
    assert set(c) == {"vllm", "api"}
    assert c["vllm"]["command"] == ["vllm", "serve"] and c["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert c["api"]["image"].startswith("streamable-tts-api:")
    assert config_data(unit_objects, API_CONFIG)["CODEC_DEVICE"] == "cuda"  # the codec engine runs on the GPU
    # one claim in the pod, from a template asking for exactly one GPU, named by both containers
    (claim,) = pod_spec(deployment)["resourceClaims"]
    template = find(unit_objects, "ResourceClaimTemplate", claim["resourceClaimTemplateName"])
    (request,) = template["spec"]["spec"]["devices"]["requests"]
    assert request["exactly"] == {"deviceClassName": GPU_CLASS, "allocationMode": "ExactCount", "count": 1}
    for name, container in c.items():
        assert container["resources"]["claims"] == [{"name": claim["name"]}], name
    # and no GPU besides it: a device plugin's nvidia.com/gpu in any container would be a second GPU
    for name, container in c.items():
        resources = container["resources"]
        assert "nvidia.com/gpu" not in {**resources.get("requests", {}), **resources.get("limits", {})}, name


def test_the_gpu_is_split_in_one_place(unit_objects: list[Obj], split_objects: list[Obj]) -> None:
    """One key, GPU_MEM_UTIL of base/api.env, read by both containers: vLLM's share (its argument) and the codec
    engine's cap (the rest: app/settings.py's engine.gpu_mem_util), which leaves the codec its need of an 80 GiB
    GPU. The split layout, where each has its GPU alone, gives vLLM 0.9 and the codec no cap."""
    deployment = unit(unit_objects)
    c = containers(deployment)
    assert "--gpu-memory-utilization=$(GPU_MEM_UTIL)" in c["vllm"]["args"]
    (ref,) = [e["valueFrom"]["configMapKeyRef"] for e in c["vllm"]["env"] if e["name"] == "GPU_MEM_UTIL"]
    assert ref["name"] == find(unit_objects, "ConfigMap", API_CONFIG)["metadata"]["name"]
    assert "GPU_MEM_UTIL" not in config_data(unit_objects, ENGINE_CONFIG)  # no second place
    share = float(vllm_args_of(unit_objects, c["vllm"])["--gpu-memory-utilization"])
    api_env = env_of(unit_objects, c["api"])
    codec = load_settings(_env_file=None, **{k.lower(): v for k, v in api_env.items() if k.lower() in FIELDS})
    assert codec.engine.gpu_mem_util == share and codec.engine.device == "cuda"
    assert (1 - share) * H100_GIB >= CODEC_NEED_GIB
    split_vllm = containers(find(split_objects, "Deployment", "tts-engine"))["vllm"]
    assert float(vllm_args_of(split_objects, split_vllm)["--gpu-memory-utilization"]) == 0.9
    split_api = containers(find(split_objects, "Deployment", "tts-api"))["api"]
    split_env = env_of(split_objects, split_api)
    split_codec = load_settings(_env_file=None, **{k.lower(): v for k, v in split_env.items() if k.lower() in FIELDS})
    assert split_codec.engine.gpu_mem_util is None


def test_the_api_reaches_its_own_vllm_on_loopback(unit_objects: list[Obj], split_objects: list[Obj]) -> None:
    url = urlsplit(config_data(unit_objects, API_CONFIG)["TTS_API"])
    vllm = containers(unit(unit_objects))["vllm"]
    assert url.hostname == "127.0.0.1"
    assert url.port == int(vllm_args_of(unit_objects, vllm)["--port"]) == port_of(vllm, "vllm")
    # the split layout reaches vLLM through its Service instead; everything else of the settings is shared
    split = config_data(split_objects, API_CONFIG)
    assert urlsplit(split["TTS_API"]).hostname == "tts-engine"
    mine = config_data(unit_objects, API_CONFIG)
    differ = {"TTS_API", "GPU_MEM_UTIL"}
    assert {k: v for k, v in split.items() if k not in differ} == {k: v for k, v in mine.items() if k not in differ}


def test_the_unit_settings_are_valid_and_mirror_env_example(unit_objects: list[Obj]) -> None:
    config = config_data(unit_objects, API_CONFIG)
    fields = {name.upper() for name in Settings.model_fields}
    assert set(config) <= fields
    load_settings(_env_file=None, **{k.lower(): v for k, v in config.items()})
    example = set(env_file_keys(REPO / ".env_example"))
    assert example - {"API_KEY", "TTS_API_KEY", "SENTRY_DSN"} <= set(config)


# --- scaling and rollout -------------------------------------------------------------------------------


def test_the_hpa_scales_units_on_vllm_metrics(unit_objects: list[Obj]) -> None:
    hpa = find(unit_objects, "HorizontalPodAutoscaler", UNIT)
    deployment = unit(unit_objects)
    assert (hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]) == ("Deployment", UNIT)
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["minReplicas"] >= 2
    objects = [m["object"] for m in hpa["spec"]["metrics"] if m["type"] == "Object"]
    assert {o["metric"]["name"] for o in objects} == set(VLLM_METRICS)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for o in objects:  # each read from the Service that lists every unit's vLLM
        described = o["describedObject"]
        service = find(unit_objects, described["kind"], described["name"])
        assert selects(service["spec"]["selector"], labels)
        (port,) = service["spec"]["ports"]
        assert port_of(containers(deployment)["vllm"], port["targetPort"]) == 9093
        assert service["metadata"]["annotations"]["prometheus.io/port"] == "9093"
    targets = {o["metric"]["name"]: o["target"] for o in objects}
    assert 0 < float(targets["vllm_num_requests_running"]["averageValue"]) <= 107  # docs/capacity.md's bound
    kv = targets["vllm_kv_cache_usage_perc"]["value"]
    assert kv.endswith("m") and 0 < int(kv[:-1]) < 1000  # a share of the cache, below full
    # no API in-flight streams any more; the front-ends' CPU is the api container's
    assert not [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    (cpu,) = [m["containerResource"] for m in hpa["spec"]["metrics"] if m["type"] == "ContainerResource"]
    assert (cpu["name"], cpu["container"]) == ("cpu", "api")
    assert "cpu" in containers(deployment)["api"]["resources"]["requests"]


def test_the_adapter_rules_serve_the_hpa_metrics_from_the_service() -> None:
    rules = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())["rules"]["custom"]
    by_name = {r["name"]["as"]: r for r in rules}
    assert set(by_name) == set(VLLM_METRICS)
    for name, series in VLLM_METRICS.items():
        rule = by_name[name]
        assert rule["seriesQuery"].startswith(series + "{")
        assert re.fullmatch(rule["name"]["matches"], series)
        assert rule["resources"]["overrides"] == {
            "namespace": {"resource": "namespace"},
            "service": {"resource": "service"},
        }
        query = rule["metricsQuery"]
        assert "<<.Series>>" in query and "<<.LabelMatchers>>" in query and "<<.GroupBy>>" in query


def test_a_rollout_needs_no_spare_gpu(unit_objects: list[Obj]) -> None:
    deployment = unit(unit_objects)
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert (rolling["maxSurge"], rolling["maxUnavailable"]) == (0, 1)
    budget = find(unit_objects, "PodDisruptionBudget", UNIT)
    assert budget["spec"]["maxUnavailable"] == 1
    assert selects(budget["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"])


def test_probes_grace_and_drain(unit_objects: list[Obj]) -> None:
    deployment = unit(unit_objects)
    c = containers(deployment)
    drain = float(config_data(unit_objects, API_CONFIG)["SHUTDOWN_GRACE_SECONDS"])
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    sleeps = {}
    for name, container in c.items():
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep" and grace > int(command[1]) + drain, name
        sleeps[name] = int(command[1])
    # the API's later segments are new requests to the unit's only vLLM: it serves until the API has drained
    assert sleeps["api"] >= 5 and sleeps["vllm"] >= sleeps["api"] + drain
    assert float(vllm_args_of(unit_objects, c["vllm"])["--shutdown-timeout"]) == drain
    api = c["api"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"  # ready: codec engine and the unit's vLLM
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    startup = c["vllm"]["startupProbe"]
    assert startup["httpGet"]["path"] == "/health" and startup["periodSeconds"] * startup["failureThreshold"] >= 1200
    assert int(config_data(unit_objects, API_CONFIG)["PORT"]) == port_of(api, "http")
    service = find(unit_objects, "Service", "tts-api")
    assert service["spec"]["ports"][0]["port"] == 9091 and port_of(api, service["spec"]["ports"][0]["targetPort"])


def test_vllm_accepts_the_unit_arguments(unit_objects: list[Obj]) -> None:
    python = default_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip(f"the dev vLLM is not installed at {python.parent.parent} (`make vllm` installs it)")
    vllm = containers(unit(unit_objects))["vllm"]
    args = vllm_args_of(unit_objects, vllm)
    proc = subprocess.run(
        [str(python), "-c", PARSE_VLLM_ARGS, json.dumps([f"{k}={v}" for k, v in args.items()])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"vLLM rejects the unit's arguments:\n{proc.stderr[-3000:]}"
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert parsed["gpu_memory_utilization"] == float(config_data(unit_objects, API_CONFIG)["GPU_MEM_UTIL"])
    assert parsed["served_model_name"] == [config_data(unit_objects, API_CONFIG)["MODEL_NAME"]]
    assert vllm["image"].rpartition(":v")[2] and parsed["version"].startswith(vllm["image"].rpartition(":v")[2])


# --- closed by default, as the split layout (tests/security/test_deploy_security.py) ------------------------


def test_both_containers_are_locked_down_and_write_only_to_volumes(unit_objects: list[Obj]) -> None:
    pod = pod_spec(unit(unit_objects))
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name, c in containers(unit(unit_objects)).items():
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts, name
        assert all("emptyDir" in volumes[v] or "persistentVolumeClaim" in volumes[v] for v in mounts.values())
    vllm = containers(unit(unit_objects))["vllm"]
    env = {e["name"]: e.get("value") for e in vllm["env"]}
    assert {env["HOME"], env["HF_HOME"]} <= {m["mountPath"] for m in vllm["volumeMounts"]}


def test_the_secret_is_required(unit_objects: list[Obj]) -> None:
    c = containers(unit(unit_objects))
    assert {"secretRef": {"name": SECRET}} in c["api"]["envFrom"]
    for name, var, key in (("api", "API_KEY", "API_KEY"), ("vllm", "VLLM_API_KEY", "TTS_API_KEY")):
        refs = {e["name"]: e["valueFrom"].get("secretKeyRef") for e in c[name]["env"] if "valueFrom" in e}
        assert refs[var] == {"name": SECRET, "key": key}, name  # no `optional`


def test_only_the_ingress_and_prometheus_reach_a_unit(unit_objects: list[Obj]) -> None:
    from tests.security.test_deploy_security import INGRESS_NAMESPACE, MONITORING_NAMESPACE, NAMESPACE, admitted

    policies = of_kind(unit_objects, "NetworkPolicy")
    pod = {"app.kubernetes.io/name": UNIT}
    other = {"app": "something-else"}
    elsewhere = {"kubernetes.io/metadata.name": "default"}
    assert admitted(policies, INGRESS_NAMESPACE, {}, pod, 9091)
    assert admitted(policies, MONITORING_NAMESPACE, {}, pod, 9091)
    assert admitted(policies, MONITORING_NAMESPACE, {}, pod, 9093)  # vLLM's /metrics for the autoscaler
    assert not admitted(policies, INGRESS_NAMESPACE, {}, pod, 9093)  # vLLM is the unit's own
    assert not admitted(policies, NAMESPACE, other, pod, 9093)
    assert not admitted(policies, NAMESPACE, other, pod, 9091)
    assert not admitted(policies, elsewhere, {}, pod, 9091)
    assert not admitted(policies, NAMESPACE, other, other, 1234)


def test_the_kustomizations_keep_to_old_kustomize_fields() -> None:
    """kustomize v2.0.3 (Debian's kubectl 1.20) knows `bases` for directories; `resources` there lists files."""
    for path in (K8S / "kustomization.yaml", K8S / "base" / "kustomization.yaml", K8S / "overlays" / "split" /
                 "kustomization.yaml"):
        doc = yaml.safe_load(path.read_text())
        for item in doc.get("resources", []):
            assert (path.parent / item).is_file(), f"{path.relative_to(REPO)}: {item} is not a file"
        assert set(doc) <= {"apiVersion", "kind", "namespace", "bases", "resources", "configMapGenerator", "images"}
