"""deploy/: the Grafana dashboard, its provisioning, the Prometheus scrape config and alert rules are well formed
and query only metrics the service defines (scheduling/core/metrics.py)."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY
from support.dashboards import (
    ALERTS,
    COMPOSE,
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    PROMETHEUS,
    RECORDED_BY,
    dashboard,
    exposed_names,
    expressions,
    used_metrics,
    yaml_file,
)

import scheduling.core.metrics  # noqa: F401 - registers the service's metrics

DURATION = re.compile(r"^\d+[smhd]$")


def test_every_dashboard_panel_queries_the_provisioned_datasource() -> None:
    board = dashboard()
    uid = yaml_file(DATASOURCES)["datasources"][0]["uid"]
    ids = [panel["id"] for panel in board["panels"]]
    assert board["uid"] and board["title"] and len(ids) == len(set(ids)) >= 8
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == uid and panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
        assert all(target["datasource"]["uid"] == uid and target["expr"] for target in panel["targets"])


def test_the_dashboard_covers_what_operators_watch() -> None:
    used = used_metrics()
    for needed in ("scheduling_decision_seconds_bucket", "scheduling_commands_total", "scheduling_consumer_lag_records",
                   "scheduling_partition_stalled_seconds", "scheduling_parked_records_total",
                   "scheduling_outbox_retries_total"):  # fmt: skip
        assert needed in used


def test_alert_rules_are_complete() -> None:
    rules = [rule for group in yaml_file(ALERTS)["groups"] for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) >= 6
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["summary"]
        assert "for" not in rule or DURATION.match(rule["for"])


def test_every_expression_is_balanced() -> None:
    """A cheap PromQL syntax check (no promtool here): brackets pair up and quotes close."""
    pairs = {")": "(", "]": "[", "}": "{"}
    for expr in expressions():
        stack: list[str] = []
        for char in re.sub(r'"[^"]*"', '""', expr):
            if char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], expr
        assert not stack and expr.count('"') % 2 == 0, expr


def test_every_metric_used_is_defined_by_the_service() -> None:
    assert used_metrics() <= exposed_names(REGISTRY.collect())


def test_prometheus_loads_the_rules_and_grafana_the_dashboards() -> None:
    config = yaml_file(PROMETHEUS)
    assert config["rule_files"] == [f"/etc/prometheus/{ALERTS.name}"]
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert jobs == ["scheduling-worker", "scheduling-bridge", "scheduling-projector"]
    assert yaml_file(DASHBOARD_PROVIDERS)["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_role_that_records_a_counter_the_dashboard_uses_is_scraped_on_its_compose_port() -> None:
    """The bridge and the projector count dead letters and parked records: Prometheus must scrape them, on the
    port docker-compose.yml gives them (SCHEDULING_METRICS_PORT; the worker's HTTP view for the worker)."""
    assert set(RECORDED_BY) <= used_metrics()
    services = yaml_file(COMPOSE)["services"]
    scraped = {}
    for job in yaml_file(PROMETHEUS)["scrape_configs"]:
        assert job["metrics_path"] == "/metrics"
        (target,) = job["dns_sd_configs"]
        (name,) = target["names"]
        scraped[name] = target["port"]
    for role in {role for roles in RECORDED_BY.values() for role in roles}:
        environment = services[role]["environment"]
        port = environment["SCHEDULING_HTTP_PORT" if role == "worker" else "SCHEDULING_METRICS_PORT"]
        assert scraped[role] == int(port), role
