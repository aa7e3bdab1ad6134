"""What the operator knows about the cluster it runs in, from its environment.

The Pulumi stack writes these facts into the operator's ConfigMap (loaded with envFrom); locally, export them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from modelplane.images import BUILDER_IMAGE, NOTEBOOK_IMAGE, SERVER_IMAGE
from modelplane.layout import GpuPool
from modelplane.names import BUILD_NAMESPACE, WORKLOAD_KSA


@dataclass(frozen=True)
class ClusterFacts:
    project: str
    bucket: str
    registry: str
    gpu_pools: tuple[GpuPool, ...] = ()
    workload_service_account: str = WORKLOAD_KSA
    server_image: str = SERVER_IMAGE
    notebook_image: str = NOTEBOOK_IMAGE
    builder_image: str = BUILDER_IMAGE
    build_namespace: str = BUILD_NAMESPACE  # where build Jobs run (see builders/build.py)
    # The platform's own programs that run in tenant namespaces (the capture proxy, the monitor), built with the
    # operator's image; "" where the stack has none, and then payload capture and monitoring are refused.
    runtime_image: str = ""

    def pools_of(self, gpu_type: str) -> tuple[GpuPool, ...]:
        return tuple(pool for pool in self.gpu_pools if pool.gpu_type == gpu_type)

    @property
    def gpu_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(pool.gpu_type for pool in self.gpu_pools))

    # Each fact and the variable it travels in, from the stack's ConfigMap to the operator: one table for both ways.
    OPTIONAL_ENV: ClassVar[tuple[tuple[str, str], ...]] = (
        ("workload_service_account", "MODELPLANE_WORKLOAD_KSA"), ("server_image", "MODELPLANE_SERVER_IMAGE"),
        ("notebook_image", "MODELPLANE_NOTEBOOK_IMAGE"), ("builder_image", "MODELPLANE_BUILDER_IMAGE"),
        ("build_namespace", "MODELPLANE_BUILD_NAMESPACE"), ("runtime_image", "MODELPLANE_RUNTIME_IMAGE"))

    def to_env(self) -> dict[str, str]:
        """The MODELPLANE_* variables from_env reads back as these facts (what deploy.py writes into the ConfigMap)."""
        pools = [pool.to_wire() for pool in self.gpu_pools]
        return {"MODELPLANE_PROJECT": self.project, "MODELPLANE_BUCKET": self.bucket,
                "MODELPLANE_REGISTRY": self.registry, "MODELPLANE_GPU_POOLS": json.dumps(pools, sort_keys=True),
                **{var: getattr(self, key) for key, var in self.OPTIONAL_ENV}}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClusterFacts:
        """Read MODELPLANE_* variables; a missing required one is named in the error."""
        missing = [k for k in ("MODELPLANE_PROJECT", "MODELPLANE_BUCKET", "MODELPLANE_REGISTRY") if not env.get(k)]
        if missing:
            raise ValueError(f"operator configuration lacks {', '.join(missing)} (set by the stack's ConfigMap)")
        pools = tuple(map(GpuPool.from_wire, json.loads(env.get("MODELPLANE_GPU_POOLS", "[]"))))
        optional = {key: env[var] for key, var in cls.OPTIONAL_ENV if env.get(var)}
        return cls(project=env["MODELPLANE_PROJECT"], bucket=env["MODELPLANE_BUCKET"],
                   registry=env["MODELPLANE_REGISTRY"], gpu_pools=pools, **optional)
