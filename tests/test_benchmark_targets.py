"""The target benchmarks (benchmarks/targets.py, benchmarks/frontier.py) compare the registered
training targets: a target registered in one place (culturellm.dataset.targets) is in their default
list with no edit there."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import frontier
import targets
from align_bench import registered_targets
from culturellm.dataset.targets import Target, register_target, target_names, unregister_target


def test_a_registered_target_is_in_both_benchmarks_default_lists() -> None:
    register_target(Target("flat", False, (), lambda seed, n, rng, cfg: (["1"] * n, None)))
    register_target(Target("tilted", True, ("majority_weight",), lambda seed, n, rng, cfg: ([], None)))
    try:
        assert targets.parse_args([]).targets.split(",") == target_names()
        names = frontier.parse_args([]).targets.split(",")
        assert "flat" in names and "tilted" in names  # a parameter without SWEEP values: its default
        assert {"mixed:0.25", "mixed:0.5", "sharpened:0.5", "sharpened:0.7"} <= set(names)
        assert "mixed" not in names and "majority" in names
    finally:
        unregister_target("flat")
        unregister_target("tilted")
    assert "flat" not in registered_targets()


def test_a_sweep_value_sets_the_targets_first_parameter() -> None:
    from culturellm.dataset import DatasetConfig

    cfg = frontier.dataset_config(DatasetConfig(), "mixed:0.25")
    assert cfg.target == "mixed" and cfg.majority_weight == 0.25
    assert registered_targets({"sharpened": (0.5,)}).count("sharpened:0.5") == 1
