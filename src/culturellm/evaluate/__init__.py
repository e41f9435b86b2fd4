"""Evaluation: the CultureLLM release's classification datasets (macro-F1 with bootstrap CIs and
baselines, one protocol for every model) and WVS alignment, with reports and plots.

    from culturellm.evaluate import ModelVariant, evaluate, align, write_report
    rows = evaluate([ModelVariant("base", "bundled")], ["arabic"], EvaluateConfig(limit=10), Path("out"))
    align("bundled", "arabic")["one_minus_jsd"]
"""

from __future__ import annotations

from culturellm.evaluate.align import align
from culturellm.evaluate.config import AlignConfig, EvaluateConfig
from culturellm.evaluate.report import write_report
from culturellm.evaluate.runner import evaluate
from culturellm.evaluate.tasks import Task, get_task, list_tasks
from culturellm.evaluate.variant import ModelVariant

__all__ = [
    "AlignConfig",
    "EvaluateConfig",
    "ModelVariant",
    "Task",
    "align",
    "evaluate",
    "get_task",
    "list_tasks",
    "write_report",
]
