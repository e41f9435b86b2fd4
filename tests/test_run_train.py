"""The run's `train` option (issue 29): with several cultures a run trains each culture's model and
CultureLLM-One (all, as before), the cultures' only, or One only; the models compared, the matrix
rows and the dataset key follow it, and `[align] retrieve = K` adds the retrieval variants."""

from __future__ import annotations

import pytest

from culturellm.config import RunConfig
from culturellm.cultures import get_culture
from culturellm.runlayout import ONE, RunLayout
from culturellm.stages import STAGES, Run


def _run(tmp_path, **cfg) -> Run:
    config = RunConfig(cultures=["arabic", "german"], **cfg)
    cultures = [get_culture(c) for c in config.cultures]
    return Run(config, RunLayout(tmp_path), cultures, list(config.cultures), {"questions": "q"})


@pytest.mark.parametrize(
    ("train", "sets", "labels"),
    [
        ("all", ["arabic", "german", ONE], ["base", "base+culture-prompt", "culturellm", "culturellm-one"]),
        ("cultures", ["arabic", "german"], ["base", "base+culture-prompt", "culturellm"]),
        ("one", [ONE], ["base", "base+culture-prompt", "culturellm-one"]),
    ],
)
def test_train_decides_the_training_sets_and_the_compared_models(tmp_path, train, sets, labels):
    run = _run(tmp_path, train=train, evaluate={"baselines": True})
    assert run.training_sets() == sets
    assert [v.label for v in run.variants("arabic")] == labels
    rows = [v.label for v in run.matrix_variants()]
    assert rows[0] == "base" and ("culturellm-one" in rows) == (ONE in sets)
    assert ("culturellm-arabic" in rows) == ("arabic" in sets)


def test_train_is_in_the_dataset_key_only_when_not_the_default(tmp_path):
    dataset = next(s for s in STAGES if s.name == "dataset")
    a, b = _run(tmp_path), _run(tmp_path, train="one")
    assert "train" not in dataset.key(a, str)  # the keys of earlier runs stay as they were
    assert dataset.key(a, str) != dataset.key(b, str)


def test_align_retrieve_adds_the_retrieval_variants(tmp_path):
    run = _run(tmp_path, align={"retrieve": 3}, models={"embedder": "bundled"})
    got = {v.label: v for v in run.align_variants("arabic")}
    assert {"base+retrieval", "culturellm+retrieval"} <= set(got)
    assert got["base+retrieval"].describe_system() == "culture+retrieve:3"
    assert [v.label for v in _run(tmp_path).align_variants("arabic")] == [
        v.label for v in _run(tmp_path).variants("arabic")
    ]


def test_a_weighted_run_with_the_openai_backend_is_refused_before_anything_runs():
    """finetune.backends.check_weights: the openai backend does not accept weights."""
    from culturellm.errors import DataError
    from culturellm.pipeline import check_models

    cfg = RunConfig(
        models={"base": "openai:gpt-4o-mini-2024-07-18"},
        finetune={"backend": "openai"},
        dataset={"target": "sampled", "weight": "verifier"},
    )
    with pytest.raises(DataError, match=r"weight = 'verifier' with finetune.backend = 'openai': per-example"):
        check_models(cfg)
    check_models(cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"weight": "none"})}))
