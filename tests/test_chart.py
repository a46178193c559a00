"""The Helm chart as a platform team meets it: real helm, offline schema validation, policy.

helm is built from the Go module proxy and the prometheus-operator's CRDs fetched from it by
deploy/local/install-test-tools.sh; the Kubernetes API schemas are the ones the
kubernetes-validate package carries. Every rendering is validated strictly (an unknown field
is an error) against the newest Kubernetes release the package knows, the monitoring objects
against the operator's CRDs, and every pod against the Pod Security "restricted" level.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.test_deploy import runbook_anchors

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm/smsc-gateway"
CRDS = ROOT / ".cache/crds"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"

Manifest = dict[str, Any]

# Every role, every optional object: the widest rendering the chart can make.
EVERY_ROLE: dict[str, Any] = {
    "image": {"repository": "registry.example.com/team/smsc-gateway", "tag": "0.1.0"},
    "roles": {
        "ingress": {
            "enabled": True,
            "autoscaling": {"enabled": True},
            "ingress": {"enabled": True, "host": "sms.example.com"},
        },
        "receiver": {"enabled": True, "existingSecret": "receiver-login"},
        "correlator": {"enabled": True},
        "poller": {"enabled": True},
    },
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "dashboards": {"enabled": True},
    "monitoringLabels": {"release": "monitoring"},
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "extraEnv": [{"name": "GATEWAY_SMPP_TLS_CA_FILE", "value": "/etc/smsc-ca/ca.pem"}],
    "extraVolumes": [{"name": "smsc-ca", "configMap": {"name": "smsc-ca"}}],
    "extraVolumeMounts": [{"name": "smsc-ca", "mountPath": "/etc/smsc-ca", "readOnly": True}],
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
        }
    ],
    "tolerations": [{"key": "dedicated", "value": "sms", "effect": "NoSchedule"}],
}


@cache
def helm_binary() -> str:
    found = shutil.which("helm")
    if found is None:
        gopath = subprocess.run(
            ["go", "env", "GOPATH"], capture_output=True, text=True, check=True
        ).stdout.strip()
        candidate = Path(gopath) / "bin/helm"
        found = str(candidate) if candidate.exists() else None
    if found is None:
        pytest.fail("helm is missing: run deploy/local/install-test-tools.sh")
    return found


def helm(*args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    command = [helm_binary(), *args]
    if values is not None:
        command += ["--values", "-"]
    env = os.environ | {"HELM_CACHE_HOME": str(ROOT / ".cache/helm")}
    return subprocess.run(
        command,
        input=json.dumps(values) if values is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def render(values: dict[str, Any] | None = None) -> list[Manifest]:
    done = helm("template", "sms", str(CHART), "--namespace", "messaging", values=values)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def refusal(values: dict[str, Any]) -> str:
    done = helm("template", "sms", str(CHART), values=values)
    assert done.returncode != 0, "the chart rendered values it should refuse"
    return done.stderr


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in {"Deployment", "StatefulSet"}]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for workload in workloads(manifests):
        yield workload["metadata"]["name"], workload["spec"]["template"]["spec"]


# -- helm itself --------------------------------------------------------------------------


def test_helm_lint_strict_passes_with_the_defaults_and_with_every_role() -> None:
    for values in (None, EVERY_ROLE):
        done = helm("lint", "--strict", str(CHART), values=values)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_defaults_render_the_sender_only() -> None:
    manifests = render()
    assert [w["metadata"]["name"] for w in workloads(manifests)] == ["sms-smsc-gateway-sender"]


def test_every_role_renders_every_object() -> None:
    kinds = {m["kind"] for m in render(EVERY_ROLE)}
    assert kinds >= {
        "Deployment",
        "StatefulSet",
        "Service",
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Ingress",
        "ServiceMonitor",
        "PrometheusRule",
    }


# -- offline schema validation ----------------------------------------------------------------


KUBERNETES = kubernetes_validate.latest_version()


@pytest.mark.parametrize("values", [None, EVERY_ROLE], ids=["defaults", "every-role"])
def test_the_rendered_manifests_match_the_kubernetes_schemas(values: dict[str, Any] | None) -> None:
    for manifest in render(values):
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            validate_custom_resource(manifest)
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']} {manifest['metadata']['name']}: {exc.message}")


def test_the_validator_refuses_what_kubernetes_would() -> None:
    deployment = of_kind(render(), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)
    monitor = of_kind(render(EVERY_ROLE), "ServiceMonitor")[0]
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(monitor)


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The openAPIV3Schema of each prometheus-operator kind and version, made strict."""
    paths = sorted(CRDS.glob("*.yaml"))
    if not paths:
        pytest.fail("the prometheus-operator CRDs are missing: run install-test-tools.sh")
    found = {}
    for path in paths:
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            found[f"{group}/{version['name']}", kind] = schema
    return found


def strict(schema: Any) -> Any:
    """An OpenAPI schema where an object with declared properties allows no other field."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: strict(value) for key, value in schema.items()}
    open_ended = copy.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in copy
    if "properties" in copy and not open_ended:
        copy["additionalProperties"] = False
    return copy


def validate_custom_resource(manifest: Manifest) -> None:
    schema = crd_schemas()[manifest["apiVersion"], manifest["kind"]]
    # metadata is the API server's ObjectMeta, which the CRD leaves open. The schema is not
    # checked as JSON Schema first: some of its patterns are Go regular expressions.
    validator = jsonschema.Draft7Validator(schema)
    validator.validate({k: v for k, v in manifest.items() if k != "metadata"})


# -- Pod Security "restricted" -----------------------------------------------------------------

# The volume types the restricted level allows (Kubernetes docs, Pod Security Standards).
_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@pytest.mark.parametrize("values", [None, EVERY_ROLE], ids=["defaults", "every-role"])
def test_every_pod_meets_the_restricted_pod_security_level(values: dict[str, Any] | None) -> None:
    for name, pod in pod_specs(render(values)):
        problems = restricted_problems(pod)
        assert not problems, f"{name}: {problems}"


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    """What the "restricted" Pod Security level would refuse in a pod spec."""
    found = [f"{key} is set" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
    found += [
        f"volume {v['name']} is not an allowed type"
        for v in pod.get("volumes", [])
        if not set(v) - {"name"} <= _RESTRICTED_VOLUMES
    ]
    pod_context = pod.get("securityContext", {})
    for container in pod["containers"] + pod.get("initContainers", []):
        found += [f"{container['name']}: {p}" for p in _container_problems(container, pod_context)]
    return found


def _container_problems(container: dict[str, Any], pod_context: dict[str, Any]) -> list[str]:
    context = container.get("securityContext", {})

    def effective(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    found = []
    if context.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation is not false")
    if effective("runAsNonRoot") is not True:
        found.append("runAsNonRoot is not true")
    if effective("runAsUser") == 0:
        found.append("runAsUser is 0")
    seccomp = (effective("seccompProfile") or {}).get("type")
    if seccomp not in {"RuntimeDefault", "Localhost"}:
        found.append(f"seccompProfile is {seccomp}")
    capabilities = context.get("capabilities", {})
    if "ALL" not in capabilities.get("drop", []):
        found.append("capabilities do not drop ALL")
    if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
        found.append("capabilities add more than NET_BIND_SERVICE")
    if context.get("privileged"):
        found.append("privileged")
    if any("hostPort" in port for port in container.get("ports", [])):
        found.append("hostPort")
    return found


def test_the_policy_check_catches_a_pod_the_restricted_level_refuses() -> None:
    _, pod = next(pod_specs(render()))
    del pod["securityContext"]["seccompProfile"]
    del pod["containers"][0]["securityContext"]["seccompProfile"]
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    assert len(restricted_problems(pod)) == 3


def test_pods_run_under_their_own_service_account_without_a_token() -> None:
    manifests = render(EVERY_ROLE)
    (account,) = of_kind(manifests, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for _, pod in pod_specs(manifests):
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False


# -- what a deployment needs ------------------------------------------------------------------


def test_probes_have_timeouts_and_selectors_name_the_app() -> None:
    manifests = render(EVERY_ROLE)
    for workload in workloads(manifests):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector["app.kubernetes.io/name"] == "smsc-gateway"
        assert selector["app.kubernetes.io/instance"] == "sms"
        container = workload["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["timeoutSeconds"] >= 1
    for service in of_kind(manifests, "Service"):
        assert service["spec"]["selector"]["app.kubernetes.io/name"] == "smsc-gateway"


def test_an_empty_image_repository_is_refused_with_the_way_to_get_one() -> None:
    assert "image/repository" in refusal({"image": {"repository": ""}})
    pods = pod_specs(render(EVERY_ROLE))
    image = next(pods)[1]["containers"][0]["image"]
    assert image == "registry.example.com/team/smsc-gateway:0.1.0"


def test_a_misspelt_value_is_refused_by_the_schema() -> None:
    assert "replicaz" in refusal({"roles": {"sender": {"replicaz": 2}}})
    assert "GATEWAY_" in refusal({"env": {"SMPP_WINDOW": "5"}})


def checksums(values: dict[str, Any]) -> dict[str, str]:
    return {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["annotations"]["checksum/settings"]
        for w in workloads(render(values))
    }


def test_pods_restart_when_the_secret_or_the_settings_change() -> None:
    base: dict[str, Any] = {
        "secretEnv": {"GATEWAY_SMPP_SYSTEM_ID": "shop", "GATEWAY_SMPP_PASSWORD": "a"}
    }
    rotated = {"secretEnv": base["secretEnv"] | {"GATEWAY_SMPP_PASSWORD": "b"}}
    tuned = base | {
        "env": {"GATEWAY_SMPP_WINDOW": "200", "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": "k:9092"}
    }
    assert checksums(base) == checksums(dict(base))
    assert checksums(rotated) != checksums(base)
    assert checksums(tuned) != checksums(base)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"roles": {"receiver": {"enabled": True}}}, "roles.receiver is enabled without a login"),
        ({"roles": {"sender": {"replicas": 2}}}, "2 SMPP connections on one login, which serves 1"),
        (
            {
                "roles": {"sender": {"replicas": 2}},
                "env": {"GATEWAY_SMPP_BINDS": "3", "GATEWAY_SMPP_SYSTEM_TYPE": "MCON4"},
            },
            "6 SMPP connections on one login, which serves 4",
        ),
        (
            {
                "roles": {"receiver": {"enabled": True, "replicas": 2}},
                "env": {"GATEWAY_SMPP_SYSTEM_TYPE": "MCON2"},
            },
            "its 2 connections and the sender's 1",
        ),
    ],
)
def test_logins_shared_beyond_their_mcon_are_refused(values: dict[str, Any], message: str) -> None:
    assert message in refusal(values)


@pytest.mark.parametrize(
    "values",
    [
        {"roles": {"sender": {"replicas": 3}}, "env": {"GATEWAY_SMPP_SYSTEM_TYPE": "MCON3"}},
        {
            "roles": {
                "sender": {"replicas": 2},
                "receiver": {"enabled": True, "existingSecret": "rx"},
            },
            "env": {"GATEWAY_SMPP_SYSTEM_TYPE": "ISO,MCON2"},
        },
        {"roles": {"receiver": {"enabled": True}}, "env": {"GATEWAY_SMPP_SYSTEM_TYPE": "MCON2"}},
        {"roles": {"sender": {"enabled": False}, "receiver": {"enabled": True}}},
    ],
)
def test_logins_within_their_mcon_render(values: dict[str, Any]) -> None:
    assert workloads(render(values))


def test_extra_env_volumes_and_scheduling_reach_every_pod() -> None:
    values = EVERY_ROLE | {
        "roles": EVERY_ROLE["roles"]
        | {"poller": {"enabled": True, "nodeSelector": {"pool": "http"}}}
    }
    for name, pod in pod_specs(render(values)):
        container = pod["containers"][0]
        assert {"name": "GATEWAY_SMPP_TLS_CA_FILE", "value": "/etc/smsc-ca/ca.pem"} in container[
            "env"
        ]
        assert any(m["name"] == "smsc-ca" for m in container["volumeMounts"])
        assert any(v["name"] == "smsc-ca" for v in pod["volumes"])
        assert pod["tolerations"] == EVERY_ROLE["tolerations"]
        (spread,) = pod["topologySpreadConstraints"]
        role = name.rsplit("-", 1)[1]
        assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == role
        assert pod.get("nodeSelector") == ({"pool": "http"} if role == "poller" else None)


def test_the_ingress_scales_on_an_autoscaler_instead_of_a_replica_count() -> None:
    manifests = render(EVERY_ROLE)
    (autoscaler,) = of_kind(manifests, "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "sms-smsc-gateway-ingress"
    ingress = next(w for w in workloads(manifests) if w["metadata"]["name"].endswith("-ingress"))
    assert "replicas" not in ingress["spec"]


def test_monitoring_objects_carry_the_label_their_prometheus_selects() -> None:
    manifests = render(EVERY_ROLE)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        (found,) = of_kind(manifests, kind)
        assert found["metadata"]["labels"]["release"] == "monitoring"


# -- the alert rules the chart installs -------------------------------------------------------


def chart_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
    (rule,) = of_kind(render(values), "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def test_the_chart_installs_the_same_rules_with_its_runbook_address() -> None:
    values = EVERY_ROLE | {
        "prometheusRule": {"enabled": True, "runbookBaseUrl": "https://docs.example.org/runbook.md"}
    }
    shipped = yaml.safe_load(ALERTS.read_text())["groups"]
    rendered = chart_rules(values)
    for ours, theirs in zip(shipped, rendered, strict=False):
        for a, b in zip(ours["rules"], theirs["rules"], strict=True):
            anchor = a["annotations"]["runbook_url"].split("#")[1]
            assert (
                b["annotations"]["runbook_url"] == f"https://docs.example.org/runbook.md#{anchor}"
            )
            assert {k: v for k, v in a.items() if k != "annotations"} == {
                k: v for k, v in b.items() if k != "annotations"
            }


def test_the_chart_alerts_when_an_enabled_role_has_no_target(tmp_path: Path) -> None:
    """promtool runs the chart's absence rules: the correlator is missing, the sender is not."""
    groups = [g for g in chart_rules(EVERY_ROLE) if g["name"].endswith(".targets")]
    absent = {r["labels"]["role"] for g in groups for r in g["rules"]}
    assert absent == {"sender", "ingress", "receiver", "correlator", "poller"}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    series = [
        {
            "series": f'up{{job="smsc-gateway", role="{role}", namespace="messaging"}}',
            "values": "1x20",
        }
        for role in sorted(absent - {"correlator"})
    ]
    expected = {
        "exp_labels": {
            "job": "smsc-gateway",
            "role": "correlator",
            "namespace": "messaging",
            "severity": "critical",
        },
        "exp_annotations": next(
            r["annotations"]
            for g in groups
            for r in g["rules"]
            if r["labels"]["role"] == "correlator"
        ),
    }
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "SmscGatewayRoleAbsent", "exp_alerts": []},
                    {
                        "eval_time": "15m",
                        "alertname": "SmscGatewayRoleAbsent",
                        "exp_alerts": [expected],
                    },
                ],
            }
        ],
    }
    (tmp_path / "rules.test.yml").write_text(yaml.safe_dump(test))
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run deploy/local/install-test-tools.sh"
    done = subprocess.run(
        [promtool, "test", "rules", "rules.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_chart_absence_alerts_link_to_their_runbook_section() -> None:
    groups = [g for g in chart_rules(EVERY_ROLE) if g["name"].endswith(".targets")]
    for rule in (r for g in groups for r in g["rules"]):
        assert rule["annotations"]["runbook_url"] == "docs/runbook.md#smscgatewayroleabsent"
    assert "smscgatewayroleabsent" in runbook_anchors()
