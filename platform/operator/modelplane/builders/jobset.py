"""The JobSet of a multi-node training run (`spec.resources.nodes` > 1): N pods of G GPUs each, admitted and
restarted as one gang, with torchrun's rendezvous in their environment.

Why JobSet (kubernetes-sigs/jobset, jobset.x-k8s.io/v1alpha2; the port its tests check against is
tests/support/jobset.py): it is the Kubernetes engine for a group of Jobs that live and die together, and Kueue
integrates with it natively (the `kueue.x-k8s.io/queue-name` label on the JobSet; Kueue admits it as one Workload
with a pod set per replicated job, all of its pods or none: kueue site/content/en/docs/tasks/run/jobsets.md).
Kubeflow Trainer v2 builds its TrainJob on JobSet (a TrainingRuntime is a JobSet template, plus an ML policy and
initializers); modelplane already has the runtime (the Model's image, its mounts and params), so Trainer would add a
controller and a CRD and nothing we use.

What JobSet and Kubernetes do, and modelplane does not redo:
- the gang: one replicated job `node` whose Job is Indexed with `parallelism = completions = N`; Kueue holds the
  whole JobSet suspended until quota for all N pods is there;
- names: JobSet gives each pod the hostname `<jobset>-node-0-<index>` under the headless Service `<jobset>`
  (`network.enableDNSHostnames`, site/content/en/docs/concepts), so rank 0 is reachable at a name known up front;
- the rank: the Job controller annotates each pod with its completion index
  (`batch.kubernetes.io/job-completion-index`), read through the downward API as NODE_RANK;
- restarts: the ranks run in lockstep, so one lost pod stops them all. A disrupted pod (spot preemption, a drain)
  fails its Job at once through the Job's pod failure policy (`FailJob` on `DisruptionTarget`), and JobSet restarts
  the whole gang without counting it against maxRestarts (`RestartJobSetAndIgnoreMaxRestarts` on the Job failure
  reason `PodFailurePolicy`: upstream's site/static/examples/failure-policy/host-maintenance-event-model.yaml); any
  other failure (`backoffLimit: 0`: the first failed pod) restarts the gang at most BACKOFF_LIMIT times, as a
  single-node run retries its pod. Every restart resumes from the run's checkpoints.

The rendezvous is torchrun's own static one (torch.distributed.run: `--nnodes`, `--nproc-per-node`, `--node-rank`,
`--master-addr`, `--master-port`): the environment has MASTER_ADDR, MASTER_PORT, NNODES, NODE_RANK, NPROC_PER_NODE
and WORLD_SIZE for the trainer's command line, and the same as torchrun's `PET_<FLAG>` variables
(torch/distributed/argparse_util.py reads a flag's default from them), so a bare `torchrun train.py` joins too.
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.api.common import Workload
from modelplane.api.model import MAX_NODES
from modelplane.builders.job import BACKOFF_LIMIT, RUN_DEADLINE, TTL_AFTER_FINISHED, run_parts
from modelplane.builders.workload import WORKLOAD_CONTAINER, Mount
from modelplane.cluster import ClusterFacts
from modelplane.meta import MAX_NAME, Owner

JOBSET_API_VERSION = "jobset.x-k8s.io/v1alpha2"
REPLICATED_JOB = "node"
MASTER_PORT = 29500  # torchrun's default --master-port
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# JobSet's webhook refuses a JobSet whose longest pod name, `<jobset>-<replicatedJob>-<jobIndex>-<podIndex>` and a
# 5-character suffix, passes 63 characters (pkg/webhooks/jobset_webhook.go, podNameTooLongErrorMsg).
MAX_JOBSET_NAME = MAX_NAME - len(f"-{REPLICATED_JOB}-0-{MAX_NODES - 1}-abcde")
DISRUPTIONS_RESTART_THE_GANG = {"rules": [{"action": "FailJob",
                                           "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}
FAILURE_POLICY = {"maxRestarts": BACKOFF_LIMIT, "rules": [
    {"name": "disruption", "action": "RestartJobSetAndIgnoreMaxRestarts", "onJobFailureReasons": ["PodFailurePolicy"]}]}


def child_job(name: str) -> str:
    """The one Job JobSet makes for the JobSet `name` (placement.GenJobName: `<jobset>-<replicatedJob>-<index>`):
    its pods carry its name as `job-name`, and its events say why pods could not be made."""
    return f"{name}-{REPLICATED_JOB}-0"


def rendezvous_env(name: str, nodes: int, gpus: int) -> list[dict[str, Any]]:
    """torchrun's static rendezvous for N nodes of G GPUs: rank 0's pod is the master."""
    rank = {"valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
    flags: dict[str, dict[str, Any]] = {
        "MASTER_ADDR": {"value": f"{child_job(name)}-0.{name}"},  # the headless Service is named as the JobSet
        "MASTER_PORT": {"value": str(MASTER_PORT)},
        "NNODES": {"value": str(nodes)},
        "NODE_RANK": rank,
        "NPROC_PER_NODE": {"value": str(gpus)},
    }
    return [*({"name": key, **value} for key, value in flags.items()),
            {"name": "WORLD_SIZE", "value": str(nodes * gpus)},
            *({"name": f"PET_{key}", **value} for key, value in flags.items())]


def run_jobset(owner: Owner, spec: Workload, image: str, cluster: ClusterFacts, mounts: list[Mount], name: str,
               nodes: int, files: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The params ConfigMap and the JobSet of a run on `nodes` pods, each with the single-node run's pod."""
    assert spec.resources.gpu is not None  # the CRD: nodes > 1 needs a GPU
    config_map, meta, template = run_parts(owner, spec, image, cluster, mounts, name, files)
    env = rendezvous_env(name, nodes, spec.resources.gpu.count)
    for container in template["spec"]["containers"]:
        if container["name"] == WORKLOAD_CONTAINER:  # the rendezvous wins over a spec.env of the same name
            taken = {var["name"] for var in env}
            container["env"] = [var for var in container["env"] if var["name"] not in taken] + env
    job = {
        "parallelism": nodes,
        "completions": nodes,
        "completionMode": "Indexed",
        "backoffLimit": 0,
        "podFailurePolicy": copy.deepcopy(DISRUPTIONS_RESTART_THE_GANG),
        "activeDeadlineSeconds": RUN_DEADLINE,
        "template": template,
    }
    jobset = {
        "apiVersion": JOBSET_API_VERSION,
        "kind": "JobSet",
        "metadata": meta,
        "spec": {
            "replicatedJobs": [{"name": REPLICATED_JOB, "replicas": 1, "template": {"spec": job}}],
            "network": {"enableDNSHostnames": True},
            "failurePolicy": copy.deepcopy(FAILURE_POLICY),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
        },
    }
    return [config_map, jobset]
