"""`modelplane plan` and `modelplane render` print the same bytes for the same stack, in every process.

GitOps diffs and plan reviews only mean something if an unchanged stack renders unchanged: no key order that
follows protobuf map or hash order, no `replicas: 1.0` because numbers crossed Pulumi's wire format as floats.
Order can depend on hash seeds and on the runtime's threads, so each run is its own process.
"""
import re

from infra.offline import from_wire

# A YAML scalar that is a whole number written as a float: `maxLength: 4096.0`, `- 1.0` (a string would be quoted).
WHOLE_FLOAT = re.compile(r"(?:^|:|-)\s+-?\d+\.0\s*$", re.MULTILINE)


def test_whole_float_pattern_finds_what_the_wire_format_made() -> None:
    """The text check above would pass vacuously if its pattern never matched."""
    assert WHOLE_FLOAT.findall("replicas: 1.0\nitems:\n- 4096.0\ndescription: version 1.0 of x\nratio: 0.5\n") == [
        ": 1.0", "- 4096.0"]


def test_only_whole_floats_become_integers() -> None:
    """Compared as repr, where `1` and `1.0` differ: fractions, bools and numeric strings stay as they are."""
    sent = {"replicas": 1.0, "schema": {"maxLength": 4096.0, "default": 0.5, "enum": [2.0, -3.0, 1.25]},
            "flags": [True, False], "version": "1.0"}
    assert repr(from_wire(sent)) == repr({"replicas": 1, "schema": {"maxLength": 4096, "default": 0.5,
                                                                    "enum": [2, -3, 1.25]},
                                          "flags": [True, False], "version": "1.0"})
