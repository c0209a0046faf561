"""What a comparison's seeds can detect (aevae.compare.power), held to values derived without
it: Welch's test itself, the normal limit, and the textbook sample sizes of the t-test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aevae.compare.power import (
    MAX_SEEDS, detectable_difference, pooled_sd, power, seeds_needed, sensitivity, welch_df,
)

A = (0.010, 0.011, 0.012, 0.0105, 0.0112)
B = (0.0140, 0.0100, 0.0125, 0.0131)


def test_welch_df_is_the_pooled_tests_2n_minus_2_for_equal_spreads_and_sizes_and_scipys_otherwise():
    assert welch_df(4.0, 5, 4.0, 5) == pytest.approx(8)
    assert welch_df(0.3, 30, 0.3, 30) == pytest.approx(58)
    scipys = stats.ttest_ind(B, A, equal_var=False).df
    assert welch_df(np.var(A, ddof=1), len(A), np.var(B, ddof=1), len(B)) == pytest.approx(scipys)


def test_a_difference_the_size_of_the_detectable_one_is_called_exactly_at_alpha():
    for alpha in (0.05, 0.01):
        shift = detectable_difference(A, B, alpha)
        moved = np.asarray(B) - np.mean(B) + np.mean(A) + shift  # B's spread, A's mean plus the shift
        assert stats.ttest_ind(moved, A, equal_var=False).pvalue == pytest.approx(alpha, rel=1e-6)


def test_with_many_seeds_the_detectable_difference_is_z_times_the_standard_error():
    n = 20_000
    a = np.tile([-1.0, 1.0], n // 2)
    b = np.tile([-2.0, 2.0], n // 2)
    se = np.sqrt(np.var(a, ddof=1) / n + np.var(b, ddof=1) / n)
    assert detectable_difference(a, b, 0.05) / se == pytest.approx(stats.norm.ppf(0.975), rel=1e-4)


@pytest.mark.parametrize("n", [10, 30, 100])
def test_the_power_at_the_detectable_change_is_about_half(n):
    a = np.tile([-1.0, 1.0], n // 2)
    d = detectable_difference(a, a, 0.05) / pooled_sd(a, a)
    # the noncentral t is a little skewed, so a little over 0.5, less so with more seeds
    assert 0.5 < power(n, d, 0.05) < 0.5 + 0.15 / n ** 0.5


def test_the_seeds_needed_are_the_textbook_sample_sizes():
    # two-sided two-sample t-test at 0.05 with 80% power (Cohen 1988, Table 2.4.1; R's
    # pwr.t.test gives n = 16.71 for d = 1, 63.77 for d = 0.5, 393.4 for d = 0.2)
    assert [seeds_needed(d, 0.05) for d in (1.0, 0.5, 0.2)] == [17, 64, 394]
    n = seeds_needed(0.3, 0.01)
    assert power(n, 0.3, 0.01) >= 0.8 > power(n - 1, 0.3, 0.01)
    assert seeds_needed(0.05, 0.05) is None  # would take about 6,300: over the cap
    assert seeds_needed(10.0, 0.05) == 2


def test_sensitivity_in_shares_of_as_mean_and_seeds_that_agree():
    found = sensitivity(A, B, 0.05, effect=0.05)
    assert found.detectable == pytest.approx(detectable_difference(A, B, 0.05) / np.mean(A))
    assert found.seeds == seeds_needed(0.05 * np.mean(A) / pooled_sd(A, B), 0.05)
    assert sensitivity((0.9, 0.9), (0.8, 0.8), 0.05).agree  # deterministic: no spread to judge by
    assert sensitivity((0.0, 0.0, 0.0), (1.0, 2.0), 0.05).detectable is None  # no share of 0
    assert sensitivity(A, B, 0.05, effect=1e-6).seeds is None and MAX_SEEDS == 1000
