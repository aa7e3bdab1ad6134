"""Drift and outlier detection: a window's feature rows against a reference's, into a DriftReport. Pure.

Drift, per feature, is a two-sample test: Kolmogorov-Smirnov for numbers, chi-square on the category counts for
categories. Its p-values are corrected across features (Holm by default), so that a run on traffic like the
reference reports drift with probability at most the significance however many features there are. Holm, not
`scipy.stats.false_discovery_control` (Benjamini-Hochberg): that controls the false discovery rate, the expected share
of flagged features that did not drift, which on traffic with no drift at all equals the family-wise rate but lets
unshifted features be flagged beside a shifted one; each FeatureResult.drift claims that this feature drifted, which
is what the family-wise rate bounds. Holm holds it under any dependence between features (prompt_chars and
prompt_tokens move together) and rejects at least what Bonferroni does.

PSI (population stability index, over the reference's deciles) is reported beside each test because people read it,
and decides only when psiThreshold is set: it is not a test, and on unshifted data it grows as samples shrink.

Outliers are scored record by record (rows, for tabular traffic) on the numeric features that have a dataset
reference, by an isolation forest calibrated on held-out reference rows or by robust z-scores.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from sklearn.ensemble import IsolationForest

from modelplane.api.monitoring import MonitorSettings, OutlierSettings
from modelplane.monitor.features import Row, Value
from modelplane.monitor.report import DriftReport, FeatureResult, Outliers, Window

MIN_EXPECTED = 5.0  # chi-square's approximation needs every expected count at least this (Cochran's rule)
PSI_BINS = 10  # deciles of the reference
PSI_EPSILON = 1e-4  # stands in for an empty bin's share, so a bin only one side fills adds a large but finite term
# An isolation forest calls a record an outlier when it is more unusual than all but this share of maxRate of the
# held-out reference: on unshifted traffic a quarter of maxRate are outliers, so a window passes maxRate by chance
# only rarely (a binomial count four times its mean), while a cluster of unusual records passes it quickly.
RECORD_SHARE = 0.25
Z_LIMIT = 3.5  # Iglewicz and Hoaglin's cutoff for the modified z-score
MAX_NAMES = 8  # features named in the one-line message; the report lists them all

Flagger = Callable[[NDArray[np.float64]], NDArray[np.bool_]]


@dataclass(frozen=True)
class Sample:
    """Feature rows, how many records they came from, and what they are (for report.reference and messages)."""

    rows: list[Row]
    records: int
    description: str = ""


@dataclass(frozen=True)
class Comparison:
    name: str
    window: list[Value]
    reference: list[Value]


def _values(rows: Sequence[Row], name: str) -> list[Value]:
    return [row[name] for row in rows if name in row]


def _names(rows: Sequence[Row]) -> set[str]:
    return {name for row in rows for name in row}


def _category(value: Value) -> str:
    """A value as a category; a number reads the same from a CSV cell ("1") and from JSON (1.0)."""
    return value if isinstance(value, str) else format(value, ".12g")


def _psi(window: NDArray[np.float64], reference: NDArray[np.float64]) -> float:
    """PSI of two share vectors over the same bins: sum of (w - r) * ln(w / r), empty bins at PSI_EPSILON."""
    w, r = np.maximum(window, PSI_EPSILON), np.maximum(reference, PSI_EPSILON)
    return float(np.sum((w - r) * np.log(w / r)))


def numeric_test(window: NDArray[np.float64], reference: NDArray[np.float64]) -> tuple[float, float, float]:
    """(KS statistic, p-value, PSI). With ties (counts, flags) the KS p-value is conservative: it alarms less."""
    with warnings.catch_warnings():
        # For large samples with many ties (a 0/1 flag) the exact p-value's series may not converge; scipy then
        # takes the asymptotic one, as we would, and warns into the Job's log for nothing.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        result = stats.ks_2samp(window, reference)
    edges = np.unique(np.quantile(reference, np.arange(1, PSI_BINS) / PSI_BINS))
    bins = len(edges) + 1
    shares = [np.bincount(np.searchsorted(edges, sample, side="left"), minlength=bins) / len(sample)
              for sample in (window, reference)]
    return float(result.statistic), float(result.pvalue), _psi(shares[0], shares[1])


def pooled_counts(window: Sequence[str], reference: Sequence[str]) -> NDArray[np.float64]:
    """The 2 x k table of category counts (window, reference), rare categories pooled into one column so that
    every expected count is at least MIN_EXPECTED. A category is kept when its total reaches the bar that the
    smaller sample sets; the rest are pooled, and a pool still under the bar takes the smallest kept category
    until it is over it. A category only one side has (a new finish_reason) still counts, in the pool if rare."""
    counts = [Counter(window), Counter(reference)]
    totals = counts[0] + counts[1]
    bar = MIN_EXPECTED * (len(window) + len(reference)) / min(len(window), len(reference))
    ordered = sorted(totals, key=lambda category: (-totals[category], category))
    kept = [category for category in ordered if totals[category] >= bar]
    pooled = [category for category in ordered if totals[category] < bar]
    while pooled and kept and sum(totals[category] for category in pooled) < bar:
        pooled.append(kept.pop())
    columns = [[category] for category in kept] + ([pooled] if pooled else [])
    return np.array([[sum(side[category] for category in column) for column in columns] for side in counts],
                    dtype=np.float64)


def categorical_test(window: Sequence[str], reference: Sequence[str]) -> tuple[float, float, float]:
    """(chi-square statistic, p-value, PSI) over the pooled categories; one column left means nothing to test. With
    two columns scipy applies Yates' continuity correction, which errs toward no alarm."""
    table = pooled_counts(window, reference)
    if table.shape[1] < 2:
        return 0.0, 1.0, 0.0
    result = stats.chi2_contingency(table)
    shares = table / table.sum(axis=1, keepdims=True)
    return float(result.statistic), float(result.pvalue), _psi(shares[0], shares[1])


def adjust(p_values: Sequence[float], correction: Literal["holm", "bonferroni"]) -> list[float]:
    """p-values adjusted for testing them all: Bonferroni multiplies each by their number m; Holm multiplies the
    i-th smallest by m - i + 1 and keeps the adjusted values in the p-values' order (step-down)."""
    m = len(p_values)
    if correction == "bonferroni":
        return [min(1.0, m * p) for p in p_values]
    adjusted = [1.0] * m
    running = 0.0
    for rank, at in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[at]))
        adjusted[at] = running
    return adjusted


def compare(comparisons: Sequence[Comparison], settings: MonitorSettings) -> list[FeatureResult]:
    """Each feature's test and PSI, corrected across all of them. A feature is numeric when every value on both
    sides is a number, else categorical (a column that turned from numbers to strings is a change in itself)."""
    tested = []
    for comparison in comparisons:
        if all(isinstance(v, float) for v in (*comparison.window, *comparison.reference)):
            kind: Literal["numeric", "categorical"] = "numeric"
            statistic, p, psi = numeric_test(np.array(comparison.window, dtype=np.float64),
                                             np.array(comparison.reference, dtype=np.float64))
        else:
            kind = "categorical"
            statistic, p, psi = categorical_test([_category(v) for v in comparison.window],
                                                 [_category(v) for v in comparison.reference])
        tested.append((comparison.name, kind, statistic, p, psi))
    adjusted = adjust([p for *_, p, _ in tested], settings.correction)
    threshold = settings.psi_threshold
    return [FeatureResult(name=name, kind=kind, test="ks" if kind == "numeric" else "chi2", statistic=statistic,
                          p_value=p, adjusted_p_value=q, psi=psi,
                          drift=q < settings.significance or (threshold is not None and psi > threshold))
            for (name, kind, statistic, p, psi), q in zip(tested, adjusted, strict=True)]


def isolation_forest(reference: NDArray[np.float64], rate: float) -> Flagger | None:
    """An isolation forest fitted on the even reference rows, and a threshold on its score from the odd ones.

    The score is the forest's anomaly score plus how far the record lies outside the fitted rows' range, in units of
    their spread (the interquartile range; the range itself where that is 0; raw units for a constant feature), on
    its farthest feature. A forest splits only between the values it was fitted on, so a record far beyond them
    lands in the leaf of the most extreme fitted row and scores like it: alone, it cannot tell a support_calls of 20
    from one of 8. Inside the range the distance is 0 and the forest alone speaks.

    The threshold is split conformal: a record is an outlier when its score is above the ceil((n + 1)(1 - rate))-th
    smallest of the n held-out rows' scores, so that a record exchangeable with the reference passes it with
    probability at most `rate`, whatever the data's shape (scored on the rows it was fitted on, the forest would find
    them more normal than new ones, and flag too many). None when the held-out rows are too few to place that
    threshold (n < 1/rate - 1): nothing could be called an outlier.
    """
    fit, held_out = reference[0::2], reference[1::2]
    rank = math.ceil((len(held_out) + 1) * (1 - rate))
    if rank > len(held_out):
        return None
    forest = IsolationForest(random_state=0).fit(fit)
    low, high = fit.min(axis=0), fit.max(axis=0)
    q1, q3 = np.quantile(fit, [0.25, 0.75], axis=0)
    spread = np.where(q3 > q1, q3 - q1, np.where(high > low, high - low, 1.0))

    def score(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        outside = np.maximum(np.maximum(low - rows, rows - high), 0.0) / spread
        return np.asarray(-forest.score_samples(rows) + outside.max(axis=1), dtype=np.float64)

    threshold = float(np.sort(score(held_out))[rank - 1])

    def flag(window: NDArray[np.float64]) -> NDArray[np.bool_]:
        return score(window) > threshold
    return flag


def robust_z(reference: NDArray[np.float64]) -> Flagger:
    """A record is an outlier when any feature's modified z-score, 0.6745 (x - median) / MAD with the reference's
    median and median absolute deviation, is beyond Z_LIMIT. Where the MAD is 0 (most values equal: a 0/1 flag)
    the mean absolute deviation stands in (z = (x - median) / (1.2533 MeanAD), Iglewicz and Hoaglin); where that is
    0 too the feature was constant, and any other value is an outlier."""
    median = np.median(reference, axis=0)
    deviation = np.abs(reference - median)
    mad, mean_ad = np.median(deviation, axis=0), np.mean(deviation, axis=0)
    scale = np.where(mad > 0, mad / 0.6745, 1.2533 * mean_ad)

    def flag(window: NDArray[np.float64]) -> NDArray[np.bool_]:
        return np.asarray(np.any(np.abs(window - median) > Z_LIMIT * scale, axis=1), dtype=np.bool_)
    return flag


def fit_outliers(reference: NDArray[np.float64], settings: OutlierSettings) -> Flagger | None:
    if settings.method == "robustZ":
        return robust_z(reference)
    return isolation_forest(reference, settings.max_rate * RECORD_SHARE)


def matrix(rows: Sequence[Row], features: Sequence[str]) -> NDArray[np.float64]:
    """The rows that have every one of the (numeric) features, as a matrix; the others cannot be scored."""
    complete = [[float(row[name]) for name in features] for row in rows if all(name in row for name in features)]
    return np.array(complete, dtype=np.float64).reshape(len(complete), len(features))


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_NAMES])
    return shown + (f" and {len(items) - MAX_NAMES} more" if len(items) > MAX_NAMES else "")


def _outliers(window: Sequence[Row], reference: Sequence[Row], features: Sequence[str],
              settings: OutlierSettings) -> tuple[Outliers | None, str]:
    """The outlier verdict and its part of the message."""
    if not features:
        return None, "no outlier scoring: no numeric feature has a dataset reference"
    flag = fit_outliers(matrix(reference, features), settings)
    if flag is None:
        return None, (f"no outlier scoring: {len(matrix(reference, features))} reference rows are too few to "
                      f"calibrate an outlier rate of {settings.max_rate * RECORD_SHARE:g}")
    scored = matrix(window, features)
    if not len(scored):
        return None, "no outlier scoring: no window row has every numeric feature"
    count = int(np.count_nonzero(flag(scored)))
    rate = count / len(scored)
    outliers = Outliers(method=settings.method, count=count, rate=rate, threshold=settings.max_rate,
                        flagged=rate > settings.max_rate)
    return outliers, (f"outliers {rate:.1%} of {len(scored)} rows" + (f", over {settings.max_rate:g}"
                                                                        if outliers.flagged else ""))


def detect(window: Sample, reference: Sample, baseline: Sample | None, settings: MonitorSettings, *,
           span: Window, model_version: int | None, notes: Sequence[str] = ()) -> DriftReport:
    """The report of one run. Features in both the window and the reference dataset are compared with it; features
    only the traffic has (latency_ms, finish_reason, token counts) are compared with the baseline, earlier traffic
    of the same model version, when it has at least minSamples records. `notes` (corrupt batches skipped, ...)
    end the message."""
    def report(*, enough: bool, features: list[FeatureResult], outliers: Outliers | None, message: str,
               described: str) -> DriftReport:
        return DriftReport(window=span, model_version=model_version, samples=window.records,
                           reference_samples=reference.records, reference=described, enough=enough,
                           drift=any(feature.drift for feature in features), correction=settings.correction,
                           significance=settings.significance, features=features, outliers=outliers,
                           message="; ".join([message, *notes]))

    if window.records < settings.min_samples:
        return report(enough=False, features=[], outliers=None, described=reference.description,
                      message=f"too few samples: {window.records} records in the window, minSamples is "
                              f"{settings.min_samples}; no verdict")
    seen, known = _names(window.rows), _names(reference.rows)
    wanted = set(settings.features) or seen
    parts = []
    if missing := sorted(set(settings.features) - seen):
        parts.append(f"not in the window's traffic: {_listed(missing)}")
    dataset = sorted(seen & known & wanted)
    traffic_only = sorted((seen - known) & wanted)
    comparisons = [Comparison(name, _values(window.rows, name), _values(reference.rows, name)) for name in dataset]
    described = reference.description
    if traffic_only and baseline is not None and baseline.records >= settings.min_samples:
        earlier = _names(baseline.rows)
        if both := [name for name in traffic_only if name in earlier]:
            comparisons += [Comparison(name, _values(window.rows, name), _values(baseline.rows, name))
                            for name in both]
            described += f"; {_listed(both)}: {baseline.description}"
        if absent := [name for name in traffic_only if name not in earlier]:
            parts.append(f"not in the earlier traffic: {_listed(absent)}")
    elif traffic_only:
        why = (f"only {baseline.records} records in {baseline.description} (minSamples {settings.min_samples})"
               if baseline is not None else "no earlier traffic of this model version")
        parts.append(f"no reference for {_listed(traffic_only)}: not in the dataset, and {why}")
    if not comparisons:
        return report(enough=True, features=[], outliers=None, described=described,
                      message="; ".join([f"nothing to compare: the traffic has {_listed(sorted(seen))}, the "
                                         f"reference {_listed(sorted(known))}", *parts]))
    features = sorted(compare(comparisons, settings), key=lambda feature: feature.name)
    drifted = [feature.name for feature in features if feature.drift]
    verdict = (f"drift in {len(drifted)} of {len(features)} features: {_listed(drifted)}" if drifted
               else f"no drift in {len(features)} features")
    numeric = [feature.name for feature in features if feature.kind == "numeric" and feature.name in dataset]
    outliers, said = _outliers(window.rows, reference.rows, numeric, settings.outliers)
    return report(enough=True, features=features, outliers=outliers, described=described,
                  message="; ".join([verdict, said, *parts]))
