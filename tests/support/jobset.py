"""What JobSet's API server schema and admission webhook accept as a JobSet (`jobset.x-k8s.io/v1alpha2`), for the
fields modelplane writes.

Ported from kubernetes-sigs/jobset at tag v0.12.0 (commit f22e565ac3cc3265c7c45ef67ecffdc689af5d77):
- the schema: config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml (generated from
  api/jobset/v1alpha2/jobset_types.go), cut to `spec.replicatedJobs[]` (`name`, `replicas`, `template`), `network`,
  `failurePolicy` and `ttlSecondsAfterFinished`: the required fields, the enums of failure policy actions and restart
  strategies, `replicatedJobs` as a list keyed by `name`. A replicated job's `template` is a batch/v1
  JobTemplateSpec in the CRD; its `spec` is checked here as a Job's is, by the Kubernetes OpenAPI schema
  (kubernetes_validate, strict).
- the webhook's checks (pkg/webhooks/jobset_webhook.go, ValidateCreate and validateFailurePolicy) that a valid
  schema does not imply: the names JobSet derives from the JobSet's (placement.GenJobName
  `<jobset>-<replicatedJob>-<jobIndex>`, and GenPodName with a 5-character suffix, for an Indexed Job with
  completions) are DNS-1035 labels of at most 63 characters; a failure policy rule's name is 1 to 128 characters of
  `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`, unique; its onJobFailureReasons are Job failure reasons
  (BackoffLimitExceeded, DeadlineExceeded, FailedIndexes, MaxFailedIndexesExceeded, PodFailurePolicy); its
  targetReplicatedJobs exist.
A field the schema does not declare is pruned by the API server, silently (tests/support/pruning.py), so it is
reported. Not ported: the fields modelplane does not write (successPolicy, startupPolicy, coordinator, dependsOn,
volumeClaimPolicies, managedBy), the update rules (`self == oldSelf`: the operator creates JobSets, never changes
them) and the feature-gated actions' checks (RestartJob).
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate

from tests.support.apiserver import schema_errors
from tests.support.facts import KUBERNETES_VERSION
from tests.support.pruning import pruned

API_VERSION = "jobset.x-k8s.io/v1alpha2"
_INT32 = {"type": "integer", "format": "int32"}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_IMMUTABLE = {"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]}
REPLICATED_JOB: dict[str, Any] = {
    "type": "object", "required": ["name", "template"],
    "properties": {
        "name": {"type": "string"},
        "groupName": {"type": "string", "default": "default"},
        "replicas": {**_INT32, "default": 1},
        # batch/v1 JobTemplateSpec: its spec is checked as a Job's (see `problems`).
        "template": {"type": "object", "properties": {
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "spec": {"type": "object", "required": ["template"], "x-kubernetes-preserve-unknown-fields": True}}},
    },
}
FAILURE_POLICY_RULE: dict[str, Any] = {
    "type": "object", "required": ["action", "name"],
    "properties": {
        "name": {"type": "string"},
        "action": {"type": "string", "enum": ["FailJobSet", "RestartJobSet", "RestartJobSetAndIgnoreMaxRestarts",
                                              "RestartJob", "RestartJobAndIgnoreMaxRestarts"]},
        "onJobFailureReasons": _STRINGS,
        "onJobFailureMessagePatterns": _STRINGS,
        "targetReplicatedJobs": {**_STRINGS, "x-kubernetes-list-type": "atomic"},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "replicatedJobs": {"type": "array", "items": REPLICATED_JOB, "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["name"]},
            "network": {"type": "object", **_IMMUTABLE, "properties": {
                "enableDNSHostnames": {"type": "boolean"}, "subdomain": {"type": "string"},
                "publishNotReadyAddresses": {"type": "boolean"}}},
            "failurePolicy": {"type": "object", **_IMMUTABLE, "properties": {
                "maxRestarts": _INT32,
                "restartStrategy": {"type": "string", "default": "Recreate",
                                    "enum": ["Recreate", "BlockingRecreate", "InPlaceRestart"]},
                "rules": {"type": "array", "items": FAILURE_POLICY_RULE}}},
            "suspend": {"type": "boolean"},
            "ttlSecondsAfterFinished": {**_INT32, "minimum": 0},
        }},
    },
}
JOB_FAILURE_REASONS = ("BackoffLimitExceeded", "DeadlineExceeded", "FailedIndexes", "MaxFailedIndexesExceeded",
                       "PodFailurePolicy")
_RULE_NAME = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _dns_1035(value: str, what: str) -> list[str]:
    if len(value) > 63:
        return [f"{what} {value!r}: must be no more than 63 characters"]
    return [] if _DNS_1035.match(value) else [f"{what} {value!r}: not a DNS-1035 label"]


def _webhook(name: str, spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    replicated = spec.get("replicatedJobs") or []
    names = [r["name"] for r in replicated]
    if len(set(names)) != len(names):
        problems.append("spec.replicatedJobs: names are the keys of a map list, duplicated")
    for r in replicated:
        job = r["template"]["spec"]
        problems += _dns_1035(f"{name}-{r['name']}-{r.get('replicas', 1) - 1}", "job name")
        if job.get("completionMode") == "Indexed" and "completions" in job:
            pod = f"{name}-{r['name']}-{r.get('replicas', 1) - 1}-{job['completions'] - 1}-abcde"
            problems += _dns_1035(pod, "pod name")
    rules = (spec.get("failurePolicy") or {}).get("rules") or []
    for i, rule in enumerate(rules):
        if not 1 <= len(rule["name"]) <= 128 or not _RULE_NAME.match(rule["name"]):
            problems.append(f"spec.failurePolicy.rules[{i}].name {rule['name']!r}: invalid rule name")
        problems += [f"spec.failurePolicy.rules[{i}]: {reason!r} is not a job failure reason"
                     for reason in rule.get("onJobFailureReasons") or [] if reason not in JOB_FAILURE_REASONS]
        problems += [f"spec.failurePolicy.rules[{i}]: no replicatedJob {target!r}"
                     for target in rule.get("targetReplicatedJobs") or [] if target not in names]
    if len({rule["name"] for rule in rules}) != len(rules):
        problems.append("spec.failurePolicy.rules: rule names are not unique")
    return problems


def _job_template(template: dict[str, Any]) -> list[str]:
    """A replicated job's template, checked as the batch/v1 Job it becomes."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job", **(template.get("metadata") or {})},
           "spec": template["spec"]}
    try:
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"replicatedJobs[].template: {error}"]
    return []


def problems(obj: dict[str, Any]) -> list[str]:
    """Why the API server or JobSet's webhook would refuse `obj`, or drop part of it; [] when it takes it whole."""
    if (obj.get("apiVersion"), obj.get("kind")) != (API_VERSION, "JobSet"):
        return [f"not a {API_VERSION} JobSet"]
    found = schema_errors(obj, SCHEMA)
    if found:
        return found
    spec = SCHEMA["properties"]["spec"]
    return [*(f"spec{path}: not in the CRD's schema, pruned" for path in pruned(spec, obj["spec"])),
            *(p for r in obj["spec"].get("replicatedJobs") or [] for p in _job_template(r["template"])),
            *_webhook(obj["metadata"]["name"], obj["spec"])]
