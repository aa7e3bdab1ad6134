"""GKE's managed Prometheus scrapes the operator and every ModelServer's pods, and nothing lets anyone else in.

The rendered PodMonitorings are checked against the upstream CRD's rules (tests/support/podmonitoring.py), against
the pods the operator's own builders make (their selectors and the ports those pods declare), and the rendered
NetworkPolicies are asked who may reach which port (tests/support/netpol.py), with the collectors as managed
collection runs them: pods labelled app.kubernetes.io/name=collector in gmp-system.
"""

from typing import Any

import yaml

from infra.offline import Plan
from modelplane.api.modelserver import ModelServerSpec
from modelplane.api.notebook import NotebookSpec
from modelplane.builders.notebook import notebook_children
from modelplane.builders.server import server_children
from modelplane.builders.workload import Mount
from modelplane.names import CAPTURE_METRICS_PORT, CAPTURE_METRICS_PORT_NAME
from tests.support import podmonitoring
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.netpol import Pod, ingress_allowed, namespace_labels, selects
from tests.support.objects import EXAMPLES
from tests.support.plans import rendered

COLLECTOR = Pod("gmp-system", {"app": "managed-prometheus-collector", "app.kubernetes.io/name": "collector"})


def of_kind(plan: Plan, kind: str, namespace: str) -> list[dict[str, Any]]:
    return [o for o in rendered(plan) if o["kind"] == kind and o["metadata"].get("namespace") == namespace]


def namespaces(plan: Plan) -> dict[str, dict[str, str]]:
    """Every namespace's labels as the API server stores them, the rendered ones and those GKE makes."""
    found = {o["metadata"]["name"]: namespace_labels(o["metadata"]["name"], o["metadata"]["labels"])
             for o in rendered(plan) if o["kind"] == "Namespace"}
    return {**found, "gmp-system": namespace_labels("gmp-system"), "kube-system": namespace_labels("kube-system")}


def ports(template: dict[str, Any]) -> dict[str, int]:
    """A pod template's container ports by name."""
    return {port["name"]: port["containerPort"] for c in template["spec"]["containers"] for port in c.get("ports", [])}


def server_template(namespace: str) -> dict[str, Any]:
    """A ModelServer's pod template as the operator builds it, from the example server."""
    spec = ModelServerSpec.model_validate(yaml.safe_load((EXAMPLES / "server-falcon-7b-squad.yaml").read_text())[
        "spec"])
    children = server_children(owner("ModelServer", "falcon", namespace=namespace), spec, "img:1", True,
                               f"{namespace}/models/m/v1/", f"gs://b/{namespace}/models/m/v1/", DEV_CLUSTER)
    (deployment,) = [c for c in children if c["kind"] == "Deployment"]
    template: dict[str, Any] = deployment["spec"]["template"]
    return template


def notebook_template(namespace: str) -> dict[str, Any]:
    spec = NotebookSpec.model_validate(yaml.safe_load((EXAMPLES / "notebook-falcon-7b.yaml").read_text())["spec"])
    children = notebook_children(owner("Notebook", "nb", namespace=namespace), spec, "img:1", True,
                                 [Mount("model", f"{namespace}/models/m/v1/", "/content/model", read_only=True)],
                                 DEV_CLUSTER, token="t", suspended=False)
    (statefulset,) = [c for c in children if c["kind"] == "StatefulSet"]
    template: dict[str, Any] = statefulset["spec"]["template"]
    return template


def operator_template(plan: Plan) -> dict[str, Any]:
    (deployment,) = of_kind(plan, "Deployment", "modelplane-system")
    template: dict[str, Any] = deployment["spec"]["template"]
    return template


def test_every_pod_monitoring_is_one_managed_prometheus_takes_whole(stack_plan: Plan) -> None:
    monitorings = [o for o in rendered(stack_plan) if o["kind"] == "PodMonitoring"]
    assert {o["metadata"]["namespace"] for o in monitorings} == {"modelplane-system", *stack_plan.outputs["tenants"]}
    for monitoring in monitorings:
        assert podmonitoring.problems(monitoring) == [], monitoring["metadata"]


def test_the_operators_metrics_port_is_scraped(stack_plan: Plan) -> None:
    (monitoring,) = of_kind(stack_plan, "PodMonitoring", "modelplane-system")
    template = operator_template(stack_plan)
    assert selects(monitoring["spec"]["selector"], template["metadata"]["labels"])
    assert [(e["port"], e["path"]) for e in monitoring["spec"]["endpoints"]] == [("metrics", "/metrics")]
    assert ports(template)["metrics"] == 9090  # where the operator serves them (names.OPERATOR_METRICS_PORT)


def test_every_model_servers_pods_are_scraped_and_no_others(prod_plan: Plan) -> None:
    for tenant in prod_plan.outputs["tenants"]:
        (monitoring,) = of_kind(prod_plan, "PodMonitoring", tenant)
        selector = monitoring["spec"]["selector"]
        assert selects(selector, server_template(tenant)["metadata"]["labels"])
        assert not selects(selector, notebook_template(tenant)["metadata"]["labels"])
        assert [(e["port"], e["path"]) for e in monitoring["spec"]["endpoints"]] == [
            ("payload-metrics", "/metrics"), ("http", "/metrics")]


def admitted_ports(plan: Plan, source: Pod, namespace: str, template: dict[str, Any],
                   candidates: list[int]) -> list[int]:
    target = Pod(namespace, template["metadata"]["labels"])
    policies = [o for o in rendered(plan) if o["kind"] == "NetworkPolicy"]
    return [port for port in candidates if ingress_allowed(policies, namespaces(plan), source, target, port)]


def test_the_collectors_reach_the_operators_metrics_port_and_nothing_else(stack_plan: Plan) -> None:
    template = operator_template(stack_plan)
    declared = sorted(ports(template).values())
    assert declared == [8080, 9090]  # health, metrics
    assert admitted_ports(stack_plan, COLLECTOR, "modelplane-system", template, declared) == [9090]
    tenant = stack_plan.outputs["tenants"][0]
    for stranger in (Pod("gmp-system", {"app.kubernetes.io/name": "rule-evaluator"}), Pod("kube-system"),
                     Pod(tenant, server_template(tenant)["metadata"]["labels"]),
                     Pod(tenant, {"app.kubernetes.io/name": "collector"})):
        assert admitted_ports(stack_plan, stranger, "modelplane-system", template, declared) == [], stranger


def test_the_collectors_reach_a_servers_metrics_ports_and_nothing_else(prod_plan: Plan) -> None:
    """The model server's `http` port as its builder declares it, and the capture sidecar's (names.py: the sidecar
    declares CAPTURE_METRICS_PORT as CAPTURE_METRICS_PORT_NAME)."""
    research, product = prod_plan.outputs["tenants"]
    template = server_template(research)
    metrics = sorted({ports(template)["http"], CAPTURE_METRICS_PORT})
    assert CAPTURE_METRICS_PORT_NAME == "payload-metrics" and metrics == [8080, 9090]
    assert admitted_ports(prod_plan, COLLECTOR, research, template, [*metrics, 22, 8888]) == metrics
    notebook = notebook_template(research)
    assert admitted_ports(prod_plan, COLLECTOR, research, notebook, [*metrics, 8888]) == []
    # Within the tenant, pods still reach each other; another tenant's pods reach none of it.
    assert admitted_ports(prod_plan, Pod(research), research, template, metrics) == metrics
    assert admitted_ports(prod_plan, Pod(product, server_template(product)["metadata"]["labels"]), research,
                          template, metrics) == []

