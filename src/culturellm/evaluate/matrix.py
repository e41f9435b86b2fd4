"""Model x culture alignment matrix: does a culture model answer like its own culture, and not others?

Each model is aligned with each culture's WVS answers on the same items (the held-out questions and
paraphrases of a training-set split, or every seed without one); the matrix holds majority agreement,
1 - Jensen-Shannon distance and 1 - Wasserstein-1 over the ordered options (`evaluate.distributions`)
per cell, each with a bootstrap CI resampling questions. For a model that belongs to one culture (a
culture model's `culturellm.json` names it, or the caller says so), "own minus best other" is its score
with its own culture minus its best score with any other culture, with a paired bootstrap CI on the
items both surveys answered: above 0 with the CI above 0, the model is closer to its culture than to
any other measured. The heatmap (matplotlib) shows the measures side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from culturellm.safewrite import target

MEASURES = ("majority_agreement", "one_minus_jsd", "one_minus_wasserstein")
TITLES = {
    "majority_agreement": "majority agreement",
    "one_minus_jsd": "1 − JSD",
    "one_minus_wasserstein": "1 − W1",
}
ItemScores = dict[int, tuple[str, dict[str, float]]]  # item index -> (question id, measure -> value)


def own_culture(spec: str) -> str | None:
    """The single culture a model reference names (None: a base model, or several cultures)."""
    from culturellm.errors import CultureLLMError
    from culturellm.llm.modelref import find_modelref, read_modelref

    try:
        ref_file = find_modelref(spec)
        if ref_file is None and spec.startswith("hf:"):  # a published culture model: its culturellm.json
            from culturellm.llm.registry import parse_spec, resolve_spec

            ref_file = resolve_spec(parse_spec(spec)).source
        cultures = read_modelref(ref_file).cultures if ref_file is not None else []
    except (CultureLLMError, OSError, ValueError):  # damaged or unreadable (ValueError: bad text or
        return None  # a NUL in the path): not a model reference, so no culture of its own
    return cultures[0] if cultures and len(cultures) == 1 else None


def align_matrix(
    variants: Sequence[Any],
    cultures: Sequence[str],
    split: Path | None = None,
    *,
    own: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Align every variant (ModelVariant or spec) with every culture; return the matrix as a dict:
    models, cultures, one cells list (model, culture, measures, n) and per measure a models x cultures
    list of lists, plus `own_minus_best_other` per model whose own culture is known and measured."""
    from culturellm.cultures import get_culture
    from culturellm.evaluate.align import align
    from culturellm.evaluate.variant import Retrieval, variant_from

    vs = [variant_from(v, None) for v in variants]
    names = [get_culture(c).name for c in cultures]
    own_map: dict[str, str | None] = dict(own or {})  # label -> own culture (None: none, not looked up)
    for v in vs:
        if v.label not in own_map:
            mine = own_culture(v.spec)
            own_map[v.label] = get_culture(mine).name if mine is not None else None
    cells = []
    items: dict[tuple[str, str], ItemScores] = {}  # (model, culture) -> per-item scores, for the CIs
    for v in vs:
        mine = own_map.get(v.label)
        # A model of one culture answers once, as itself (its own culture prompt); so does a model
        # asked without a culture prompt. Their answers are compared with every culture's survey.
        # A model with a culture prompt and no culture of its own is asked per column's culture.
        per_culture = v.system == "culture" or isinstance(v.system, Retrieval)
        once = mine or (names[0] if not per_culture else None)
        fixed = align(v, once, split=split) if once else None
        for c in names:
            res = rescore(fixed, c) if fixed is not None else rescore(align(v, c, split=split), c)
            items[(v.label, c)] = res.pop("items")
            cells.append({"model": v.label, "spec": v.spec, "culture": c, **res})
    labels = [v.label for v in vs]
    out: dict[str, Any] = {
        "models": labels,
        "cultures": names,
        "split": str(split) if split is not None else None,
        "items": "held-out" if split is not None else "all seeds",
        "cells": cells,
        "own": {k: v for k, v in own_map.items() if v in names},
    }
    for m in MEASURES:
        out[m] = [[_cell(cells, lab, c)[m] for c in names] for lab in labels]
    out["own_minus_best_other"] = own_minus_best_other(out, items)
    return out


def rescore(result: Mapping[str, Any], culture: str) -> dict[str, Any]:
    """An `align` result's model answers compared with a culture's survey on the same items (items
    that culture did not answer are left out): n_questions, the measures, their CIs ("ci") and the
    per-item scores ("items", keyed by the item's place in the result)."""
    from culturellm.cultures import get_culture
    from culturellm.evaluate.bootstrap import mean_ci
    from culturellm.evaluate.distributions import similarity
    from culturellm.seeds import seed_set

    seeds = {s.question_id: s for s in seed_set(get_culture(culture))}
    scores: ItemScores = {}
    for i, r in enumerate(result["questions"]):
        s = seeds.get(r["question_id"])
        if s is None:
            continue
        codes = list(r["model_distribution"])
        survey = {c: float(s.distribution.get(c, 0.0)) for c in codes}
        if sum(survey.values()) <= 0:
            continue
        sim = similarity(r["model_distribution"], survey)
        agree = float(r["model_answer"] == str(s.majority))
        scores[i] = (str(r["question_id"]), {"majority_agreement": agree, **sim})
    qids = [q for q, _ in scores.values()]
    cis = {m: mean_ci([v[m] for _, v in scores.values()], qids) for m in MEASURES}
    return {
        "n_questions": len(scores),
        **{m: cis[m]["mean"] for m in MEASURES},
        "ci": cis,
        "items": scores,
    }


def _cell(cells: Sequence[Mapping[str, Any]], model: str, culture: str) -> Mapping[str, Any]:
    return next(x for x in cells if x["model"] == model and x["culture"] == culture)


def own_minus_best_other(
    matrix: Mapping[str, Any], items: Mapping[tuple[str, str], ItemScores] | None = None
) -> dict[str, dict[str, Any]]:
    """Per model with a known own culture and at least one other: own score minus best other score
    (per measure, and which culture was best), and with `items` (per-item scores of each cell) a
    paired bootstrap CI of that difference on the items both surveys answered ("ci")."""
    from culturellm.evaluate.bootstrap import difference_ci

    out: dict[str, dict[str, Any]] = {}
    cultures = list(matrix["cultures"])
    for i, model in enumerate(matrix["models"]):
        mine = matrix.get("own", {}).get(model)
        if mine not in cultures or len(cultures) < 2:
            continue
        j = cultures.index(mine)
        row: dict[str, Any] = {"culture": mine}
        cis: dict[str, Any] = {}
        for m in MEASURES:
            vals = matrix[m][i]
            others = [(vals[k], cultures[k]) for k in range(len(cultures)) if k != j]
            best, best_c = max(others)
            row[m] = vals[j] - best
            row[f"best_other_{m}"] = best_c
            if items is not None:
                own_items, other_items = items[(model, mine)], items[(model, best_c)]
                common = [k for k in own_items if k in other_items]
                cis[m] = difference_ci(
                    [own_items[k][1][m] for k in common],
                    [other_items[k][1][m] for k in common],
                    [own_items[k][0] for k in common],
                )
        if items is not None:
            row["ci"] = cis
        out[model] = row
    return out


def report_section(matrix: Mapping[str, Any], plot: Path | None = None) -> str:
    """A "Model x culture" section for report.md: the tables, own-minus-best-other, the heatmap."""
    out = ["", "## Model × culture alignment", ""]
    out.append(
        "Each model's answers on the same held-out items compared with every culture's survey; "
        "*own − best other*: a culture model's score with its own culture minus its best score with "
        "another culture (above 0: closer to its own culture)."
    )
    out += ["", matrix_markdown(matrix)]
    if plot is not None:
        out.append(f"![align_matrix](plots/{plot.name})")
    return "\n".join(out) + "\n"


def plot_matrix(matrix: Mapping[str, Any], path: Path) -> Path:
    """Heatmaps of agreement, 1 - JSD and 1 - W1 (models x cultures), values written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, cultures = matrix["models"], matrix["cultures"]
    measures = [m for m in MEASURES if m in matrix]  # a matrix written before 1 − W1 has two
    fig, axes = plt.subplots(
        1,
        len(measures),
        figsize=(2.0 + 1.3 * len(cultures) * len(measures), 1.2 + 0.5 * len(models)),
        squeeze=False,
    )
    for ax, m in zip(axes[0], measures, strict=True):
        title, data = TITLES[m], matrix[m]
        im = ax.imshow(data, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(cultures)), cultures, rotation=30, ha="right")
        ax.set_yticks(range(len(models)), models)
        ax.set_title(f"{title} ({matrix.get('items', '')})")
        for i in range(len(models)):
            for j in range(len(cultures)):
                v = data[i][j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with target(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def matrix_markdown(matrix: Mapping[str, Any]) -> str:
    """The matrix as one markdown table per measure plus the own-minus-best-other lines (with their
    95% CIs when the matrix has them)."""
    cultures = matrix["cultures"]
    lines = []
    for m in (m for m in MEASURES if m in matrix):
        lines += [f"**{TITLES[m]}** ({matrix.get('items', '')})", ""]
        lines.append("| model | " + " | ".join(cultures) + " |")
        lines.append("| --- |" + " --- |" * len(cultures))
        for i, model in enumerate(matrix["models"]):
            lines.append(f"| {model} | " + " | ".join(f"{v:.3f}" for v in matrix[m][i]) + " |")
        lines.append("")
    for model, d in matrix.get("own_minus_best_other", {}).items():
        parts = []
        for m in (m for m in MEASURES if m in d):
            ci = d.get("ci", {}).get(m)
            band = f" [{ci['lo']:+.3f}, {ci['hi']:+.3f}]" if ci else ""
            name = "agreement" if m == "majority_agreement" else TITLES[m]
            parts.append(f"{name} {d[m]:+.3f}{band} (vs {d[f'best_other_{m}']})")
        lines.append(f"- {model} ({d['culture']}): own culture minus best other culture: " + ", ".join(parts))
    return "\n".join(lines) + "\n"
