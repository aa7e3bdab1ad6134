import pytest

from infra.gke.catalogue import CATALOGUE, machine_problem
from modelplane.api.common import GPU_TYPES


def test_catalogue_offers_exactly_the_gpu_types_users_may_request() -> None:
    assert set(CATALOGUE) == set(GPU_TYPES)


@pytest.mark.parametrize(("gpu", "count", "machine"), [
    ("nvidia-l4", 1, "g2-standard-4"), ("nvidia-l4", 1, "g2-standard-32"), ("nvidia-l4", 2, "g2-standard-24"),
    ("nvidia-l4", 4, "g2-standard-48"), ("nvidia-l4", 8, "g2-standard-96"),
    ("nvidia-tesla-a100", 1, "a2-highgpu-1g"), ("nvidia-tesla-a100", 8, "a2-highgpu-8g"),
    ("nvidia-tesla-a100", 16, "a2-megagpu-16g"), ("nvidia-a100-80gb", 4, "a2-ultragpu-4g"),
    ("nvidia-h100-80gb", 8, "a3-highgpu-8g"),
])
def test_real_shapes_are_accepted(gpu: str, count: int, machine: str) -> None:
    assert machine_problem(gpu, count, machine, spot=False) is None


def test_l4_on_a_two_gpu_shape_lists_the_valid_one() -> None:
    problem = machine_problem("nvidia-l4", 1, "g2-standard-24", spot=True)
    assert problem is not None
    assert "g2-standard-24" in problem and "g2-standard-8" in problem and "2 GPU: g2-standard-24" in problem


def test_count_that_no_shape_offers_lists_the_counts() -> None:
    problem = machine_problem("nvidia-a100-80gb", 16, None, spot=True)
    assert problem is not None and "1, 2, 4, 8 per node, not 16" in problem


def test_fractional_h100_needs_spot() -> None:
    assert machine_problem("nvidia-h100-80gb", 2, None, spot=True) is None
    problem = machine_problem("nvidia-h100-80gb", 2, None, spot=False)
    assert problem is not None and "Spot" in problem


def test_every_default_machine_is_valid_for_its_count() -> None:
    for family in CATALOGUE.values():
        for count in family.machines:
            assert machine_problem(family.gpu_type, count, family.default_machine(count), spot=True) is None
