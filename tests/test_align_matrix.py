"""Alignment baselines and the model x culture matrix, with a tiny random Llama (the bundled tokenizer)
and a LoRA adapter trained on it for Arabic: `culturellm align` with several --model and --culture
prints the matrix as JSON and draws the heatmap; reference rows reach the report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from culturellm.cli import app


@pytest.fixture(scope="module")
def trained(trained_arabic):
    """(split manifest, Arabic adapter dir): tests/conftest.py `trained_arabic`."""
    from culturellm.runlayout import split_manifest_path

    data, adapter = trained_arabic
    return split_manifest_path(data), adapter


def test_baselines_on_an_alignment_result(tiny_base, trained):
    from culturellm.evaluate import align
    from culturellm.evaluate.baselines import other_survey, uniform

    split, _ = trained
    res = align(tiny_base, "arabic", split=split)
    kinds = res["by_kind"]
    assert set(kinds) == {"heldout_variant", "heldout_question"}
    assert sum(k["n_questions"] for k in kinds.values()) == res["n_questions"]
    assert res["uniform"]["majority_agreement"] == pytest.approx(res["chance_agreement"])
    assert res["uniform"]["one_minus_jsd"] == pytest.approx(res["uniform_one_minus_jsd"])
    assert res["contrast"]["culture"] == "german" and 0 < res["contrast"]["one_minus_jsd"] < 1
    same = other_survey(res, "arabic")  # a culture's own survey is a perfect answer
    assert same["majority_agreement"] == 1.0 and same["one_minus_jsd"] == pytest.approx(1.0)
    assert uniform(res, ["heldout_question"])["n_questions"] == kinds["heldout_question"]["n_questions"]


def test_align_matrix_cli_json_and_heatmap(tiny_base, trained, tmp_path):
    split, adapter = trained
    args = ["align", "--model", tiny_base, "--model", str(adapter), "--culture", "arabic",
            "--culture", "german", "--split", str(split), "--json", "--out", str(tmp_path)]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["models"] == [tiny_base, str(adapter)] and m["cultures"] == ["arabic", "german"]
    for key in ("majority_agreement", "one_minus_jsd"):
        assert len(m[key]) == 2 and all(len(row) == 2 and all(0 <= v <= 1 for v in row) for row in m[key])
    assert m["own"] == {str(adapter): "arabic"}  # from the adapter's culturellm.json
    d = m["own_minus_best_other"][str(adapter)]
    assert d["majority_agreement"] == pytest.approx(
        m["majority_agreement"][1][0] - m["majority_agreement"][1][1]
    )
    assert (tmp_path / "align_matrix.png").stat().st_size > 1000
    assert json.loads((tmp_path / "align_matrix.json").read_text())["cultures"] == ["arabic", "german"]


def test_report_shows_reference_rows(tiny_base, trained, tmp_path):
    from culturellm.evaluate import align
    from culturellm.evaluate.report import _with_reference_rows

    split, _ = trained
    res = align(tiny_base, "arabic", split=split)
    row = {k: v for k, v in res.items() if k != "questions"}
    out = _with_reference_rows([row])
    assert [r["model"] for r in out] == [tiny_base, "reference: uniform answer", "reference: german survey"]


def test_run_with_several_cultures_puts_the_matrix_in_its_report(tiny_base, trained, tmp_path):
    import shutil

    from culturellm.config import RunConfig
    from culturellm.cultures import get_culture
    from culturellm.evaluate.matrix import plot_matrix, report_section
    from culturellm.runlayout import RunLayout
    from culturellm.stages import Run, align_matrix

    split, adapter = trained
    cfg = RunConfig(cultures=["arabic", "german"], models={"base": tiny_base})
    cultures = [get_culture("arabic"), get_culture("german")]
    p = Run(cfg, RunLayout(tmp_path), cultures, ["arabic", "german"], progress=False)
    for name in ("arabic", "german", "one"):
        shutil.copytree(adapter, p.layout.model_dir(name))
    p.layout.split("arabic").parent.mkdir(parents=True)
    shutil.copy(split, p.layout.split("arabic"))
    m = json.loads(align_matrix(p).read_text())
    assert m["models"] == ["base", "culturellm-arabic", "culturellm-german", "culturellm-one"]
    assert m["items"] == "held-out" and m["cultures"] == ["arabic", "german"]
    assert set(m["own_minus_best_other"]) == {"culturellm-arabic", "culturellm-german"}
    section = report_section(m, plot_matrix(m, tmp_path / "plots" / "align_matrix.png"))
    assert "## Model × culture alignment" in section and "![align_matrix](plots/align_matrix.png)" in section
    assert "culturellm-german (german): own culture minus best other culture: agreement" in section
