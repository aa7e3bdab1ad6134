"""The kopf wiring's assumptions, held against the registry the handlers module fills."""

from __future__ import annotations

import kopf

import modelplane.operator.handlers  # noqa: F401  (registers the handlers)


def test_nothing_needs_the_diff_base_the_operator_does_not_keep() -> None:
    """NoDiffBase is safe only while no handler uses kopf's last-handled state: change handlers (on.create,
    on.update, on.field) diff against it and daemons/timers reset on its diff. Only event and index handlers may be
    registered. (kopf 1.x keeps its per-kind registries private: `_changing`, `_spawning`.)"""
    registry = kopf.get_default_registry()
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert len(registry._watching.get_all_handlers()) >= 1  # the table of kinds registered something

