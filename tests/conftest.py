"""Fixtures every layer may use. The emulator's (kmock, fake-gcs-server, the operator in-process) and the plans' live
in the tests/emulator/ and tests/plan/ conftests: the unit layer starts no server and plans nothing."""

from typing import Any

import pytest


@pytest.fixture
def dev_values() -> dict[str, Any]:
    """The dev stack file's values, as `pulumi up` reads them."""
    from infra.offline import read_stack_values  # Pulumi's SDK: imported only by the tests that ask for this

    return read_stack_values("dev")
