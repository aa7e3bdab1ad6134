"""The rules Kueue's API server side enforces on the objects the stack writes: a port, so tests hold us to them offline.

Ported from kubernetes-sigs/kueue v0.19.2 (the release infra/queueing.py pins), the `v1beta2` versions of
config/components/crd/bases/kueue.x-k8s.io_{resourceflavors,clusterqueues,localqueues,admissionchecks,
provisioningrequestconfigs}.yaml (generated from apis/kueue/v1beta2/*_types.go): required fields, name and quantity
patterns, list bounds, the enums and the CEL rules of the fields the stack sets. Only those fields: a field the
stack starts setting needs its rules added here. Object names are checked as the API server checks any custom
resource's (a DNS subdomain); LocalQueue names as the DNS label a Job's `kueue.x-k8s.io/queue-name` label holds.
"""

from __future__ import annotations

import re
from typing import Any

API_VERSION = "kueue.x-k8s.io/v1beta2"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KIND = re.compile(r"^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$")
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
_QUANTITY = re.compile(rf"^(\+|-)?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUMBER}))?$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
QUEUEING_STRATEGIES = ("StrictFIFO", "BestEffortFIFO")


def _name(value: Any, pattern: re.Pattern[str], max_len: int) -> bool:
    return isinstance(value, str) and len(value) <= max_len and bool(pattern.match(value))


def _quantity(value: Any) -> bool:
    """An int-or-string quantity: the CRD's pattern applies to strings; integers are quantities as they are."""
    return isinstance(value, int) or (isinstance(value, str) and bool(_QUANTITY.match(value)))


def _bounded(items: Any, least: int, most: int) -> bool:
    return isinstance(items, list) and least <= len(items) <= most


def _resource_flavor(spec: dict[str, Any]) -> list[str]:
    problems = []
    if len(spec.get("nodeLabels", {})) > 8:
        problems.append("spec.nodeLabels: at most 8")
    taints = spec.get("nodeTaints", [])
    if not _bounded(taints, 0, 8):
        problems.append("spec.nodeTaints: at most 8")
    for taint in taints:
        if not {"key", "effect"} <= set(taint):
            problems.append("spec.nodeTaints[]: key and effect are required")
        elif taint["effect"] not in TAINT_EFFECTS:
            problems.append(f"spec.nodeTaints[]: supported taint effect values: {TAINT_EFFECTS}")
    return problems


def _cluster_queue(spec: dict[str, Any]) -> list[str]:
    problems = []
    if "cohortName" in spec and not _name(spec["cohortName"], _SUBDOMAIN, 253):
        problems.append(f"spec.cohortName {spec['cohortName']!r}: not a DNS subdomain")
    if spec.get("queueingStrategy", "BestEffortFIFO") not in QUEUEING_STRATEGIES:
        problems.append(f"spec.queueingStrategy: one of {QUEUEING_STRATEGIES}")
    groups = spec.get("resourceGroups", [])
    if not _bounded(groups, 0, 16):
        problems.append("spec.resourceGroups: at most 16")
    for group in groups:
        if not {"coveredResources", "flavors"} <= set(group):
            problems.append("spec.resourceGroups[]: coveredResources and flavors are required")
            continue
        if not _bounded(group["coveredResources"], 1, 64) or not _bounded(group["flavors"], 1, 64):
            problems.append("spec.resourceGroups[]: 1..64 coveredResources and flavors")
        for flavor in group["flavors"]:
            if not _name(flavor.get("name"), _SUBDOMAIN, 253):
                problems.append(f"flavors[].name {flavor.get('name')!r}: not a DNS subdomain")
            resources = flavor.get("resources", [])
            if not _bounded(resources, 1, 64):
                problems.append("flavors[].resources: 1..64")
            # CEL: flavors must have the same number of resources as the coveredResources.
            if len(resources) != len(group["coveredResources"]):
                problems.append("flavors must have the same number of resources as the coveredResources")
            for resource in resources:
                if "name" not in resource or "nominalQuota" not in resource:
                    problems.append("flavors[].resources[]: name and nominalQuota are required")
                for key in ("nominalQuota", "borrowingLimit", "lendingLimit"):
                    if key in resource and not _quantity(resource[key]):
                        problems.append(f"{key} {resource[key]!r}: not a quantity")
                # CEL: borrowingLimit must be nil when cohort is empty.
                if "borrowingLimit" in resource and not spec.get("cohortName"):
                    problems.append("borrowingLimit must be nil when cohort is empty")
    if "admissionChecksStrategy" in spec:
        checks = spec["admissionChecksStrategy"].get("admissionChecks")
        if not _bounded(checks, 1, 64):
            problems.append("spec.admissionChecksStrategy.admissionChecks: 1..64 required")
        for check in checks or []:
            if not isinstance(check.get("name"), str) or len(check["name"]) > 316:
                problems.append("admissionChecks[].name: required, at most 316 characters")
            if not all(_name(flavor, _SUBDOMAIN, 253) for flavor in check.get("onFlavors", [])):
                problems.append("admissionChecks[].onFlavors: DNS subdomains")
    return problems


def _local_queue(spec: dict[str, Any]) -> list[str]:
    if not _name(spec.get("clusterQueue"), _SUBDOMAIN, 253):
        return [f"spec.clusterQueue {spec.get('clusterQueue')!r}: not a DNS subdomain"]
    return []


def _admission_check(spec: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(spec.get("controllerName"), str) or len(spec["controllerName"]) > 253:
        problems.append("spec.controllerName: required, at most 253 characters")
    parameters = spec.get("parameters")
    if parameters is not None and not (_name(parameters.get("apiGroup"), _SUBDOMAIN, 253)
                                       and _name(parameters.get("kind"), _KIND, 63)
                                       and _name(parameters.get("name"), _LABEL, 63)):
        problems.append("spec.parameters: apiGroup (a DNS subdomain), kind and name (a DNS label) are required")
    return problems


def _provisioning_request_config(spec: dict[str, Any]) -> list[str]:
    problems = []
    if not _name(spec.get("provisioningClassName"), _SUBDOMAIN, 253):
        problems.append("spec.provisioningClassName: required, a DNS subdomain")
    if not _bounded(spec.get("managedResources", []), 0, 100):
        problems.append("spec.managedResources: at most 100")
    return problems


_SPECS = {"ResourceFlavor": _resource_flavor, "ClusterQueue": _cluster_queue, "LocalQueue": _local_queue,
          "AdmissionCheck": _admission_check, "ProvisioningRequestConfig": _provisioning_request_config}
NAMESPACED = {"LocalQueue"}


def problems(obj: dict[str, Any]) -> list[str]:
    """What the API server would refuse in `obj`, one Kueue object; [] when it would accept it."""
    kind, metadata = obj.get("kind"), obj.get("metadata", {})
    if obj.get("apiVersion") != API_VERSION or kind not in _SPECS:
        return [f"not a {API_VERSION} object of a kind the stack writes: {obj.get('apiVersion')} {kind}"]
    found = [] if _name(metadata.get("name"), _LABEL if kind == "LocalQueue" else _SUBDOMAIN, 63 if kind ==
                        "LocalQueue" else 253) else [f"metadata.name {metadata.get('name')!r} is not a valid name"]
    if (kind in NAMESPACED) != ("namespace" in metadata):
        found.append(f"{kind} is {'namespaced' if kind in NAMESPACED else 'cluster-scoped'}")
    return found + _SPECS[kind](obj.get("spec", {}))
