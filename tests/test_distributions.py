"""The two distribution measures: 1 − JSD ignores the order of options, 1 − Wasserstein does not."""

from __future__ import annotations

import pytest

from culturellm.evaluate.distributions import (
    one_minus_jsd,
    one_minus_wasserstein,
    ordinal_positions,
    similarity,
)

CODES = ["1", "2", "3", "4"]


def test_identical_distributions_score_one() -> None:
    p = [0.1, 0.2, 0.3, 0.4]
    assert one_minus_jsd(p, p) == pytest.approx(1.0)
    assert one_minus_wasserstein(p, p, CODES) == pytest.approx(1.0)


def test_wasserstein_sees_order_jsd_does_not() -> None:
    survey = [0.0, 1.0, 0.0, 0.0]  # everyone answers "agree"
    near = [1.0, 0.0, 0.0, 0.0]  # "strongly agree": one step away
    far = [0.0, 0.0, 0.0, 1.0]  # "strongly disagree": two steps away
    assert one_minus_jsd(near, survey) == pytest.approx(one_minus_jsd(far, survey))
    assert one_minus_wasserstein(near, survey, CODES) == pytest.approx(1 - 1 / 3)
    assert one_minus_wasserstein(far, survey, CODES) == pytest.approx(1 - 2 / 3)


def test_opposite_ends_score_zero_and_scale_span_normalises() -> None:
    ten = [str(i) for i in range(1, 11)]
    low = [1.0] + [0.0] * 9
    high = [0.0] * 9 + [1.0]
    assert one_minus_wasserstein(low, high, ten) == pytest.approx(0.0)
    assert one_minus_wasserstein(low[:4], high[-4:], CODES) == pytest.approx(0.0)


def test_codes_are_placed_in_numeric_order_not_given_order() -> None:
    # the WVS agree / hard to say / disagree items list codes 2, 1, 0
    codes = ["2", "1", "0"]
    assert list(ordinal_positions(codes)) == [1.0, 0.5, 0.0]
    agree, hard, disagree = [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]
    assert one_minus_wasserstein(agree, hard, codes) == pytest.approx(0.5)
    assert one_minus_wasserstein(agree, disagree, codes) == pytest.approx(0.0)
    assert list(ordinal_positions(["10", "9", "1"])) == [1.0, 0.5, 0.0]


def test_similarity_reads_dicts_and_treats_missing_codes_as_zero() -> None:
    survey = {"1": 0.5, "2": 0.5, "3": 0.0, "4": 0.0}
    out = similarity({"1": 1.0}, survey)
    assert out["one_minus_wasserstein"] == pytest.approx(1 - 0.5 / 3)
    assert 0.0 < out["one_minus_jsd"] < 1.0


@pytest.mark.parametrize("bad", [[float("nan"), 1.0], [-0.1, 1.1], [0.0, 0.0]])
def test_bad_distributions_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        one_minus_wasserstein(bad, [0.5, 0.5], ["1", "2"])
