"""Which objects wait for which: read once per generation, moved when the spec changes, dropped on deletion."""

from __future__ import annotations

from modelplane.operator.dependents import Dependents

DATA = ("Dataset", "ml", "data")
OTHER = ("Dataset", "ml", "other")
MODEL = ("Model", "ml", "m")


def test_an_object_is_found_by_what_it_waits_for_and_its_inputs_are_read_once_per_generation() -> None:
    dependents, reads = Dependents(), []

    def inputs() -> list[tuple[str, str, str]]:
        reads.append(1)
        return [DATA]

    dependents.update(MODEL, 1, inputs)
    dependents.update(MODEL, 1, inputs)  # a status write: same generation, same inputs
    assert dependents.waiting_for(DATA) == {MODEL}
    assert dependents.waiting_for(OTHER) == frozenset()
    assert len(reads) == 1


def test_a_new_generation_moves_it_and_a_deletion_drops_it() -> None:
    dependents = Dependents()
    dependents.update(MODEL, 1, lambda: [DATA])
    dependents.update(MODEL, 2, lambda: [OTHER])
    assert dependents.waiting_for(DATA) == frozenset()
    assert dependents.waiting_for(OTHER) == {MODEL}
    dependents.forget(MODEL)
    assert dependents.waiting_for(OTHER) == frozenset()
    assert dependents._waiting == {} and dependents._indexed == {}  # nothing kept for a deleted object


def test_without_a_generation_the_inputs_are_read_each_time() -> None:
    dependents, reads = Dependents(), []

    def inputs() -> list[tuple[str, str, str]]:
        reads.append(1)
        return [DATA]

    for _ in range(2):
        dependents.update(MODEL, None, inputs)
    assert len(reads) == 2 and dependents.waiting_for(DATA) == {MODEL}
