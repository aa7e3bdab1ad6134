"""The detector's verdicts on synthetic traffic drawn from seeded generators: a shift is found in the feature that
shifted, traffic like the reference raises drift no more often than the significance allows, injected outliers are
counted, and a small window gets no verdict.

Rates over many seeds are held to a binomial bound: `tolerated(n, p)` is the 99% quantile of Binomial(n, p), the
most alarms out of n runs that a detector whose true rate is p exceeds only 1% of the time.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats

from modelplane.api.monitoring import MonitorSettings, OutlierSettings
from modelplane.monitor.detect import (
    RECORD_SHARE,
    Comparison,
    Flagger,
    Sample,
    adjust,
    categorical_test,
    compare,
    detect,
    fit_outliers,
    matrix,
    numeric_test,
    pooled_counts,
)
from modelplane.monitor.features import Row, parse_reference
from modelplane.monitor.report import DriftReport, Window
from tests.support.traffic import END, START, customers, llm_records, llm_rows, reference_jsonl, rfc3339

SPAN = Window(start=rfc3339(START), end=rfc3339(END))
CHURN = ["annual_contract", "monthly_fee", "support_calls", "tenure_years"]
# The drift verdict does not depend on the outlier method; robust z costs nothing to fit, a forest 0.1 s per run.
FAST = MonitorSettings(outliers=OutlierSettings(method="robustZ"))
LLM_FROM_DATASET = {"completion_chars", "oov_rate", "prompt_chars"}
LLM_FROM_TRAFFIC = {"completion_tokens", "finish_reason", "latency_ms", "prompt_tokens"}


def tolerated(n: int, rate: float = FAST.significance) -> int:
    return int(stats.binom.ppf(0.99, n, rate))


def tabular(seed: int, *, calls: float = 1.5, window: int = 300, settings: MonitorSettings = FAST) -> DriftReport:
    """Churn-like traffic (support calls Poisson with mean `calls`) against 240 reference customers (mean 1.5)."""
    rng = np.random.default_rng(seed)
    reference = customers(rng, 240)
    return detect(Sample(customers(rng, window, calls), window), Sample(reference, len(reference), "churn"), None,
                  settings, span=SPAN, model_version=3)


def llm_samples(seed: int, *, prompt_words: float = 25, length_share: float = 0.1,
                earlier: int | None = 200) -> tuple[Sample, Sample, Sample | None]:
    """(window, reference, baseline): 200 records of LLM traffic, 200 reference examples, and `earlier` records of
    the version's first day as the baseline of what only traffic has (None: no earlier traffic)."""
    rng = np.random.default_rng(seed)
    reference = parse_reference([("train.jsonl", reference_jsonl(rng, 200))])
    window = llm_rows(llm_records(rng, 200, prompt_words=prompt_words, length_share=length_share),
                      reference.vocabulary)
    baseline = None if earlier is None else Sample(
        llm_rows(llm_records(rng, earlier, start=START - timedelta(days=2), end=START - timedelta(days=1)),
                 reference.vocabulary), earlier, "version 3's earliest traffic")
    return Sample(window, 200), Sample(reference.rows, len(reference.rows), "Dataset prompts v1"), baseline


def llm(seed: int, *, prompt_words: float = 25, length_share: float = 0.1, earlier: int | None = 200,
        settings: MonitorSettings = FAST) -> DriftReport:
    window, reference, baseline = llm_samples(seed, prompt_words=prompt_words, length_share=length_share,
                                              earlier=earlier)
    return detect(window, reference, baseline, settings, span=SPAN, model_version=3)


def flagged(report: DriftReport) -> set[str]:
    return {feature.name for feature in report.features if feature.drift}


def tally(reports: list[DriftReport]) -> Counter[str]:
    return Counter(name for report in reports for name in flagged(report))


def test_a_shift_in_support_calls_is_found_and_only_there() -> None:
    reports = [tabular(seed, calls=2.5) for seed in range(100)]
    counts = tally(reports)
    assert counts["support_calls"] >= 95, counts
    assert sum(counts[name] for name in CHURN if name != "support_calls") <= tolerated(100), counts
    first = reports[0]
    assert first.enough and first.drift and "support_calls" in flagged(first)
    assert first.message.startswith(f"drift in {len(flagged(first))} of 4 features: ")
    assert [feature.name for feature in first.features] == CHURN
    assert {feature.name: feature.test for feature in first.features} == dict.fromkeys(CHURN, "ks")


def test_prompts_twice_as_long_are_found_in_prompt_features_only() -> None:
    reports = [llm(seed, prompt_words=55) for seed in range(20)]  # 5 + Poisson(55) words: twice the 30 on average
    counts = tally(reports)
    assert counts["prompt_chars"] == counts["prompt_tokens"] == 20, counts
    unshifted = {"completion_chars", "completion_tokens", "finish_reason", "latency_ms"}
    assert sum(counts[name] for name in unshifted) <= tolerated(20), counts
    assert {feature.name for feature in reports[0].features} == LLM_FROM_DATASET | LLM_FROM_TRAFFIC


def test_a_new_finish_reason_mix_is_found_against_earlier_traffic() -> None:
    reports = [llm(seed, length_share=0.3) for seed in range(20)]  # `length` in 30% of answers instead of 10%
    counts = tally(reports)
    assert counts["finish_reason"] >= 19, counts
    assert sum(count for name, count in counts.items() if name != "finish_reason") <= tolerated(20), counts
    result = next(feature for feature in reports[0].features if feature.name == "finish_reason")
    assert (result.kind, result.test) == ("categorical", "chi2")
    assert "finish_reason" in reports[0].reference and "version 3's earliest traffic" in reports[0].reference


def test_unshifted_tabular_traffic_alarms_within_the_significance() -> None:
    alarms = sum(tabular(seed).drift for seed in range(1000, 1200))
    assert alarms <= tolerated(200), alarms


def test_unshifted_llm_traffic_alarms_within_the_significance_and_psi_alone_would_not() -> None:
    """PSI over 0.2 on 200 records against 200 examples alarms on traffic like the reference far more often than
    the tests do, which is why psiThreshold is unset by default."""
    runs, alarms, with_psi = 100, 0, 0
    psi = FAST.model_copy(update={"psi_threshold": 0.2})
    for seed in range(2000, 2000 + runs):
        window, reference, baseline = llm_samples(seed)
        alarms += detect(window, reference, baseline, FAST, span=SPAN, model_version=3).drift
        with_psi += detect(window, reference, baseline, psi, span=SPAN, model_version=3).drift
    assert alarms <= tolerated(runs), alarms
    assert with_psi > tolerated(runs), with_psi


EXTREMES: list[Row] = [{"tenure_years": 40.0, "monthly_fee": 0.7, "support_calls": 1.0, "annual_contract": 0.0},
            {"tenure_years": 3.0, "monthly_fee": 5.0, "support_calls": 1.0, "annual_contract": 1.0},
            {"tenure_years": 3.0, "monthly_fee": 0.7, "support_calls": 20.0, "annual_contract": 0.0}] * 10


@pytest.mark.parametrize("method", ["isolationForest", "robustZ"])
def test_injected_extreme_records_are_outliers(method: str) -> None:
    settings = MonitorSettings(outliers=OutlierSettings.model_validate({"method": method}))
    rng = np.random.default_rng(7)
    reference, window = customers(rng, 240), customers(rng, 300) + EXTREMES
    report = detect(Sample(window, len(window)), Sample(reference, 240, "churn"), None, settings, span=SPAN,
                    model_version=3)
    flag = fit_outliers(matrix(reference, CHURN), settings.outliers)
    assert flag is not None
    flags = flag(matrix(window, CHURN))
    assert flags[300:].all()  # every injected record
    assert flags[:300].sum() <= tolerated(300, settings.outliers.max_rate * RECORD_SHARE)
    assert report.outliers is not None and report.outliers.method == method
    assert report.outliers.count == flags.sum()
    assert report.outliers.rate == pytest.approx(flags.sum() / 330) and report.outliers.rate >= 30 / 330
    assert report.outliers.flagged and report.outliers.threshold == 0.05
    assert f"outliers {report.outliers.rate:.1%} of 330 rows, over 0.05" in report.message


def window_rates(flag: Flagger, rng: np.random.Generator, windows: int) -> list[float]:
    """The outlier rates of unshifted 200-customer windows, scored at once (a forest scores per call, not row)."""
    flags = flag(matrix(customers(rng, 200 * windows), CHURN))
    return [float(flags[at:at + 200].mean()) for at in range(0, 200 * windows, 200)]


def unshifted_rates(settings: OutlierSettings, seeds: range, windows: int) -> list[float]:
    """Per seed, a detector fitted on a reference of 240 customers, then the rates of `windows` unshifted windows."""
    rates = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        flag = fit_outliers(matrix(customers(rng, 240), CHURN), settings)
        assert flag is not None
        rates += window_rates(flag, rng, windows)
    return rates


def test_unshifted_windows_stay_under_max_rate_with_an_isolation_forest() -> None:
    """Ten references of 240 customers, twenty windows each: the conformal threshold puts about a quarter of maxRate
    of unshifted records over it, so a window passes maxRate (5%) only by a rare cluster of chance."""
    settings = OutlierSettings()
    rates = unshifted_rates(settings, seeds=range(3000, 3010), windows=20)
    assert sum(rate > settings.max_rate for rate in rates) <= 2, sorted(rates)[-5:]
    assert np.mean(rates) <= settings.max_rate * RECORD_SHARE, np.mean(rates)


def test_unshifted_windows_stay_under_max_rate_with_robust_z() -> None:
    settings = OutlierSettings(method="robustZ")
    rates = unshifted_rates(settings, seeds=range(4000, 4100), windows=1)
    assert sum(rate > settings.max_rate for rate in rates) <= 1, sorted(rates)[-5:]


def test_a_reference_too_small_to_calibrate_scores_no_outliers() -> None:
    rng = np.random.default_rng(5)
    report = detect(Sample(customers(rng, 200), 200), Sample(customers(rng, 100), 100, "churn"), None,
                    MonitorSettings(), span=SPAN, model_version=3)
    assert report.outliers is None and report.features  # 50 held-out rows place no 1.25% threshold
    assert "no outlier scoring: 100 reference rows are too few to calibrate an outlier rate of 0.0125" in report.message


@pytest.mark.parametrize("records", [150, 199])
def test_too_few_samples_give_no_verdict(records: int) -> None:
    report = tabular(0, calls=4.0, window=records)  # a shift no test would miss, in too few records
    assert not report.enough and not report.drift and report.features == [] and report.outliers is None
    assert report.samples == records
    assert report.message == f"too few samples: {records} records in the window, minSamples is 200; no verdict"
    assert tabular(0, calls=4.0, window=200).drift  # at minSamples the verdict is given


def test_traffic_only_features_need_enough_earlier_traffic() -> None:
    without = llm(9, earlier=None)
    assert {feature.name for feature in without.features} == LLM_FROM_DATASET
    assert ("no reference for completion_tokens, finish_reason, latency_ms, prompt_tokens: not in the dataset, and "
            "no earlier traffic of this model version") in without.message
    short = llm(9, earlier=150)
    assert {feature.name for feature in short.features} == LLM_FROM_DATASET
    assert "only 150 records in version 3's earliest traffic (minSamples 200)" in short.message
    assert without.reference == short.reference == "Dataset prompts v1"


def test_features_restricts_the_comparison() -> None:
    settings = FAST.model_copy(update={"features": ["support_calls", "region"]})
    report = tabular(1, calls=2.5, settings=settings)
    assert [feature.name for feature in report.features] == ["support_calls"] and report.drift
    assert "not in the window's traffic: region" in report.message


def test_nothing_in_common_is_said() -> None:
    window: list[Row] = [{"a": 1.0}] * 200
    reference: list[Row] = [{"b": 1.0}] * 10
    report = detect(Sample(window, 200), Sample(reference, 10, "other data"), None, FAST,
                    span=SPAN, model_version=None)
    assert report.enough and not report.drift and report.features == []
    assert report.message == ("nothing to compare: the traffic has a, the reference b; no reference for a: not in the "
                              "dataset, and no earlier traffic of this model version")


def test_holm_and_bonferroni_adjust_as_defined() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04, then running maxima.
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjust([0.5, 0.9], "holm") == [1.0, 1.0]


def test_holm_flags_what_bonferroni_misses() -> None:
    grid = (np.arange(200) / 200).tolist()
    comparisons = [Comparison("a", [x + 0.16 for x in grid], grid),  # KS p = 0.0085
                   Comparison("b", [x + 0.14 for x in grid], grid)]  # KS p = 0.030: under 0.05, not under 0.05 / 2
    holm = compare(comparisons, MonitorSettings())
    bonferroni = compare(comparisons, MonitorSettings(correction="bonferroni"))
    assert [r.drift for r in holm] == [True, True] and [r.drift for r in bonferroni] == [True, False]
    assert holm[1].adjusted_p_value == holm[1].p_value and bonferroni[1].adjusted_p_value == 2 * holm[1].p_value


def test_rare_categories_are_pooled_until_every_expected_count_is_five() -> None:
    # 400 values, 200 a side: a column needs 10 in all. content_filter (4, new) is pooled; tool_calls (11) joins it.
    window = ["stop"] * 150 + ["length"] * 40 + ["tool_calls"] * 6 + ["content_filter"] * 4
    reference = ["stop"] * 160 + ["length"] * 35 + ["tool_calls"] * 5
    assert pooled_counts(window, reference).tolist() == [[150, 40, 10], [160, 35, 5]]
    # A pool of 6 under the bar takes length (24) too.
    window = ["stop"] * 180 + ["length"] * 15 + ["tool_calls"] * 3 + ["content_filter"] * 2
    reference = ["stop"] * 190 + ["length"] * 9 + ["tool_calls"] * 1
    table = pooled_counts(window, reference)
    assert table.tolist() == [[180, 20], [190, 10]]
    assert (stats.contingency.expected_freq(table) >= 5).all()


def test_one_category_has_nothing_to_test() -> None:
    assert categorical_test(["stop"] * 50, ["stop"] * 80) == (0.0, 1.0, 0.0)


def test_psi_of_known_shares() -> None:
    _, _, psi = categorical_test(["a"] * 50 + ["b"] * 50, ["a"] * 25 + ["b"] * 75)
    assert psi == pytest.approx(0.25 * np.log(2) + 0.25 * np.log(1.5))
    _, _, same = numeric_test(np.arange(100.0), np.arange(100.0))
    assert same == 0.0


def test_a_column_of_numbers_and_strings_is_categorical() -> None:
    [result] = compare([Comparison("plan", [1.0] * 100 + ["gold"] * 100, [1.0] * 200)], MonitorSettings())
    assert (result.kind, result.test, result.drift) == ("categorical", "chi2", True)
