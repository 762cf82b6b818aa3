"""The Grafana dashboard and the Prometheus alert rules of ``examples/`` use only what the bridge
exposes (Prometheus takes a misspelt metric or label and silently answers no data).

Every expression (dashboard targets, collapsed rows' panels included; the job picker's
``label_values`` query; alert rules) must parse with ``promql_parser``, Grafana's ``$variables``
replaced first, and a walk of its syntax tree checks that:

- every metric name is one of ``METRICS.names()``;
- every label of a matcher, ``by``/``without``, ``on``/``ignoring``/``group_*``, legend or alert
  ``$labels`` is one the series there carry, or ``job``/``instance`` (``le``: ``_bucket`` only,
  and kept up to ``histogram_quantile``);
- every label value matched exactly (or as ``a|b``) is one the code writes.

The dashboard also needs unique panel ids, the templated data source and a unit on every panel,
and a panel per metric; every alert a unique name, a ``for`` duration, a severity, a summary and
a description."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser as pq
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from omnihook.receiver.ops.metrics import METRICS, Metrics
from omnihook.store import EVENT_STATUSES, OUTBOX_STATUSES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DASHBOARD = EXAMPLES / "grafana-dashboard.json"
ALERTS = EXAMPLES / "prometheus-alerts.yml"

TARGET_LABELS = frozenset({"job", "instance"})  # added by Prometheus to every scraped series
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What stands for Grafana's variables in a query: a duration, or a regex for the job picker.
GRAFANA_VALUES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "job": ".+"}
SEVERITIES = frozenset({"critical", "warning", "info"})
RULE_KEYS = frozenset({"alert", "expr", "for", "keep_firing_for", "labels", "annotations"})
DURATION = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")

# The values the code writes into the labels the examples match on (crm/base.py, worker.py,
# reconcile/loop.py, app.py, ops/metrics.py); the backlog's statuses are the store's, less done.
KNOWN_VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("omnihook_events", "status"): frozenset(EVENT_STATUSES) - {"done"},
    ("omnihook_outbox", "status"): frozenset(OUTBOX_STATUSES) - {"done"},
    ("omnihook_handling_total", "outcome"): frozenset({"done", "retried", "deferred", "dead"}),
    ("omnihook_crm_requests_total", "outcome"): frozenset(
        {"ok", "client_error", "rate_limited", "server_error", "timeout", "unreachable"}
    ),
    ("omnihook_reconcile_rounds_total", "outcome"): frozenset({"ok", "incomplete", "failed"}),
    ("omnihook_outbox_deliveries_total", "outcome"): frozenset({"done", "failed", "dead"}),
    ("omnihook_http_requests_total", "route"): frozenset(
        {"webhook", "healthz", "trigger", "metrics", "other"}
    ),
    **{
        ("omnihook_store_commit_seconds" + suffix, "operation"): frozenset({"accept", "finish"})
        for suffix in ("_bucket", "_sum", "_count")
    },
}


def exposed_labels() -> dict[str, frozenset[str]]:
    """Every sample name of a fresh :class:`Metrics` (the process's ``METRICS`` left alone) with
    its labels, a child of each labelled metric made first so that it has samples."""
    metrics = Metrics()
    for metric in vars(metrics).values():
        # A labelled metric, not one of its children (Metrics keeps some ready: commit_accept).
        if isinstance(metric, MetricWrapperBase) and metric._labelnames and not metric._labelvalues:
            metric.labels(*("x" for _ in metric._labelnames))
    families = metrics.registry.collect()
    labels = {s.name: frozenset(s.labels) for family in families for s in family.samples}
    assert METRICS.names() <= labels.keys()
    return labels


LABELS = exposed_labels()


# -- the checks, on a PromQL syntax tree -----------------------------------------------------


def metric_name(selector: pq.VectorSelector) -> str:
    named = (m.value for m in selector.matchers.matchers if m.name == "__name__")
    return selector.name or next(named, "")


def selectors(node: pq.Expr) -> list[pq.VectorSelector]:
    found: list[pq.VectorSelector] = []
    pq.walk(node, lambda n: found.append(n) if isinstance(n, pq.VectorSelector) else None)
    return found


def metric_names(node: pq.Expr) -> set[str]:
    return {metric_name(selector) for selector in selectors(node)}


def result_labels(node: pq.Expr) -> frozenset[str] | None:
    """The labels of the series ``node`` results in; ``None`` for a scalar or a string."""
    match node:
        case pq.VectorSelector():
            return LABELS.get(metric_name(node), frozenset()) | TARGET_LABELS
        case pq.MatrixSelector():
            return result_labels(node.vector_selector)
        case pq.ParenExpr() | pq.UnaryExpr() | pq.SubqueryExpr():
            return result_labels(node.expr)
        case pq.AggregateExpr():
            inner = result_labels(node.expr) or frozenset()
            if str(node.op) in ("topk", "bottomk", "limitk", "limit_ratio"):
                return inner
            grouping = frozenset(node.modifier.labels if node.modifier else ())
            if node.modifier and node.modifier.type == pq.AggModifierType.Without:
                return inner - grouping
            return grouping
        case pq.Call() if node.func.return_type == pq.ValueType.Vector:
            if node.func.name in ("absent", "absent_over_time", "vector"):
                return frozenset()
            args = (labels for arg in node.args if (labels := result_labels(arg)) is not None)
            inner = next(args, frozenset())
            if node.func.name == "label_replace":
                return inner | {node.args[1].val}
            return inner - {"le"} if node.func.name == "histogram_quantile" else inner
        case pq.BinaryExpr():
            lhs, rhs, mod = result_labels(node.lhs), result_labels(node.rhs), node.modifier
            if lhs is None or rhs is None:  # a scalar side
                return rhs if lhs is None else lhs
            if str(node.op) == "or":
                return lhs | rhs
            if mod and mod.card == pq.VectorMatchCardinality.OneToMany:
                return rhs | set(mod.group_labels or ())
            if mod and mod.card == pq.VectorMatchCardinality.ManyToOne:
                return lhs | set(mod.group_labels or ())
            if mod and mod.matching and str(node.op) not in ("and", "unless"):
                on = mod.matching.type == pq.LabelModifierType.Include
                return frozenset(mod.matching.labels) if on else lhs - set(mod.matching.labels)
            return lhs
    return None


def selector_problems(selector: pq.VectorSelector) -> Iterator[str]:
    name = metric_name(selector)
    if name not in METRICS.names():
        yield f"{name}: not in METRICS.names()"
        return
    for matcher in selector.matchers.matchers:
        label, value = matcher.name, matcher.value
        if label not in LABELS[name] | TARGET_LABELS | {"__name__"}:
            yield f"{name} has no label {label!r}"
        known = KNOWN_VALUES.get((name, label))
        if known is None:
            continue
        if matcher.op in (pq.MatchOp.Equal, pq.MatchOp.NotEqual):
            values = {value}
        elif matcher.op == pq.MatchOp.Re and re.fullmatch(r"[\w|]+", value):
            values = set(value.split("|"))
        else:
            continue
        for unknown in sorted(values - known):
            yield f"{name}: {label}={unknown!r} is never written ({sorted(known)})"


def missing(labels: list[str], there: frozenset[str] | None, where: str) -> list[str]:
    return [f"{where} ({label}): no such label" for label in labels if label not in (there or ())]


def problems(expr: str) -> list[str]:
    """What is wrong with the names and labels of ``expr``: none of it stops Prometheus, which
    answers with no data. Raises ``ValueError`` if ``expr`` is not PromQL."""
    found: list[str] = []

    def visit(node: pq.Expr) -> None:
        match node:
            case pq.VectorSelector():
                found.extend(selector_problems(node))
            case pq.AggregateExpr() if node.modifier:
                without = node.modifier.type == pq.AggModifierType.Without
                where = f"{node.op} {'without' if without else 'by'}"
                found.extend(missing(node.modifier.labels, result_labels(node.expr), where))
            case pq.Call() if node.func.name == "histogram_quantile":
                found.extend(missing(["le"], result_labels(node.args[1]), "histogram_quantile"))
            case pq.BinaryExpr(modifier=pq.BinModifier() as mod):
                lhs = result_labels(node.lhs) or frozenset()
                rhs = result_labels(node.rhs) or frozenset()
                if mod.matching:  # on (...): labels of both sides; ignoring (...): of either
                    on = mod.matching.type == pq.LabelModifierType.Include
                    sides, where = (lhs & rhs, "on") if on else (lhs | rhs, "ignoring")
                    found.extend(missing(mod.matching.labels, sides, f"{node.op} {where}"))
                one = rhs if mod.card == pq.VectorMatchCardinality.ManyToOne else lhs
                found.extend(missing(mod.group_labels or [], one, f"{node.op} group_*"))

    pq.walk(pq.parse(expr), visit)
    return found


@pytest.mark.parametrize(
    ("expr", "wrong"),
    [
        ("sum(rate(omnihook_http_request_total[5m]))", "omnihook_http_request_total: not in"),
        ('count({__name__="omnihook_store_upp"})', "omnihook_store_upp: not in"),
        ('omnihook_events{state="dead"}', "no label 'state'"),
        ('max(omnihook_events{status="deadd"})', "'deadd' is never written"),
        ('omnihook_events{status=~"pending|waiting"}', "'waiting' is never written"),
        ("sum by (adapter) (rate(omnihook_handling_total[5m]))", "sum by (adapter)"),
        ("sum(rate(omnihook_crm_requests_total[5m])) by (operaton)", "sum by (operaton)"),
        ("max by (le) (omnihook_handling_delay_seconds_sum)", "max by (le)"),
        ("histogram_quantile(0.9, sum(rate(omnihook_crm_request_seconds_bucket[5m])))", "(le)"),
        ("max(omnihook_store_up) and on (status) max by (status) (omnihook_events)", "on (status)"),
        ("max by (status) (omnihook_events) / ignoring (tpyo) max(omnihook_events)", "(tpyo)"),
        ("max(omnihook_events) / on () group_left (typo) max(omnihook_outbox)", "(typo)"),
    ],
)
def test_the_checks_find_wrong_names_and_labels(expr: str, wrong: str) -> None:
    found = problems(expr)
    assert any(wrong in problem for problem in found), found


@pytest.mark.parametrize("expr", ["sum(rate(x[5m])", "rat(x[5m])", "x[$__rate_interval]", "1 > 0"])
def test_the_checks_refuse_what_prometheus_would(expr: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - promql_parser raises ValueError only
        problems(expr)


# -- the dashboard ---------------------------------------------------------------------------


def load_dashboard() -> Any:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those of collapsed rows (nested in the row) included."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def promql(grafana_expr: str) -> str:
    """A dashboard's expression with Grafana's ``$variables`` replaced by values of their kind."""
    return re.sub(r"\$\{?(\w+)\}?", lambda found: GRAFANA_VALUES[found[1]], grafana_expr)


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(panel title, PromQL, legend) of every target of every panel."""
    return [
        (panel["title"], promql(target["expr"]), target.get("legendFormat", ""))
        for panel in all_panels(load_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def test_every_panel_has_a_unique_id_the_templated_source_and_a_unit() -> None:
    dashboard = load_dashboard()  # imported asking for the data source it names
    inputs = {i["name"] for i in dashboard["__inputs"] if i["pluginId"] == "prometheus"}
    assert set(re.findall(r"\$\{(DS_\w+)\}", DASHBOARD.read_text(encoding="utf-8"))) == inputs
    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), sorted(ids)
    assert any(panel.get("collapsed") and panel["panels"] for panel in panels)  # nested ones
    for panel in (panel for panel in panels if panel["type"] != "row"):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]


def test_every_dashboard_query_uses_what_the_bridge_exposes() -> None:
    for title, expr, legend in dashboard_targets():
        assert problems(expr) == [], title
        tree = pq.parse(expr)
        for selector in selectors(tree):  # every query follows the job picker
            job = [(m.op, m.value) for m in selector.matchers.matchers if m.name == "job"]
            assert job == [(pq.MatchOp.Re, GRAFANA_VALUES["job"])], title
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert legend_labels <= (result_labels(tree) or set()), (title, legend)


def test_the_dashboard_shows_every_metric() -> None:
    """A metric added to :class:`Metrics` gets a panel (a histogram by its buckets)."""
    used = set().union(*(metric_names(pq.parse(expr)) for _, expr, _ in dashboard_targets()))
    exposed = {name for name in METRICS.names() if not name.endswith(("_sum", "_count"))}
    assert exposed <= used, sorted(exposed - used)


def test_the_job_picker_reads_an_omnihook_series() -> None:
    picker = {v["name"]: v for v in load_dashboard()["templating"]["list"]}["job"]
    assert picker["datasource"] == DATASOURCE
    assert picker["query"]["query"] == picker["definition"]
    found = re.fullmatch(r"label_values\((.+), *(\w+)\)", picker["definition"])
    assert found is not None
    assert (found[2], problems(found[1])) == ("job", [])


# -- the alert rules -------------------------------------------------------------------------


def load_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert set(loaded) == {"groups"}
    names = [group["name"] for group in loaded["groups"]]
    assert len(names) == len(set(names)), names
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_every_alert_has_a_wait_a_severity_and_words() -> None:
    rules = load_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    for rule in rules:
        name = rule["alert"]
        assert set(rule) <= RULE_KEYS, name
        assert DURATION.fullmatch(str(rule["for"])), (name, rule["for"])
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_every_alert_expression_uses_what_the_bridge_exposes() -> None:
    used: set[str] = set()
    for rule in load_rules():
        assert problems(rule["expr"]) == [], rule["alert"]
        tree = pq.parse(rule["expr"])
        labels = result_labels(tree)
        assert labels is not None, f"{rule['alert']}: a scalar, not series"
        templates = " ".join([*rule["annotations"].values(), *rule["labels"].values()])
        assert set(re.findall(r"\$labels\.(\w+)", templates)) <= labels, rule["alert"]
        used |= metric_names(tree)
    assert {"omnihook_store_up", "omnihook_events", "omnihook_crm_circuit_open"} <= used
