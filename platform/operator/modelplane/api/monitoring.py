"""How a ModelServer's traffic is judged (`spec.monitoring.detection`), which the operator hands to each monitor Job
as its `/content/params.json`: one model for the CRD and the monitor's program.

An `ApiModel` (camelCase on the wire, unknown keys ignored, frozen) so that the CRD generator can embed it as it is:
the API server prunes unknown fields of the spec before the operator copies it into params.json, so the monitor
ignores them too rather than failing a run on a key a newer operator added.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from modelplane.api.common import ApiModel


class OutlierSettings(ApiModel):
    """Records unlike the reference, scored one by one on the numeric features that have a dataset reference."""

    method: Literal["isolationForest", "robustZ"] = Field(
        default="isolationForest",
        description="`isolationForest`: a forest fitted on half the reference (plus the distance beyond its range, "
                    "which a forest cannot see), its threshold set on the other half so that at most a quarter of "
                    "maxRate of records like the reference are outliers; it needs 8/maxRate reference rows (160). "
                    "`robustZ`: an outlier has a feature whose modified z-score (the reference's median and MAD) is "
                    "beyond 3.5; uncalibrated, so its rate on unshifted traffic depends on the data's shape.")
    max_rate: float = Field(default=0.05, gt=0, lt=1,
                            description="The window is flagged when more of its records than this are outliers.")


class MonitorSettings(ApiModel):
    """How a window of traffic is compared with the reference: a two-sample test per feature (Kolmogorov-Smirnov
    for numbers, chi-square for categories), corrected for testing many features at once, and PSI."""

    min_samples: int = Field(default=200, ge=10, le=10**7,
                             description="Fewer records in the window: no verdict (drift is false).")
    significance: float = Field(
        default=0.05, gt=0, lt=0.5,
        description="The chance of a false alarm per run, over all features together (family-wise error rate).")
    correction: Literal["holm", "bonferroni"] = Field(
        default="holm", description="Multiple-testing correction across features; both hold the family-wise error "
                                    "rate, Holm rejects more when several features drift.")
    psi_threshold: float | None = Field(
        default=None, gt=0,
        description="Also flag a feature whose population stability index passes this (0.2 is customary). PSI is "
                    "not a test: on unshifted traffic it grows as samples shrink (about 9 x (1/window + "
                    "1/reference) over ten bins), so a threshold raises false alarms past the significance: at 0.2, "
                    "29% of runs of 200 LLM records against 200 examples alarm, where the tests alone keep 5%. "
                    "Unset: PSI is reported and only the tests decide.")
    features: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list, max_length=64, json_schema_extra={"default": []},
        description="Compare only these features (empty: every feature).")
    outliers: OutlierSettings = Field(default_factory=OutlierSettings, json_schema_extra={"default": {}},
                                      description="Records unlike the reference, scored one by one.")
