"""Which GCE machine types carry which GPUs, and how many.

GKE refuses a node pool whose machine type cannot attach the requested accelerators, but only after minutes of
`pulumi up`. This catalogue lets the stack config be checked offline, before anything is planned, and lists the
valid choices in the error.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuFamily:
    """One GKE accelerator type and the machine types that carry it, by GPUs per node."""

    gpu_type: str
    description: str
    machines: dict[int, tuple[str, ...]]
    spot_only_counts: frozenset[int] = frozenset()

    def default_machine(self, count: int) -> str:
        return self.machines[count][0]

    def choices(self) -> str:
        return "; ".join(f"{count} GPU: {', '.join(types)}" for count, types in sorted(self.machines.items()))


def _g2(*sizes: int) -> tuple[str, ...]:
    return tuple(f"g2-standard-{size}" for size in sizes)


CATALOGUE: dict[str, GpuFamily] = {
    family.gpu_type: family
    for family in (
        GpuFamily(
            "nvidia-l4",
            "NVIDIA L4 24 GB",
            {1: _g2(8, 4, 12, 16, 32), 2: _g2(24), 4: _g2(48), 8: _g2(96)},
        ),
        GpuFamily(
            "nvidia-tesla-a100",
            "NVIDIA A100 40 GB",
            {1: ("a2-highgpu-1g",), 2: ("a2-highgpu-2g",), 4: ("a2-highgpu-4g",), 8: ("a2-highgpu-8g",),
             16: ("a2-megagpu-16g",)},
        ),
        GpuFamily(
            "nvidia-a100-80gb",
            "NVIDIA A100 80 GB",
            {1: ("a2-ultragpu-1g",), 2: ("a2-ultragpu-2g",), 4: ("a2-ultragpu-4g",), 8: ("a2-ultragpu-8g",)},
        ),
        GpuFamily(
            "nvidia-h100-80gb",
            "NVIDIA H100 80 GB",
            {1: ("a3-highgpu-1g",), 2: ("a3-highgpu-2g",), 4: ("a3-highgpu-4g",), 8: ("a3-highgpu-8g",)},
            # GCE offers the fractional A3 High shapes only as Spot (or flex-start) capacity.
            spot_only_counts=frozenset({1, 2, 4}),
        ),
        GpuFamily(
            "nvidia-tesla-t4",
            "NVIDIA T4 16 GB",
            {1: ("n1-standard-8", "n1-standard-4", "n1-standard-16"), 2: ("n1-standard-16", "n1-standard-32"),
             4: ("n1-standard-32", "n1-standard-64")},
        ),
    )
}


def machine_problem(gpu_type: str, count: int, machine_type: str | None, spot: bool) -> str | None:
    """Why this GPU/count/machine combination cannot exist, or None when it can."""
    family = CATALOGUE[gpu_type]
    if count not in family.machines:
        return (f"{gpu_type} comes {', '.join(map(str, sorted(family.machines)))} per node, not {count}; "
                f"valid: {family.choices()}")
    if machine_type is not None and machine_type not in family.machines[count]:
        return (f"machine type {machine_type!r} does not carry {count} x {gpu_type}; "
                f"use one of {', '.join(family.machines[count])} (all shapes: {family.choices()})")
    if count in family.spot_only_counts and not spot:
        return (f"{count} x {gpu_type} per node exists only as Spot capacity: "
                f"set spot: true or use {max(family.machines)} GPUs per node")
    return None
