"""Stack configs and Kueue objects for the queueing tests."""

from __future__ import annotations

from typing import Any

from infra.config import StackConfig, parse_stack_config
from infra.offline import read_stack_values

# A100 on demand through queued provisioning, then spot: two flavors of one GPU type.
DWS_POOLS: list[dict[str, Any]] = [
    {"name": "l4", "gpuType": "nvidia-l4", "maxNodes": 2},
    {"name": "a100-dws", "gpuType": "nvidia-tesla-a100", "gpusPerNode": 8, "spot": False, "maxNodes": 2,
     "queuedProvisioning": True},
    {"name": "a100-spot", "gpuType": "nvidia-tesla-a100", "maxNodes": 3},
]


def config(**changes: Any) -> StackConfig:
    values = {k.split(":", 1)[1]: v for k, v in read_stack_values("dev").items()}
    return parse_stack_config(values | changes, "dev")


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}".lstrip("/"): o
            for o in objs if o["kind"] == kind}
