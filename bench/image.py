"""The operator image's packages, so that a benchmark measures the operator as it runs there.

The Dockerfile's operator stage installs modelplane's base requirements and what they require, nothing else (no
extras: no Pulumi, no CLI packages, no test tools). This checkout's virtualenv holds far more, and some of it changes
what the operator's process loads: google-cloud-core imports `grpc` whenever it is installed. A benchmark's operator
process makes every installed top-level module outside the image's closure unimportable, as an absent one is.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

from packaging.requirements import Requirement


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def closure(root: str = "modelplane") -> set[str]:
    """The distributions `pip install root` installs (no extras), as normalized names."""
    found: set[str] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        if normalized(name) in found:
            continue
        found.add(normalized(name))
        try:
            requirements = requires(name) or []
        except PackageNotFoundError:
            continue  # required but not installed here: it cannot be imported anyway
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def absent_from_image() -> list[str]:
    """The top-level modules installed here that the operator's image does not have."""
    image = closure()
    return sorted(module for module, distributions in packages_distributions().items()
                  if not any(normalized(d) in image for d in distributions))


def as_in_image(code: str) -> str:
    """Python code that runs `code` with the modules absent from the image unimportable (a module that is None in
    sys.modules fails to import, as a missing one does)."""
    return f"import sys; sys.modules.update(dict.fromkeys({absent_from_image()!r})); {code}"
