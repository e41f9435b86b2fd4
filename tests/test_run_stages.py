"""The run as a table of stages (culturellm.stages): each stage's key reads only the stages it
declares, the table runs in an order where every read stage comes first, and every model of a run,
the alignment matrix's rows included, is built one way: with the run's endpoint, cache and timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturellm.config import RunConfig
from culturellm.cultures import get_culture
from culturellm.errors import CultureLLMError
from culturellm.runlayout import RunLayout
from culturellm.stages import STAGES, Run

URL = "http://127.0.0.1:9/v1"  # nothing listens: loading a model makes no request


def _run(tmp_path: Path, cultures=("arabic", "german"), **models) -> Run:
    cfg = RunConfig(cultures=list(cultures), models={"base": "openai:llama3", **models})
    return Run(
        cfg, RunLayout(tmp_path), [get_culture(c) for c in cultures], list(cultures), {"questions": "q"}
    )


def test_stages_run_after_the_stages_they_read():
    names = [s.name for s in STAGES]
    assert names == ["seeds", "augment", "dataset", "finetune", "evaluate", "align", "report", "push"]
    for i, stage in enumerate(STAGES):
        assert set(stage.reads) <= set(names[:i]), stage.name
        assert stage.writes and all(not w.startswith("/") for w in stage.writes)


def test_each_key_reads_exactly_the_declared_stages(tmp_path):
    run = _run(tmp_path)
    for stage in STAGES:
        asked: list[str] = []
        stage.key(run, lambda name, asked=asked: asked.append(name) or f"digest-{name}")
        assert sorted(asked) == sorted(stage.reads), stage.name


def test_a_key_that_reads_an_undeclared_stage_is_refused(tmp_path):
    from dataclasses import replace

    from culturellm.manifest import Manifest
    from culturellm.pipeline import Pipeline

    p = Pipeline(RunConfig(), tmp_path, progress=False)
    p.manifest = Manifest(RunLayout(tmp_path))
    p.manifest.data["stages"] = {n: {"status": "done", "outputs": {}} for n in ("seeds", "augment")}
    sneaky = replace(STAGES[2], reads=("seeds",))  # the dataset key also reads "augment"
    with pytest.raises(CultureLLMError, match="not declared in reads"):
        p._stage(sneaky, _run(tmp_path))


def test_a_config_change_changes_only_the_keys_of_its_stage(tmp_path):
    a, b = _run(tmp_path), _run(tmp_path)
    b.config = RunConfig(
        cultures=["arabic", "german"], models={"base": "openai:llama3"}, finetune={"lr": 1e-3}
    )
    differ = [s.name for s in STAGES if s.key(a, str) != s.key(b, str)]
    assert differ == ["finetune"]


@pytest.mark.parametrize("cache", [True, False])
def test_matrix_base_row_uses_the_runs_endpoint_cache_and_timeout(tmp_path, cache):
    """The alignment matrix's rows were built apart from the other variants and lost base_url, cache
    and timeout: with an openai: base its base row went to the default endpoint."""
    run = _run(tmp_path, base_url=URL, timeout=7, cache=cache)
    rows = run.matrix_variants()
    assert [v.label for v in rows] == ["base", "culturellm-arabic", "culturellm-german", "culturellm-one"]
    how = {(v.access.base_url, v.access.cache, v.access.timeout) for v in rows + run.variants("arabic")}
    assert how == {(URL, cache, 7.0)} and {v.access for v in rows} == {run.access}
    base = rows[0].load()
    assert base.display_url == URL and base.timeout == 7.0
    assert run.model("openai:llama3") is base  # the augmenter is loaded the same way


def test_each_variant_is_aligned_on_the_split_of_the_set_it_was_trained_on(tmp_path):
    """By the model it loads, not by its label: a culture model on its culture's split, One on One's,
    the base model (with or without the culture prompt) on the culture's."""
    run = _run(tmp_path)
    got = {v.label: run.training_set_of(v, "arabic") for v in run.variants("arabic")}
    assert got == {"base": "arabic", "base+culture-prompt": "arabic", "culturellm": "arabic",
                   "culturellm-one": "one"}  # fmt: skip
