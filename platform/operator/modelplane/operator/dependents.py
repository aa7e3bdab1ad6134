"""Which objects wait for which: when an input appears or becomes Ready, the objects waiting for it are synced.

The operator's own map, fed by the watch events it already handles (handlers.py), in place of the kopf index it
once had: kopf invoked the index handler on every event of every object (its kwargs, a logger, the spec validated
again), 7% of the operator's CPU under load (bench/operator_throughput.py), while an object's inputs change only
with its spec, which is to say with its generation. Here they are read once per generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Key = tuple[str, str, str]  # (kind, namespace, name) of a custom resource


class Dependents:
    def __init__(self) -> None:
        self._waiting: dict[Key, set[Key]] = {}  # an input -> the objects waiting for it
        self._indexed: dict[Key, tuple[int | None, frozenset[Key]]] = {}  # an object -> (its generation, its inputs)

    def update(self, key: Key, generation: int | None, inputs: Callable[[], Iterable[Key]]) -> None:
        """What `key` waits for at `generation`; `inputs` is called only for a generation not seen yet (or unknown)."""
        seen = self._indexed.get(key)
        if seen is not None and generation is not None and seen[0] == generation:
            return
        self.forget(key)
        found = frozenset(inputs())
        self._indexed[key] = (generation, found)  # kept even when empty: most objects wait for nothing
        for input_key in found:
            self._waiting.setdefault(input_key, set()).add(key)

    def forget(self, key: Key) -> None:
        """`key` was deleted: it waits for nothing."""
        _generation, inputs = self._indexed.pop(key, (None, frozenset()))
        for input_key in inputs:
            waiting = self._waiting.get(input_key)
            if waiting is not None:
                waiting.discard(key)
                if not waiting:
                    del self._waiting[input_key]

    def waiting_for(self, key: Key) -> frozenset[Key]:
        return frozenset(self._waiting.get(key, ()))
