"""One vocabulary of reasons: every reason a reconciler can write is defined once, in api/reasons.py."""

import re
from pathlib import Path

from modelplane.api import reasons
from modelplane.api.reasons import Reason, missing

PACKAGE = Path(reasons.__file__).resolve().parents[1]


def test_no_module_spells_a_reason_itself() -> None:
    """A reason as a string literal outside api/reasons.py would be a second definition (grep would find only one
    of them); docstrings and comments may name them."""
    spelled = re.compile(r'(?<![\w.])"(' + "|".join(r.value for r in Reason) + r')"(?=\s*[,)\]}:])')
    found = [f"{path.relative_to(PACKAGE)}:{number}" for path in PACKAGE.rglob("*.py") if path.name != "reasons.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if spelled.search(line) and "column(" not in line]
    assert found == []


def test_references_name_their_reasons_from_the_vocabulary() -> None:
    assert missing("baseModel", found=False) is Reason.BASE_MODEL_NOT_FOUND
    assert missing("dataset", found=True) is Reason.DATASET_NOT_READY
    assert reasons.FAILED <= reasons.TERMINAL and not reasons.REFUSALS & reasons.TERMINAL
