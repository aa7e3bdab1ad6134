"""The modelplane.dev/v1alpha1 API: one set of Python types from which the CRDs are generated and with which the
operator parses every object, so the schema and the code cannot disagree."""

from modelplane.api.common import GROUP, VERSION
from modelplane.api.kinds import KINDS, kind_for
from modelplane.api.resource import Kind

__all__ = ["GROUP", "KINDS", "VERSION", "Kind", "kind_for"]
