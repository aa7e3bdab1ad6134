"""Binary Authorization's allowlist match, for checking which images a planned policy admits.

Ported from the documented semantics of `AdmissionWhitelistPattern.name_pattern` (Binary Authorization API v1 and
v1beta1 reference): a pattern is `registry/path/to/image`; a trailing `*` matches any text that contains no `/`
(`gcr.io/nginx*` matches `gcr.io/nginx@latest`, not `gcr.io/nginx/image`); a trailing `**` matches any text,
sub-paths included; otherwise the pattern must equal the image. Not ported: Google's own exemptions for GKE
system images (globalPolicyEvaluationMode), which the tests do not rely on.
"""

from __future__ import annotations

from collections.abc import Iterable


def pattern_matches(pattern: str, image: str) -> bool:
    if pattern.endswith("**"):
        return image.startswith(pattern[:-2])
    if pattern.endswith("*"):
        return image.startswith(pattern[:-1]) and "/" not in image[len(pattern) - 1:]
    return image == pattern


def admitted(patterns: Iterable[str], image: str) -> bool:
    return any(pattern_matches(pattern, image) for pattern in patterns)
