"""Bootstrap CIs over questions, and the ordinal measure (1 − W1) beside 1 − JSD in `align`, the
model x culture matrix and the report (the `fake:` backend: no weights)."""

from __future__ import annotations

import numpy as np
import pytest

from culturellm.evaluate.bootstrap import difference_ci, format_ci, mean_ci, summary_cis


def test_mean_ci_is_seeded_and_brackets_the_mean() -> None:
    rng = np.random.default_rng(1)
    vals = list(rng.random(60))
    qids = [f"Q{i // 3}" for i in range(60)]  # 20 questions, 3 wordings each
    a, b = mean_ci(vals, qids, seed=3), mean_ci(vals, qids, seed=3)
    assert a == b
    assert a["lo"] < a["mean"] < a["hi"] and a["mean"] == pytest.approx(float(np.mean(vals)))
    assert a["n"] == 60 and a["n_questions"] == 20 and a["level"] == 0.95


def test_resampling_unit_is_the_question() -> None:
    # every wording of a question agrees with the others: resampling questions gives the spread of 4
    # values, not of 400, so the CI is wide
    vals = [1.0] * 200 + [0.0] * 200
    qids = [f"Q{i // 100}" for i in range(400)]
    ci = mean_ci(vals, qids)
    assert ci["n_questions"] == 4 and ci["hi"] - ci["lo"] >= 0.5
    flat = mean_ci(vals, [str(i) for i in range(400)])  # items as independent: a narrow CI
    assert flat["hi"] - flat["lo"] < 0.15


def test_difference_ci_is_paired_and_one_question_has_no_spread() -> None:
    a = [0.9, 0.8, 0.7, 0.95, 0.6, 0.85]
    b = [x - 0.1 for x in a]  # always 0.1 below: the paired difference has no spread at all
    d = difference_ci(a, b, ["Q1", "Q1", "Q2", "Q3", "Q4", "Q5"])
    assert d["mean"] == pytest.approx(0.1) and d["lo"] == pytest.approx(0.1) and d["hi"] == pytest.approx(0.1)
    one = mean_ci([0.2, 0.4], ["Q1", "Q1"])
    assert one["lo"] == one["hi"] == pytest.approx(0.3)
    empty = mean_ci([], [])
    assert empty["n"] == 0 and np.isnan(empty["mean"])
    with pytest.raises(ValueError):
        difference_ci([1.0], [1.0, 2.0], ["Q1"])
    assert format_ci(d, signed=True) == "+0.100 [+0.100, +0.100]"


def test_summary_cis_count_booleans() -> None:
    rows = [{"question_id": "Q1", "agree": True}, {"question_id": "Q2", "agree": False}]
    assert summary_cis(rows, ["agree"])["agree"]["mean"] == 0.5


def test_align_rows_carry_both_measures_and_cis() -> None:
    from culturellm.evaluate import align
    from culturellm.evaluate.distributions import similarity

    res = align("fake:ordinal", "arabic")
    q = res["questions"][0]
    sim = similarity(q["model_distribution"], q["survey_distribution"])
    assert q["one_minus_jsd"] == pytest.approx(sim["one_minus_jsd"])
    assert q["one_minus_wasserstein"] == pytest.approx(sim["one_minus_wasserstein"])
    for m in ("majority_agreement", "one_minus_jsd", "one_minus_wasserstein"):
        ci = res["ci"][m]
        assert ci["lo"] <= res[m] <= ci["hi"] and ci["n_questions"] == res["n_questions"]
    mean_w1 = sum(r["one_minus_wasserstein"] for r in res["questions"]) / res["n_questions"]
    assert res["one_minus_wasserstein"] == pytest.approx(mean_w1)
    assert 0 < res["uniform_one_minus_wasserstein"] < 1
    assert res["uniform"]["one_minus_wasserstein"] == pytest.approx(res["uniform_one_minus_wasserstein"])
    assert res["contrast"]["one_minus_wasserstein"] is not None


def test_matrix_has_the_ordinal_measure_and_own_minus_best_other_cis(tmp_path) -> None:
    from culturellm.evaluate.matrix import align_matrix, matrix_markdown, plot_matrix

    m = align_matrix(["fake:a", "fake:b"], ["arabic", "german", "korean"], own={"fake:a": "arabic"})
    assert len(m["one_minus_wasserstein"]) == 2 and len(m["one_minus_wasserstein"][0]) == 3
    d = m["own_minus_best_other"]["fake:a"]
    for meas in ("majority_agreement", "one_minus_jsd", "one_minus_wasserstein"):
        ci = d["ci"][meas]
        assert ci["lo"] <= ci["mean"] <= ci["hi"]
        assert ci["mean"] == pytest.approx(d[meas], abs=1e-9) or ci["n"] < m["cells"][0]["n_questions"]
    text = matrix_markdown(m)
    assert "**1 − W1**" in text and "1 − W1 " in text and "[" in text
    assert plot_matrix(m, tmp_path / "m.png").stat().st_size > 1000


def test_report_table_shows_w1_and_cis() -> None:
    from culturellm.evaluate import align
    from culturellm.evaluate.report import _align_section

    res = align("fake:ordinal", "arabic")
    row = {k: v for k, v in res.items() if k != "questions"}
    text = "\n".join(_align_section([row]))
    assert "1−W1" in text and "uniform 1−W1" in text
    assert f"{res['one_minus_wasserstein']:.3f} [" in text
