"""Which GCE machine types carry which GPUs, and how many; and the general-purpose (CPU) machine types.

GKE refuses a node pool whose machine type cannot attach the requested accelerators, or does not exist, but only
after minutes of `pulumi up`. This catalogue lets the stack config be checked offline, before anything is planned,
and lists the valid choices in the error.

Source: https://cloud.google.com/compute/docs/gpus and https://cloud.google.com/compute/docs/general-purpose-machines,
as of 2026-11-25. The CPU families are the ones a system or build pool would use (e2, n2, n2d, c3, n1); to allow
another, add its shapes to CPU_FAMILIES (`gcloud compute machine-types list --zones=<zone>` lists what exists).
"""

import difflib
import re
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


# vCPU counts of each general-purpose family's predefined shapes.
CPU_FAMILIES: dict[str, dict[str, tuple[int, ...]]] = {
    "e2": {"standard": (2, 4, 8, 16, 32), "highmem": (2, 4, 8, 16), "highcpu": (2, 4, 8, 16, 32)},
    "n2": {"standard": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128), "highmem": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128),
           "highcpu": (2, 4, 8, 16, 32, 48, 64, 80, 96)},
    "n2d": {"standard": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224), "highmem": (2, 4, 8, 16, 32, 48, 64, 80, 96),
            "highcpu": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224)},
    "c3": {"standard": (4, 8, 22, 44, 88, 176), "highmem": (4, 8, 22, 44, 88, 176),
           "highcpu": (4, 8, 22, 44, 88, 176)},
    "n1": {"standard": (1, 2, 4, 8, 16, 32, 64, 96), "highmem": (2, 4, 8, 16, 32, 64, 96),
           "highcpu": (2, 4, 8, 16, 32, 64, 96)},
}
CPU_MACHINE_TYPES = frozenset(f"{family}-{shape}-{vcpus}" for family, shapes in CPU_FAMILIES.items()
                              for shape, sizes in shapes.items() for vcpus in sizes)
# Machine types that come with GPUs attached (N1 machines only take T4s as an option: they are CPU machines too).
GPU_MACHINE_TYPES = {machine: family.gpu_type for family in CATALOGUE.values()
                     for machines in family.machines.values() for machine in machines
                     if machine not in CPU_MACHINE_TYPES}


def cpu_machine_problem(machine_type: str) -> str | None:
    """Why `machine_type` cannot run a CPU pool (the system or build pool), or None when it can."""
    if machine_type in CPU_MACHINE_TYPES:
        return None
    if machine_type in GPU_MACHINE_TYPES:
        return (f"{machine_type!r} is a GPU machine type (it comes with {GPU_MACHINE_TYPES[machine_type]}); this pool "
                "runs CPU work: use a general-purpose type such as e2-standard-4 (GPUs go in gpuPools)")
    shape = re.fullmatch(r"([a-z0-9]+)-([a-z]+)-(\d+)", machine_type)
    sizes = CPU_FAMILIES.get(shape[1], {}).get(shape[2]) if shape else None
    if shape and sizes:
        return (f"{machine_type!r} does not exist: {shape[1]}-{shape[2]} comes with "
                f"{', '.join(map(str, sizes))} vCPUs")
    close = difflib.get_close_matches(machine_type, sorted(CPU_MACHINE_TYPES), n=1, cutoff=0.8)
    hint = f"did you mean {close[0]}? " if close else ""
    return (f"{machine_type!r} is not a general-purpose machine type; {hint}use <family>-<standard|highmem|highcpu>-"
            f"<vCPUs> of {', '.join(CPU_FAMILIES)}, such as e2-standard-4 (sizes: infra/gke/catalogue.py)")


# Memory per vCPU (GB) of the general-purpose shapes; N1 differs from the newer families.
_MEMORY_PER_VCPU = {"standard": 4.0, "highmem": 8.0, "highcpu": 1.0}
_N1_MEMORY_PER_VCPU = {"standard": 3.75, "highmem": 6.5, "highcpu": 0.9}
# The accelerator-optimized shapes per GPU (vCPUs, GB): https://cloud.google.com/compute/docs/accelerator-optimized-
# machines (A2 High 12 vCPU / 85 GB per A100 40 GB, a2-megagpu-16g 96 / 1360; A2 Ultra 12 / 170 per A100 80 GB;
# A3 High 26 / 234 per H100).
_PER_GPU = {"a2-highgpu": (12, 85.0), "a2-megagpu": (6, 85.0), "a2-ultragpu": (12, 170.0), "a3-highgpu": (26, 234.0)}


def machine_shape(machine_type: str) -> tuple[int, float]:
    """vCPUs and memory (GB) of a machine type of this catalogue: what a node offers before the kubelet reserves its
    share. G2, N1 and the CPU families are named by their vCPUs (G2 has 4 GB per vCPU); A2 and A3 by their GPUs."""
    family, kind, size = machine_type.split("-")
    if f"{family}-{kind}" in _PER_GPU:
        vcpus, memory = _PER_GPU[f"{family}-{kind}"]
        gpus = int(size.removesuffix("g"))
        return vcpus * gpus, memory * gpus
    per_vcpu = (_N1_MEMORY_PER_VCPU if family == "n1" else _MEMORY_PER_VCPU)[kind]
    return int(size), per_vcpu * int(size)
