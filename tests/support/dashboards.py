"""The dashboard and alert files of deploy/, and the metric names their queries use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "scheduling.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "scheduling.yml"
COMPOSE = DEPLOY.parent / "docker-compose.yml"

#: counters that only some roles record (a counter lives in one process): each role listed must serve them on its
#: own /metrics, or what it counts is never scraped. Everything else the dashboard uses is on the worker's view.
RECORDED_BY = {
    "scheduling_dead_letters_total": ("bridge",),  # the relay (bridge/relay.py)
    "scheduling_parked_records_total": ("worker", "bridge", "projector"),  # actor, relay, projector
}

#: the service's own series; `up` and PromQL functions are Prometheus's
METRIC = re.compile(r"\bscheduling_[a-z_]+\b")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def yaml_file(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def expressions() -> list[str]:
    """Every PromQL expression: the dashboard's targets and the alert rules."""
    exprs = [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]]
    exprs += [rule["expr"] for group in yaml_file(ALERTS)["groups"] for rule in group["rules"]]
    return exprs


def used_metrics() -> set[str]:
    return {name for expr in expressions() for name in METRIC.findall(expr)}


def exposed_names(families: Any) -> set[str]:
    """Every series name a scrape of these metric families can carry, observed yet or not."""
    names: set[str] = set()
    for family in families:
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
    return names
