"""What a monitor run writes (`report.json` in its output prefix) and the operator reads into ModelServer status.

The monitor Job writes it once, whole; the operator validates it with these models, so a report it cannot read is
a run that failed, never a status with missing keys.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

REPORT = "report.json"


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class FeatureResult(_Wire):
    """One feature's comparison of the window with the reference."""

    name: str
    kind: Literal["numeric", "categorical"]
    test: Literal["ks", "chi2"]  # Kolmogorov-Smirnov (two-sample), or chi-square on the category counts
    statistic: float
    p_value: float
    adjusted_p_value: float  # after the multiple-testing correction across all features
    psi: float  # population stability index, reference -> window (reference deciles; categories as tested)
    drift: bool  # adjusted p-value under the significance, or PSI over its threshold when psiThreshold is set


class Outliers(_Wire):
    method: Literal["isolationForest", "robustZ"]
    count: int
    rate: float  # of the window's scored rows: one a record (an instance, for tabular traffic) with every feature
    threshold: float  # the rate above which the window is flagged
    flagged: bool


class Window(_Wire):
    start: str  # RFC 3339 UTC
    end: str


class DriftReport(_Wire):
    """Drift is decided over all features at once: the family-wise error rate is held at the significance."""

    window: Window
    model_version: int | None
    samples: int  # records in the window (after sampling at capture)
    reference_samples: int
    # What the window was compared with, e.g. "Dataset churn v2", and for features only traffic has (latency_ms,
    # finish_reason) the span of the version's earliest traffic they were compared with.
    reference: str
    enough: bool  # samples >= minSamples: with fewer, no test is run and drift is False
    drift: bool
    correction: Literal["holm", "bonferroni"]
    significance: float
    features: list[FeatureResult] = Field(default_factory=list)
    outliers: Outliers | None = None
    message: str  # one line for the status, e.g. "drift in 2 of 6 features: support_calls, tenure_years"
