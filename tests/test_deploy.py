"""The deployment files stay true to the code: metric names, roles, settings, ports.

Dashboards and alert rules may only use metrics the gateway defines; docker-compose.yml, the
Prometheus config and the Helm values may only run real roles with real settings, and agree
on each role's probe port. Prometheus' own promtool checks and unit-tests the rules.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
import subprocess
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import LEFTOVER_GRACE_SECONDS, ROLES
from gateway.settings import Settings, load_settings
from gateway.shutdown import CLOSE_SECONDS, STEP_DRAIN_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
ALERT_TESTS = ROOT / "deploy/prometheus/alerts.test.yml"
PROMETHEUS = ROOT / "deploy/prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"
CHART = ROOT / "helm/smsc-gateway"
RUNBOOK = ROOT / "docs/runbook.md"
DOCKERFILE = ROOT / "deploy/Dockerfile"

# The series a metric of each kind exposes, by suffix (Prometheus exposition format).
_SERIES_SUFFIXES = {
    "Counter": ("",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum"),
    "LoopHistogram": ("_bucket", "_count", "_sum"),
    "Summary": ("", "_count", "_sum"),
}
_METRIC = re.compile(r"\bsmsc_[a-z_]+")
_GATEWAY_SETTING = re.compile(r"^GATEWAY_[A-Z0-9_]+$")
# Roles that run the gateway (the simulator plays the provider and serves no probes).
_GATEWAY_ROLES = set(ROLES) - {"simulate"}


@cache
def defined_series() -> frozenset[str]:
    """Every series name the gateway's code can expose, read from its metric definitions."""
    names: set[str] = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            kind = _metric_kind(node)
            if kind is None:
                continue
            first = typing.cast(ast.Call, node).args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.update(first.value + suffix for suffix in _SERIES_SUFFIXES[kind])
    return frozenset(names)


def _metric_kind(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return name if name in _SERIES_SUFFIXES else None


def settings_names() -> set[str]:
    hints = typing.get_type_hints(Settings)
    return {
        f"GATEWAY_{section.name.upper()}_{item.name.upper()}"
        for section in dataclasses.fields(Settings)
        for item in dataclasses.fields(hints[section.name])
    }


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def unknown_metrics(exprs: list[str]) -> set[str]:
    used = {name for expr in exprs for name in _METRIC.findall(expr)}
    return used - defined_series()


def test_the_code_scan_finds_every_kind_of_metric() -> None:
    series = defined_series()
    assert "smsc_smpp_bound" in series  # Gauge
    assert "smsc_send_results_total" in series  # Counter
    assert {"smsc_kafka_publish_latency_seconds_bucket", "smsc_ingress_callbacks_total"} <= series
    assert "smsc_kafka_publish_latency_seconds" not in series  # a histogram has no bare series


def test_there_are_dashboards_for_sending_receiving_and_kafka() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"sending", "receiving", "kafka"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_uses_only_metrics_the_gateway_defines(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    exprs = list(dashboard_exprs(dashboard))
    assert exprs
    assert not unknown_metrics(exprs)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboards_keep_clusters_and_namespaces_apart(path: Path) -> None:
    """Two releases in one Prometheus: every selector is narrowed by cluster and namespace."""
    dashboard = json.loads(path.read_text())
    variables = [v["name"] for v in dashboard["templating"]["list"]]
    assert variables[:3] == ["datasource", "cluster", "namespace"]
    for expr in dashboard_exprs(dashboard):
        for selector in re.findall(r"\{[^}]*\}", expr):
            if "$" in selector and "job=" not in selector:
                assert 'cluster=~"$cluster", namespace=~"$namespace"' in selector, expr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_panels_and_variables_are_consistent(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    ids = [panel["id"] for panel in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    for expr in dashboard_exprs(dashboard):
        used = set(re.findall(r"\$(?!__)(\w+)", expr))
        assert used <= variables, f"{expr!r} uses undefined variables {used - variables}"
    for panel in all_panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel's PromQL, with Grafana's variables filled in, as a recording rule."""
    rules = []
    for path in DASHBOARDS:
        for panel in all_panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "5m")
                expr = re.sub(r"\$(\w+)", ".*", expr.replace("$__range", "1h"))
                name = f"dashboard:{path.stem}:panel_{panel['id']}_{target['refId']}"
                rules.append({"record": name, "expr": expr})
    copy = tmp_path / "dashboards.rules.yml"
    copy.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in promtool("check", "rules", str(copy))


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_alert_rules_use_only_metrics_the_gateway_defines() -> None:
    rules = alert_rules()
    assert not unknown_metrics([rule["expr"] for rule in rules])
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for test in load_yaml(ALERT_TESTS)["tests"]
        for case in test["alert_rule_test"]
    }
    for rule in alert_rules():
        assert rule["alert"] in tested, f"{rule['alert']} has no promtool test"


def runbook_anchors() -> set[str]:
    """The anchors of docs/runbook.md's headings, as a Markdown renderer makes them."""
    headings = re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_links_to_its_section_of_the_runbook() -> None:
    anchors = runbook_anchors()
    for rule in alert_rules():
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert (ROOT / path) == RUNBOOK, rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section {anchor!r} in docs/runbook.md"


def test_the_runbook_anchors_are_what_a_renderer_makes() -> None:
    assert {"smscgatewaydown", "binds", "smscconsumerlaghigh"} <= runbook_anchors()


def promtool(*args: str) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: run deploy/local/install-test-tools.sh")
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    promtool("check", "rules", str(ALERTS))
    promtool("test", "rules", str(ALERT_TESTS))


def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    config = load_yaml(PROMETHEUS)
    # In the container the rules are mounted beside the config; here they are in the repo.
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = [str(ALERTS)]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    promtool("check", "config", str(copy))


def chart_roles() -> dict[str, dict[str, Any]]:
    roles: dict[str, dict[str, Any]] = load_yaml(CHART / "values.yaml")["roles"]
    return roles


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load_yaml(COMPOSE)["services"]
    return services


def gateway_services() -> dict[str, tuple[str, dict[str, Any]]]:
    """Compose services that run a gateway role: name -> (role, service)."""
    found = {}
    for name, service in compose_services().items():
        command = service.get("command")
        if command and command[0] in _GATEWAY_ROLES:
            found[name] = (command[0], service)
    return found


def test_the_chart_and_compose_run_every_role() -> None:
    assert set(chart_roles()) == _GATEWAY_ROLES - {"all"}
    assert {role for role, _ in gateway_services().values()} == _GATEWAY_ROLES - {"all"}


def test_compose_runs_real_roles_with_real_settings() -> None:
    known = settings_names()
    for name, service in compose_services().items():
        command = service.get("command")
        if command is not None:
            assert command[0] in ROLES, f"{name} runs no role: {command}"
        env = [key for key in service.get("environment", {}) if key.startswith("GATEWAY_")]
        assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
    optional = {"receiver", "poller"}
    for name in optional:
        assert compose_services()[name].get("profiles") == [name]


def test_compose_mounts_only_files_that_exist() -> None:
    for service in compose_services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_each_role_serves_its_probes_where_compose_prometheus_and_the_chart_expect() -> None:
    """The chart names the setting that carries each role's port; compose sets it, publishes
    it, health-checks it, and Prometheus scrapes it; no two roles share a port."""
    chart = chart_roles()
    scraped = {
        sd["names"][0]: sd["port"]
        for sd in load_yaml(PROMETHEUS)["scrape_configs"][0]["dns_sd_configs"]
    }
    ports = []
    for name, (role, service) in gateway_services().items():
        env = service["environment"]
        port = int(env[chart[role]["portSetting"]])
        assert service["ports"] == [f"127.0.0.1:{port}:{port}"], name
        assert int(env["HEALTHCHECK_PORT"]) == port, name
        assert scraped[name] == port, name
        ports.append(port)
    assert len(ports) == len(set(ports))
    assert set(scraped) == set(gateway_services())


def test_chart_values_name_real_settings() -> None:
    values = load_yaml(CHART / "values.yaml")
    known = settings_names()
    keys = set(values["env"]) | set(values["secretEnv"])
    for spec in chart_roles().values():
        keys |= set(spec["env"]) | {spec["portSetting"]}
    assert all(_GATEWAY_SETTING.match(key) for key in keys)
    assert keys <= known, f"unknown settings {keys - known}"


def test_chart_ships_the_same_dashboards_and_rules_as_compose() -> None:
    # Links, so the chart's ConfigMap and PrometheusRule cannot drift from deploy/.
    assert (CHART / "files/alerts.yml").resolve() == ALERTS
    linked = sorted((CHART / "files/dashboards").resolve().glob("*.json"))
    assert linked == DASHBOARDS


def test_docker_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: run deploy/local/install-test-tools.sh")
    done = subprocess.run(
        [binary, "--file", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_compose_publishes_on_the_loopback_only_and_grafana_asks_for_a_login() -> None:
    for name, service in compose_services().items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every address"
    grafana = compose_services()["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_compose_kafka_has_a_listener_for_the_host() -> None:
    kafka = compose_services()["kafka"]
    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "HOST://127.0.0.1:29092" in advertised.split(",")
    assert kafka["ports"] == ["127.0.0.1:29092:29092"]
    # The command to produce a test request is in the file's header, against that listener.
    assert "kcat -P -b 127.0.0.1:29092 -t smsc.send.v1" in COMPOSE.read_text()


def test_the_image_exposes_every_role_port_and_gives_a_start_period() -> None:
    text = DOCKERFILE.read_text()
    expose = re.search(r"^EXPOSE (.+)$", text, re.MULTILINE)
    assert expose is not None
    exposed = {int(port) for port in expose[1].split()}
    services = [service for _, service in gateway_services().values()]
    compose_ports = {int(service["environment"]["HEALTHCHECK_PORT"]) for service in services}
    chart_ports = {spec["port"] for spec in chart_roles().values()}
    assert compose_ports | chart_ports <= exposed
    assert re.search(r"HEALTHCHECK .*--start-period=\d+s", text)


def test_the_build_context_leaves_out_the_workspace() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "everything is excluded first"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed == {"pyproject.toml", "constraints.txt", "README.md", "gateway"}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
    assert {name for line in copied for name in line.split()} <= allowed


def _longest_stop_seconds(environment: dict[str, Any]) -> float:
    """The most a role may take from SIGTERM to exit: the longest drain its settings give any
    role it runs, the close, and the cancellations after (gateway.shutdown, gateway.cli)."""
    overrides = {k: v for k, v in environment.items() if k.endswith("_DRAIN_TIMEOUT_SECONDS")}
    settings = load_settings(overrides)
    drains = (
        settings.sender.drain_timeout_seconds,
        settings.receiver.drain_timeout_seconds,
        settings.ingress.drain_timeout_seconds,
        STEP_DRAIN_SECONDS,
    )
    return max(drains) + CLOSE_SECONDS + 2 * LEFTOVER_GRACE_SECONDS


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"write stop_grace_period in whole seconds: {duration!r}"
    return float(match.group(1))


def test_compose_gives_every_role_the_time_its_drain_needs() -> None:
    for name, (_, service) in gateway_services().items():
        grace = _seconds(service.get("stop_grace_period", "10s"))
        needed = _longest_stop_seconds(service.get("environment", {}))
        assert grace >= needed, f"{name}: stop_grace_period {grace} s, its drain needs {needed} s"


def test_the_chart_gives_every_role_the_time_its_drain_needs() -> None:
    values = load_yaml(CHART / "values.yaml")
    environment = {k: str(v) for k, v in values["env"].items()}
    for spec in chart_roles().values():
        environment |= {k: str(v) for k, v in spec["env"].items()}
    assert values["terminationGracePeriodSeconds"] >= _longest_stop_seconds(environment)


def test_compose_runs_the_poller_on_the_simulated_http_api_which_calls_the_ingress() -> None:
    services = compose_services()
    simulator = services["simulator"]["environment"]
    poller = services["poller"]["environment"]
    ingress = services["ingress"]["environment"]
    port = simulator["GATEWAY_SIMULATOR_HTTP_API_PORT"]
    assert services["simulator"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert poller["GATEWAY_HTTP_API_BASE_URLS"].endswith(f":-http://simulator:{port}}}")
    login = poller["GATEWAY_HTTP_API_LOGIN"].removesuffix("}").rpartition(":-")[2]
    password = poller["GATEWAY_HTTP_API_PASSWORD"].removesuffix("}").rpartition(":-")[2]
    assert f"{login}:{password}" in simulator["GATEWAY_SIMULATOR_ACCOUNTS"].split(",")
    handler = f"http://ingress:{ingress['GATEWAY_INGRESS_PORT']}{ingress['GATEWAY_INGRESS_PATH']}"
    secret = ingress["GATEWAY_INGRESS_SECRET"]
    assert simulator["GATEWAY_SIMULATOR_HTTP_API_WEBHOOK_URL"] == f"{handler}?md5={secret}"
