"""Training backends, one registry: `TrainBackend(name, accepts_soft, run, estimate, accepts_weights=)`.

`run(records, base, out, config, *, paths, data_sha, cultures, progress, console) -> Path` trains and
returns DIR/culturellm.json; `estimate(records, base, config, tokens) -> dict` is the backend's part of
`culturellm finetune --dry-run` (epochs, steps, cost; DataError for data it rejects); `accepts_soft`
says whether it trains on soft labels (`target_distribution`), `accepts_weights` whether it multiplies
an example's loss by its `weight` (`[dataset] weight`). Whether a training set's labels and weights
suit a backend is decided here once (`check_labels`, `check_weights`): a soft target with a backend
that takes hard labels, or weights with one that takes none, is an error naming the option to
change, never a silent switch or a silently ignored weight.

A new backend is one `register_backend(TrainBackend(...))`: `culturellm finetune --backend`, a run's
`[finetune] backend`, the dry-run estimate and the run's up-front check read this registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturellm.errors import DataError
from culturellm.registries import Registry


@dataclass(frozen=True)
class TrainBackend:
    name: str
    accepts_soft: bool  # trains on soft labels (records' target_distribution)
    run: Callable[..., Path]
    estimate: Callable[..., dict[str, Any]]
    description: str = ""
    accepts_weights: bool = False  # multiplies an example's loss by its record's `weight`


_BACKENDS: Registry[TrainBackend] = Registry("fine-tuning backend")
register_backend = _BACKENDS.register  # add (or replace) a backend; returns it
unregister_backend = _BACKENDS.unregister
backend_names = _BACKENDS.names
get_backend = _BACKENDS.get  # the registered backend `name`; UnknownNameError listing the known ones


def check_labels(backend: str, soft: bool, where: str, what: str = "soft labels") -> None:
    """The one soft-label policy: soft labels with a backend that takes hard labels only are an error
    (`where`: the file, record or option that holds them), naming the target to use instead."""
    if soft and not get_backend(backend).accepts_soft:
        raise DataError(
            f"{where}: {what} (target_distribution); the {backend} fine-tuning backend takes hard labels "
            'only: build the set with `culturellm dataset --target sampled` ([dataset] target = "sampled" '
            "in a run), or fine-tune with a backend that takes soft labels"
        )


def check_weights(backend: str, weighted: bool, where: str) -> None:
    """The one loss-weight policy: per-example weights with a backend that takes none are an error
    (`where`: the file, record or option that holds them), naming the setting to use instead."""
    if weighted and not get_backend(backend).accepts_weights:
        raise DataError(
            f"{where}: per-example loss weights; the {backend} fine-tuning backend takes none: build the "
            'set without them ([dataset] weight = "none", the default) or fine-tune with a backend that '
            "takes them (local)"
        )


def check_records(backend: str, records: Sequence[Any]) -> None:
    """`check_labels` and `check_weights` on training records: the first soft-label or weighted
    record named (file:line)."""
    soft = next((r for r in records if r.target is not None), None)
    if soft is not None:
        check_labels(backend, True, soft.source, "a soft-label record")
    weighted = next((r for r in records if getattr(r, "weight", None) is not None), None)
    if weighted is not None:
        check_weights(backend, True, weighted.source)


def estimate(records: Sequence[Any], base: str, config: Any) -> dict[str, Any]:
    """Examples, tokens, steps and cost for `config.backend` (`--dry-run`); raises DataError for data
    the backend rejects, soft labels included."""
    from culturellm.finetune.estimate import estimate_with

    check_records(config.backend, records)
    return estimate_with(get_backend(config.backend).estimate, records, base, config)


def _local_run(records: Any, base: str, out: Path, config: Any, **kw: Any) -> Path:
    from culturellm.finetune.local_run import run_local

    return run_local(records, base, out, config, **kw)


def _openai_run(records: Any, base: str, out: Path, config: Any, *, paths: Any, **kw: Any) -> Path:
    from culturellm.finetune.openai_ft import finetune_openai

    return finetune_openai(records, base, out, config, **kw)


def _local_estimate(*args: Any) -> dict[str, Any]:
    from culturellm.finetune.estimate import local_estimate

    return local_estimate(*args)


def _openai_estimate(*args: Any) -> dict[str, Any]:
    from culturellm.finetune.estimate import openai_estimate

    return openai_estimate(*args)


register_backend(
    TrainBackend("local", True, _local_run, _local_estimate, "local LoRA (TRL + PEFT)", accepts_weights=True)
)
register_backend(TrainBackend("openai", False, _openai_run, _openai_estimate, "the OpenAI fine-tuning API"))
